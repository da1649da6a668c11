//! Creating a container through the monitor (conmon's command-line and sync-pipe protocol).
//!
//! The monitor is started with the arguments CRI-O passes conmon 2.1, the write end of a socket
//! pair as fd 3 (`_OCI_SYNCPIPE=3`) and the read end of a pipe as fd 4 (`_OCI_STARTPIPE=4`). It
//! blocks until it reads a byte from the start pipe, forks (the first process exits after
//! writing `-P`), runs `<runtime> create` and writes one JSON line to the sync pipe:
//! `{"data": <pid>}` on success or `{"data": -1, "message": "<runtime stderr>"}` on failure.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;

use crate::error::{OciError, Result};
use crate::events::ProcessHandle;
use crate::runtime::{truncate, Runtime};

/// Longest sync-pipe line accepted (conmon sends at most a few KiB of escaped stderr).
const MAX_SYNC_LINE: u64 = 1 << 20;
/// Monitor stdout/stderr kept for error messages.
const MAX_MONITOR_OUTPUT: u64 = 64 << 10;
/// How long a failed create waits for leftovers to die before giving up on them.
const CLEANUP_WAIT: Duration = Duration::from_secs(10);

/// What [`Runtime::create`] needs to know about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    /// Container ID (validated).
    pub id: String,
    /// Container name for the monitor's logs (`-n`); defaults to the ID.
    pub name: Option<String>,
    /// Bundle directory with `config.json`; the monitor runs in it and puts `ctl`, `winsz`,
    /// `attach` there.
    pub bundle: PathBuf,
    /// CRI log file the monitor writes (`-l`).
    pub log_path: PathBuf,
    /// Whether the container has a terminal (`-t`).
    pub terminal: bool,
    /// Whether the container's stdin is kept open for attach (`-i`).
    pub stdin: bool,
    /// With `stdin`: close stdin after the first attach session ends (otherwise
    /// `--leave-stdin-open`).
    pub stdin_once: bool,
    /// Container pid file (`-p`); default `<bundle>/pidfile`.
    pub pidfile: Option<PathBuf>,
    /// Directory the monitor keeps per-container data in (`--persist-dir`: `exit`, `oom`;
    /// we put `conmon.pid` there). Created when missing (and removed again if create fails).
    pub persist_dir: PathBuf,
    /// `--log-size-max` in bytes (None: unlimited).
    pub log_size_max: Option<u64>,
}

impl CreateOptions {
    /// Options with no terminal, no stdin, default pid file and unlimited log size.
    pub fn new(
        id: impl Into<String>,
        bundle: impl Into<PathBuf>,
        log_path: impl Into<PathBuf>,
        persist_dir: impl Into<PathBuf>,
    ) -> Self {
        CreateOptions {
            id: id.into(),
            name: None,
            bundle: bundle.into(),
            log_path: log_path.into(),
            terminal: false,
            stdin: false,
            stdin_once: false,
            pidfile: None,
            persist_dir: persist_dir.into(),
            log_size_max: None,
        }
    }

    /// The container pid file: the given one or `<bundle>/pidfile`.
    pub fn pidfile_path(&self) -> PathBuf {
        self.pidfile
            .clone()
            .unwrap_or_else(|| self.bundle.join("pidfile"))
    }

    /// Where the monitor's first process writes the monitor's pid (`-P`).
    pub fn monitor_pidfile_path(&self) -> PathBuf {
        self.persist_dir.join("conmon.pid")
    }
}

/// A created container: its init pid and the monitor's pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedContainer {
    /// Pid of the container's init process (waiting for `start`).
    pub pid: i32,
    /// Pid of the monitor process (from its pid file), when it could be read.
    pub monitor_pid: Option<i32>,
}

/// The JSON line the monitor writes on the sync pipe (api-version 1 uses "data").
#[derive(Debug, Deserialize)]
struct SyncMessage {
    #[serde(alias = "pid")]
    data: i64,
    #[serde(default)]
    message: Option<String>,
}

