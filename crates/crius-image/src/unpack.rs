//! Safe unpacking of a layer tarball into an empty directory, in overlayfs form.
//!
//! Every path is resolved inside the layer root with `openat2(RESOLVE_BENEATH)`, so no
//! `..`, absolute path, symlink or hard link can make us write outside it: such entries are
//! refused with [`ImageError::HostileLayer`] naming the entry. Whiteouts become overlayfs
//! whiteouts (char device 0/0) and opaque markers become `trusted.overlay.opaque=y`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{
    self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags,
};
use rustix::io::Errno;
use tar::EntryType;

use crate::error::{ImageError, Result};

/// Overlayfs opaque-directory xattr.
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// What an unpack wrote.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct UnpackStats {
    /// Sum of regular file sizes.
    pub bytes: u64,
    /// Number of entries created.
    pub inodes: u64,
}

struct DirMeta {
    path: Vec<u8>,
    mode: u32,
    mtime: i64,
}

struct Unpacker<'a> {
    root: OwnedFd,
    layer: &'a str,
    entry: String,
    dirs: Vec<DirMeta>,
    stats: UnpackStats,
    xattr_warned: bool,
    /// Parent directories of recent entries (path -> `O_PATH` fd opened beneath the root):
    /// entries of a tar mostly share a few. Emptied whenever an entry removes anything (a
    /// removed name may have been on one of these paths) and when it holds [`PARENT_CACHE`].
    parents: HashMap<Vec<u8>, Rc<OwnedFd>>,
    /// Copy buffer for file contents.
    buf: Vec<u8>,
}

/// Most parent directory fds kept open at once.
const PARENT_CACHE: usize = 64;

/// Size of the copy buffer: large writes, few syscalls.
const COPY_BUF: usize = 256 * 1024;

