//! The streaming seam: Exec/Attach/PortForward return URLs served by crius-streaming.

use k8s_cri::v1 as cri;

use crate::error::Result;

/// Hands out streaming URLs for the three streaming RPCs.
pub trait StreamUrls: Send + Sync {
    /// URL of an exec session.
    fn exec(&self, req: &cri::ExecRequest) -> Result<String>;
    /// URL of an attach session.
    fn attach(&self, req: &cri::AttachRequest) -> Result<String>;
    /// URL of a port-forward session.
    fn port_forward(&self, req: &cri::PortForwardRequest) -> Result<String>;
}