/// Everything a create made, so that a failure (or a cancelled future) removes it.
#[derive(Debug)]
struct CreateCleanup {
    runtime: Runtime,
    id: String,
    bundle: PathBuf,
    pidfile: PathBuf,
    monitor_pidfile: PathBuf,
    persist_dir: PathBuf,
    made_persist_dir: bool,
    log_path: PathBuf,
    made_log: bool,
    /// pidfd on the process we spawned (cannot hit a reused pid).
    monitor_child: Option<Arc<ProcessHandle>>,
    armed: bool,
}

impl CreateCleanup {
    fn disarm(&mut self) {
        self.armed = false;
    }

    /// Kills the monitor, the runtime and the container, deletes the runtime state, removes
    /// every file the create made.
    async fn run(mut self) {
        self.armed = false;
        let wait = CLEANUP_WAIT;
        // The monitor first, so it cannot write anything after we cleaned. Its runtime child
        // dies with it (PDEATHSIG in conmon).
        if let Some(h) = &self.monitor_child {
            if let Err(e) = h.kill_and_wait(wait).await {
                tracing::warn!(id = %self.id, error = %e, "cleanup: cannot kill monitor");
            }
        }
        // The daemonized monitor: only a process whose command line names this container.
        if let Some(pid) = read_pid(&self.monitor_pidfile) {
            kill_verified(pid, wait, |p| cmdline_mentions(p, &self.id)).await;
        }
        // The container's init (the runtime's delete below handles it too, if it got as far
        // as recording state): only a process in another pid namespace than ours.
        if let Some(pid) = read_pid(&self.pidfile) {
            kill_verified(pid, wait, other_pid_namespace).await;
        }
        match self
            .runtime
            .run_checked(
                &self.id,
                "create cleanup",
                &["delete".into(), "--force".into(), self.id.clone().into()],
                None,
            )
            .await
        {
            Ok(_) | Err(OciError::NotFound { .. }) => {}
            Err(e) => tracing::warn!(id = %self.id, error = %e, "cleanup: runtime delete failed"),
        }
        let mut files = vec![
            self.pidfile.clone(),
            self.monitor_pidfile.clone(),
            self.bundle.join("ctl"),
            self.bundle.join("winsz"),
            self.bundle.join("attach"),
            self.bundle.join("oom"),
            self.persist_dir.join("exit"),
            self.persist_dir.join("oom"),
        ];
        if self.made_log {
            files.push(self.log_path.clone());
        }
        for f in files {
            remove_quietly(&f);
        }
        self.runtime.remove_leftovers(&self.id);
        if self.made_persist_dir {
            if let Err(e) = std::fs::remove_dir(&self.persist_dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(dir = %self.persist_dir.display(), error = %e, "cleanup: persist dir");
                }
            }
        }
    }
}

impl Drop for CreateCleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // The create future was dropped mid-way: clean up in the background.
        let me = CreateCleanup {
            runtime: self.runtime.clone(),
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            pidfile: self.pidfile.clone(),
            monitor_pidfile: self.monitor_pidfile.clone(),
            persist_dir: self.persist_dir.clone(),
            made_persist_dir: self.made_persist_dir,
            log_path: self.log_path.clone(),
            made_log: self.made_log,
            monitor_child: self.monitor_child.clone(),
            armed: false,
        };
        self.armed = false;
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(me.run());
            }
            Err(_) => {
                tracing::error!(id = %self.id, "create cancelled outside a runtime: leftovers remain")
            }
        }
    }
}

/// What the monitor's start needs, from [`Runtime::spawn_create`] to [`PendingCreate::start`].
#[derive(Debug)]
struct Spawned {
    start_write: std::os::fd::OwnedFd,
    sync_parent: std::os::fd::OwnedFd,
    out_task: tokio::task::JoinHandle<Vec<u8>>,
    err_task: tokio::task::JoinHandle<Vec<u8>>,
    child_task: tokio::task::JoinHandle<std::io::Result<std::process::ExitStatus>>,
    started: Instant,
}

