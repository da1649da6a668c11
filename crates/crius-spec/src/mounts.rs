//! Mounts: the defaults every container gets, the pod's files, CRI mounts, image volumes.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use k8s_cri::v1::{ContainerConfig, MountPropagation};
use oci_spec::image::Config as ImageConfig;
use oci_spec::runtime::Mount;

use crate::error::{Result, SpecError};
use crate::types::{ImageVolume, PodFiles};

/// Builds one OCI mount.
pub(crate) fn mount(dest: &str, typ: &str, source: impl Into<PathBuf>, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(source.into()));
    m.set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

/// Cleans an absolute container path lexically (`//a/./b/` → `/a/b`); `None` if not absolute.
pub fn clean_container_path(p: &str) -> Option<String> {
    if !p.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// The kernel filesystems every container gets: `/proc`, `/dev` (tmpfs), `/dev/pts`,
/// `/dev/mqueue`, `/sys` and `/sys/fs/cgroup` (read-only unless privileged).
pub fn default_mounts(privileged: bool) -> Vec<Mount> {
    let ro_rw = if privileged { "rw" } else { "ro" };
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", ro_rw],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", ro_rw],
        ),
    ]
}

/// The pod's `/dev/shm` (bind) or a private tmpfs, and its hostname/hosts/resolv.conf binds
/// (read-only when the rootfs is).
pub fn pod_mounts(files: &PodFiles, readonly_rootfs: bool) -> Vec<Mount> {
    let mut out = Vec::new();
    match &files.shm {
        Some(shm) => out.push(mount(
            "/dev/shm",
            "bind",
            shm,
            &["rbind", "rprivate", "nosuid", "noexec", "nodev", "rw"],
        )),
        None => out.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )),
    }
    let ro_rw = if readonly_rootfs { "ro" } else { "rw" };
    for (dest, src) in [
        ("/etc/hostname", &files.hostname),
        ("/etc/hosts", &files.hosts),
        ("/etc/resolv.conf", &files.resolv_conf),
    ] {
        if let Some(src) = src {
            out.push(mount(dest, "bind", src, &["rbind", "rprivate", ro_rw]));
        }
    }
    out
}

/// Propagation of the mount point a path lives on, from `/proc/self/mountinfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostPropagation {
    Shared,
    Slave,
    Private,
}

fn host_propagation(path: &Path) -> Result<HostPropagation> {
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(|source| SpecError::Host {
            step: "read /proc/self/mountinfo".into(),
            source,
        })?;
    Ok(propagation_from_mountinfo(&mountinfo, path))
}

/// Finds the longest mount point that is a prefix of `path` and reports its propagation.
fn propagation_from_mountinfo(mountinfo: &str, path: &Path) -> HostPropagation {
    let mut best: Option<(usize, HostPropagation)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(mount_point) = fields.get(4) else {
            continue;
        };
        let mount_point = unescape_mountinfo(mount_point);
        if !path.starts_with(&mount_point) {
            continue;
        }
        let len = mount_point.len();
        let optional = fields.iter().skip(6).take_while(|f| **f != "-");
        let mut prop = HostPropagation::Private;
        for f in optional {
            if f.starts_with("shared:") {
                prop = HostPropagation::Shared;
            } else if f.starts_with("master:") && prop != HostPropagation::Shared {
                prop = HostPropagation::Slave;
            }
        }
        // Later lines stack on earlier ones at the same mount point: >= keeps the last.
        if best.map(|(l, _)| len >= l).unwrap_or(true) {
            best = Some((len, prop));
        }
    }
    best.map(|(_, p)| p).unwrap_or(HostPropagation::Private)
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The strongest rootfs propagation the CRI mounts need (`rshared` > `rslave`), if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RootfsPropagation {
    /// Some mount is HOST_TO_CONTAINER.
    Rslave,
    /// Some mount is BIDIRECTIONAL.
    Rshared,
}

impl RootfsPropagation {
    /// The OCI `linux.rootfsPropagation` value.
    pub fn as_str(self) -> &'static str {
        match self {
            RootfsPropagation::Rslave => "rslave",
            RootfsPropagation::Rshared => "rshared",
        }
    }
}

