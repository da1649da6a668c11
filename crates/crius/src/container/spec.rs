//! Which PID namespace a container joins, and stop-signal parsing.

use k8s_cri::v1 as cri;

use crate::state::PodRecord;

/// Where a container's PID namespace comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PidNs {
    /// Its own.
    Private,
    /// The host's.
    Host,
    /// Another process's (`/proc/<pid>/ns/pid`: the pod infra or a target container).
    Join(String),
}

/// The container's PID namespace choice from its security context.
pub fn pid_mode(config: &cri::ContainerConfig, pod: &PodRecord) -> i32 {
    config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
        .map(|n| n.pid)
        .unwrap_or_else(|| pod.ns_options().pid)
}

/// The target container ID for `NamespaceMode::Target`.
pub fn pid_target(config: &cri::ContainerConfig) -> Option<String> {
    config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
        .map(|n| n.target_id.clone())
        .filter(|t| !t.is_empty())
}
