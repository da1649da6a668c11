//! NRI (Node Resource Interface): the daemon's side of `crius-nri`.
//!
//! The CRI calls call the `nri_*` methods below at their hook points; with NRI disabled they
//! do nothing. Pod and container records become NRI objects here, and the adjustments plugins
//! return at CreateContainer are applied to the CRI container config before the spec is
//! generated (environment, annotations, mounts, arguments).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use crius_nri::api;
use k8s_cri::v1 as cri;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::service::Crius;
use crate::state::{ContainerRecord, ContainerState, PodRecord};
use crate::undo::Undo;

/// `[nri]` in the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NriConfig {
    /// Whether to accept NRI plugins.
    pub enable: bool,
    /// The socket external plugins connect to.
    pub socket_path: PathBuf,
    /// Milliseconds a plugin has to register (and to synchronize).
    pub registration_timeout_ms: u64,
    /// Milliseconds a plugin has to answer one event before it is dropped.
    pub request_timeout_ms: u64,
}

impl Default for NriConfig {
    fn default() -> Self {
        NriConfig {
            enable: false,
            socket_path: "/var/run/nri/nri.sock".into(),
            registration_timeout_ms: crius_nri::DEFAULT_REGISTRATION_TIMEOUT.as_millis() as u64,
            request_timeout_ms: crius_nri::DEFAULT_REQUEST_TIMEOUT.as_millis() as u64,
        }
    }
}

impl NriConfig {
    /// The `[nri]` table as commented TOML.
    pub fn to_commented_toml(&self) -> String {
        let p = toml::Value::String(self.socket_path.to_string_lossy().into_owned());
        format!(
            "# NRI (Node Resource Interface): external plugins connect to socket_path.\n[nri]\nenable = {}\nsocket_path = {p}\n# Milliseconds a plugin has to register and synchronize.\nregistration_timeout_ms = {}\n# Milliseconds a plugin has to answer one event; a plugin that does not is dropped.\nrequest_timeout_ms = {}\n\n",
            self.enable, self.registration_timeout_ms, self.request_timeout_ms
        )
    }
}

/// The running NRI side of the daemon.
pub struct Nri {
    nri: crius_nri::Nri,
    /// Containers whose StopContainer event was sent (or is being sent): it goes out once,
    /// before RemoveContainer, whichever path noticed the exit first.
    stops: Mutex<HashMap<String, Arc<tokio::sync::Mutex<bool>>>>,
}

/// The daemon's pods and containers for synchronizing plugins.
struct Source(Weak<Crius>);

impl crius_nri::StateSource for Source {
    fn pods(&self) -> Vec<api::PodSandbox> {
        let Some(c) = self.0.upgrade() else {
            return Vec::new();
        };
        c.state.pods().iter().map(|e| nri_pod(&e.get())).collect()
    }

    fn containers(&self) -> Vec<api::Container> {
        let Some(c) = self.0.upgrade() else {
            return Vec::new();
        };
        c.state
            .containers()
            .iter()
            .map(|e| nri_container(&e.get()))
            .collect()
    }
}

/// Starts NRI when the configuration enables it.
pub fn start(c: &Arc<Crius>) -> Result<()> {
    let cfg = &c.cfg.nri;
    if !cfg.enable {
        return Ok(());
    }
    let mut config = crius_nri::Config::new(&cfg.socket_path);
    config.registration_timeout = Duration::from_millis(cfg.registration_timeout_ms);
    config.request_timeout = Duration::from_millis(cfg.request_timeout_ms);
    let nri = crius_nri::Nri::start(config, Arc::new(Source(Arc::downgrade(c))))
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    let _ = c.nri.set(Nri {
        nri,
        stops: Mutex::new(HashMap::new()),
    });
    Ok(())
}

fn hook_error(e: crius_nri::Error) -> Error {
    Error::Internal(e.to_string())
}

/// The NRI view of a pod.
pub fn nri_pod(rec: &PodRecord) -> api::PodSandbox {
    let md = rec.metadata();
    api::PodSandbox {
        id: rec.id.clone(),
        name: md.name,
        uid: md.uid,
        namespace: md.namespace,
        labels: rec.config.labels.clone(),
        annotations: rec.config.annotations.clone(),
        runtime_handler: rec.runtime_handler.clone(),
        linux: Some(api::LinuxPodSandbox {
            cgroup_parent: rec.cgroup_parent.clone(),
            ..Default::default()
        }),
        pid: rec.infra_pid.unwrap_or(0),
        ips: rec.ips.clone(),
    }
}

