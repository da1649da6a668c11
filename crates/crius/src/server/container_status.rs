//! ContainerStatus.
use super::*;

/// The status of one container.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::ContainerStatusRequest,
) -> Result<cri::ContainerStatusResponse> {
    c.container_status(&r.container_id, r.verbose).await
}
