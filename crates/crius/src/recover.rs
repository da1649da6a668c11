//! Startup: rebuild pods and containers from the durable records, finish or roll back work
//! that a crash interrupted, and reconcile with the runtime and the monitors' exit records.

use std::sync::Arc;

use crate::backend::RtStatus;
use crate::error::Result;
use crate::service::Crius;
use crate::state::{ContainerRecord, ContainerState, Kind, PodRecord, PodState, Stage};

impl Crius {
    /// Loads the records and reconciles them. Containers that kept running are watched again;
    /// those that ended while crius was down get their exit code from the exit record.
    pub async fn recover(self: &Arc<Self>) -> Result<()> {
        let store = self.state.store.clone();
        for (_, (name, id)) in store.all::<(String, String)>(Kind::Name)? {
            self.state.restore_name(&name, &id);
        }
        let pods: Vec<(String, PodRecord)> = store.all(Kind::Pod)?;
        let containers: Vec<(String, ContainerRecord)> = store.all(Kind::Container)?;
        // Names live in the records (State::reserve_name writes no file of its own).
        for (_, rec) in &pods {
            self.state.restore_name(&rec.name, &rec.id);
        }
        // A container being removed gave its name up when RemoveContainer answered (a newer
        // container may carry it now): its record does not reserve it again.
        for (_, rec) in containers
            .iter()
            .filter(|(_, c)| c.stage != Stage::Removing)
        {
            self.state.restore_name(&rec.name, &rec.id);
        }

        for (_, rec) in pods {
            match rec.stage {
                Stage::Creating | Stage::Removing => {
                    tracing::info!(pod = %rec.id, stage = ?rec.stage, "cleaning up interrupted pod");
                    for (_, c) in containers.iter().filter(|(_, c)| c.pod_id == rec.id) {
                        self.cleanup_container(c).await;
                    }
                    if let Err(e) = self.finish_pod_removal(&rec).await {
                        tracing::warn!(pod = %rec.id, error = %e, "cleanup of interrupted pod");
                    }
                }
                Stage::Created => {
                    let mut rec = rec;
                    if rec.state == PodState::Ready && !self.pod_alive(&rec).await {
                        tracing::warn!(pod = %rec.id, "pod namespaces are gone; marking not ready");
                        rec.state = PodState::NotReady;
                        let _ = self.save_pod(&rec);
                    }
                    self.state.insert_pod(rec);
                }
            }
        }
        for (_, rec) in containers {
            if self.state.pod(&rec.pod_id).is_err() {
                // Its pod was rolled back above, or the pod record is missing: clean up.
                self.cleanup_container(&rec).await;
                continue;
            }
            match rec.stage {
                Stage::Creating | Stage::Removing => self.cleanup_container(&rec).await,
                Stage::Created => self.reconcile_container(rec).await,
            }
        }
        self.state
            .store
            .all::<(String, String)>(Kind::Name)
            .map(|names| {
                for (_, (name, id)) in names {
                    if self.state.pod(&id).is_err() && self.state.container(&id).is_err() {
                        self.state.release_name(&name);
                    }
                }
            })?;
        self.sweep_orphaned_networks().await;
        tracing::info!(
            pods = self.state.pods().len(),
            containers = self.state.containers().len(),
            "state recovered"
        );
        Ok(())
    }

