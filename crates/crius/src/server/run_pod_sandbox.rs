//! RunPodSandbox.
use super::*;

/// Creates and starts a pod sandbox.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::RunPodSandboxRequest,
) -> Result<cri::RunPodSandboxResponse> {
    let pod_sandbox_id = c.run_pod_sandbox(r.config, r.runtime_handler).await?;
    Ok(cri::RunPodSandboxResponse { pod_sandbox_id })
}
