//! Stopping a container: stop signal, wait for the exit as an event, SIGKILL at the deadline.

use std::time::Duration;

use crate::error::{OciError, Result};
use crate::runtime::Runtime;
use crate::signal::Signal;

impl Runtime {
    /// Sends `stop_signal` (default SIGTERM), waits up to `timeout` for the init process to exit
    /// (pidfd readiness, no polling), then SIGKILLs it and waits until it is gone, and finally
    /// waits briefly for the monitor's exit record. Stopping a stopped container succeeds.
    pub async fn stop(&self, id: &str, timeout: Duration, stop_signal: Option<Signal>) -> Result<()> {
        crate::id::validate_id(id)?;
        let _ = (timeout, stop_signal);
        Err(OciError::FailedPrecondition {
            id: id.into(),
            step: "stop",
            message: "not implemented yet".into(),
        })
    }
}
