//! Container root filesystems: overlayfs mounts over the image's layers, or a copy.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{self as rfs, Mode};
use rustix::io::Errno;
use rustix::mount::{self as rmount, MountFlags, UnmountFlags};

use crate::error::{ImageError, Result};
use crate::store::{ContainerRecord, Paths};
use crate::unpack::OPAQUE_XATTR;

/// Longest mount data the kernel takes (one page, with its NUL).
const MAX_MOUNT_DATA: usize = 4095;

fn rootfs_err(c: &str, step: impl Into<String>, e: impl Into<std::io::Error>) -> ImageError {
    ImageError::Rootfs {
        container: c.to_string(),
        step: step.into(),
        source: e.into(),
    }
}

/// Checks a container ID is usable as a directory name.
pub(crate) fn validate_container_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id == "."
        || id == ".."
        || id.len() > 255
        || id.contains('/')
        || id.contains('\0')
    {
        return Err(ImageError::InvalidArgument(format!(
            "invalid container id {id:?}"
        )));
    }
    Ok(())
}

/// Where the rootfs of a container is.
pub(crate) fn rootfs_path(paths: &Paths, c: &ContainerRecord) -> PathBuf {
    let dir = paths.container(&c.container_id);
    if c.overlay {
        dir.join("merged")
    } else {
        dir.join("rootfs")
    }
}

/// Whether `p` is a mount point (its device differs from its parent's).
pub(crate) fn is_mounted(p: &Path) -> bool {
    let (Ok(a), Some(Ok(b))) = (
        std::fs::symlink_metadata(p),
        p.parent().map(std::fs::symlink_metadata),
    ) else {
        return false;
    };
    a.dev() != b.dev() || a.ino() == b.ino()
}

/// Makes sure `l/<short>` points at the layer's diff dir.
fn ensure_short_link(paths: &Paths, chain_id: &str) -> std::io::Result<PathBuf> {
    let link = paths.short_link(chain_id);
    let target = PathBuf::from("..")
        .join("layers")
        .join(crate::store::hex_of(chain_id))
        .join("diff");
    match std::fs::read_link(&link) {
        Ok(t) if t == target => return Ok(link),
        Ok(_) => std::fs::remove_file(&link)?,
        Err(_) => {}
    }
    match std::os::unix::fs::symlink(&target, &link) {
        Ok(()) => Ok(link),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(link),
        Err(e) => Err(e),
    }
}

/// Mounts the overlay of `c` (creating upper/work/merged). Returns ENODEV-style errors as
/// `Err(Errno)` so the caller can fall back to copying. With `idmap` the lower layers are
/// idmapped mounts for the pod's user namespace and the upper dir belongs to its root.
pub(crate) fn mount_overlay(
    paths: &Paths,
    c: &ContainerRecord,
    idmap: Option<&crate::idmap::RootfsIdmap>,
) -> Result<std::result::Result<PathBuf, Errno>> {
    let cid = &c.container_id;
    let dir = paths.container(cid);
    let merged = dir.join("merged");
    for d in ["upper", "work", "merged"] {
        let p = dir.join(d);
        std::fs::create_dir_all(&p)
            .map_err(|e| rootfs_err(cid, format!("create {}", p.display()), e))?;
    }
    if is_mounted(&merged) {
        return Ok(Ok(merged));
    }
    std::fs::set_permissions(dir.join("upper"), std::fs::Permissions::from_mode(0o755))
        .map_err(|e| rootfs_err(cid, "chmod upper", e))?;
    let mut lowers = Vec::new();
    for chain in c.layers.iter().rev() {
        let link =
            ensure_short_link(paths, chain).map_err(|e| rootfs_err(cid, "create layer link", e))?;
        lowers.push(link);
    }
    if lowers.is_empty() {
        lowers.push(paths.empty_dir());
    }
    if let Some(m) = idmap {
        std::os::unix::fs::chown(dir.join("upper"), Some(m.root_uid), Some(m.root_gid))
            .map_err(|e| rootfs_err(cid, "chown upper to the user namespace's root", e))?;
        lowers = crate::idmap::mount_layers(&dir, &lowers, m)
            .map_err(|e| rootfs_err(cid, "idmap the image layers", e))?;
    }
    let res = mount_overlay_on(paths, c, &lowers, idmap.is_some());
    if idmap.is_some() && !matches!(res, Ok(Ok(_))) {
        if let Err(e) = crate::idmap::unmount_layers(&dir) {
            tracing::warn!(container = %cid, error = %e, "undo idmapped layer mounts");
        }
    }
    res
}

