//! Client side of the monitor's attach socket and control fifo (conmon's protocol).
//!
//! Attach: `<socket-dir>/<id>` is a symlink to the bundle and `attach` in it a SOCK_SEQPACKET
//! socket. Each packet from the monitor is one stream byte (2 stdout, 3 stderr; 1 would be
//! stdin) followed by the
//! data; packets we send are raw stdin; shutting down our write side closes the container's
//! stdin (unless it was created with `--leave-stdin-open`).
//! Control: `ctl` in the bundle is a fifo taking lines `"<type> <height> <width>\n"`: type 1
//! resizes the terminal, type 2 reopens the log file.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use rustix::net::{
    AddressFamily, RecvFlags, SendFlags, Shutdown, SocketAddrUnix, SocketFlags, SocketType,
};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::error::{OciError, Result};
use crate::runtime::Runtime;

/// Largest attach packet we accept (the monitor sends at most 8 KiB + 1).
const MAX_PACKET: usize = 64 << 10;

/// Which container stream an attach frame carries (the frame's leading byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachStreamKind {
    /// Stdout (or the terminal), byte 2.
    Stdout,
    /// Stderr, byte 3.
    Stderr,
}

/// A connection to `<socket-dir>/<id>/attach` (SOCK_SEQPACKET).
#[derive(Debug)]
pub struct AttachStream {
    fd: AsyncFd<OwnedFd>,
    id: String,
}

impl AttachStream {
    /// Receives the next frame: `Ok(None)` when the monitor closed the connection (the
    /// container exited). Frames with an unknown stream byte are skipped.
    pub async fn recv(&self) -> Result<Option<(AttachStreamKind, Vec<u8>)>> {
        let mut buf = vec![0u8; MAX_PACKET];
        loop {
            let mut guard = self.fd.readable().await.map_err(|e| self.err("recv", e))?;
            match guard.try_io(|fd| {
                rustix::net::recv(fd.get_ref(), &mut buf[..], RecvFlags::DONTWAIT)
                    .map(|(n, _)| n)
                    .map_err(Into::into)
            }) {
                Ok(Ok(0)) => return Ok(None),
                Ok(Ok(n)) => {
                    let kind = match buf[0] {
                        2 => AttachStreamKind::Stdout,
                        3 => AttachStreamKind::Stderr,
                        other => {
                            tracing::debug!(id = %self.id, byte = other, "attach: unknown stream byte");
                            continue;
                        }
                    };
                    return Ok(Some((kind, buf[1..n].to_vec())));
                }
                Ok(Err(e)) => return Err(self.err("recv", e)),
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends `data` to the container's stdin (one packet per call, split if large).
    pub async fn send_stdin(&self, data: &[u8]) -> Result<()> {
        for chunk in data.chunks(MAX_PACKET / 2) {
            loop {
                let mut guard = self.fd.writable().await.map_err(|e| self.err("send", e))?;
                match guard.try_io(|fd| {
                    rustix::net::send(
                        fd.get_ref(),
                        chunk,
                        SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
                    )
                    .map_err(Into::into)
                }) {
                    Ok(Ok(_)) => break,
                    Ok(Err(e)) => return Err(self.err("send", e)),
                    Err(_would_block) => continue,
                }
            }
        }
        Ok(())
    }

    /// Ends our input: the monitor closes the container's stdin unless it leaves it open.
    pub fn close_stdin(&self) -> Result<()> {
        rustix::net::shutdown(self.fd.get_ref(), Shutdown::Write)
            .map_err(|e| self.err("shutdown", e.into()))
    }

    fn err(&self, what: &str, e: std::io::Error) -> OciError {
        OciError::io(format!("container {}: attach: {what}", self.id), e)
    }
}

impl Runtime {
    /// Connects to the monitor's attach socket of `id`. The socket path is reached through an
    /// `O_PATH` handle on `<socket-dir>/<id>`, so long bundle paths do not hit the 108-byte
    /// limit of socket addresses.
    pub async fn attach(&self, id: &str) -> Result<AttachStream> {
        crate::id::validate_id(id)?;
        let dir = self.monitor.socket_dir.join(id);
        let err = |what: &str, e: std::io::Error| {
            OciError::io(format!("container {id}: attach: {what}"), e)
        };
        let dirfd = match rustix::fs::open(
            &dir,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => {
                return Err(OciError::FailedPrecondition {
                    id: id.to_string(),
                    step: "attach",
                    message: format!(
                        "no attach socket at {} (monitor not running?)",
                        dir.display()
                    ),
                })
            }
            Err(e) => return Err(err("open socket dir", e.into())),
        };
        let path = format!("/proc/self/fd/{}/attach", dirfd.as_raw_fd());
        let addr =
            SocketAddrUnix::new(path.as_str()).map_err(|e| err("socket address", e.into()))?;
        let sock = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )
        .map_err(|e| err("socket", e.into()))?;
        match rustix::net::connect(&sock, &addr) {
            Ok(()) => {}
            Err(rustix::io::Errno::INPROGRESS) | Err(rustix::io::Errno::AGAIN) => {}
            Err(e) => return Err(err("connect", e.into())),
        }
        drop(dirfd);
        let fd = crate::events::async_fd(sock, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| err("register", e))?;
        let _ = fd.get_ref().as_fd();
        Ok(AttachStream {
            fd,
            id: id.to_string(),
        })
    }

    /// Resizes the terminal of container `id` (monitor's control fifo, message type 1).
    pub async fn resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        self.control(id, &format!("1 {height} {width}\n"))
    }

    /// Asks the monitor of `id` to reopen its log file (after log rotation; message type 2).
    pub async fn reopen_log(&self, id: &str) -> Result<()> {
        self.control(id, "2 0 0\n")
    }

    fn control(&self, id: &str, line: &str) -> Result<()> {
        crate::id::validate_id(id)?;
        let ctl = self.monitor.socket_dir.join(id).join("ctl");
        write_fifo(&ctl, line.as_bytes()).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENXIO) => OciError::FailedPrecondition {
                id: id.to_string(),
                step: "control",
                message: format!("no monitor listening on {}", ctl.display()),
            },
            _ => OciError::io(format!("container {id}: write {}", ctl.display()), e),
        })
    }
}

/// Writes to a fifo without blocking on a missing reader (ENXIO when nobody reads it).
fn write_fifo(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    f.write_all(data)
}
