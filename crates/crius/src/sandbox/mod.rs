//! Pod sandboxes: pinned namespaces (no infra process unless the pod shares a PID namespace),
//! pod files, CNI, and their lifecycle.

pub mod cgroup;
pub mod files;
pub mod infra;
pub mod status;
pub mod userns;

use std::sync::Arc;

use k8s_cri::v1 as cri;

use crate::backend::{NsWanted, PodNetwork};
use crate::error::{Error, Result};
use crate::service::Crius;
use crate::state::{new_id, now_ns, Entry, Kind, PodRecord, PodState, Stage};
use crate::undo::Undo;
use files::PodFiles;

/// Whether a pod is fully stopped: not ready, and no infra process, network, namespace pin
/// or shm mount left (what StopPodSandbox leaves; the infra container itself is deleted in the
/// background, see `stop_pod_locked`).
fn is_stopped(rec: &PodRecord) -> bool {
    rec.state == PodState::NotReady
        && rec.infra_pid.is_none()
        && !rec.network_attached
        && rec.namespaces == Default::default()
        && !rec.shm_mounted
}

/// Checks a pod config's metadata; the error names the missing field.
pub fn validate_pod_config(
    config: Option<&cri::PodSandboxConfig>,
) -> Result<&cri::PodSandboxMetadata> {
    let config = config.ok_or_else(|| Error::InvalidArgument("config is required".into()))?;
    let md = config
        .metadata
        .as_ref()
        .ok_or_else(|| Error::InvalidArgument("config.metadata is required".into()))?;
    for (field, v) in [
        ("name", &md.name),
        ("namespace", &md.namespace),
        ("uid", &md.uid),
    ] {
        if v.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "config.metadata.{field} is required"
            )));
        }
    }
    Ok(md)
}

fn host_hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl PodRecord {
    /// The pod's files.
    pub fn files(&self) -> PodFiles {
        PodFiles::new(self.run_dir.clone())
    }

    /// The pod's hostname.
    pub fn hostname(&self) -> String {
        if self.host_network() || self.config.hostname.is_empty() {
            host_hostname()
        } else {
            self.config.hostname.clone()
        }
    }

    /// What CNI needs for this pod.
    pub fn pod_network(&self) -> Option<PodNetwork> {
        let md = self.metadata();
        Some(PodNetwork {
            id: self.id.clone(),
            name: md.name,
            namespace: md.namespace,
            uid: md.uid,
            netns: self.namespaces.net.clone()?,
            port_mappings: self.config.port_mappings.clone(),
            dns: self.config.dns_config.clone(),
        })
    }
}

impl Crius {
    /// RunPodSandbox: everything is recorded before it is made and undone on failure.
    pub async fn run_pod_sandbox(
        self: &Arc<Self>,
        config: Option<cri::PodSandboxConfig>,
        handler: String,
    ) -> Result<String> {
        let md = validate_pod_config(config.as_ref())?.clone();
        let config = config.unwrap_or_default();
        self.runtime(&handler)?;
        self.be.spec.validate_pod(&config)?;
        let handler = if handler.is_empty() {
            self.cfg.default_runtime.clone()
        } else {
            handler
        };
        let id = new_id();
        let name = format!(
            "k8s_POD_{}_{}_{}_{}",
            md.name, md.namespace, md.uid, md.attempt
        );
        self.state.reserve_name(&name, &id)?.commit();
        let mut undo = Undo::new();
        {
            let c = self.clone();
            let name = name.clone();
            undo.push("release pod name", async move {
                c.state.release_name(&name);
                Ok(())
            });
        }
        let res = self
            .make_pod(&mut undo, id.clone(), name, config, handler)
            .await;
        let res = match res {
            Ok(rec) => self.nri_run_pod_sandbox(&rec).await.map(|()| rec),
            Err(e) => Err(e),
        };
        match res {
            Ok(rec) => {
                undo.commit();
                self.state.insert_pod(rec);
                self.emit(&id, &id, cri::ContainerEventType::ContainerCreatedEvent);
                self.emit(&id, &id, cri::ContainerEventType::ContainerStartedEvent);
                tracing::info!(pod = %id, "pod sandbox ready");
                Ok(id)
            }
            Err(e) => {
                undo.rollback().await;
                Err(e.context("run pod sandbox"))
            }
        }
    }

