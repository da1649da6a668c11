//! ListContainerStats.
use super::*;

/// Stats of the containers matching the filter.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::ListContainerStatsRequest,
) -> Result<cri::ListContainerStatsResponse> {
    let f = r.filter.unwrap_or_default();
    let mut stats = Vec::new();
    for e in c.state.containers() {
        let rec = e.get();
        if (!f.id.is_empty() && !rec.id.starts_with(&f.id))
            || (!f.pod_sandbox_id.is_empty() && !rec.pod_id.starts_with(&f.pod_sandbox_id))
            || !crate::stats::labels_match(&rec.config.labels, &f.label_selector)
        {
            continue;
        }
        stats.push(c.container_stats_of(&rec).await);
    }
    Ok(cri::ListContainerStatsResponse { stats })
}
