//! `Runtime`: one runtime handler (runc or crun) plus the monitor that keeps its containers.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::config::{MonitorConfig, MonitorKind, RuntimeHandler};
use crate::error::{OciError, Result};
use crate::id::validate_id;
use crate::signal::Signal;
use crate::state::{read_exit_record, ContainerState, ContainerStatus, ExitRecord, RuntimeState};
use crate::version::{parse_version, RuntimeVersion};

/// Longest runtime error text kept in an error (the rest is cut).
const MAX_STDERR: usize = 4096;

/// An OCI runtime handler (runc, crun) whose containers run under a conmon-protocol monitor.
///
/// The type is stateless: every method takes the container ID and derives paths from the
/// configuration, so a restarted daemon can pick up containers created by its predecessor.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub(crate) handler: RuntimeHandler,
    pub(crate) monitor: MonitorConfig,
}

impl Runtime {
    /// Checks that both binaries exist and are executable, and creates the root, exit and
    /// socket directories. Fails with [`OciError::BinaryMissing`] naming the missing path.
    pub fn new(handler: RuntimeHandler, monitor: MonitorConfig) -> Result<Self> {
        check_executable("runtime", &handler.runtime_path)?;
        check_executable("monitor", &monitor.path)?;
        for dir in [&handler.root, &monitor.exit_dir, &monitor.socket_dir] {
            std::fs::create_dir_all(dir)
                .map_err(|e| OciError::io(format!("create directory {}", dir.display()), e))?;
        }
        Ok(Runtime { handler, monitor })
    }

    /// The handler configuration.
    pub fn handler(&self) -> &RuntimeHandler {
        &self.handler
    }

    /// The monitor configuration.
    pub fn monitor(&self) -> &MonitorConfig {
        &self.monitor
    }

    /// Which monitor implementation is configured.
    pub fn monitor_kind(&self) -> MonitorKind {
        self.monitor.kind()
    }

    /// Where the monitor writes `id`'s exit code.
    pub fn exit_file(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        Ok(self.monitor.exit_dir.join(id))
    }

    /// The attach socket of `id`: `<socket-dir>/<id>/attach` (a symlink to the bundle).
    pub fn attach_socket_path(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        Ok(self.monitor.socket_dir.join(id).join("attach"))
    }

    /// Runs `<runtime> --version` and parses it (never panics on odd output).
    pub async fn version(&self) -> Result<RuntimeVersion> {
        let out = self
            .run("", "version", &["--version".into()], None, false)
            .await?;
        Ok(parse_version(&String::from_utf8_lossy(&out.stdout)))
    }

    /// `<runtime> start <id>`: runs the user process of a created container.
    pub async fn start(&self, id: &str) -> Result<()> {
        validate_id(id)?;
        self.run_checked(id, "start", &["start".into(), id.into()], None)
            .await
            .map(drop)
    }

    /// `<runtime> kill <id> <signal>`: signals the container's init process.
    pub async fn kill(&self, id: &str, signal: Signal) -> Result<()> {
        validate_id(id)?;
        self.run_checked(
            id,
            "kill",
            &["kill".into(), id.into(), signal.as_raw().to_string().into()],
            None,
        )
        .await
        .map(drop)
    }

    /// `<runtime> pause <id>` (cgroup freezer).
    pub async fn pause(&self, id: &str) -> Result<()> {
        validate_id(id)?;
        self.run_checked(id, "pause", &["pause".into(), id.into()], None)
            .await
            .map(drop)
    }

    /// `<runtime> resume <id>`.
    pub async fn resume(&self, id: &str) -> Result<()> {
        validate_id(id)?;
        self.run_checked(id, "resume", &["resume".into(), id.into()], None)
            .await
            .map(drop)
    }

