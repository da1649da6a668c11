//! Waiting on events instead of polling: process exits through pidfds, files through inotify.

use std::ffi::OsStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use rustix::fs::inotify;
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::signal::Signal;

/// Registers an owned fd with the tokio reactor.
pub(crate) fn async_fd(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` is a valid open descriptor, and the `AsyncFd` owns it, so it stays
    // open and refers to the same description until the `AsyncFd` is dropped.
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(|e| e.into_parts().1)
}

/// A pidfd on a process that need not be our child: signal it without pid-reuse races and
/// wait for its exit as a readiness event.
#[derive(Debug)]
pub(crate) struct ProcessHandle {
    fd: AsyncFd<OwnedFd>,
    pid: i32,
}

impl ProcessHandle {
    /// Opens a pidfd on `pid`; `Ok(None)` when no such process exists.
    pub(crate) fn open(pid: i32) -> io::Result<Option<Self>> {
        let Some(p) = Pid::from_raw(pid) else {
            return Ok(None);
        };
        match pidfd_open(p, PidfdFlags::NONBLOCK) {
            Ok(fd) => Ok(Some(ProcessHandle {
                fd: async_fd(fd, Interest::READABLE)?,
                pid,
            })),
            Err(rustix::io::Errno::SRCH) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The pid.
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `sig`; a process that already exited is not an error.
    pub(crate) fn signal(&self, sig: Signal) -> io::Result<()> {
        match pidfd_send_signal(self.fd.get_ref().as_fd(), sig.to_rustix()) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until the process has exited (the pidfd becomes readable).
    pub(crate) async fn exited(&self) -> io::Result<()> {
        let guard = self.fd.readable().await?;
        // Readiness of a pidfd is permanent once the process exited: keep it.
        drop(guard);
        Ok(())
    }

    /// Waits up to `timeout` for the exit; `Ok(true)` when it exited.
    pub(crate) async fn exited_within(&self, timeout: Duration) -> io::Result<bool> {
        match tokio::time::timeout(timeout, self.exited()).await {
            Ok(r) => r.map(|()| true),
            Err(_) => Ok(false),
        }
    }

    /// SIGKILLs the process and waits up to `timeout` for it to be gone; `Ok(true)` when it is.
    pub(crate) async fn kill_and_wait(&self, timeout: Duration) -> io::Result<bool> {
        self.signal(Signal::KILL)?;
        self.exited_within(timeout).await
    }
}

/// Watches one directory for files appearing in it (created, renamed in, closed after write).
pub(crate) struct DirWatch {
    fd: AsyncFd<OwnedFd>,
}

impl DirWatch {
    /// Starts watching `dir`. Check for the file *after* this returns to avoid missing it.
    pub(crate) fn new(dir: &Path) -> io::Result<Self> {
        let watch = DirWatch::empty()?;
        watch.add(dir, false)?;
        Ok(watch)
    }

    /// A watch on no directory yet.
    pub(crate) fn empty() -> io::Result<Self> {
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        Ok(DirWatch {
            fd: async_fd(fd, Interest::READABLE)?,
        })
    }

    /// Also watches `dir` (for removals too when `removals`).
    pub(crate) fn add(&self, dir: &Path, removals: bool) -> io::Result<()> {
        let mut flags = inotify::WatchFlags::CREATE
            | inotify::WatchFlags::MOVED_TO
            | inotify::WatchFlags::CLOSE_WRITE
            | inotify::WatchFlags::ATTRIB;
        if removals {
            flags |= inotify::WatchFlags::DELETE | inotify::WatchFlags::MOVED_FROM;
        }
        inotify::add_watch(self.fd.get_ref(), dir, flags)?;
        Ok(())
    }

    /// Waits for the next batch of events and returns the names they concern.
    pub(crate) async fn next_names(&self) -> io::Result<Vec<std::ffi::OsString>> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
            let mut names = Vec::new();
            let mut reader = inotify::Reader::new(self.fd.get_ref(), &mut buf);
            loop {
                match reader.next() {
                    Ok(ev) => {
                        if let Some(n) = ev.file_name() {
                            use std::os::unix::ffi::OsStrExt;
                            names.push(OsStr::from_bytes(n.to_bytes()).to_os_string());
                        }
                    }
                    Err(rustix::io::Errno::AGAIN) => break,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            if names.is_empty() {
                guard.clear_ready();
                continue;
            }
            return Ok(names);
        }
    }

    /// Waits until `check()` is true, re-checking after each event, for at most `timeout`.
    pub(crate) async fn wait_until(
        &self,
        timeout: Duration,
        mut check: impl FnMut() -> bool,
    ) -> io::Result<bool> {
        let fut = async {
            loop {
                if check() {
                    return Ok(true);
                }
                self.next_names().await?;
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Ok(check()),
        }
    }
}

/// Waits up to `timeout` for `dir/name` to exist (event-driven); `Ok(true)` when it does.
pub(crate) async fn wait_for_file(dir: &Path, name: &str, timeout: Duration) -> io::Result<bool> {
    let path = dir.join(name);
    let watch = DirWatch::new(dir)?;
    watch.wait_until(timeout, || path.exists()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_appearing_wakes_the_waiter() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().to_path_buf();
        let writer = tokio::spawn(async move {
            tokio::task::yield_now().await;
            std::fs::write(p.join("tmp.x"), "1").unwrap();
            std::fs::rename(p.join("tmp.x"), p.join("id1")).unwrap();
        });
        assert!(wait_for_file(dir.path(), "id1", Duration::from_secs(10))
            .await
            .unwrap());
        writer.await.unwrap();
        assert!(
            !wait_for_file(dir.path(), "never", Duration::from_millis(20))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn pidfd_sees_exit() {
        let mut child = tokio::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let pid = child.id().unwrap() as i32;
        let h = ProcessHandle::open(pid).unwrap().unwrap();
        assert!(!h.exited_within(Duration::from_millis(10)).await.unwrap());
        assert!(h.kill_and_wait(Duration::from_secs(10)).await.unwrap());
        let status = child.wait().await.unwrap();
        assert!(!status.success());
    }
}
