//! StreamPodSandboxes: ListPodSandbox's result sent as a stream of chunks (KEP-5825, CRIListStreaming).
use super::*;

/// The ListPodSandbox result in chunks of at most [`STREAM_CHUNK`] items.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::StreamPodSandboxesRequest,
) -> Result<Vec<cri::StreamPodSandboxesResponse>> {
    let all = list_pod_sandbox::handle(c, cri::ListPodSandboxRequest { filter: r.filter }).await?;
    Ok(chunks(all.items, |pod_sandboxes| {
        cri::StreamPodSandboxesResponse { pod_sandboxes }
    }))
}
