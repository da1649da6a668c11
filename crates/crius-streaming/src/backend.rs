//! The trait the daemon implements to run the sessions the server accepts.

use std::future::Future;

use crate::types::{PortForwardStream, Streams};

/// An error from the backend; its text is sent to the client on the error stream.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What the streaming server calls once a client has connected and its streams are set up.
///
/// Implementations write `async fn` in their `impl` block. Each returned future is dropped
/// (cancelled) when the client goes away before it finished: an implementation must then
/// clean up on drop, e.g. kill an exec'd process (`kill_on_drop`) or detach from a container.
pub trait Backend: Send + Sync + 'static {
    /// Runs `cmd` in the container with the client's streams; returns its exit code.
    fn exec(
        &self,
        container_id: String,
        cmd: Vec<String>,
        streams: Streams,
    ) -> impl Future<Output = Result<i32, BackendError>> + Send;

    /// Attaches the client's streams to the container's main process until it exits or
    /// the client detaches (stdin closed with no output stream left).
    fn attach(
        &self,
        container_id: String,
        streams: Streams,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Forwards one client connection to `port` in the pod sandbox's network namespace.
    /// Return when both directions are done (or on error).
    fn port_forward(
        &self,
        pod_sandbox_id: String,
        port: u16,
        stream: PortForwardStream,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
}
