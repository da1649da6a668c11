//! Executing commands in a running container: `exec_sync` (probes, `crictl exec -s`) and
//! streaming exec sessions.
//!
//! Both call `<runtime> exec` directly (not through the monitor): it is one process fewer per
//! probe, and the runtime itself waits for the exec'd process and returns its exit status. The
//! runtime writes the process's pid to a pid file, which is how a timeout kills the process
//! itself rather than just the runtime binary.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::oneshot;

use crate::create::read_pid;
use crate::error::{OciError, Result};
use crate::events::{DirWatch, ProcessHandle};
use crate::runtime::{is_not_found_text, truncate, Runtime};
use crate::signal::Signal;

/// Each of exec_sync's streams keeps at most this many bytes (16 MiB); the rest is discarded
/// while the command keeps running unblocked.
pub const EXEC_OUTPUT_CAP: usize = 16 << 20;

/// How long, after a timeout's SIGKILL, the exec'd process and the runtime get to be gone.
const KILL_WAIT: Duration = Duration::from_secs(10);

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

/// Kills the exec'd process (from the runtime's pid file) if the exec is abandoned: timeout,
/// error, or the caller dropping the future.
struct ExecGuard {
    pidfile: PathBuf,
    armed: bool,
}

impl Drop for ExecGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = read_pid(&self.pidfile) {
            match ProcessHandle::open(pid) {
                Ok(Some(h)) => {
                    if let Err(e) = h.signal(Signal::KILL) {
                        tracing::warn!(pid, error = %e, "exec: cannot kill abandoned process");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(pid, error = %e, "exec: cannot open abandoned process"),
            }
        }
    }
}

/// Reads a pipe into a buffer of at most [`EXEC_OUTPUT_CAP`] bytes, discarding the excess,
/// until EOF or until `done` fires (then it drains what is already buffered and stops, so a
/// background process holding the pipe open cannot stall the caller).
async fn capture_capped(fd: OwnedFd, mut done: oneshot::Receiver<()>) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut truncated = false;
    let rx = match pipe::Receiver::from_owned_fd(fd) {
        Ok(rx) => rx,
        Err(e) => {
            tracing::warn!(error = %e, "exec: cannot read output pipe");
            return (out, truncated);
        }
    };
    let mut chunk = vec![0u8; 64 << 10];
    let mut keep = |out: &mut Vec<u8>, data: &[u8]| {
        let room = EXEC_OUTPUT_CAP.saturating_sub(out.len());
        if data.len() > room {
            truncated = true;
        }
        out.extend_from_slice(&data[..data.len().min(room)]);
    };
    loop {
        tokio::select! {
            r = rx.readable() => {
                if r.is_err() {
                    break;
                }
                loop {
                    match rx.try_read(&mut chunk) {
                        Ok(0) => return (out, truncated),
                        Ok(n) => keep(&mut out, &chunk[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(_) => return (out, truncated),
                    }
                }
            }
            _ = &mut done => {
                loop {
                    match rx.try_read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => keep(&mut out, &chunk[..n]),
                        Err(_) => break,
                    }
                }
                break;
            }
        }
    }
    (out, truncated)
}

/// The exit code of a runtime process: its code, or 128 + signal.
fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

