//! Configuration of a runtime handler and of the per-container monitor.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// One runtime handler (CRI `runtime_handler`): which OCI runtime binary to run and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeHandler {
    /// Handler name as the kubelet sees it ("runc", "crun", ...).
    pub name: String,
    /// Path of the runtime binary (`/usr/bin/runc`, `/usr/bin/crun`).
    pub runtime_path: PathBuf,
    /// State directory passed as `--root` (e.g. `/run/crius/runc`).
    pub root: PathBuf,
    /// Extra global arguments, placed after `--root` and before the subcommand.
    pub runtime_args: Vec<String>,
    /// Deadline for one short runtime command (state, start, kill, delete, ...). Default 60 s.
    pub command_timeout: Duration,
}

impl RuntimeHandler {
    /// A handler named `name` running `runtime_path` with `--root root`, no extra arguments.
    pub fn new(
        name: impl Into<String>,
        runtime_path: impl Into<PathBuf>,
        root: impl Into<PathBuf>,
    ) -> Self {
        RuntimeHandler {
            name: name.into(),
            runtime_path: runtime_path.into(),
            root: root.into(),
            runtime_args: Vec::new(),
            command_timeout: Duration::from_secs(60),
        }
    }
}

/// Which monitor implementation a [`MonitorConfig`] points at. Both speak conmon's protocol and
/// are handled identically; the kind is informational (logs, benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorKind {
    /// Debian's / upstream `conmon`.
    Conmon,
    /// Our `crius-monitor`.
    CriusMonitor,
    /// Some other binary speaking conmon's protocol.
    Other,
}

impl MonitorKind {
    /// Guesses the kind from the binary's file name.
    pub fn from_path(path: &Path) -> Self {
        match path.file_name().and_then(|n| n.to_str()) {
            Some(n) if n.starts_with("crius-monitor") => MonitorKind::CriusMonitor,
            Some(n) if n.starts_with("conmon") => MonitorKind::Conmon,
            _ => MonitorKind::Other,
        }
    }
}

/// How containers' monitors are started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorConfig {
    /// Path of the monitor binary (`target/debug/crius-monitor`, `/usr/bin/conmon`).
    pub path: PathBuf,
    /// Directory where the monitor writes `<id>` with the exit code (`--exit-dir`).
    pub exit_dir: PathBuf,
    /// Directory for the attach sockets' symlinks (`--socket-dir-path`); keep it short.
    pub socket_dir: PathBuf,
    /// Deadline for the monitor to report the container pid. Default 240 s.
    pub create_timeout: Duration,
    /// `--log-level` passed to the monitor ("error", "info", "debug"...).
    pub log_level: String,
    /// Extra environment for the monitor (besides the pipes' variables).
    pub env: Vec<(String, String)>,
}

impl MonitorConfig {
    /// A monitor config with the default create timeout (240 s) and log level "error".
    pub fn new(
        path: impl Into<PathBuf>,
        exit_dir: impl Into<PathBuf>,
        socket_dir: impl Into<PathBuf>,
    ) -> Self {
        MonitorConfig {
            path: path.into(),
            exit_dir: exit_dir.into(),
            socket_dir: socket_dir.into(),
            create_timeout: Duration::from_secs(240),
            log_level: "error".to_string(),
            env: Vec::new(),
        }
    }

    /// The kind of monitor, guessed from the binary name.
    pub fn kind(&self) -> MonitorKind {
        MonitorKind::from_path(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(
            MonitorKind::from_path(Path::new("/usr/bin/conmon")),
            MonitorKind::Conmon
        );
        assert_eq!(
            MonitorKind::from_path(Path::new("target/debug/crius-monitor")),
            MonitorKind::CriusMonitor
        );
        assert_eq!(
            MonitorKind::from_path(Path::new("/x/y")),
            MonitorKind::Other
        );
        assert_eq!(
            MonitorConfig::new("/usr/bin/conmon", "/e", "/s").create_timeout,
            Duration::from_secs(240)
        );
    }
}
