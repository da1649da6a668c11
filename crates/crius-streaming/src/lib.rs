//! crius-streaming: the CRI streaming server for Exec, Attach and PortForward.
//!
//! The CRI `Exec`, `Attach` and `PortForward` calls return a URL on this server (see
//! [`StreamingServer::get_exec`] and friends). Clients (`kubectl`, `crictl`) connect to that URL
//! and upgrade the HTTP connection to SPDY/3.1 or WebSocket; the server speaks the Kubernetes
//! remotecommand (`channel.k8s.io` .. `v5.channel.k8s.io`) and `portforward.k8s.io` protocols and
//! hands the byte streams to a [`Backend`] supplied by the daemon.

#![warn(missing_docs)]

mod backend;
mod error;
mod portforward;
mod remotecommand;
mod server;
mod spdy;
mod token;
mod types;
mod ws;

pub use backend::{Backend, BackendError};
pub use error::Error;
pub use server::{ServerConfig, StreamingServer};
pub use token::{Clock, SystemClock};
/// The rustls version [`ServerConfig::tls`] takes.
pub use tokio_rustls::rustls;
pub use types::{
    AttachRequest, ExecRequest, InputStream, OutputStream, PortForwardRequest, PortForwardStream,
    Streams, TermSize,
};
