//! ContainerStats.
use super::*;

/// Stats of one container.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::ContainerStatsRequest,
) -> Result<cri::ContainerStatsResponse> {
    let rec = c.state.container(&r.container_id)?.get();
    Ok(cri::ContainerStatsResponse {
        stats: Some(c.container_stats_of(&rec).await),
    })
}
