//! The parent pipes (`_OCI_SYNCPIPE`, `_OCI_STARTPIPE`, `_OCI_ATTACHPIPE`): descriptor numbers
//! passed in the environment, and the one-line JSON messages conmon writes on them:
//! `{"<key>": N}` or `{"<key>": N, "message": "..."}` followed by a newline, where key is
//! `data` with `--api-version` >= 1, else `exit_code` for `--exec`, else `pid`.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::sys;

/// Takes ownership of the descriptor named by `var`, marking it close-on-exec. conmon treats
/// descriptor 0 and unparsable values as absent; so does this.
pub fn fd_from_env(var: &str) -> Result<Option<OwnedFd>, String> {
    let Some(v) = std::env::var_os(var) else {
        return Ok(None);
    };
    let s = v.to_str().ok_or_else(|| format!("unable to parse {var}"))?;
    let fd: RawFd = s
        .trim()
        .parse()
        .map_err(|_| format!("unable to parse {var}"))?;
    if fd <= 0 {
        return Ok(None);
    }
    if !sys::fd_is_open(fd) {
        return Err(format!("{var}={fd} is not an open descriptor"));
    }
    sys::set_cloexec(fd).map_err(|e| format!("unable to make {var} CLOEXEC: {e}"))?;
    // SAFETY: the caller handed this open descriptor to us through the environment; nothing
    // else in this process refers to it.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// The JSON key conmon uses for a value on the sync pipe.
pub fn key(api_version: u32, exec: bool) -> &'static str {
    if api_version >= 1 {
        "data"
    } else if exec {
        "exit_code"
    } else {
        "pid"
    }
}

/// Escapes a string for a JSON string literal.
pub fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// One message line.
pub fn message(key: &str, value: i64, text: Option<&str>) -> String {
    match text {
        Some(t) if !t.is_empty() => format!(
            "{{\"{key}\": {value}, \"message\": \"{}\"}}\n",
            json_escape(t)
        ),
        _ => format!("{{\"{key}\": {value}}}\n"),
    }
}

/// A parent pipe we write messages to; a reader that went away (EPIPE) closes it quietly.
pub struct SyncPipe {
    fd: Option<OwnedFd>,
    key: &'static str,
}

impl SyncPipe {
    /// Wraps an optional descriptor.
    pub fn new(fd: Option<OwnedFd>, key: &'static str) -> SyncPipe {
        SyncPipe { fd, key }
    }

    /// Writes `{"key": value[, "message": text]}\n`.
    pub fn send(&mut self, value: i64, text: Option<&str>) {
        use std::os::fd::AsRawFd;
        let Some(fd) = self.fd.as_ref() else { return };
        let line = message(self.key, value, text);
        if let Err(e) = sys::write_all(fd.as_raw_fd(), line.as_bytes()) {
            if e.raw_os_error() != Some(libc::EPIPE) {
                diag!(Warn, "write to parent pipe: {e}");
            }
            self.fd = None;
        }
    }

    /// Closes the pipe.
    pub fn close(&mut self) {
        self.fd = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(message("pid", 42, None), "{\"pid\": 42}\n");
        assert_eq!(
            message("data", -1, Some("a \"b\"\n\u{1}")),
            "{\"data\": -1, \"message\": \"a \\\"b\\\"\\n\\u0001\"}\n"
        );
        assert_eq!(key(1, true), "data");
        assert_eq!(key(0, true), "exit_code");
        assert_eq!(key(0, false), "pid");
    }

    #[test]
    fn messages_are_json() {
        let m = message("pid", -1, Some("weird \\ \t text / ü"));
        let v: serde_json::Value = serde_json::from_str(m.trim_end()).unwrap();
        assert_eq!(v["pid"], -1);
        assert_eq!(v["message"], "weird \\ \t text / ü");
    }
}
