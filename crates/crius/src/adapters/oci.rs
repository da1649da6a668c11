//! `ContainerRuntime` over crius-oci (one `Runtime` per handler, the monitor per container).

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use crius_oci::{OciError, Runtime, Signal};

use crate::backend::{
    ContainerRuntime, CreateOpts, ExecOutput, ExitInfo, PendingCreate, RtState, RtStatus,
};
use crate::error::{Error, Result};

/// One handler.
pub struct OciRuntime {
    rt: Runtime,
    /// `<runroot>/persist`: per-container monitor data (`<id>/exit`, `oom`, `conmon.pid`).
    persist_root: PathBuf,
    /// Where a container's log goes when the pod gives none.
    null_log: PathBuf,
}

/// Maps crius-oci errors to daemon error kinds.
pub fn map_err(e: OciError) -> Error {
    use crius_oci::ErrorCode;
    let m = e.to_string();
    match e.code() {
        ErrorCode::NotFound => Error::NotFound(m),
        ErrorCode::InvalidArgument => Error::InvalidArgument(m),
        ErrorCode::FailedPrecondition => Error::FailedPrecondition(m),
        ErrorCode::DeadlineExceeded => Error::DeadlineExceeded(m),
        ErrorCode::Internal => Error::Internal(m),
    }
}

fn exit_info(r: crius_oci::ExitRecord) -> ExitInfo {
    ExitInfo {
        code: r.exit_code,
        finished_at: r
            .finished_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0),
        oom: r.oom_killed,
    }
}

impl OciRuntime {
    /// A handler `name` with binary `path` and state root `root`, under monitor `monitor`.
    pub fn new(
        name: &str,
        path: PathBuf,
        root: PathBuf,
        monitor: PathBuf,
        runroot: &std::path::Path,
    ) -> Result<OciRuntime> {
        let handler = crius_oci::RuntimeHandler::new(name, path, root);
        let mon =
            crius_oci::MonitorConfig::new(monitor, runroot.join("exits"), runroot.join("sockets"));
        let rt = Runtime::new(handler, mon).map_err(|e| Error::Unavailable(e.to_string()))?;
        Ok(OciRuntime {
            rt,
            persist_root: runroot.join("persist"),
            null_log: PathBuf::from("/dev/null"),
        })
    }

    fn persist(&self, id: &str) -> PathBuf {
        self.persist_root.join(id)
    }

    fn create_options(&self, o: &CreateOpts) -> crius_oci::CreateOptions {
        let log = o.log_path.clone().unwrap_or_else(|| self.null_log.clone());
        let mut opts = crius_oci::CreateOptions::new(&o.id, &o.bundle, log, self.persist(&o.id));
        opts.terminal = o.tty;
        opts.stdin = o.stdin;
        opts.stdin_once = o.stdin_once;
        opts
    }
}

/// crius-oci's [`crius_oci::PendingCreate`] behind the backend trait.
struct OciPendingCreate(crius_oci::PendingCreate);

#[tonic::async_trait]
impl PendingCreate for OciPendingCreate {
    async fn start(self: Box<Self>) -> Result<u32> {
        let c = self.0.start().await.map_err(map_err)?;
        Ok(c.pid.max(0) as u32)
    }
}

#[tonic::async_trait]
impl ContainerRuntime for OciRuntime {
    async fn spawn_create(&self, o: &CreateOpts) -> Result<Box<dyn PendingCreate>> {
        let pending = self
            .rt
            .spawn_create(&self.create_options(o))
            .await
            .map_err(map_err)?;
        Ok(Box::new(OciPendingCreate(pending)))
    }

    async fn create(&self, o: &CreateOpts) -> Result<u32> {
        let c = self
            .rt
            .create(&self.create_options(o))
            .await
            .map_err(map_err)?;
        Ok(c.pid.max(0) as u32)
    }

    async fn start(&self, id: &str) -> Result<()> {
        self.rt.start(id).await.map_err(map_err)
    }

    async fn stop(&self, id: &str, timeout: Duration, signal: i32) -> Result<()> {
        let sig = Signal::from_raw(signal).map_err(map_err)?;
        self.rt.stop(id, timeout, Some(sig)).await.map_err(map_err)
    }

    async fn stop_known(
        &self,
        id: &str,
        pid: u32,
        created: bool,
        timeout: Duration,
        signal: i32,
    ) -> Result<()> {
        let sig = Signal::from_raw(signal).map_err(map_err)?;
        let pid = i32::try_from(pid).unwrap_or(0);
        self.rt
            .stop_known(id, pid, created, timeout, Some(sig))
            .await
            .map_err(map_err)
    }

    async fn delete(&self, id: &str) -> Result<()> {
        self.rt.delete(id).await.map_err(map_err)?;
        let p = self.persist(id);
        match std::fs::remove_dir_all(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::internal(format!("remove {}", p.display()), e)),
        }
    }

    async fn state(&self, id: &str) -> Result<Option<RtState>> {
        match self.rt.state(id).await {
            Ok(s) => {
                let status = match crius_oci::ContainerState::from_runtime_status(&s.status) {
                    crius_oci::ContainerState::Created => RtStatus::Created,
                    crius_oci::ContainerState::Running => RtStatus::Running,
                    crius_oci::ContainerState::Paused => RtStatus::Paused,
                    crius_oci::ContainerState::Stopped => RtStatus::Stopped,
                };
                Ok(Some(RtState {
                    status,
                    pid: s.pid.max(0) as u32,
                }))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn exit_info(&self, id: &str) -> Result<Option<ExitInfo>> {
        Ok(self
            .rt
            .exit_record(id, Some(&self.persist(id)))
            .map_err(map_err)?
            .map(exit_info))
    }

    async fn wait_exit(&self, id: &str, timeout: Duration) -> Result<ExitInfo> {
        self.rt
            .wait_exit(id, Some(&self.persist(id)), timeout)
            .await
            .map(exit_info)
            .map_err(map_err)
    }

    async fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Option<Duration>,
    ) -> Result<ExecOutput> {
        let o = self.rt.exec_sync(id, cmd, timeout).await.map_err(map_err)?;
        Ok(ExecOutput {
            stdout: o.stdout,
            stderr: o.stderr,
            exit_code: o.exit_code,
        })
    }

    async fn update(&self, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        self.rt.update(id, resources).await.map_err(map_err)
    }

    async fn reopen_log(&self, id: &str) -> Result<()> {
        self.rt.reopen_log(id).await.map_err(map_err)
    }

    fn oci(&self) -> Option<&Runtime> {
        Some(&self.rt)
    }
}
