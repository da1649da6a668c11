//! The control fifos conmon creates in the bundle: `ctl` carries `TYPE HEIGHT WIDTH\n` lines
//! (type 1 = resize the terminal, type 2 = reopen the log; CRI-O writes `2 0 0\n`), and `winsz`
//! carries `HEIGHT WIDTH\n` lines (resize).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::sys;

/// One control request.
#[derive(Debug, PartialEq, Eq)]
pub enum CtlMsg {
    /// Resize the terminal to rows x cols.
    Resize(u16, u16),
    /// Reopen the container log.
    ReopenLog,
}

fn nums(line: &str) -> Option<Vec<i64>> {
    line.split_whitespace().map(|w| w.parse().ok()).collect()
}

fn size(h: i64, w: i64) -> Option<(u16, u16)> {
    Some((u16::try_from(h).ok()?, u16::try_from(w).ok()?))
}

/// Parses a `ctl` line. A bare `2` is accepted as a reopen request too.
pub fn parse_ctl(line: &str) -> Option<CtlMsg> {
    match nums(line)?.as_slice() {
        [1, h, w] => size(*h, *w).map(|(h, w)| CtlMsg::Resize(h, w)),
        [2, ..] => Some(CtlMsg::ReopenLog),
        _ => None,
    }
}

/// Parses a `winsz` line.
pub fn parse_winsz(line: &str) -> Option<(u16, u16)> {
    match nums(line)?.as_slice() {
        [h, w] => size(*h, *w),
        _ => None,
    }
}

/// A fifo the monitor reads, with a writer of its own held open so that the last external
/// writer closing does not flood it with hang-ups.
pub struct Fifo {
    path: PathBuf,
    read: OwnedFd,
    _write: OwnedFd,
    buf: Vec<u8>,
}

impl Fifo {
    /// Creates `<dir>/<name>` (replacing a stale one) and opens both ends.
    pub fn create(dir: &Path, name: &str) -> io::Result<Fifo> {
        let path = dir.join(name);
        match sys::mkfifo(&path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&path)?;
                sys::mkfifo(&path)?;
            }
            other => other?,
        }
        let read = sys::open(&path, libc::O_RDONLY | libc::O_NONBLOCK)?;
        let write = sys::open(&path, libc::O_WRONLY)?;
        Ok(Fifo {
            path,
            read,
            _write: write,
            buf: Vec::new(),
        })
    }

    /// The descriptor to poll for input.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Reads what is available and returns the complete lines.
    pub fn read_lines(&mut self) -> Vec<String> {
        let mut chunk = [0u8; 256];
        loop {
            match sys::read(self.read.as_raw_fd(), &mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => break,
            }
            if self.buf.len() > 4096 {
                break;
            }
        }
        let mut lines = Vec::new();
        while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            lines.push(String::from_utf8_lossy(&line).trim().to_string());
        }
        if self.buf.len() > 4096 {
            diag!(
                Warn,
                "dropping {} bytes without newline from {}",
                self.buf.len(),
                self.path.display()
            );
            self.buf.clear();
        }
        lines
    }

    /// Removes the fifo from the filesystem.
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctl_lines() {
        assert_eq!(parse_ctl("1 24 80"), Some(CtlMsg::Resize(24, 80)));
        assert_eq!(parse_ctl("2 0 0"), Some(CtlMsg::ReopenLog));
        assert_eq!(parse_ctl("2"), Some(CtlMsg::ReopenLog));
        assert_eq!(parse_ctl("1 -1 80"), None);
        assert_eq!(parse_ctl("3 0 0"), None);
        assert_eq!(parse_ctl("x"), None);
        assert_eq!(parse_winsz("50 120"), Some((50, 120)));
        assert_eq!(parse_winsz("50"), None);
    }

    #[test]
    fn fifo_reads_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = Fifo::create(dir.path(), "ctl").unwrap();
        // A stale fifo is replaced.
        let f2 = Fifo::create(dir.path(), "winsz").unwrap();
        drop(f2);
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("ctl"))
            .unwrap();
        use std::io::Write;
        w.write_all(b"1 10 20\n2 0").unwrap();
        assert_eq!(f.read_lines(), ["1 10 20"]);
        w.write_all(b" 0\n").unwrap();
        assert_eq!(f.read_lines(), ["2 0 0"]);
        f.remove();
        assert!(!dir.path().join("ctl").exists());
    }
}
