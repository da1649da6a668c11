//! ListPodSandboxStats.
use super::*;

/// Stats of the pods matching the filter.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::ListPodSandboxStatsRequest,
) -> Result<cri::ListPodSandboxStatsResponse> {
    let f = r.filter.unwrap_or_default();
    let mut stats = Vec::new();
    for e in c.state.pods() {
        let pod = e.get();
        if (!f.id.is_empty() && !pod.id.starts_with(&f.id))
            || !crate::stats::labels_match(&pod.config.labels, &f.label_selector)
        {
            continue;
        }
        stats.push(c.pod_stats_of(&pod).await);
    }
    Ok(cri::ListPodSandboxStatsResponse { stats })
}
