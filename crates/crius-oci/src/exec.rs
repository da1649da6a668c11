//! Executing commands in a running container: `exec_sync` (probes, crictl exec) and streaming
//! exec sessions.

use std::time::Duration;

use tokio::process::{ChildStderr, ChildStdin, ChildStdout};

use crate::error::{OciError, Result};
use crate::runtime::Runtime;

/// Each of exec_sync's streams keeps at most this many bytes (16 MiB); the rest is discarded
/// while the command keeps running unblocked.
pub const EXEC_OUTPUT_CAP: usize = 16 << 20;

/// The result of [`Runtime::exec_sync`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSyncOutput {
    /// Standard output, at most [`EXEC_OUTPUT_CAP`] bytes.
    pub stdout: Vec<u8>,
    /// Standard error, at most [`EXEC_OUTPUT_CAP`] bytes.
    pub stderr: Vec<u8>,
    /// The command's exit code (128 + signal when killed by a signal).
    pub exit_code: i32,
    /// Whether stdout was cut at the cap.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at the cap.
    pub stderr_truncated: bool,
}

/// A running exec session (for the streaming server): piped stdio, or a pty master when tty.
#[derive(Debug)]
pub struct ExecSession {
    /// Pid of the exec'd process (host pid namespace).
    pub pid: i32,
    /// Stdin pipe (no tty).
    pub stdin: Option<ChildStdin>,
    /// Stdout pipe (no tty).
    pub stdout: Option<ChildStdout>,
    /// Stderr pipe (no tty).
    pub stderr: Option<ChildStderr>,
    /// The pty master received on the console socket (tty).
    pub pty: Option<std::os::fd::OwnedFd>,
}

impl Runtime {
    /// Runs `cmd` in container `id` and collects its output. At `timeout` the command's process
    /// is SIGKILLed and gone before this returns [`OciError::TimedOut`].
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Option<Duration>,
    ) -> Result<ExecSyncOutput> {
        crate::id::validate_id(id)?;
        let _ = (cmd, timeout);
        Err(OciError::FailedPrecondition {
            id: id.into(),
            step: "exec",
            message: "not implemented yet".into(),
        })
    }

    /// Starts `process` in container `id` for streaming; with `tty` the session carries the pty
    /// master instead of pipes.
    pub async fn exec(
        &self,
        id: &str,
        process: &oci_spec::runtime::Process,
        tty: bool,
    ) -> Result<ExecSession> {
        crate::id::validate_id(id)?;
        let _ = (process, tty);
        Err(OciError::FailedPrecondition {
            id: id.into(),
            step: "exec",
            message: "not implemented yet".into(),
        })
    }
}