    /// `<runtime> update -r - <id>` with `resources` as JSON on stdin.
    pub async fn update(
        &self,
        id: &str,
        resources: &oci_spec::runtime::LinuxResources,
    ) -> Result<()> {
        validate_id(id)?;
        let json = serde_json::to_vec(resources).map_err(|e| {
            OciError::InvalidArgument(format!(
                "container {id}: update: resources do not serialize: {e}"
            ))
        })?;
        self.run_checked(
            id,
            "update",
            &["update".into(), "-r".into(), "-".into(), id.into()],
            Some(&json),
        )
        .await
        .map(drop)
    }

    /// `<runtime> state <id>`, parsed. [`OciError::NotFound`] when the runtime does not know it.
    pub async fn state(&self, id: &str) -> Result<RuntimeState> {
        validate_id(id)?;
        let out = self
            .run_checked(id, "state", &["state".into(), id.into()], None)
            .await?;
        serde_json::from_slice(&out.stdout).map_err(|e| OciError::Parse {
            context: format!("container {id}: {} state", self.handler.name),
            message: e.to_string(),
        })
    }

    /// The exit record the monitor wrote for `id` (`None` while it has not exited). Pass the
    /// container's persist directory to learn about OOM kills.
    pub fn exit_record(&self, id: &str, persist_dir: Option<&Path>) -> Result<Option<ExitRecord>> {
        read_exit_record(&self.monitor.exit_dir, id, persist_dir)
    }

