//! Containers: create (spec, bundle, rootfs, runtime under the monitor), start, stop, remove,
//! exec, status, and exit tracking.

pub mod cleanup;
pub mod exec;
pub mod exit;
pub mod spec;
pub mod status;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_cri::v1 as cri;

use crate::backend::{CreateOpts, ExitInfo, SpecInput};
use crate::error::{Context, Error, Result};
use crate::service::Crius;
use crate::state::{new_id, now_ns, ContainerRecord, ContainerState, Entry, Kind, PodState, Stage};
use crate::undo::Undo;

/// Checks a container config; the error names the missing field.
pub fn validate_container_config(
    config: Option<&cri::ContainerConfig>,
) -> Result<(&cri::ContainerMetadata, &str)> {
    let config = config.ok_or_else(|| Error::InvalidArgument("config is required".into()))?;
    let md = config
        .metadata
        .as_ref()
        .ok_or_else(|| Error::InvalidArgument("config.metadata is required".into()))?;
    if md.name.is_empty() {
        return Err(Error::InvalidArgument(
            "config.metadata.name is required".into(),
        ));
    }
    let image = config
        .image
        .as_ref()
        .map(|i| i.image.as_str())
        .unwrap_or("");
    if image.is_empty() {
        return Err(Error::InvalidArgument(
            "config.image.image is required".into(),
        ));
    }
    Ok((md, image))
}

fn remove_dir(p: &std::path::Path) -> Result<()> {
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::internal(format!("remove {}", p.display()), e)),
    }
}

impl Crius {
    /// CreateContainer.
    pub async fn create_container(
        self: &Arc<Self>,
        pod_id: &str,
        config: Option<cri::ContainerConfig>,
    ) -> Result<String> {
        let (md, image_name) = validate_container_config(config.as_ref())?;
        let (md, image_name) = (md.clone(), image_name.to_string());
        let config = config.unwrap_or_default();
        let pod_entry = self.state.pod(pod_id)?;
        let pod = pod_entry.get();
        if pod.state != PodState::Ready {
            return Err(Error::FailedPrecondition(format!(
                "pod sandbox {} is not ready",
                pod.id
            )));
        }
        let pmd = pod.metadata();
        let id = new_id();
        let name = format!(
            "k8s_{}_{}_{}_{}_{}",
            md.name, pmd.name, pmd.namespace, pmd.uid, md.attempt
        );
        self.state.reserve_name(&name, &id)?.commit();
        let mut undo = Undo::new();
        {
            let c = self.clone();
            let name = name.clone();
            undo.push("release container name", async move {
                c.state.release_name(&name);
                Ok(())
            });
        }
        // The pod lock keeps the pod ready (no concurrent stop) while the container is made.
        let _pod_op = pod_entry.op.lock().await;
        let res = async {
            if pod_entry.get().state != PodState::Ready || self.state.pod(&pod.id).is_err() {
                return Err(Error::FailedPrecondition(format!(
                    "pod sandbox {} is not ready",
                    pod.id
                )));
            }
            let config = self
                .nri_create_container(&mut undo, &pod_entry.get(), &id, config)
                .await?;
            self.make_container(
                &mut undo,
                &pod_entry.get(),
                id.clone(),
                name,
                config,
                &image_name,
            )
            .await
        }
        .await;
        match res {
            Ok(rec) => {
                undo.commit();
                self.state.insert_container(rec);
                self.nri_post_create_container(&id).await;
                self.emit(&id, &pod.id, cri::ContainerEventType::ContainerCreatedEvent);
                tracing::info!(container = %id, pod = %pod.id, "container created");
                Ok(id)
            }
            Err(e) => {
                undo.rollback().await;
                Err(e.context(format!("create container {:?}", md.name)))
            }
        }
    }

