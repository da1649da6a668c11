//! The pod's cgroup parent directories: which ones a pod's containers will make (so that the
//! pod owns them), and their removal with the pod.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Where the cgroup hierarchies are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The mounted hierarchies under `root`: every real directory (symlinks such as `cpu` ->
/// `cpu,cpuacct` are aliases and left out).
fn hierarchies(root: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// The directories of `parent` (a cgroupfs path such as `/a/b`) that do not exist yet in any
/// hierarchy under `root` and are not `shared` or one of its ancestors (the daemon's default
/// parent, used by every pod). With no v1 hierarchies (pure v2) `root` itself is the tree.
pub fn missing_dirs(root: &Path, parent: &str, shared: &str) -> Vec<PathBuf> {
    let rel = Path::new(parent.trim_start_matches('/'));
    let shared = Path::new(shared.trim_start_matches('/'));
    let mut roots = hierarchies(root);
    if root.join("cgroup.controllers").exists() {
        roots = vec![root.to_path_buf()];
    }
    let mut out = Vec::new();
    for h in roots {
        let mut cur = PathBuf::new();
        for comp in rel.components() {
            cur.push(comp);
            if shared.starts_with(&cur) {
                continue;
            }
            let dir = h.join(&cur);
            if !dir.exists() {
                out.push(dir);
            }
        }
    }
    out
}

/// Removes `dirs` (deepest first). Missing ones are fine; the others that cannot be removed
/// (EBUSY: still holding a cgroup) are logged and returned.
pub fn remove_dirs(dirs: &[PathBuf]) -> Vec<(PathBuf, std::io::Error)> {
    let mut sorted: Vec<&PathBuf> = dirs.iter().collect();
    sorted.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    let mut failed = Vec::new();
    for d in sorted {
        match rmdir_settled(d) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(dir = %d.display(), error = %e, "cannot remove pod cgroup directory");
                failed.push((d.clone(), e));
            }
        }
    }
    failed
}

/// Whether `d` holds a child directory (a live child cgroup: waiting will not help).
fn has_child_dir(d: &Path) -> bool {
    std::fs::read_dir(d)
        .map(|rd| {
            rd.flatten()
                .any(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        })
        .unwrap_or(false)
}

/// rmdir that gives the kernel a moment when an empty cgroup is still busy (its last task
/// exiting, or a just-removed child being released): up to 10 tries 10 ms apart.
fn rmdir_settled(d: &Path) -> std::io::Result<()> {
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(d) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 10 && !has_child_dir(d) => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_dirs_skips_existing_and_shared() {
        let t = tempfile::tempdir().expect("tmp");
        let root = t.path();
        for h in ["memory", "pids/a"] {
            std::fs::create_dir_all(root.join(h)).expect("mkdir");
        }
        std::os::unix::fs::symlink(root.join("memory"), root.join("mem")).expect("symlink");
        let mut got = missing_dirs(root, "/a/b", "/");
        got.sort();
        let want = [
            root.join("memory/a"),
            root.join("memory/a/b"),
            root.join("pids/a/b"),
        ];
        assert_eq!(got, want);
        // The daemon's shared parent and its ancestors are never the pod's.
        let mut got = missing_dirs(root, "/a/b/c", "/a/b");
        got.sort();
        assert_eq!(got, [root.join("memory/a/b/c"), root.join("pids/a/b/c")]);
    }

    #[test]
    fn remove_dirs_deepest_first_tolerating_missing_and_reporting_busy() {
        let t = tempfile::tempdir().expect("tmp");
        let a = t.path().join("a");
        let ab = a.join("b");
        std::fs::create_dir_all(&ab).expect("mkdir");
        let gone = t.path().join("gone");
        assert!(remove_dirs(&[a.clone(), ab.clone(), gone]).is_empty());
        assert!(!a.exists());
        // A directory with content stays and is reported.
        std::fs::create_dir_all(ab.join("c")).expect("mkdir");
        let failed = remove_dirs(std::slice::from_ref(&ab));
        assert_eq!(failed.len(), 1);
        assert!(ab.exists());
    }
}
