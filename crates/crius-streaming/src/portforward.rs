//! The `portforward.k8s.io` protocol over SPDY: per forwarded connection the client opens an
//! error stream and a data stream sharing `port` and `requestID` headers.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::backend::Backend;
use crate::remotecommand::client_gone;
use crate::spdy::{header, Connection, IncomingStream};
use crate::types::PortForwardStream;

/// The protocol name negotiated by `X-Stream-Protocol-Version` (or tunnelled in WebSocket).
pub(crate) const PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol of client-go's SPDY-over-WebSocket tunnel.
pub(crate) const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

const PIPE_SIZE: usize = 64 * 1024;

#[derive(Default)]
struct Pair {
    error: Option<IncomingStream>,
    data: Option<IncomingStream>,
}

/// Serves port forwarding on an established SPDY connection until the client hangs up.
pub(crate) async fn serve<B: Backend>(
    backend: Arc<B>,
    pod_sandbox_id: String,
    mut conn: Connection,
) {
    let mut pending: HashMap<String, Pair> = HashMap::new();
    let mut forwards = JoinSet::new();
    let mut gone = conn.gone.clone();
    loop {
        let stream = tokio::select! {
            s = conn.incoming.recv() => match s {
                Some(s) => s,
                None => break,
            },
            _ = client_gone(&mut gone) => break,
            Some(_) = forwards.join_next(), if !forwards.is_empty() => continue,
        };
        let request_id = header(&stream.headers, "requestid")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("port-{}", header(&stream.headers, "port").unwrap_or("")));
        let entry = pending.entry(request_id.clone()).or_default();
        match header(&stream.headers, "streamtype") {
            Some("error") => entry.error = Some(stream),
            Some("data") => entry.data = Some(stream),
            other => {
                tracing::debug!("portforward: ignoring stream of type {other:?}");
                continue;
            }
        }
        if entry.error.is_some() && entry.data.is_some() {
            if let Some(Pair {
                error: Some(error),
                data: Some(data),
            }) = pending.remove(&request_id)
            {
                let backend = backend.clone();
                let pod = pod_sandbox_id.clone();
                forwards.spawn(async move { forward(&*backend, pod, data, error).await });
            }
        }
    }
    // The client is gone: cancel what is still forwarding (drops the backend futures).
    forwards.abort_all();
    while forwards.join_next().await.is_some() {}
    conn.close(std::time::Duration::ZERO).await;
}

async fn forward<B: Backend>(
    backend: &B,
    pod_sandbox_id: String,
    mut data: IncomingStream,
    mut error: IncomingStream,
) {
    let port = header(&data.headers, "port").and_then(|p| p.trim().parse::<u16>().ok());
    let Some(port) = port.filter(|p| *p != 0) else {
        let raw = header(&data.headers, "port").unwrap_or("");
        let msg = format!("portforward: invalid port {raw:?}");
        let _ = error.send.send(msg.as_bytes()).await;
        let _ = error.send.finish().await;
        let _ = data.send.finish().await;
        return;
    };
    let (theirs, ours) = tokio::io::duplex(PIPE_SIZE);
    let (mut our_rd, mut our_wr) = tokio::io::split(ours);
    let mut recv = std::mem::replace(&mut data.recv, tokio::sync::mpsc::channel(1).1);
    let inbound = tokio::spawn(async move {
        while let Some(chunk) = recv.recv().await {
            if our_wr.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = our_wr.shutdown().await;
    });
    let mut send = data.send;
    let outbound = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match our_rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if send.send(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = send.finish().await;
    };
    let work = backend.port_forward(pod_sandbox_id.clone(), port, PortForwardStream::new(theirs));
    let (result, ()) = tokio::join!(work, outbound);
    inbound.abort();
    if let Err(e) = result {
        let msg = format!("error forwarding port {port} to pod {pod_sandbox_id}: {e}");
        let _ = error.send.send(msg.as_bytes()).await;
    }
    let _ = error.send.finish().await;
}
