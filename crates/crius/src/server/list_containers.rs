//! ListContainers.
use super::*;

/// Containers matching the filter.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::ListContainersRequest,
) -> Result<cri::ListContainersResponse> {
    Ok(cri::ListContainersResponse {
        containers: c.list_containers(r.filter),
    })
}
