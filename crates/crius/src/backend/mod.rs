//! The collaborators the daemon drives, as traits: the OCI runtime (crius-oci), the image store
//! (crius-image), pod namespaces and CNI (crius-network), and the spec generator (crius-spec).
//!
//! The daemon logic is written against these traits only; `adapters` implements them over the
//! real crates. Keeping the seam here means a change in a library's API touches one adapter
//! file, and unit tests can fake a collaborator.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_cri::v1 as cri;

use crate::error::Result;

/// What `create` needs to launch a container under its monitor.
#[derive(Debug, Clone)]
pub struct CreateOpts {
    /// Container ID (64 hex).
    pub id: String,
    /// Bundle directory holding config.json.
    pub bundle: PathBuf,
    /// CRI log file the monitor writes (empty path: no log).
    pub log_path: Option<PathBuf>,
    /// Keep stdin open.
    pub stdin: bool,
    /// Close stdin after the first attach ends.
    pub stdin_once: bool,
    /// Allocate a terminal.
    pub tty: bool,
}

/// A container's state as the OCI runtime reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtStatus {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Paused (frozen).
    Paused,
    /// Stopped (exited).
    Stopped,
}

/// The runtime's view of one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtState {
    /// Status.
    pub status: RtStatus,
    /// PID of the container's init process (0 when stopped).
    pub pid: u32,
}

/// How a container ended, from the monitor's exit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    /// Exit code (128+signal when killed by a signal).
    pub code: i32,
    /// When it ended, ns since the epoch.
    pub finished_at: i64,
    /// Whether the kernel OOM killer ended it.
    pub oom: bool,
}

/// The result of a synchronous exec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Captured stdout.
    pub stdout: Vec<u8>,
    /// Captured stderr.
    pub stderr: Vec<u8>,
    /// Exit code of the command.
    pub exit_code: i32,
}

/// A container's monitor started before its bundle was complete
/// ([`ContainerRuntime::spawn_create`]). Dropping it kills the monitor and removes what it made.
#[tonic::async_trait]
pub trait PendingCreate: Send {
    /// Lets the monitor create the container (`config.json` and the rootfs in place now);
    /// returns the init PID.
    async fn start(self: Box<Self>) -> Result<u32>;
}

/// One OCI runtime handler (runc, crun) with its monitor.
#[tonic::async_trait]
pub trait ContainerRuntime: Send + Sync {
    /// Starts the container's monitor, blocked until [`PendingCreate::start`], so that its
    /// start-up overlaps the making of the rootfs and spec. The bundle directory and the log
    /// file's directory must exist.
    async fn spawn_create(&self, opts: &CreateOpts) -> Result<Box<dyn PendingCreate>>;
    /// Creates the container under a monitor; returns the init PID.
    async fn create(&self, opts: &CreateOpts) -> Result<u32>;
    /// Starts a created container.
    async fn start(&self, id: &str) -> Result<()>;
    /// Sends `signal`, waits up to `timeout`, then SIGKILL; returns once it has exited.
    async fn stop(&self, id: &str, timeout: Duration, signal: i32) -> Result<()>;
    /// [`ContainerRuntime::stop`] of a container (never paused) whose init `pid` is known:
    /// without asking the runtime for its state when the pid is still the container's
    /// (`created`: never started, killed outright).
    async fn stop_known(
        &self,
        id: &str,
        pid: u32,
        created: bool,
        timeout: Duration,
        signal: i32,
    ) -> Result<()> {
        let _ = (pid, created);
        self.stop(id, timeout, signal).await
    }
    /// Deletes the runtime's container state; idempotent.
    async fn delete(&self, id: &str) -> Result<()>;
    /// The runtime's state, `None` when it does not know the container.
    async fn state(&self, id: &str) -> Result<Option<RtState>>;
    /// The exit record, `None` while running (or never started).
    async fn exit_info(&self, id: &str) -> Result<Option<ExitInfo>>;
    /// Waits (bounded) for the monitor's exit record after the process ended.
    async fn wait_exit(&self, id: &str, timeout: Duration) -> Result<ExitInfo>;
    /// Runs `cmd` in the container; `timeout` None means no limit; timeout → DeadlineExceeded.
    async fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Option<Duration>,
    ) -> Result<ExecOutput>;
    /// Updates the container's resources.
    async fn update(&self, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()>;
    /// Asks the monitor to reopen the log file.
    async fn reopen_log(&self, id: &str) -> Result<()>;
    /// The underlying crius-oci runtime (for streaming exec/attach sessions), if any.
    fn oci(&self) -> Option<&crius_oci::Runtime> {
        None
    }
}

