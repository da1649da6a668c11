//! Exec: a streaming URL from crius-streaming.
use super::*;

/// The URL of an exec session.
pub async fn handle(c: Arc<Crius>, r: cri::ExecRequest) -> Result<cri::ExecResponse> {
    c.running(&r.container_id).await?;
    if !(r.stdin || r.stdout || r.stderr) {
        return Err(Error::InvalidArgument(
            "one of stdin, stdout, stderr must be set".into(),
        ));
    }
    let s = c
        .streaming
        .get()
        .ok_or_else(|| Error::Unimplemented("streaming server not available".into()))?;
    Ok(cri::ExecResponse { url: s.exec(&r)? })
}
