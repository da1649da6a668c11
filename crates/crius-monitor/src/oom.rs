//! OOM-kill detection for the container's memory cgroup, found from `/proc/PID/cgroup`.
//!
//! cgroup v1: an eventfd registered through `cgroup.event_control` on `memory.oom_control`
//! wakes the monitor; the `oom_kill` counter in `memory.oom_control` tells a kill from other
//! events (cgroup removal). cgroup v2: `memory.events` is polled for POLLPRI and its `oom_kill`
//! counter compared with the value at start. Either way the counter is checked once more after
//! the container exits, so a kill that raced with the exit is not missed.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::sys;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Finds the memory cgroup directory of `pid` from the text of `/proc/PID/cgroup`.
pub fn memory_cgroup_dir(proc_cgroup: &str, v2: bool) -> Option<PathBuf> {
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if v2 {
            if controllers.is_empty() {
                return Some(Path::new(CGROUP_ROOT).join(rel));
            }
        } else if controllers.split(',').any(|c| c == "memory") {
            return Some(Path::new(CGROUP_ROOT).join("memory").join(rel));
        }
    }
    None
}

/// Reads the `oom_kill N` counter from a `memory.oom_control` / `memory.events` text.
pub fn oom_kill_count(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
}

enum Kind {
    V1 { event: OwnedFd, _control: File },
    V2 { events: File },
}

/// A live OOM watch.
pub struct OomWatch {
    kind: Kind,
    counter_file: PathBuf,
    baseline: Option<u64>,
    /// An OOM kill has been seen.
    pub killed: bool,
}

fn read_counter(path: &Path) -> Option<u64> {
    oom_kill_count(&std::fs::read_to_string(path).ok()?)
}

impl OomWatch {
    /// Starts watching the memory cgroup of `pid`; None (with a warning) when that is not possible.
    pub fn setup(pid: i32) -> Option<OomWatch> {
        let v2 = sys::is_cgroup2(Path::new(CGROUP_ROOT));
        let text = match std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
            Ok(t) => t,
            Err(e) => {
                diag!(
                    Warn,
                    "read /proc/{pid}/cgroup: {e} (container may have exited)"
                );
                return None;
            }
        };
        let Some(dir) = memory_cgroup_dir(&text, v2) else {
            diag!(Warn, "no memory cgroup for pid {pid}");
            return None;
        };
        let r = if v2 {
            Self::setup_v2(&dir)
        } else {
            Self::setup_v1(&dir)
        };
        match r {
            Ok(w) => Some(w),
            Err(e) => {
                diag!(Warn, "cannot watch OOM events in {}: {e}", dir.display());
                None
            }
        }
    }

    fn setup_v1(dir: &Path) -> std::io::Result<OomWatch> {
        let oom_control = dir.join("memory.oom_control");
        let control = sys::open(&oom_control, libc::O_RDONLY)?;
        let event = sys::eventfd()?;
        let mut ec = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.event_control"))?;
        ec.write_all(format!("{} {}", event.as_raw_fd(), control.as_raw_fd()).as_bytes())?;
        Ok(OomWatch {
            kind: Kind::V1 {
                event,
                _control: File::from(control),
            },
            baseline: read_counter(&oom_control),
            counter_file: oom_control,
            killed: false,
        })
    }

    fn setup_v2(dir: &Path) -> std::io::Result<OomWatch> {
        let path = dir.join("memory.events");
        let events = File::from(sys::open(&path, libc::O_RDONLY)?);
        Ok(OomWatch {
            kind: Kind::V2 { events },
            baseline: read_counter(&path),
            counter_file: path,
            killed: false,
        })
    }

    /// The descriptor and poll events to wait on.
    pub fn poll_spec(&self) -> (RawFd, libc::c_short) {
        match &self.kind {
            Kind::V1 { event, .. } => (event.as_raw_fd(), libc::POLLIN),
            Kind::V2 { events } => (events.as_raw_fd(), libc::POLLPRI),
        }
    }

    /// Handles readiness; returns true when an OOM kill is newly detected. Returns Err when the
    /// watch is dead (stop polling it).
    pub fn on_ready(&mut self) -> Result<bool, ()> {
        match &self.kind {
            Kind::V1 { event, .. } => {
                let mut b = [0u8; 8];
                match sys::read(event.as_raw_fd(), &mut b) {
                    Ok(8) => {}
                    Ok(_) => return Err(()),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
                    Err(_) => return Err(()),
                }
                let count = u64::from_ne_bytes(b);
                let cgroup_gone = !self.counter_file.exists();
                match (read_counter(&self.counter_file), self.baseline) {
                    (Some(now), Some(base)) => Ok(self.note(now > base)),
                    // No counter on this kernel: every event but a lone removal is an OOM.
                    _ => Ok(self.note(!(count == 1 && cgroup_gone))),
                }
            }
            Kind::V2 { events } => {
                let mut b = [0u8; 1024];
                let n = events.read_at(&mut b, 0).map_err(|_| ())?;
                let text = String::from_utf8_lossy(&b[..n]);
                match (oom_kill_count(&text), self.baseline) {
                    (Some(now), Some(base)) => Ok(self.note(now > base)),
                    _ => Ok(false),
                }
            }
        }
    }

    /// Last look after the container exited.
    pub fn final_check(&mut self) -> bool {
        if let Kind::V1 { .. } = self.kind {
            let _ = self.on_ready();
        }
        if let (Some(now), Some(base)) = (read_counter(&self.counter_file), self.baseline) {
            self.note(now > base);
        }
        self.killed
    }

    fn note(&mut self, oom: bool) -> bool {
        let new = oom && !self.killed;
        self.killed |= oom;
        new
    }
}

/// Creates the `oom` marker files conmon creates: `<bundle>/oom` (conmon: its working
/// directory, which CRI-O sets to the bundle) and `<persist-dir>/oom`.
pub fn write_oom_files(bundle: Option<&Path>, persist: Option<&Path>) {
    for dir in [bundle, persist].into_iter().flatten() {
        let p = dir.join("oom");
        if let Err(e) = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&p)
        {
            diag!(Warn, "write oom file {}: {e}", p.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cgroup_dirs() {
        let hybrid = "12:memory:/crius/abc\n11:cpu,cpuacct:/crius/abc\n0::/crius/abc\n";
        assert_eq!(
            memory_cgroup_dir(hybrid, false),
            Some(PathBuf::from("/sys/fs/cgroup/memory/crius/abc"))
        );
        assert_eq!(
            memory_cgroup_dir(hybrid, true),
            Some(PathBuf::from("/sys/fs/cgroup/crius/abc"))
        );
        assert_eq!(memory_cgroup_dir("1:name=systemd:/x\n", false), None);
    }

    #[test]
    fn counters() {
        assert_eq!(
            oom_kill_count("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"),
            Some(3)
        );
        assert_eq!(
            oom_kill_count("low 0\nhigh 0\nmax 1\noom 2\noom_kill 1\noom_group_kill 0\n"),
            Some(1)
        );
        assert_eq!(oom_kill_count("oom_kill_disable 0\n"), None);
    }
}
