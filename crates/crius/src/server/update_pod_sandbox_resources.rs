//! UpdatePodSandboxResources: the kubelet tells the runtime the pod-level resources after it has
//! resized the pod's cgroup itself (the call is best effort for the kubelet). crius keeps no
//! pod-level resource state of its own (each container's limits live in its own cgroup and
//! change through UpdateContainerResources), so the call checks that the pod exists and the values
//! are sane, and records them in the log.
use super::*;

/// Accepts the pod-level resources of an existing pod.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::UpdatePodSandboxResourcesRequest,
) -> Result<cri::UpdatePodSandboxResourcesResponse> {
    let pod = c.state.pod(&r.pod_sandbox_id)?;
    for (what, res) in [("overhead", &r.overhead), ("resources", &r.resources)] {
        if let Some(res) = res {
            if res.cpu_period < 0 || res.cpu_quota < -1 || res.memory_limit_in_bytes < 0 {
                return Err(Error::InvalidArgument(format!(
                    "pod sandbox {}: {what}: negative CPU period, CPU quota below -1 or negative memory limit",
                    pod.get().id
                )));
            }
        }
    }
    tracing::info!(pod = %pod.get().id, overhead = ?r.overhead, resources = ?r.resources, "pod-level resources updated by the kubelet");
    Ok(cri::UpdatePodSandboxResourcesResponse {})
}