/// Mounts overlay on `merged` with `lowers` (top first). `idmapped`: the lowers are
/// `idmap/<n>` under the container's directory, not the store's short links.
fn mount_overlay_on(
    paths: &Paths,
    c: &ContainerRecord,
    lowers: &[PathBuf],
    idmapped: bool,
) -> Result<std::result::Result<PathBuf, Errno>> {
    let dir = paths.container(&c.container_id);
    // A remount after a host crash: overlay refuses an upper that was used `volatile` until its
    // marker is gone. The container's writable layer is scratch space (it never outlives a
    // reboot in a way the kubelet relies on), so the marker is dropped rather than the mount.
    let marker = dir.join("work/work/incompat/volatile");
    if marker.exists() {
        tracing::warn!(container = %c.container_id, "remounting a rootfs last mounted volatile");
        let _ = std::fs::remove_dir_all(&marker);
    }
    if VOLATILE.load(Ordering::Relaxed) {
        match mount_overlay_with(paths, c, lowers, idmapped, ",volatile") {
            Ok(Err(Errno::INVAL)) => {
                // A kernel before 5.10 has no `volatile`: mount without it from now on.
                VOLATILE.store(false, Ordering::Relaxed);
            }
            other => return other,
        }
    }
    mount_overlay_with(paths, c, lowers, idmapped, "")
}

/// Whether overlay takes the `volatile` option (Linux 5.10+): the container's upper dir is then
/// never synced, so unmounting it does not wait for the whole upper filesystem's dirty data
/// (seen here: RemoveContainer waiting 1 to 11 s in `umount2` while other work wrote to the disk).
static VOLATILE: AtomicBool = AtomicBool::new(true);

/// One overlay mount attempt with `extra` appended to the options.
fn mount_overlay_with(
    paths: &Paths,
    c: &ContainerRecord,
    lowers: &[PathBuf],
    idmapped: bool,
    extra: &str,
) -> Result<std::result::Result<PathBuf, Errno>> {
    let cid = &c.container_id;
    let dir = paths.container(cid);
    let merged = dir.join("merged");
    let abs_lower = lowers
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let data = format!(
        "lowerdir={abs_lower},upperdir={},workdir={}{extra}",
        dir.join("upper").display(),
        dir.join("work").display()
    );
    if data.len() <= MAX_MOUNT_DATA {
        let cdata = CString::new(data)
            .map_err(|e| rootfs_err(cid, "mount data", std::io::Error::other(e)))?;
        return match rmount::mount(
            "overlay",
            &merged,
            "overlay",
            MountFlags::empty(),
            cdata.as_c_str(),
        ) {
            Ok(()) => Ok(Ok(merged)),
            // No overlayfs, or one that refuses this upper filesystem (e.g. overlay on overlay).
            Err(e @ (Errno::NODEV | Errno::NOSYS | Errno::INVAL)) => Ok(Err(e)),
            Err(e) => Err(rootfs_err(cid, "mount overlay", e)),
        };
    }
    // Too long for one page: relative paths, in a child process whose working directory is
    // the store root (our own cwd is shared by all threads), or the container's directory for
    // idmapped lowers (which live there).
    let (cwd, rel_lower, rel_dir) = if idmapped {
        let lower = (0..lowers.len())
            .map(|i| format!("{}/{i}", crate::idmap::IDMAP_DIR))
            .collect::<Vec<_>>()
            .join(":");
        (dir.clone(), lower, PathBuf::new())
    } else {
        let lower = c
            .layers
            .iter()
            .rev()
            .map(|ch| format!("l/{}", crate::store::short_id(ch)))
            .collect::<Vec<_>>()
            .join(":");
        (
            paths.root.clone(),
            lower,
            PathBuf::from("containers").join(cid),
        )
    };
    let data = format!(
        "lowerdir={rel_lower},upperdir={},workdir={}{extra}",
        rel_dir.join("upper").display(),
        rel_dir.join("work").display()
    );
    if data.len() > MAX_MOUNT_DATA {
        return Err(rootfs_err(
            cid,
            format!(
                "overlay options for {} layers exceed a page",
                c.layers.len()
            ),
            std::io::Error::from_raw_os_error(libc::E2BIG),
        ));
    }
    let out = std::process::Command::new("mount")
        .current_dir(&cwd)
        .args(["-t", "overlay", "overlay", "-o", &data])
        .arg(&merged)
        .output()
        .map_err(|e| rootfs_err(cid, "run mount", e))?;
    if !out.status.success() && !extra.is_empty() {
        // mount(8) gives no errno: let the caller retry without the extra option, which then
        // reports the real failure.
        return Ok(Err(Errno::INVAL));
    }
    if !out.status.success() {
        return Err(rootfs_err(
            cid,
            "mount overlay (relative lowerdirs)",
            std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        ));
    }
    Ok(Ok(merged))
}

