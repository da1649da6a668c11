//! Errors of the streaming server.

use std::net::SocketAddr;

/// Errors returned by the streaming server's public API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("streaming server: bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Too many requests are waiting for their client to connect.
    #[error("streaming server: {kind} request for {id}: too many pending requests ({max})")]
    TooManyPending {
        /// "exec", "attach" or "portforward".
        kind: &'static str,
        /// Container or pod sandbox id of the refused request.
        id: String,
        /// The limit.
        max: usize,
    },
    /// The request is not valid (CRI InvalidArgument): no stream asked for, or tty with
    /// stderr.
    #[error("streaming server: {kind} request for {id}: {reason}")]
    InvalidRequest {
        /// "exec" or "attach".
        kind: &'static str,
        /// Container id of the refused request.
        id: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The operating system's random number generator failed.
    #[error("streaming server: {kind} request for {id}: generate token: {reason}")]
    Token {
        /// "exec", "attach" or "portforward".
        kind: &'static str,
        /// Container or pod sandbox id.
        id: String,
        /// What the RNG said.
        reason: String,
    },
    /// The URL built for a request is not valid (bad `url_host` in the config).
    #[error("streaming server: build URL {url}: {reason}")]
    Url {
        /// The URL text.
        url: String,
        /// What was wrong.
        reason: String,
    },
}
