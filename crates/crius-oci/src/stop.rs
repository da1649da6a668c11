//! Stopping a container: stop signal, wait for the exit as an event, SIGKILL at the deadline.

use std::time::Duration;

use crate::error::{OciError, Result};
use crate::events::{wait_for_file, DirWatch, ProcessHandle};
use crate::runtime::Runtime;
use crate::signal::Signal;
use crate::state::ContainerState;

/// How long `stop` waits, once the process is gone, for the monitor's exit record.
const EXIT_RECORD_WAIT: Duration = Duration::from_secs(10);
/// How long after the monitor removed its attach link the exit record may still take.
const LINK_GONE_GRACE: Duration = Duration::from_secs(1);

impl Runtime {
    /// Sends `stop_signal` (default SIGTERM) to the container's init, waits up to `timeout`
    /// for it to exit (pidfd readiness, no polling), then SIGKILLs it and waits until it is
    /// gone, and finally waits (bounded) for the monitor's exit record to appear.
    /// Stopping a stopped or unknown container succeeds. A paused container is resumed first
    /// so that it can handle the signal; a created (never started) one is killed outright.
    pub async fn stop(
        &self,
        id: &str,
        timeout: Duration,
        stop_signal: Option<Signal>,
    ) -> Result<()> {
        crate::id::validate_id(id)?;
        let st = match self.state(id).await {
            Ok(s) => s,
            Err(OciError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let state = ContainerState::from_runtime_status(&st.status);
        if state == ContainerState::Stopped || st.pid <= 0 {
            self.wait_exit_record(id).await;
            return Ok(());
        }
        let io = |what: &str, e: std::io::Error| {
            OciError::io(format!("container {id}: stop: {what}"), e)
        };
        let Some(proc_) = ProcessHandle::open(st.pid).map_err(|e| io("pidfd_open", e))? else {
            self.wait_exit_record(id).await;
            return Ok(());
        };
        let mut signal = stop_signal.unwrap_or(Signal::TERM);
        match state {
            ContainerState::Created => signal = Signal::KILL,
            ContainerState::Paused => {
                if let Err(e) = self.resume(id).await {
                    tracing::warn!(id, error = %e, "stop: resume of paused container failed");
                }
            }
            _ => {}
        }
        self.signal_and_wait(id, &proc_, signal, timeout).await
    }

    /// [`Runtime::stop`] for a container whose init pid the caller knows (from create) and
    /// that it never paused: no `<runtime> state` process. The pid is used through a pidfd
    /// opened before checking that the process is in the container's own cgroup (its last
    /// component is `<id>` or ends in `-<id>`), so a recycled pid is never signalled; when the check fails (the init
    /// is gone or the layout differs) this falls back to [`Runtime::stop`]. `created`: the
    /// container was never started (killed outright). A container whose exit the monitor
    /// recorded is stopped already.
    pub async fn stop_known(
        &self,
        id: &str,
        pid: i32,
        created: bool,
        timeout: Duration,
        stop_signal: Option<Signal>,
    ) -> Result<()> {
        crate::id::validate_id(id)?;
        if self.monitor.exit_dir.join(id).exists() {
            return Ok(());
        }
        let opened = if pid > 0 {
            ProcessHandle::open(pid).ok().flatten()
        } else {
            None
        };
        let proc_ = match opened {
            Some(p) if in_container_cgroup(pid, id) => p,
            _ => return self.stop(id, timeout, stop_signal).await,
        };
        let signal = if created {
            Signal::KILL
        } else {
            stop_signal.unwrap_or(Signal::TERM)
        };
        self.signal_and_wait(id, &proc_, signal, timeout).await
    }

    /// Signals the init, waits up to `timeout`, SIGKILLs it, then waits for the exit record.
    async fn signal_and_wait(
        &self,
        id: &str,
        proc_: &ProcessHandle,
        signal: Signal,
        timeout: Duration,
    ) -> Result<()> {
        let io = |what: &str, e: std::io::Error| {
            OciError::io(format!("container {id}: stop: {what}"), e)
        };
        tracing::debug!(
            id,
            pid = proc_.pid(),
            signal = signal.as_raw(),
            ?timeout,
            "stopping"
        );
        proc_.signal(signal).map_err(|e| io("signal", e))?;
        let exited = if signal == Signal::KILL {
            false
        } else {
            proc_
                .exited_within(timeout)
                .await
                .map_err(|e| io("wait", e))?
        };
        if !exited {
            proc_.signal(Signal::KILL).map_err(|e| io("SIGKILL", e))?;
            let gone = proc_
                .exited_within(self.handler.command_timeout)
                .await
                .map_err(|e| io("wait after SIGKILL", e))?;
            if !gone {
                return Err(OciError::TimedOut {
                    id: id.to_string(),
                    step: "stop (after SIGKILL)",
                    timeout: self.handler.command_timeout,
                });
            }
        }
        self.wait_exit_record(id).await;
        Ok(())
    }

    /// Waits (event-driven, bounded) for the monitor to write `<exit-dir>/<id>`. The monitor
    /// removes its `<socket-dir>/<id>` link as it exits (conmon after the exit file,
    /// crius-monitor just before it): once the link is gone, the record follows within
    /// [`LINK_GONE_GRACE`] or never (a killed monitor), so the wait is cut short.
    async fn wait_exit_record(&self, id: &str) {
        let exit_file = self.monitor.exit_dir.join(id);
        let link = self.monitor.socket_dir.join(id);
        let watch = DirWatch::empty().and_then(|w| {
            w.add(&self.monitor.exit_dir, false)?;
            w.add(&self.monitor.socket_dir, true)?;
            Ok(w)
        });
        let watch = match watch {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(id, error = %e, "cannot watch the exit dir");
                return;
            }
        };
        let done = || exit_file.exists() || std::fs::symlink_metadata(&link).is_err();
        let mut waited = watch.wait_until(EXIT_RECORD_WAIT, done).await;
        if matches!(waited, Ok(true)) && !exit_file.exists() {
            waited = watch
                .wait_until(LINK_GONE_GRACE, || exit_file.exists())
                .await;
        }
        match waited {
            Ok(true) if exit_file.exists() => {}
            Ok(_) => tracing::warn!(id, "no exit record from the monitor after the exit"),
            Err(e) => tracing::warn!(id, error = %e, "cannot watch the exit dir"),
        }
    }
}

impl Runtime {
    /// Waits (inotify on the exit dir, no polling) until the monitor recorded `id`'s exit, for
    /// at most `timeout`, and returns the record; [`OciError::TimedOut`] when it did not come.
    pub async fn wait_exit(
        &self,
        id: &str,
        persist_dir: Option<&std::path::Path>,
        timeout: Duration,
    ) -> Result<crate::state::ExitRecord> {
        crate::id::validate_id(id)?;
        let appeared = wait_for_file(&self.monitor.exit_dir, id, timeout)
            .await
            .map_err(|e| OciError::io(format!("container {id}: wait for exit"), e))?;
        if !appeared {
            return Err(OciError::TimedOut {
                id: id.to_string(),
                step: "wait for exit",
                timeout,
            });
        }
        self.exit_record(id, persist_dir)?
            .ok_or_else(|| OciError::NotFound { id: id.to_string() })
    }
}

/// Whether process `pid` is in a cgroup whose last path component is `<id>` or ends in `-<id>`
/// (the container's own with the cgroupfs driver, such as `/<parent>/<id>` or a pod infra's
/// `/<parent>/crius-<id>`), in any hierarchy.
fn in_container_cgroup(pid: i32, id: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .is_ok_and(|cg| cg.lines().any(|l| names_container(l, id)))
}

/// Whether a /proc/PID/cgroup line's path ends in the cgroup of container `id`.
fn names_container(line: &str, id: &str) -> bool {
    let last = line.rsplit('/').next().unwrap_or_default();
    last == id || last.strip_suffix(id).is_some_and(|p| p.ends_with('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_in_no_container_cgroup() {
        let me = std::process::id() as i32;
        assert!(!in_container_cgroup(me, "0123456789abcdef"));
        assert!(!in_container_cgroup(-1, "x"));
    }

    #[test]
    fn a_container_cgroup_is_the_last_component_or_its_dash_suffix() {
        assert!(names_container("4:memory:/kubepods/pod1/abc123", "abc123"));
        assert!(names_container(
            "4:memory:/kubepods/pod1/crius-abc123",
            "abc123"
        ));
        assert!(names_container("0::/abc123", "abc123"));
        assert!(!names_container(
            "4:memory:/kubepods/pod1/xabc123",
            "abc123"
        ));
        assert!(!names_container(
            "4:memory:/kubepods/abc123/other",
            "abc123"
        ));
        assert!(!names_container(
            "4:memory:/kubepods/pod1/abc1234",
            "abc123"
        ));
    }
}