/// An image as the store knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageInfo {
    /// Image ID (`sha256:<config digest>`).
    pub id: String,
    /// Tags, e.g. `docker.io/library/busybox:1`.
    pub repo_tags: Vec<String>,
    /// Digests, e.g. `docker.io/library/busybox@sha256:...`.
    pub repo_digests: Vec<String>,
    /// Size in bytes.
    pub size: u64,
    /// Numeric user of the image's USER, if numeric.
    pub uid: Option<i64>,
    /// Named user of the image's USER, if not numeric.
    pub username: String,
    /// Whether the image must never be garbage collected.
    pub pinned: bool,
}

impl ImageInfo {
    /// The reference recorded as a container's `image_ref`: a repo digest, else the ID.
    pub fn image_ref(&self) -> String {
        self.repo_digests
            .first()
            .cloned()
            .unwrap_or_else(|| self.id.clone())
    }
}

/// Registry credentials from the CRI request.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// base64 "user:password".
    pub auth: String,
    /// Identity token.
    pub identity_token: String,
    /// Registry token.
    pub registry_token: String,
}

/// Usage of the image filesystem.
#[derive(Debug, Clone, Default)]
pub struct FsUsage {
    /// Mount point of the filesystem holding the store.
    pub mountpoint: String,
    /// Bytes used by the store.
    pub used_bytes: u64,
    /// Inodes used by the store.
    pub inodes_used: u64,
}

/// The image store.
#[tonic::async_trait]
pub trait ImageStore: Send + Sync {
    /// Pulls `reference`; returns the image ref (repo digest or ID).
    async fn pull(&self, reference: &str, auth: Option<Auth>) -> Result<String>;
    /// All images.
    async fn list(&self) -> Result<Vec<ImageInfo>>;
    /// One image by name, ID, ID prefix or digest reference; `None` when unknown.
    async fn status(&self, reference: &str) -> Result<Option<ImageInfo>>;
    /// Removes an image; `NotFound` when unknown.
    async fn remove(&self, reference: &str) -> Result<()>;
    /// Usage of the store's filesystem.
    async fn fs_info(&self) -> Result<FsUsage>;
    /// The image's configuration (entrypoint, env, user, stop signal...).
    async fn config(&self, image_id: &str) -> Result<oci_spec::image::ImageConfiguration>;
    /// Mounts a writable rootfs of the image for a container; returns its path.
    async fn mount_rootfs(&self, image_id: &str, container_id: &str) -> Result<PathBuf>;
    /// [`ImageStore::mount_rootfs`] for a container in the user namespace `userns`, whose root
    /// is host `root_uid`/`root_gid`: idmapped, so image files owned by root are root's inside.
    async fn mount_rootfs_idmapped(
        &self,
        image_id: &str,
        container_id: &str,
        userns: &std::path::Path,
        root_uid: u32,
        root_gid: u32,
    ) -> Result<PathBuf>;
    /// Unmounts and removes a container's rootfs; idempotent.
    async fn unmount_rootfs(&self, container_id: &str) -> Result<()>;
    /// Writable layer usage (bytes, inodes) of a container, if known.
    async fn writable_layer_usage(&self, container_id: &str) -> Result<Option<(u64, u64)>>;
}

/// Which namespaces a pod wants pinned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NsWanted {
    /// A network namespace (false = host network).
    pub net: bool,
    /// An IPC namespace (false = host IPC).
    pub ipc: bool,
    /// A UTS namespace (false = host UTS).
    pub uts: bool,
    /// A user namespace with these mappings (userns mode POD); it owns the others.
    pub user: Option<crius_spec::UserNamespaceMappings>,
}

/// Paths of a pod's pinned namespaces (bind mounts).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PodNamespaces {
    /// Network namespace.
    pub net: Option<PathBuf>,
    /// IPC namespace.
    pub ipc: Option<PathBuf>,
    /// UTS namespace.
    pub uts: Option<PathBuf>,
    /// User namespace (userns mode POD), owner of the others.
    #[serde(default)]
    pub user: Option<PathBuf>,
}

