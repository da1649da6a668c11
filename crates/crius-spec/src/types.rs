//! Inputs and outputs of the spec builders.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_cri::v1::{
    ContainerConfig, ContainerUser, LinuxContainerUser, PodSandboxConfig, SupplementalGroupsPolicy,
};
use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{Capabilities, Spec};

/// The pod's namespaces, as pinned (bind-mounted) by the daemon. `None` means "the host's".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodNamespaces {
    /// The pod's network namespace file, or `None` for host network.
    pub network: Option<PathBuf>,
    /// The pod's IPC namespace file, or `None` for host IPC.
    pub ipc: Option<PathBuf>,
    /// The pod's UTS namespace file, or `None` for the host's hostname.
    pub uts: Option<PathBuf>,
    /// The pod's shared PID namespace (e.g. `/proc/<pause pid>/ns/pid`), when the pod runs an
    /// infra process. A container asking for PID mode POD without one gets a new PID namespace.
    pub pid: Option<PathBuf>,
}

/// Files and directories of the pod bind-mounted into each container. `None` = not mounted
/// (for `shm`: a private tmpfs is mounted on `/dev/shm` instead).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFiles {
    /// Mounted on `/etc/hostname`.
    pub hostname: Option<PathBuf>,
    /// Mounted on `/etc/hosts`.
    pub hosts: Option<PathBuf>,
    /// Mounted on `/etc/resolv.conf`.
    pub resolv_conf: Option<PathBuf>,
    /// The pod's shm directory, bind-mounted on `/dev/shm`.
    pub shm: Option<PathBuf>,
}

/// A directory the daemon created to back one of the image's `Volumes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageVolume {
    /// The volume path in the container (as listed in the image config).
    pub container_path: String,
    /// The (empty) host directory to bind there.
    pub host_dir: PathBuf,
}

/// Facts about the host's security modules. [`HostFeatures::detect`] reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFeatures {
    /// `/sys/module/apparmor/parameters/enabled` is `Y`.
    pub apparmor_enabled: bool,
    /// The AppArmor profile to use for `RuntimeDefault` when AppArmor is enabled (the daemon
    /// must have loaded it); `None` = leave the process unconfined.
    pub apparmor_default_profile: Option<String>,
    /// SELinux is enabled (`/sys/fs/selinux/enforce` exists).
    pub selinux_enabled: bool,
    /// Give containers a private cgroup namespace (what Kubernetes expects on cgroup v2
    /// hosts; detected as "/sys/fs/cgroup is a pure cgroup v2 mount").
    pub cgroup_namespace: bool,
    /// The kernel has `mount_setattr(2)` (Linux >= 5.12), which the OCI runtime needs for the
    /// `rro` option of recursive read-only mounts; without it such mounts are refused
    /// (see [`crate::kernel_supports_mount_setattr`]).
    pub recursive_read_only: bool,
}

impl HostFeatures {
    /// Reads the host's AppArmor and SELinux state from sysfs (no default AppArmor profile),
    /// the cgroup layout, and probes `mount_setattr(2)`.
    pub fn detect() -> Self {
        let apparmor_enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .map(|s| s.trim_start().starts_with('Y'))
            .unwrap_or(false);
        let selinux_enabled = Path::new("/sys/fs/selinux/enforce").exists();
        let cgroup_namespace = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        HostFeatures {
            apparmor_enabled,
            apparmor_default_profile: None,
            selinux_enabled,
            cgroup_namespace,
            recursive_read_only: crate::features::kernel_supports_mount_setattr(),
        }
    }
}

/// Everything [`crate::container_spec`] needs to build a container's spec.
#[derive(Debug, Clone)]
pub struct ContainerSpecInput<'a> {
    /// The container's ID (used for the cgroup path and annotations).
    pub container_id: &'a str,
    /// The pod sandbox's ID (annotations).
    pub sandbox_id: &'a str,
    /// The CRI container config.
    pub config: &'a ContainerConfig,
    /// The CRI config of the pod the container belongs to.
    pub sandbox_config: &'a PodSandboxConfig,
    /// The image's configuration (Entrypoint, Cmd, Env, User, ...).
    pub image: &'a ImageConfiguration,
    /// The image name (reference) for the `io.kubernetes.cri.image-name` annotation.
    pub image_name: &'a str,
    /// The container's mounted root filesystem; `/etc/passwd` and `/etc/group` are read from it.
    pub rootfs: &'a Path,
    /// The pod's namespaces.
    pub namespaces: PodNamespaces,
    /// The PID namespace of the target container when the config asks for PID mode TARGET.
    pub target_pid_namespace: Option<PathBuf>,
    /// The pod's hostname/hosts/resolv.conf/shm.
    pub pod_files: PodFiles,
    /// The container's CRI log file (only recorded as an annotation).
    pub log_path: Option<PathBuf>,
    /// The cgroup parent to put the container under (cgroupfs syntax, e.g.
    /// `/kubepods/besteffort/pod<uid>`); the spec's `cgroupsPath` is `<parent>/<container_id>`.
    pub cgroup_parent: String,
    /// Capabilities the daemon holds ([`crate::daemon_capabilities`]); privileged containers get
    /// exactly these, and no container is granted one outside them.
    pub daemon_capabilities: Capabilities,
    /// The daemon's own `oom_score_adj`: the container's is never set lower.
    pub daemon_oom_score_adj: i32,
    /// Host directories backing image `Volumes` that no CRI mount covers (see
    /// [`crate::uncovered_image_volumes`]). Uncovered volumes without an entry are skipped.
    pub image_volumes: Vec<ImageVolume>,
    /// Annotations added to the spec (after the CRI ones, overriding them).
    pub extra_annotations: HashMap<String, String>,
    /// AppArmor / SELinux state of the host.
    pub host: HostFeatures,
}