impl Runtime {
    /// Runs `cmd` in container `id` (`<runtime> exec --pid-file`) and collects its output, each
    /// stream capped at [`EXEC_OUTPUT_CAP`]. At `timeout` the command's process is SIGKILLed and
    /// gone before this returns [`OciError::TimedOut`]. A runtime that could not start the
    /// command (container not running / unknown) gives `FailedPrecondition` / `NotFound`.
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Option<Duration>,
    ) -> Result<ExecSyncOutput> {
        crate::id::validate_id(id)?;
        if cmd.is_empty() {
            return Err(OciError::InvalidArgument(format!(
                "container {id}: exec: empty command"
            )));
        }
        let io = |what: &str, e: std::io::Error| {
            OciError::io(format!("container {id}: exec: {what}"), e)
        };
        let tmp = tempfile::Builder::new()
            .prefix("crius-exec-")
            .tempdir()
            .map_err(|e| io("temp dir", e))?;
        let pidfile = tmp.path().join("pid");
        let mut guard = ExecGuard {
            pidfile: pidfile.clone(),
            armed: true,
        };
        let mut command = self.runtime_command();
        command
            .arg("exec")
            .arg("--pid-file")
            .arg(&pidfile)
            .arg(id)
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| io("spawn runtime", e))?;
        let (out_done, out_rx) = oneshot::channel();
        let (err_done, err_rx) = oneshot::channel();
        let out_fd = child
            .stdout
            .take()
            .ok_or_else(|| io("stdout", std::io::ErrorKind::BrokenPipe.into()))?
            .into_owned_fd()
            .map_err(|e| io("stdout", e))?;
        let err_fd = child
            .stderr
            .take()
            .ok_or_else(|| io("stderr", std::io::ErrorKind::BrokenPipe.into()))?
            .into_owned_fd()
            .map_err(|e| io("stderr", e))?;
        let out_task = tokio::spawn(capture_capped(out_fd, out_rx));
        let err_task = tokio::spawn(capture_capped(err_fd, err_rx));

        let waited = match timeout.filter(|t| !t.is_zero()) {
            Some(t) => tokio::time::timeout(t, child.wait()).await.ok(),
            None => Some(child.wait().await),
        };
        let Some(status) = waited else {
            let t = timeout.unwrap_or_default();
            tracing::debug!(id, ?t, "exec timed out: killing the command");
            let killed = kill_exec(&pidfile, tmp.path(), &mut child).await;
            out_task.abort();
            err_task.abort();
            if let Err(e) = killed {
                return Err(io("kill timed-out command", e));
            }
            guard.armed = false;
            return Err(OciError::TimedOut {
                id: id.to_string(),
                step: "exec",
                timeout: t,
            });
        };
        let status = status.map_err(|e| io("wait runtime", e))?;
        guard.armed = false;
        let _ = out_done.send(());
        let _ = err_done.send(());
        let (stdout, stdout_truncated) = out_task.await.unwrap_or_default();
        let (stderr, stderr_truncated) = err_task.await.unwrap_or_default();
        if !status.success() && !pidfile.exists() {
            // The runtime never started the command: its error, not the command's.
            return Err(self.exec_start_error(id, &stderr, status));
        }
        Ok(ExecSyncOutput {
            stdout,
            stderr,
            exit_code: exit_code(status),
            stdout_truncated,
            stderr_truncated,
        })
    }

    /// Whether this runtime hands a tty exec's pty over a console socket without detaching
    /// (crun does; runc refuses console sockets unless detached).
    fn tty_via_console_socket(&self) -> bool {
        self.handler
            .runtime_path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains("crun"))
    }

    fn exec_start_error(&self, id: &str, stderr: &[u8], status: ExitStatus) -> OciError {
        let mut text = String::from_utf8_lossy(stderr).trim().to_string();
        if text.is_empty() {
            text = format!("exited with {status}");
        }
        truncate(&mut text, 4096);
        if is_not_found_text(&text) {
            return OciError::NotFound { id: id.to_string() };
        }
        if text.contains("not running") || text.contains("stopped") || text.contains("paused") {
            return OciError::FailedPrecondition {
                id: id.to_string(),
                step: "exec",
                message: text,
            };
        }
        OciError::Runtime {
            id: id.to_string(),
            step: "exec",
            runtime: self.handler.name.clone(),
            stderr: text,
        }
    }

    /// Starts `process` in container `id` for streaming (`<runtime> exec --process`). Without
    /// `tty` the session has stdin/stdout/stderr pipes; with `tty` the runtime gets the slave of
    /// a pty we allocate and the session carries its master ([`PtyMaster`]), which
    /// [`ExecSession::resize`] resizes.
    pub async fn exec(
        &self,
        id: &str,
        process: &oci_spec::runtime::Process,
        tty: bool,
    ) -> Result<ExecSession> {
        crate::id::validate_id(id)?;
        let io = |what: &str, e: std::io::Error| {
            OciError::io(format!("container {id}: exec: {what}"), e)
        };
        let tmp = tempfile::Builder::new()
            .prefix("crius-exec-")
            .tempdir()
            .map_err(|e| io("temp dir", e))?;
        let mut process = process.clone();
        process.set_terminal(Some(tty));
        let spec_path = tmp.path().join("process.json");
        let json = serde_json::to_vec(&process).map_err(|e| {
            OciError::InvalidArgument(format!("container {id}: exec: process spec: {e}"))
        })?;
        std::fs::write(&spec_path, json).map_err(|e| io("write process spec", e))?;
        let pidfile = tmp.path().join("pid");
        let mut command = self.runtime_command();
        command
            .arg("exec")
            .arg("--process")
            .arg(&spec_path)
            .arg("--pid-file")
            .arg(&pidfile);
        let mut pty = None;
        let mut pty_ctl = None;
        let mut console = None;
        let console_socket = tty && self.tty_via_console_socket();
        if console_socket {
            // crun: the runtime makes the pty and sends its master over a console socket,
            // while it still waits for the process.
            let sock = tmp.path().join("console.sock");
            console =
                Some(tokio::net::UnixListener::bind(&sock).map_err(|e| io("console socket", e))?);
            command
                .arg("--tty")
                .arg("--console-socket")
                .arg(&sock)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        } else if tty {
            // runc: without --detach it refuses console sockets; it makes the container's pty
            // itself and copies between it and its own stdio, our pty's slave.
            let (master, slave) = open_pty().map_err(|e| io("openpty", e))?;
            let slave = std::fs::File::from(slave);
            let clone = |f: &std::fs::File| f.try_clone().map(Stdio::from);
            command
                .arg("--tty")
                .stdin(clone(&slave).map_err(|e| io("pty", e))?)
                .stdout(clone(&slave).map_err(|e| io("pty", e))?)
                .stderr(Stdio::from(slave));
            pty_ctl = Some(master.try_clone().map_err(|e| io("pty", e))?);
            pty = Some(PtyMaster::new(master).map_err(|e| io("pty", e))?);
        } else {
            command
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
        command.arg(id).kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| io("spawn runtime", e))?;
        drop(command);
        let guard = ExecGuard {
            pidfile: pidfile.clone(),
            armed: true,
        };
        if let Some(listener) = console.take() {
            let master = tokio::select! {
                m = recv_console(&listener) => m.map_err(|e| io("receive console", e))?,
                st = child.wait() => {
                    let st = st.map_err(|e| io("wait runtime", e))?;
                    return Err(OciError::Runtime {
                        id: id.to_string(),
                        step: "exec",
                        runtime: self.handler.name.clone(),
                        stderr: format!("exited with {st} before sending the terminal"),
                    });
                }
            };
            pty_ctl = Some(master.try_clone().map_err(|e| io("pty", e))?);
            pty = Some(PtyMaster::new(master).map_err(|e| io("pty", e))?);
        }
        // Take the pipes first: `Child::wait` closes stdin.
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        // Learn the pid: the runtime writes the pid file once the process started.
        let watch = DirWatch::new(tmp.path()).map_err(|e| io("watch pid file", e))?;
        let pid = loop {
            if let Some(pid) = read_pid(&pidfile) {
                break pid;
            }
            tokio::select! {
                st = child.wait() => {
                    let st = st.map_err(|e| io("wait runtime", e))?;
                    if let Some(pid) = read_pid(&pidfile) {
                        break pid;
                    }
                    return Err(OciError::Runtime {
                        id: id.to_string(),
                        step: "exec",
                        runtime: self.handler.name.clone(),
                        stderr: format!("exited with {st} before starting the process"),
                    });
                }
                r = watch.next_names() => { r.map_err(|e| io("watch pid file", e))?; }
            }
        };
        Ok(ExecSession {
            pid,
            stdin,
            stdout,
            stderr,
            pty,
            pty_ctl,
            winch_runtime: tty && !console_socket,
            child,
            guard,
            _tmp: tmp,
        })
    }
}

