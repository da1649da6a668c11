//! StreamPodSandboxStats: ListPodSandboxStats's result sent as a stream of chunks (KEP-5825, CRIListStreaming).
use super::*;

/// The ListPodSandboxStats result in chunks of at most [`STREAM_CHUNK`] items.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::StreamPodSandboxStatsRequest,
) -> Result<Vec<cri::StreamPodSandboxStatsResponse>> {
    let all =
        list_pod_sandbox_stats::handle(c, cri::ListPodSandboxStatsRequest { filter: r.filter })
            .await?;
    Ok(chunks(all.stats, |pod_sandbox_stats| {
        cri::StreamPodSandboxStatsResponse { pod_sandbox_stats }
    }))
}
