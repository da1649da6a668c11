//! Shared fixtures: a fake backend that runs real host processes and connects to real TCP
//! listeners, and the Go client (client-go's executors and port forwarder) built once.

#![allow(dead_code)]

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use crius_streaming::{Backend, BackendError, PortForwardStream, Streams, TermSize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// What the fake backend saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An exec process started (pid).
    Started(u32),
    /// An exec process is gone: exited, or killed and reaped because the session ended.
    Reaped(u32),
    /// A terminal size arrived.
    Resize(TermSize),
    /// A port-forward connection for (pod, port).
    Forward(String, u16),
}

/// Runs exec'd commands as host processes; attach echoes stdin to stdout.
#[derive(Clone)]
pub struct HostBackend {
    events: mpsc::UnboundedSender<Event>,
}

impl HostBackend {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Event>) {
        let (events, rx) = mpsc::unbounded_channel();
        (Self { events }, rx)
    }
}

/// Kills (if still running) and reaps the child when the exec future ends or is dropped.
struct Reaper {
    child: tokio::process::Child,
    pid: u32,
    events: mpsc::UnboundedSender<Event>,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        // SIGKILL was sent (or the child already exited): this wait returns at once.
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid as i32), None);
        let _ = self.events.send(Event::Reaped(self.pid));
    }
}

fn set_winsize(fd: &OwnedFd, size: TermSize) {
    let ws = libc::winsize {
        ws_row: size.height,
        ws_col: size.width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: fd is a valid open pty master and ws a valid winsize for TIOCSWINSZ.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

impl HostBackend {
    async fn exec_pipes(
        &self,
        cmd: Vec<String>,
        mut streams: Streams,
    ) -> Result<i32, BackendError> {
        let mut command = tokio::process::Command::new(&cmd[0]);
        command
            .args(&cmd[1..])
            .stdin(if streams.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let pid = child.id().ok_or("no pid")?;
        let _ = self.events.send(Event::Started(pid));
        let child_stdin = child.stdin.take();
        let mut child_stdout = child.stdout.take().ok_or("no stdout")?;
        let mut child_stderr = child.stderr.take().ok_or("no stderr")?;
        let mut reaper = Reaper {
            child,
            pid,
            events: self.events.clone(),
        };
        // Detached: the process may exit while the client still holds stdin open.
        let stdin = streams.stdin.take();
        tokio::spawn(async move {
            if let (Some(mut from), Some(mut to)) = (stdin, child_stdin) {
                let _ = tokio::io::copy(&mut from, &mut to).await;
            }
        });
        let out = streams.stdout.take();
        let err = streams.stderr.take();
        let stdout_copy = async move {
            match out {
                Some(mut out) => {
                    let _ = tokio::io::copy(&mut child_stdout, &mut out).await;
                    let _ = out.shutdown().await;
                }
                None => {
                    let _ = tokio::io::copy(&mut child_stdout, &mut tokio::io::sink()).await;
                }
            }
        };
        let stderr_copy = async move {
            match err {
                Some(mut err) => {
                    let _ = tokio::io::copy(&mut child_stderr, &mut err).await;
                    let _ = err.shutdown().await;
                }
                None => {
                    let _ = tokio::io::copy(&mut child_stderr, &mut tokio::io::sink()).await;
                }
            }
        };
        let (_, _, status) = tokio::join!(stdout_copy, stderr_copy, reaper.child.wait());
        Ok(status?.code().unwrap_or(128))
    }

    async fn exec_tty(&self, cmd: Vec<String>, mut streams: Streams) -> Result<i32, BackendError> {
        // Like a runtime that sizes the terminal before starting the process: wait for
        // the client's first size.
        let size = streams.resize.recv().await.unwrap_or(TermSize {
            width: 80,
            height: 24,
        });
        let _ = self.events.send(Event::Resize(size));
        let pty = nix::pty::openpty(None, None)?;
        set_winsize(&pty.master, size);
        let slave = pty.slave;
        let mut command = tokio::process::Command::new(&cmd[0]);
        command
            .args(&cmd[1..])
            .stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave))
            .kill_on_drop(true);
        // SAFETY: setsid and ioctl(TIOCSCTTY) are async-signal-safe; they make the pty (the
        // child's fd 0) its controlling terminal.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn()?;
        drop(command); // closes our copies of the slave
        let pid = child.id().ok_or("no pid")?;
        let _ = self.events.send(Event::Started(pid));
        let mut reaper = Reaper {
            child,
            pid,
            events: self.events.clone(),
        };
        let master = pty.master;
        let resize_master = master.try_clone()?;
        let mut reader = tokio::fs::File::from_std(std::fs::File::from(master.try_clone()?));
        let mut writer = tokio::fs::File::from_std(std::fs::File::from(master));
        let events = self.events.clone();
        let mut resize = streams.resize;
        tokio::spawn(async move {
            while let Some(size) = resize.recv().await {
                set_winsize(&resize_master, size);
                let _ = events.send(Event::Resize(size));
            }
        });
        if let Some(mut stdin) = streams.stdin.take() {
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut stdin, &mut writer).await;
                // ^D ends a canonical-mode read on the terminal.
                let _ = writer.write_all(&[4]).await;
                let _ = writer.flush().await;
            });
        }
        let mut out = streams.stdout.take();
        let copy = async {
            let mut buf = vec![0u8; 8192];
            loop {
                // EIO once the child closed the terminal: end of output.
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Some(out) = out.as_mut() {
                            if out.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        };
        let (_, status) = tokio::join!(copy, reaper.child.wait());
        Ok(status?.code().unwrap_or(128))
    }
}

