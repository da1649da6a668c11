//! A server-side SPDY/3.1 connection: a reader task that accepts client streams and routes
//! their frames, a writer task that owns the socket's write half, and per-stream flow control.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use super::frame::{rst, Decoder, Encoder, Frame, Headers, FLAG_FIN, SETTINGS_INITIAL_WINDOW_SIZE};
use super::{Gone, SpdyError};

/// Initial window of every stream and of the session (SPDY/3.1 default).
const DEFAULT_WINDOW: i64 = 64 * 1024;
/// Largest data frame we send.
const MAX_DATA_CHUNK: usize = 16 * 1024;
/// Streams the peer may have open at once.
const MAX_STREAMS: usize = 256;
/// Inbound data frames buffered per stream before the reader waits for the consumer.
const INBOUND_QUEUE: usize = 16;
/// How long `close` waits for the peer to hang up after our GOAWAY.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// A stream the client opened.
pub(crate) struct IncomingStream {
    /// The stream id.
    pub id: u32,
    /// The SYN_STREAM headers.
    pub headers: Headers,
    /// Data the client sends; ends at the client's FIN or RST.
    pub recv: mpsc::Receiver<Vec<u8>>,
    /// Sending half towards the client.
    pub send: SendHalf,
}

enum WriterMsg {
    Frame(Frame),
    Close,
}

/// Send windows. The peer's windows are always tracked; senders wait on them only once
/// the peer has shown it does flow control (sent a WINDOW_UPDATE or an initial window
/// setting): the Go spdystream library never sends WINDOW_UPDATE and ignores windows.
struct FlowState {
    enforced: bool,
    closed: bool,
    session: i64,
    initial: i64,
    streams: HashMap<u32, i64>,
}

struct Flow {
    state: Mutex<FlowState>,
    notify: Notify,
}

impl Flow {
    fn new() -> Self {
        Self {
            state: Mutex::new(FlowState {
                enforced: false,
                closed: false,
                session: DEFAULT_WINDOW,
                initial: DEFAULT_WINDOW,
                streams: HashMap::new(),
            }),
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FlowState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, id: u32) {
        let mut s = self.lock();
        let initial = s.initial;
        s.streams.insert(id, initial);
    }

    fn remove(&self, id: u32) {
        self.lock().streams.remove(&id);
        self.notify.notify_waiters();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
    }

    fn window_update(&self, id: u32, delta: u32) {
        let mut s = self.lock();
        s.enforced = true;
        if id == 0 {
            s.session += i64::from(delta);
        } else if let Some(w) = s.streams.get_mut(&id) {
            *w += i64::from(delta);
        }
        drop(s);
        self.notify.notify_waiters();
    }

    fn set_initial(&self, value: u32) {
        let mut s = self.lock();
        s.enforced = true;
        let delta = i64::from(value) - s.initial;
        s.initial = i64::from(value);
        for w in s.streams.values_mut() {
            *w += delta;
        }
        drop(s);
        self.notify.notify_waiters();
    }

    /// Takes up to `want` bytes of window for stream `id`, waiting while it is exhausted.
    async fn reserve(&self, id: u32, want: usize) -> Result<usize, Gone> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.lock();
                if s.closed {
                    return Err(Gone);
                }
                let stream = *s.streams.get(&id).ok_or(Gone)?;
                let avail = stream.min(s.session);
                let n = if !s.enforced {
                    want
                } else if avail > 0 {
                    want.min(avail as usize)
                } else {
                    0
                };
                if n > 0 {
                    s.session -= n as i64;
                    if let Some(w) = s.streams.get_mut(&id) {
                        *w -= n as i64;
                    }
                    return Ok(n);
                }
            }
            notified.await;
        }
    }
}

/// The sending half of a stream. Dropping it without [`SendHalf::finish`] still sends FIN.
pub(crate) struct SendHalf {
    id: u32,
    tx: mpsc::Sender<WriterMsg>,
    flow: Arc<Flow>,
    finished: bool,
}

impl SendHalf {
    /// Sends `data` on the stream, in frames that fit the peer's window.
    pub(crate) async fn send(&mut self, mut data: &[u8]) -> Result<(), Gone> {
        if self.finished {
            return Err(Gone);
        }
        while !data.is_empty() {
            let n = self
                .flow
                .reserve(self.id, data.len().min(MAX_DATA_CHUNK))
                .await?;
            let frame = Frame::Data {
                stream_id: self.id,
                flags: 0,
                data: data[..n].to_vec(),
            };
            self.tx
                .send(WriterMsg::Frame(frame))
                .await
                .map_err(|_| Gone)?;
            data = &data[n..];
        }
        Ok(())
    }

    /// Half-closes the stream (empty DATA frame with FIN).
    pub(crate) async fn finish(&mut self) -> Result<(), Gone> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let frame = fin_frame(self.id);
        let sent = self.tx.send(WriterMsg::Frame(frame)).await;
        self.flow.remove(self.id);
        sent.map_err(|_| Gone)
    }
}

