//! StartContainer.
use super::*;

/// Starts a created container.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::StartContainerRequest,
) -> Result<cri::StartContainerResponse> {
    c.start_container(&r.container_id).await?;
    Ok(cri::StartContainerResponse {})
}
