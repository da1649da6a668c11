//! StopPodSandbox.
use super::*;

/// Stops a pod sandbox and its containers.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::StopPodSandboxRequest,
) -> Result<cri::StopPodSandboxResponse> {
    c.stop_pod_sandbox(&r.pod_sandbox_id).await?;
    Ok(cri::StopPodSandboxResponse {})
}
