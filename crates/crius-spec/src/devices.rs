//! Devices: CRI devices, the host's devices for privileged containers, cgroup device rules.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use k8s_cri::v1::Device as CriDevice;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{Result, SpecError};

/// Directories of the host's `/dev` not copied into privileged containers (runc mounts its own
/// `pts`, `shm`, `mqueue`; the rest are runtime bookkeeping).
const SKIP_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// A device node found on the host.
fn device_from_metadata(container_path: &str, meta: &std::fs::Metadata) -> Option<LinuxDevice> {
    let ft = meta.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return None;
    };
    let rdev = meta.rdev();
    let mut d = LinuxDevice::default();
    d.set_path(PathBuf::from(container_path));
    d.set_typ(typ);
    d.set_major(i64::from(libc::major(rdev)));
    d.set_minor(i64::from(libc::minor(rdev)));
    d.set_file_mode(Some(meta.mode() & 0o7777));
    d.set_uid(Some(meta.uid()));
    d.set_gid(Some(meta.gid()));
    Some(d)
}

/// An allow rule for one device.
fn allow_rule(dev: &LinuxDevice, access: &str) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(true);
    r.set_typ(Some(dev.typ()));
    r.set_major(Some(dev.major()));
    r.set_minor(Some(dev.minor()));
    r.set_access(Some(access.to_string()));
    r
}

/// The rule denying every device (runc appends its standard allowances after it).
pub fn deny_all_rule() -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(false);
    r.set_access(Some("rwm".into()));
    r
}

/// The rule allowing every device (privileged containers).
pub fn allow_all_rule() -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(true);
    r.set_access(Some("rwm".into()));
    r
}

fn valid_permissions(p: &str) -> bool {
    !p.is_empty() && p.len() <= 3 && p.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
}

/// Converts the CRI devices: each host path (symlinks followed) must be a character or block
/// device, or a directory whose device nodes are all added under the container path.
/// Permissions default to `rwm`. Returns the devices and their cgroup allow rules.
pub fn cri_devices(devices: &[CriDevice]) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
    let mut out = Vec::new();
    let mut rules = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        let host = PathBuf::from(&d.host_path);
        let perms = if d.permissions.is_empty() {
            "rwm"
        } else {
            d.permissions.as_str()
        };
        if !valid_permissions(perms) {
            return Err(SpecError::field(
                format!("devices[{i}].permissions"),
                format!("{perms:?}: only r, w and m are allowed"),
            ));
        }
        let container = if d.container_path.is_empty() {
            d.host_path.as_str()
        } else {
            d.container_path.as_str()
        };
        if !container.starts_with('/') {
            return Err(SpecError::field(
                format!("devices[{i}].container_path"),
                format!("{container:?} is not an absolute path"),
            ));
        }
        let meta = std::fs::metadata(&host).map_err(|e| SpecError::Device {
            host_path: host.clone(),
            reason: e.to_string(),
        })?;
        let found = if meta.is_dir() {
            let mut found = Vec::new();
            walk_devices(&host, container, &[], &mut found).map_err(|e| SpecError::Device {
                host_path: host.clone(),
                reason: e.to_string(),
            })?;
            found
        } else {
            vec![
                device_from_metadata(container, &meta).ok_or_else(|| SpecError::Device {
                    host_path: host.clone(),
                    reason: "not a character or block device".into(),
                })?,
            ]
        };
        for dev in found {
            rules.push(allow_rule(&dev, perms));
            out.retain(|o: &LinuxDevice| o.path() != dev.path());
            out.push(dev);
        }
    }
    Ok((out, rules))
}

/// Adds every device node under `dir` (not following symlinks) as `<prefix>/<relative path>`.
fn walk_devices(
    dir: &Path,
    prefix: &str,
    skip_dirs: &[&str],
    out: &mut Vec<LinuxDevice>,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let meta = match std::fs::symlink_metadata(entry.path()) {
            Ok(m) => m,
            // Devices come and go (e.g. a USB unplug during the walk).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let container = format!("{}/{}", prefix.trim_end_matches('/'), name);
        if meta.is_dir() {
            if !skip_dirs.contains(&name.as_ref()) {
                walk_devices(&entry.path(), &container, &[], out)?;
            }
        } else if let Some(dev) = device_from_metadata(&container, &meta) {
            out.push(dev);
        }
    }
    Ok(())
}

