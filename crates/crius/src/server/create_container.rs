//! CreateContainer.
use super::*;

/// Creates a container in a ready pod.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::CreateContainerRequest,
) -> Result<cri::CreateContainerResponse> {
    let container_id = c.create_container(&r.pod_sandbox_id, r.config).await?;
    Ok(cri::CreateContainerResponse { container_id })
}