/// A monitor started for a container and blocked on its start pipe
/// ([`Runtime::spawn_create`]), so that its start-up (exec, log file) overlaps the caller's
/// preparation of the bundle. [`PendingCreate::start`] lets it create the container; dropping
/// it instead kills the monitor at once and removes what the create made in the background.
#[derive(Debug)]
pub struct PendingCreate {
    runtime: Runtime,
    opts: CreateOptions,
    state: Option<(CreateCleanup, Spawned)>,
}

impl PendingCreate {
    /// Lets the monitor run `<runtime> create` (the bundle's `config.json` and rootfs must be
    /// in place now) and returns once it reported the container's pid. On any failure
    /// (runtime error, monitor failure, timeout after `MonitorConfig::create_timeout`)
    /// everything started is killed and every file the create made is removed; a cancelled
    /// call cleans up in the background.
    pub async fn start(mut self) -> Result<CreatedContainer> {
        let id = self.opts.id.clone();
        let Some((mut cleanup, spawned)) = self.state.take() else {
            return Err(OciError::InvalidArgument(format!(
                "container {id}: create: the monitor was already started"
            )));
        };
        let res = if self.opts.bundle.join("config.json").is_file() {
            self.runtime.start_monitor(&self.opts, spawned).await
        } else {
            Err(OciError::InvalidArgument(format!(
                "container {id}: create: no config.json in bundle {}",
                self.opts.bundle.display()
            )))
        };
        match res {
            Ok(created) => {
                cleanup.disarm();
                Ok(created)
            }
            Err(e) => {
                tracing::debug!(id, error = %e, "create failed: cleaning up");
                cleanup.run().await;
                Err(e)
            }
        }
    }
}

impl Drop for PendingCreate {
    fn drop(&mut self) {
        if let Some((cleanup, _)) = &self.state {
            // Before the start pipe closes: on end-of-file the monitor would go on and create.
            if let Some(h) = &cleanup.monitor_child {
                if let Err(e) = h.signal(crate::signal::Signal::KILL) {
                    tracing::warn!(id = %cleanup.id, error = %e, "kill unstarted monitor");
                }
            }
        }
        // The armed cleanup, dropped with the state, removes the rest in the background.
    }
}

impl Runtime {
    /// Creates the container through the monitor and returns once the monitor reported the
    /// container's pid: [`Runtime::spawn_create`] then [`PendingCreate::start`].
    pub async fn create(&self, opts: &CreateOptions) -> Result<CreatedContainer> {
        let id = opts.id.as_str();
        if !opts.bundle.join("config.json").is_file() {
            crate::id::validate_id(id)?;
            return Err(OciError::InvalidArgument(format!(
                "container {id}: create: no config.json in bundle {}",
                opts.bundle.display()
            )));
        }
        self.spawn_create(opts).await?.start().await
    }

    /// Starts the monitor of a new container, blocked on its start pipe until
    /// [`PendingCreate::start`]. The bundle directory (the monitor's working directory) and
    /// the log file's directory must exist; `config.json` and the rootfs may come later.
    pub async fn spawn_create(&self, opts: &CreateOptions) -> Result<PendingCreate> {
        let id = opts.id.as_str();
        crate::id::validate_id(id)?;
        if self.handler.root.join(id).exists() {
            return Err(OciError::FailedPrecondition {
                id: id.to_string(),
                step: "create",
                message: format!("{} already has a container with this id", self.handler.name),
            });
        }
        let made_persist_dir = !opts.persist_dir.exists();
        std::fs::create_dir_all(&opts.persist_dir).map_err(|e| {
            OciError::io(
                format!(
                    "container {id}: create persist dir {}",
                    opts.persist_dir.display()
                ),
                e,
            )
        })?;
        let mut cleanup = CreateCleanup {
            runtime: self.clone(),
            id: id.to_string(),
            bundle: opts.bundle.clone(),
            pidfile: opts.pidfile_path(),
            monitor_pidfile: opts.monitor_pidfile_path(),
            persist_dir: opts.persist_dir.clone(),
            made_persist_dir,
            log_path: opts.log_path.clone(),
            made_log: !opts.log_path.exists(),
            monitor_child: None,
            armed: true,
        };
        // A stale exit record of this ID would make the new container look exited.
        self.remove_leftovers(id);
        remove_quietly(&cleanup.pidfile);

        match self.spawn_monitor(opts, &mut cleanup) {
            Ok(spawned) => Ok(PendingCreate {
                runtime: self.clone(),
                opts: opts.clone(),
                state: Some((cleanup, spawned)),
            }),
            Err(e) => {
                tracing::debug!(id, error = %e, "create failed: cleaning up");
                cleanup.run().await;
                Err(e)
            }
        }
    }