    async fn make_pod(
        self: &Arc<Self>,
        undo: &mut Undo,
        id: String,
        name: String,
        config: cri::PodSandboxConfig,
        handler: String,
    ) -> Result<PodRecord> {
        // The user namespace request is checked before anything is made.
        let user = userns::pod_mappings(&config)?;
        if user.is_some() {
            if !userns::supported(self) {
                return Err(Error::FailedPrecondition(
                    "user namespaces are not supported here (no idmapped mounts on the image store)"
                        .into(),
                ));
            }
            userns::ensure_traversable(self)?;
        }
        let cgroup_parent = config
            .linux
            .as_ref()
            .map(|l| l.cgroup_parent.clone())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| self.cfg.cgroup_parent.clone());
        let mut rec = PodRecord {
            id: id.clone(),
            name,
            stage: Stage::Creating,
            state: PodState::NotReady,
            created_at: now_ns(),
            config,
            runtime_handler: handler,
            namespaces: Default::default(),
            ips: Vec::new(),
            network_attached: false,
            run_dir: self.cfg.pods_run_dir().join(&id),
            shm_mounted: false,
            cgroup_parent,
            infra_id: None,
            infra_pid: None,
            created_cgroup_dirs: Vec::new(),
        };
        rec.created_cgroup_dirs = cgroup::missing_dirs(
            std::path::Path::new(cgroup::CGROUP_ROOT),
            &rec.cgroup_parent,
            &self.cfg.cgroup_parent,
        );
        let ns = rec.ns_options();
        let host_net = ns.network == cri::NamespaceMode::Node as i32;
        let host_ipc = ns.ipc == cri::NamespaceMode::Node as i32;
        let shared_pid = ns.pid == cri::NamespaceMode::Pod as i32;
        // Everything below is named up front (namespace pins and the CNI cache go by the pod
        // ID, the infra container by an ID chosen now), so that one durable record written
        // before anything is made lets a restart after a crash remove all of it: no record
        // write between the steps.
        rec.network_attached = !host_net;
        if shared_pid {
            rec.infra_id = Some(new_id());
        }
        let t0 = std::time::Instant::now();
        let phase = |what: &str| {
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            tracing::debug!(pod = %id, ms, "run pod sandbox: {what} done");
        };

