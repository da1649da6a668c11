//! StreamPodSandboxMetrics: ListPodSandboxMetrics's result sent as a stream of chunks (KEP-5825, CRIListStreaming).
use super::*;

/// The ListPodSandboxMetrics result in chunks of at most [`STREAM_CHUNK`] items.
pub async fn handle(
    c: Arc<Crius>,
    _r: cri::StreamPodSandboxMetricsRequest,
) -> Result<Vec<cri::StreamPodSandboxMetricsResponse>> {
    let all = list_pod_sandbox_metrics::handle(c, cri::ListPodSandboxMetricsRequest {}).await?;
    Ok(chunks(all.pod_metrics, |pod_sandbox_metrics| {
        cri::StreamPodSandboxMetricsResponse {
            pod_sandbox_metrics,
        }
    }))
}
