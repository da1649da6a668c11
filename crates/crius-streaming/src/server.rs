//! The HTTP server: issues request URLs, routes `/exec|attach|portforward/<token>`, and
//! upgrades connections to SPDY/3.1 or WebSocket.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use crate::backend::Backend;
use crate::error::Error;
use crate::portforward;
use crate::remotecommand::{self, Options, Session, Version, SPDY_VERSIONS};
use crate::spdy::{header as spdy_header, Connection, IncomingStream};
use crate::token::{Clock, IssueError, SystemClock, TokenCache};
use crate::types::{AttachRequest, ExecRequest, PortForwardRequest};
use crate::ws::{self, WsTunnel, WS_VERSIONS};

/// Header carrying the SPDY sub-protocol versions (request: offered; response: chosen).
const STREAM_PROTOCOL_HEADER: &str = "x-stream-protocol-version";
/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SPDY client gets to read everything and hang up after a session ended.
const PEER_CLOSE_WAIT: Duration = Duration::from_secs(30);
/// Header listing the versions we accept, sent when negotiation fails.
const ACCEPTED_PROTOCOLS_HEADER: &str = "x-accepted-stream-protocol-versions";

/// Configuration of a [`StreamingServer`].
#[derive(Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port. Default `127.0.0.1:0`.
    pub addr: SocketAddr,
    /// `host[:port]` to put in URLs instead of the bound address (e.g. when listening on
    /// `0.0.0.0`). Default: the bound address.
    pub url_host: Option<String>,
    /// How long an issued URL stays valid. Default one minute.
    pub token_ttl: Duration,
    /// Most URLs waiting for their client at once. Default 1000.
    pub max_pending: usize,
    /// How long a SPDY client may take to open its streams. Default 30 s.
    pub stream_creation_timeout: Duration,
    /// The clock deciding token expiry (tests inject their own).
    pub clock: Arc<dyn Clock>,
    /// Serve HTTPS with this TLS configuration (URLs then start with `https://`). Do not
    /// offer `h2` in its ALPN list: the upgrades need HTTP/1.1.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            url_host: None,
            token_ttl: Duration::from_secs(60),
            max_pending: 1000,
            stream_creation_timeout: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
            tls: None,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("addr", &self.addr)
            .field("url_host", &self.url_host)
            .field("token_ttl", &self.token_ttl)
            .field("max_pending", &self.max_pending)
            .field("stream_creation_timeout", &self.stream_creation_timeout)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
enum Pending {
    Exec(ExecRequest),
    Attach(AttachRequest),
    PortForward(PortForwardRequest),
}

impl Pending {
    fn kind(&self) -> &'static str {
        match self {
            Pending::Exec(_) => "exec",
            Pending::Attach(_) => "attach",
            Pending::PortForward(_) => "portforward",
        }
    }
}

struct Inner<B> {
    backend: Arc<B>,
    cache: TokenCache<Pending>,
    stream_creation_timeout: Duration,
    sessions: watch::Sender<usize>,
}

/// Counts a running session; the count drops with the guard.
struct SessionGuard(watch::Sender<usize>);