    /// The monitor's command line (conmon 2.1 as CRI-O drives it).
    pub(crate) fn monitor_args(&self, opts: &CreateOptions) -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = Vec::new();
        let mut push = |k: &str, v: &std::ffi::OsStr| {
            a.push(k.into());
            a.push(v.to_os_string());
        };
        push("-c", opts.id.as_ref());
        push("-n", opts.name.as_deref().unwrap_or(&opts.id).as_ref());
        push("-u", opts.id.as_ref());
        push("-r", self.handler.runtime_path.as_os_str());
        push("-b", opts.bundle.as_os_str());
        push("-p", opts.pidfile_path().as_os_str());
        push("-P", opts.monitor_pidfile_path().as_os_str());
        push("-l", opts.log_path.as_os_str());
        if let Some(max) = opts.log_size_max {
            push("--log-size-max", max.to_string().as_ref());
        }
        push("--exit-dir", self.monitor.exit_dir.as_os_str());
        push("--persist-dir", opts.persist_dir.as_os_str());
        push("--socket-dir-path", self.monitor.socket_dir.as_os_str());
        let mut root = std::ffi::OsString::from("--root=");
        root.push(&self.handler.root);
        push("--runtime-arg", &root);
        for extra in &self.handler.runtime_args {
            push("--runtime-arg", extra.as_ref());
        }
        push("--log-level", self.monitor.log_level.as_ref());
        if opts.terminal {
            a.push("-t".into());
        }
        if opts.stdin {
            a.push("-i".into());
            if !opts.stdin_once {
                a.push("--leave-stdin-open".into());
            }
        }
        a.push("--api-version".into());
        a.push("1".into());
        a
    }

    /// Spawns the monitor with its pipes (it blocks on the start pipe).
    fn spawn_monitor(&self, opts: &CreateOptions, cleanup: &mut CreateCleanup) -> Result<Spawned> {
        let id = opts.id.as_str();
        let io_err = |what: &str, e: std::io::Error| {
            OciError::io(format!("container {id}: create: {what}"), e)
        };
        let started = Instant::now();

        // Sync socket pair (fd 3 in the monitor) and start pipe (fd 4), both close-on-exec
        // here; dup2 in the child clears the flag on 3 and 4 only.
        let (sync_parent, sync_child) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| io_err("sync socketpair", e.into()))?;
        let (start_read, start_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| io_err("start pipe", e.into()))?;
        // Move the child ends above 10 so that dup2 onto 3 and 4 cannot clobber them.
        let sync_child = rustix::io::fcntl_dupfd_cloexec(&sync_child, 10)
            .map_err(|e| io_err("dup sync fd", e.into()))?;
        let start_read = rustix::io::fcntl_dupfd_cloexec(&start_read, 10)
            .map_err(|e| io_err("dup start fd", e.into()))?;
        let (sync_raw, start_raw) = (sync_child.as_raw_fd(), start_read.as_raw_fd());

        let mut cmd = Command::new(&self.monitor.path);
        cmd.args(self.monitor_args(opts))
            .current_dir(&opts.bundle)
            .env("_OCI_SYNCPIPE", "3")
            .env("_OCI_STARTPIPE", "4")
            .envs(self.monitor.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: the closure only calls async-signal-safe functions (setpgid, dup2) on fds
        // that stay open in the parent until spawn returns.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::dup2(sync_raw, 3) < 0 || libc::dup2(start_raw, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| io_err(&format!("start monitor {}", self.monitor.path.display()), e))?;
        // A pidfd now, before the process can be reaped, so cleanup never signals a reused pid.
        cleanup.monitor_child = match child.id() {
            Some(pid) => ProcessHandle::open(pid as i32)
                .map_err(|e| io_err("pidfd on monitor", e))?
                .map(Arc::new),
            None => None,
        };
        drop(sync_child);
        drop(start_read);
        let out_task = capture(child.stdout.take());
        let err_task = capture(child.stderr.take());
        // The intermediate process exits right after forking; reap it in the background.
        let child_task = tokio::spawn(async move { child.wait().await });
        Ok(Spawned {
            start_write,
            sync_parent,
            out_task,
            err_task,
            child_task,
            started,
        })
    }

    /// Lets the spawned monitor go and waits for the container's pid on the sync pipe.
    async fn start_monitor(
        &self,
        opts: &CreateOptions,
        spawned: Spawned,
    ) -> Result<CreatedContainer> {
        let id = opts.id.as_str();
        let io_err = |what: &str, e: std::io::Error| {
            OciError::io(format!("container {id}: create: {what}"), e)
        };
        let timeout = self.monitor.create_timeout;
        let Spawned {
            start_write,
            sync_parent,
            out_task,
            err_task,
            child_task,
            started,
        } = spawned;

        // Let the monitor go (we do not move it into a cgroup first). One byte into a fresh
        // pipe never blocks: written here, not through tokio::fs's blocking-pool round trip.
        if let Err(e) = rustix::io::write(&start_write, &[0]) {
            return Err(self
                .monitor_failed(
                    id,
                    format!("write start pipe: {e}"),
                    out_task,
                    err_task,
                    child_task,
                )
                .await);
        }
        drop(start_write);

        let sync = std::os::unix::net::UnixStream::from(sync_parent);
        sync.set_nonblocking(true)
            .map_err(|e| io_err("sync pipe", e))?;
        let sync = tokio::net::UnixStream::from_std(sync).map_err(|e| io_err("sync pipe", e))?;
        let mut reader = BufReader::new(sync).take(MAX_SYNC_LINE);
        let mut line = String::new();
        let read = tokio::time::timeout(timeout, reader.read_line(&mut line)).await;
        let n = match read {
            Err(_) => {
                tracing::warn!(id, ?timeout, "monitor did not report a pid in time");
                return Err(OciError::TimedOut {
                    id: id.to_string(),
                    step: "create",
                    timeout,
                });
            }
            Ok(Err(e)) => return Err(io_err("read sync pipe", e)),
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            return Err(self
                .monitor_failed(
                    id,
                    "exited without reporting a pid".into(),
                    out_task,
                    err_task,
                    child_task,
                )
                .await);
        }
        let msg: SyncMessage = serde_json::from_str(line.trim()).map_err(|e| OciError::Parse {
            context: format!("container {id}: create: sync pipe line {:?}", line.trim()),
            message: e.to_string(),
        })?;
        if msg.data <= 0 {
            let mut stderr = msg
                .message
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| {
                    format!("{} create failed (code {})", self.handler.name, msg.data)
                });
            truncate(&mut stderr, 4096);
            return Err(OciError::Runtime {
                id: id.to_string(),
                step: "create",
                runtime: self.handler.name.clone(),
                stderr,
            });
        }
        let pid = i32::try_from(msg.data).map_err(|_| OciError::Parse {
            context: format!("container {id}: create: sync pipe"),
            message: format!("pid {} out of range", msg.data),
        })?;
        // The capture tasks end by themselves at EOF (the monitor points its stdio at
        // /dev/null once it daemonized); nobody awaits them.
        drop((out_task, err_task));
        let mut monitor_pid = read_pid(&opts.monitor_pidfile_path());
        if monitor_pid.is_none() {
            // The monitor's first process writes `-P` just before it exits: wait for that
            // exit (bounded: a monitor that does not fork is the process itself).
            let _ = tokio::time::timeout(Duration::from_secs(2), child_task).await;
            monitor_pid = read_pid(&opts.monitor_pidfile_path());
        }
        tracing::debug!(id, pid, ?monitor_pid, elapsed = ?started.elapsed(), "container created");
        Ok(CreatedContainer { pid, monitor_pid })
    }

    async fn monitor_failed(
        &self,
        id: &str,
        what: String,
        out_task: tokio::task::JoinHandle<Vec<u8>>,
        err_task: tokio::task::JoinHandle<Vec<u8>>,
        child_task: tokio::task::JoinHandle<std::io::Result<std::process::ExitStatus>>,
    ) -> OciError {
        // The monitor's output ends when its processes are gone; do not wait forever for it.
        let collect = async {
            let status = child_task.await.ok().and_then(|r| r.ok());
            let out = out_task.await.unwrap_or_default();
            let err = err_task.await.unwrap_or_default();
            (status, out, err)
        };
        let (status, out, err) = tokio::time::timeout(Duration::from_secs(5), collect)
            .await
            .unwrap_or((None, Vec::new(), Vec::new()));
        let mut text = String::from_utf8_lossy(&err).trim().to_string();
        let out = String::from_utf8_lossy(&out).trim().to_string();
        if !out.is_empty() {
            if !text.is_empty() {
                text.push_str("; ");
            }
            text.push_str(&out);
        }
        truncate(&mut text, 4096);
        let mut message = format!("{} {what}", self.monitor.path.display());
        if let Some(s) = status {
            message.push_str(&format!(" ({s})"));
        }
        if !text.is_empty() {
            message.push_str(": ");
            message.push_str(&text);
        }
        OciError::Monitor {
            id: id.to_string(),
            step: "create",
            message,
        }
    }
}

