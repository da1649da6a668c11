//! crius-image: the CRI image service's logic and container root filesystems.
//!
//! [`ImageService`] pulls images over the OCI distribution API (mirrors and plain-HTTP
//! registries from a containers-registries.conf v2 file), keeps them in a content store
//! under a root directory (blobs by digest, unpacked layers by chain ID, image records),
//! and mounts container root filesystems on overlayfs (or copies, where overlay is missing).
//!
//! Choices worth knowing:
//! - Names: an image is stored under the name the client asked for (`registry.k8s.io/pause:3.9`
//!   stays that even when a mirror served it); RepoDigests are `name@<digest the reference
//!   resolved to>` (the index digest for multi-arch images). A digest (or tag+digest) pull adds
//!   no RepoTag, as in Docker. A tag names one image: pulling it onto another image moves it.
//! - Removal removes the image with all its tags (CRI RemoveImage, as containerd does) and is
//!   idempotent; layers are freed once no image, live rootfs or pull in progress uses them.
//! - Endpoints: registries.conf mirrors in order, then the location; `insecure` means plain
//!   HTTP (no TLS-skip-verify variant). The last endpoint's failure gives the error kind.
//! - Layers are unpacked while they download (gzip, zstd or plain, by magic bytes), into a temp
//!   dir renamed into `layers/<chain id>` only after the blob digest and the diff ID check out.
//! - Auth: `registry_token`, else `identity_token`, is sent as a bearer token as is (no OAuth
//!   refresh-token exchange); username/password or `auth` do basic or token-server auth.
//! - Overlay lowerdirs go through short links `root/l/<16 hex>`; when the options still exceed a
//!   page, `mount(8)` runs with the store root as its cwd and relative paths (about 200 layers
//!   max, E2BIG beyond).

pub mod error;
pub mod reference;
pub mod registries;
pub mod types;

mod idmap;
mod pull;
mod rootfs;
mod store;
mod unpack;
mod usage;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use oci_client::secrets::RegistryAuth as OciAuth;

pub use error::{ImageError, Result};
pub use idmap::{idmap_supported, RootfsIdmap};
pub use oci_spec::image::ImageConfiguration;
pub use reference::ImageReference;
pub use registries::RegistriesConf;
pub use types::{FsUsage, ImageInfo, ImageServiceConfig, RegistryAuth, RootfsMode};

use pull::Failure;
use store::{ContainerRecord, Image, ImageRecord, LayerRecord, Paths, State};

/// Unpacks one layer blob (gzip, zstd or plain tar, by magic bytes) read from `reader` into
/// `dest`, an existing empty directory, with the same checks as a pull (nothing outside
/// `dest`, whiteouts in overlayfs form). Returns the diff ID (digest of the uncompressed tar).
/// Blocking; the caller checks the diff ID against the image config. Used by the benchmark
/// example to time an unpack without the download.
pub fn unpack_layer_blob<R: std::io::Read>(reader: R, dest: &Path, name: &str) -> Result<String> {
    pull::decompress_and_unpack(reader, dest, name).map(|(diff_id, _)| diff_id)
}

/// The image service. Cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub struct ImageService {
    inner: Arc<Inner>,
}

struct Inner {
    config: ImageServiceConfig,
    paths: Paths,
    registries: RegistriesConf,
    insecure: Vec<String>,
    client: oci_client::Client,
    state: Mutex<State>,
    layer_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Disk usage of layers and containers, kept between requests.
    usage: usage::UsageCache,
}

/// Unpins a pull's layers when dropped.
struct Pins<'a> {
    inner: &'a Inner,
    layers: Vec<String>,
}