/// What CNI needs to attach or detach a pod (a detach needs only the ID).
#[derive(Debug, Clone, Default)]
pub struct PodNetwork {
    /// Pod sandbox ID (CNI container ID).
    pub id: String,
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod UID.
    pub uid: String,
    /// Network namespace path.
    pub netns: PathBuf,
    /// Port mappings (portmap plugin).
    pub port_mappings: Vec<cri::PortMapping>,
    /// DNS settings (dns capability).
    pub dns: Option<cri::DnsConfig>,
}

/// Pod namespaces and CNI.
#[tonic::async_trait]
pub trait Network: Send + Sync {
    /// Creates and pins the wanted namespaces of a pod, setting `hostname` in its UTS ns.
    async fn create_namespaces(
        &self,
        pod_id: &str,
        hostname: &str,
        want: NsWanted,
    ) -> Result<PodNamespaces>;
    /// Unpins and removes a pod's namespaces; idempotent.
    async fn remove_namespaces(&self, pod_id: &str) -> Result<()>;
    /// CNI ADD; returns the pod's IPs (first is the primary).
    async fn setup(&self, pod: &PodNetwork) -> Result<Vec<String>>;
    /// CNI DEL; idempotent.
    async fn teardown(&self, pod: &PodNetwork) -> Result<()>;
    /// The pod IDs with CNI state left to tear down (set up, not yet deleted).
    async fn attached_pods(&self) -> Result<Vec<String>>;
    /// `Ok` when the network is ready, else the reason and message.
    async fn status(&self) -> std::result::Result<(), (String, String)>;
    /// Records the pod CIDR from UpdateRuntimeConfig.
    async fn set_pod_cidr(&self, cidr: &str) -> Result<()>;
}

/// What the spec generator needs for one container.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    /// Container ID.
    pub id: &'a str,
    /// The CRI container config.
    pub config: &'a cri::ContainerConfig,
    /// The pod's record (its CRI config, namespaces, files, cgroup parent).
    pub pod: &'a crate::state::PodRecord,
    /// The image's configuration.
    pub image: &'a oci_spec::image::ImageConfiguration,
    /// The image name as the user gave it.
    pub image_name: &'a str,
    /// The mounted rootfs.
    pub rootfs: &'a std::path::Path,
    /// The bundle directory (image volumes are made under it).
    pub bundle: &'a std::path::Path,
    /// The pod's shared PID namespace (infra), if any.
    pub pod_pid_ns: Option<PathBuf>,
    /// The target container's PID namespace (NamespaceMode::Target).
    pub target_pid_ns: Option<PathBuf>,
    /// The CRI log path.
    pub log_path: Option<PathBuf>,
}

/// A generated container spec and the facts the daemon keeps besides it.
#[derive(Debug, Clone)]
pub struct GeneratedSpec {
    /// The OCI runtime spec.
    pub spec: oci_spec::runtime::Spec,
    /// The stop signal (image StopSignal, else SIGTERM).
    pub stop_signal: i32,
    /// The user the process runs as (uid, gid, supplementary gids).
    pub user: Option<(u32, u32, Vec<u32>)>,
}

/// Builds OCI runtime specs from CRI configs.
pub trait SpecGenerator: Send + Sync {
    /// The complete spec of a container.
    fn container_spec(&self, input: &SpecInput<'_>) -> Result<GeneratedSpec>;
    /// The OCI resources of an UpdateContainerResources request.
    fn linux_resources(
        &self,
        res: &cri::LinuxContainerResources,
    ) -> Result<oci_spec::runtime::LinuxResources>;
    /// Checks a pod's config before anything is made (sysctls vs. its namespaces).
    fn validate_pod(&self, config: &cri::PodSandboxConfig) -> Result<()>;
    /// The cgroup path (relative to the hierarchy roots) of a container under `parent`.
    fn cgroups_path(&self, parent: &str, id: &str) -> String;
}

/// All collaborators of the daemon.
#[derive(Clone)]
pub struct Backends {
    /// Runtime handlers by name.
    pub runtimes: std::collections::BTreeMap<String, Arc<dyn ContainerRuntime>>,
    /// The image store.
    pub images: Arc<dyn ImageStore>,
    /// Namespaces and CNI.
    pub network: Arc<dyn Network>,
    /// Spec generator.
    pub spec: Arc<dyn SpecGenerator>,
}
