//! The crate's error type.

use std::path::PathBuf;

/// Errors of the image service. The daemon maps each variant to a gRPC code
/// (see the doc comment of each variant).
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The image (or reference) is not known: gRPC `NotFound`.
    #[error("image {reference:?} not found{}", detail_suffix(.detail))]
    NotFound {
        /// The reference, ID or digest that was asked for.
        reference: String,
        /// What said so (e.g. the registry's answer), may be empty.
        detail: String,
    },
    /// The reference (or another argument) is malformed: gRPC `InvalidArgument`.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// Why it was refused.
        reason: String,
    },
    /// Another argument is invalid (bad auth, bad container id...): gRPC `InvalidArgument`.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No endpoint could be reached: gRPC `Unavailable`.
    #[error("registry {registry} unavailable (tried {}): {detail}", .tried.join(", "))]
    Unavailable {
        /// The registry of the reference.
        registry: String,
        /// Every endpoint tried, mirrors first, in order.
        tried: Vec<String>,
        /// The last error seen.
        detail: String,
    },
    /// The registry refused our credentials: gRPC `Unauthenticated`/`PermissionDenied`.
    #[error("registry {registry} refused authentication for {reference}: {detail}")]
    Unauthorized {
        /// Registry endpoint that answered 401/403.
        registry: String,
        /// Reference being pulled.
        reference: String,
        /// Registry answer.
        detail: String,
    },
    /// A blob did not hash to its digest: gRPC `DataLoss`.
    #[error("digest mismatch for blob {blob} of {reference}: got {actual}")]
    DigestMismatch {
        /// Expected digest (the blob's name).
        blob: String,
        /// Digest computed over what was received.
        actual: String,
        /// Reference being pulled.
        reference: String,
    },
    /// A layer tarball tried to write outside its directory or was otherwise hostile:
    /// gRPC `InvalidArgument` (or `DataLoss`).
    #[error("refusing layer {layer}: entry {entry:?}: {reason}")]
    HostileLayer {
        /// Digest of the layer blob.
        layer: String,
        /// Path of the offending tar entry (as written in the tarball).
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The registry served something we cannot use (unknown media type, no `linux/<arch>`
    /// entry in an index, malformed JSON...): gRPC `FailedPrecondition`/`Unknown`.
    #[error("unsupported image {reference}: {reason}")]
    Unsupported {
        /// Reference being pulled.
        reference: String,
        /// Why.
        reason: String,
    },
    /// The registry answered with an error we do not classify further: gRPC `Unknown`.
    #[error("registry {registry}: pull {reference}: {detail}")]
    Registry {
        /// Endpoint.
        registry: String,
        /// Reference.
        reference: String,
        /// The error.
        detail: String,
    },
    /// registries.conf could not be read or parsed: gRPC `FailedPrecondition`.
    #[error("registries config {path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The image is in use and cannot be removed: gRPC `FailedPrecondition`. Not returned
    /// today (removal of an image in use is allowed; its layers stay until the rootfs goes).
    #[error("image {image} is in use by container {container}")]
    InUse {
        /// Image ID.
        image: String,
        /// One container using it.
        container: String,
    },
    /// Mounting or unmounting a rootfs failed: gRPC `Internal`.
    #[error("rootfs of container {container}: {step}: {source}")]
    Rootfs {
        /// Container ID.
        container: String,
        /// What was being done.
        step: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A filesystem operation of the store failed: gRPC `Internal`.
    #[error("{step} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        step: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Anything else (a bug, a panicked task): gRPC `Internal`.
    #[error("internal: {0}")]
    Internal(String),
}

fn detail_suffix(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(": {d}")
    }
}

impl ImageError {
    /// Builds an [`ImageError::Io`].
    pub(crate) fn io(step: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ImageError::Io {
            step,
            path: path.into(),
            source,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;