impl Drop for Pins<'_> {
    fn drop(&mut self) {
        let mut st = self.inner.lock();
        for l in &self.layers {
            if let Some(n) = st.pins.get_mut(l) {
                *n -= 1;
                if *n == 0 {
                    st.pins.remove(l);
                }
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (each step is atomic).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn layer_lock(&self, chain: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.layer_locks.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(chain.to_string()).or_default().clone()
    }

    /// Frees unused layers and blobs (state lock held for the renames only).
    async fn gc(&self) {
        let doomed = {
            let st = self.lock();
            store::collect_garbage(&self.paths, &st)
        };
        if doomed.is_empty() {
            return;
        }
        let _ = tokio::task::spawn_blocking(move || {
            for d in doomed {
                if let Err(e) = std::fs::remove_dir_all(&d) {
                    tracing::warn!(path = %d.display(), error = %e, "cannot delete freed layer");
                }
            }
        })
        .await;
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ImageError::Internal(format!("blocking task: {e}")))?
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl ImageService {
    /// Opens (creating if needed) the store under `config.root` and reads the registries file.
    pub async fn open(config: ImageServiceConfig) -> Result<Self> {
        let usage = usage::UsageCache::new(config.usage_max_age);
        let registries = match &config.registries_conf {
            Some(p) => RegistriesConf::load(p)?,
            None => RegistriesConf::default(),
        };
        let paths = Paths {
            root: config.root.clone(),
        };
        let p2 = paths.clone();
        let state = blocking(move || {
            p2.init()?;
            p2.load()
        })
        .await?;
        let insecure = registries.insecure_hosts();
        let client = pull::make_client(&insecure);
        let svc = ImageService {
            inner: Arc::new(Inner {
                config,
                paths,
                registries,
                insecure,
                client,
                state: Mutex::new(state),
                layer_locks: Mutex::new(HashMap::new()),
                usage,
            }),
        };
        // Layers or blobs left by a crash between unpack and record are freed now.
        svc.inner.gc().await;
        Ok(svc)
    }

    /// Root directory of the store.
    pub fn root(&self) -> &Path {
        &self.inner.config.root
    }

    /// Pulls `reference` (normalised; mirrors from registries.conf tried first, in order,
    /// then the registry's location) and records it under the name asked for, whichever
    /// endpoint served it. Returns the stored image (its `id` is the CRI image ref).
    pub async fn pull(&self, reference: &str, auth: Option<&RegistryAuth>) -> Result<ImageInfo> {
        let r = ImageReference::parse(reference)?;
        let endpoints = self.inner.registries.endpoints(&r)?;
        let oauth = pull::to_oci_auth(auth)?;
        let client = if oauth == OciAuth::Anonymous {
            self.inner.client.clone()
        } else {
            pull::make_client(&self.inner.insecure)
        };
        let mut tried = Vec::new();
        let mut seen = Vec::new();
        let mut last: Option<Failure> = None;
        for ep in &endpoints {
            tried.push(ep.to_string());
            let oref = pull::endpoint_ref(&r, ep);
            match self.pull_from(&client, &r, &oref, &oauth).await {
                Ok(info) => {
                    tracing::info!(reference = %r, endpoint = %ep, id = %info.id, "pulled image");
                    return Ok(info);
                }
                Err(f) => {
                    tracing::warn!(reference = %r, endpoint = %ep, failure = ?f, "pull from endpoint failed");
                    seen.push(format!("{ep}: {}", f.describe()));
                    last = Some(f);
                }
            }
        }
        // The last endpoint's failure decides the kind; an unreachable end lists them all.
        Err(match last {
            Some(Failure::Unreachable(_)) => ImageError::Unavailable {
                registry: r.registry.clone(),
                tried,
                detail: seen.join("; "),
            },
            Some(Failure::NotFound(detail)) => ImageError::NotFound {
                reference: r.to_string(),
                detail,
            },
            Some(Failure::Unauthorized(detail)) => ImageError::Unauthorized {
                registry: tried.last().cloned().unwrap_or_default(),
                reference: r.to_string(),
                detail,
            },
            Some(Failure::Registry(detail)) => ImageError::Registry {
                registry: tried.last().cloned().unwrap_or_default(),
                reference: r.to_string(),
                detail,
            },
            Some(Failure::Other(e)) => e,
            None => ImageError::Internal(format!("no endpoint for {r}")),
        })
    }

    async fn pull_from(
        &self,
        client: &oci_client::Client,
        r: &ImageReference,
        oref: &oci_client::Reference,
        auth: &OciAuth,
    ) -> std::result::Result<ImageInfo, Failure> {
        let inner = &self.inner;
        let resolved = pull::resolve(client, r, oref, auth).await?;
        let config_bytes = pull::fetch_json_blob(client, oref, &resolved.config, r).await?;
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes).map_err(|e| {
            Failure::Other(ImageError::Unsupported {
                reference: r.to_string(),
                reason: format!("config {} does not parse: {e}", resolved.config.digest),
            })
        })?;
        let diff_ids: Vec<String> = config.rootfs().diff_ids().clone();
        if diff_ids.len() != resolved.layers.len() {
            return Err(Failure::Other(ImageError::Unsupported {
                reference: r.to_string(),
                reason: format!(
                    "manifest has {} layers but config has {} diff IDs",
                    resolved.layers.len(),
                    diff_ids.len()
                ),
            }));
        }
        for d in &diff_ids {
            reference::validate_digest(d).map_err(|reason| {
                Failure::Other(ImageError::Unsupported {
                    reference: r.to_string(),
                    reason: format!("config diff ID: {reason}"),
                })
            })?;
        }
        let chains = store::chain_ids(&diff_ids);
        let _pins = {
            let mut st = inner.lock();
            for c in &chains {
                *st.pins.entry(c.clone()).or_default() += 1;
            }
            Pins {
                inner,
                layers: chains.clone(),
            }
        };

        // Layers download and unpack in parallel tasks (bounded), each owning its inputs.
        let limit = Arc::new(tokio::sync::Semaphore::new(
            inner.config.max_concurrent_downloads.max(1),
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for ((desc, diff), chain) in resolved.layers.iter().zip(&diff_ids).zip(&chains) {
            let job = LayerJob {
                svc: self.clone(),
                client: client.clone(),
                oref: oref.clone(),
                r: r.clone(),
                desc: desc.clone(),
                diff_id: diff.clone(),
                chain: chain.clone(),
            };
            let limit = limit.clone();
            tasks.spawn(async move {
                let _permit = limit
                    .acquire_owned()
                    .await
                    .map_err(|e| Failure::Other(ImageError::Internal(e.to_string())))?;
                job.run().await
            });
        }
        while let Some(res) = tasks.join_next().await {
            let res =
                res.map_err(|e| Failure::Other(ImageError::Internal(format!("layer task: {e}"))))?;
            if let Err(f) = res {
                // Dropping the set aborts the other layers' tasks; their temp dirs go too.
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                return Err(f);
            }
        }

        let id = resolved.config.digest.clone();
        let size = resolved.config.size.max(0) as u64
            + resolved
                .layers
                .iter()
                .map(|l| l.size.max(0) as u64)
                .sum::<u64>();
        let repo_tag = r.repo_tag();
        let repo_digest = r.repo_digest(&resolved.top_digest);
        let manifests: Vec<String> = resolved.manifests.iter().map(|(d, _)| d.clone()).collect();
        let paths = inner.paths.clone();
        let this = self.clone();
        let blobs = resolved.manifests.clone();
        let info = blocking(move || {
            let inner = &this.inner;
            let mut st = inner.lock();
            // Blobs are written under the lock so a concurrent GC cannot drop them.
            for (d, data) in blobs
                .iter()
                .chain(std::iter::once(&(id.clone(), config_bytes)))
            {
                let p = paths.blob(d);
                if !p.exists() {
                    store::write_atomic(&p, data)?;
                }
            }
            // A tag names one image: take it from any other.
            let mut changed = Vec::new();
            for img in st.images.values_mut() {
                if img.record.id == id {
                    continue;
                }
                let before = img.record.repo_tags.len() + img.record.repo_digests.len();
                if let Some(t) = &repo_tag {
                    img.record.repo_tags.retain(|x| x != t);
                }
                img.record.repo_digests.retain(|x| x != &repo_digest);
                if img.record.repo_tags.len() + img.record.repo_digests.len() != before {
                    changed.push(img.record.clone());
                }
            }
            for rec in &changed {
                paths.save_image(rec)?;
            }
            let img = st.images.entry(id.clone()).or_insert_with(|| Image {
                record: ImageRecord {
                    id: id.clone(),
                    repo_tags: Vec::new(),
                    repo_digests: Vec::new(),
                    size,
                    layers: chains.clone(),
                    manifests: Vec::new(),
                    pulled_at: now_secs(),
                },
                config,
            });
            if let Some(t) = repo_tag {
                if !img.record.repo_tags.contains(&t) {
                    img.record.repo_tags.push(t);
                }
            }
            if !img.record.repo_digests.contains(&repo_digest) {
                img.record.repo_digests.push(repo_digest);
            }
            for m in manifests {
                if !img.record.manifests.contains(&m) {
                    img.record.manifests.push(m);
                }
            }
            paths.save_image(&img.record)?;
            Ok(img.info())
        })
        .await
        .map_err(Failure::Other)?;
        Ok(info)
    }
}

/// One layer to fetch, owning everything it needs (runs as its own task).
struct LayerJob {
    svc: ImageService,
    client: oci_client::Client,
    oref: oci_client::Reference,
    r: ImageReference,
    desc: pull::Descriptor,
    diff_id: String,
    chain: String,
}

impl LayerJob {
    /// Makes sure layer `chain` is unpacked (downloading it if not); one download per layer
    /// at a time, shared by concurrent pulls.
    async fn run(self) -> std::result::Result<(), Failure> {
        let LayerJob {
            svc,
            client,
            oref,
            r,
            desc,
            diff_id,
            chain,
        } = self;
        let (chain, diff_id, desc) = (chain.as_str(), diff_id.as_str(), &desc);
        let inner = &svc.inner;
        let lock = inner.layer_lock(chain);
        let _guard = lock.lock().await;
        if inner.paths.has_layer(chain) {
            return Ok(());
        }
        let tmp = tempfile::Builder::new()
            .prefix("layer-")
            .tempdir_in(inner.paths.tmp())
            .map_err(|e| {
                Failure::Other(ImageError::io("create temp dir in", inner.paths.tmp(), e))
            })?;
        let diff = tmp.path().join("diff");
        std::fs::create_dir(&diff)
            .map_err(|e| Failure::Other(ImageError::io("create", &diff, e)))?;
        let stats = pull::fetch_and_unpack_layer(&client, &oref, desc, diff_id, &diff, &r).await;
        let stats = match stats {
            Ok(s) => s,
            Err(f) => {
                let tmp_path = tmp.path().to_path_buf();
                // Removing a big tree is slow: off the runtime.
                let _ = tokio::task::spawn_blocking(move || drop(tmp)).await;
                tracing::debug!(path = %tmp_path.display(), "removed partial layer");
                return Err(f);
            }
        };
        let rec = LayerRecord {
            chain_id: chain.to_string(),
            diff_id: diff_id.to_string(),
            blob: desc.digest.clone(),
            unpacked_bytes: stats.bytes,
            inodes: stats.inodes,
        };
        let json = serde_json::to_vec_pretty(&rec)
            .map_err(|e| Failure::Other(ImageError::Internal(e.to_string())))?;
        let layer_dir = tmp.path().to_path_buf();
        let sync = inner.config.sync_layers;
        // Durable before it is named: a layer in layers/ is trusted by every later pull and
        // container, and the unpacked files are written without fsync. One syncfs writes the
        // layer (and whatever else is dirty on the store's filesystem) out at once; concurrent
        // layers share its cost.
        tokio::task::spawn_blocking(move || {
            store::write_unsynced(&layer_dir.join("layer.json"), &json)?;
            if !sync {
                return Ok(());
            }
            let dir = std::fs::File::open(&layer_dir)
                .map_err(|e| ImageError::io("open", &layer_dir, e))?;
            rustix::fs::syncfs(&dir).map_err(|e| ImageError::io("syncfs", &layer_dir, e.into()))
        })
        .await
        .map_err(|e| Failure::Other(ImageError::Internal(format!("blocking task: {e}"))))?
        .map_err(Failure::Other)?;
        let dest = inner.paths.layer(chain);
        let kept = tmp.keep();
        match std::fs::rename(&kept, &dest) {
            Ok(()) => {}
            Err(_) if inner.paths.has_layer(chain) => {
                let _ = std::fs::remove_dir_all(&kept);
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&kept);
                return Err(Failure::Other(ImageError::io("rename layer into", dest, e)));
            }
        }
        Ok(())
    }
}

impl ImageService {
    /// Lists images; with a non-empty filter (reference, ID or ID prefix), only the
    /// matching image (or none).
    pub async fn list(&self, filter: Option<&str>) -> Result<Vec<ImageInfo>> {
        let st = self.inner.lock();
        let mut out: Vec<ImageInfo> = match filter.filter(|f| !f.is_empty()) {
            Some(f) => st.find(f).map(Image::info).into_iter().collect(),
            None => st.images.values().map(Image::info).collect(),
        };
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Status of one image by reference, ID (`sha256:<hex>` or `<hex>`) or unique ID prefix.
    /// `Ok(None)` when it is not there (CRI ImageStatus returns no image, not an error);
    /// an invalid reference that is not an ID is `InvalidReference`.
    pub async fn status(&self, image: &str) -> Result<Option<ImageInfo>> {
        let st = self.inner.lock();
        if let Some(i) = st.find(image) {
            return Ok(Some(i.info()));
        }
        let is_hex = image
            .strip_prefix("sha256:")
            .unwrap_or(image)
            .bytes()
            .all(|b| b.is_ascii_hexdigit());
        if !is_hex {
            ImageReference::parse(image)?;
        }
        Ok(None)
    }

    /// The image config (Entrypoint, Cmd, Env, WorkingDir, User, StopSignal, Volumes, Labels
    /// under `.config()`) of an image by reference, ID or ID prefix; NotFound if absent.
    pub async fn image_config(&self, image: &str) -> Result<ImageConfiguration> {
        let st = self.inner.lock();
        st.find(image)
            .map(|i| i.config.clone())
            .ok_or_else(|| ImageError::NotFound {
                reference: image.to_string(),
                detail: String::new(),
            })
    }

    /// Removes an image (all its tags: CRI RemoveImage removes the image, as containerd
    /// does) by reference, ID or ID prefix, and frees layers that no other image or live
    /// rootfs uses. Idempotent: returns the removed ID, or `None` if there was no such image.
    pub async fn remove(&self, image: &str) -> Result<Option<String>> {
        let removed = {
            let mut st = self.inner.lock();
            let Some(id) = st.find(image).map(|i| i.record.id.clone()) else {
                return Ok(None);
            };
            let p = self.inner.paths.image_record(&id);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ImageError::io("remove image record", p, e)),
            }
            st.images.remove(&id);
            id
        };
        self.inner.gc().await;
        Ok(Some(removed))
    }

    /// Bytes and inodes used under the store root (one filesystem; hard links counted once
    /// within each layer, container and the rest). Unpacked layers are walked once; container
    /// directories are at most [`ImageServiceConfig::usage_max_age`] old; blobs, records and
    /// pulls in progress are walked at every call.
    pub async fn fs_info(&self) -> Result<FsUsage> {
        let inner = self.inner.clone();
        blocking(move || {
            let (bytes, inodes) = inner.usage.store(&inner.paths)?;
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0);
            Ok(FsUsage {
                mountpoint: inner.paths.root.clone(),
                used_bytes: bytes,
                inodes_used: inodes,
                timestamp_nanos: ts,
            })
        })
        .await
    }

    /// Makes the root filesystem of `container_id` from `image` (reference, ID or prefix):
    /// an overlay mount (lowerdirs = the image's layers, upper/work per container) or a
    /// copy. Returns the rootfs path. Idempotent for the same container. The image's layers
    /// stay on disk until [`ImageService::unmount_rootfs`], even if the image is removed.
    pub async fn mount_rootfs(&self, image: &str, container_id: &str) -> Result<PathBuf> {
        self.mount_rootfs_with(image, container_id, None).await
    }

    /// [`ImageService::mount_rootfs`] for a container in a user namespace: the image's layers
    /// are idmapped mounts for `idmap.userns`, so files owned by root in the image are owned
    /// by root inside. Needs the overlay rootfs (InvalidArgument in copy mode, an error if
    /// overlay is unavailable). The same container must always be mounted the same way.
    pub async fn mount_rootfs_idmapped(
        &self,
        image: &str,
        container_id: &str,
        idmap: &RootfsIdmap,
    ) -> Result<PathBuf> {
        if self.inner.config.rootfs_mode == RootfsMode::Copy {
            return Err(ImageError::InvalidArgument(format!(
                "container {container_id}: user namespaces need the overlay rootfs (rootfs mode is copy)"
            )));
        }
        self.mount_rootfs_with(image, container_id, Some(idmap.clone()))
            .await
    }

    async fn mount_rootfs_with(
        &self,
        image: &str,
        container_id: &str,
        idmap: Option<RootfsIdmap>,
    ) -> Result<PathBuf> {
        rootfs::validate_container_id(container_id)?;
        let inner = &self.inner;
        let (rec, fresh) = {
            let mut st = inner.lock();
            match st.containers.get(container_id) {
                Some(c) => (c.clone(), false),
                None => {
                    let img = st.find(image).ok_or_else(|| ImageError::NotFound {
                        reference: image.to_string(),
                        detail: String::new(),
                    })?;
                    let rec = ContainerRecord {
                        container_id: container_id.to_string(),
                        image_id: img.record.id.clone(),
                        layers: img.record.layers.clone(),
                        overlay: inner.config.rootfs_mode != RootfsMode::Copy,
                    };
                    // In the state first: that pins the layers against a concurrent GC. The
                    // files are written on the blocking pool, not under the lock.
                    st.containers.insert(container_id.to_string(), rec.clone());
                    (rec, true)
                }
            }
        };
        let paths = inner.paths.clone();
        let mode = inner.config.rootfs_mode;
        let r2 = rec.clone();
        let result = blocking(move || {
            let mut rec = r2;
            if fresh {
                let dir = paths.container(&rec.container_id);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| ImageError::io("create container dir", &dir, e))?;
                paths.save_container(&rec)?;
            }
            if rec.overlay {
                match rootfs::mount_overlay(&paths, &rec, idmap.as_ref())? {
                    Ok(p) => return Ok((p, None)),
                    Err(errno) if mode == RootfsMode::Auto && idmap.is_none() => {
                        tracing::warn!(container = %rec.container_id, %errno, "overlayfs unavailable; copying the rootfs");
                        for d in ["upper", "work", "merged"] {
                            let _ = std::fs::remove_dir(paths.container(&rec.container_id).join(d));
                        }
                        rec.overlay = false;
                        paths.save_container(&rec)?;
                    }
                    Err(errno) => {
                        return Err(ImageError::Rootfs {
                            container: rec.container_id.clone(),
                            step: "mount overlay".into(),
                            source: errno.into(),
                        })
                    }
                }
            }
            if idmap.is_some() {
                return Err(ImageError::InvalidArgument(format!(
                    "container {}: user namespaces need the overlay rootfs, it has a copy",
                    rec.container_id
                )));
            }
            let p = rootfs::make_copy(&paths, &rec)?;
            Ok((p, Some(rec)))
        })
        .await;
        match result {
            Ok((p, updated)) => {
                if let Some(u) = updated {
                    inner.lock().containers.insert(container_id.to_string(), u);
                }
                Ok(p)
            }
            Err(e) => {
                if fresh {
                    // Leave nothing behind for a container we just started to set up.
                    let _ = self.unmount_rootfs(container_id).await;
                }
                Err(e)
            }
        }
    }

    /// Path of a container's rootfs, if it has one.
    pub fn rootfs_path(&self, container_id: &str) -> Option<PathBuf> {
        let st = self.inner.lock();
        st.containers
            .get(container_id)
            .map(|c| rootfs::rootfs_path(&self.inner.paths, c))
    }

    /// Bytes (allocated blocks) and inodes in the writable layer (overlay upper dir) of
    /// `container_id`, at most [`ImageServiceConfig::usage_max_age`] old; `None` when it has
    /// none (no rootfs, or a copied one).
    pub async fn writable_layer_usage(&self, container_id: &str) -> Result<Option<(u64, u64)>> {
        rootfs::validate_container_id(container_id)?;
        let inner = self.inner.clone();
        let id = container_id.to_string();
        blocking(move || Ok(inner.usage.writable_layer(&inner.paths, &id))).await
    }

    /// Unmounts and deletes the rootfs of `container_id` (upper and work dirs included),
    /// then frees layers nothing uses any more. Idempotent.
    pub async fn unmount_rootfs(&self, container_id: &str) -> Result<()> {
        rootfs::validate_container_id(container_id)?;
        let paths = self.inner.paths.clone();
        let cid = container_id.to_string();
        blocking(move || rootfs::teardown(&paths, &cid)).await?;
        let had = self.inner.lock().containers.remove(container_id).is_some();
        if had {
            self.inner.gc().await;
        }
        Ok(())
    }
}
