//! A minimal ttrpc peer over the NRI multiplexer: unary requests only.
//!
//! A [`Session`] owns one unix stream. It is the client on one logical connection (it sends
//! requests there and matches responses by stream id) and the server on the other (each incoming
//! request is answered by the handler). The runtime is the client on
//! [`PLUGIN_SERVICE_CONN`](crate::frame::PLUGIN_SERVICE_CONN) and the server on
//! [`RUNTIME_SERVICE_CONN`](crate::frame::RUNTIME_SERVICE_CONN); a plugin (used by the tests)
//! takes the opposite roles.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::CallError;
use crate::frame::{
    decode_mux_header, encode_message, StreamDecoder, MESSAGE_REQUEST, MESSAGE_RESPONSE,
    MUX_HEADER_LEN, TTRPC_HEADER_LEN, TTRPC_MAX_MESSAGE,
};

/// A ttrpc request (ttrpc's `Request` message).
#[derive(Clone, PartialEq, Message)]
pub struct Request {
    /// Fully qualified service name, e.g. `nri.pkg.api.v1alpha1.Plugin`.
    #[prost(string, tag = "1")]
    pub service: String,
    /// Method name, e.g. `Configure`.
    #[prost(string, tag = "2")]
    pub method: String,
    /// The encoded request message.
    #[prost(bytes = "vec", tag = "3")]
    pub payload: Vec<u8>,
    /// How long the caller waits, in nanoseconds (0: no deadline).
    #[prost(int64, tag = "4")]
    pub timeout_nano: i64,
}

/// A ttrpc response (ttrpc's `Response` message).
#[derive(Clone, PartialEq, Message)]
pub struct Response {
    /// Outcome; absent or code 0 means success.
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    /// The encoded response message.
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
}

/// A gRPC-style status (`google.rpc.Status`, without details).
#[derive(Clone, PartialEq, Message)]
pub struct Status {
    /// gRPC code (0 OK, 2 Unknown, 12 Unimplemented, ...).
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Human-readable message.
    #[prost(string, tag = "2")]
    pub message: String,
}

impl Status {
    /// gRPC code `Unknown`: what a Go handler's plain error becomes.
    pub const UNKNOWN: i32 = 2;
    /// gRPC code `Unimplemented`.
    pub const UNIMPLEMENTED: i32 = 12;

    /// A status with `code` and `message`.
    pub fn new(code: i32, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
        }
    }
}

/// What a handler returns: the encoded response message, or an error status.
pub type HandlerResult = Result<Vec<u8>, Status>;
/// The future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send>>;
/// Serves incoming requests: called once per request, concurrently.
pub type Handler = Arc<dyn Fn(Request) -> HandlerFuture + Send + Sync>;

type Pending = Arc<Mutex<Option<HashMap<u32, oneshot::Sender<Response>>>>>;

/// One ttrpc peer over a multiplexed unix stream. Dropping it closes the stream.
pub struct Session {
    client_conn: u32,
    out: mpsc::UnboundedSender<Vec<u8>>,
    next_stream: Mutex<u32>,
    pending: Pending,
    closed: watch::Receiver<bool>,
    closed_tx: Arc<watch::Sender<bool>>,
    tasks: [JoinHandle<()>; 2],
}