/// Unmounts (if mounted) and deletes the container's directory.
pub(crate) fn teardown(paths: &Paths, cid: &str) -> Result<()> {
    let dir = paths.container(cid);
    let merged = dir.join("merged");
    if is_mounted(&merged) {
        match rmount::unmount(&merged, UnmountFlags::empty()) {
            Ok(()) | Err(Errno::INVAL) | Err(Errno::NOENT) => {}
            Err(Errno::BUSY) => rmount::unmount(&merged, UnmountFlags::DETACH)
                .map_err(|e| rootfs_err(cid, "unmount (detach)", e))?,
            Err(e) => return Err(rootfs_err(cid, "unmount", e)),
        }
        if is_mounted(&merged) {
            return Err(rootfs_err(
                cid,
                "unmount",
                std::io::Error::other("still mounted"),
            ));
        }
    }
    crate::idmap::unmount_layers(&dir)
        .map_err(|e| rootfs_err(cid, "unmount idmapped layers", e))?;
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(rootfs_err(cid, format!("remove {}", dir.display()), e)),
    }
}

/// Builds a copy rootfs for `c` (layers applied bottom-up, whiteouts honoured).
pub(crate) fn make_copy(paths: &Paths, c: &ContainerRecord) -> Result<PathBuf> {
    let cid = &c.container_id;
    let dir = paths.container(cid);
    let rootfs = dir.join("rootfs");
    if dir.join("rootfs.complete").exists() {
        return Ok(rootfs);
    }
    let building = dir.join("rootfs.partial");
    if building.exists() {
        std::fs::remove_dir_all(&building)
            .map_err(|e| rootfs_err(cid, "remove partial copy", e))?;
    }
    std::fs::create_dir_all(&building).map_err(|e| rootfs_err(cid, "create rootfs", e))?;
    std::fs::set_permissions(&building, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| rootfs_err(cid, "chmod rootfs", e))?;
    for chain in &c.layers {
        let src = paths.layer_diff(chain);
        let mut links = HashMap::new();
        copy_dir(&src, &building, &mut links)
            .map_err(|e| rootfs_err(cid, format!("copy layer {chain}"), e))?;
    }
    let _ = std::fs::remove_dir_all(&rootfs);
    std::fs::rename(&building, &rootfs).map_err(|e| rootfs_err(cid, "rename rootfs", e))?;
    std::fs::write(dir.join("rootfs.complete"), b"")
        .map_err(|e| rootfs_err(cid, "mark rootfs", e))?;
    Ok(rootfs)
}

fn remove_any(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
    }
}

fn set_meta(p: &Path, m: &std::fs::Metadata, is_link: bool) -> std::io::Result<()> {
    std::os::unix::fs::lchown(p, Some(m.uid()), Some(m.gid()))?;
    if !is_link {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
    }
    let t = rfs::Timespec {
        tv_sec: m.mtime(),
        tv_nsec: m.mtime_nsec(),
    };
    rfs::utimensat(
        rfs::CWD,
        p,
        &rfs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rfs::AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// Copies one layer's directory `src` onto `dst` (an existing real directory).
fn copy_dir(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> std::io::Result<()> {
    for ent in std::fs::read_dir(src)? {
        let ent = ent?;
        let s = ent.path();
        let d = dst.join(ent.file_name());
        let m = std::fs::symlink_metadata(&s)?;
        let ft = m.file_type();
        if ft.is_char_device() && m.rdev() == 0 {
            remove_any(&d)?;
            continue;
        }
        if ft.is_dir() {
            let existing = std::fs::symlink_metadata(&d).ok();
            let opaque = matches!(xattr_get(&s, OPAQUE_XATTR), Some(v) if v == b"y");
            match existing {
                Some(em) if em.is_dir() && !opaque => {}
                _ => {
                    remove_any(&d)?;
                    std::fs::create_dir(&d)?;
                }
            }
            copy_dir(&s, &d, links)?;
            set_meta(&d, &m, false)?;
            continue;
        }
        remove_any(&d)?;
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&s)?, &d)?;
            set_meta(&d, &m, true)?;
        } else if ft.is_file() {
            if m.nlink() > 1 {
                if let Some(first) = links.get(&(m.dev(), m.ino())) {
                    std::fs::hard_link(first, &d)?;
                    continue;
                }
                links.insert((m.dev(), m.ino()), d.clone());
            }
            std::fs::copy(&s, &d)?;
            set_meta(&d, &m, false)?;
        } else {
            let ftype = if ft.is_char_device() {
                rfs::FileType::CharacterDevice
            } else if ft.is_block_device() {
                rfs::FileType::BlockDevice
            } else if ft.is_fifo() {
                rfs::FileType::Fifo
            } else {
                continue; // sockets are not content
            };
            rfs::mknodat(
                rfs::CWD,
                &d,
                ftype,
                Mode::from_raw_mode(m.mode() & 0o777),
                m.rdev(),
            )?;
            set_meta(&d, &m, false)?;
        }
    }
    Ok(())
}

fn xattr_get(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = [0u8; 8];
    match rfs::lgetxattr(p, name, &mut buf[..]) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}
