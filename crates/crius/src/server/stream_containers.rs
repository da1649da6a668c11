//! StreamContainers: ListContainers's result sent as a stream of chunks (KEP-5825, CRIListStreaming).
use super::*;

/// The ListContainers result in chunks of at most [`STREAM_CHUNK`] items.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::StreamContainersRequest,
) -> Result<Vec<cri::StreamContainersResponse>> {
    let all = list_containers::handle(c, cri::ListContainersRequest { filter: r.filter }).await?;
    Ok(chunks(all.containers, |containers| {
        cri::StreamContainersResponse { containers }
    }))
}
