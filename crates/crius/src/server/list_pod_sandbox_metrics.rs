//! ListPodSandboxMetrics.
use super::*;

/// The metrics of every ready pod and its running containers.
pub async fn handle(
    c: Arc<Crius>,
    _r: cri::ListPodSandboxMetricsRequest,
) -> Result<cri::ListPodSandboxMetricsResponse> {
    let mut pod_metrics = Vec::new();
    for e in c.state.pods() {
        let pod = e.get();
        if pod.state != crate::state::PodState::Ready {
            continue;
        }
        pod_metrics.push(c.pod_metrics_of(&pod).await);
    }
    Ok(cri::ListPodSandboxMetricsResponse { pod_metrics })
}
