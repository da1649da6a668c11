//! crius-spec: builds OCI runtime specs (`config.json`) from CRI configs and image configs.
//!
//! A pure library: no daemon state. The only files it reads are the container rootfs's
//! `/etc/passwd` and `/etc/group` (never following symlinks out of the rootfs), seccomp
//! profile files, the host's `/dev` (privileged containers), device nodes named by the
//! request, `/proc/self/{status,mountinfo}` and `/proc/sys/kernel/hostname`.
//!
//! Entry points:
//! - [`container_spec`] for CreateContainer,
//! - [`sandbox_spec`] for a pod's infra (pause) container,
//! - [`linux_resources`] for UpdateContainerResources,
//! - [`daemon_capabilities`], [`own_oom_score_adj`], [`HostFeatures::detect`],
//!   [`uncovered_image_volumes`] to gather
//!   the inputs,
//! - [`recursive_read_only_supported`] and [`SUPPLEMENTAL_GROUPS_POLICY_SUPPORTED`] for the
//!   `Status` response's feature flags.
//!
//! Errors are [`SpecError`]; [`SpecError::is_invalid_argument`] tells which are the request's
//! fault (gRPC `InvalidArgument`).
//!
//! Choices worth knowing (each module documents its rules):
//! - seccomp: no profile requested (typed field absent, legacy string empty) = unconfined, as
//!   the CRI defines; `RuntimeDefault` = [`default_seccomp_profile`] (EPERM allowlist,
//!   capability-gated extras, `clone3` → ENOSYS). Privileged containers get no filter.
//! - capabilities are never granted beyond the daemon's own; non-root users keep only their
//!   ambient capabilities in the effective/permitted sets (as `execve` would do).
//! - `process.rlimits` is left unset: containers inherit the daemon's limits (raising the hard
//!   NOFILE limit would need CAP_SYS_RESOURCE).
//! - masked/readonly paths: the CRI lists when non-empty, else the defaults; none when
//!   privileged.
//! - mounts: later groups win on the same destination (defaults < pod files < image volumes <
//!   CRI mounts), ordered parent-first. HOST_TO_CONTAINER / BIDIRECTIONAL need the host path
//!   on a shared (or slave) mount, else InvalidArgument. `recursive_read_only` needs
//!   `readonly` and PRIVATE propagation (else InvalidArgument) and adds the `rro` option.
//! - supplemental groups: policy Merge adds the image's `/etc/group` memberships, Strict
//!   only the primary GID and the CRI list; [`ResolvedUser::container_user`] reports them.
//! - PID mode POD without a pod PID namespace (no infra process) = a new PID namespace.

pub mod annotations;
mod caps;
mod container;
mod devices;
mod error;
mod features;
mod mounts;
mod namespaces;
mod process;
mod resources;
mod sandbox;
mod seccomp;
mod security;
mod sysctl;
mod types;
mod user;
mod userns;

pub use caps::{
    all_capabilities, capabilities_from_status, container_capabilities, daemon_capabilities,
    parse_capability, parse_capability_mask, DEFAULT_CAPABILITIES,
};
pub use container::{cgroups_path, container_spec};
pub use devices::host_devices;
pub use error::{Result, SpecError};
pub use features::{
    kernel_supports_mount_setattr, recursive_read_only_supported, runtime_supports_rro,
    SUPPLEMENTAL_GROUPS_POLICY_SUPPORTED,
};
pub use mounts::{clean_container_path, uncovered_image_volumes};
pub use namespaces::pid_namespace_target;
pub use process::{cri_signal, parse_signal, signal_to_cri, DEFAULT_PATH};
pub use resources::{
    linux_resources, linux_resources_on, oom_score_adj, own_oom_score_adj, pids_limit,
    set_default_pids_limit, HostTopology,
};
pub use sandbox::{sandbox_spec, PAUSE_ID, PAUSE_PATH};
pub use seccomp::{
    default_profile as default_seccomp_profile, load_profile as load_seccomp_profile,
};
pub use security::{DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS};
pub use sysctl::pod_sysctls;
pub use types::{
    ContainerSpec, ContainerSpecInput, HostFeatures, ImageVolume, PodFiles, PodNamespaces,
    ResolvedUser, SandboxSpecInput,
};
pub use user::{resolve_in_root, resolve_user};
pub use userns::{join_user_namespace, pod_user_namespace, UserNamespaceMappings};
