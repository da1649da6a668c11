//! The monitor's own diagnostics: a minimal leveled logger writing to stderr (while it is still
//! the caller's) and, with `--syslog`, to the local syslog socket.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;

use crate::args::Level;

struct Diag {
    level: Level,
    tag: String,
    syslog: Option<UnixDatagram>,
}

static DIAG: OnceLock<Diag> = OnceLock::new();

/// Configures the logger once; later calls are ignored.
pub fn init(level: Level, cid: &str, tag: Option<&str>, syslog: bool) {
    let tag = match tag {
        Some(t) => format!("{cid}: {t}"),
        None => cid.to_string(),
    };
    let syslog = if syslog {
        UnixDatagram::unbound()
            .ok()
            .filter(|s| s.connect("/dev/log").is_ok())
    } else {
        None
    };
    let _ = DIAG.set(Diag { level, tag, syslog });
}

/// Whether messages at `level` are emitted.
pub fn enabled(level: Level) -> bool {
    level <= DIAG.get().map_or(Level::Warn, |d| d.level)
}

/// Emits one message (callers check [`enabled`] through the macros).
pub fn emit(level: Level, msg: &str) {
    let (letter, prio) = match level {
        Level::Error => ('e', 3),
        Level::Warn => ('w', 4),
        Level::Info => ('i', 6),
        Level::Debug | Level::Trace => ('d', 7),
    };
    let _ = writeln!(std::io::stderr(), "[crius-monitor:{letter}]: {msg}");
    if let Some(d) = DIAG.get() {
        if let Some(s) = &d.syslog {
            // Facility daemon (3).
            let line = format!(
                "<{}>crius-monitor[{}]: {:.40}: {msg}",
                3 * 8 + prio,
                std::process::id(),
                d.tag
            );
            let _ = s.send(line.as_bytes());
        }
    }
}

/// Logs at a level, formatting only when enabled.
#[macro_export]
macro_rules! diag {
    ($lvl:ident, $($arg:tt)*) => {
        if $crate::diag::enabled($crate::args::Level::$lvl) {
            $crate::diag::emit($crate::args::Level::$lvl, &format!($($arg)*));
        }
    };
}
