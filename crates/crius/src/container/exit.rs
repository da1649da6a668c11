//! Exit tracking: a task per running container waits on a pidfd of its init process (an
//! event, no polling while it runs), then reads the monitor's exit record.

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use crate::backend::{ContainerRuntime, ExitInfo, RtStatus};
use crate::service::Crius;
use crate::state::now_ns;

/// Opens a pidfd for `pid`; `None` when the process is already gone.
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is shared.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd is a fresh descriptor we own exclusively.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until process `pid` has exited.
pub async fn wait_pid(pid: u32) {
    if pid == 0 {
        return;
    }
    let Some(fd) = pidfd_open(pid) else { return };
    // SAFETY: `fd` is an OwnedFd moved into the AsyncFd, so it stays open and the same for
    // the AsyncFd's whole lifetime.
    match unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) } {
        Ok(afd) => {
            let _ = afd.readable().await;
        }
        Err(e) => tracing::warn!(pid, error = %e, "pidfd registration failed"),
    }
}

/// After the init process is gone, the monitor writes the exit record: wait for it (bounded).
pub async fn exit_after(rt: &dyn ContainerRuntime, id: &str) -> ExitInfo {
    match rt.wait_exit(id, Duration::from_secs(30)).await {
        Ok(info) => info,
        Err(e) => {
            tracing::warn!(container = id, error = %e, "no exit record from the monitor; recording exit code 255");
            ExitInfo {
                code: 255,
                finished_at: now_ns(),
                oom: false,
            }
        }
    }
}

impl Crius {
    /// Spawns the exit watcher of a running container.
    pub fn watch_exit(self: &Arc<Self>, id: String, pid: u32) {
        let c = self.clone();
        tokio::spawn(async move {
            let Ok(entry) = c.state.container(&id) else {
                return;
            };
            let Ok(rt) = c.runtime(&entry.get().runtime_handler) else {
                return;
            };
            let pid = if pid != 0 {
                pid
            } else {
                match rt.state(&id).await {
                    Ok(Some(st))
                        if st.status == RtStatus::Running || st.status == RtStatus::Paused =>
                    {
                        st.pid
                    }
                    _ => 0,
                }
            };
            wait_pid(pid).await;
            let info = exit_after(rt.as_ref(), &id).await;
            c.mark_exited(&entry, info);
            c.nri_container_stopped(&entry.get()).await;
        });
    }
}