impl SessionGuard {
    fn new(counter: &watch::Sender<usize>) -> Self {
        counter.send_modify(|n| *n += 1);
        Self(counter.clone())
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The streaming server. Dropping it stops accepting connections; sessions already
/// upgraded run to their end.
pub struct StreamingServer<B: Backend> {
    inner: Arc<Inner<B>>,
    local_addr: SocketAddr,
    base_url: String,
    accept_task: JoinHandle<()>,
}

impl<B: Backend> StreamingServer<B> {
    /// Binds `config.addr` and starts serving in the background (needs a tokio runtime).
    pub async fn start(config: ServerConfig, backend: B) -> Result<Self, Error> {
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|source| Error::Bind {
                addr: config.addr,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.addr,
            source,
        })?;
        let host = config
            .url_host
            .clone()
            .unwrap_or_else(|| local_addr.to_string());
        let inner = Arc::new(Inner {
            backend: Arc::new(backend),
            cache: TokenCache::new(config.token_ttl, config.max_pending, config.clock.clone()),
            stream_creation_timeout: config.stream_creation_timeout,
            sessions: watch::Sender::new(0),
        });
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let tls = config.tls.map(tokio_rustls::TlsAcceptor::from);
        let accept_task = tokio::spawn(accept_loop(listener, tls, inner.clone()));
        Ok(Self {
            inner,
            local_addr,
            base_url: format!("{scheme}://{host}"),
            accept_task,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Registers an exec request; returns the single-use URL for the client.
    ///
    /// Refuses (as the kubelet's streaming server does) a request with none of stdin,
    /// stdout, stderr, or with both tty and stderr.
    pub fn get_exec(&self, req: ExecRequest) -> Result<Uri, Error> {
        let id = req.container_id.clone();
        validate("exec", &id, req.tty, req.stdin, req.stdout, req.stderr)?;
        self.issue(Pending::Exec(req), id)
    }

    /// Registers an attach request; returns the single-use URL for the client.
    /// Validated like [`StreamingServer::get_exec`].
    pub fn get_attach(&self, req: AttachRequest) -> Result<Uri, Error> {
        let id = req.container_id.clone();
        validate("attach", &id, req.tty, req.stdin, req.stdout, req.stderr)?;
        self.issue(Pending::Attach(req), id)
    }

    /// Registers a port-forward request; returns the single-use URL for the client.
    pub fn get_port_forward(&self, req: PortForwardRequest) -> Result<Uri, Error> {
        let id = req.pod_sandbox_id.clone();
        self.issue(Pending::PortForward(req), id)
    }

    /// Number of upgraded sessions still running.
    pub fn active_sessions(&self) -> usize {
        *self.inner.sessions.borrow()
    }

    /// Waits until no upgraded session is running.
    pub async fn wait_idle(&self) {
        let mut rx = self.inner.sessions.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    fn issue(&self, pending: Pending, id: String) -> Result<Uri, Error> {
        let kind = pending.kind();
        let token = self.inner.cache.insert(pending).map_err(|e| match e {
            IssueError::Full(max) => Error::TooManyPending {
                kind,
                id: id.clone(),
                max,
            },
            IssueError::Rng(reason) => Error::Token {
                kind,
                id: id.clone(),
                reason,
            },
        })?;
        let url = format!("{}/{kind}/{token}", self.base_url);
        url.parse::<Uri>().map_err(|e| Error::Url {
            url: url.clone(),
            reason: e.to_string(),
        })
    }
}

fn validate(
    kind: &'static str,
    id: &str,
    tty: bool,
    stdin: bool,
    stdout: bool,
    stderr: bool,
) -> Result<(), Error> {
    let reason = if tty && stderr {
        "tty and stderr cannot both be true"
    } else if !(stdin || stdout || stderr) {
        "one of stdin, stdout, or stderr must be set"
    } else {
        return Ok(());
    };
    Err(Error::InvalidRequest {
        kind,
        id: id.to_owned(),
        reason,
    })
}

impl<B: Backend> Drop for StreamingServer<B> {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

async fn accept_loop<B: Backend>(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    inner: Arc<Inner<B>>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of fds and the like: back off a little instead of spinning.
                tracing::warn!("streaming server: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let inner = inner.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_http(TokioIo::new(tcp), inner, peer).await,
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(stream) => serve_http(TokioIo::new(stream), inner, peer).await,
                    Err(e) => tracing::debug!("streaming server: TLS from {peer}: {e}"),
                },
            }
        });
    }
}

async fn serve_http<B, IO>(io: TokioIo<IO>, inner: Arc<Inner<B>>, peer: SocketAddr)
where
    B: Backend,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(inner.clone(), req));
    // The timer enforces hyper's header read timeout (30 s) against idle or slow clients.
    let conn = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(io, service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!("streaming server: connection from {peer}: {e}");
    }
}

