//! Shared fixture for the integration tests: a Runtime over a private root, exit dir and socket
//! dir, with a Drop guard that kills and deletes everything the test made, even on failure.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crius_oci::{CreateOptions, MonitorConfig, Runtime, RuntimeHandler};
use oci_spec::runtime::Spec;

/// Which monitor binary a test runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Monitor {
    Conmon,
    CriusMonitor,
}

/// Path of the monitor binary. crius-monitor is the workspace build
/// (`cargo build -p crius-monitor`), or `$CRIUS_MONITOR`.
pub fn monitor_path(m: Monitor) -> PathBuf {
    match m {
        Monitor::Conmon => PathBuf::from("/usr/bin/conmon"),
        Monitor::CriusMonitor => std::env::var_os("CRIUS_MONITOR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/crius-monitor")
            }),
    }
}

pub fn runtime_path(name: &str) -> PathBuf {
    PathBuf::from(format!("/usr/bin/{name}"))
}

pub struct Fixture {
    pub rt: Runtime,
    pub runtime: &'static str,
    pub base: tempfile::TempDir,
    ids: Mutex<Vec<String>>,
}

impl Fixture {
    pub fn new(runtime: &'static str, monitor: Monitor) -> Fixture {
        let mpath = monitor_path(monitor);
        assert!(
            mpath.exists(),
            "{} is missing: run `cargo build -p crius-monitor` first",
            mpath.display()
        );
        Self::with_monitor(runtime, &mpath, Duration::from_secs(60))
    }

    pub fn with_monitor(
        runtime: &'static str,
        monitor: &Path,
        create_timeout: Duration,
    ) -> Fixture {
        let base = tempfile::Builder::new()
            .prefix("crius-oci-")
            .tempdir()
            .expect("tempdir");
        let handler = RuntimeHandler::new(runtime, runtime_path(runtime), base.path().join("root"));
        let mut mon = MonitorConfig::new(monitor, base.path().join("exits"), base.path().join("s"));
        mon.create_timeout = create_timeout;
        let rt = Runtime::new(handler, mon).expect("Runtime::new");
        Fixture {
            rt,
            runtime,
            base,
            ids: Mutex::new(Vec::new()),
        }
    }

    pub fn id(&self, prefix: &str) -> String {
        let id = crius_testutil::unique_id(prefix);
        self.ids.lock().unwrap().push(id.clone());
        id
    }

    pub fn bundle_with(&self, id: &str, args: &[&str], edit: impl FnOnce(&mut Spec)) -> PathBuf {
        let b = self.base.path().join("bundles").join(id);
        std::fs::create_dir_all(&b).unwrap();
        crius_testutil::write_bundle_with(&b, args, edit).expect("bundle")
    }

    pub fn bundle(&self, id: &str, args: &[&str]) -> PathBuf {
        self.bundle_with(id, args, |_| {})
    }

    pub fn persist_dir(&self, id: &str) -> PathBuf {
        self.base.path().join("persist").join(id)
    }

    pub fn opts(&self, id: &str, bundle: &Path) -> CreateOptions {
        let logs = self.base.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        CreateOptions::new(
            id,
            bundle,
            logs.join(format!("{id}.log")),
            self.persist_dir(id),
        )
    }

    /// Creates and starts a container running `args`; returns its pid.
    pub async fn run(&self, id: &str, args: &[&str]) -> i32 {
        let bundle = self.bundle(id, args);
        let created = self
            .rt
            .create(&self.opts(id, &bundle))
            .await
            .expect("create");
        self.rt.start(id).await.expect("start");
        created.pid
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let root = self.base.path().join("root");
        for id in self.ids.lock().map(|v| v.clone()).unwrap_or_default() {
            if let Some(pid) = read_pid(&self.persist_dir(&id).join("conmon.pid")) {
                // SAFETY: plain kill(2) on a pid we started (the test's monitor).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = std::process::Command::new(runtime_path(self.runtime))
                .arg("--root")
                .arg(&root)
                .args(["delete", "--force", &id])
                .stderr(std::process::Stdio::null())
                .status();
            for pid in processes_mentioning(&id) {
                // SAFETY: plain kill(2) on a leftover process of this test (its cmdline names
                // the test's unique container id).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

pub fn read_pid(p: &Path) -> Option<i32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Live (non-zombie) processes whose command line contains `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) && !is_zombie(pid) {
            out.push(pid);
        }
    }
    out
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
        .unwrap_or(false)
}

/// Field `n` (1-based, after the comm) of /proc/<pid>/stat: 2 = ppid, 4 = session.
pub fn stat_field(pid: i32, n: usize) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(") ")?;
    rest.split_whitespace().nth(n - 1)?.parse().ok()
}

/// Everything in `dir` (names), sorted; empty when it does not exist.
pub fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