impl Session {
    /// Starts the reader and writer tasks on `stream`: requests go out on `client_conn`,
    /// requests arriving on `server_conn` are answered by `handler`.
    pub fn new(stream: UnixStream, client_conn: u32, server_conn: u32, handler: Handler) -> Self {
        let (rd, mut wr) = stream.into_split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let (closed_tx, closed) = watch::channel(false);
        let closed_tx = Arc::new(closed_tx);
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));

        let writer_closed = closed_tx.clone();
        let writer_pending = pending.clone();
        let writer = tokio::spawn(async move {
            while let Some(buf) = out_rx.recv().await {
                if let Err(e) = wr.write_all(&buf).await {
                    tracing::debug!(error = %e, "nri: write to plugin connection failed");
                    break;
                }
            }
            mark_closed(&writer_pending, &writer_closed);
        });

        let reader = tokio::spawn(read_loop(
            rd,
            client_conn,
            server_conn,
            handler,
            out.clone(),
            pending.clone(),
            closed_tx.clone(),
        ));

        Session {
            client_conn,
            out,
            next_stream: Mutex::new(1),
            pending,
            closed,
            closed_tx,
            tasks: [reader, writer],
        }
    }

    /// Calls `service`/`method` with `req` and decodes the response, waiting at most `timeout`
    /// (which is also sent to the peer as the request deadline).
    pub async fn call<Req: Message, Resp: Message + Default>(
        &self,
        service: &str,
        method: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let request = Request {
            service: service.to_string(),
            method: method.to_string(),
            payload: req.encode_to_vec(),
            timeout_nano: i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX),
        };
        let (tx, rx) = oneshot::channel();
        let id = {
            // Stream ids must reach the peer in increasing order: allocate and queue under one lock.
            let mut next = self
                .next_stream
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let id = *next;
            *next = next.wrapping_add(2);
            lock(&self.pending)
                .as_mut()
                .ok_or(CallError::Closed)?
                .insert(id, tx);
            let mut buf = Vec::new();
            encode_message(
                self.client_conn,
                id,
                MESSAGE_REQUEST,
                &request.encode_to_vec(),
                &mut buf,
            );
            self.out.send(buf).map_err(|_| CallError::Closed)?;
            id
        };
        let response = match tokio::time::timeout(timeout, rx).await {
            Err(_) => {
                if let Some(p) = lock(&self.pending).as_mut() {
                    p.remove(&id);
                }
                return Err(CallError::Timeout(timeout));
            }
            Ok(Err(_)) => return Err(CallError::Closed),
            Ok(Ok(r)) => r,
        };
        if let Some(s) = response.status.filter(|s| s.code != 0) {
            return Err(CallError::Status {
                code: s.code,
                message: s.message,
            });
        }
        Resp::decode(response.payload.as_slice()).map_err(CallError::Decode)
    }

    /// Closes the stream: pending and later calls fail with [`CallError::Closed`].
    pub fn close(&self) {
        for t in &self.tasks {
            t.abort();
        }
        mark_closed(&self.pending, &self.closed_tx);
    }

    /// Whether the stream has been closed (by either side, or by an error).
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Resolves once the stream is closed.
    pub async fn closed(&self) {
        let mut rx = self.closed.clone();
        // An error means the sender is gone, which only happens once the session is closed.
        let _ = rx.wait_for(|c| *c).await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Fails every pending call and announces the close.
fn mark_closed(pending: &Pending, closed: &watch::Sender<bool>) {
    lock(pending).take();
    closed.send_replace(true);
}

async fn read_loop(
    mut rd: tokio::net::unix::OwnedReadHalf,
    client_conn: u32,
    server_conn: u32,
    handler: Handler,
    out: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
    closed: Arc<watch::Sender<bool>>,
) {
    let mut responses = StreamDecoder::default();
    let mut requests = StreamDecoder::default();
    let mut head = [0u8; MUX_HEADER_LEN];
    loop {
        if let Err(e) = rd.read_exact(&mut head).await {
            tracing::debug!(error = %e, "nri: plugin connection closed");
            break;
        }
        let (conn, len) = decode_mux_header(&head);
        if len > TTRPC_HEADER_LEN + TTRPC_MAX_MESSAGE {
            tracing::warn!(
                len,
                "nri: oversized multiplexer frame, closing the connection"
            );
            break;
        }
        let mut payload = vec![0u8; len];
        if let Err(e) = rd.read_exact(&mut payload).await {
            tracing::debug!(error = %e, "nri: plugin connection closed mid-frame");
            break;
        }
        let decoder = if conn == client_conn {
            &mut responses
        } else if conn == server_conn {
            &mut requests
        } else {
            continue;
        };
        decoder.push(&payload);
        loop {
            let (header, body) = match decoder.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "nri: closing the connection");
                    mark_closed(&pending, &closed);
                    return;
                }
            };
            if conn == client_conn {
                if header.kind != MESSAGE_RESPONSE {
                    continue;
                }
                let waiter = lock(&pending)
                    .as_mut()
                    .and_then(|p| p.remove(&header.stream_id));
                match (waiter, Response::decode(body.as_slice())) {
                    (Some(w), Ok(r)) => {
                        // The caller may have given up (timeout): nothing to do then.
                        let _ = w.send(r);
                    }
                    (Some(_), Err(e)) => {
                        tracing::warn!(error = %e, "nri: undecodable ttrpc response");
                    }
                    (None, _) => {}
                }
            } else if header.kind == MESSAGE_REQUEST {
                serve(&handler, server_conn, header.stream_id, &body, out.clone());
            }
        }
    }
    mark_closed(&pending, &closed);
}

