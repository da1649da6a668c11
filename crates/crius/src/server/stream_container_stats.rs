//! StreamContainerStats: ListContainerStats's result sent as a stream of chunks (KEP-5825, CRIListStreaming).
use super::*;

/// The ListContainerStats result in chunks of at most [`STREAM_CHUNK`] items.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::StreamContainerStatsRequest,
) -> Result<Vec<cri::StreamContainerStatsResponse>> {
    let all = list_container_stats::handle(c, cri::ListContainerStatsRequest { filter: r.filter })
        .await?;
    Ok(chunks(all.stats, |container_stats| {
        cri::StreamContainerStatsResponse { container_stats }
    }))
}