type Resp = Response<Full<Bytes>>;

fn plain(status: StatusCode, body: impl Into<String>) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body.into())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// All values of a (possibly repeated, comma-separated) header, trimmed, in order.
fn header_list(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

fn header_has(headers: &HeaderMap, name: impl header::AsHeaderName, word: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(word))
}

/// The first protocol the client offers that we support (the client's order decides).
fn negotiate<'a>(offered: &[String], supported: &[&'a str]) -> Option<&'a str> {
    offered
        .iter()
        .find_map(|o| supported.iter().find(|s| **s == o.as_str()).copied())
}

/// The transport chosen for a request.
enum Transport {
    Spdy { protocol: String },
    WebSocket { protocol: String, accept: String },
}

fn choose_transport(req: &Request<Incoming>, kind: &str) -> Result<Transport, Box<Resp>> {
    let h = req.headers();
    if header_has(h, header::UPGRADE, "websocket") {
        let key = h
            .get(header::SEC_WEBSOCKET_KEY)
            .ok_or_else(|| Box::new(plain(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key")))?;
        if !header_has(h, header::SEC_WEBSOCKET_VERSION, "13") {
            return Err(Box::new(plain(
                StatusCode::BAD_REQUEST,
                "unsupported Sec-WebSocket-Version",
            )));
        }
        let supported: Vec<&str> = if kind == "portforward" {
            vec![
                portforward::TUNNEL_PROTOCOL,
                Version::V4.name(),
                Version::V1.name(),
            ]
        } else {
            WS_VERSIONS.iter().map(|v| v.name()).collect()
        };
        let offered = header_list(h, "sec-websocket-protocol");
        if offered.is_empty() {
            // Clients that name no subprotocol get the original binary channel protocol.
            return Ok(Transport::WebSocket {
                protocol: String::new(),
                accept: derive_accept_key(key.as_bytes()),
            });
        }
        let protocol = negotiate(&offered, &supported).ok_or_else(|| {
            Box::new(plain(
                StatusCode::BAD_REQUEST,
                format!(
                    "unable to upgrade: none of the WebSocket subprotocols {offered:?} is supported ({supported:?})"
                ),
            ))
        })?;
        return Ok(Transport::WebSocket {
            protocol: protocol.to_owned(),
            accept: derive_accept_key(key.as_bytes()),
        });
    }
    if !header_has(h, header::CONNECTION, "upgrade") || !header_has(h, header::UPGRADE, "SPDY/3.1")
    {
        return Err(Box::new(plain(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: missing upgrade headers in request",
        )));
    }
    let supported: Vec<&str> = if kind == "portforward" {
        vec![portforward::PROTOCOL]
    } else {
        SPDY_VERSIONS.iter().map(|v| v.name()).collect()
    };
    let offered = header_list(h, STREAM_PROTOCOL_HEADER);
    if offered.is_empty() {
        // Clients that predate negotiation speak the first version of each protocol.
        let legacy = if kind == "portforward" {
            portforward::PROTOCOL
        } else {
            Version::V1.name()
        };
        return Ok(Transport::Spdy {
            protocol: legacy.to_owned(),
        });
    }
    match negotiate(&offered, &supported) {
        Some(p) => Ok(Transport::Spdy {
            protocol: p.to_owned(),
        }),
        None => {
            let mut resp = plain(
                StatusCode::FORBIDDEN,
                format!("unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {supported:?}"),
            );
            for s in supported {
                resp.headers_mut()
                    .append(ACCEPTED_PROTOCOLS_HEADER, HeaderValue::from_static(s));
            }
            Err(Box::new(resp))
        }
    }
}

async fn handle<B: Backend>(
    inner: Arc<Inner<B>>,
    mut req: Request<Incoming>,
) -> Result<Resp, Infallible> {
    if req.method() != Method::GET && req.method() != Method::POST {
        return Ok(plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"));
    }
    let path = req.uri().path().to_owned();
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (kind, token) = match (parts.next(), parts.next()) {
        (Some(k @ ("exec" | "attach" | "portforward")), Some(t)) if !t.contains('/') => (k, t),
        _ => return Ok(plain(StatusCode::NOT_FOUND, "not found")),
    };
    if !inner.cache.peek(token, |p| p.kind() == kind) {
        return Ok(plain(StatusCode::NOT_FOUND, "not found"));
    }
    // Check the upgrade before using up the token, so a client may fall back (WebSocket
    // to SPDY) on the same URL.
    let transport = match choose_transport(&req, kind) {
        Ok(t) => t,
        Err(resp) => return Ok(*resp),
    };
    let Some(pending) = inner.cache.take(token) else {
        return Ok(plain(StatusCode::NOT_FOUND, "not found"));
    };
    let query_ports = query_ports(req.uri().query().unwrap_or(""));
    let on_upgrade = hyper::upgrade::on(&mut req);
    let mut resp = plain(StatusCode::SWITCHING_PROTOCOLS, "");
    resp.headers_mut().remove(header::CONTENT_TYPE);
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    match &transport {
        Transport::Spdy { protocol } => {
            h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
            if let Ok(v) = HeaderValue::from_str(protocol) {
                h.insert(STREAM_PROTOCOL_HEADER, v);
            }
        }
        Transport::WebSocket { protocol, accept } => {
            h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            if let Ok(v) = HeaderValue::from_str(accept) {
                h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
            }
            if !protocol.is_empty() {
                if let Ok(v) = HeaderValue::from_str(protocol) {
                    h.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
                }
            }
        }
    }
    let guard = SessionGuard::new(&inner.sessions);
    tokio::spawn(async move {
        let _guard = guard;
        match on_upgrade.await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                serve_session(&inner, io, transport, pending, query_ports).await;
            }
            Err(e) => tracing::debug!("streaming server: upgrade failed: {e}"),
        }
    });
    Ok(resp)
}

fn options_of(pending: &Pending) -> Option<(Session, Options)> {
    match pending {
        Pending::Exec(r) => Some((
            Session::Exec {
                container_id: r.container_id.clone(),
                cmd: r.cmd.clone(),
            },
            Options {
                tty: r.tty,
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
            },
        )),
        Pending::Attach(r) => Some((
            Session::Attach {
                container_id: r.container_id.clone(),
            },
            Options {
                tty: r.tty,
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
            },
        )),
        Pending::PortForward(_) => None,
    }
}

/// The `port` query parameters (repeated and/or comma-separated); bad values are dropped.
fn query_ports(query: &str) -> Vec<u16> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == "port")
        .flat_map(|(_, v)| v.split(',').map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|p| p.trim().parse::<u16>().ok())
        .filter(|p| *p != 0)
        .collect()
}