/// Converts the CRI mounts: host paths must exist (symlinks are followed), container paths must
/// be absolute; propagation PRIVATE → `rprivate`, HOST_TO_CONTAINER → `rslave` (host mount must
/// be shared or slave), BIDIRECTIONAL → `rshared` (host mount must be shared, container must be
/// privileged, as the kubelet enforces). `selinux_relabel` is ignored. `recursive_read_only`
/// requires `readonly` and PRIVATE propagation and adds the `rro` option (the runtime makes every
/// submount read-only too); it is refused when the host lacks `mount_setattr(2)`
/// (`recursive_read_only == false`). Image mounts and ID-mapped mounts are refused.
pub fn cri_mounts(
    config: &ContainerConfig,
    privileged: bool,
    recursive_read_only: bool,
) -> Result<(Vec<Mount>, Option<RootfsPropagation>)> {
    let mut out = Vec::new();
    let mut rootfs_prop = None;
    for (i, m) in config.mounts.iter().enumerate() {
        let field = |f: &str| format!("mounts[{i}].{f}");
        let dest = clean_container_path(&m.container_path).ok_or_else(|| {
            SpecError::field(
                field("container_path"),
                format!("{:?} is not an absolute path", m.container_path),
            )
        })?;
        if m.image.is_some() {
            return Err(SpecError::field(
                field("image"),
                "image volume mounts are not supported",
            ));
        }
        if !m.uid_mappings.is_empty() || !m.gid_mappings.is_empty() {
            return Err(SpecError::field(
                field("uid_mappings"),
                "ID-mapped mounts are not supported",
            ));
        }
        if m.recursive_read_only {
            let why = if !m.readonly {
                Some("needs readonly to be true".to_string())
            } else if m.propagation != MountPropagation::PropagationPrivate as i32 {
                Some(format!(
                    "needs PROPAGATION_PRIVATE, got {}",
                    MountPropagation::try_from(m.propagation)
                        .map(|p| p.as_str_name().to_string())
                        .unwrap_or_else(|_| m.propagation.to_string())
                ))
            } else if !recursive_read_only {
                Some("this kernel lacks mount_setattr(2) (Linux >= 5.12)".to_string())
            } else {
                None
            };
            if let Some(why) = why {
                return Err(SpecError::field(
                    field("recursive_read_only"),
                    format!("recursive read-only mount on {}: {why}", m.container_path),
                ));
            }
        }
        if m.host_path.is_empty() {
            return Err(SpecError::field(field("host_path"), "empty"));
        }
        let host = std::fs::canonicalize(&m.host_path).map_err(|_| SpecError::MissingHostPath {
            host_path: PathBuf::from(&m.host_path),
            container_path: m.container_path.clone(),
        })?;
        let propagation = match MountPropagation::try_from(m.propagation) {
            Ok(MountPropagation::PropagationPrivate) => "rprivate",
            Ok(MountPropagation::PropagationHostToContainer) => {
                if host_propagation(&host)? == HostPropagation::Private {
                    return Err(SpecError::field(
                        field("propagation"),
                        format!(
                            "HOST_TO_CONTAINER needs {} to be on a shared or slave mount; it is private",
                            host.display()
                        ),
                    ));
                }
                rootfs_prop = rootfs_prop.max(Some(RootfsPropagation::Rslave));
                "rslave"
            }
            Ok(MountPropagation::PropagationBidirectional) => {
                if !privileged {
                    return Err(SpecError::field(
                        field("propagation"),
                        "BIDIRECTIONAL propagation requires a privileged container",
                    ));
                }
                if host_propagation(&host)? != HostPropagation::Shared {
                    return Err(SpecError::field(
                        field("propagation"),
                        format!(
                            "BIDIRECTIONAL needs {} to be on a shared mount; it is not",
                            host.display()
                        ),
                    ));
                }
                rootfs_prop = Some(RootfsPropagation::Rshared);
                "rshared"
            }
            Err(_) => {
                return Err(SpecError::field(
                    field("propagation"),
                    format!("unknown value {}", m.propagation),
                ))
            }
        };
        let ro_rw = if m.readonly { "ro" } else { "rw" };
        let mut options = vec!["rbind", propagation, ro_rw];
        if m.recursive_read_only {
            // `ro` covers the top mount; `rro` makes the runtime apply MOUNT_ATTR_RDONLY with
            // AT_RECURSIVE so every submount is read-only too.
            options.push("rro");
        }
        for o in &m.mount_options {
            match o.as_str() {
                "noexec" | "nodev" | "nosuid" => options.push(o.as_str()),
                other => {
                    return Err(SpecError::field(
                        field("mount_options"),
                        format!("unsupported option {other:?} (noexec, nodev, nosuid are)"),
                    ))
                }
            }
        }
        out.push(mount(&dest, "bind", host, &options));
    }
    Ok((out, rootfs_prop))
}