impl Drop for SendHalf {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.tx.try_send(WriterMsg::Frame(fin_frame(self.id)));
            self.flow.remove(self.id);
        }
    }
}

fn fin_frame(id: u32) -> Frame {
    Frame::Data {
        stream_id: id,
        flags: FLAG_FIN,
        data: Vec::new(),
    }
}

/// A server-side SPDY connection over any byte stream.
pub(crate) struct Connection {
    /// Streams opened by the client, in order.
    pub incoming: mpsc::Receiver<IncomingStream>,
    /// Turns `true` when the connection broke or the client hung up.
    pub gone: watch::Receiver<bool>,
    data_tx: mpsc::Sender<WriterMsg>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Connection {
    /// Starts serving SPDY on `io` (after the HTTP upgrade or inside a WebSocket tunnel).
    pub(crate) fn start<IO>(io: IO) -> Result<Self, SpdyError>
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let encoder = Encoder::new()?;
        let (rd, wr) = tokio::io::split(io);
        let (gone_tx, gone) = watch::channel(false);
        let gone_tx = Arc::new(gone_tx);
        let flow = Arc::new(Flow::new());
        let (data_tx, data_rx) = mpsc::channel(64);
        let (ctrl_tx, ctrl_rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming) = mpsc::channel(MAX_STREAMS);
        let last_stream = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let writer = tokio::spawn(write_loop(
            wr,
            encoder,
            data_rx,
            ctrl_rx,
            gone_tx.clone(),
            flow.clone(),
            last_stream.clone(),
        ));
        let reader = Reader {
            decoder: Decoder::new(),
            inbound: HashMap::new(),
            ctrl_tx,
            data_tx: data_tx.clone(),
            incoming_tx,
            flow: flow.clone(),
            last_stream,
            going_away: false,
        };
        let reader = tokio::spawn(async move {
            if let Err(e) = reader.run(rd).await {
                tracing::debug!("spdy connection ended: {e}");
            }
            flow.close();
            gone_tx.send_replace(true);
        });
        Ok(Self {
            incoming,
            gone,
            data_tx,
            reader,
            writer,
        })
    }

