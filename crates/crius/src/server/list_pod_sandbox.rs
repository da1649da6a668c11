//! ListPodSandbox.
use super::*;

/// Pods matching the filter.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::ListPodSandboxRequest,
) -> Result<cri::ListPodSandboxResponse> {
    Ok(cri::ListPodSandboxResponse {
        items: c.list_pod_sandbox(r.filter),
    })
}