/// Every device node of the host's `/dev` (for privileged containers), except `/dev/console`
/// and the directories runc provides itself (`pts`, `shm`, `mqueue`, ...).
pub fn host_devices() -> Result<Vec<LinuxDevice>> {
    let mut out = Vec::new();
    walk_devices(Path::new("/dev"), "/dev", SKIP_DIRS, &mut out).map_err(|source| {
        SpecError::Host {
            step: "list host devices in /dev".into(),
            source,
        }
    })?;
    out.retain(|d| d.path() != Path::new("/dev/console"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(host: &str, container: &str, perms: &str) -> CriDevice {
        CriDevice {
            host_path: host.into(),
            container_path: container.into(),
            permissions: perms.into(),
        }
    }

    #[test]
    fn null_device() {
        let (devs, rules) = cri_devices(&[dev("/dev/null", "/dev/mynull", "rw")]).expect("null");
        assert_eq!(devs.len(), 1);
        assert_eq!(devs[0].path(), Path::new("/dev/mynull"));
        assert_eq!(devs[0].typ(), LinuxDeviceType::C);
        assert_eq!((devs[0].major(), devs[0].minor()), (1, 3));
        assert_eq!(devs[0].file_mode().map(|m| m & 0o777), Some(0o666));
        assert_eq!(rules.len(), 1);
        assert!(rules[0].allow());
        assert_eq!((rules[0].major(), rules[0].minor()), (Some(1), Some(3)));
        assert_eq!(rules[0].access().as_deref(), Some("rw"));
        assert_eq!(rules[0].typ(), Some(LinuxDeviceType::C));
    }

    #[test]
    fn defaults_and_symlinks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("zero-link");
        std::os::unix::fs::symlink("/dev/zero", &link).expect("symlink");
        let (devs, rules) = cri_devices(&[dev(&link.display().to_string(), "", "")]).expect("zero");
        assert_eq!(
            devs[0].path(),
            link.as_path(),
            "container path defaults to host path"
        );
        assert_eq!((devs[0].major(), devs[0].minor()), (1, 5));
        assert_eq!(rules[0].access().as_deref(), Some("rwm"));
    }

    #[test]
    fn directory_of_devices() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        for (name, minor) in [("null", "3"), ("sub/zero", "5")] {
            let status = std::process::Command::new("mknod")
                .arg(dir.path().join(name))
                .args(["c", "1", minor])
                .status()
                .expect("run mknod");
            assert!(status.success(), "mknod {name}");
        }
        std::fs::write(dir.path().join("not-a-device"), "x").expect("write");
        let (devs, rules) =
            cri_devices(&[dev(&dir.path().display().to_string(), "/devdir", "r")]).expect("dir");
        let paths: Vec<&Path> = devs.iter().map(|d| d.path().as_path()).collect();
        assert_eq!(
            paths,
            [Path::new("/devdir/null"), Path::new("/devdir/sub/zero")]
        );
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[1].minor(), Some(5));
        assert_eq!(rules[1].access().as_deref(), Some("r"));
    }

    #[test]
    fn errors_name_the_device() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("plain");
        std::fs::write(&file, "x").expect("write");
        for path in [
            file.display().to_string(),
            "/dev/does-not-exist".to_string(),
        ] {
            match cri_devices(&[dev(&path, "/dev/x", "rw")]) {
                Err(e @ SpecError::Device { .. }) => assert!(e.to_string().contains(&path), "{e}"),
                other => panic!("{path}: expected a device error, got {other:?}"),
            }
        }
        assert!(matches!(
            cri_devices(&[dev("/dev/null", "/dev/x", "rwx")]),
            Err(SpecError::InvalidField { .. })
        ));
        assert!(matches!(
            cri_devices(&[dev("/dev/null", "dev/x", "rw")]),
            Err(SpecError::InvalidField { .. })
        ));
    }

    #[test]
    fn host_dev_walk() {
        let devs = host_devices().expect("walk /dev");
        let paths: Vec<&Path> = devs.iter().map(|d| d.path().as_path()).collect();
        assert!(paths.contains(&Path::new("/dev/null")));
        assert!(!paths.contains(&Path::new("/dev/console")));
        assert!(!paths.iter().any(|p| p.starts_with("/dev/pts")));
    }

    #[test]
    fn rules_serialize() {
        let json = serde_json::to_value(deny_all_rule()).expect("json");
        assert_eq!(json["allow"], false);
        assert_eq!(json["access"], "rwm");
        let json = serde_json::to_value(allow_all_rule()).expect("json");
        assert_eq!(json["allow"], true);
    }
}