/// Accepts the runtime's connection on the console socket and receives the pty master
/// (SCM_RIGHTS).
async fn recv_console(listener: &tokio::net::UnixListener) -> std::io::Result<OwnedFd> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let (stream, _) = listener.accept().await?;
    loop {
        stream.readable().await?;
        let got = stream.try_io(tokio::io::Interest::READABLE, || {
            let mut data = [0u8; 4096];
            let mut iov = [std::io::IoSliceMut::new(&mut data)];
            let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut cmsg = RecvAncillaryBuffer::new(&mut space);
            rustix::net::recvmsg(
                &stream,
                &mut iov,
                &mut cmsg,
                RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
            )?;
            for msg in cmsg.drain() {
                if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
                    if let Some(fd) = fds.next() {
                        return Ok(Some(fd));
                    }
                }
            }
            Ok(None)
        });
        match got {
            Ok(Some(fd)) => return Ok(fd),
            Ok(None) => {
                return Err(std::io::Error::other(
                    "console socket message carried no fd",
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// SIGKILLs the exec'd process named by `pidfile` (waiting for the runtime to write it if it
/// has not yet), waits until it is gone, then reaps the runtime.
async fn kill_exec(pidfile: &Path, dir: &Path, child: &mut Child) -> std::io::Result<()> {
    let watch = DirWatch::new(dir)?;
    let mut runtime_exited = false;
    loop {
        if let Some(pid) = read_pid(pidfile) {
            if let Some(h) = ProcessHandle::open(pid)? {
                if !h.kill_and_wait(KILL_WAIT).await? {
                    return Err(std::io::Error::other(format!(
                        "process {pid} survived SIGKILL"
                    )));
                }
            }
            break;
        }
        if runtime_exited {
            break;
        }
        tokio::select! {
            r = child.wait() => { r?; runtime_exited = true; }
            r = watch.next_names() => { r?; }
        }
    }
    // The runtime reaps its process and exits; make sure of it.
    if tokio::time::timeout(KILL_WAIT, child.wait()).await.is_err() {
        child.start_kill()?;
        child.wait().await?;
    }
    Ok(())
}

/// A running exec session (for the streaming server): piped stdio, or a pty master when tty.
/// Dropping it SIGKILLs the process if it still runs.
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
    /// The pty master (tty): read output from it, write input to it.
    pub pty: Option<PtyMaster>,
    /// A second handle on the pty master for resizing after `pty` was taken.
    pty_ctl: Option<OwnedFd>,
    /// Whether a resize must be relayed by SIGWINCH to the runtime (runc's copy mode).
    winch_runtime: bool,
    child: Child,
    guard: ExecGuard,
    _tmp: tempfile::TempDir,
}

impl std::fmt::Debug for ExecGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecGuard")
            .field("pidfile", &self.pidfile)
            .finish()
    }
}

impl ExecSession {
    /// Waits for the process to exit and returns its exit code (128 + signal when killed).
    pub async fn wait(&mut self) -> Result<i32> {
        let status = self
            .child
            .wait()
            .await
            .map_err(|e| OciError::io(format!("exec session {}: wait", self.pid), e))?;
        self.guard.armed = false;
        Ok(exit_code(status))
    }

    /// Sets the terminal size (tty sessions): resizes our pty and tells the runtime (SIGWINCH),
    /// which copies the size to the container's terminal.
    pub fn resize(&self, height: u16, width: u16) -> Result<()> {
        let Some(pty) = &self.pty_ctl else {
            return Err(OciError::FailedPrecondition {
                id: format!("exec {}", self.pid),
                step: "resize",
                message: "session has no terminal".into(),
            });
        };
        let ws = rustix::termios::Winsize {
            ws_row: height,
            ws_col: width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(pty, ws)
            .map_err(|e| OciError::io(format!("exec session {}: resize", self.pid), e.into()))?;
        if let Some(rt) = self.child.id().filter(|_| self.winch_runtime) {
            if let Ok(Some(h)) = ProcessHandle::open(rt as i32) {
                let _ = h.signal(Signal::from_raw(libc::SIGWINCH)?);
            }
        }
        Ok(())
    }

    /// SIGKILLs the exec'd process.
    pub fn kill(&self) -> Result<()> {
        if let Ok(Some(h)) = ProcessHandle::open(self.pid) {
            h.signal(Signal::KILL)
                .map_err(|e| OciError::io(format!("exec session {}: kill", self.pid), e))?;
        }
        Ok(())
    }
}

/// The master side of an exec session's pty, readable and writable asynchronously.
#[derive(Debug)]
pub struct PtyMaster {
    fd: AsyncFd<OwnedFd>,
}

impl PtyMaster {
    fn new(fd: OwnedFd) -> std::io::Result<Self> {
        rustix::io::ioctl_fionbio(&fd, true)?;
        Ok(PtyMaster {
            fd: crate::events::async_fd(
                fd,
                tokio::io::Interest::READABLE | tokio::io::Interest::WRITABLE,
            )?,
        })
    }
}

impl AsyncRead for PtyMaster {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            let mut guard = match self.fd.poll_read_ready(cx) {
                Poll::Ready(g) => g?,
                Poll::Pending => return Poll::Pending,
            };
            let unfilled = buf.initialize_unfilled();
            match guard
                .try_io(|fd| rustix::io::read(fd.get_ref(), &mut *unfilled).map_err(Into::into))
            {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // EIO: the slave side is closed (the process exited): end of stream.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for PtyMaster {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            let mut guard = match self.fd.poll_write_ready(cx) {
                Poll::Ready(g) => g?,
                Poll::Pending => return Poll::Pending,
            };
            match guard.try_io(|fd| rustix::io::write(fd.get_ref(), data).map_err(Into::into)) {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Opens a pty pair (master, slave), both close-on-exec.
fn open_pty() -> std::io::Result<(OwnedFd, OwnedFd)> {
    // SAFETY: posix_openpt returns a new fd or -1; we own it immediately.
    let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if master < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `master` is a freshly opened fd owned by nobody else.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    // SAFETY: grantpt/unlockpt take a valid pty master fd.
    if unsafe { libc::grantpt(master.as_raw_fd()) } != 0
        || unsafe { libc::unlockpt(master.as_raw_fd()) } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: the buffer is valid for its length; ptsname_r NUL-terminates on success.
    let rc = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    // SAFETY: ptsname_r succeeded, so `name` holds a NUL-terminated string.
    let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    let slave = rustix::fs::open(
        path,
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let _ = master.as_fd();
    Ok((master, slave))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn capture_caps_and_drains() {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let (done_tx, done_rx) = oneshot::channel();
        let task = tokio::spawn(capture_capped(r, done_rx));
        let writer = tokio::task::spawn_blocking(move || {
            let mut f = std::fs::File::from(w);
            let block = vec![b'x'; 1 << 20];
            for _ in 0..17 {
                std::io::Write::write_all(&mut f, &block).unwrap();
            }
        });
        writer.await.unwrap();
        let _ = done_tx.send(());
        let (out, truncated) = task.await.unwrap();
        assert_eq!(out.len(), EXEC_OUTPUT_CAP);
        assert!(truncated);
    }

    #[test]
    fn pty_opens() {
        let (m, s) = open_pty().unwrap();
        assert!(rustix::termios::isatty(&s));
        assert!(m.as_raw_fd() >= 0);
    }
}
