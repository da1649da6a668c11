//! WebSocket transport: the channel mux of the remotecommand protocols (first byte of each
//! binary message is the channel) and a byte-stream adapter for SPDY tunnelled in WebSocket.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::backend::Backend;
use crate::remotecommand::{self, Channels, Options, OutSink, Session, Version};
use crate::spdy::Gone;

/// Channel numbers of the remotecommand WebSocket protocols.
pub(crate) mod channel {
    /// Client to server: stdin.
    pub(crate) const STDIN: u8 = 0;
    /// Server to client: stdout.
    pub(crate) const STDOUT: u8 = 1;
    /// Server to client: stderr.
    pub(crate) const STDERR: u8 = 2;
    /// Server to client: error / status.
    pub(crate) const ERROR: u8 = 3;
    /// Client to server: terminal size (JSON).
    pub(crate) const RESIZE: u8 = 4;
    /// v5: "close channel N" (payload: one byte, N).
    pub(crate) const CLOSE: u8 = 255;
}

/// Remotecommand protocols offered over WebSocket.
pub(crate) const WS_VERSIONS: [Version; 3] = [Version::V5, Version::V4, Version::V1];

/// Builds the binary message for `data` on `ch`.
pub(crate) fn encode_channel_message(ch: u8, data: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(data.len() + 1);
    msg.push(ch);
    msg.extend_from_slice(data);
    msg
}

/// What one incoming binary message means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming<'a> {
    /// Data for a channel.
    Data(u8, &'a [u8]),
    /// v5: the client closed a channel.
    Close(u8),
    /// Empty or malformed message.
    Ignore,
}

/// Splits an incoming binary message into channel and payload.
pub(crate) fn decode_channel_message(version: Version, msg: &[u8]) -> Incoming<'_> {
    match msg {
        [] => Incoming::Ignore,
        [channel::CLOSE, ch, ..] if version >= Version::V5 => Incoming::Close(*ch),
        [channel::CLOSE] if version >= Version::V5 => Incoming::Ignore,
        [ch, data @ ..] => Incoming::Data(*ch, data),
    }
}

/// Sends data on one channel of the shared WebSocket writer.
pub(crate) struct ChannelSender {
    channel: u8,
    tx: mpsc::Sender<Vec<u8>>,
}

impl ChannelSender {
    /// Sends `data` as one binary message on this channel.
    pub(crate) async fn send(&mut self, data: &[u8]) -> Result<(), Gone> {
        self.tx
            .send(encode_channel_message(self.channel, data))
            .await
            .map_err(|_| Gone)
    }
}

