//! Request types and the stream bundle handed to the backend.

use std::pin::Pin;
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::sync::mpsc;

/// A CRI Exec request, as the daemon received it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    /// The container to run the command in.
    pub container_id: String,
    /// The command and its arguments.
    pub cmd: Vec<String>,
    /// Run the command on a terminal (stderr is then merged into stdout).
    pub tty: bool,
    /// Stream the client's stdin to the command.
    pub stdin: bool,
    /// Stream the command's stdout to the client.
    pub stdout: bool,
    /// Stream the command's stderr to the client (ignored with `tty`).
    pub stderr: bool,
}

/// A CRI Attach request, as the daemon received it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachRequest {
    /// The container to attach to.
    pub container_id: String,
    /// The container runs on a terminal (stderr is then merged into stdout).
    pub tty: bool,
    /// Stream the client's stdin to the container.
    pub stdin: bool,
    /// Stream the container's stdout to the client.
    pub stdout: bool,
    /// Stream the container's stderr to the client (ignored with `tty`).
    pub stderr: bool,
}

/// A CRI PortForward request, as the daemon received it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortForwardRequest {
    /// The pod sandbox whose network namespace the ports live in.
    pub pod_sandbox_id: String,
    /// The ports of the CRI request. Informational: SPDY clients name the port of each
    /// connection in its stream headers; used as the port list of the WebSocket channel
    /// protocol when the URL has no `port` query parameter.
    pub ports: Vec<u16>,
}

/// A terminal size sent by the client on the resize stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermSize {
    /// Columns.
    #[serde(rename = "Width")]
    pub width: u16,
    /// Rows.
    #[serde(rename = "Height")]
    pub height: u16,
}

/// The reading end of a client stream (stdin).
pub type InputStream = Box<dyn AsyncRead + Send + Unpin>;
/// The writing end of a client stream (stdout, stderr).
pub type OutputStream = Box<dyn AsyncWrite + Send + Unpin>;

/// The client's streams for one exec or attach session.
///
/// `stdin` reaches end of file when the client closes its stdin. The backend must drop
/// `stdout` and `stderr` (or let them go with the future) when it is done: the server sends
/// the exit status only after both reached end of file.
pub struct Streams {
    /// The client's stdin, when requested.
    pub stdin: Option<InputStream>,
    /// The client's stdout, when requested.
    pub stdout: Option<OutputStream>,
    /// The client's stderr, when requested and not `tty`.
    pub stderr: Option<OutputStream>,
    /// The session runs on a terminal.
    pub tty: bool,
    /// Terminal size changes (only ever sent with `tty`; closed when the client goes away).
    pub resize: mpsc::Receiver<TermSize>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .field("tty", &self.tty)
            .finish()
    }
}

/// One forwarded connection: a bidirectional byte stream to the client.
///
/// Reading yields what the client sends (end of file when it half-closes); writing sends to
/// the client; shutting down the write side (or dropping the stream) ends the client's copy.
#[derive(Debug)]
pub struct PortForwardStream {
    inner: DuplexStream,
}

impl PortForwardStream {
    pub(crate) fn new(inner: DuplexStream) -> Self {
        Self { inner }
    }
}

impl AsyncRead for PortForwardStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PortForwardStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
