//! Creating a container through the monitor (conmon's command-line and sync-pipe protocol).

use std::path::PathBuf;

use crate::error::{OciError, Result};
use crate::runtime::Runtime;

/// What [`Runtime::create`] needs to know about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    /// Container ID (validated).
    pub id: String,
    /// Container name for the monitor's logs (`-n`); defaults to the ID.
    pub name: Option<String>,
    /// Bundle directory with `config.json`; the monitor runs in it and puts `ctl`, `winsz`,
    /// `attach` there.
    pub bundle: PathBuf,
    /// CRI log file the monitor writes (`-l`).
    pub log_path: PathBuf,
    /// Whether the container has a terminal (`-t`).
    pub terminal: bool,
    /// Whether the container's stdin is kept open for attach (`-i`).
    pub stdin: bool,
    /// With `stdin`: close stdin after the first attach session ends (otherwise
    /// `--leave-stdin-open`).
    pub stdin_once: bool,
    /// Container pid file (`-p`); default `<bundle>/pidfile`.
    pub pidfile: Option<PathBuf>,
    /// Directory the monitor keeps per-container data in (`--persist-dir`: `exit`, `oom`,
    /// `conmon.pid`). Created when missing (and removed again if create fails).
    pub persist_dir: PathBuf,
    /// `--log-size-max` in bytes (None: unlimited).
    pub log_size_max: Option<u64>,
}

impl CreateOptions {
    /// Options with no terminal, no stdin, default pid file and unlimited log size.
    pub fn new(
        id: impl Into<String>,
        bundle: impl Into<PathBuf>,
        log_path: impl Into<PathBuf>,
        persist_dir: impl Into<PathBuf>,
    ) -> Self {
        CreateOptions {
            id: id.into(),
            name: None,
            bundle: bundle.into(),
            log_path: log_path.into(),
            terminal: false,
            stdin: false,
            stdin_once: false,
            pidfile: None,
            persist_dir: persist_dir.into(),
            log_size_max: None,
        }
    }
}

/// A created container: its init pid and the monitor's pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedContainer {
    /// Pid of the container's init process (waiting for `start`).
    pub pid: i32,
    /// Pid of the monitor process (from its pid file), when it could be read.
    pub monitor_pid: Option<i32>,
}

impl Runtime {
    /// Creates the container through the monitor and returns once the monitor reported the
    /// container's pid. On any failure (runtime error, monitor failure, timeout) everything
    /// started is killed and every file this call made is removed.
    pub async fn create(&self, opts: &CreateOptions) -> Result<CreatedContainer> {
        crate::id::validate_id(&opts.id)?;
        Err(OciError::Monitor {
            id: opts.id.clone(),
            step: "create",
            message: "not implemented yet".into(),
        })
    }
}