/// Runs an exec/attach session over an accepted WebSocket.
pub(crate) async fn serve_remotecommand<S, B>(
    ws: WebSocketStream<S>,
    backend: &B,
    session: Session,
    version: Version,
    opts: Options,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    B: Backend,
{
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(32);
    let (gone_tx, gone) = watch::channel(false);

    let (stdin_tx, stdin_rx) = mpsc::channel(16);
    let (resize_tx, resize_rx) = mpsc::channel(4);
    let mut stdin_tx = opts.stdin.then_some(stdin_tx);
    let mut resize_tx = opts.tty.then_some(resize_tx);
    let sender = |ch: u8| {
        OutSink::Ws(ChannelSender {
            channel: ch,
            tx: out_tx.clone(),
        })
    };
    let channels = Channels {
        stdin: opts.stdin.then_some(stdin_rx),
        resize: opts.tty.then_some(resize_rx),
        stdout: opts.stdout.then(|| sender(channel::STDOUT)),
        stderr: (opts.stderr && !opts.tty).then(|| sender(channel::STDERR)),
        error: sender(channel::ERROR),
    };
    drop(out_tx);

    // Reader: route client messages to stdin and resize until the client closes.
    let reader = async move {
        while let Some(msg) = stream.next().await {
            let data = match msg {
                Ok(Message::Binary(data)) => data,
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            match decode_channel_message(version, &data) {
                Incoming::Data(channel::STDIN, d) if !d.is_empty() => {
                    if let Some(tx) = &stdin_tx {
                        if tx.send(d.to_vec()).await.is_err() {
                            stdin_tx = None;
                        }
                    }
                }
                Incoming::Data(channel::RESIZE, d) if !d.is_empty() => {
                    if let Some(tx) = &resize_tx {
                        if tx.send(d.to_vec()).await.is_err() {
                            resize_tx = None;
                        }
                    }
                }
                Incoming::Close(channel::STDIN) => stdin_tx = None,
                Incoming::Close(channel::RESIZE) => resize_tx = None,
                _ => {}
            }
        }
        gone_tx.send_replace(true);
    };
    // Writer: send channel messages; once every channel is done, close the WebSocket.
    let writer = async move {
        while let Some(msg) = out_rx.recv().await {
            if sink.send(Message::Binary(msg.into())).await.is_err() {
                return;
            }
        }
        let close = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = sink.send(Message::Close(Some(close))).await;
        let _ = sink.close().await;
    };
    let reader = tokio::spawn(reader);
    let writer = tokio::spawn(writer);
    let mut reader = AbortGuard(reader);
    remotecommand::run(backend, session, version, opts.tty, channels, gone).await;
    // The session dropped its senders: the writer closes the WebSocket. Then give the
    // client a moment to answer the close, and make sure the socket is gone on return.
    let _ = writer.await;
    if tokio::time::timeout(CLOSE_GRACE, &mut reader.0)
        .await
        .is_err()
    {
        reader.0.abort();
        let _ = (&mut reader.0).await;
    }
}

/// How long to wait for the client's answer to our close frame.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Aborts the task if the session is cancelled.
struct AbortGuard(tokio::task::JoinHandle<()>);

impl Drop for AbortGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves the WebSocket channel protocol of port forwarding (`v4.channel.k8s.io`, or no
/// subprotocol): port `i` of `ports` uses channel `2i` for data and `2i+1` for errors; both
/// first carry the port as two little-endian bytes. Ends when every forward is done or the
/// client goes away.
pub(crate) async fn serve_port_forward<S, B>(
    ws: WebSocketStream<S>,
    backend: Arc<B>,
    pod_sandbox_id: String,
    ports: Vec<u16>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    B: Backend,
{
    let (mut sink, mut stream) = ws.split();
    if ports.is_empty() || ports.len() > 127 {
        let close = CloseFrame {
            code: CloseCode::Policy,
            reason: "query parameter \"port\" is required (at most 127 ports)".into(),
        };
        let _ = sink.send(Message::Close(Some(close))).await;
        return;
    }
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(32);
    let (gone_tx, mut gone) = watch::channel(false);
    let mut inbound = Vec::new();
    let mut forwards = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let data_ch = (2 * i) as u8;
        let (tx, rx) = mpsc::channel::<Vec<u8>>(16);
        inbound.push(tx);
        let port_bytes = port.to_le_bytes();
        for ch in [data_ch, data_ch + 1] {
            let _ = out_tx.send(encode_channel_message(ch, &port_bytes)).await;
        }
        forwards.push(forward_channel(
            backend.clone(),
            pod_sandbox_id.clone(),
            *port,
            data_ch,
            rx,
            out_tx.clone(),
        ));
    }
    drop(out_tx);
    let reader = async move {
        while let Some(msg) = stream.next().await {
            let data = match msg {
                Ok(Message::Binary(data)) => data,
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            if let Incoming::Data(ch, d) = decode_channel_message(Version::V4, &data) {
                let tx = inbound.get(usize::from(ch / 2)).filter(|_| ch % 2 == 0);
                if let (Some(tx), false) = (tx, d.is_empty()) {
                    let _ = tx.send(d.to_vec()).await;
                }
            }
        }
        gone_tx.send_replace(true);
    };
    let writer = async move {
        while let Some(msg) = out_rx.recv().await {
            if sink.send(Message::Binary(msg.into())).await.is_err() {
                return;
            }
        }
        let close = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = sink.send(Message::Close(Some(close))).await;
        let _ = sink.close().await;
    };
    let mut reader = AbortGuard(tokio::spawn(reader));
    let writer = tokio::spawn(writer);
    tokio::select! {
        _ = futures::future::join_all(forwards) => {}
        _ = remotecommand::client_gone(&mut gone) => {}
    }
    let _ = writer.await;
    if tokio::time::timeout(CLOSE_GRACE, &mut reader.0)
        .await
        .is_err()
    {
        reader.0.abort();
        let _ = (&mut reader.0).await;
    }
}

/// Forwards one port of the channel protocol.
async fn forward_channel<B: Backend>(
    backend: Arc<B>,
    pod_sandbox_id: String,
    port: u16,
    data_ch: u8,
    mut rx: mpsc::Receiver<Vec<u8>>,
    out: mpsc::Sender<Vec<u8>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (theirs, ours) = tokio::io::duplex(64 * 1024);
    let (mut our_rd, mut our_wr) = tokio::io::split(ours);
    let inbound = async move {
        while let Some(chunk) = rx.recv().await {
            if our_wr.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = our_wr.shutdown().await;
    };
    let data_out = out.clone();
    let outbound = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match our_rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let msg = encode_channel_message(data_ch, &buf[..n]);
                    if data_out.send(msg).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let inbound = AbortGuard(tokio::spawn(inbound));
    let work = backend.port_forward(
        pod_sandbox_id.clone(),
        port,
        crate::types::PortForwardStream::new(theirs),
    );
    let (result, ()) = tokio::join!(work, outbound);
    drop(inbound);
    if let Err(e) = result {
        let msg = format!("error forwarding port {port} to pod {pod_sandbox_id}: {e}");
        let _ = out
            .send(encode_channel_message(data_ch + 1, msg.as_bytes()))
            .await;
    }
}

/// A WebSocket carrying a plain byte stream in binary messages (client-go's SPDY tunnel).
pub(crate) struct WsTunnel<S> {
    ws: WebSocketStream<S>,
    pending: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<S> WsTunnel<S> {
    pub(crate) fn new(ws: WebSocketStream<S>) -> Self {
        Self {
            ws,
            pending: Vec::new(),
            pos: 0,
            eof: false,
        }
    }
}

fn io_err(e: tokio_tungstenite::tungstenite::Error) -> std::io::Error {
    std::io::Error::other(e)
}

impl<S> AsyncRead for WsTunnel<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if self.pos < self.pending.len() {
                let n = buf.remaining().min(self.pending.len() - self.pos);
                let pos = self.pos;
                buf.put_slice(&self.pending[pos..pos + n]);
                self.pos += n;
                return Poll::Ready(Ok(()));
            }
            if self.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(self.ws.poll_next_unpin(cx)) {
                Some(Ok(Message::Binary(data))) => {
                    self.pending = data.to_vec();
                    self.pos = 0;
                }
                Some(Ok(Message::Close(_))) | None => self.eof = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(io_err(e))),
            }
        }
    }
}

impl<S> AsyncWrite for WsTunnel<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        ready!(self.ws.poll_ready_unpin(cx)).map_err(io_err)?;
        self.ws
            .start_send_unpin(Message::Binary(buf.to_vec().into()))
            .map_err(io_err)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.ws.poll_flush_unpin(cx).map_err(io_err)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match ready!(self.ws.poll_close_unpin(cx)) {
            Ok(()) | Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed) => {
                Poll::Ready(Ok(()))
            }
            Err(e) => Poll::Ready(Err(io_err(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::*;
    use crate::backend::BackendError;
    use crate::types::{PortForwardStream, Streams, TermSize};

    /// Echoes stdin to stdout, writes "e" to stderr, records sizes, exits 7.
    #[derive(Default)]
    struct EchoBackend {
        sizes: Arc<Mutex<Vec<TermSize>>>,
    }

    impl Backend for EchoBackend {
        async fn exec(
            &self,
            _id: String,
            _cmd: Vec<String>,
            mut streams: Streams,
        ) -> Result<i32, BackendError> {
            if streams.tty {
                if let Some(size) = streams.resize.recv().await {
                    self.sizes.lock().unwrap().push(size);
                }
            }
            let mut input = Vec::new();
            if let Some(stdin) = streams.stdin.as_mut() {
                stdin.read_to_end(&mut input).await?;
            }
            if let Some(out) = streams.stdout.as_mut() {
                out.write_all(&input).await?;
            }
            if let Some(err) = streams.stderr.as_mut() {
                err.write_all(b"e").await?;
            }
            Ok(7)
        }

        async fn attach(&self, _id: String, _streams: Streams) -> Result<(), BackendError> {
            Err("not here".into())
        }

        async fn port_forward(
            &self,
            _pod: String,
            _port: u16,
            _stream: PortForwardStream,
        ) -> Result<(), BackendError> {
            Err("not here".into())
        }
    }

    #[test]
    fn channel_messages_encode_and_decode() {
        assert_eq!(encode_channel_message(channel::STDOUT, b"ab"), b"\x01ab");
        assert_eq!(
            decode_channel_message(Version::V4, b"\x00hi"),
            Incoming::Data(channel::STDIN, b"hi")
        );
        assert_eq!(
            decode_channel_message(Version::V5, &[255, 0]),
            Incoming::Close(channel::STDIN)
        );
        // Before v5 there is no close message: 255 is just an unknown channel.
        assert_eq!(
            decode_channel_message(Version::V4, &[255, 0]),
            Incoming::Data(255, &[0])
        );
        assert_eq!(decode_channel_message(Version::V5, b""), Incoming::Ignore);
    }

    /// Runs one session over an in-memory WebSocket; returns what arrived per channel.
    async fn session(
        version: Version,
        opts: Options,
        client_msgs: Vec<Vec<u8>>,
    ) -> (HashMap<u8, Vec<u8>>, Vec<TermSize>) {
        let (a, b) = tokio::io::duplex(1 << 16);
        let server_ws = WebSocketStream::from_raw_socket(a, Role::Server, None).await;
        let mut client = WebSocketStream::from_raw_socket(b, Role::Client, None).await;
        let backend = EchoBackend::default();
        let sizes = backend.sizes.clone();
        let server = tokio::spawn(async move {
            let session = Session::Exec {
                container_id: "c".into(),
                cmd: vec!["x".into()],
            };
            serve_remotecommand(server_ws, &backend, session, version, opts).await;
        });
        for msg in client_msgs {
            client.send(Message::Binary(msg.into())).await.unwrap();
        }
        let mut got: HashMap<u8, Vec<u8>> = HashMap::new();
        while let Some(msg) = client.next().await {
            match msg.unwrap() {
                Message::Binary(data) => {
                    let (ch, rest) = data.split_first().unwrap();
                    got.entry(*ch).or_default().extend_from_slice(rest);
                }
                Message::Close(frame) => {
                    assert_eq!(frame.unwrap().code, CloseCode::Normal);
                    break;
                }
                _ => {}
            }
        }
        drop(client);
        server.await.unwrap();
        let sizes = sizes.lock().unwrap().clone();
        (got, sizes)
    }

    #[tokio::test]
    async fn v5_channels_carry_stdin_output_status_and_close() {
        let opts = Options {
            tty: false,
            stdin: true,
            stdout: true,
            stderr: true,
        };
        let msgs = vec![b"\x00hel".to_vec(), b"\x00lo".to_vec(), vec![255, 0]];
        let (got, _) = session(Version::V5, opts, msgs).await;
        assert_eq!(got[&channel::STDOUT], b"hello");
        assert_eq!(got[&channel::STDERR], b"e");
        let status: serde_json::Value = serde_json::from_slice(&got[&channel::ERROR]).unwrap();
        assert_eq!(status["reason"], "NonZeroExitCode");
        assert_eq!(status["details"]["causes"][0]["message"], "7");
    }

    #[tokio::test]
    async fn tty_session_gets_resize_and_no_stderr() {
        let opts = Options {
            tty: true,
            stdin: false,
            stdout: true,
            stderr: true,
        };
        let msgs = vec![b"\x04{\"Width\":120,\"Height\":30}".to_vec()];
        let (got, sizes) = session(Version::V4, opts, msgs).await;
        assert_eq!(
            sizes,
            vec![TermSize {
                width: 120,
                height: 30
            }]
        );
        assert!(!got.contains_key(&channel::STDERR));
        assert!(got.contains_key(&channel::ERROR));
    }
}
