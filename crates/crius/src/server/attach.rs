//! Attach: a streaming URL from crius-streaming.
use super::*;

/// The URL of an attach session.
pub async fn handle(c: Arc<Crius>, r: cri::AttachRequest) -> Result<cri::AttachResponse> {
    c.running(&r.container_id).await?;
    let s = c
        .streaming
        .get()
        .ok_or_else(|| Error::Unimplemented("streaming server not available".into()))?;
    Ok(cri::AttachResponse { url: s.attach(&r)? })
}
