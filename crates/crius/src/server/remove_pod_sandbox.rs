//! RemovePodSandbox.
use super::*;

/// Removes a pod sandbox and its containers.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::RemovePodSandboxRequest,
) -> Result<cri::RemovePodSandboxResponse> {
    c.remove_pod_sandbox(&r.pod_sandbox_id).await?;
    Ok(cri::RemovePodSandboxResponse {})
}
