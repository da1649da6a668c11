//! Disk usage of the store (ImageFsInfo) and of containers' writable layers (ContainerStats).
//!
//! Usage is allocated blocks and inodes, one filesystem, hard links counted once within each
//! walk. An unpacked layer never changes once renamed into `layers/`, so it is walked once. A
//! container's directory changes while the container runs: its figures are kept for up to
//! `max_age` (the kubelet asks every few seconds, and containerd collects the same figures on a
//! timer of 10 s), then walked again at the next request.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{ImageError, Result};
use crate::store::Paths;

/// Bytes and inodes.
pub(crate) type Usage = (u64, u64);

/// One container directory's usage when it was walked.
#[derive(Clone, Copy)]
struct ContainerUsage {
    at: Instant,
    /// The whole `containers/<id>` tree, the directory itself included.
    total: Usage,
    /// Below `upper/` (the writable layer); `None` without one (a copied rootfs).
    upper: Option<Usage>,
}

/// What was walked, kept between requests.
pub(crate) struct UsageCache {
    max_age: Duration,
    layers: Mutex<HashMap<OsString, Usage>>,
    containers: Mutex<HashMap<OsString, ContainerUsage>>,
}

impl UsageCache {
    /// Container figures are reused for up to `max_age` (zero: walked at every request).
    pub fn new(max_age: Duration) -> Self {
        UsageCache {
            max_age,
            layers: Mutex::new(HashMap::new()),
            containers: Mutex::new(HashMap::new()),
        }
    }

    /// Usage of the whole store: the root and everything but `layers/` and `containers/` walked
    /// now, each layer and container from the cache (walked when new or, for a container,
    /// older than `max_age`); entries of layers and containers gone are dropped.
    pub fn store(&self, paths: &Paths) -> Result<Usage> {
        let root = &paths.root;
        let top = std::fs::symlink_metadata(root).map_err(|e| ImageError::io("stat", root, e))?;
        let dev = top.dev();
        let (layers, containers) = (paths.layers(), paths.containers());
        let (mut bytes, mut inodes) = tree_usage(root, dev, &[&layers, &containers]);
        bytes += top.blocks() * 512;
        inodes += 1;
        let mut add = |u: Usage| {
            bytes += u.0;
            inodes += u.1;
        };
        {
            let mut kept = lock(&self.layers);
            let mut now = HashMap::with_capacity(kept.len());
            for (name, path, m) in entries(&layers, dev) {
                if !m.is_dir() {
                    add(own(&m));
                    continue;
                }
                let u = match kept.get(&name) {
                    Some(u) => *u,
                    None => plus(own(&m), tree_usage(&path, dev, &[])),
                };
                add(u);
                now.insert(name, u);
            }
            *kept = now;
        }
        let mut kept = lock(&self.containers);
        let mut now = HashMap::with_capacity(kept.len());
        for (name, path, m) in entries(&containers, dev) {
            if !m.is_dir() {
                add(own(&m));
                continue;
            }
            let u = match kept.get(&name) {
                Some(u) if u.at.elapsed() <= self.max_age => *u,
                _ => walk_container(&path, &m),
            };
            add(u.total);
            now.insert(name, u);
        }
        *kept = now;
        Ok((bytes, inodes))
    }

    /// Usage below `containers/<id>/upper`, walked again when older than `max_age`; `None`
    /// when the container has no upper dir.
    pub fn writable_layer(&self, paths: &Paths, id: &str) -> Option<Usage> {
        let dir = paths.container(id);
        let mut kept = lock(&self.containers);
        if let Some(u) = kept.get(OsString::from(id).as_os_str()) {
            if u.at.elapsed() <= self.max_age {
                return u.upper;
            }
        }
        let m = std::fs::symlink_metadata(&dir).ok()?;
        let u = walk_container(&dir, &m);
        kept.insert(id.into(), u);
        u.upper
    }
}

/// Walks one container directory (`m` is its metadata).
fn walk_container(dir: &Path, m: &std::fs::Metadata) -> ContainerUsage {
    let upper = dir.join("upper");
    let upper_usage = match std::fs::symlink_metadata(&upper) {
        Ok(um) if um.is_dir() && um.dev() == m.dev() => Some(tree_usage(&upper, m.dev(), &[])),
        _ => None,
    };
    // the rest counts upper/ itself but does not descend into it
    let rest = tree_usage(dir, m.dev(), &[&upper]);
    ContainerUsage {
        at: Instant::now(),
        total: plus(plus(own(m), rest), upper_usage.unwrap_or((0, 0))),
        upper: upper_usage,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Only sums are kept: a panic mid-update leaves usable (at worst stale) figures.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn own(m: &std::fs::Metadata) -> Usage {
    (m.blocks() * 512, 1)
}

fn plus(a: Usage, b: Usage) -> Usage {
    (a.0 + b.0, a.1 + b.1)
}

/// Entries of `dir` on device `dev`: name, path, metadata (not following symlinks).
fn entries(
    dir: &Path,
    dev: u64,
) -> impl Iterator<Item = (OsString, std::path::PathBuf, std::fs::Metadata)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(move |e| {
            let m = e.metadata().ok()?;
            (m.dev() == dev).then(|| (e.file_name(), e.path(), m))
        })
}

/// Bytes (allocated blocks) and inodes below `root` (not counting `root` itself), staying on
/// device `dev`, hard links counted once; directories in `skip` are counted but not entered.
pub(crate) fn tree_usage(root: &Path, dev: u64, skip: &[&Path]) -> Usage {
    let mut seen = HashSet::new();
    let mut bytes = 0u64;
    let mut inodes = 0u64;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for (_, path, m) in entries(&dir, dev) {
            if seen.insert(m.ino()) {
                bytes += m.blocks() * 512;
                inodes += 1;
            }
            if m.is_dir() && !skip.contains(&path.as_path()) {
                stack.push(path);
            }
        }
    }
    (bytes, inodes)
}
