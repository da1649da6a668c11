//! ExecSync.
use super::*;

/// Runs a command in a running container and returns its output.
pub async fn handle(c: Arc<Crius>, r: cri::ExecSyncRequest) -> Result<cri::ExecSyncResponse> {
    c.exec_sync(&r.container_id, r.cmd, r.timeout).await
}
