//! crius-image: the CRI image service's logic and container root filesystems.
//!
//! [`ImageService`] pulls images over the OCI distribution API (mirrors and plain-HTTP
//! registries from a containers-registries.conf v2 file), keeps them in a content store
//! under a root directory (blobs by digest, unpacked layers by chain ID, image records),
//! and mounts container root filesystems on overlayfs (or copies, where overlay is missing).

pub mod error;
pub mod reference;
pub mod registries;
mod unpack;
pub mod types;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{ImageError, Result};
pub use oci_spec::image::ImageConfiguration;
pub use reference::ImageReference;
pub use types::{FsUsage, ImageInfo, ImageServiceConfig, RegistryAuth, RootfsMode};

/// The image service. Cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub struct ImageService {
    inner: Arc<Inner>,
}

struct Inner {
    config: ImageServiceConfig,
}

impl ImageService {
    /// Opens (creating if needed) the store under `config.root` and reads the registries file.
    pub async fn open(config: ImageServiceConfig) -> Result<Self> {
        Ok(ImageService {
            inner: Arc::new(Inner { config }),
        })
    }

    /// Root directory of the store.
    pub fn root(&self) -> &Path {
        &self.inner.config.root
    }

    /// Pulls `reference` (normalised; mirrors from registries.conf tried first) and records
    /// it under the name asked for. Returns the stored image.
    pub async fn pull(&self, reference: &str, auth: Option<&RegistryAuth>) -> Result<ImageInfo> {
        let _ = (reference, auth);
        Err(ImageError::Internal("pull: not implemented yet".into()))
    }

    /// Lists images; with a filter (reference, ID or ID prefix), only the matching image.
    pub async fn list(&self, filter: Option<&str>) -> Result<Vec<ImageInfo>> {
        let _ = filter;
        Ok(Vec::new())
    }

    /// Status of one image by reference, ID (`sha256:<hex>` or `<hex>`) or unique ID prefix.
    /// `Ok(None)` when it is not there (CRI ImageStatus returns no image, not an error).
    pub async fn status(&self, image: &str) -> Result<Option<ImageInfo>> {
        let _ = image;
        Ok(None)
    }

    /// The image config (Entrypoint, Cmd, Env, WorkingDir, User, StopSignal, Volumes, Labels
    /// under `.config()`) of an image by reference, ID or ID prefix; NotFound if absent.
    pub async fn image_config(&self, image: &str) -> Result<ImageConfiguration> {
        Err(ImageError::NotFound {
            reference: image.to_string(),
            detail: String::new(),
        })
    }

    /// Removes an image (all its tags) by reference, ID or ID prefix, and frees layers that
    /// no other image or live rootfs uses. Idempotent: returns the removed ID, or `None`
    /// if there was no such image.
    pub async fn remove(&self, image: &str) -> Result<Option<String>> {
        let _ = image;
        Ok(None)
    }

    /// Bytes and inodes used under the store root.
    pub async fn fs_info(&self) -> Result<FsUsage> {
        Err(ImageError::Internal("fs_info: not implemented yet".into()))
    }

    /// Makes the root filesystem of `container_id` from `image` (reference, ID or prefix):
    /// an overlay mount (lowerdirs = the image's layers, upper/work per container) or a
    /// copy. Returns the rootfs path. Idempotent for the same container.
    pub async fn mount_rootfs(&self, image: &str, container_id: &str) -> Result<PathBuf> {
        let _ = (image, container_id);
        Err(ImageError::Internal("mount_rootfs: not implemented yet".into()))
    }

    /// Unmounts and deletes the rootfs of `container_id` (upper and work dirs included).
    /// Idempotent: a container without rootfs is fine.
    pub async fn unmount_rootfs(&self, container_id: &str) -> Result<()> {
        let _ = container_id;
        Ok(())
    }
}
