//! Errors of the NRI runtime side.

use std::path::PathBuf;
use std::time::Duration;

/// Why a single ttrpc call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The connection is closed (the plugin went away).
    #[error("connection closed")]
    Closed,
    /// No answer within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The peer answered with an error status.
    #[error("{message} (code {code})")]
    Status {
        /// gRPC status code.
        code: i32,
        /// The peer's message.
        message: String,
    },
    /// The answer could not be decoded.
    #[error("undecodable answer: {0}")]
    Decode(prost::DecodeError),
}

/// An NRI error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The plugin socket could not be set up.
    #[error("nri: listen on {path}: {source}")]
    Listen {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A plugin rejected a lifecycle event: the operation must fail.
    #[error("nri: plugin {plugin} failed {event} for {object}: {message}")]
    Plugin {
        /// The plugin (`<index>-<name>`).
        plugin: String,
        /// The event (`RunPodSandbox`, `CreateContainer`...).
        event: &'static str,
        /// The pod or container id.
        object: String,
        /// The plugin's error.
        message: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