/// Reads a monitor output pipe in the background until EOF, keeping the first
/// [`MAX_MONITOR_OUTPUT`] bytes. It keeps draining (never closes the pipe early) so that a
/// monitor still writing to it cannot die of SIGPIPE.
fn capture<R: AsyncRead + Unpin + Send + 'static>(
    pipe: Option<R>,
) -> tokio::task::JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let mut kept = Vec::new();
        if let Some(mut p) = pipe {
            let mut chunk = [0u8; 8192];
            loop {
                match p.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let room = (MAX_MONITOR_OUTPUT as usize).saturating_sub(kept.len());
                        kept.extend_from_slice(&chunk[..n.min(room)]);
                    }
                }
            }
        }
        kept
    })
}

/// SIGKILLs `pid` through a pidfd if `check(pid)` holds once the pidfd is open (so the check
/// and the signal concern the same process), and waits for it to exit.
async fn kill_verified(pid: i32, wait: Duration, check: impl Fn(i32) -> bool) {
    match ProcessHandle::open(pid) {
        Ok(Some(h)) if check(pid) => {
            if let Err(e) = h.kill_and_wait(wait).await {
                tracing::warn!(pid, error = %e, "cleanup: cannot kill");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(pid, error = %e, "cleanup: pidfd_open"),
    }
}

/// Whether `/proc/<pid>/cmdline` contains `needle` as one of its arguments.
fn cmdline_mentions(pid: i32, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| c.split(|b| *b == 0).any(|arg| arg == needle.as_bytes()))
        .unwrap_or(false)
}

/// Whether `pid` lives in another pid namespace than we do (a container's init).
fn other_pid_namespace(pid: i32) -> bool {
    match (
        std::fs::read_link("/proc/self/ns/pid"),
        std::fs::read_link(format!("/proc/{pid}/ns/pid")),
    ) {
        (Ok(mine), Ok(theirs)) => mine != theirs,
        _ => false,
    }
}

/// Reads a decimal pid from a pid file; `None` when missing or not a positive number.
pub(crate) fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|p| *p > 0)
}

/// Removes a file, ignoring "not found"; warns about anything else.
pub(crate) fn remove_quietly(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_messages() {
        let m: SyncMessage = serde_json::from_str(r#"{"data": 1234}"#).unwrap();
        assert_eq!(m.data, 1234);
        let m: SyncMessage =
            serde_json::from_str(r#"{"data": -1, "message": "runc create failed: x\n"}"#).unwrap();
        assert_eq!(m.data, -1);
        assert!(m.message.unwrap().contains("runc create failed"));
        let m: SyncMessage = serde_json::from_str(r#"{"pid": 7}"#).unwrap();
        assert_eq!(m.data, 7);
    }
}
