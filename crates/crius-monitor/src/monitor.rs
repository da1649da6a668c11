//! The monitor's life: wait for the start pipe, detach, run the runtime, report the pid, relay
//! the container's stdio to the CRI log and attach clients, and record the exit.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::args::Config;
use crate::attach::Attach;
use crate::crilog::{CriLog, Stream};
use crate::ctl::{self, CtlMsg, Fifo};
use crate::oom::{self, OomWatch};
use crate::syncpipe::{self, SyncPipe};
use crate::sys;

/// conmon's message for an exec that ran past `--timeout`.
pub const TIMED_OUT_MESSAGE: &str = "command timed out";

/// Output is read in chunks of this size (conmon's STDIO_BUF_SIZE).
const CHUNK: usize = 8192;

/// An error before the container exists: reported to the caller and fatal.
pub struct Fatal(pub String);

impl<E: std::fmt::Display> From<(&str, E)> for Fatal {
    fn from((what, e): (&str, E)) -> Fatal {
        Fatal(format!("{what}: {e}"))
    }
}

fn write_file_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn set_oom_score_adj(v: &str) {
    let _ = std::fs::write("/proc/self/oom_score_adj", v);
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Filesystem entries to remove on the way out.
#[derive(Default)]
struct Cleanup {
    attach: Option<Attach>,
    fifos: Vec<Fifo>,
    console_path: Option<PathBuf>,
}

impl Cleanup {
    fn run(&mut self) {
        if let Some(a) = self.attach.as_mut() {
            a.shutdown();
        }
        for f in &self.fifos {
            f.remove();
        }
        if let Some(p) = self.console_path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Everything prepared before the runtime is started.
struct Stdio {
    stdin: Option<(OwnedFd, OwnedFd)>,
    stdout: Option<(OwnedFd, OwnedFd)>,
    stderr: (OwnedFd, OwnedFd),
    dev_null: OwnedFd,
}

/// Checks and opens what must work before detaching: the runtime, the parent pipes, the log.
#[allow(clippy::type_complexity)]
fn prepare(cfg: &Config) -> Result<(Option<OwnedFd>, Option<OwnedFd>, Option<CriLog>), Fatal> {
    if !is_executable(&cfg.runtime) {
        return Err(Fatal(format!(
            "Runtime path {} is not valid",
            cfg.runtime.display()
        )));
    }
    let start_pipe = syncpipe::fd_from_env("_OCI_STARTPIPE").map_err(Fatal)?;
    let attach_pipe = if cfg.exec_attach {
        match syncpipe::fd_from_env("_OCI_ATTACHPIPE").map_err(Fatal)? {
            Some(fd) => Some(fd),
            None => {
                return Err(Fatal(
                    "--exec-attach specified but _OCI_ATTACHPIPE was not".into(),
                ))
            }
        }
    } else {
        None
    };
    // Open the log before detaching so that a bad path reaches the caller.
    let log = match cfg.k8s_log_path() {
        Some(p) => Some(
            CriLog::open(
                p,
                cfg.log_size_max,
                cfg.log_global_size_max,
                !cfg.no_sync_log,
            )
            .map_err(|e| Fatal(format!("Failed to open log file {}: {e}", p.display())))?,
        ),
        None => None,
    };
    Ok((start_pipe, attach_pipe, log))
}

/// Runs the monitor; returns the process exit status.
pub fn run(cfg: &Config) -> Result<i32, Fatal> {
    set_oom_score_adj("-1000");
    sys::set_signal_disposition(libc::SIGPIPE, true);
    let sync_fd = syncpipe::fd_from_env("_OCI_SYNCPIPE").map_err(Fatal)?;
    let key = syncpipe::key(cfg.api_version, cfg.exec);
    let mut sync = SyncPipe::new(sync_fd, key);
    let (start_pipe, attach_pipe, mut log) = match prepare(cfg) {
        Ok(v) => v,
        Err(Fatal(msg)) => {
            // The caller also sees this on our stderr and in our exit status.
            sync.send(-1, Some(&msg));
            return Err(Fatal(msg));
        }
    };

    // Block until the caller has placed us (cgroup) and lets us go on.
    let mut start_pipe = start_pipe;
    if let Some(fd) = &start_pipe {
        let mut b = [0u8; 8192];
        sys::read(fd.as_raw_fd(), &mut b)
            .map_err(|e| Fatal(format!("start-pipe read failed: {e}")))?;
        if !cfg.exec_attach {
            start_pipe = None;
        }
    }

    let dev_null = sys::open(Path::new("/dev/null"), libc::O_RDWR)
        .map_err(|e| Fatal::from(("open /dev/null", e)))?;

    // Detach: the caller's child exits at once and the grandchild, in its own session, monitors.
    if !cfg.sync {
        match sys::fork().map_err(|e| Fatal::from(("fork", e)))? {
            sys::Fork::Parent(pid) => {
                if let Some(p) = &cfg.conmon_pidfile {
                    if let Err(e) = write_file_atomic(p, pid.to_string().as_bytes()) {
                        diag!(Error, "Failed to write conmon pidfile {}: {e}", p.display());
                        sys::exit_now(1);
                    }
                }
                sys::exit_now(0);
            }
            sys::Fork::Child => {}
        }
    } else if let Some(p) = &cfg.conmon_pidfile {
        write_file_atomic(p, std::process::id().to_string().as_bytes()).map_err(|e| {
            Fatal(format!(
                "Failed to write conmon pidfile {}: {e}",
                p.display()
            ))
        })?;
    }

    match monitor(
        cfg,
        &mut sync,
        log.as_mut(),
        start_pipe,
        attach_pipe,
        dev_null,
    ) {
        Ok(code) => {
            if let Some(l) = log {
                l.sync();
            }
            Ok(code)
        }
        Err(Fatal(msg)) => {
            diag!(Error, "{msg}");
            sync.send(-1, Some(&msg));
            if let Some(l) = log {
                l.remove_if_unused();
            }
            Ok(1)
        }
    }
}

fn make_stdio(cfg: &Config, dev_null: OwnedFd) -> Result<Stdio, Fatal> {
    let stdin = if cfg.stdin && !cfg.terminal {
        Some(sys::pipe().map_err(|e| Fatal::from(("create stdin pipe", e)))?)
    } else {
        None
    };
    let stdout = if cfg.terminal {
        None
    } else {
        Some(sys::pipe().map_err(|e| Fatal::from(("create stdout pipe", e)))?)
    };
    // Always a stderr pipe: it carries the runtime's own error messages.
    let stderr = sys::pipe().map_err(|e| Fatal::from(("create stderr pipe", e)))?;
    Ok(Stdio {
        stdin,
        stdout,
        stderr,
        dev_null,
    })
}

/// After detaching: everything up to the exit record. Fatal errors here are reported on the
/// sync pipe by the caller.
fn monitor(
    cfg: &Config,
    sync: &mut SyncPipe,
    mut log: Option<&mut CriLog>,
    start_pipe: Option<OwnedFd>,
    attach_pipe: Option<OwnedFd>,
    dev_null: OwnedFd,
) -> Result<i32, Fatal> {
    for fd in 0..3 {
        let _ = sys::dup2(dev_null.as_raw_fd(), fd);
    }
    // Fails harmlessly when already a session leader (--sync from a leader).
    let _ = sys::setsid();
    sys::set_child_subreaper().map_err(|e| Fatal::from(("Failed to set as subreaper", e)))?;

    let mut cleanup = Cleanup::default();
    let result = supervise(
        cfg,
        sync,
        &mut log,
        start_pipe,
        attach_pipe,
        dev_null,
        &mut cleanup,
    );
    cleanup.run();
    result
}

#[allow(clippy::too_many_arguments)]
fn supervise(
    cfg: &Config,
    sync: &mut SyncPipe,
    log: &mut Option<&mut CriLog>,
    start_pipe: Option<OwnedFd>,
    attach_pipe: Option<OwnedFd>,
    dev_null: OwnedFd,
    cleanup: &mut Cleanup,
) -> Result<i32, Fatal> {
    let stdio = make_stdio(cfg, dev_null)?;

    let console = if cfg.terminal {
        let path = std::env::temp_dir().join(format!(
            "crius-console-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        let l = UnixListener::bind(&path)
            .map_err(|e| Fatal(format!("bind console socket {}: {e}", path.display())))?;
        let _ = l.set_nonblocking(true);
        cleanup.console_path = Some(path);
        Some(l)
    } else {
        None
    };

    if let Some(bundle) = &cfg.bundle {
        let cuuid = cfg.cuuid.as_deref().unwrap_or(&cfg.cid);
        let a = Attach::setup(bundle, &cfg.socket_dir, cuuid, cfg.full_attach).map_err(|e| {
            Fatal(format!(
                "set up attach socket for {}: {e}",
                bundle.display()
            ))
        })?;
        cleanup.attach = Some(a);
        cleanup.fifos.push(
            Fifo::create(bundle, "ctl")
                .map_err(|e| Fatal(format!("create ctl fifo in {}: {e}", bundle.display())))?,
        );
        cleanup.fifos.push(
            Fifo::create(bundle, "winsz")
                .map_err(|e| Fatal(format!("create winsz fifo in {}: {e}", bundle.display())))?,
        );
        if attach_pipe.is_some() {
            let mut ap = SyncPipe::new(attach_pipe, syncpipe::key(cfg.api_version, cfg.exec));
            ap.send(0, None);
        }
    }

    let signals = [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGQUIT];
    let mask = sys::sigset(&signals);
    let old_mask =
        sys::set_sigmask(libc::SIG_BLOCK, &mask).map_err(|e| Fatal::from(("block signals", e)))?;
    let sigfd = sys::signalfd(&mask).map_err(|e| Fatal::from(("create signalfd", e)))?;

    let argv: Vec<CString> = cfg
        .runtime_argv(cleanup.console_path.as_deref())
        .into_iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| Fatal("runtime argument contains a NUL byte".into()))?;

    let runtime_pid =
        match sys::fork().map_err(|e| Fatal::from(("Failed to fork the runtime", e)))? {
            sys::Fork::Child => exec_runtime(cfg, &argv, &stdio, start_pipe.as_ref(), &old_mask),
            sys::Fork::Parent(pid) => pid,
        };
    drop(start_pipe);
    let Stdio {
        stdin,
        stdout,
        stderr,
        dev_null,
    } = stdio;
    drop(dev_null);
    let stdin_w = stdin.map(|(_r, w)| w);
    let mut out_r = stdout.map(|(r, _w)| r);
    let err_r = stderr.0;
    drop(stderr.1);

    // Phase 1: the runtime runs (and, with a terminal, hands us the pty master).
    let mut reaped: Vec<(libc::pid_t, libc::c_int)> = Vec::new();
    let mut master: Option<OwnedFd> = None;
    let mut console = console;
    let runtime_status = loop {
        let mut pfds = vec![libc::pollfd {
            fd: sigfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(l) = &console {
            pfds.push(libc::pollfd {
                fd: l.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        sys::poll(&mut pfds, -1).map_err(|e| Fatal::from(("poll", e)))?;
        if pfds.len() > 1 && pfds[1].revents != 0 {
            if let Some(m) = take_console(&mut console, cleanup) {
                master = Some(m);
            }
        }
        if let Some(s) = handle_signals(sigfd.as_raw_fd(), &mut reaped, runtime_pid) {
            break s;
        }
    };
    if master.is_none() && console.is_some() {
        master = take_console(&mut console, cleanup);
    }
    drop(console);
    if let Some(p) = cleanup.console_path.take() {
        let _ = std::fs::remove_file(p);
    }

    let verb = if cfg.exec {
        "exec"
    } else if cfg.restore.is_some() {
        "restore"
    } else {
        "create"
    };
    if !(libc::WIFEXITED(runtime_status) && libc::WEXITSTATUS(runtime_status) == 0) {
        let _ = sys::set_nonblocking(err_r.as_raw_fd(), true);
        let mut b = vec![0u8; CHUNK];
        let n = sys::read(err_r.as_raw_fd(), &mut b).unwrap_or(0);
        let text = String::from_utf8_lossy(&b[..n]).trim().to_string();
        let msg = if text.is_empty() {
            format!(
                "{} {verb} failed: exit status {}",
                cfg.runtime.display(),
                sys::exit_code(runtime_status)
            )
        } else {
            text
        };
        reap_all();
        return Err(Fatal(msg));
    }
    if cfg.terminal && master.is_none() {
        return Err(Fatal("Runtime did not set up terminal".into()));
    }

    let pid: libc::pid_t = std::fs::read_to_string(&cfg.container_pidfile)
        .map_err(|e| {
            Fatal(format!(
                "Failed to read pidfile {}: {e}",
                cfg.container_pidfile.display()
            ))
        })?
        .trim()
        .parse()
        .map_err(|_| {
            Fatal(format!(
                "invalid pid in {}",
                cfg.container_pidfile.display()
            ))
        })?;
    diag!(Debug, "container PID: {pid}");
    if cfg.api_version >= 1 || !cfg.exec {
        sync.send(i64::from(pid), None);
    }
    if !cfg.exec {
        sync.close();
    }

    let mut oom_watch = OomWatch::setup(pid);
    let mut status = reaped.iter().find(|(p, _)| *p == pid).map(|(_, s)| *s);

    // Output sources: the pty master stands for stdout in terminal mode.
    let stdin_target: Option<OwnedFd> = match &master {
        Some(m) => sys::dup(m.as_raw_fd()).ok(),
        None => stdin_w,
    };
    if let Some(fd) = &stdin_target {
        let _ = sys::set_nonblocking(fd.as_raw_fd(), true);
    }
    if let Some(m) = master.take() {
        out_r = Some(m);
    }
    let mut err_r = Some(err_r);
    for fd in [&out_r, &err_r].into_iter().flatten() {
        let _ = sys::set_nonblocking(fd.as_raw_fd(), true);
    }

    let mut io = Io {
        cfg,
        log: log.as_deref_mut(),
        attach: cleanup.attach.as_mut(),
        stdin: stdin_target,
        pending: Vec::new(),
        close_stdin: false,
        term_size: None,
        buf: vec![0u8; CHUNK],
    };
    let fifos = &mut cleanup.fifos;
    let (ctl_fd, winsz_fd) = match fifos.as_slice() {
        [c, w] => (Some(c.fd()), Some(w.fd())),
        _ => (None, None),
    };
    let deadline =
        (cfg.timeout > 0).then(|| Instant::now() + Duration::from_secs(u64::from(cfg.timeout)));
    let mut timed_out = false;
    let mut oom_written = false;

    // Phase 2: the container runs.
    while status.is_none() {
        let mut pfds: Vec<libc::pollfd> = Vec::with_capacity(12);
        let mut push = |fd: RawFd, events: libc::c_short| {
            pfds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            });
            pfds.len() - 1
        };
        let i_sig = push(sigfd.as_raw_fd(), libc::POLLIN);
        let i_out = out_r.as_ref().map(|f| push(f.as_raw_fd(), libc::POLLIN));
        let i_err = err_r.as_ref().map(|f| push(f.as_raw_fd(), libc::POLLIN));
        let i_listen = io
            .attach
            .as_ref()
            .map(|a| push(a.listener_fd(), libc::POLLIN));
        let mut i_clients = Vec::new();
        if let Some(a) = io.attach.as_ref() {
            for c in &a.clients {
                let want_in = c.readable && io.pending.is_empty();
                let fd = c.fd.as_raw_fd();
                i_clients.push((fd, push(fd, if want_in { libc::POLLIN } else { 0 })));
            }
        }
        let i_stdin = match (&io.stdin, io.pending.is_empty()) {
            (Some(fd), false) => Some(push(fd.as_raw_fd(), libc::POLLOUT)),
            _ => None,
        };
        let i_ctl = ctl_fd.map(|fd| push(fd, libc::POLLIN));
        let i_winsz = winsz_fd.map(|fd| push(fd, libc::POLLIN));
        let i_oom = oom_watch.as_ref().map(|w| {
            let (fd, ev) = w.poll_spec();
            push(fd, ev)
        });
        let timeout_ms = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                i32::try_from(left.as_millis().saturating_add(1)).unwrap_or(i32::MAX)
            }
            None => -1,
        };
        sys::poll(&mut pfds, timeout_ms).map_err(|e| Fatal::from(("poll", e)))?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            timed_out = true;
            break;
        }
        let ready = |i: Option<usize>| i.map(|i| pfds[i].revents).unwrap_or(0);

        if pfds[i_sig].revents != 0 {
            let mut forward = Vec::new();
            loop {
                match sys::read_signal(sigfd.as_raw_fd()) {
                    Ok(Some(s)) if s as i32 == libc::SIGCHLD => reap_into(&mut reaped),
                    Ok(Some(s)) => forward.push(s as i32),
                    _ => break,
                }
            }
            for s in forward {
                diag!(Info, "forwarding signal {s} to container {pid}");
                let _ = sys::kill(pid, s);
            }
            status = reaped.iter().find(|(p, _)| *p == pid).map(|(_, s)| *s);
            reaped.retain(|(p, _)| *p != pid);
        }
        // Accept before relaying output: a client that connected first sees all of it.
        if ready(i_listen) != 0 {
            if let Some(a) = io.attach.as_mut() {
                a.accept_all();
            }
        }
        if ready(i_out) != 0 && !io.pump(&mut out_r, Stream::Stdout) {
            out_r = None;
        }
        if ready(i_err) != 0 && !io.pump(&mut err_r, Stream::Stderr) {
            err_r = None;
        }
        // Clients are looked up by descriptor: relaying output may have dropped some.
        for &(fd, i) in &i_clients {
            let rev = pfds[i].revents;
            if rev != 0 {
                io.client_ready(fd, rev);
            }
        }
        if ready(i_stdin) != 0 {
            io.flush_stdin();
        }
        if ready(i_ctl) != 0 {
            for line in fifos[0].read_lines() {
                match ctl::parse_ctl(&line) {
                    Some(CtlMsg::Resize(h, w)) => io.resize(h, w, out_r.as_ref()),
                    Some(CtlMsg::ReopenLog) => io.reopen_log(),
                    None => diag!(Warn, "invalid control message {line:?}"),
                }
            }
        }
        if ready(i_winsz) != 0 {
            for line in fifos[1].read_lines() {
                match ctl::parse_winsz(&line) {
                    Some((h, w)) => io.resize(h, w, out_r.as_ref()),
                    None => diag!(Warn, "invalid window size {line:?}"),
                }
            }
        }
        if ready(i_oom) != 0 {
            if let Some(w) = oom_watch.as_mut() {
                match w.on_ready() {
                    Ok(true) => {
                        diag!(Info, "OOM kill in container {}", cfg.cid);
                        oom::write_oom_files(cfg.bundle.as_deref(), cfg.persist_dir.as_deref());
                        oom_written = true;
                    }
                    Ok(false) => {}
                    Err(()) => oom_watch = None,
                }
            }
        }
    }

    if timed_out {
        let pgid = sys::getpgid(pid).unwrap_or(0);
        let _ = if pgid > 1 {
            sys::kill(-pgid, libc::SIGKILL)
        } else {
            sys::kill(pid, libc::SIGKILL)
        };
        wait_for(sigfd.as_raw_fd(), pid, &mut reaped, Duration::from_secs(10));
    }

    // Drain what the container wrote before it exited.
    io.drain(&mut out_r, Stream::Stdout);
    io.drain(&mut err_r, Stream::Stderr);
    drop(out_r);
    drop(err_r);

    if let Some(w) = oom_watch.as_mut() {
        if w.final_check() && !oom_written {
            oom::write_oom_files(cfg.bundle.as_deref(), cfg.persist_dir.as_deref());
        }
    }
    if let Some(l) = io.log.as_deref() {
        l.sync();
    }
    if let Some(a) = io.attach.as_mut() {
        a.shutdown();
    }

    let exit_status = match (timed_out, status) {
        (false, Some(s)) => sys::exit_code(s),
        _ => -1,
    };
    let text = exit_status.to_string();
    if let Some(dir) = &cfg.persist_dir {
        let p = dir.join("exit");
        if let Err(e) = write_file_atomic(&p, text.as_bytes()) {
            diag!(
                Error,
                "Failed to write {text} to container exit file {}: {e}",
                p.display()
            );
        }
    }
    if let Some(dir) = &cfg.exit_dir {
        let _ = std::fs::create_dir_all(dir);
        let p = dir.join(&cfg.cid);
        if let Err(e) = write_file_atomic(&p, text.as_bytes()) {
            diag!(
                Error,
                "Failed to write {text} to exit file {}: {e}",
                p.display()
            );
        }
    }
    if cfg.exec {
        sync.send(
            i64::from(exit_status),
            timed_out.then_some(TIMED_OUT_MESSAGE),
        );
    }
    sync.close();
    reap_all();
    if let Some(cmd) = &cfg.exit_command {
        run_exit_command(cmd, &cfg.exit_command_args, cfg.exit_delay, &old_mask);
    }
    Ok(exit_status)
}

/// The I/O state of phase 2.
struct Io<'a> {
    cfg: &'a Config,
    log: Option<&'a mut CriLog>,
    attach: Option<&'a mut Attach>,
    stdin: Option<OwnedFd>,
    pending: Vec<u8>,
    close_stdin: bool,
    term_size: Option<(u16, u16)>,
    buf: Vec<u8>,
}

impl Io<'_> {
    /// Reads one chunk from `src`; false at end of stream.
    fn pump(&mut self, src: &mut Option<OwnedFd>, stream: Stream) -> bool {
        let Some(fd) = src.as_ref() else { return false };
        match sys::read(fd.as_raw_fd(), &mut self.buf) {
            Ok(0) => false,
            Ok(n) => {
                let data = &self.buf[..n];
                if let Some(l) = self.log.as_deref_mut() {
                    l.write(stream, data);
                }
                if let Some(a) = self.attach.as_deref_mut() {
                    a.broadcast(stream, data);
                }
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
            // EIO: the pty has no slave open any more.
            Err(_) => false,
        }
    }

    /// Reads everything already buffered in `src` (bounded, in case a stray writer remains).
    fn drain(&mut self, src: &mut Option<OwnedFd>, stream: Stream) {
        let mut budget: usize = 64 << 20;
        while src.is_some() && budget > 0 {
            let Some(fd) = src.as_ref() else { break };
            match sys::read(fd.as_raw_fd(), &mut self.buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    let data = &self.buf[..n];
                    if let Some(l) = self.log.as_deref_mut() {
                        l.write(stream, data);
                    }
                    if let Some(a) = self.attach.as_deref_mut() {
                        a.broadcast(stream, data);
                    }
                }
            }
        }
    }

    fn client_ready(&mut self, fd: RawFd, revents: libc::c_short) {
        let Some(a) = self.attach.as_deref_mut() else {
            return;
        };
        let Some(k) = a.clients.iter().position(|c| c.fd.as_raw_fd() == fd) else {
            return;
        };
        let c = &mut a.clients[k];
        if revents & libc::POLLIN != 0 {
            let mut b = vec![0u8; 32768];
            match sys::recv_nowait(fd, &mut b) {
                Ok(0) => {
                    c.readable = false;
                    sys::shutdown(c.fd.as_raw_fd(), libc::SHUT_RD);
                    if self.cfg.stdin && !self.cfg.leave_stdin_open && !self.cfg.terminal {
                        self.close_stdin = true;
                    }
                }
                Ok(n) => {
                    if self.stdin.is_some() {
                        self.pending.extend_from_slice(&b[..n]);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    a.clients.remove(k);
                    return;
                }
            }
        } else if revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            a.clients.remove(k);
            return;
        }
        self.flush_stdin();
    }

    fn flush_stdin(&mut self) {
        if let Some(fd) = &self.stdin {
            while !self.pending.is_empty() {
                match sys::write(fd.as_raw_fd(), &self.pending) {
                    Ok(n) => {
                        self.pending.drain(..n);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        diag!(Warn, "write container stdin: {e}");
                        self.pending.clear();
                        self.stdin = None;
                        break;
                    }
                }
            }
        } else {
            self.pending.clear();
        }
        if self.close_stdin && self.pending.is_empty() {
            self.stdin = None;
        }
    }

    fn resize(&mut self, rows: u16, cols: u16, master: Option<&OwnedFd>) {
        self.term_size = Some((rows, cols));
        if !self.cfg.terminal {
            return;
        }
        if let Some(m) = master {
            if let Err(e) = sys::tty_resize(m.as_raw_fd(), rows, cols) {
                diag!(Warn, "Failed to set process pty terminal size: {e}");
            }
        }
    }

    fn reopen_log(&mut self) {
        if let Some(l) = self.log.as_deref_mut() {
            if let Err(e) = l.truncate_reopen() {
                diag!(Error, "reopen log: {e}");
            }
        }
    }
}

/// Accepts the runtime's console-socket connection and receives the pty master.
fn take_console(console: &mut Option<UnixListener>, cleanup: &mut Cleanup) -> Option<OwnedFd> {
    let l = console.as_ref()?;
    let (conn, _) = l.accept().ok()?;
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    *console = None;
    if let Some(p) = cleanup.console_path.take() {
        let _ = std::fs::remove_file(p);
    }
    match sys::recv_fd(conn.as_raw_fd()) {
        Ok(fd) => {
            if let Err(e) = sys::tty_set_onlcr(fd.as_raw_fd()) {
                diag!(Warn, "Failed to set console terminal settings: {e}");
            }
            Some(fd)
        }
        Err(e) => {
            diag!(Error, "Failed to receive console file descriptor: {e}");
            None
        }
    }
}

/// Reaps every exited child into `reaped`.
fn reap_into(reaped: &mut Vec<(libc::pid_t, libc::c_int)>) {
    while let Ok(Some((p, s))) = sys::waitpid_nohang() {
        reaped.push((p, s));
        // Keep the list small: only the latest entries can matter.
        if reaped.len() > 64 {
            reaped.remove(0);
        }
    }
}

/// Drains the signalfd; returns the runtime's wait status once it has exited.
fn handle_signals(
    sigfd: RawFd,
    reaped: &mut Vec<(libc::pid_t, libc::c_int)>,
    runtime: libc::pid_t,
) -> Option<libc::c_int> {
    loop {
        match sys::read_signal(sigfd) {
            Ok(Some(s)) if s as i32 == libc::SIGCHLD => reap_into(reaped),
            Ok(Some(s)) => {
                let _ = sys::kill(runtime, s as i32);
            }
            _ => break,
        }
    }
    // A SIGCHLD may have been coalesced; reap once more.
    reap_into(reaped);
    let i = reaped.iter().position(|(p, _)| *p == runtime)?;
    Some(reaped.remove(i).1)
}

/// Waits (bounded) until `pid` has been reaped.
fn wait_for(
    sigfd: RawFd,
    pid: libc::pid_t,
    reaped: &mut Vec<(libc::pid_t, libc::c_int)>,
    limit: Duration,
) {
    let end = Instant::now() + limit;
    loop {
        reap_into(reaped);
        if reaped.iter().any(|(p, _)| *p == pid) {
            return;
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let mut pfd = [libc::pollfd {
            fd: sigfd,
            events: libc::POLLIN,
            revents: 0,
        }];
        let _ = sys::poll(
            &mut pfd,
            i32::try_from(left.as_millis()).unwrap_or(i32::MAX),
        );
        while let Ok(Some(_)) = sys::read_signal(sigfd) {}
    }
}

/// Reaps whatever has already exited.
fn reap_all() {
    while let Ok(Some(_)) = sys::waitpid_nohang() {}
}

/// The runtime child: wire stdio, wait for the exec-attach go-ahead, exec the runtime.
fn exec_runtime(
    cfg: &Config,
    argv: &[CString],
    stdio: &Stdio,
    start_pipe: Option<&OwnedFd>,
    old_mask: &libc::sigset_t,
) -> ! {
    let fail = |what: &str, e: std::io::Error| -> ! {
        let msg = format!("crius-monitor: {what}: {e}\n");
        let _ = sys::write_all(2, msg.as_bytes());
        sys::exit_now(127)
    };
    if let Err(e) = sys::set_pdeathsig(libc::SIGKILL) {
        fail("Failed to set PDEATHSIG", e);
    }
    let _ = sys::set_sigmask(libc::SIG_SETMASK, old_mask);
    sys::set_signal_disposition(libc::SIGPIPE, false);
    let null = stdio.dev_null.as_raw_fd();
    let stdin = stdio.stdin.as_ref().map_or(null, |(r, _)| r.as_raw_fd());
    let stdout = stdio.stdout.as_ref().map_or(null, |(_, w)| w.as_raw_fd());
    let stderr = stdio.stderr.1.as_raw_fd();
    for (src, dst) in [(stdin, 0), (stdout, 1), (stderr, 2)] {
        if let Err(e) = sys::dup2(src, dst) {
            fail("Failed to dup over stdio", e);
        }
    }
    if let Some(fd) = start_pipe {
        let mut b = [0u8; 8192];
        if let Err(e) = sys::read(fd.as_raw_fd(), &mut b) {
            fail("start-pipe read failed", e);
        }
    }
    set_oom_score_adj("0");
    sys::close_from(3);
    let ppid = std::os::unix::process::parent_id();
    let me = std::process::id();
    let env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| {
            !matches!(
                k.to_str(),
                Some("_OCI_SYNCPIPE" | "_OCI_STARTPIPE" | "_OCI_ATTACHPIPE")
            )
        })
        .map(|(k, v)| {
            let v: OsString = if k == "LISTEN_PID"
                && (cfg.replace_listen_pid || v.to_str() == Some(&ppid.to_string()))
            {
                me.to_string().into()
            } else {
                v
            };
            let mut kv = k.into_vec_bytes();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv)
        })
        .filter_map(Result::ok)
        .collect();
    let e = sys::execve(argv, &env);
    fail(&format!("exec {}", cfg.runtime.display()), e)
}

trait IntoVecBytes {
    fn into_vec_bytes(self) -> Vec<u8>;
}

impl IntoVecBytes for OsString {
    fn into_vec_bytes(self) -> Vec<u8> {
        use std::os::unix::ffi::OsStringExt;
        self.into_vec()
    }
}

/// Runs `--exit-command` after `--exit-delay` seconds and waits for it.
fn run_exit_command(cmd: &Path, args: &[OsString], delay: u32, old_mask: &libc::sigset_t) {
    if delay > 0 {
        std::thread::sleep(Duration::from_secs(u64::from(delay)));
    }
    let mut c = std::process::Command::new(cmd);
    c.args(args);
    let _ = sys::set_sigmask(libc::SIG_SETMASK, old_mask);
    match c.status() {
        Ok(s) if !s.success() => diag!(Warn, "exit command {} failed: {s}", cmd.display()),
        Ok(_) => {}
        Err(e) => diag!(Warn, "run exit command {}: {e}", cmd.display()),
    }
}