fn nri_state(s: ContainerState) -> api::ContainerState {
    match s {
        ContainerState::Created => api::ContainerState::ContainerCreated,
        ContainerState::Running => api::ContainerState::ContainerRunning,
        ContainerState::Exited => api::ContainerState::ContainerStopped,
        ContainerState::Unknown => api::ContainerState::ContainerUnknown,
    }
}

/// The NRI view of a container config (before the container exists).
fn nri_config(id: &str, pod_id: &str, config: &cri::ContainerConfig) -> api::Container {
    api::Container {
        id: id.to_string(),
        pod_sandbox_id: pod_id.to_string(),
        name: config
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default(),
        state: api::ContainerState::ContainerUnknown as i32,
        labels: config.labels.clone(),
        annotations: config.annotations.clone(),
        args: config
            .command
            .iter()
            .chain(config.args.iter())
            .cloned()
            .collect(),
        env: config
            .envs
            .iter()
            .map(|e| format!("{}={}", e.key, String::from_utf8_lossy(&e.value)))
            .collect(),
        mounts: config
            .mounts
            .iter()
            .map(|m| api::Mount {
                destination: m.container_path.clone(),
                r#type: "bind".into(),
                source: m.host_path.clone(),
                options: vec![if m.readonly { "ro" } else { "rw" }.into(), "rbind".into()],
            })
            .collect(),
        ..Default::default()
    }
}

/// The NRI view of a container.
pub fn nri_container(rec: &ContainerRecord) -> api::Container {
    api::Container {
        state: nri_state(rec.state) as i32,
        pid: rec.pid,
        created_at: rec.created_at,
        started_at: rec.started_at,
        finished_at: rec.finished_at,
        exit_code: rec.exit_code,
        status_message: rec.message.clone(),
        ..nri_config(&rec.id, &rec.pod_id, &rec.config)
    }
}

/// Applies the merged adjustment of the plugins to a CRI container config. Keys prefixed with
/// `-` remove (NRI's marking of removals).
pub fn apply_adjustment(config: &mut cri::ContainerConfig, adj: api::ContainerAdjustment) {
    for (k, v) in adj.annotations {
        match k.strip_prefix('-') {
            Some(k) => {
                config.annotations.remove(k);
            }
            None => {
                config.annotations.insert(k, v);
            }
        }
    }
    for kv in adj.env {
        match kv.key.strip_prefix('-') {
            Some(k) => config.envs.retain(|e| e.key != k),
            None => {
                config.envs.retain(|e| e.key != kv.key);
                config.envs.push(cri::KeyValue {
                    key: kv.key,
                    value: kv.value.into_bytes(),
                });
            }
        }
    }
    for m in adj.mounts {
        match m.destination.strip_prefix('-') {
            Some(d) => config.mounts.retain(|x| x.container_path != d),
            None => {
                config.mounts.retain(|x| x.container_path != m.destination);
                config.mounts.push(cri::Mount {
                    container_path: m.destination,
                    host_path: m.source,
                    readonly: m.options.iter().any(|o| o == "ro"),
                    ..Default::default()
                });
            }
        }
    }
    if !adj.args.is_empty() {
        config.command = adj.args;
        config.args.clear();
    }
    if adj.hooks.is_some() || adj.linux.is_some() || !adj.rlimits.is_empty() {
        tracing::warn!("nri: hook, linux and rlimit adjustments are not applied");
    }
}

fn nri_resources(r: &cri::LinuxContainerResources) -> api::LinuxResources {
    let i64v = |v: i64| (v != 0).then_some(api::OptionalInt64 { value: v });
    api::LinuxResources {
        memory: Some(api::LinuxMemory {
            limit: i64v(r.memory_limit_in_bytes),
            swap: i64v(r.memory_swap_limit_in_bytes),
            ..Default::default()
        }),
        cpu: Some(api::LinuxCpu {
            shares: (r.cpu_shares != 0).then_some(api::OptionalUInt64 {
                value: r.cpu_shares as u64,
            }),
            quota: i64v(r.cpu_quota),
            period: (r.cpu_period != 0).then_some(api::OptionalUInt64 {
                value: r.cpu_period as u64,
            }),
            cpus: r.cpuset_cpus.clone(),
            mems: r.cpuset_mems.clone(),
            ..Default::default()
        }),
        unified: r.unified.clone(),
        ..Default::default()
    }
}