    /// State derived from the runtime's state and the exit record: a container the runtime no
    /// longer knows but whose exit was recorded is `Stopped`; with neither, `NotFound`.
    pub async fn status(&self, id: &str, persist_dir: Option<&Path>) -> Result<ContainerStatus> {
        let runtime = match self.state(id).await {
            Ok(s) => Some(s),
            Err(OciError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let exit = self.exit_record(id, persist_dir)?;
        let state = match (&runtime, &exit) {
            (Some(s), None) => ContainerState::from_runtime_status(&s.status),
            (_, Some(_)) => ContainerState::Stopped,
            (None, None) => return Err(OciError::NotFound { id: id.to_string() }),
        };
        let pid = runtime
            .as_ref()
            .filter(|s| s.pid > 0 && state != ContainerState::Stopped)
            .map(|s| s.pid);
        Ok(ContainerStatus {
            state,
            pid,
            runtime,
            exit,
        })
    }

    /// Kills whatever still runs and removes the runtime's state for `id`, plus the exit file
    /// and the attach-socket symlink. Idempotent: a container the runtime does not know is
    /// success. Read the exit record before calling this.
    pub async fn delete(&self, id: &str) -> Result<()> {
        validate_id(id)?;
        // With the monitor's exit record the init process is gone: the runtime can only say
        // "stopped", so skip asking it (one runtime process less per removal).
        let exited = matches!(self.exit_record(id, None), Ok(Some(_)));
        let state = if exited {
            Ok(None)
        } else {
            self.state(id).await.map(Some)
        };
        match state {
            Ok(Some(s))
                if ContainerState::from_runtime_status(&s.status) != ContainerState::Stopped =>
            {
                // Kill and wait for the exit (and the monitor's record) so that no exit file
                // appears after we removed it.
                self.stop(id, Duration::ZERO, Some(Signal::KILL)).await?;
            }
            Ok(_) => {}
            Err(OciError::NotFound { .. }) => {
                self.remove_leftovers(id);
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        match self
            .run_checked(
                id,
                "delete",
                &["delete".into(), "--force".into(), id.into()],
                None,
            )
            .await
        {
            Ok(_) | Err(OciError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        self.remove_leftovers(id);
        Ok(())
    }

    /// Removes the exit file and attach symlink of `id` (both named by the validated ID).
    pub(crate) fn remove_leftovers(&self, id: &str) {
        for p in [
            self.monitor.exit_dir.join(id),
            self.monitor.socket_dir.join(id),
        ] {
            if let Err(e) = std::fs::remove_file(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %p.display(), error = %e, "cannot remove leftover");
                }
            }
        }
    }

    /// The runtime command line prefix: binary, `--root`, extra args.
    pub(crate) fn runtime_command(&self) -> Command {
        let mut cmd = Command::new(&self.handler.runtime_path);
        cmd.arg("--root").arg(&self.handler.root);
        cmd.args(&self.handler.runtime_args);
        cmd
    }

    /// Runs the runtime and maps a failure to [`OciError::Runtime`] / [`OciError::NotFound`].
    pub(crate) async fn run_checked(
        &self,
        id: &str,
        step: &'static str,
        args: &[OsString],
        stdin: Option<&[u8]>,
    ) -> Result<Output> {
        let out = self.run(id, step, args, stdin, true).await?;
        if out.status.success() {
            return Ok(out);
        }
        let stderr = runtime_error_text(&out);
        if is_not_found_text(&stderr) {
            return Err(OciError::NotFound { id: id.to_string() });
        }
        Err(OciError::Runtime {
            id: id.to_string(),
            step,
            runtime: self.handler.name.clone(),
            stderr,
        })
    }

    /// Runs the runtime (with `--root` when `with_root`) under the command timeout.
    pub(crate) async fn run(
        &self,
        id: &str,
        step: &'static str,
        args: &[OsString],
        stdin: Option<&[u8]>,
        with_root: bool,
    ) -> Result<Output> {
        let mut cmd = if with_root {
            self.runtime_command()
        } else {
            Command::new(&self.handler.runtime_path)
        };
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let ctx = || {
            format!(
                "container {id}: {step}: run {}",
                self.handler.runtime_path.display()
            )
        };
        let mut child = cmd.spawn().map_err(|e| OciError::io(ctx(), e))?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(data)
                .await
                .map_err(|e| OciError::io(ctx(), e))?;
            drop(pipe);
        }
        match tokio::time::timeout(self.handler.command_timeout, child.wait_with_output()).await {
            Ok(r) => r.map_err(|e| OciError::io(ctx(), e)),
            Err(_) => Err(OciError::TimedOut {
                id: id.to_string(),
                step,
                timeout: self.handler.command_timeout,
            }),
        }
    }
}

/// The runtime's error text: stderr (or stdout when stderr is empty), trimmed and bounded.
pub(crate) fn runtime_error_text(out: &Output) -> String {
    let raw = if out.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        &out.stderr
    } else {
        &out.stdout
    };
    let text = String::from_utf8_lossy(raw);
    let mut text = text.trim().to_string();
    if text.is_empty() {
        text = format!("exited with {}", out.status);
    }
    truncate(&mut text, MAX_STDERR);
    text
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
}

/// Whether a runtime error says the container does not exist (runc: "container does not
/// exist"; crun: "error opening file `/run/crun/<id>/status`: No such file or directory").
pub(crate) fn is_not_found_text(stderr: &str) -> bool {
    stderr.contains("does not exist")
        || (stderr.contains("No such file or directory") && stderr.contains("status"))
        || stderr.contains("container not found")
}

fn check_executable(what: &'static str, path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|source| OciError::BinaryMissing {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(OciError::BinaryMissing {
            what,
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "not an executable file",
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let h = RuntimeHandler::new("runc", "/nonexistent/runc", dir.path().join("root"));
        let m = MonitorConfig::new("/usr/bin/true", dir.path().join("e"), dir.path().join("s"));
        let err = Runtime::new(h, m).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/runc"), "{err}");
        assert_eq!(err.code(), crate::ErrorCode::FailedPrecondition);
        let h = RuntimeHandler::new("runc", "/usr/bin/true", dir.path().join("root"));
        let m = MonitorConfig::new(
            "/nonexistent/conmon",
            dir.path().join("e"),
            dir.path().join("s"),
        );
        let err = Runtime::new(h, m).unwrap_err();
        assert!(
            err.to_string()
                .contains("monitor binary /nonexistent/conmon"),
            "{err}"
        );
    }

    #[test]
    fn not_found_texts() {
        assert!(is_not_found_text("container does not exist"));
        assert!(is_not_found_text(
            "error opening file `/run/crun/x/status`: No such file or directory"
        ));
        assert!(!is_not_found_text("permission denied"));
        let mut s = "ééé".to_string();
        truncate(&mut s, 3);
        assert_eq!(s, "é…");
    }
}