    async fn make_container(
        self: &Arc<Self>,
        undo: &mut Undo,
        pod: &crate::state::PodRecord,
        id: String,
        name: String,
        config: cri::ContainerConfig,
        image_name: &str,
    ) -> Result<ContainerRecord> {
        let image = self
            .be
            .images
            .status(image_name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("image {image_name:?} not found")))?;
        let image_cfg = self.be.images.config(&image.id).await?;
        let log_path = if pod.config.log_directory.is_empty() || config.log_path.is_empty() {
            String::new()
        } else {
            PathBuf::from(&pod.config.log_directory)
                .join(&config.log_path)
                .to_string_lossy()
                .into_owned()
        };
        let bundle = self.cfg.bundles_dir().join(&id);
        let mut rec = ContainerRecord {
            id: id.clone(),
            pod_id: pod.id.clone(),
            name,
            stage: Stage::Creating,
            state: ContainerState::Created,
            config,
            image_id: image.id.clone(),
            image_ref: image.image_ref(),
            runtime_handler: pod.runtime_handler.clone(),
            bundle: bundle.clone(),
            log_path: log_path.clone(),
            created_at: now_ns(),
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            oom_killed: false,
            message: String::new(),
            stop_signal: libc::SIGTERM,
            user: None,
            pid: 0,
            rootfs_mounted: false,
            image_volumes: Vec::new(),
            resources: None,
        };
        let t0 = std::time::Instant::now();
        let phase = |what: &str| {
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            tracing::debug!(container = %id, ms, "create container: {what} done");
        };
        // 1. Record first: in place before anything is made (a daemon crash from here on
        // is rolled back at the next start), durable before anything that outlives a reboot.
        self.state
            .store
            .put_unsynced(Kind::Container, &rec.id, &rec)?;
        {
            let c = self.clone();
            let id = id.clone();
            undo.push("delete container record", async move {
                c.state.store.delete(Kind::Container, &id)
            });
        }
        // 2. The monitor, started while the record's fsyncs run: it waits on its start pipe
        // until the bundle is complete, so its start-up overlaps the rootfs and the spec. What
        // it needs first is volatile (bundle and persist dirs under the runroot) or the
        // kubelet's (the log directory).
        {
            let bundle = bundle.clone();
            undo.push("remove bundle", async move { remove_dir(&bundle) });
        }
        std::fs::create_dir_all(&bundle).ctx(format!("create bundle {}", bundle.display()))?;
        if !log_path.is_empty() {
            if let Some(dir) = std::path::Path::new(&log_path).parent() {
                std::fs::create_dir_all(dir).ctx(format!("create log dir {}", dir.display()))?;
            }
        }
        let rt = self.runtime(&rec.runtime_handler)?;
        {
            let rt = rt.clone();
            let id = id.clone();
            undo.push("runtime delete", async move {
                rt.stop(&id, Duration::ZERO, libc::SIGKILL).await.ok();
                rt.delete(&id).await
            });
        }
        let opts = CreateOpts {
            id: id.clone(),
            bundle: bundle.clone(),
            log_path: (!log_path.is_empty()).then(|| PathBuf::from(&log_path)),
            stdin: rec.config.stdin,
            stdin_once: rec.config.stdin_once,
            tty: rec.config.tty,
        };
        let sync = {
            let store = self.state.store.clone();
            let id = id.clone();
            tokio::task::spawn_blocking(move || store.sync(Kind::Container, &id))
        };
        let (synced, pending) = tokio::join!(sync, rt.spawn_create(&opts));
        synced.map_err(|e| Error::internal("fsync container record", e))??;
        // Dropped on any error below: the monitor is killed before it creates anything.
        let pending = pending?;
        phase("record and monitor spawn");
        // 3. Rootfs.
        {
            let c = self.clone();
            let id = id.clone();
            undo.push("unmount rootfs", async move {
                c.be.images.unmount_rootfs(&id).await
            });
        }
        // No save here: a Creating record already makes recovery unmount the rootfs, and the
        // flag is written with the Created record below (one durable write less per create).
        rec.rootfs_mounted = true;
        let rootfs = self.mount_pod_rootfs(pod, &image.id, &id).await?;
        phase("rootfs");
        // 4. Spec.
        let (pod_pid_ns, target_pid_ns) = match self.pid_ns(&rec.config, pod)? {
            spec::PidNs::Join(p)
                if spec::pid_mode(&rec.config, pod) == cri::NamespaceMode::Target as i32 =>
            {
                (None, Some(p.into()))
            }
            spec::PidNs::Join(p) => (Some(p.into()), None),
            _ => (None, None),
        };
        // Image volumes: a read-only view of another image, mounted from the image store.
        let mut spec_config = rec.config.clone();
        for (i, m) in spec_config.mounts.iter_mut().enumerate() {
            let Some(img) = m.image.take().filter(|s| !s.image.is_empty()) else {
                continue;
            };
            if !m.readonly {
                return Err(Error::InvalidArgument(format!(
                    "mounts[{i}]: an image volume must be read-only"
                )));
            }
            let info = self.be.images.status(&img.image).await?.ok_or_else(|| {
                Error::NotFound(format!("mounts[{i}]: image {:?} not found", img.image))
            })?;
            let vol = format!("{id}-imgvol-{i}");
            {
                let c = self.clone();
                let vol = vol.clone();
                undo.push("unmount image volume", async move {
                    c.be.images.unmount_rootfs(&vol).await
                });
            }
            rec.image_volumes.push(vol.clone());
            // ContainerStatus reports the image the volume resolved to (ImageSpec.image_ref).
            if let Some(spec) = rec.config.mounts.get_mut(i).and_then(|m| m.image.as_mut()) {
                spec.image_ref = info.id.clone();
            }
            self.save_container(&rec)?;
            let root = self.mount_pod_rootfs(pod, &info.id, &vol).await?;
            m.host_path = image_sub_path(&root, &m.image_sub_path, &img.image)
                .map_err(|e| Error::InvalidArgument(format!("mounts[{i}].image_sub_path: {e}")))?
                .to_string_lossy()
                .into_owned();
        }
        let gen = self.be.spec.container_spec(&SpecInput {
            id: &id,
            config: &spec_config,
            pod,
            image: &image_cfg,
            image_name,
            rootfs: &rootfs,
            bundle: &bundle,
            pod_pid_ns,
            target_pid_ns,
            log_path: (!log_path.is_empty()).then(|| PathBuf::from(&log_path)),
        })?;
        rec.stop_signal = gen.stop_signal;
        rec.user = gen.user;
        let json = serde_json::to_value(&gen.spec).ctx("encode spec")?;
        let data = serde_json::to_vec_pretty(&json).ctx("encode spec")?;
        crate::state::store::write_atomic_volatile(&bundle.join("config.json"), &data)?;
        phase("spec");
        // 5. Runtime create under the monitor.
        rec.pid = pending.start().await?;
        phase("runtime create");
        rec.stage = Stage::Created;
        // Without the directory fsync: after a machine crash the record may be the `Creating`
        // one again, which recovery rolls back (the container died with the machine anyway).
        self.update_container(&rec)?;
        phase("created record");
        Ok(rec)
    }

    fn pid_ns(
        &self,
        config: &cri::ContainerConfig,
        pod: &crate::state::PodRecord,
    ) -> Result<spec::PidNs> {
        let mode = spec::pid_mode(config, pod);
        Ok(if mode == cri::NamespaceMode::Node as i32 {
            spec::PidNs::Host
        } else if mode == cri::NamespaceMode::Pod as i32 {
            match pod.infra_pid {
                Some(pid) => spec::PidNs::Join(format!("/proc/{pid}/ns/pid")),
                None => spec::PidNs::Private,
            }
        } else if mode == cri::NamespaceMode::Target as i32 {
            let target = spec::pid_target(config).ok_or_else(|| {
                Error::InvalidArgument("namespace_options.target_id is required for TARGET".into())
            })?;
            let t = self.state.container(&target)?.get();
            if t.state != ContainerState::Running || t.pid == 0 {
                return Err(Error::FailedPrecondition(format!(
                    "target container {target} is not running"
                )));
            }
            spec::PidNs::Join(format!("/proc/{}/ns/pid", t.pid))
        } else {
            spec::PidNs::Private
        })
    }

    /// StartContainer.
    pub async fn start_container(self: &Arc<Self>, id: &str) -> Result<()> {
        let entry = self.state.container(id)?;
        let _op = entry.op.lock().await;
        let mut rec = entry.get();
        if rec.state != ContainerState::Created {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not in created state",
                rec.id
            )));
        }
        let rt = self.runtime(&rec.runtime_handler)?;
        self.nri_start_container(&rec).await?;
        if let Err(e) = rt.start(&rec.id).await {
            rec.state = ContainerState::Exited;
            rec.finished_at = now_ns();
            rec.exit_code = 128;
            rec.message = e.to_string();
            self.update_container(&rec)?;
            entry.set(rec);
            return Err(e.context("start container"));
        }
        rec.state = ContainerState::Running;
        rec.started_at = now_ns();
        // The init pid comes from create; ask the runtime only when it was not known.
        if rec.pid == 0 {
            if let Ok(Some(st)) = rt.state(&rec.id).await {
                rec.pid = st.pid;
            }
        }
        self.update_container(&rec)?;
        entry.set(rec.clone());
        self.emit(
            &rec.id,
            &rec.pod_id,
            cri::ContainerEventType::ContainerStartedEvent,
        );
        self.watch_exit(rec.id.clone(), rec.pid);
        self.nri_post_start_container(&rec).await;
        Ok(())
    }

    /// StopContainer (timeout in seconds). Stopping a stopped or unknown container succeeds.
    pub async fn stop_container(self: &Arc<Self>, id: &str, timeout: i64) -> Result<()> {
        let entry = match self.state.container(id) {
            Ok(e) => e,
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        self.stop_container_entry(&entry, timeout).await
    }

    /// Stops one container under its lock.
    pub async fn stop_container_entry(
        self: &Arc<Self>,
        entry: &Arc<Entry<ContainerRecord>>,
        timeout: i64,
    ) -> Result<()> {
        let _op = entry.op.lock().await;
        let rec = entry.get();
        if !matches!(rec.state, ContainerState::Running | ContainerState::Created) {
            return Ok(());
        }
        let rt = self.runtime(&rec.runtime_handler)?;
        let (timeout, signal) = match rec.state {
            ContainerState::Created => (Duration::ZERO, libc::SIGKILL),
            _ => (Duration::from_secs(timeout.max(0) as u64), rec.stop_signal),
        };
        // The init pid from create: no runtime state process to find it again.
        let stopped = if rec.pid > 0 {
            let created = rec.state == ContainerState::Created;
            rt.stop_known(&rec.id, rec.pid, created, timeout, signal)
                .await
        } else {
            rt.stop(&rec.id, timeout, signal).await
        };
        stopped.map_err(|e| e.context(format!("stop container {}", rec.id)))?;
        let info = match rt.exit_info(&rec.id).await? {
            Some(i) => i,
            None => ExitInfo {
                code: 128 + libc::SIGKILL,
                finished_at: now_ns(),
                oom: false,
            },
        };
        self.mark_exited(entry, info);
        self.nri_container_stopped(&entry.get()).await;
        Ok(())
    }

    /// Records that a container ended (once: later calls are no-ops) and emits STOPPED.
    pub fn mark_exited(&self, entry: &Arc<Entry<ContainerRecord>>, info: ExitInfo) {
        let res = entry.update(
            |r| {
                if !matches!(r.state, ContainerState::Running | ContainerState::Created) {
                    return false;
                }
                r.state = ContainerState::Exited;
                r.exit_code = info.code;
                r.finished_at = if info.finished_at > 0 {
                    info.finished_at
                } else {
                    now_ns()
                };
                r.oom_killed = info.oom;
                r.pid = 0;
                true
            },
            |r| self.update_container(r),
        );
        match res {
            Ok(Some(r)) => {
                tracing::info!(container = %r.id, code = r.exit_code, "container exited");
                self.emit(
                    &r.id,
                    &r.pod_id,
                    cri::ContainerEventType::ContainerStoppedEvent,
                );
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "record container exit"),
        }
    }

    /// RemoveContainer: stops it first if running. Removing an unknown container succeeds.
    ///
    /// Answers once the removal is durable (the `Removing` record, which the next start
    /// finishes if need be) and the container is gone from List/Status with its name free; the
    /// runtime delete, rootfs and bundle removal and the record's deletion finish in the
    /// background ([`cleanup::Cleanups`]).
    pub async fn remove_container(self: &Arc<Self>, id: &str) -> Result<()> {
        let entry = match self.state.container(id) {
            Ok(e) => e,
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        self.stop_container_entry(&entry, 0).await?;
        let _op = entry.op.lock().await;
        let Some(rec) = self.mark_removing(&entry)? else {
            return Ok(()); // removed while we waited
        };
        // Registered before the container leaves the index: whoever no longer sees it (a pod
        // removal) sees its pending cleanup.
        let guard = self.cleanups.begin(&rec.id, &rec.pod_id);
        self.state.forget_container(&rec.id);
        self.state.release_name_of(&rec.name, &rec.id);
        {
            let c = self.clone();
            let rec = rec.clone();
            tokio::spawn(async move {
                let _guard = guard;
                let t0 = std::time::Instant::now();
                match c.finish_container_removal(&rec).await {
                    Ok(()) => tracing::debug!(
                        container = %rec.id,
                        ms = t0.elapsed().as_secs_f64() * 1e3,
                        "container cleaned up"
                    ),
                    Err(e) => tracing::warn!(
                        container = %rec.id,
                        error = %e,
                        "container cleanup failed; the next start finishes it"
                    ),
                }
            });
        }
        self.removed(&rec).await;
        Ok(())
    }

    /// Removes one container and waits for the whole removal (stop, runtime delete, rootfs,
    /// bundle, record, name): RemovePodSandbox, which removes the pod's cgroup after.
    pub async fn remove_container_entry(
        self: &Arc<Self>,
        entry: &Arc<Entry<ContainerRecord>>,
    ) -> Result<()> {
        self.stop_container_entry(entry, 0).await?;
        let _op = entry.op.lock().await;
        let Some(rec) = self.mark_removing(entry)? else {
            return Ok(()); // removed while we waited
        };
        self.finish_container_removal(&rec).await?;
        self.state.forget_container(&rec.id);
        self.removed(&rec).await;
        Ok(())
    }

    /// Writes the `Removing` record (the removal's point of no return, which recovery
    /// finishes); `None` when the container left the index meanwhile. Call under the op lock.
    fn mark_removing(
        &self,
        entry: &Arc<Entry<ContainerRecord>>,
    ) -> Result<Option<ContainerRecord>> {
        let mut rec = entry.get();
        if self.state.container(&rec.id).is_err() {
            return Ok(None);
        }
        if rec.stage != Stage::Removing {
            rec.stage = Stage::Removing;
            self.save_container(&rec)?;
            entry.set(rec.clone());
        }
        Ok(Some(rec))
    }

    /// What follows a removal: NRI, the DELETED event, the log line.
    async fn removed(&self, rec: &ContainerRecord) {
        self.nri_remove_container(rec).await;
        self.emit(
            &rec.id,
            &rec.pod_id,
            cri::ContainerEventType::ContainerDeletedEvent,
        );
        tracing::info!(container = %rec.id, "container removed");
    }

    /// The removal steps after the stop (also used at startup for interrupted work).
    pub async fn finish_container_removal(&self, rec: &ContainerRecord) -> Result<()> {
        let rt = self.runtime(&rec.runtime_handler)?;
        rt.delete(&rec.id).await?;
        self.be.images.unmount_rootfs(&rec.id).await?;
        for vol in &rec.image_volumes {
            self.be.images.unmount_rootfs(vol).await?;
        }
        remove_dir(&rec.bundle)?;
        self.state.store.delete(Kind::Container, &rec.id)?;
        self.state.release_name_of(&rec.name, &rec.id);
        Ok(())
    }

    /// ContainerStatus (refreshes a running container's exit first).
    pub async fn container_status(
        self: &Arc<Self>,
        id: &str,
        verbose: bool,
    ) -> Result<cri::ContainerStatusResponse> {
        let entry = self.state.container(id)?;
        self.refresh(&entry).await;
        let rec = entry.get();
        let info = if verbose {
            let spec = std::fs::read(rec.bundle.join("config.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            status::verbose_info(&rec, spec)
        } else {
            Default::default()
        };
        Ok(cri::ContainerStatusResponse {
            status: Some(status::container_status(&rec)),
            info,
        })
    }

    /// Checks the exit record of a running container.
    pub async fn refresh(&self, entry: &Arc<Entry<ContainerRecord>>) {
        let rec = entry.get();
        if rec.state != ContainerState::Running {
            return;
        }
        if let Ok(rt) = self.runtime(&rec.runtime_handler) {
            if let Ok(Some(info)) = rt.exit_info(&rec.id).await {
                self.mark_exited(entry, info);
            }
        }
    }

    /// ListContainers.
    pub fn list_containers(&self, filter: Option<cri::ContainerFilter>) -> Vec<cri::Container> {
        let f = filter.unwrap_or_default();
        // Sort the (small) matching entries, then build the (large) items in order: no record
        // is copied and no item is moved by the sort.
        let mut v: Vec<_> = self
            .state
            .containers()
            .into_iter()
            .filter_map(|e| {
                e.read(|r| status::matches(r, &f).then_some(r.created_at))
                    .map(|t| (t, e))
            })
            .collect();
        v.sort_by_key(|(t, _)| *t);
        v.iter()
            .map(|(_, e)| e.read(status::container_item))
            .collect()
    }

    /// A running container's record, else FailedPrecondition.
    pub async fn running(&self, id: &str) -> Result<ContainerRecord> {
        let entry = self.state.container(id)?;
        self.refresh(&entry).await;
        let rec = entry.get();
        if rec.state != ContainerState::Running {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                rec.id
            )));
        }
        Ok(rec)
    }

    /// ExecSync (timeout in seconds, 0 = none).
    pub async fn exec_sync(
        self: &Arc<Self>,
        id: &str,
        cmd: Vec<String>,
        timeout: i64,
    ) -> Result<cri::ExecSyncResponse> {
        if cmd.is_empty() {
            return Err(Error::InvalidArgument("cmd is required".into()));
        }
        let rec = self.running(id).await?;
        let rt = self.runtime(&rec.runtime_handler)?;
        let t = (timeout > 0).then(|| Duration::from_secs(timeout as u64));
        let out = match rt.oci() {
            Some(oci) => exec::exec_sync(oci, &rec, cmd, t).await?,
            None => rt.exec_sync(&rec.id, &cmd, t).await?,
        };
        Ok(cri::ExecSyncResponse {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code: out.exit_code,
        })
    }

    /// UpdateContainerResources.
    pub async fn update_container_resources(
        self: &Arc<Self>,
        id: &str,
        res: Option<cri::LinuxContainerResources>,
    ) -> Result<()> {
        let entry = self.state.container(id)?;
        let _op = entry.op.lock().await;
        let mut rec = entry.get();
        let Some(res) = res else { return Ok(()) };
        if !matches!(rec.state, ContainerState::Created | ContainerState::Running) {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                rec.id
            )));
        }
        let oci = self.be.spec.linux_resources(&res)?;
        self.nri_update_container(&rec, &res).await?;
        self.runtime(&rec.runtime_handler)?
            .update(&rec.id, &oci)
            .await?;
        rec.resources = Some(res);
        self.update_container(&rec)?;
        entry.set(rec);
        Ok(())
    }

    /// ReopenContainerLog.
    pub async fn reopen_container_log(self: &Arc<Self>, id: &str) -> Result<()> {
        let rec = self.running(id).await?;
        self.runtime(&rec.runtime_handler)?
            .reopen_log(&rec.id)
            .await?;
        // The monitor reopens asynchronously (a control-fifo message): answer once the new
        // file exists, as the kubelet's log rotation expects (bounded).
        if !rec.log_path.is_empty() {
            let path = PathBuf::from(&rec.log_path);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while !path.exists() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if !path.exists() {
                return Err(Error::Internal(format!(
                    "container {}: the monitor did not reopen {}",
                    rec.id, rec.log_path
                )));
            }
        }
        Ok(())
    }
}