impl Backend for HostBackend {
    async fn exec(
        &self,
        _container_id: String,
        cmd: Vec<String>,
        streams: Streams,
    ) -> Result<i32, BackendError> {
        if cmd.is_empty() {
            return Err("empty command".into());
        }
        if streams.tty {
            self.exec_tty(cmd, streams).await
        } else {
            self.exec_pipes(cmd, streams).await
        }
    }

    async fn attach(
        &self,
        _container_id: String,
        mut streams: Streams,
    ) -> Result<(), BackendError> {
        if let (Some(mut input), Some(mut out)) = (streams.stdin.take(), streams.stdout.take()) {
            tokio::io::copy(&mut input, &mut out).await?;
        }
        Ok(())
    }

    async fn port_forward(
        &self,
        pod_sandbox_id: String,
        port: u16,
        mut stream: PortForwardStream,
    ) -> Result<(), BackendError> {
        let _ = self.events.send(Event::Forward(pod_sandbox_id, port));
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        tokio::io::copy_bidirectional(&mut stream, &mut tcp).await?;
        Ok(())
    }
}

/// Builds the Go client once per test binary; `None` (with a message) without a Go toolchain.
pub fn goclient() -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goclient");
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("crius-streaming-goclient");
            let go = std::env::var_os("GO").unwrap_or_else(|| "go".into());
            let status = std::process::Command::new(&go)
                .arg("build")
                .arg("-o")
                .arg(&out)
                .arg(".")
                .current_dir(&src)
                .env("GOFLAGS", "-mod=mod")
                .status();
            match status {
                Ok(s) if s.success() => Some(out),
                Ok(s) => panic!("go build of {} failed: {s}", src.display()),
                Err(e) => {
                    eprintln!("SKIP: no Go toolchain ({e}); client-go interop tests not run");
                    None
                }
            }
        })
        .clone()
}

/// Output of one Go client run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the Go client with `args`, feeding it `stdin`.
pub async fn run_goclient(bin: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let mut child = tokio::process::Command::new(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn goclient");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    tokio::spawn(async move {
        let _ = input.write_all(&data).await;
    });
    let out = child.wait_with_output().await.expect("wait goclient");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A one-shot HTTP server answering every request with `body`; returns its port.
pub async fn http_server(body: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

/// Sends a bare HTTP/1.1 GET for `path` and returns the status code.
pub async fn http_status(addr: std::net::SocketAddr, path: &str, extra_headers: &str) -> u16 {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra_headers}Connection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    let mut buf = [0u8; 1024];
    while !resp.windows(2).any(|w| w == b"\r\n") {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "no HTTP response");
        resp.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&resp);
    line.split(' ').nth(1).unwrap().parse().unwrap()
}
