//! `ImageStore` over crius-image.

use std::path::PathBuf;

use crius_image::{ImageError, ImageService, ImageServiceConfig, RegistryAuth};

use crate::backend::{Auth, FsUsage, ImageInfo, ImageStore};
use crate::error::{Error, Result};

/// The image store of the daemon.
pub struct Images {
    svc: ImageService,
}

/// Maps crius-image errors to daemon error kinds.
pub fn map_err(e: ImageError) -> Error {
    let m = e.to_string();
    match e {
        ImageError::NotFound { .. } => Error::NotFound(m),
        ImageError::InvalidReference { .. } | ImageError::InvalidArgument(_) => {
            Error::InvalidArgument(m)
        }
        ImageError::Unavailable { .. } => Error::Unavailable(m),
        ImageError::InUse { .. } => Error::FailedPrecondition(m),
        _ => Error::Internal(m),
    }
}

fn info(i: crius_image::ImageInfo) -> ImageInfo {
    ImageInfo {
        id: i.id,
        repo_tags: i.repo_tags,
        repo_digests: i.repo_digests,
        size: i.size,
        uid: i.uid,
        username: i.username,
        pinned: false,
    }
}

impl Images {
    /// Opens the store under `root` with the registries file (a missing file = no mirrors);
    /// `sync_layers`: each pulled layer is made durable before it is used.
    pub async fn open(
        root: PathBuf,
        registries_conf: PathBuf,
        sync_layers: bool,
    ) -> Result<Images> {
        let mut cfg = ImageServiceConfig::new(root);
        cfg.registries_conf = Some(registries_conf);
        cfg.sync_layers = sync_layers;
        let svc = ImageService::open(cfg).await.map_err(map_err)?;
        Ok(Images { svc })
    }
}

#[tonic::async_trait]
impl ImageStore for Images {
    async fn pull(&self, reference: &str, auth: Option<Auth>) -> Result<String> {
        let auth = auth.map(|a| RegistryAuth {
            username: a.username,
            password: a.password,
            auth: a.auth,
            identity_token: a.identity_token,
            registry_token: a.registry_token,
            ..Default::default()
        });
        let res = self.svc.pull(reference, auth.as_ref()).await;
        // A pull allocates and frees tens of MiB (manifests, layer buffers, unpack).
        crate::daemon::release_free_memory();
        Ok(res.map_err(map_err)?.id)
    }

    async fn list(&self) -> Result<Vec<ImageInfo>> {
        Ok(self
            .svc
            .list(None)
            .await
            .map_err(map_err)?
            .into_iter()
            .map(info)
            .collect())
    }

    async fn status(&self, reference: &str) -> Result<Option<ImageInfo>> {
        match self.svc.status(reference).await {
            Ok(i) => Ok(i.map(info)),
            Err(ImageError::InvalidReference { .. }) => Ok(None),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn remove(&self, reference: &str) -> Result<()> {
        match self.svc.remove(reference).await.map_err(map_err)? {
            Some(_) => Ok(()),
            None => Err(Error::NotFound(format!("image {reference:?} not found"))),
        }
    }

    async fn fs_info(&self) -> Result<FsUsage> {
        let u = self.svc.fs_info().await.map_err(map_err)?;
        Ok(FsUsage {
            mountpoint: u.mountpoint.to_string_lossy().into_owned(),
            used_bytes: u.used_bytes,
            inodes_used: u.inodes_used,
        })
    }

    async fn config(&self, image_id: &str) -> Result<oci_spec::image::ImageConfiguration> {
        self.svc.image_config(image_id).await.map_err(map_err)
    }

    async fn mount_rootfs(&self, image_id: &str, container_id: &str) -> Result<PathBuf> {
        self.svc
            .mount_rootfs(image_id, container_id)
            .await
            .map_err(map_err)
    }

    async fn mount_rootfs_idmapped(
        &self,
        image_id: &str,
        container_id: &str,
        userns: &std::path::Path,
        root_uid: u32,
        root_gid: u32,
    ) -> Result<PathBuf> {
        let idmap = crius_image::RootfsIdmap {
            userns: userns.to_path_buf(),
            root_uid,
            root_gid,
        };
        self.svc
            .mount_rootfs_idmapped(image_id, container_id, &idmap)
            .await
            .map_err(map_err)
    }

    async fn unmount_rootfs(&self, container_id: &str) -> Result<()> {
        self.svc.unmount_rootfs(container_id).await.map_err(map_err)
    }

    async fn writable_layer_usage(&self, container_id: &str) -> Result<Option<(u64, u64)>> {
        self.svc
            .writable_layer_usage(container_id)
            .await
            .map_err(map_err)
    }
}
