//! The infra container, only for pods that share one PID namespace among their containers:
//! `crius-pause` (bind-mounted from the host, no image) as PID 1 of the pod's PID namespace,
//! joined to the pod's pinned network/IPC/UTS namespaces.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::backend::CreateOpts;
use crate::error::{Context, Error, Result};
use crate::service::Crius;
use crate::state::PodRecord;

/// Host library directories bind-mounted read-only into the infra rootfs: crius-pause is a
/// normal (dynamically linked, std-only) Rust binary, so it needs the host's loader and libc.
const LIB_DIRS: [&str; 4] = ["/lib", "/lib64", "/usr/lib", "/usr/lib64"];

/// Path of the pause program inside the infra container.
const PAUSE_IN_CONTAINER: &str = "/pause";

/// The OCI spec (as JSON) of a pod's infra container.
pub fn infra_spec(pod: &PodRecord, infra_id: &str, pause_binary: &Path) -> serde_json::Value {
    let mut namespaces = vec![json!({"type": "pid"}), json!({"type": "mount"})];
    let ns = &pod.namespaces;
    for (kind, path) in [("network", &ns.net), ("ipc", &ns.ipc), ("uts", &ns.uts)] {
        if let Some(p) = path {
            namespaces.push(json!({"type": kind, "path": p}));
        }
    }
    let userns = pod.namespaces.user.as_ref().and_then(|p| {
        let map = super::userns::pod_mappings(&pod.config).ok().flatten()?;
        namespaces.push(json!({"type": "user", "path": p}));
        Some(map)
    });
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": PAUSE_IN_CONTAINER, "type": "bind", "source": pause_binary, "options": ["rbind", "ro"]}),
    ];
    for dir in LIB_DIRS {
        if Path::new(dir).exists() {
            mounts.push(json!({"destination": dir, "type": "bind", "source": dir, "options": ["rbind", "ro", "nosuid", "nodev"]}));
        }
    }
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 65535, "gid": 65535},
            "args": [PAUSE_IN_CONTAINER],
            "env": ["PATH=/"],
            "cwd": "/",
            "noNewPrivileges": true,
            "capabilities": {"bounding": [], "effective": [], "permitted": []}
        },
        "root": {"path": "rootfs", "readonly": true},
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": format!("{}/crius-{}", pod.cgroup_parent.trim_end_matches('/'), infra_id),
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"]
        }
    });
    if let Some(map) = userns {
        // runc wants the mappings even when it joins the pod's user namespace by path.
        spec["linux"]["uidMappings"] = json!([map.uid]);
        spec["linux"]["gidMappings"] = json!([map.gid]);
    }
    spec
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn process_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the command name in parentheses, which may hold anything.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| !matches!(state, 'Z' | 'X' | 'x')),
        Err(_) => false,
    }
}

impl Crius {
    /// Creates and starts the infra container `id` of `pod`; returns its PID. On failure
    /// nothing of it is left.
    pub async fn start_infra(&self, pod: &PodRecord, id: &str) -> Result<u32> {
        let pause = self.pause_binary.clone().ok_or_else(|| {
            Error::FailedPrecondition(
                "pod shares its PID namespace but crius-pause was not found".into(),
            )
        })?;
        let bundle = self.cfg.bundles_dir().join(id);
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(rootfs.join("proc")).ctx(format!("create {}", rootfs.display()))?;
        std::fs::create_dir_all(rootfs.join("dev")).ctx("create infra /dev")?;
        std::fs::write(rootfs.join("pause"), b"").ctx("create infra /pause")?;
        for dir in LIB_DIRS.iter().filter(|d| Path::new(d).exists()) {
            let p = rootfs.join(dir.trim_start_matches('/'));
            std::fs::create_dir_all(&p).ctx(format!("create {}", p.display()))?;
        }
        let spec = infra_spec(pod, id, &pause);
        crate::state::store::write_atomic_volatile(
            &bundle.join("config.json"),
            spec.to_string().as_bytes(),
        )?;
        let rt = self.runtime(&pod.runtime_handler)?;
        let opts = CreateOpts {
            id: id.to_string(),
            bundle: bundle.clone(),
            log_path: Some(bundle.join("infra.log")),
            stdin: false,
            stdin_once: false,
            tty: false,
        };
        let res = async {
            let pid = rt.create(&opts).await?;
            rt.start(id).await?;
            // pause runs until killed: a dead (or zombie) init right after start means it
            // failed; /proc says so without one more runtime process (`state`).
            if process_running(pid) {
                Ok(pid)
            } else {
                let log = std::fs::read_to_string(bundle.join("infra.log")).unwrap_or_default();
                Err(Error::Internal(format!(
                    "infra process {pid} exited at start: {}",
                    log.trim()
                )))
            }
        }
        .await;
        match res {
            Ok(pid) => Ok(pid),
            Err(e) => {
                // The bundle goes only once the runtime deleted the container: a missing
                // bundle tells `delete_infra` that there is nothing left to delete.
                if rt.delete(id).await.is_ok() {
                    let _ = std::fs::remove_dir_all(&bundle);
                }
                Err(e.context("start infra container"))
            }
        }
    }

    /// Kills and deletes a pod's infra container and its bundle; idempotent (also for an ID
    /// that was never created).
    pub async fn remove_infra(
        &self,
        handler: &str,
        infra_id: &str,
        pid: Option<u32>,
    ) -> Result<()> {
        if !self.cfg.bundles_dir().join(infra_id).exists() {
            return Ok(()); // see `delete_infra`
        }
        self.kill_infra(handler, infra_id, pid).await?;
        self.delete_infra(handler, infra_id).await
    }

    /// Kills a pod's infra process and waits for the monitor's exit record. `pid` is the
    /// recorded infra PID, if known: while it is still the infra process (checked through a
    /// pidfd against its cgroup, `crius-<id>`) it is killed directly, which spares the runtime
    /// call (`state`) that a stop through the runtime makes to learn it.
    pub async fn kill_infra(&self, handler: &str, infra_id: &str, pid: Option<u32>) -> Result<()> {
        let rt = self.runtime(handler)?;
        let r = match pid {
            Some(pid) => {
                rt.stop_known(infra_id, pid, true, Duration::ZERO, libc::SIGKILL)
                    .await
            }
            None => rt.stop(infra_id, Duration::ZERO, libc::SIGKILL).await,
        };
        if let Err(e) = r {
            tracing::warn!(infra = infra_id, error = %e, "kill the infra process");
        }
        Ok(())
    }

    /// Deletes a (killed) infra container from the runtime, then its bundle; idempotent. The
    /// bundle is made before the runtime creates the container and removed only after the
    /// runtime deleted it, so a missing bundle means that there is nothing to delete (no
    /// runtime process to ask).
    pub async fn delete_infra(&self, handler: &str, infra_id: &str) -> Result<()> {
        let bundle = self.cfg.bundles_dir().join(infra_id);
        if !bundle.exists() {
            return Ok(());
        }
        self.runtime(handler)?.delete(infra_id).await?;
        match std::fs::remove_dir_all(&bundle) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::internal(format!("remove {}", bundle.display()), e)),
        }
    }
}
