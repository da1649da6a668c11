//! ListMetricDescriptors.
use super::*;

/// The descriptors of every metric ListPodSandboxMetrics reports.
pub async fn handle(
    _c: Arc<Crius>,
    _r: cri::ListMetricDescriptorsRequest,
) -> Result<cri::ListMetricDescriptorsResponse> {
    Ok(cri::ListMetricDescriptorsResponse {
        descriptors: crate::metrics::descriptors(),
    })
}