/// Unpacks the (uncompressed) tar stream `reader` into the existing empty directory `dest`.
/// `layer` names the layer in errors.
pub(crate) fn unpack_layer<R: Read>(reader: R, dest: &Path, layer: &str) -> Result<UnpackStats> {
    let root = rfs::open(
        dest,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ImageError::io("open layer dir", dest, e.into()))?;
    let mut u = Unpacker {
        root,
        layer,
        entry: String::new(),
        dirs: Vec::new(),
        stats: UnpackStats::default(),
        xattr_warned: false,
        parents: HashMap::new(),
        buf: vec![0; COPY_BUF],
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| u.bad_tar(format!("read tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| u.bad_tar(format!("read tar entry: {e}")))?;
        u.entry = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        u.one(&mut entry)?;
    }
    u.finish_dirs()?;
    Ok(u.stats)
}

/// Splits a tar path into its components; refuses absolute paths and `..`.
fn clean_components(raw: &[u8]) -> std::result::Result<Vec<&[u8]>, String> {
    if raw.first() == Some(&b'/') {
        return Err("absolute path".into());
    }
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path has a \"..\" component".into()),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn join(components: &[&[u8]]) -> Vec<u8> {
    if components.is_empty() {
        return b".".to_vec();
    }
    components.join(&b'/')
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

impl Unpacker<'_> {
    fn hostile(&self, reason: impl Into<String>) -> ImageError {
        ImageError::HostileLayer {
            layer: self.layer.to_string(),
            entry: self.entry.clone(),
            reason: reason.into(),
        }
    }

    fn bad_tar(&self, reason: String) -> ImageError {
        ImageError::HostileLayer {
            layer: self.layer.to_string(),
            entry: self.entry.clone(),
            reason,
        }
    }

    fn fs_err(&self, step: &str, e: impl Into<io::Error>) -> ImageError {
        let e: io::Error = e.into();
        ImageError::HostileLayer {
            layer: self.layer.to_string(),
            entry: self.entry.clone(),
            reason: format!("{step}: {e}"),
        }
    }

    /// Opens directory `rel` (components) beneath the root; symlinks may be followed only
    /// while they stay inside. Creates missing directories when `create` is set.
    fn open_dir(&self, comps: &[&[u8]], flags: OFlags, create: bool) -> Result<OwnedFd> {
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        let oflags = flags | OFlags::DIRECTORY | OFlags::CLOEXEC;
        match rfs::openat2(&self.root, os(&join(comps)), oflags, Mode::empty(), resolve) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) if create => {}
            Err(e) => return Err(self.resolve_err(e)),
        }
        // Walk and create what is missing.
        for i in 1..=comps.len() {
            let prefix = join(&comps[..i]);
            match rfs::openat2(
                &self.root,
                os(&prefix),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                resolve,
            ) {
                Ok(_) => continue,
                Err(Errno::NOENT) => {
                    let parent = self.open_dir(&comps[..i - 1], OFlags::PATH, false)?;
                    match rfs::mkdirat(&parent, os(comps[i - 1]), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(self.fs_err("create parent directory", e)),
                    }
                }
                Err(e) => return Err(self.resolve_err(e)),
            }
        }
        rfs::openat2(&self.root, os(&join(comps)), oflags, Mode::empty(), resolve)
            .map_err(|e| self.resolve_err(e))
    }

    /// [`Self::open_dir`] with `O_PATH`, creating what is missing, through the cache.
    fn parent_dir(&mut self, comps: &[&[u8]]) -> Result<Rc<OwnedFd>> {
        let key = join(comps);
        if let Some(fd) = self.parents.get(&key) {
            return Ok(fd.clone());
        }
        let fd = Rc::new(self.open_dir(comps, OFlags::PATH, true)?);
        if self.parents.len() >= PARENT_CACHE {
            self.parents.clear();
        }
        self.parents.insert(key, fd.clone());
        Ok(fd)
    }

    fn resolve_err(&self, e: Errno) -> ImageError {
        match e {
            Errno::XDEV => self.hostile("path leads outside the layer (through a symlink or ..)"),
            Errno::NOTDIR => self.hostile("a parent path component is not a directory"),
            Errno::LOOP => self.hostile("too many symlinks in path"),
            e => self.fs_err("resolve parent", e),
        }
    }

    /// Removes whatever is at `name` in `parent`, unless it is a directory and `keep_dir`.
    /// Returns true when a directory was kept.
    fn clear(&mut self, parent: &OwnedFd, name: &[u8], keep_dir: bool) -> Result<bool> {
        match rfs::statat(parent, os(name), AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(self.fs_err("stat existing", e)),
            Ok(st) => {
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    if keep_dir {
                        return Ok(true);
                    }
                    self.parents.clear();
                    remove_tree_at(parent.as_fd(), name)
                        .map_err(|e| self.fs_err("remove existing directory", e))?;
                } else {
                    self.parents.clear();
                    rfs::unlinkat(parent, os(name), AtFlags::empty())
                        .map_err(|e| self.fs_err("remove existing", e))?;
                }
                Ok(false)
            }
        }
    }

    fn one<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let comps = clean_components(&raw).map_err(|r| self.hostile(r))?;
        let Some((&name, parent_comps)) = comps.split_last() else {
            // The layer root itself ("./"): nothing to create.
            return Ok(());
        };
        let name_str = String::from_utf8_lossy(name);

        // Whiteouts.
        if let Some(target) = name_str.strip_prefix(WHITEOUT_PREFIX) {
            if name_str == OPAQUE_MARKER {
                let dir = self.open_dir(parent_comps, OFlags::RDONLY, true)?;
                rfs::fsetxattr(&dir, OPAQUE_XATTR, b"y", XattrFlags::empty())
                    .map_err(|e| self.fs_err("set opaque xattr", e))?;
                return Ok(());
            }
            if target.starts_with(".wh.") {
                // Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not content.
                return Ok(());
            }
            if target.is_empty() || target == "." || target == ".." || target.contains('/') {
                return Err(self.hostile(format!("whiteout of {target:?}")));
            }
            let parent = self.parent_dir(parent_comps)?;
            self.clear(&parent, target.as_bytes(), false)?;
            rfs::mknodat(
                &parent,
                target,
                FileType::CharacterDevice,
                Mode::empty(),
                rfs::makedev(0, 0),
            )
            .map_err(|e| self.fs_err("create whiteout", e))?;
            self.stats.inodes += 1;
            return Ok(());
        }

        let xattrs = pax_xattrs(entry).map_err(|e| self.fs_err("read pax headers", e))?;
        let header = entry.header().clone();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let uid = header.uid().unwrap_or(0) as u32;
        let gid = header.gid().unwrap_or(0) as u32;
        let mtime = header.mtime().unwrap_or(0) as i64;
        let owner = (Some(rfs::Uid::from_raw(uid)), Some(rfs::Gid::from_raw(gid)));
        let times = Timestamps {
            last_access: Timespec {
                tv_sec: mtime,
                tv_nsec: 0,
            },
            last_modification: Timespec {
                tv_sec: mtime,
                tv_nsec: 0,
            },
        };
        let parent = self.parent_dir(parent_comps)?;
        self.stats.inodes += 1;

        match kind {
            EntryType::Directory => {
                // Create first; only a name already taken needs a look (and maybe a removal).
                match rfs::mkdirat(&parent, os(name), Mode::from_raw_mode(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        if !self.clear(&parent, name, true)? {
                            rfs::mkdirat(&parent, os(name), Mode::from_raw_mode(0o700))
                                .map_err(|e| self.fs_err("mkdir", e))?;
                        }
                    }
                    Err(e) => return Err(self.fs_err("mkdir", e)),
                }
                rfs::chownat(
                    &parent,
                    os(name),
                    owner.0,
                    owner.1,
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| self.fs_err("chown", e))?;
                if !xattrs.is_empty() {
                    let fd = rfs::openat(
                        &parent,
                        os(name),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| self.fs_err("open dir", e))?;
                    for (k, v) in &xattrs {
                        self.set_xattr(rfs::fsetxattr(&fd, os(k), v, XattrFlags::empty()), k)?;
                    }
                }
                self.dirs.push(DirMeta {
                    path: join(&comps),
                    mode,
                    mtime,
                });
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                // O_CREAT | O_EXCL never follows a symlink and fails on any existing name:
                // only then is the old entry looked at and removed.
                let create = |parent: &OwnedFd| {
                    rfs::openat(
                        parent,
                        os(name),
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                };
                let fd = match create(&parent) {
                    Ok(fd) => fd,
                    Err(Errno::EXIST) => {
                        self.clear(&parent, name, false)?;
                        create(&parent).map_err(|e| self.fs_err("create file", e))?
                    }
                    Err(e) => return Err(self.fs_err("create file", e)),
                };
                let mut file = std::fs::File::from(fd);
                let n = self.copy_to(entry, &mut file)?;
                self.stats.bytes += n;
                rfs::fchown(&file, owner.0, owner.1).map_err(|e| self.fs_err("chown", e))?;
                for (k, v) in &xattrs {
                    self.set_xattr(rfs::fsetxattr(&file, os(k), v, XattrFlags::empty()), k)?;
                }
                rfs::fchmod(&file, Mode::from_raw_mode(mode))
                    .map_err(|e| self.fs_err("chmod", e))?;
                rfs::futimens(&file, &times).map_err(|e| self.fs_err("set times", e))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.hostile("symlink without target"))?
                    .into_owned();
                self.clear(&parent, name, false)?;
                rfs::symlinkat(os(&target), &parent, os(name))
                    .map_err(|e| self.fs_err("symlink", e))?;
                rfs::chownat(
                    &parent,
                    os(name),
                    owner.0,
                    owner.1,
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| self.fs_err("chown", e))?;
                self.set_path_xattrs(&parent, name, &xattrs)?;
                rfs::utimensat(&parent, os(name), &times, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| self.fs_err("set times", e))?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.hostile("hard link without target"))?
                    .into_owned();
                let tcomps = clean_components(&target)
                    .map_err(|r| self.hostile(format!("hard link target: {r}")))?;
                let Some((&tname, tparent_comps)) = tcomps.split_last() else {
                    return Err(self.hostile("hard link to the layer root"));
                };
                let tparent = self.open_dir(tparent_comps, OFlags::PATH, false)?;
                let st = rfs::statat(&tparent, os(tname), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| self.fs_err("hard link target", e))?;
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    return Err(self.hostile("hard link to a directory"));
                }
                if join(&tcomps) == join(&comps) {
                    return Ok(());
                }
                self.clear(&parent, name, false)?;
                rfs::linkat(&tparent, os(tname), &parent, os(name), AtFlags::empty())
                    .map_err(|e| self.fs_err("hard link", e))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let ft = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                self.clear(&parent, name, false)?;
                rfs::mknodat(
                    &parent,
                    os(name),
                    ft,
                    Mode::from_raw_mode(mode & 0o777),
                    rfs::makedev(major, minor),
                )
                .map_err(|e| self.fs_err("mknod", e))?;
                rfs::chownat(
                    &parent,
                    os(name),
                    owner.0,
                    owner.1,
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| self.fs_err("chown", e))?;
                rfs::chmodat(
                    &parent,
                    os(name),
                    Mode::from_raw_mode(mode),
                    AtFlags::empty(),
                )
                .map_err(|e| self.fs_err("chmod", e))?;
                self.set_path_xattrs(&parent, name, &xattrs)?;
                rfs::utimensat(&parent, os(name), &times, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| self.fs_err("set times", e))?;
            }
            other => {
                tracing::debug!(layer = self.layer, entry = %self.entry, ?other, "skipping tar entry type");
                self.stats.inodes -= 1;
            }
        }
        Ok(())
    }

    /// Copies the entry's data into `file` through the large buffer.
    fn copy_to<R: Read>(&mut self, entry: &mut R, file: &mut std::fs::File) -> Result<u64> {
        use std::io::Write;
        let mut total = 0u64;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.fs_err("read file data", e)),
            };
            if let Err(e) = file.write_all(&self.buf[..n]) {
                return Err(self.fs_err("write file", e));
            }
            total += n as u64;
        }
    }

    fn set_path_xattrs(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        xattrs: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<()> {
        if xattrs.is_empty() {
            return Ok(());
        }
        // The parent is reached through its fd; the final component is not followed.
        let mut p = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
        p.extend_from_slice(name);
        for (k, v) in xattrs {
            let r = rfs::lsetxattr(os(&p), os(k), v, XattrFlags::empty());
            self.set_xattr(r, k)?;
        }
        Ok(())
    }

    fn set_xattr(&mut self, r: rustix::io::Result<()>, key: &[u8]) -> Result<()> {
        match r {
            Ok(()) => Ok(()),
            Err(Errno::NOTSUP) | Err(Errno::PERM) => {
                if !self.xattr_warned {
                    tracing::warn!(layer = self.layer, entry = %self.entry, key = %String::from_utf8_lossy(key), "filesystem does not keep this xattr; skipped");
                    self.xattr_warned = true;
                }
                Ok(())
            }
            Err(e) => Err(self.fs_err("set xattr", e)),
        }
    }

    /// Applies directory modes and times last, deepest first, so that writing entries into
    /// them does not change their mtimes and restrictive modes do not block us.
    fn finish_dirs(&mut self) -> Result<()> {
        let dirs = std::mem::take(&mut self.dirs);
        for d in dirs.iter().rev() {
            self.entry = String::from_utf8_lossy(&d.path).into_owned();
            let fd = match rfs::openat2(
                &self.root,
                os(&d.path),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
            ) {
                Ok(fd) => fd,
                // Replaced or removed by a later entry.
                Err(Errno::NOENT) | Err(Errno::NOTDIR) | Err(Errno::LOOP) | Err(Errno::XDEV) => {
                    continue
                }
                Err(e) => return Err(self.fs_err("open dir", e)),
            };
            rfs::fchmod(&fd, Mode::from_raw_mode(d.mode)).map_err(|e| self.fs_err("chmod", e))?;
            let t = Timespec {
                tv_sec: d.mtime,
                tv_nsec: 0,
            };
            rfs::futimens(
                &fd,
                &Timestamps {
                    last_access: t,
                    last_modification: t,
                },
            )
            .map_err(|e| self.fs_err("set times", e))?;
        }
        Ok(())
    }
}

