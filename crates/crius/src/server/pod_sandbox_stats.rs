//! PodSandboxStats.
use super::*;

/// Stats of one pod.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::PodSandboxStatsRequest,
) -> Result<cri::PodSandboxStatsResponse> {
    let pod = c.state.pod(&r.pod_sandbox_id)?.get();
    Ok(cri::PodSandboxStatsResponse {
        stats: Some(c.pod_stats_of(&pod).await),
    })
}