async fn serve_session<B, IO>(
    inner: &Inner<B>,
    io: IO,
    transport: Transport,
    pending: Pending,
    query_ports: Vec<u16>,
) where
    B: Backend,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    match (transport, pending) {
        (Transport::Spdy { .. }, Pending::PortForward(req)) => match Connection::start(io) {
            Ok(conn) => portforward::serve(inner.backend.clone(), req.pod_sandbox_id, conn).await,
            Err(e) => tracing::warn!("streaming server: portforward: {e}"),
        },
        (Transport::WebSocket { protocol, .. }, Pending::PortForward(req))
            if protocol != portforward::TUNNEL_PROTOCOL =>
        {
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
            let ports = if query_ports.is_empty() {
                req.ports
            } else {
                query_ports
            };
            ws::serve_port_forward(ws, inner.backend.clone(), req.pod_sandbox_id, ports).await;
        }
        (Transport::WebSocket { .. }, Pending::PortForward(req)) => {
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
            match Connection::start(WsTunnel::new(ws)) {
                Ok(conn) => {
                    portforward::serve(inner.backend.clone(), req.pod_sandbox_id, conn).await
                }
                Err(e) => tracing::warn!("streaming server: portforward: {e}"),
            }
        }
        (Transport::Spdy { protocol }, pending) => {
            let Some((session, opts)) = options_of(&pending) else {
                return;
            };
            let version = Version::from_name(&protocol).unwrap_or(Version::V1);
            match Connection::start(io) {
                Ok(conn) => {
                    spdy_remotecommand(inner, conn, session, version, opts).await;
                }
                Err(e) => tracing::warn!("streaming server: {}: {e}", pending.kind()),
            }
        }
        (Transport::WebSocket { protocol, .. }, pending) => {
            let Some((session, opts)) = options_of(&pending) else {
                return;
            };
            // No subprotocol: the original binary channel protocol.
            let version = Version::from_name(&protocol).unwrap_or(Version::V1);
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
            ws::serve_remotecommand(ws, &*inner.backend, session, version, opts).await;
        }
    }
}

