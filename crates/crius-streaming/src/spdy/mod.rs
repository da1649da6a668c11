//! SPDY/3.1 as used by Kubernetes streaming: framing, header compression, and a server-side
//! connection that accepts client-initiated streams.

mod conn;
mod dictionary;
mod frame;
#[cfg(test)]
mod tests;
mod zlib;

pub(crate) use conn::{Connection, IncomingStream, SendHalf};
pub(crate) use frame::header;

/// A SPDY protocol or connection failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpdyError {
    /// The peer broke the framing rules.
    #[error("spdy protocol error: {0}")]
    Protocol(String),
    /// Header (de)compression failed.
    #[error("spdy header compression: {0}")]
    Compression(String),
    /// Reading or writing the connection failed.
    #[error("spdy connection i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The connection or stream is gone; nothing more can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gone;