/// The image's `Volumes` (cleaned) that no CRI mount covers: the daemon may create an empty
/// host directory for each and pass them back as [`ImageVolume`]s.
pub fn uncovered_image_volumes(
    config: &ContainerConfig,
    image: Option<&ImageConfig>,
) -> Vec<String> {
    let covered: HashSet<String> = config
        .mounts
        .iter()
        .filter_map(|m| clean_container_path(&m.container_path))
        .collect();
    let mut out: Vec<String> = image
        .and_then(|i| i.volumes().clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| clean_container_path(v))
        .filter(|v| v != "/" && !covered.contains(v))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Bind mounts for the uncovered image volumes the daemon backed with a directory, and the
/// list of those it did not (skipped).
pub fn image_volume_mounts(
    uncovered: &[String],
    backed: &[ImageVolume],
) -> (Vec<Mount>, Vec<String>) {
    let mut mounts = Vec::new();
    let mut skipped = Vec::new();
    for v in uncovered {
        match backed
            .iter()
            .find(|b| clean_container_path(&b.container_path).as_deref() == Some(v.as_str()))
        {
            Some(b) => mounts.push(mount(v, "bind", &b.host_dir, &["rbind", "rprivate", "rw"])),
            None => skipped.push(v.clone()),
        }
    }
    (mounts, skipped)
}

fn depth(m: &Mount) -> usize {
    m.destination().components().count()
}

/// Merges the mount groups in precedence order (later groups replace earlier mounts with the
/// same destination) and orders them so a parent directory is mounted before what is mounted
/// inside it; among equal depths, defaults keep their order and then CRI order.
pub fn merge_mounts(groups: Vec<Vec<Mount>>) -> Vec<Mount> {
    let mut out: Vec<Mount> = Vec::new();
    for group in groups {
        for m in group {
            out.retain(|o| o.destination() != m.destination());
            out.push(m);
        }
    }
    // Defaults (/proc, /dev, /dev/pts...) already come parent-first; a stable sort by depth
    // keeps that and puts e.g. a CRI mount on /data before one on /data/sub.
    out.sort_by_key(depth);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_cri::v1::Mount as CriMount;

    fn dest(m: &Mount) -> String {
        m.destination().display().to_string()
    }

    fn opts(m: &Mount) -> Vec<String> {
        m.options().clone().unwrap_or_default()
    }

    #[test]
    fn clean_paths() {
        assert_eq!(
            clean_container_path("/a//b/./c/").as_deref(),
            Some("/a/b/c")
        );
        assert_eq!(clean_container_path("/a/../b").as_deref(), Some("/b"));
        assert_eq!(clean_container_path("/").as_deref(), Some("/"));
        assert_eq!(clean_container_path("rel"), None);
    }

    #[test]
    fn defaults_privileged_vs_not() {
        let normal = default_mounts(false);
        let dests: Vec<String> = normal.iter().map(dest).collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup"
            ]
        );
        let sys = normal.iter().find(|m| dest(m) == "/sys").expect("sys");
        assert!(opts(sys).contains(&"ro".to_string()));
        let cg = normal
            .iter()
            .find(|m| dest(m) == "/sys/fs/cgroup")
            .expect("cgroup");
        assert!(opts(cg).contains(&"ro".to_string()));
        let privileged = default_mounts(true);
        for m in privileged.iter().filter(|m| dest(m).starts_with("/sys")) {
            assert!(opts(m).contains(&"rw".to_string()), "{}", dest(m));
            assert!(!opts(m).contains(&"ro".to_string()), "{}", dest(m));
        }
    }

    #[test]
    fn pod_files() {
        let files = PodFiles {
            hostname: Some("/run/pod/hostname".into()),
            hosts: Some("/run/pod/hosts".into()),
            resolv_conf: None,
            shm: Some("/run/pod/shm".into()),
        };
        let m = pod_mounts(&files, true);
        let dests: Vec<String> = m.iter().map(dest).collect();
        assert_eq!(dests, ["/dev/shm", "/etc/hostname", "/etc/hosts"]);
        assert_eq!(m[0].typ().as_deref(), Some("bind"));
        assert_eq!(m[0].source().as_deref(), Some(Path::new("/run/pod/shm")));
        assert!(opts(&m[1]).contains(&"ro".to_string()));
        let m = pod_mounts(&PodFiles::default(), false);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].typ().as_deref(), Some("tmpfs"));
    }

    fn cri_mount(host: &str, container: &str, ro: bool, prop: MountPropagation) -> CriMount {
        CriMount {
            host_path: host.into(),
            container_path: container.into(),
            readonly: ro,
            propagation: prop as i32,
            ..Default::default()
        }
    }

    #[test]
    fn cri_mount_conversion() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real");
        std::fs::create_dir(&real).expect("mkdir");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let cfg = ContainerConfig {
            mounts: vec![
                cri_mount(
                    &real.display().to_string(),
                    "/data/",
                    true,
                    MountPropagation::PropagationPrivate,
                ),
                cri_mount(
                    &link.display().to_string(),
                    "/l",
                    false,
                    MountPropagation::PropagationPrivate,
                ),
            ],
            ..Default::default()
        };
        let (m, prop) = cri_mounts(&cfg, false, true).expect("mounts");
        assert_eq!(prop, None);
        assert_eq!(dest(&m[0]), "/data");
        assert_eq!(opts(&m[0]), ["rbind", "rprivate", "ro"]);
        assert_eq!(
            m[1].source().as_deref(),
            Some(real.as_path()),
            "symlink followed"
        );
        assert_eq!(opts(&m[1]), ["rbind", "rprivate", "rw"]);
    }

    #[test]
    fn cri_mount_options() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = dir.path().display().to_string();
        let mut m = cri_mount(&host, "/d", false, MountPropagation::PropagationPrivate);
        m.mount_options = vec!["noexec".into(), "nosuid".into(), "nodev".into()];
        let cfg = ContainerConfig {
            mounts: vec![m.clone()],
            ..Default::default()
        };
        let (out, _) = cri_mounts(&cfg, false, true).expect("mounts");
        assert_eq!(
            opts(&out[0]),
            ["rbind", "rprivate", "rw", "noexec", "nosuid", "nodev"]
        );
        m.mount_options = vec!["suid".into()];
        let cfg = ContainerConfig {
            mounts: vec![m],
            ..Default::default()
        };
        let err = cri_mounts(&cfg, false, true).expect_err("suid refused");
        assert!(err.to_string().contains("mount_options"), "{err}");
    }

    #[test]
    fn cri_mount_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display().to_string();
        let missing = dir.path().join("nope").display().to_string();
        match cri_mounts(
            &ContainerConfig {
                mounts: vec![cri_mount(
                    &missing,
                    "/x",
                    false,
                    MountPropagation::PropagationPrivate,
                )],
                ..Default::default()
            },
            false,
            true,
        ) {
            Err(e @ SpecError::MissingHostPath { .. }) => assert!(e.to_string().contains(&missing)),
            other => panic!("expected MissingHostPath, got {other:?}"),
        }
        let bad: Vec<CriMount> = vec![
            cri_mount(&d, "relative", false, MountPropagation::PropagationPrivate),
            cri_mount(&d, "/x", false, MountPropagation::PropagationBidirectional),
            CriMount {
                propagation: 7,
                ..cri_mount(&d, "/x", false, MountPropagation::PropagationPrivate)
            },
            CriMount {
                image: Some(Default::default()),
                ..cri_mount("", "/x", true, MountPropagation::PropagationPrivate)
            },
            cri_mount("", "/x", false, MountPropagation::PropagationPrivate),
        ];
        for m in bad {
            let cfg = ContainerConfig {
                mounts: vec![m.clone()],
                ..Default::default()
            };
            assert!(
                matches!(
                    cri_mounts(&cfg, false, true),
                    Err(SpecError::InvalidField { .. })
                ),
                "{m:?}"
            );
        }
    }

    #[test]
    #[allow(clippy::type_complexity)] // table test
    fn recursive_read_only_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display().to_string();
        let rro = |ro: bool, prop: MountPropagation| CriMount {
            recursive_read_only: true,
            ..cri_mount(&d, "/rro", ro, prop)
        };
        // (mount, privileged container, kernel has mount_setattr, Ok(options) or Err(text))
        let cases: Vec<(CriMount, bool, bool, std::result::Result<Vec<&str>, &str>)> = vec![
            (
                rro(true, MountPropagation::PropagationPrivate),
                false,
                true,
                Ok(vec!["rbind", "rprivate", "ro", "rro"]),
            ),
            (
                rro(true, MountPropagation::PropagationPrivate),
                true,
                true,
                Ok(vec!["rbind", "rprivate", "ro", "rro"]),
            ),
            (
                cri_mount(&d, "/rro", true, MountPropagation::PropagationPrivate),
                false,
                false,
                Ok(vec!["rbind", "rprivate", "ro"]),
            ),
            (
                rro(false, MountPropagation::PropagationPrivate),
                false,
                true,
                Err("needs readonly"),
            ),
            (
                rro(true, MountPropagation::PropagationHostToContainer),
                false,
                true,
                Err("PROPAGATION_HOST_TO_CONTAINER"),
            ),
            (
                rro(true, MountPropagation::PropagationBidirectional),
                true,
                true,
                Err("PROPAGATION_BIDIRECTIONAL"),
            ),
            (
                rro(true, MountPropagation::PropagationPrivate),
                false,
                false,
                Err("mount_setattr"),
            ),
        ];
        for (m, privileged, kernel, want) in cases {
            let cfg = ContainerConfig {
                mounts: vec![m.clone()],
                ..Default::default()
            };
            match (cri_mounts(&cfg, privileged, kernel), want) {
                (Ok((got, _)), Ok(opt)) => assert_eq!(opts(&got[0]), opt, "{m:?}"),
                (Err(e @ SpecError::InvalidField { .. }), Err(text)) => {
                    let msg = e.to_string();
                    assert!(msg.contains(text), "{msg}");
                    assert!(msg.contains("mounts[0].recursive_read_only"), "{msg}");
                    assert!(msg.contains("/rro"), "names the mount: {msg}");
                    assert!(e.is_invalid_argument());
                }
                (got, want) => panic!("{m:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn mountinfo_propagation() {
        let info = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
            30 27 0:40 / /mnt/shared rw shared:5 - tmpfs t rw\n\
            31 27 0:41 / /mnt/slave rw master:5 - tmpfs t rw\n\
            32 30 0:42 / /mnt/shared/inner rw - tmpfs t rw\n\
            33 27 0:43 / /mnt/with\\040space rw shared:9 - tmpfs t rw\n";
        let p = |s: &str| propagation_from_mountinfo(info, Path::new(s));
        assert_eq!(p("/etc"), HostPropagation::Private);
        assert_eq!(p("/mnt/shared/x"), HostPropagation::Shared);
        assert_eq!(p("/mnt/slave"), HostPropagation::Slave);
        assert_eq!(p("/mnt/shared/inner/y"), HostPropagation::Private);
        assert_eq!(p("/mnt/with space/z"), HostPropagation::Shared);
        assert_eq!(
            p("/mnt/sharedx"),
            HostPropagation::Private,
            "prefix by component"
        );
    }

    #[test]
    fn image_volumes() {
        let img = oci_spec::image::ConfigBuilder::default()
            .volumes(vec![
                "/data".to_string(),
                "/cache/".to_string(),
                "/logs".to_string(),
            ])
            .build()
            .expect("img");
        let cfg = ContainerConfig {
            mounts: vec![cri_mount(
                "/tmp",
                "/data",
                false,
                MountPropagation::PropagationPrivate,
            )],
            ..Default::default()
        };
        let uncovered = uncovered_image_volumes(&cfg, Some(&img));
        assert_eq!(uncovered, ["/cache", "/logs"]);
        let (mounts, skipped) = image_volume_mounts(
            &uncovered,
            &[ImageVolume {
                container_path: "/cache".into(),
                host_dir: "/var/lib/crius/v/cache".into(),
            }],
        );
        assert_eq!(mounts.len(), 1);
        assert_eq!(dest(&mounts[0]), "/cache");
        assert_eq!(
            mounts[0].source().as_deref(),
            Some(Path::new("/var/lib/crius/v/cache"))
        );
        assert_eq!(skipped, ["/logs"]);
    }

    #[test]
    fn merge_overrides_and_orders() {
        let defaults = default_mounts(false);
        let pod = pod_mounts(
            &PodFiles {
                hosts: Some("/pod/hosts".into()),
                ..Default::default()
            },
            false,
        );
        let cri = vec![
            mount("/data/sub", "bind", "/h2", &["rbind"]),
            mount("/data", "bind", "/h1", &["rbind"]),
            mount("/etc/hosts", "bind", "/kubelet/hosts", &["rbind"]),
        ];
        let merged = merge_mounts(vec![defaults, pod, cri]);
        let dests: Vec<String> = merged.iter().map(dest).collect();
        let pos = |d: &str| dests.iter().position(|x| x == d).expect(d);
        assert!(pos("/data") < pos("/data/sub"));
        assert!(pos("/dev") < pos("/dev/pts"));
        assert!(pos("/sys") < pos("/sys/fs/cgroup"));
        assert_eq!(dests.iter().filter(|d| *d == "/etc/hosts").count(), 1);
        let hosts = merged
            .iter()
            .find(|m| dest(m) == "/etc/hosts")
            .expect("hosts");
        assert_eq!(hosts.source().as_deref(), Some(Path::new("/kubelet/hosts")));
    }
}
