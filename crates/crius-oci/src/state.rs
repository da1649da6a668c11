//! Container state: the runtime's `state` JSON and the monitor's exit record.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{OciError, Result};

/// The JSON printed by `runc state <id>` / `crun state <id>` (OCI runtime-spec "state").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeState {
    /// OCI spec version of the runtime.
    #[serde(rename = "ociVersion", default)]
    pub oci_version: String,
    /// Container ID.
    pub id: String,
    /// Pid of the container's init process (0 when stopped).
    #[serde(default)]
    pub pid: i32,
    /// "creating", "created", "running", "paused" or "stopped".
    pub status: String,
    /// Bundle directory.
    #[serde(default)]
    pub bundle: PathBuf,
    /// Root filesystem path.
    #[serde(default)]
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339, as the runtime printed it.
    #[serde(default)]
    pub created: String,
    /// Annotations from the spec.
    #[serde(default)]
    pub annotations: Option<HashMap<String, String>>,
}

/// The life-cycle state of a container, as CRI sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerState {
    /// Created (the runtime's init waits for `start`).
    Created,
    /// Running.
    Running,
    /// Paused (cgroup freezer).
    Paused,
    /// Exited.
    Stopped,
}

impl ContainerState {
    /// Maps a runtime status string; "creating" counts as created, unknown strings as stopped.
    pub fn from_runtime_status(status: &str) -> Self {
        match status {
            "created" | "creating" => ContainerState::Created,
            "running" => ContainerState::Running,
            "paused" | "pausing" => ContainerState::Paused,
            _ => ContainerState::Stopped,
        }
    }
}

/// What the monitor recorded when the container exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitRecord {
    /// Exit code (128 + signal number when killed by a signal; -1 when the monitor did not know).
    pub exit_code: i32,
    /// When the exit was recorded (the exit file's mtime).
    pub finished_at: SystemTime,
    /// Whether the monitor saw an OOM kill in the container's cgroup (`<persist-dir>/oom`).
    pub oom_killed: bool,
}

/// A container's state derived from the runtime's state and the monitor's exit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    /// Created / running / paused / stopped.
    pub state: ContainerState,
    /// Init pid while it runs (None once stopped or when the runtime no longer knows it).
    pub pid: Option<i32>,
    /// The runtime's state JSON, when the runtime still knows the container.
    pub runtime: Option<RuntimeState>,
    /// The exit record, once the monitor wrote it.
    pub exit: Option<ExitRecord>,
}

/// Reads the exit record the monitor wrote for `id`: `<exit_dir>/<id>` (decimal exit code) or,
/// failing that, `<persist_dir>/exit`; OOM from `<persist_dir>/oom` (conmon 2.1 writes it there
/// and in its working directory). `Ok(None)` while no exit file exists.
pub fn read_exit_record(
    exit_dir: &Path,
    id: &str,
    persist_dir: Option<&Path>,
) -> Result<Option<ExitRecord>> {
    crate::id::validate_id(id)?;
    let mut candidates = vec![exit_dir.join(id)];
    if let Some(p) = persist_dir {
        candidates.push(p.join("exit"));
    }
    for path in candidates {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(OciError::io(
                    format!("read exit file {}", path.display()),
                    e,
                ))
            }
        };
        let exit_code = parse_exit_code(&text).ok_or_else(|| OciError::Parse {
            context: format!("exit file {}", path.display()),
            message: format!(
                "not a decimal exit code: {:?}",
                text.chars().take(40).collect::<String>()
            ),
        })?;
        let finished_at = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map_err(|e| OciError::io(format!("stat exit file {}", path.display()), e))?;
        let oom_killed = persist_dir.is_some_and(|p| p.join("oom").exists());
        return Ok(Some(ExitRecord {
            exit_code,
            finished_at,
            oom_killed,
        }));
    }
    Ok(None)
}

/// Parses the exit file's contents (a decimal integer, possibly with whitespace).
pub(crate) fn parse_exit_code(text: &str) -> Option<i32> {
    text.trim().parse::<i32>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runc_state() {
        let json = r#"{"ociVersion":"1.0.2-dev","id":"c1","pid":4242,"status":"running","bundle":"/b","rootfs":"/b/rootfs","created":"2024-01-01T00:00:00.0Z","owner":""}"#;
        let s: RuntimeState = serde_json::from_str(json).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(
            ContainerState::from_runtime_status(&s.status),
            ContainerState::Running
        );
        assert_eq!(
            ContainerState::from_runtime_status("created"),
            ContainerState::Created
        );
        assert_eq!(
            ContainerState::from_runtime_status("paused"),
            ContainerState::Paused
        );
        assert_eq!(
            ContainerState::from_runtime_status("stopped"),
            ContainerState::Stopped
        );
    }

    #[test]
    fn exit_records() {
        let dir = tempfile::tempdir().unwrap();
        let persist = dir.path().join("persist");
        std::fs::create_dir(&persist).unwrap();
        assert_eq!(
            read_exit_record(dir.path(), "c1", Some(&persist)).unwrap(),
            None
        );
        std::fs::write(dir.path().join("c1"), "42").unwrap();
        let r = read_exit_record(dir.path(), "c1", Some(&persist))
            .unwrap()
            .unwrap();
        assert_eq!(r.exit_code, 42);
        assert!(!r.oom_killed);
        std::fs::write(persist.join("oom"), "").unwrap();
        assert!(
            read_exit_record(dir.path(), "c1", Some(&persist))
                .unwrap()
                .unwrap()
                .oom_killed
        );
        std::fs::write(dir.path().join("c2"), "garbage").unwrap();
        assert!(read_exit_record(dir.path(), "c2", None).is_err());
        std::fs::write(persist.join("exit"), "137\n").unwrap();
        assert_eq!(
            read_exit_record(dir.path(), "c3", Some(&persist))
                .unwrap()
                .unwrap()
                .exit_code,
            137
        );
        assert!(read_exit_record(dir.path(), "../c1", None).is_err());
    }
}