impl Crius {
    fn nri_on(&self) -> Option<&Nri> {
        self.nri.get()
    }

    fn nri_pod_of(&self, pod_id: &str) -> api::PodSandbox {
        match self.state.pod(pod_id) {
            Ok(p) => nri_pod(&p.get()),
            Err(_) => api::PodSandbox {
                id: pod_id.to_string(),
                ..Default::default()
            },
        }
    }

    /// RunPodSandbox hook: the pod is made but not yet listed. An error fails the call.
    pub async fn nri_run_pod_sandbox(&self, rec: &PodRecord) -> Result<()> {
        let Some(n) = self.nri_on() else {
            return Ok(());
        };
        n.nri
            .run_pod_sandbox(&nri_pod(rec))
            .await
            .map_err(hook_error)
    }

    /// StopPodSandbox hook: the containers are stopped, the pod is still there. Errors are
    /// logged (a stop cannot be refused).
    pub async fn nri_stop_pod_sandbox(&self, rec: &PodRecord) {
        let Some(n) = self.nri_on() else { return };
        if let Err(e) = n.nri.stop_pod_sandbox(&nri_pod(rec)).await {
            tracing::warn!(pod = %rec.id, error = %e, "nri: StopPodSandbox");
        }
    }

    /// RemovePodSandbox hook, after the removal.
    pub async fn nri_remove_pod_sandbox(&self, rec: &PodRecord) {
        let Some(n) = self.nri_on() else { return };
        if let Err(e) = n.nri.remove_pod_sandbox(&nri_pod(rec)).await {
            tracing::warn!(pod = %rec.id, error = %e, "nri: RemovePodSandbox");
        }
    }

    /// CreateContainer hook, before anything of the container is made: returns the config
    /// with the plugins' adjustments applied. An error fails the call; a later failure of the
    /// create sends RemoveContainer (through `undo`).
    pub async fn nri_create_container(
        self: &Arc<Self>,
        undo: &mut Undo,
        pod: &PodRecord,
        id: &str,
        mut config: cri::ContainerConfig,
    ) -> Result<cri::ContainerConfig> {
        let Some(n) = self.nri_on() else {
            return Ok(config);
        };
        let npod = nri_pod(pod);
        let nctr = nri_config(id, &pod.id, &config);
        let adj = n
            .nri
            .create_container(&npod, &nctr)
            .await
            .map_err(hook_error)?;
        {
            let c = self.clone();
            undo.push("nri remove container", async move {
                if let Some(n) = c.nri_on() {
                    if let Err(e) = n.nri.remove_container(&npod, &nctr).await {
                        tracing::warn!(error = %e, "nri: RemoveContainer after a failed create");
                    }
                }
                Ok(())
            });
        }
        apply_adjustment(&mut config, adj);
        Ok(config)
    }

    /// PostCreateContainer hook (the container is listed). Errors are logged.
    pub async fn nri_post_create_container(&self, id: &str) {
        let Some(n) = self.nri_on() else { return };
        let Ok(e) = self.state.container(id) else {
            return;
        };
        let rec = e.get();
        if let Err(e) = n
            .nri
            .post_create_container(&self.nri_pod_of(&rec.pod_id), &nri_container(&rec))
            .await
        {
            tracing::warn!(container = %id, error = %e, "nri: PostCreateContainer");
        }
    }

    /// StartContainer hook, before the runtime start. An error fails the call.
    pub async fn nri_start_container(&self, rec: &ContainerRecord) -> Result<()> {
        let Some(n) = self.nri_on() else {
            return Ok(());
        };
        n.nri
            .start_container(&self.nri_pod_of(&rec.pod_id), &nri_container(rec))
            .await
            .map_err(hook_error)
    }

