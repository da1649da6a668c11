//! The durable records of pods and containers.

use std::collections::HashMap;
use std::path::PathBuf;

use k8s_cri::v1 as cri;
use serde::{Deserialize, Serialize};

use crate::backend::PodNamespaces;

/// Where an object is in its life: `Creating` records are written before any resource is
/// made, so a crash mid-create is rolled back at the next start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// Being created: roll back at startup.
    Creating,
    /// Fully created.
    Created,
    /// Being removed: finish the removal at startup.
    Removing,
}

/// A pod's CRI state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodState {
    /// Ready.
    Ready,
    /// Stopped (or never became ready).
    NotReady,
}

/// The durable record of a pod sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodRecord {
    /// 64-hex ID.
    pub id: String,
    /// Reserved name `k8s_POD_<name>_<namespace>_<uid>_<attempt>`.
    pub name: String,
    /// Lifecycle stage.
    pub stage: Stage,
    /// CRI state.
    pub state: PodState,
    /// Creation time, ns.
    pub created_at: i64,
    /// The CRI config as given.
    pub config: cri::PodSandboxConfig,
    /// The runtime handler.
    pub runtime_handler: String,
    /// Pinned namespaces.
    pub namespaces: PodNamespaces,
    /// Pod IPs (first is primary).
    pub ips: Vec<String>,
    /// Whether CNI ADD succeeded (so DEL is needed).
    pub network_attached: bool,
    /// The pod's run directory (hosts, resolv.conf, hostname, shm).
    pub run_dir: PathBuf,
    /// Whether the /dev/shm tmpfs is mounted.
    pub shm_mounted: bool,
    /// Cgroup parent of the pod's containers.
    pub cgroup_parent: String,
    /// ID of the infra container (crius-pause), only with a pod-shared PID namespace.
    pub infra_id: Option<String>,
    /// PID of the infra process.
    pub infra_pid: Option<u32>,
    /// The cgroup parent directories that did not exist before this pod (so it removes them).
    #[serde(default)]
    pub created_cgroup_dirs: Vec<PathBuf>,
}

impl PodRecord {
    /// The CRI metadata.
    pub fn metadata(&self) -> cri::PodSandboxMetadata {
        self.config.metadata.clone().unwrap_or_default()
    }

    /// The namespace options of the pod.
    pub fn ns_options(&self) -> cri::NamespaceOption {
        self.config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone())
            .unwrap_or_default()
    }

    /// Whether the pod uses the host network.
    pub fn host_network(&self) -> bool {
        self.ns_options().network == cri::NamespaceMode::Node as i32
    }

    /// Labels.
    pub fn labels(&self) -> HashMap<String, String> {
        self.config.labels.clone()
    }
}

/// A container's CRI state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerState {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Exited.
    Exited,
    /// Unknown (runtime lost it).
    Unknown,
}

impl ContainerState {
    /// The CRI enum value.
    pub fn cri(self) -> cri::ContainerState {
        match self {
            ContainerState::Created => cri::ContainerState::ContainerCreated,
            ContainerState::Running => cri::ContainerState::ContainerRunning,
            ContainerState::Exited => cri::ContainerState::ContainerExited,
            ContainerState::Unknown => cri::ContainerState::ContainerUnknown,
        }
    }
}

/// The durable record of a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64-hex ID.
    pub id: String,
    /// Pod sandbox ID.
    pub pod_id: String,
    /// Reserved name `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`.
    pub name: String,
    /// Lifecycle stage.
    pub stage: Stage,
    /// CRI state.
    pub state: ContainerState,
    /// The CRI config as given.
    pub config: cri::ContainerConfig,
    /// The image ID.
    pub image_id: String,
    /// The image ref (repo digest or ID).
    pub image_ref: String,
    /// Runtime handler.
    pub runtime_handler: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Log file (empty when none).
    pub log_path: String,
    /// Creation time, ns.
    pub created_at: i64,
    /// Start time, ns (0 = not started).
    pub started_at: i64,
    /// Finish time, ns (0 = not finished).
    pub finished_at: i64,
    /// Exit code.
    pub exit_code: i32,
    /// Whether the OOM killer ended it.
    pub oom_killed: bool,
    /// Extra message (e.g. why the state is unknown).
    pub message: String,
    /// The stop signal (from the image, else SIGTERM).
    pub stop_signal: i32,
    /// The user the process runs as (uid, gid, supplementary gids).
    #[serde(default)]
    pub user: Option<(u32, u32, Vec<u32>)>,
    /// Init PID while running.
    pub pid: u32,
    /// Whether the rootfs is mounted.
    pub rootfs_mounted: bool,
    /// Rootfs IDs (in the image store) of the image volumes mounted for this container.
    #[serde(default)]
    pub image_volumes: Vec<String>,
    /// Resources last applied (UpdateContainerResources).
    pub resources: Option<cri::LinuxContainerResources>,
}

impl ContainerRecord {
    /// The CRI metadata.
    pub fn metadata(&self) -> cri::ContainerMetadata {
        self.config.metadata.clone().unwrap_or_default()
    }

    /// The CRI reason of the current state.
    pub fn reason(&self) -> &'static str {
        match self.state {
            ContainerState::Exited if self.oom_killed => "OOMKilled",
            ContainerState::Exited if self.exit_code == 0 => "Completed",
            ContainerState::Exited => "Error",
            _ => "",
        }
    }
}
