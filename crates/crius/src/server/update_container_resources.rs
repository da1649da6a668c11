//! UpdateContainerResources.
use super::*;

/// Updates a container's cgroup resources.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::UpdateContainerResourcesRequest,
) -> Result<cri::UpdateContainerResourcesResponse> {
    c.update_container_resources(&r.container_id, r.linux)
        .await?;
    Ok(cri::UpdateContainerResourcesResponse {})
}