    /// Lets the peer hang up first (up to `wait_for_peer`), then sends GOAWAY after
    /// everything queued, shuts the write side, and waits a little for the peer's end.
    ///
    /// Waiting matters: on GOAWAY the Go spdystream library discards frames it has read
    /// but not yet handed to its streams, which truncates output. client-go closes the
    /// connection itself once it has read every stream to its end.
    pub(crate) async fn close(mut self, wait_for_peer: Duration) {
        let mut gone = self.gone.clone();
        let _ = tokio::time::timeout(wait_for_peer, gone.wait_for(|g| *g)).await;
        let _ = self.data_tx.send(WriterMsg::Close).await;
        let _ = (&mut self.writer).await;
        if tokio::time::timeout(CLOSE_GRACE, &mut self.reader)
            .await
            .is_err()
        {
            // Wait for the abort too, so the socket is closed when this returns.
            self.reader.abort();
            let _ = (&mut self.reader).await;
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

async fn write_loop<W: AsyncWrite>(
    wr: W,
    mut encoder: Encoder,
    mut data_rx: mpsc::Receiver<WriterMsg>,
    mut ctrl_rx: mpsc::UnboundedReceiver<Frame>,
    gone_tx: Arc<watch::Sender<bool>>,
    flow: Arc<Flow>,
    last_stream: Arc<std::sync::atomic::AtomicU32>,
) {
    tokio::pin!(wr);
    let mut buf = Vec::with_capacity(MAX_DATA_CHUNK + 64);
    let result: Result<(), SpdyError> = async {
        loop {
            buf.clear();
            let msg = tokio::select! {
                biased;
                Some(frame) = ctrl_rx.recv() => WriterMsg::Frame(frame),
                msg = data_rx.recv() => match msg {
                    Some(m) => m,
                    None => return Ok(()),
                },
            };
            match msg {
                WriterMsg::Frame(frame) => encoder.encode(&frame, &mut buf)?,
                WriterMsg::Close => {
                    // Control frames queued so far (replies, window updates) go first.
                    while let Ok(frame) = ctrl_rx.try_recv() {
                        encoder.encode(&frame, &mut buf)?;
                    }
                    let last = last_stream.load(std::sync::atomic::Ordering::Relaxed);
                    let goaway = Frame::GoAway {
                        last_good_stream_id: last,
                        status: 0,
                    };
                    encoder.encode(&goaway, &mut buf)?;
                    wr.write_all(&buf).await?;
                    wr.flush().await?;
                    wr.shutdown().await?;
                    return Ok(());
                }
            }
            // Batch whatever else is already queued into one write.
            while buf.len() < 4 * MAX_DATA_CHUNK {
                match ctrl_rx.try_recv() {
                    Ok(frame) => encoder.encode(&frame, &mut buf)?,
                    Err(_) => break,
                }
            }
            wr.write_all(&buf).await?;
            wr.flush().await?;
        }
    }
    .await;
    if let Err(e) = result {
        tracing::debug!("spdy writer ended: {e}");
        gone_tx.send_replace(true);
    }
    flow.close();
}

struct Reader {
    decoder: Decoder,
    inbound: HashMap<u32, mpsc::Sender<Vec<u8>>>,
    ctrl_tx: mpsc::UnboundedSender<Frame>,
    data_tx: mpsc::Sender<WriterMsg>,
    incoming_tx: mpsc::Sender<IncomingStream>,
    flow: Arc<Flow>,
    last_stream: Arc<std::sync::atomic::AtomicU32>,
    going_away: bool,
}

impl Reader {
    async fn run<R: AsyncRead>(mut self, rd: R) -> Result<(), SpdyError> {
        tokio::pin!(rd);
        let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
        let mut chunk = vec![0u8; 32 * 1024];
        loop {
            let mut start = 0;
            while let Some((frame, used)) = self.decoder.decode(&buf[start..])? {
                start += used;
                self.handle(frame).await?;
            }
            buf.drain(..start);
            let n = rd.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn ctrl(&self, frame: Frame) {
        let _ = self.ctrl_tx.send(frame);
    }

    async fn handle(&mut self, frame: Frame) -> Result<(), SpdyError> {
        match frame {
            Frame::SynStream {
                stream_id,
                flags,
                headers,
                ..
            } => self.syn_stream(stream_id, flags, headers),
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                if !data.is_empty() {
                    let len = data.len() as u32;
                    if let Some(tx) = self.inbound.get(&stream_id) {
                        // A consumer that went away just drops what it no longer wants.
                        let _ = tx.send(data).await;
                        self.ctrl(Frame::WindowUpdate {
                            stream_id,
                            delta: len,
                        });
                    }
                    self.ctrl(Frame::WindowUpdate {
                        stream_id: 0,
                        delta: len,
                    });
                }
                if flags & FLAG_FIN != 0 {
                    self.inbound.remove(&stream_id);
                }
            }
            Frame::RstStream { stream_id, status } => {
                tracing::debug!("spdy stream {stream_id} reset by peer (status {status})");
                self.inbound.remove(&stream_id);
                self.flow.remove(stream_id);
            }
            Frame::Settings { entries, .. } => {
                for e in entries {
                    if e.id == SETTINGS_INITIAL_WINDOW_SIZE {
                        self.flow.set_initial(e.value);
                    }
                }
            }
            Frame::Ping { id } => {
                // Odd ids are the client's pings: echo them. Even ones would answer ours.
                if id % 2 == 1 {
                    self.ctrl(Frame::Ping { id });
                }
            }
            Frame::GoAway { .. } => self.going_away = true,
            Frame::WindowUpdate { stream_id, delta } => {
                if delta == 0 {
                    self.ctrl(Frame::RstStream {
                        stream_id,
                        status: rst::FLOW_CONTROL_ERROR,
                    });
                } else {
                    self.flow.window_update(stream_id, delta);
                }
            }
            Frame::Headers {
                stream_id, flags, ..
            } => {
                if flags & FLAG_FIN != 0 {
                    self.inbound.remove(&stream_id);
                }
            }
            Frame::SynReply { stream_id, .. } => {
                // We never open streams; a reply to one is a protocol error on that stream.
                self.ctrl(Frame::RstStream {
                    stream_id,
                    status: rst::INVALID_STREAM,
                });
            }
            Frame::Unknown { frame_type } => {
                tracing::debug!("spdy: ignoring control frame type {frame_type}");
            }
        }
        Ok(())
    }

    fn syn_stream(&mut self, id: u32, flags: u8, headers: Headers) {
        use std::sync::atomic::Ordering;
        let last = self.last_stream.load(Ordering::Relaxed);
        if id & 1 == 0 || id <= last {
            self.ctrl(Frame::RstStream {
                stream_id: id,
                status: rst::PROTOCOL_ERROR,
            });
            return;
        }
        self.last_stream.store(id, Ordering::Relaxed);
        if self.going_away || self.inbound.len() >= MAX_STREAMS {
            self.ctrl(Frame::RstStream {
                stream_id: id,
                status: rst::REFUSED_STREAM,
            });
            return;
        }
        let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
        self.flow.add(id);
        self.ctrl(Frame::SynReply {
            stream_id: id,
            flags: 0,
            headers: Vec::new(),
        });
        let send = SendHalf {
            id,
            tx: self.data_tx.clone(),
            flow: self.flow.clone(),
            finished: false,
        };
        let stream = IncomingStream {
            id,
            headers,
            recv: rx,
            send,
        };
        match self.incoming_tx.try_send(stream) {
            Ok(()) => {
                if flags & FLAG_FIN == 0 {
                    self.inbound.insert(id, tx);
                }
            }
            Err(e) => {
                let mut stream = e.into_inner();
                stream.send.finished = true;
                self.flow.remove(id);
                self.ctrl(Frame::RstStream {
                    stream_id: id,
                    status: rst::REFUSED_STREAM,
                });
            }
        }
    }
}
