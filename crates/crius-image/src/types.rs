//! Public value types of the image service (the daemon converts them to/from CRI).

use std::path::PathBuf;

/// How container root filesystems are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RootfsMode {
    /// overlayfs if the kernel has it, else [`RootfsMode::Copy`].
    #[default]
    Auto,
    /// Always overlayfs (error where it is missing).
    Overlay,
    /// Copy the layers into a per-container directory (slow; for hosts without overlayfs).
    Copy,
}

/// Configuration of an [`crate::ImageService`].
#[derive(Debug, Clone)]
pub struct ImageServiceConfig {
    /// Root directory of the store (e.g. `/var/lib/crius/image`). Created if missing.
    pub root: PathBuf,
    /// containers-registries.conf v2 file (daemon default `/etc/containers/registries.conf`).
    /// `None` or a missing file means no mirrors and TLS everywhere.
    pub registries_conf: Option<PathBuf>,
    /// How container rootfs are made.
    pub rootfs_mode: RootfsMode,
    /// Layers downloaded at the same time per pull (default 3).
    pub max_concurrent_downloads: usize,
    /// How old a container's disk usage (ImageFsInfo, writable layer stats) may be before it
    /// is walked again (default 10 s; zero walks at every request).
    pub usage_max_age: std::time::Duration,
    /// Each unpacked layer is made durable (`syncfs` of the store's filesystem) before it is
    /// named in `layers/` (default true): without it a power loss can leave a layer whose
    /// files are empty, which every later pull and container would trust.
    pub sync_layers: bool,
}

impl ImageServiceConfig {
    /// Defaults for the given root: the registries.conf path is left unset.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ImageServiceConfig {
            root: root.into(),
            registries_conf: None,
            rootfs_mode: RootfsMode::Auto,
            max_concurrent_downloads: 3,
            usage_max_age: std::time::Duration::from_secs(10),
            sync_layers: true,
        }
    }
}

/// Credentials for a pull, as in CRI's `AuthConfig`. Precedence: `registry_token`, then
/// `identity_token` (both sent as bearer tokens), then `username`/`password`, then `auth`
/// (base64 `user:password`). All empty = anonymous.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RegistryAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// base64 of `username:password`.
    pub auth: String,
    /// Registry the credentials are meant for (informational).
    pub server_address: String,
    /// OAuth identity token (sent as a bearer token).
    pub identity_token: String,
    /// Bearer token for the registry.
    pub registry_token: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("server_address", &self.server_address)
            .finish_non_exhaustive()
    }
}

/// One stored image, as ListImages / ImageStatus report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// Image ID: the config digest, `sha256:<hex>`.
    pub id: String,
    /// `registry/repo:tag` names, as the clients asked for them.
    pub repo_tags: Vec<String>,
    /// `registry/repo@sha256:<manifest or index digest>`.
    pub repo_digests: Vec<String>,
    /// Bytes: config + compressed layers, as the manifest gives them.
    pub size: u64,
    /// Numeric uid from the config's `User` (`1002` or `1003:1004` → 1002), if numeric.
    pub uid: Option<i64>,
    /// User name from the config's `User` when it is not numeric (`www-data`), else empty.
    pub username: String,
    /// Labels of the image config.
    pub labels: std::collections::HashMap<String, String>,
    /// Seconds since the epoch when this image was pulled (stored).
    pub pulled_at: i64,
}

/// Usage of the filesystem holding the store (CRI ImageFsInfo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsUsage {
    /// Mountpoint path reported as the CRI FilesystemIdentifier (the store root).
    pub mountpoint: PathBuf,
    /// Bytes used under the store.
    pub used_bytes: u64,
    /// Inodes used under the store.
    pub inodes_used: u64,
    /// Nanoseconds since the epoch when measured.
    pub timestamp_nanos: i64,
}
