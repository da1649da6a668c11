//! User namespaces for pods (CRI `NamespaceOption.userns_options`, mode POD).
//!
//! A thread of a multithreaded process can neither `unshare(CLONE_NEWUSER)` nor `setns` into a
//! user namespace, so a pod's user namespace is made by a short-lived helper *process*: it is
//! cloned with `CLONE_NEWUSER` plus the other namespace flags the pod wants (the kernel creates
//! the user namespace first, so the pod's network, IPC and UTS namespaces are owned by it, which
//! lets the containers mount sysfs, proc and mqueue), and only waits to be killed. The daemon
//! writes its `uid_map`/`gid_map` (as root in the parent namespace, so no `setgroups` dance),
//! pins `/proc/<pid>/ns/*` by bind mount like the other namespaces, then kills and reaps it.

use std::fs;
use std::io;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::{Error, Result};

/// One contiguous ID range: IDs `container_id..container_id+size` inside the user namespace are
/// `host_id..host_id+size` outside (one line of `/proc/<pid>/uid_map`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// First ID inside the namespace.
    pub container_id: u32,
    /// First ID on the host.
    pub host_id: u32,
    /// Number of IDs.
    pub size: u32,
}

impl IdRange {
    /// The `uid_map`/`gid_map` line.
    fn map_line(&self) -> String {
        format!("{} {} {}\n", self.container_id, self.host_id, self.size)
    }

    /// The host ID that `id` (inside) maps to, if it is in the range.
    pub fn to_host(&self, id: u32) -> Option<u32> {
        let off = id.checked_sub(self.container_id)?;
        (off < self.size).then(|| self.host_id.checked_add(off))?
    }

    fn check(&self, what: &str) -> Result<()> {
        let fits = |start: u32| u64::from(start) + u64::from(self.size) <= u64::from(u32::MAX);
        if self.size == 0 || !fits(self.container_id) || !fits(self.host_id) {
            return Err(Error::InvalidUserns(format!(
                "{what} mapping {} {} {}: empty or beyond 2^32-1",
                self.container_id, self.host_id, self.size
            )));
        }
        Ok(())
    }
}

/// The ID mappings of a pod's user namespace: one UID range and one GID range, as the kubelet
/// gives them for mode POD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsernsMappings {
    /// The UID range.
    pub uids: IdRange,
    /// The GID range.
    pub gids: IdRange,
}

impl UsernsMappings {
    /// Checks the ranges are non-empty, do not overflow, and map container ID 0 (the pod's
    /// root must exist in the namespace).
    pub fn validate(&self) -> Result<()> {
        self.uids.check("uid")?;
        self.gids.check("gid")?;
        if self.uids.to_host(0).is_none() || self.gids.to_host(0).is_none() {
            return Err(Error::InvalidUserns(
                "container ID 0 is not mapped".to_string(),
            ));
        }
        Ok(())
    }

    /// The host UID and GID of the namespace's root (container ID 0).
    pub fn host_root(&self) -> Option<(u32, u32)> {
        Some((self.uids.to_host(0)?, self.gids.to_host(0)?))
    }
}

/// A helper process in a new user namespace (and in the new namespaces of `extra`, owned by
/// it), with its ID maps written. It only sleeps; dropping this kills and reaps it. Its
/// namespaces live on after that only if pinned (bind-mounted) or joined.
#[derive(Debug)]
pub struct UsernsProcess {
    pid: Pid,
}

/// Stack for the cloned helper, which only calls `prctl` and `pause`.
const HELPER_STACK: usize = 64 * 1024;

impl UsernsProcess {
    /// Clones the helper with `CLONE_NEWUSER | extra` and writes `map` into its
    /// `uid_map`/`gid_map`. `extra` may hold `CLONE_NEWNET`, `CLONE_NEWIPC`, `CLONE_NEWUTS`.
    pub fn spawn(map: &UsernsMappings, extra: CloneFlags) -> Result<Self> {
        map.validate()?;
        let err = |step: &str| {
            let step = step.to_string();
            move |source: io::Error| Error::Userns { step, source }
        };
        let mut stack = vec![0u8; HELPER_STACK];
        let child = Box::new(|| -> isize {
            // SAFETY: the cloned child of a multithreaded process may only make
            // async-signal-safe calls; prctl and pause are plain system calls. The child dies
            // with the thread that cloned it, or when killed.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                loop {
                    libc::pause();
                }
            }
        });
        // SAFETY: no CLONE_VM: the child runs on its own copy of `stack` and of our memory, and
        // the callback above makes only async-signal-safe system calls, never returning.
        let pid = unsafe {
            nix::sched::clone(
                child,
                &mut stack,
                CloneFlags::CLONE_NEWUSER | extra,
                Some(libc::SIGCHLD),
            )
        }
        .map_err(|e| err("clone a process into a new user namespace")(e.into()))?;
        let proc = UsernsProcess { pid };
        fs::write(proc.proc_path("uid_map"), map.uids.map_line())
            .map_err(err(&format!("write uid_map of helper {pid}")))?;
        fs::write(proc.proc_path("gid_map"), map.gids.map_line())
            .map_err(err(&format!("write gid_map of helper {pid}")))?;
        Ok(proc)
    }

    /// The helper's PID.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw().unsigned_abs()
    }

    fn proc_path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/{name}", self.pid))
    }

    /// `/proc/<pid>/ns/<kind>` of the helper (`user`, `net`, `ipc`, `uts`).
    pub fn ns_path(&self, kind: &str) -> PathBuf {
        self.proc_path(&format!("ns/{kind}"))
    }
}

impl Drop for UsernsProcess {
    fn drop(&mut self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        if let Err(e) = waitpid(self.pid, None) {
            tracing::debug!(pid = %self.pid, error = %e, "reap user namespace helper");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(c: u32, h: u32, s: u32) -> IdRange {
        IdRange {
            container_id: c,
            host_id: h,
            size: s,
        }
    }

    #[test]
    fn ranges() {
        let r = range(0, 1000, 100000);
        assert_eq!(r.to_host(0), Some(1000));
        assert_eq!(r.to_host(99999), Some(100999));
        assert_eq!(r.to_host(100000), None);
        assert_eq!(range(5, 10, 2).to_host(4), None);
        assert_eq!(r.map_line(), "0 1000 100000\n");
    }

    #[test]
    fn validation() {
        let ok = UsernsMappings {
            uids: range(0, 1000, 65536),
            gids: range(0, 2000, 65536),
        };
        assert!(ok.validate().is_ok());
        assert_eq!(ok.host_root(), Some((1000, 2000)));
        for bad in [
            UsernsMappings {
                uids: range(1, 1000, 65536),
                ..ok
            },
            UsernsMappings {
                gids: range(1, 1000, 65536),
                ..ok
            },
            UsernsMappings {
                uids: range(0, 1000, 0),
                ..ok
            },
            UsernsMappings {
                uids: range(0, u32::MAX - 5, 10),
                ..ok
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::InvalidUserns(_))),
                "{bad:?}"
            );
        }
    }
}