/// `SCHILY.xattr.*` PAX records of an entry.
fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            if let Some(k) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                out.push((k.to_vec(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

/// Removes `name` (a directory tree) under `parent` without following symlinks.
pub(crate) fn remove_tree_at(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let fd = rfs::openat(
        parent,
        os(name),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut dir = rfs::Dir::read_from(&fd)?;
    while let Some(ent) = dir.read() {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        if ent.file_type() == FileType::Directory {
            remove_tree_at(fd.as_fd(), n)?;
        } else if ent.file_type() == FileType::Unknown {
            match rfs::unlinkat(&fd, os(n), AtFlags::empty()) {
                Err(Errno::ISDIR) | Err(Errno::PERM) => remove_tree_at(fd.as_fd(), n)?,
                r => r?,
            }
        } else {
            rfs::unlinkat(&fd, os(n), AtFlags::empty())?;
        }
    }
    rfs::unlinkat(parent, os(name), AtFlags::REMOVEDIR)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn header(kind: EntryType, size: u64, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(1234);
        h.set_gid(5678);
        h.set_mtime(1_600_000_000);
        h
    }

    fn unpack(tar: Vec<u8>) -> (tempfile::TempDir, Result<UnpackStats>) {
        let dir = tempfile::tempdir().unwrap();
        let r = unpack_layer(&tar[..], dir.path(), "sha256:test");
        (dir, r)
    }

    #[test]
    fn owners_modes_xattrs_long_names_and_replacements() {
        let mut b = tar::Builder::new(Vec::new());
        // A read-only directory with a file inside: modes are applied last.
        b.append_data(&mut header(EntryType::Directory, 0, 0o555), "ro/", &b""[..])
            .unwrap();
        b.append_data(
            &mut header(EntryType::Regular, 2, 0o640),
            "ro/f",
            &b"hi"[..],
        )
        .unwrap();
        // PAX xattr.
        b.append_pax_extensions([("SCHILY.xattr.user.crius", &b"yes"[..])])
            .unwrap();
        b.append_data(&mut header(EntryType::Regular, 1, 0o644), "x", &b"1"[..])
            .unwrap();
        // A long name (GNU long name entry).
        let long = format!("{}/file", "d".repeat(150));
        b.append_data(&mut header(EntryType::Regular, 1, 0o644), &long, &b"L"[..])
            .unwrap();
        // A later entry replaces an earlier one; a file replaces a directory.
        b.append_data(
            &mut header(EntryType::Regular, 3, 0o644),
            "dup",
            &b"old"[..],
        )
        .unwrap();
        b.append_data(
            &mut header(EntryType::Regular, 3, 0o644),
            "dup",
            &b"new"[..],
        )
        .unwrap();
        b.append_data(
            &mut header(EntryType::Directory, 0, 0o755),
            "was-dir/",
            &b""[..],
        )
        .unwrap();
        b.append_data(
            &mut header(EntryType::Regular, 1, 0o644),
            "was-dir/in",
            &b"i"[..],
        )
        .unwrap();
        b.append_data(
            &mut header(EntryType::Regular, 1, 0o644),
            "was-dir",
            &b"f"[..],
        )
        .unwrap();
        // A symlink inside the layer may be walked through while it stays inside.
        let mut h = header(EntryType::Symlink, 0, 0o777);
        b.append_link(&mut h, "lnk", "ro").unwrap();
        b.append_data(
            &mut header(EntryType::Regular, 1, 0o644),
            "lnk/via",
            &b"v"[..],
        )
        .unwrap();
        let (dir, r) = unpack(b.into_inner().unwrap());
        let stats = r.unwrap();
        let p = dir.path();
        let ro = std::fs::metadata(p.join("ro")).unwrap();
        assert_eq!(ro.permissions().mode() & 0o7777, 0o555);
        assert_eq!((ro.uid(), ro.gid()), (1234, 5678));
        assert_eq!(ro.mtime(), 1_600_000_000);
        assert_eq!(std::fs::read(p.join("ro/f")).unwrap(), b"hi");
        assert_eq!(std::fs::read(p.join("ro/via")).unwrap(), b"v");
        assert_eq!(std::fs::read(p.join(&long)).unwrap(), b"L");
        assert_eq!(std::fs::read(p.join("dup")).unwrap(), b"new");
        assert!(std::fs::metadata(p.join("was-dir")).unwrap().is_file());
        let mut buf = [0u8; 8];
        match rfs::getxattr(p.join("x"), "user.crius", &mut buf[..]) {
            Ok(n) => assert_eq!(&buf[..n], b"yes"),
            Err(Errno::NOTSUP) => {} // filesystem without user xattrs
            Err(e) => panic!("getxattr: {e}"),
        }
        assert!(stats.bytes >= 10);
        // Let the temp dir be removed despite the read-only directory.
        std::fs::set_permissions(p.join("ro"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn hostile_entries_name_the_entry() {
        let cases: Vec<(&[u8], EntryType, &[u8], &str)> = vec![
            (b"../x", EntryType::Regular, b"", "../x"),
            (b"/abs", EntryType::Regular, b"", "/abs"),
            (b"a/../../x", EntryType::Directory, b"", "a/../../x"),
            (b"h", EntryType::Link, b"../../etc/passwd", "h"),
            (b"h2", EntryType::Link, b"/etc/passwd", "h2"),
            (b".wh...", EntryType::Regular, b"", ".wh..."),
            (b".wh..", EntryType::Regular, b"", ".wh.."),
        ];
        for (name, kind, link, want) in cases {
            let mut h = tar::Header::new_gnu();
            {
                let g = h.as_gnu_mut().unwrap();
                g.name[..name.len()].copy_from_slice(name);
                g.linkname[..link.len()].copy_from_slice(link);
            }
            h.set_entry_type(kind);
            h.set_size(0);
            h.set_mode(0o644);
            h.set_cksum();
            let mut b = tar::Builder::new(Vec::new());
            b.append(&h, &b""[..]).unwrap();
            let (dir, r) = unpack(b.into_inner().unwrap());
            match r {
                Err(ImageError::HostileLayer { entry, layer, .. }) => {
                    assert_eq!(entry, want);
                    assert_eq!(layer, "sha256:test");
                }
                other => panic!("{want}: expected HostileLayer, got {other:?}"),
            }
            drop(dir);
        }
    }

    /// The cached parent directory must not outlive a removal on its path: entries written
    /// after a replaced directory or symlink land in the new one, and a symlink swapped to
    /// point outside is refused.
    #[test]
    fn replaced_parents_are_resolved_again() {
        let mut b = tar::Builder::new(Vec::new());
        let dir = |b: &mut tar::Builder<Vec<u8>>, p: &str| {
            b.append_data(&mut header(EntryType::Directory, 0, 0o755), p, &b""[..])
                .unwrap()
        };
        let file = |b: &mut tar::Builder<Vec<u8>>, p: &str, d: &[u8]| {
            b.append_data(&mut header(EntryType::Regular, d.len() as u64, 0o644), p, d)
                .unwrap()
        };
        let link = |b: &mut tar::Builder<Vec<u8>>, p: &str, t: &str| {
            b.append_link(&mut header(EntryType::Symlink, 0, 0o777), p, t)
                .unwrap()
        };
        dir(&mut b, "a/");
        file(&mut b, "a/f1", b"1");
        file(&mut b, "a", b"file"); // the directory goes
        dir(&mut b, "a/"); // and a new one comes
        file(&mut b, "a/f2", b"2");
        dir(&mut b, "r1/");
        dir(&mut b, "r2/");
        link(&mut b, "lnk", "r1");
        file(&mut b, "lnk/x", b"x");
        link(&mut b, "lnk", "r2");
        file(&mut b, "lnk/y", b"y");
        let (d, r) = unpack(b.into_inner().unwrap());
        r.unwrap();
        let p = d.path();
        assert!(!p.join("a/f1").exists());
        assert_eq!(std::fs::read(p.join("a/f2")).unwrap(), b"2");
        assert_eq!(std::fs::read(p.join("r1/x")).unwrap(), b"x");
        assert_eq!(std::fs::read(p.join("r2/y")).unwrap(), b"y");
        assert!(!p.join("r1/y").exists());

        let outside = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        dir(&mut b, "r1/");
        link(&mut b, "lnk", "r1");
        file(&mut b, "lnk/x", b"x");
        link(&mut b, "lnk", outside.path().to_str().unwrap());
        file(&mut b, "lnk/evil", b"e");
        let (_d, r) = unpack(b.into_inner().unwrap());
        match r {
            Err(ImageError::HostileLayer { entry, .. }) => assert_eq!(entry, "lnk/evil"),
            other => panic!("expected HostileLayer, got {other:?}"),
        }
        assert!(!outside.path().join("evil").exists());
    }

    #[test]
    fn clean_components_rules() {
        assert_eq!(
            clean_components(b"./a//b/.").unwrap(),
            vec![&b"a"[..], &b"b"[..]]
        );
        assert!(clean_components(b"a/../b").is_err());
        assert!(clean_components(b"/a").is_err());
        assert!(clean_components(b"./").unwrap().is_empty());
    }
}
