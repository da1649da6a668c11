//! The crate's error type and its mapping onto gRPC-like status codes.

use std::path::PathBuf;
use std::time::Duration;

/// The broad class of an [`OciError`], chosen so that the daemon can map it onto a gRPC code
/// one-to-one (`tonic::Code::NotFound`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The container (or a file it needs) does not exist.
    NotFound,
    /// The caller passed something unusable (bad ID, bad signal, missing bundle).
    InvalidArgument,
    /// The container is not in a state that allows the operation, or the host is not set up.
    FailedPrecondition,
    /// A deadline passed (create timeout, exec timeout).
    DeadlineExceeded,
    /// Anything else: the runtime or the monitor failed, an I/O error.
    Internal,
}

/// Errors of the OCI runtime layer. Each variant names the container (or binary) and the step.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A container ID that does not match `[A-Za-z0-9][A-Za-z0-9_.-]*` (max 1024 bytes).
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId {
        /// The refused ID.
        id: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Another unusable argument (signal name, missing bundle, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The runtime or monitor binary configured for a handler is missing or not executable.
    #[error("{what} binary {path} is missing or not executable: {source}")]
    BinaryMissing {
        /// "runtime" or "monitor".
        what: &'static str,
        /// The configured path.
        path: PathBuf,
        /// Why the check failed.
        #[source]
        source: std::io::Error,
    },
    /// The runtime does not know the container (and there is no exit record either).
    #[error("container {id} not found")]
    NotFound {
        /// Container ID.
        id: String,
    },
    /// The container is in the wrong state for the operation (e.g. exec in a stopped container).
    #[error("container {id}: {step}: {message}")]
    FailedPrecondition {
        /// Container ID.
        id: String,
        /// The operation.
        step: &'static str,
        /// Details.
        message: String,
    },
    /// The runtime binary (runc, crun) failed; `stderr` is its error text.
    #[error("container {id}: {step}: {runtime} failed: {stderr}{hint}", hint = operator_hint(stderr))]
    Runtime {
        /// Container ID.
        id: String,
        /// The operation ("create", "start", "kill", ...).
        step: &'static str,
        /// Runtime handler name.
        runtime: String,
        /// What the runtime printed (trimmed, bounded).
        stderr: String,
    },
    /// The monitor (conmon / crius-monitor) failed or exited without reporting.
    #[error("container {id}: {step}: monitor failed: {message}")]
    Monitor {
        /// Container ID.
        id: String,
        /// The operation.
        step: &'static str,
        /// Details (the monitor's own output when there was any).
        message: String,
    },
    /// A deadline passed; everything started for the operation has been killed.
    #[error("container {id}: {step}: timed out after {timeout:?}")]
    TimedOut {
        /// Container ID.
        id: String,
        /// The operation.
        step: &'static str,
        /// The deadline that passed.
        timeout: Duration,
    },
    /// Output of the runtime or monitor that could not be understood.
    #[error("{context}: cannot parse: {message}")]
    Parse {
        /// What was being parsed, for whom.
        context: String,
        /// Details.
        message: String,
    },
    /// An I/O error (spawning, files, sockets).
    #[error("{context}: {source}")]
    Io {
        /// What was being done, for whom.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl OciError {
    /// The status class of this error (for the daemon's gRPC mapping).
    pub fn code(&self) -> ErrorCode {
        match self {
            OciError::InvalidId { .. } | OciError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            OciError::NotFound { .. } => ErrorCode::NotFound,
            OciError::FailedPrecondition { .. } | OciError::BinaryMissing { .. } => {
                ErrorCode::FailedPrecondition
            }
            OciError::TimedOut { .. } => ErrorCode::DeadlineExceeded,
            OciError::Runtime { .. }
            | OciError::Monitor { .. }
            | OciError::Parse { .. }
            | OciError::Io { .. } => ErrorCode::Internal,
        }
    }

    /// Whether this is the "deadline passed" error.
    pub fn is_timeout(&self) -> bool {
        matches!(self, OciError::TimedOut { .. })
    }

    /// Whether this is the "container not found" error.
    pub fn is_not_found(&self) -> bool {
        matches!(self, OciError::NotFound { .. })
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        OciError::Io {
            context: context.into(),
            source,
        }
    }
}

/// What an operator can do about a runtime refusal whose cause is the host, not the container:
/// appended to the runtime's own words ("" for everything else).
pub fn operator_hint(stderr: &str) -> &'static str {
    const HINTS: &[(&str, &str)] = &[(
        "cgroups in hybrid mode not supported",
        " (this host mixes cgroup v1 hierarchies with a cgroup v2 mount that still holds \
         controllers, a layout crun refuses: mount each controller listed in \
         /sys/fs/cgroup/unified/cgroup.controllers as a v1 hierarchy, e.g. `mkdir -p \
         /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb` \
         (scripts/host-setup.sh does it), or use the runc handler)",
    )];
    HINTS
        .iter()
        .find(|(needle, _)| stderr.contains(needle))
        .map_or("", |(_, hint)| hint)
}

/// Result alias of this crate.
pub type Result<T, E = OciError> = std::result::Result<T, E>;

#[cfg(test)]
mod hint_tests {
    use super::*;

    #[test]
    fn crun_hybrid_refusal_is_explained() {
        let err = OciError::Runtime {
            id: "c1".into(),
            step: "create",
            runtime: "crun".into(),
            stderr: "cgroups in hybrid mode not supported, drop all controllers from cgroupv2"
                .into(),
        };
        let text = err.to_string();
        assert!(
            text.contains("drop all controllers from cgroupv2"),
            "{text}"
        );
        assert!(text.contains("mount -t cgroup -o hugetlb"), "{text}");
    }

    #[test]
    fn other_errors_get_no_hint() {
        assert_eq!(
            operator_hint("container_linux.go:380: starting container process"),
            ""
        );
    }
}
