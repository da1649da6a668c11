//! PodSandboxStatus.
use super::*;

/// The status of a pod sandbox and its containers.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::PodSandboxStatusRequest,
) -> Result<cri::PodSandboxStatusResponse> {
    let entry = c.state.pod(&r.pod_sandbox_id)?;
    for ctr in c.state.pod_containers(&entry.get().id) {
        c.refresh(&ctr).await;
    }
    c.pod_sandbox_status(&r.pod_sandbox_id, r.verbose)
}
