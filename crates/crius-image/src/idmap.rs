//! Idmapped layers for containers in a user namespace.
//!
//! Image files owned by root must look owned by root to a container whose root is host UID
//! (say) 1000. Instead of chowning a copy, each lower layer of the container's overlay is an
//! idmapped mount (`open_tree(OPEN_TREE_CLONE)` + `mount_setattr(MOUNT_ATTR_IDMAP)` with the
//! pod's user namespace + `move_mount`) under `containers/<id>/idmap/<n>`: through it host ID
//! `i` shows as the ID that `i` has inside the namespace shifted to the host, i.e. 0 → 1000.
//! The overlay's upper layer stays a plain directory owned by the mapped root, so files the
//! container creates or copies up are stored with their host IDs. (Linux refuses to idmap an
//! overlay mount itself, but takes idmapped lower layers since 5.19.)
//!
//! The layer mounts are detached and their mount points removed with `rmdir` only, before the
//! container directory is deleted: a still-mounted layer can never be deleted through them.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use rustix::fs::CWD;
use rustix::mount::{self as rmount, MoveMountFlags, OpenTreeFlags, UnmountFlags};

/// The directory (under a container's directory) holding its idmapped layer mounts.
pub(crate) const IDMAP_DIR: &str = "idmap";

/// How to map a container's rootfs: the pod's user namespace and the host IDs of its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsIdmap {
    /// The user namespace file (a pinned `/proc/<pid>/ns/user`).
    pub userns: PathBuf,
    /// Host UID of the namespace's root (owner of the writable layer).
    pub root_uid: u32,
    /// Host GID of the namespace's root.
    pub root_gid: u32,
}

/// `MOUNT_ATTR_IDMAP` of `<linux/mount.h>`.
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` of `<linux/mount.h>` (version 0, 32 bytes).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Applies the idmapping of the user namespace `userns` to the detached mount `tree`.
fn set_idmap(tree: &impl AsFd, userns: &File) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: u64::from(userns.as_raw_fd().unsigned_abs()),
    };
    // SAFETY: mount_setattr(2) reads `size_of::<MountAttr>()` bytes from the valid `attr`, and
    // the empty C string path; both outlive the call. It only changes the mount behind `tree`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_fd().as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn open_userns(userns: &Path) -> io::Result<File> {
    File::open(userns)
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", userns.display())))
}

/// Mounts an idmapped view of `src` on `dst` (an existing empty directory).
pub(crate) fn mount_idmapped(src: &Path, dst: &Path, userns: &File) -> io::Result<()> {
    let tree = rmount::open_tree(
        CWD,
        src,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(|e| io::Error::new(e.kind(), format!("open_tree {}: {e}", src.display())))?;
    set_idmap(&tree, userns).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("idmap the mount of {}: {e}", src.display()),
        )
    })?;
    rmount::move_mount(
        &tree,
        c"",
        CWD,
        dst,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| io::Error::new(e.kind(), format!("move_mount onto {}: {e}", dst.display())))
}

/// Makes `<dir>/idmap/<n>` an idmapped mount of `layers[n]` each; returns those paths.
/// On error the mounts made so far are undone.
pub(crate) fn mount_layers(
    dir: &Path,
    layers: &[PathBuf],
    idmap: &RootfsIdmap,
) -> io::Result<Vec<PathBuf>> {
    let userns = open_userns(&idmap.userns)?;
    let base = dir.join(IDMAP_DIR);
    let mut out = Vec::with_capacity(layers.len());
    let res = (|| {
        std::fs::create_dir_all(&base)?;
        for (i, layer) in layers.iter().enumerate() {
            let dst = base.join(i.to_string());
            match std::fs::create_dir(&dst) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            // A leftover from an interrupted attempt: start from an empty mount point.
            detach(&dst)?;
            mount_idmapped(layer, &dst, &userns)?;
            out.push(dst);
        }
        Ok(())
    })();
    match res {
        Ok(()) => Ok(out),
        Err(e) => {
            if let Err(u) = unmount_layers(dir) {
                tracing::warn!(dir = %dir.display(), error = %u, "undo idmapped layer mounts");
            }
            Err(e)
        }
    }
}

/// Detaches whatever is mounted on `p` (repeatedly); not mounted or missing is fine.
fn detach(p: &Path) -> io::Result<()> {
    for _ in 0..16 {
        match rmount::unmount(p, UnmountFlags::DETACH) {
            Ok(()) => continue,
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Unmounts `<dir>/idmap/*` and removes those mount points with `rmdir` (never recursively,
/// so a layer still mounted there is never deleted), then `<dir>/idmap`. Idempotent.
pub(crate) fn unmount_layers(dir: &Path) -> io::Result<()> {
    let base = dir.join(IDMAP_DIR);
    let entries = match std::fs::read_dir(&base) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for ent in entries {
        let p = ent?.path();
        detach(&p)?;
        std::fs::remove_dir(&p)
            .map_err(|e| io::Error::new(e.kind(), format!("remove {}: {e}", p.display())))?;
    }
    std::fs::remove_dir(&base)
        .map_err(|e| io::Error::new(e.kind(), format!("remove {}: {e}", base.display())))
}

/// Whether the filesystem of `path` takes idmapped mounts with the user namespace `userns`
/// (the probe critest runs): an idmapped clone of `path` is made and dropped, never attached.
pub fn idmap_supported(path: &Path, userns: &Path) -> io::Result<()> {
    let userns = open_userns(userns)?;
    let tree = rmount::open_tree(
        CWD,
        path,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )?;
    set_idmap(&tree, &userns)
}