    /// What pods that no longer exist left behind. A DEL that failed during a rollback or
    /// removal keeps its CNI cache entry for a retry, but the pod record is gone by then: each
    /// start retries their DEL (from the cached config and result), so a plugin's allocations
    /// are not leaked for good (a DEL that fails again is logged and retried at the next start),
    /// then unpins their namespaces; pod file directories without a record are deleted too.
    async fn sweep_orphaned_networks(&self) {
        let attached = match self.be.network.attached_pods().await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "list CNI state");
                return;
            }
        };
        for id in attached {
            if self.state.pod(&id).is_ok() {
                continue;
            }
            let pod = crate::backend::PodNetwork {
                id: id.clone(),
                ..Default::default()
            };
            match self.be.network.teardown(&pod).await {
                Ok(()) => tracing::info!(pod = %id, "CNI state of a removed pod torn down"),
                Err(e) => {
                    tracing::warn!(pod = %id, error = %e, "CNI DEL of a removed pod failed; retried at the next start");
                    continue;
                }
            }
            // Its namespace pins, if any survived (unpinning is idempotent).
            if let Err(e) = self.be.network.remove_namespaces(&id).await {
                tracing::warn!(pod = %id, error = %e, "unpin namespaces of a removed pod");
            }
        }
        // Per-pod files (and the shm mount) of pods without a record.
        let Ok(dirs) = std::fs::read_dir(self.cfg.pods_run_dir()) else {
            return;
        };
        for dir in dirs.flatten() {
            let id = dir.file_name().to_string_lossy().into_owned();
            if self.state.pod(&id).is_ok() {
                continue;
            }
            let files = crate::sandbox::files::PodFiles::new(dir.path());
            match crate::sandbox::files::remove_dir(&files) {
                Ok(()) => tracing::info!(pod = %id, "files of a removed pod deleted"),
                Err(e) => tracing::warn!(pod = %id, error = %e, "delete files of a removed pod"),
            }
        }
    }

    async fn pod_alive(&self, rec: &PodRecord) -> bool {
        let ns_ok = [
            &rec.namespaces.net,
            &rec.namespaces.ipc,
            &rec.namespaces.uts,
        ]
        .into_iter()
        .flatten()
        .all(|p| p.exists());
        let infra_ok = match &rec.infra_id {
            None => true,
            Some(infra) => match self.runtime(&rec.runtime_handler) {
                Ok(rt) => {
                    matches!(rt.state(infra).await, Ok(Some(st)) if st.status == RtStatus::Running)
                }
                Err(_) => false,
            },
        };
        ns_ok && infra_ok
    }

    async fn cleanup_container(&self, rec: &ContainerRecord) {
        tracing::info!(container = %rec.id, stage = ?rec.stage, "cleaning up interrupted container");
        if let Ok(rt) = self.runtime(&rec.runtime_handler) {
            let _ = rt
                .stop(&rec.id, std::time::Duration::ZERO, libc::SIGKILL)
                .await;
        }
        if let Err(e) = self.finish_container_removal(rec).await {
            tracing::warn!(container = %rec.id, error = %e, "cleanup of interrupted container");
        }
    }

    async fn reconcile_container(self: &Arc<Self>, mut rec: ContainerRecord) {
        let rt = match self.runtime(&rec.runtime_handler) {
            Ok(rt) => rt,
            Err(e) => {
                rec.state = ContainerState::Unknown;
                rec.message = e.to_string();
                self.state.insert_container(rec);
                return;
            }
        };
        let mut watch = None;
        if matches!(rec.state, ContainerState::Running | ContainerState::Created) {
            let exit = rt.exit_info(&rec.id).await.ok().flatten();
            let st = rt.state(&rec.id).await.ok().flatten();
            match (exit, st) {
                (Some(info), _)
                    if rec.state == ContainerState::Running
                        || info.code != 0
                        || rec.started_at != 0 =>
                {
                    rec.state = ContainerState::Exited;
                    rec.exit_code = info.code;
                    rec.finished_at = info.finished_at;
                    rec.oom_killed = info.oom;
                    rec.pid = 0;
                }
                (_, Some(st)) if matches!(st.status, RtStatus::Running | RtStatus::Paused) => {
                    rec.state = ContainerState::Running;
                    rec.pid = st.pid;
                    watch = Some(st.pid);
                }
                (_, Some(st)) if st.status == RtStatus::Created => {}
                (None, _) if rec.state == ContainerState::Running => {
                    // Ended just now: the monitor may still be writing its record.
                    match rt
                        .wait_exit(&rec.id, std::time::Duration::from_secs(5))
                        .await
                    {
                        Ok(info) => {
                            rec.state = ContainerState::Exited;
                            rec.exit_code = info.code;
                            rec.finished_at = info.finished_at;
                            rec.oom_killed = info.oom;
                            rec.pid = 0;
                        }
                        Err(e) => {
                            rec.state = ContainerState::Unknown;
                            rec.message = format!("the container ended while crius was down and left no exit record: {e}");
                        }
                    }
                }
                _ => {
                    rec.state = ContainerState::Unknown;
                    rec.message = "the runtime lost the container while crius was down".into();
                }
            }
            let _ = self.save_container(&rec);
        }
        let id = rec.id.clone();
        self.state.insert_container(rec);
        if let Some(pid) = watch {
            self.watch_exit(id, pid);
        }
    }
}
