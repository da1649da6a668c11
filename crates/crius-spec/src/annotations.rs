//! Annotation keys crius writes into specs (the `io.kubernetes.cri.*` names hooks and tools
//! such as NRI plugins or kata look for).

/// `"container"` or `"sandbox"`.
pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
/// Value of [`CONTAINER_TYPE`] for an application container.
pub const CONTAINER_TYPE_CONTAINER: &str = "container";
/// Value of [`CONTAINER_TYPE`] for a pod's infra container.
pub const CONTAINER_TYPE_SANDBOX: &str = "sandbox";
/// The pod sandbox ID.
pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
/// The pod's name.
pub const SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
/// The pod's Kubernetes namespace.
pub const SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
/// The pod's UID.
pub const SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
/// The pod's log directory.
pub const SANDBOX_LOG_DIRECTORY: &str = "io.kubernetes.cri.sandbox-log-directory";
/// The container's name (from its metadata).
pub const CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
/// The image name the container was created from.
pub const IMAGE_NAME: &str = "io.kubernetes.cri.image-name";
/// The container's CRI log file.
pub const LOG_PATH: &str = "io.crius.log-path";