/// The directory of an image volume to bind: the image's root, or `sub_path` inside it. The
/// sub path is relative (a leading `/` is ignored), has no `..`, is resolved with every symlink
/// kept inside the image, and must exist.
fn image_sub_path(
    root: &Path,
    sub_path: &str,
    image: &str,
) -> std::result::Result<PathBuf, String> {
    let rel = sub_path.trim_start_matches('/');
    if rel.is_empty() {
        return Ok(root.to_path_buf());
    }
    if Path::new(rel)
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(format!("{sub_path:?} must not contain \"..\""));
    }
    let target = crius_spec::resolve_in_root(root, Path::new(rel))
        .map_err(|e| format!("{sub_path:?} in image {image:?}: {e}"))?;
    if !target.exists() {
        return Err(format!("{sub_path:?} does not exist in image {image:?}"));
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_sub_paths_stay_inside_the_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc/conf")).expect("mkdir");
        std::os::unix::fs::symlink("/etc", root.join("abs")).expect("symlink");
        std::os::unix::fs::symlink("../../..", root.join("etc/up")).expect("symlink");
        assert_eq!(image_sub_path(root, "", "i").expect("root"), root);
        assert_eq!(
            image_sub_path(root, "/etc/conf", "i").expect("abs"),
            root.join("etc/conf")
        );
        // An absolute symlink is resolved inside the image, not on the host.
        assert_eq!(
            image_sub_path(root, "abs/conf", "i").expect("link"),
            root.join("etc/conf")
        );
        // A symlink climbing out lands on the image root.
        assert_eq!(image_sub_path(root, "etc/up", "i").expect("up"), root);
        let e = image_sub_path(root, "../etc", "i").expect_err("dotdot");
        assert!(e.contains(".."), "{e}");
        let e = image_sub_path(root, "missing", "i").expect_err("missing");
        assert!(e.contains("does not exist"), "{e}");
    }
}
