//! The attach socket: a SOCK_SEQPACKET listener at `<bundle>/attach`, reachable as
//! `<socket-dir-path>/<cuuid>/attach` through a symlink `<socket-dir-path>/<cuuid>` -> bundle
//! (with `--full-attach`, only the bundle path, no symlink). Every chunk of container output is
//! sent to each client as one record `[stream byte][data]` (2 = stdout, 3 = stderr, data at most
//! 8192 bytes); whatever a client sends is container stdin, and its half-close ends stdin unless
//! `--leave-stdin-open`.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::crilog::Stream;
use crate::sys;

/// One attached client.
pub struct Client {
    /// The connection.
    pub fd: OwnedFd,
    /// Still sending us stdin.
    pub readable: bool,
}

/// The listening socket and its clients.
pub struct Attach {
    listener: OwnedFd,
    /// Connected clients.
    pub clients: Vec<Client>,
    socket: PathBuf,
    symlink: Option<PathBuf>,
    frame: Vec<u8>,
}

/// sun_path is 108 bytes; conmon shortens a symlink path that would be exactly 107 bytes long.
const SUN_PATH_LEN: usize = 108;

impl Attach {
    /// Creates the symlink (unless `full_attach`) and the listening socket.
    pub fn setup(
        bundle: &Path,
        socket_dir: &Path,
        cuuid: &str,
        full_attach: bool,
    ) -> io::Result<Attach> {
        let symlink = if full_attach {
            None
        } else {
            std::fs::create_dir_all(socket_dir)?;
            let mut base = socket_dir.join(cuuid).into_os_string().into_encoded_bytes();
            if base.len() == SUN_PATH_LEN - 1 {
                base.pop();
            }
            let base = PathBuf::from(
                <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(base),
            );
            match std::fs::remove_file(&base) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            std::os::unix::fs::symlink(bundle, &base)?;
            Some(base)
        };
        let socket = bundle.join("attach");
        match std::fs::remove_file(&socket) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = sys::seqpacket_listen(bundle, "attach")?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o700))?;
        Ok(Attach {
            listener,
            clients: Vec::new(),
            socket,
            symlink,
            frame: Vec::with_capacity(8193),
        })
    }

    /// The listening descriptor.
    pub fn listener_fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }

    /// Accepts every pending connection.
    pub fn accept_all(&mut self) {
        loop {
            match sys::accept(self.listener.as_raw_fd()) {
                Ok(Some(fd)) => {
                    // A client that stops reading must not stall the container's output forever.
                    let _ = sys::set_send_timeout(fd.as_raw_fd(), 5);
                    diag!(Info, "accepted attach connection {}", fd.as_raw_fd());
                    self.clients.push(Client { fd, readable: true });
                }
                Ok(None) => return,
                Err(e) => {
                    diag!(Warn, "accept on attach socket: {e}");
                    return;
                }
            }
        }
    }

    /// Sends one output chunk to every client; clients that fail are dropped.
    pub fn broadcast(&mut self, stream: Stream, data: &[u8]) {
        if self.clients.is_empty() {
            return;
        }
        for piece in data.chunks(8192) {
            self.frame.clear();
            self.frame.push(stream as u8);
            self.frame.extend_from_slice(piece);
            let frame = &self.frame;
            self.clients
                .retain(|c| match sys::send(c.fd.as_raw_fd(), frame) {
                    Ok(_) => true,
                    Err(e) => {
                        diag!(Warn, "write to attach client: {e}");
                        false
                    }
                });
        }
    }

    /// Closes every client and the listener's filesystem entries (the socket and the symlink).
    pub fn shutdown(&mut self) {
        self.clients.clear();
        if let Some(s) = &self.symlink {
            let _ = std::fs::remove_file(s);
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}
