//! Signals as CRI gives them (image `StopSignal`: "SIGTERM", "TERM", "15", "SIGRTMIN+3").

use crate::error::{OciError, Result};

/// A signal number in `1..=64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(i32);

impl Signal {
    /// SIGTERM, the default stop signal.
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// SIGKILL.
    pub const KILL: Signal = Signal(libc::SIGKILL);
    /// SIGINT.
    pub const INT: Signal = Signal(libc::SIGINT);
    /// SIGHUP.
    pub const HUP: Signal = Signal(libc::SIGHUP);

    /// A signal from its number; refuses anything outside `1..=64`.
    pub fn from_raw(sig: i32) -> Result<Self> {
        if (1..=64).contains(&sig) {
            Ok(Signal(sig))
        } else {
            Err(OciError::InvalidArgument(format!(
                "signal {sig} out of range 1..=64"
            )))
        }
    }

    /// Parses "SIGTERM", "term", "15", "SIGRTMIN+3", "RTMAX-1".
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || OciError::InvalidArgument(format!("unknown signal {s:?}"));
        let t = s.trim();
        if let Ok(n) = t.parse::<i32>() {
            return Signal::from_raw(n).map_err(|_| bad());
        }
        let up = t.to_ascii_uppercase();
        let name = up.strip_prefix("SIG").unwrap_or(&up);
        let alias = match name {
            "IOT" => "ABRT",
            "POLL" => "IO",
            other => other,
        };
        if let Ok(sig) = format!("SIG{alias}").parse::<nix::sys::signal::Signal>() {
            return Ok(Signal(sig as i32));
        }
        let (rtmin, rtmax) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        let rt = if let Some(rest) = name.strip_prefix("RTMIN") {
            Some((rtmin, rest))
        } else {
            name.strip_prefix("RTMAX").map(|rest| (rtmax, rest))
        };
        if let Some((base, rest)) = rt {
            let n = if rest.is_empty() {
                Some(base)
            } else if let Some(off) = rest.strip_prefix('+') {
                off.parse::<i32>().ok().map(|o| base + o)
            } else if let Some(off) = rest.strip_prefix('-') {
                off.parse::<i32>().ok().map(|o| base - o)
            } else {
                None
            };
            return match n {
                Some(n) if (rtmin..=rtmax).contains(&n) => Ok(Signal(n)),
                _ => Err(bad()),
            };
        }
        Err(bad())
    }

    /// The signal number.
    pub fn as_raw(self) -> i32 {
        self.0
    }

    pub(crate) fn to_rustix(self) -> rustix::process::Signal {
        // SAFETY: the value is a valid signal number (1..=64, checked at construction); sending
        // any such number with pidfd_send_signal is sound, whether or not libc reserves it.
        unsafe { rustix::process::Signal::from_raw_unchecked(self.0) }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_numbers() {
        assert_eq!(Signal::parse("SIGTERM").unwrap(), Signal::TERM);
        assert_eq!(Signal::parse("term").unwrap(), Signal::TERM);
        assert_eq!(Signal::parse("SIGIOT").unwrap().as_raw(), libc::SIGABRT);
        assert_eq!(Signal::parse("poll").unwrap().as_raw(), libc::SIGIO);
        assert_eq!(Signal::parse("SIGPWR").unwrap().as_raw(), libc::SIGPWR);
        assert!(Signal::parse("SIGNOPE").is_err());
        assert_eq!(Signal::parse("9").unwrap(), Signal::KILL);
        assert_eq!(Signal::parse("SIGQUIT").unwrap().as_raw(), libc::SIGQUIT);
        assert_eq!(
            Signal::parse("SIGRTMIN+3").unwrap().as_raw(),
            libc::SIGRTMIN() + 3
        );
        for bad in ["", "SIG", "FOO", "0", "65", "-1", "RTMIN+99", "RTMINx"] {
            assert!(Signal::parse(bad).is_err(), "{bad}");
        }
    }
}
