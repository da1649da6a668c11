//! The CRI container log ("k8s-file"): one record per line,
//! `<RFC3339Nano local time> <stdout|stderr> <F|P> <text>\n`.
//!
//! As in conmon, every chunk read from the container is written at once: each newline-terminated
//! line becomes an `F` record, and a trailing piece without a newline (a line longer than the read
//! buffer, a prompt, or the last line at EOF) becomes a `P` record with a newline appended.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Which container stream a chunk came from; the values are conmon's attach frame bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (frame byte 2).
    Stdout = 2,
    /// Standard error (frame byte 3).
    Stderr = 3,
}

impl Stream {
    /// The stream's name in a CRI log record.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Formats `t` as conmon does: local time, nanoseconds, numeric offset
/// (`2006-01-02T15:04:05.999999999+07:00`).
pub fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let (y, mo, da, h, mi, s, off) =
        crate::sys::localtime(secs).unwrap_or((1970, 1, 1, 0, 0, 0, 0));
    let sign = if off < 0 { '-' } else { '+' };
    let off = off.abs();
    format!(
        "{y:04}-{mo:02}-{da:02}T{h:02}:{mi:02}:{s:02}.{:09}{sign}{:02}:{:02}",
        d.subsec_nanos(),
        off / 3600,
        (off % 3600) / 60
    )
}

/// Appends the CRI records for one chunk of output to `out`; returns how many records.
pub fn format_records(out: &mut Vec<u8>, ts: &str, stream: Stream, mut chunk: &[u8]) -> usize {
    let mut n = 0;
    while !chunk.is_empty() {
        let (line, partial) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..=i], false),
            None => (chunk, true),
        };
        out.extend_from_slice(ts.as_bytes());
        out.push(b' ');
        out.extend_from_slice(stream.name().as_bytes());
        out.extend_from_slice(if partial { b" P " } else { b" F " });
        out.extend_from_slice(line);
        if partial {
            out.push(b'\n');
        }
        chunk = &chunk[line.len()..];
        n += 1;
    }
    n
}

/// An open CRI log file with conmon's size limits.
pub struct CriLog {
    path: PathBuf,
    file: Option<File>,
    size_max: i64,
    global_max: i64,
    written: i64,
    total: i64,
    fsync: bool,
    created: bool,
    buf: Vec<u8>,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

impl CriLog {
    /// Opens (creating, appending) the log at `path`. `size_max`/`global_max` <= 0 mean no limit.
    pub fn open(path: &Path, size_max: i64, global_max: i64, fsync: bool) -> io::Result<CriLog> {
        let created = !path.exists();
        let file = open_append(path)?;
        Ok(CriLog {
            path: path.to_path_buf(),
            file: Some(file),
            size_max,
            global_max,
            written: 0,
            total: 0,
            fsync,
            created,
            buf: Vec::with_capacity(512),
        })
    }

    /// Writes one chunk of container output.
    pub fn write(&mut self, stream: Stream, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        let ts = timestamp(SystemTime::now());
        let mut rest = chunk;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        while !rest.is_empty() {
            let len = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => rest.len(),
            };
            if self.global_max > 0 && self.total >= self.global_max {
                break;
            }
            let start = buf.len();
            format_records(&mut buf, &ts, stream, &rest[..len]);
            let rec = (buf.len() - start) as i64;
            if self.size_max > 0 && self.written + rec > self.size_max {
                // Flush what precedes this record, then start a fresh file for it.
                let tail = buf.split_off(start);
                self.flush(&buf);
                buf = tail;
                self.written = 0;
                if let Err(e) = self.truncate_reopen() {
                    diag!(
                        Warn,
                        "reopen log {} at size limit: {e}",
                        self.path.display()
                    );
                }
            }
            self.written += rec;
            self.total += rec;
            rest = &rest[len..];
        }
        self.flush(&buf);
        buf.clear();
        self.buf = buf;
    }

    fn flush(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if let Some(f) = self.file.as_mut() {
            if let Err(e) = f.write_all(data) {
                diag!(Warn, "write log {}: {e}", self.path.display());
            }
        }
    }

    /// Replaces the log with a new empty file (write `path.tmp`, rename over `path`), as conmon
    /// does both on a reopen request and when `--log-size-max` is reached.
    pub fn truncate_reopen(&mut self) -> io::Result<()> {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        // Open the new file first: if that fails, output keeps going to the old one.
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)?;
        if let Err(e) = std::fs::rename(&tmp, &self.path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        if let Some(old) = self.file.replace(f) {
            if self.fsync {
                let _ = old.sync_all();
            }
        }
        self.written = 0;
        Ok(())
    }

    /// Flushes the file to disk (unless `--no-sync-log`).
    pub fn sync(&self) {
        if let (true, Some(f)) = (self.fsync, self.file.as_ref()) {
            let _ = f.sync_all();
        }
    }

    /// Removes the file if this monitor created it and wrote nothing (failed create).
    pub fn remove_if_unused(mut self) {
        self.file = None;
        if self.created && self.total == 0 {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_full_partial_and_multiple() {
        let mut out = Vec::new();
        let n = format_records(&mut out, "TS", Stream::Stdout, b"a\nbb\ncc");
        assert_eq!(n, 3);
        assert_eq!(out, b"TS stdout F a\nTS stdout F bb\nTS stdout P cc\n");
        out.clear();
        format_records(&mut out, "TS", Stream::Stderr, b"\n");
        assert_eq!(out, b"TS stderr F \n");
    }

    #[test]
    fn timestamp_shape() {
        let t = UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 5);
        let s = timestamp(t);
        // 2023-11-14T..:..:..(.000000005)(+hh:mm)
        assert_eq!(s.len(), "2023-11-14T22:13:20.000000005+00:00".len(), "{s}");
        assert!(s.contains(".000000005"), "{s}");
        assert_eq!(&s[4..5], "-");
        assert_eq!(&s[10..11], "T");
        let off = &s[s.len() - 6..];
        assert!(off.starts_with('+') || off.starts_with('-'), "{s}");
    }

    #[test]
    fn size_max_starts_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, b"old\n").unwrap();
        let mut log = CriLog::open(&path, 200, -1, false).unwrap();
        log.write(Stream::Stdout, b"first line\n");
        let one = std::fs::read(&path).unwrap();
        assert!(one.starts_with(b"old\n"));
        for _ in 0..5 {
            log.write(Stream::Stdout, b"another line of output\n");
        }
        let content = std::fs::read_to_string(&path).unwrap();
        assert!(!content.contains("old"), "the file was replaced: {content}");
        assert!(content.len() <= 200, "{}", content.len());
        assert!(content.ends_with("another line of output\n"));
    }

    #[test]
    fn global_max_stops_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = CriLog::open(&path, -1, 10, false).unwrap();
        log.write(Stream::Stdout, b"one\ntwo\n");
        let content = std::fs::read_to_string(&path).unwrap();
        assert_eq!(content.lines().count(), 1, "{content}");
    }
}