/// The user a container's process runs as (the identity the CRI reports back in
/// `ContainerStatus.user`, see [`ResolvedUser::container_user`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedUser {
    /// The UID.
    pub uid: u32,
    /// The primary GID.
    pub gid: u32,
    /// All GIDs of the process (OCI `additionalGids`), deduplicated: the primary GID first,
    /// then (policy Merge only) the groups of the image's `/etc/group` listing the user, then
    /// the CRI `supplemental_groups` in request order.
    pub additional_gids: Vec<u32>,
    /// The policy the groups were computed with (`Merge` unless the security context asked
    /// for `Strict`).
    pub supplemental_groups_policy: SupplementalGroupsPolicy,
    /// The user's name when known (from `/etc/passwd`).
    pub username: Option<String>,
    /// The user's home directory from `/etc/passwd`, if found.
    pub home: Option<String>,
}

impl ResolvedUser {
    /// The identity for `ContainerStatus.user` (CRI `ContainerUser.linux`): `uid`, `gid` and
    /// `supplemental_groups` = [`ResolvedUser::additional_gids`] (which include the primary GID,
    /// as `id -G` shows inside the container).
    pub fn container_user(&self) -> ContainerUser {
        ContainerUser {
            linux: Some(LinuxContainerUser {
                uid: i64::from(self.uid),
                gid: i64::from(self.gid),
                supplemental_groups: self.additional_gids.iter().map(|g| i64::from(*g)).collect(),
            }),
        }
    }
}

/// A container's spec and the facts the daemon needs besides it.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// The OCI runtime spec (`config.json`); `root.path` is the given rootfs.
    pub spec: Spec,
    /// The signal that stops the container (the image's `StopSignal`, default `SIGTERM`).
    pub stop_signal: i32,
    /// The user the process runs as; the daemon reports it as `ContainerStatus.user`
    /// ([`ResolvedUser::container_user`]).
    pub user: ResolvedUser,
    /// Whether the process has a terminal (`tty`).
    pub tty: bool,
    /// Image volumes that no CRI mount covers and for which no [`ImageVolume`] was given:
    /// they are not mounted (the path stays part of the rootfs).
    pub skipped_volumes: Vec<String>,
}

/// Everything [`crate::sandbox_spec`] needs to build a pod's infra (pause) container spec.
#[derive(Debug, Clone)]
pub struct SandboxSpecInput<'a> {
    /// The pod sandbox's ID.
    pub sandbox_id: &'a str,
    /// The pod's CRI config.
    pub config: &'a PodSandboxConfig,
    /// The pause binary on the host; bind-mounted read-only on `/pause` and run.
    pub pause_binary: &'a Path,
    /// Arguments after `/pause` (e.g. a subcommand when the binary is multi-call).
    pub pause_args: Vec<String>,
    /// Host directories bind-mounted read-only at the same path (e.g. `/lib`, `/usr/lib` for
    /// a dynamically linked pause binary). Mount points must exist in the rootfs or be
    /// creatable by runc.
    pub read_only_binds: Vec<PathBuf>,
    /// An (empty or minimal) directory used as the infra container's read-only rootfs.
    pub rootfs: &'a Path,
    /// The pod's network/IPC/UTS namespaces to join (`pid` is ignored: the infra container
    /// always gets a new PID namespace, which the pod's containers then join).
    pub namespaces: PodNamespaces,
    /// The cgroup parent; `cgroupsPath` is `<parent>/<sandbox_id>`.
    pub cgroup_parent: String,
    /// The daemon's own `oom_score_adj` (lower bound for the infra process's -998).
    pub daemon_oom_score_adj: i32,
    /// Annotations added to the spec.
    pub extra_annotations: HashMap<String, String>,
}
