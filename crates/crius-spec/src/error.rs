//! The crate's error type.

use std::path::PathBuf;

/// Why a spec could not be built.
///
/// Every variant except [`SpecError::Internal`] and [`SpecError::Host`] is caused by the request
/// (or the image it names) and maps to gRPC `InvalidArgument`; see
/// [`SpecError::is_invalid_argument`].
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A CRI field has a value this runtime cannot honour.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The CRI field, e.g. `linux.resources.cpu_period`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Neither the container config nor the image names a command to run.
    #[error("no command specified: the container config has no command/args and the image has no Entrypoint/Cmd")]
    NoCommand,
    /// A user name (from `run_as_username` or the image's `User`) is not in the rootfs's `/etc/passwd`.
    #[error("user {user:?} not found in {file}", file = .file.display())]
    UnknownUser {
        /// The user name as requested.
        user: String,
        /// The passwd file searched.
        file: PathBuf,
    },
    /// A group name (from the image's `User` `name:group`) is not in the rootfs's `/etc/group`.
    #[error("group {group:?} not found in {file}", file = .file.display())]
    UnknownGroup {
        /// The group name as requested.
        group: String,
        /// The group file searched.
        file: PathBuf,
    },
    /// A file the request names (or one inside the image) could not be read.
    #[error("read {path}: {source}", path = .path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A CRI mount's host path does not exist.
    #[error("mount {container_path}: host path {host_path} does not exist", host_path = .host_path.display())]
    MissingHostPath {
        /// The mount's host path.
        host_path: PathBuf,
        /// The mount's container path.
        container_path: String,
    },
    /// A CRI device could not be added.
    #[error("device {host_path}: {reason}", host_path = .host_path.display())]
    Device {
        /// The device's host path.
        host_path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A seccomp profile could not be used.
    #[error("seccomp profile {profile}: {reason}")]
    Seccomp {
        /// The profile (a path for localhost profiles).
        profile: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An AppArmor profile was requested on a host without AppArmor.
    #[error("apparmor profile {profile:?} requested but AppArmor is not enabled on this host")]
    AppArmorUnavailable {
        /// The requested profile.
        profile: String,
    },
    /// A sysctl is not namespaced (or not in a namespace the pod owns).
    #[error("sysctl {name:?} not allowed: {reason}")]
    Sysctl {
        /// The sysctl name.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// An unknown capability name in add/drop.
    #[error("unknown capability {name:?}")]
    UnknownCapability {
        /// The name as given.
        name: String,
    },
    /// User namespaces were requested; crius does not support them yet.
    #[error("user namespaces (userns_options mode {mode}) are not supported by crius")]
    UserNamespaceUnsupported {
        /// The requested mode (POD, NODE, ...).
        mode: String,
    },
    /// Reading host state (e.g. walking `/dev` for a privileged container) failed.
    #[error("{step}: {source}")]
    Host {
        /// What was being done.
        step: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A bug: `oci-spec` refused to build a value we constructed.
    #[error("internal: build {what}: {reason}")]
    Internal {
        /// What was being built.
        what: &'static str,
        /// The builder's error.
        reason: String,
    },
}

impl SpecError {
    /// True when the error is the caller's fault (gRPC `InvalidArgument`), false for host or
    /// internal failures (gRPC `Internal`).
    pub fn is_invalid_argument(&self) -> bool {
        !matches!(self, SpecError::Host { .. } | SpecError::Internal { .. })
    }

    pub(crate) fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SpecError::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// `Result` with [`SpecError`].
pub type Result<T, E = SpecError> = std::result::Result<T, E>;
