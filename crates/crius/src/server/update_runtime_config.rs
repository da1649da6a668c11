//! UpdateRuntimeConfig.
use super::*;

/// Records the pod CIDR.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::UpdateRuntimeConfigRequest,
) -> Result<cri::UpdateRuntimeConfigResponse> {
    let cidr = r
        .runtime_config
        .and_then(|rc| rc.network_config)
        .map(|n| n.pod_cidr)
        .unwrap_or_default();
    if !cidr.is_empty() {
        c.be.network.set_pod_cidr(&cidr).await?;
    }
    Ok(cri::UpdateRuntimeConfigResponse {})
}