    /// PostStartContainer hook. Errors are logged.
    pub async fn nri_post_start_container(&self, rec: &ContainerRecord) {
        let Some(n) = self.nri_on() else { return };
        if let Err(e) = n
            .nri
            .post_start_container(&self.nri_pod_of(&rec.pod_id), &nri_container(rec))
            .await
        {
            tracing::warn!(container = %rec.id, error = %e, "nri: PostStartContainer");
        }
    }

    /// UpdateContainer hook, before the runtime update. An error fails the call.
    pub async fn nri_update_container(
        &self,
        rec: &ContainerRecord,
        res: &cri::LinuxContainerResources,
    ) -> Result<()> {
        let Some(n) = self.nri_on() else {
            return Ok(());
        };
        n.nri
            .update_container(
                &self.nri_pod_of(&rec.pod_id),
                &nri_container(rec),
                Some(nri_resources(res)),
            )
            .await
            .map_err(hook_error)
    }

    /// StopContainer event for a container that has exited (by StopContainer or on its own):
    /// sent once. Errors are logged.
    pub async fn nri_container_stopped(&self, rec: &ContainerRecord) {
        let Some(n) = self.nri_on() else { return };
        if rec.state != ContainerState::Exited {
            return;
        }
        let slot = n
            .stops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(rec.id.clone())
            .or_default()
            .clone();
        let mut sent = slot.lock().await;
        if *sent {
            return;
        }
        *sent = true;
        if let Err(e) = n
            .nri
            .stop_container(&self.nri_pod_of(&rec.pod_id), &nri_container(rec))
            .await
        {
            tracing::warn!(container = %rec.id, error = %e, "nri: StopContainer");
        }
    }

    /// RemoveContainer hook, after the removal (StopContainer goes out first if it has not).
    pub async fn nri_remove_container(&self, rec: &ContainerRecord) {
        let Some(n) = self.nri_on() else { return };
        self.nri_container_stopped(rec).await;
        n.stops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&rec.id);
        if let Err(e) = n
            .nri
            .remove_container(&self.nri_pod_of(&rec.pod_id), &nri_container(rec))
            .await
        {
            tracing::warn!(container = %rec.id, error = %e, "nri: RemoveContainer");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjustments_add_replace_and_remove() {
        let mut cfg = cri::ContainerConfig {
            envs: vec![
                cri::KeyValue {
                    key: "KEEP".into(),
                    value: "1".into(),
                },
                cri::KeyValue {
                    key: "DROP".into(),
                    value: "1".into(),
                },
            ],
            annotations: [("gone".to_string(), "x".to_string())].into(),
            ..Default::default()
        };
        let adj = api::ContainerAdjustment {
            annotations: [
                ("-gone".to_string(), String::new()),
                ("new".to_string(), "v".to_string()),
            ]
            .into(),
            env: vec![
                api::KeyValue {
                    key: "-DROP".into(),
                    value: String::new(),
                },
                api::KeyValue {
                    key: "KEEP".into(),
                    value: "2".into(),
                },
            ],
            mounts: vec![api::Mount {
                destination: "/data".into(),
                source: "/srv/data".into(),
                options: vec!["ro".into()],
                ..Default::default()
            }],
            args: vec!["sleep".into(), "1".into()],
            ..Default::default()
        };
        apply_adjustment(&mut cfg, adj);
        assert_eq!(cfg.envs.len(), 1);
        assert_eq!(cfg.envs[0].key, "KEEP");
        assert_eq!(cfg.envs[0].value, b"2");
        assert_eq!(cfg.annotations.len(), 1);
        assert_eq!(cfg.annotations["new"], "v");
        assert_eq!(cfg.mounts.len(), 1);
        assert!(cfg.mounts[0].readonly);
        assert_eq!(cfg.mounts[0].host_path, "/srv/data");
        assert_eq!(cfg.command, vec!["sleep".to_string(), "1".to_string()]);
    }

    #[test]
    fn default_config_is_disabled_and_round_trips() {
        let c = NriConfig::default();
        assert!(!c.enable);
        let text = c.to_commented_toml();
        #[derive(Deserialize)]
        struct T {
            nri: NriConfig,
        }
        let t: T = toml::from_str(&text).expect("parse");
        assert_eq!(t.nri, c);
    }
}
