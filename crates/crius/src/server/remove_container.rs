//! RemoveContainer.
use super::*;

/// Removes a container, stopping it first.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::RemoveContainerRequest,
) -> Result<cri::RemoveContainerResponse> {
    c.remove_container(&r.container_id).await?;
    Ok(cri::RemoveContainerResponse {})
}
