//! StopContainer.
use super::*;

/// Stops a container (stop signal, timeout, then SIGKILL).
pub async fn handle(
    c: Arc<Crius>,
    r: cri::StopContainerRequest,
) -> Result<cri::StopContainerResponse> {
    c.stop_container(&r.container_id, r.timeout).await?;
    Ok(cri::StopContainerResponse {})
}
