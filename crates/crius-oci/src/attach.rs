//! Client side of the monitor's attach socket and control fifo.

use crate::error::{OciError, Result};
use crate::runtime::Runtime;

/// Which container stream an attach frame carries (the frame's leading byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachStreamKind {
    /// Stdout (or the terminal), byte 1.
    Stdout,
    /// Stderr, byte 2.
    Stderr,
}

/// A connection to `<socket-dir>/<id>/attach` (SOCK_SEQPACKET).
#[derive(Debug)]
pub struct AttachStream {
    _private: (),
}

impl Runtime {
    /// Connects to the monitor's attach socket of `id`.
    pub async fn attach(&self, id: &str) -> Result<AttachStream> {
        crate::id::validate_id(id)?;
        Err(OciError::FailedPrecondition {
            id: id.into(),
            step: "attach",
            message: "not implemented yet".into(),
        })
    }
}