        // 1. The record, before anything is made.
        self.save_pod(&rec)?;
        phase("record");
        {
            let c = self.clone();
            let id = id.clone();
            undo.push("delete pod record", async move {
                c.state.store.delete(Kind::Pod, &id)
            });
        }
        if !rec.created_cgroup_dirs.is_empty() {
            let dirs = rec.created_cgroup_dirs.clone();
            undo.push("remove pod cgroup parent", async move {
                cgroup::remove_dirs(&dirs);
                Ok(())
            });
        }
        // 2. Pod files and /dev/shm.
        let files = rec.files();
        {
            let files = files.clone();
            undo.push(
                "remove pod run dir",
                async move { files::remove_dir(&files) },
            );
        }
        let hostname = rec.hostname();
        files::write_base(&files, &hostname, rec.config.dns_config.as_ref(), host_net)?;
        if !host_ipc {
            files::mount_shm(&files, self.cfg.shm_size)?;
            rec.shm_mounted = true;
        }
        phase("pod files");
        // 3. Pinned namespaces.
        let want = NsWanted {
            net: !host_net,
            ipc: !host_ipc,
            uts: !host_net,
            user,
        };
        if want != NsWanted::default() {
            {
                let c = self.clone();
                let id = id.clone();
                undo.push("remove namespaces", async move {
                    c.be.network.remove_namespaces(&id).await
                });
            }
            rec.namespaces = self
                .be
                .network
                .create_namespaces(&id, &hostname, want)
                .await?;
            phase("namespaces");
        }
        // 4. CNI, and at the same time the infra container (only for a pod-shared PID
        // namespace): it joins the pinned namespaces, which CNI fills but does not replace.
        let net = rec.pod_network().filter(|_| rec.network_attached);
        if let Some(net) = &net {
            let c = self.clone();
            let net = net.clone();
            undo.push("CNI DEL", async move { c.be.network.teardown(&net).await });
        }
        if let Some(infra_id) = rec.infra_id.clone() {
            let c = self.clone();
            let handler = rec.runtime_handler.clone();
            undo.push("remove infra", async move {
                c.remove_infra(&handler, &infra_id, None).await
            });
        }
        let cni = async {
            let Some(net) = &net else {
                return Ok::<_, Error>(Vec::new());
            };
            let ips = self.be.network.setup(net).await?;
            phase("CNI ADD");
            files::write_hosts(&files, &hostname, ips.first().map(String::as_str))?;
            Ok(ips)
        };
        let infra = async {
            let Some(infra_id) = &rec.infra_id else {
                return Ok::<_, Error>(None);
            };
            let pid = self.start_infra(&rec, infra_id).await?;
            phase("infra container");
            Ok(Some(pid))
        };
        let (ips, infra_pid) = tokio::join!(cni, infra);
        rec.ips = ips?;
        rec.infra_pid = infra_pid?;
        rec.stage = Stage::Created;
        rec.state = PodState::Ready;
        self.save_pod(&rec)?;
        phase("ready record");
        Ok(rec)
    }

    /// StopPodSandbox: stops the containers, the infra, detaches CNI, unpins the namespaces.
    /// Stopping an unknown or stopped pod succeeds.
    pub async fn stop_pod_sandbox(self: &Arc<Self>, id: &str) -> Result<()> {
        let entry = match self.state.pod(id) {
            Ok(e) => e,
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let _op = entry.op.lock().await;
        self.stop_pod_locked(&entry).await
    }

    async fn stop_pod_locked(self: &Arc<Self>, entry: &Arc<Entry<PodRecord>>) -> Result<()> {
        let mut rec = entry.get();
        for c in self.state.pod_containers(&rec.id) {
            self.stop_container_entry(&c, 0).await?;
        }
        if is_stopped(&rec) {
            return Ok(()); // nothing left to stop, and nothing to save again
        }
        let was_ready = rec.state == PodState::Ready;
        if was_ready {
            self.nri_stop_pod_sandbox(&rec).await;
        }
        // The infra process is killed while CNI DEL runs: neither needs the other. CNI DEL is
        // idempotent, so the record learns that the network is gone with the final save only.
        let infra = async {
            match &rec.infra_id {
                Some(infra) => {
                    self.kill_infra(&rec.runtime_handler, infra, rec.infra_pid)
                        .await
                }
                None => Ok(()),
            }
        };
        let network = async {
            match rec.pod_network().filter(|_| rec.network_attached) {
                Some(net) => self.be.network.teardown(&net).await,
                None => Ok(()),
            }
        };
        let (infra, network) = tokio::join!(infra, network);
        infra?;
        network?;
        if let Some(infra) = rec.infra_id.clone().filter(|_| rec.infra_pid.is_some()) {
            // The runtime deletes the dead infra container after the answer (one runtime
            // process, off the stop's path). RemovePodSandbox waits for it like for its
            // containers' cleanups, then finds the bundle gone; the record keeps the infra ID,
            // so a daemon that dies first leaves the deletion to the removal.
            let guard = self.cleanups.begin(&infra, &rec.id);
            let c = self.clone();
            let handler = rec.runtime_handler.clone();
            tokio::spawn(async move {
                let _guard = guard;
                if let Err(e) = c.delete_infra(&handler, &infra).await {
                    tracing::warn!(infra = %infra, error = %e, "delete infra container; RemovePodSandbox retries");
                }
            });
        }
        rec.infra_pid = None; // the process is gone
        if rec.network_attached {
            rec.network_attached = false;
            entry.set(rec.clone());
        }
        if rec.namespaces != Default::default() {
            self.be.network.remove_namespaces(&rec.id).await?;
            rec.namespaces = Default::default();
        }
        if rec.shm_mounted {
            files::unmount_shm(&rec.files())?;
            rec.shm_mounted = false;
        }
        rec.state = PodState::NotReady;
        self.save_pod(&rec)?;
        entry.set(rec.clone());
        if was_ready {
            self.emit(
                &rec.id,
                &rec.id,
                cri::ContainerEventType::ContainerStoppedEvent,
            );
            tracing::info!(pod = %rec.id, "pod sandbox stopped");
        }
        Ok(())
    }

    /// RemovePodSandbox: removes the containers, stops the pod if needed, removes everything.
    /// Removing an unknown pod succeeds.
    pub async fn remove_pod_sandbox(self: &Arc<Self>, id: &str) -> Result<()> {
        let entry = match self.state.pod(id) {
            Ok(e) => e,
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let _op = entry.op.lock().await;
        if self.state.pod(&entry.get().id).is_err() {
            return Ok(()); // removed while we waited for the lock
        }
        for c in self.state.pod_containers(&entry.get().id) {
            self.remove_container_entry(&c).await?;
        }
        self.stop_pod_locked(&entry).await?;
        // No `Removing` record first: the stopped pod holds no process, network or mount, and
        // every step below is idempotent, so a crash before the record is deleted leaves a
        // stopped pod (still listed) that the next RemovePodSandbox finishes.
        let rec = entry.get();
        // Containers removed before (RemoveContainer) may still be cleaning up in the
        // background: their cgroups are inside the pod's.
        self.cleanups.wait_pod(&rec.id).await;
        self.remove_pod_but_files(&rec).await?;
        // The pod's files (its run directory) go after the answer: they are named by the pod
        // ID, which nothing reuses, and the next start deletes those of pods without a record
        // if the daemon dies first. Registered before the pod leaves the index, so that the
        // shutdown waits for it.
        let guard = self.cleanups.begin(&rec.id, &rec.id);
        self.state.forget_pod(&rec.id);
        {
            let files = rec.files();
            let id = rec.id.clone();
            tokio::task::spawn_blocking(move || {
                let _guard = guard;
                if let Err(e) = files::remove_dir(&files) {
                    tracing::warn!(pod = %id, error = %e, "delete pod files; the next start retries");
                }
            });
        }
        self.nri_remove_pod_sandbox(&rec).await;
        self.emit(
            &rec.id,
            &rec.id,
            cri::ContainerEventType::ContainerDeletedEvent,
        );
        tracing::info!(pod = %rec.id, "pod sandbox removed");
        Ok(())
    }

    /// The last steps of a removal (also used to clean up at startup): infra, network,
    /// namespaces, cgroup directories, record, name, then the pod's files.
    pub async fn finish_pod_removal(&self, rec: &PodRecord) -> Result<()> {
        self.remove_pod_but_files(rec).await?;
        files::remove_dir(&rec.files())
    }

    /// A removal up to the deletion of the record (its point of no return) and the release of
    /// the name: all but the pod's files, which the start sweeps for pods without a record.
    async fn remove_pod_but_files(&self, rec: &PodRecord) -> Result<()> {
        if let Some(infra) = &rec.infra_id {
            self.remove_infra(&rec.runtime_handler, infra, rec.infra_pid)
                .await?;
        }
        if rec.network_attached {
            // A pod interrupted while being made may not have its netns path yet: CNI DEL
            // goes by the pod ID (and does nothing if ADD never began).
            let net = rec.pod_network().unwrap_or_else(|| {
                let md = rec.metadata();
                PodNetwork {
                    id: rec.id.clone(),
                    name: md.name,
                    namespace: md.namespace,
                    uid: md.uid,
                    netns: Default::default(),
                    port_mappings: rec.config.port_mappings.clone(),
                    dns: rec.config.dns_config.clone(),
                }
            });
            self.be.network.teardown(&net).await?;
        }
        self.be.network.remove_namespaces(&rec.id).await?;
        // Busy directories (a cgroup still inside) are logged and left: not worth failing for.
        cgroup::remove_dirs(&rec.created_cgroup_dirs);
        self.state.store.delete(Kind::Pod, &rec.id)?;
        self.state.release_name_of(&rec.name, &rec.id);
        Ok(())
    }

    /// PodSandboxStatus.
    pub fn pod_sandbox_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<cri::PodSandboxStatusResponse> {
        let rec = self.state.pod(id)?.get();
        let containers_statuses = self
            .state
            .pod_containers(&rec.id)
            .into_iter()
            .map(|c| crate::container::status::container_status(&c.get()))
            .collect();
        Ok(cri::PodSandboxStatusResponse {
            status: Some(status::pod_status(&rec)),
            info: if verbose {
                status::verbose_info(&rec)
            } else {
                Default::default()
            },
            containers_statuses,
            timestamp: now_ns(),
        })
    }

    /// ListPodSandbox.
    pub fn list_pod_sandbox(&self, filter: Option<cri::PodSandboxFilter>) -> Vec<cri::PodSandbox> {
        let f = filter.unwrap_or_default();
        let mut v: Vec<_> = self
            .state
            .pods()
            .into_iter()
            .filter_map(|e| {
                e.read(|r| status::matches(r, &f).then_some(r.created_at))
                    .map(|t| (t, e))
            })
            .collect();
        v.sort_by_key(|(t, _)| *t);
        v.iter().map(|(_, e)| e.read(status::pod_item)).collect()
    }
}
