//! ReopenContainerLog.
use super::*;

/// Asks the monitor to reopen the container's log file.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::ReopenContainerLogRequest,
) -> Result<cri::ReopenContainerLogResponse> {
    c.reopen_container_log(&r.container_id).await?;
    Ok(cri::ReopenContainerLogResponse {})
}
