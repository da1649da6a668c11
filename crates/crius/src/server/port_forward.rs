//! PortForward: a streaming URL from crius-streaming.
use super::*;

/// The URL of a port-forward session.
pub async fn handle(c: Arc<Crius>, r: cri::PortForwardRequest) -> Result<cri::PortForwardResponse> {
    let pod = c.state.pod(&r.pod_sandbox_id)?.get();
    if pod.state != crate::state::PodState::Ready {
        return Err(Error::FailedPrecondition(format!(
            "pod sandbox {} is not ready",
            pod.id
        )));
    }
    let s = c
        .streaming
        .get()
        .ok_or_else(|| Error::Unimplemented("streaming server not available".into()))?;
    Ok(cri::PortForwardResponse {
        url: s.port_forward(&r)?,
    })
}