/// Answers one incoming request in its own task.
fn serve(
    handler: &Handler,
    conn: u32,
    stream_id: u32,
    body: &[u8],
    out: mpsc::UnboundedSender<Vec<u8>>,
) {
    let fut = match Request::decode(body) {
        Ok(req) => Some(handler(req)),
        Err(e) => {
            respond(
                &out,
                conn,
                stream_id,
                Err(Status::new(3, format!("undecodable request: {e}"))),
            );
            None
        }
    };
    if let Some(fut) = fut {
        tokio::spawn(async move {
            let result = fut.await;
            respond(&out, conn, stream_id, result);
        });
    }
}

fn respond(out: &mpsc::UnboundedSender<Vec<u8>>, conn: u32, stream_id: u32, result: HandlerResult) {
    let response = match result {
        Ok(payload) => Response {
            status: Some(Status::new(0, "")),
            payload,
        },
        Err(status) => Response {
            status: Some(status),
            payload: Vec::new(),
        },
    };
    let mut buf = Vec::new();
    encode_message(
        conn,
        stream_id,
        MESSAGE_RESPONSE,
        &response.encode_to_vec(),
        &mut buf,
    );
    // A closed connection drops the answer: the peer is gone.
    let _ = out.send(buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN};

    fn echo_handler() -> Handler {
        Arc::new(|req: Request| {
            Box::pin(async move {
                if req.method == "Fail" {
                    return Err(Status::new(Status::UNKNOWN, "induced"));
                }
                Ok(Status::new(0, format!("{}/{}", req.service, req.method)).encode_to_vec())
            })
        })
    }

    #[tokio::test]
    async fn call_and_answer_across_a_socket_pair() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let runtime = Session::new(a, PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN, echo_handler());
        let plugin = Session::new(b, RUNTIME_SERVICE_CONN, PLUGIN_SERVICE_CONN, echo_handler());
        let t = Duration::from_secs(30);

        let r: Status = runtime
            .call("svc.Plugin", "Configure", &Status::default(), t)
            .await
            .expect("runtime -> plugin");
        assert_eq!(r.message, "svc.Plugin/Configure");
        let r: Status = plugin
            .call("svc.Runtime", "RegisterPlugin", &Status::default(), t)
            .await
            .expect("plugin -> runtime");
        assert_eq!(r.message, "svc.Runtime/RegisterPlugin");

        let err = runtime
            .call::<_, Status>("svc.Plugin", "Fail", &Status::default(), t)
            .await
            .expect_err("error status");
        assert!(
            matches!(err, CallError::Status { code: 2, ref message } if message == "induced"),
            "{err:?}"
        );

        drop(plugin);
        runtime.closed().await;
        assert!(runtime.is_closed());
        let err = runtime
            .call::<_, Status>("svc.Plugin", "Configure", &Status::default(), t)
            .await
            .expect_err("closed");
        assert!(matches!(err, CallError::Closed), "{err:?}");
    }
}