/// The streams a remotecommand client opens, by type.
#[derive(Default)]
struct SpdyStreams {
    error: Option<IncomingStream>,
    stdin: Option<IncomingStream>,
    stdout: Option<IncomingStream>,
    stderr: Option<IncomingStream>,
    resize: Option<IncomingStream>,
}

impl SpdyStreams {
    fn complete(&self, opts: &Options, version: Version) -> bool {
        self.error.is_some()
            && (!opts.stdin || self.stdin.is_some())
            && (!opts.stdout || self.stdout.is_some())
            && (!opts.stderr || opts.tty || self.stderr.is_some())
            && (!opts.tty || version < Version::V3 || self.resize.is_some())
    }
}

async fn spdy_remotecommand<B: Backend>(
    inner: &Inner<B>,
    mut conn: Connection,
    session: Session,
    version: Version,
    opts: Options,
) {
    let mut streams = SpdyStreams::default();
    let collect = async {
        while !streams.complete(&opts, version) {
            let Some(s) = conn.incoming.recv().await else {
                return false;
            };
            let slot = match spdy_header(&s.headers, "streamtype") {
                Some("error") => &mut streams.error,
                Some("stdin") => &mut streams.stdin,
                Some("stdout") => &mut streams.stdout,
                Some("stderr") => &mut streams.stderr,
                Some("resize") => &mut streams.resize,
                other => {
                    tracing::debug!("remotecommand: ignoring stream {} of type {other:?}", s.id);
                    continue;
                }
            };
            *slot = Some(s);
        }
        true
    };
    let complete = tokio::time::timeout(inner.stream_creation_timeout, collect).await;
    if complete != Ok(true) {
        tracing::debug!("remotecommand: client did not create its streams");
        if let Some(mut e) = streams.error.take() {
            let msg = "timed out waiting for the client to create streams";
            let _ = e.send.send(msg.as_bytes()).await;
        }
        conn.close(PEER_CLOSE_WAIT).await;
        return;
    }
    let Some(error) = streams.error else {
        return;
    };
    // Our halves of stdin and resize stay open for the whole session: client-go takes a
    // FIN on stdin as "the container closed stdin" and stops sending.
    let mut held_open = Vec::new();
    let mut recv_of = |s: IncomingStream| {
        held_open.push(s.send);
        s.recv
    };
    // Streams the CRI request did not ask for are left unused.
    let channels = remotecommand::Channels {
        stdin: streams.stdin.filter(|_| opts.stdin).map(&mut recv_of),
        resize: streams.resize.filter(|_| opts.tty).map(&mut recv_of),
        stdout: (streams.stdout.filter(|_| opts.stdout))
            .map(|s| remotecommand::OutSink::Spdy(s.send)),
        stderr: (streams.stderr.filter(|_| opts.stderr && !opts.tty))
            .map(|s| remotecommand::OutSink::Spdy(s.send)),
        error: remotecommand::OutSink::Spdy(error.send),
    };
    let gone = conn.gone.clone();
    remotecommand::run(&*inner.backend, session, version, opts.tty, channels, gone).await;
    drop(held_open);
    conn.close(PEER_CLOSE_WAIT).await;
}
