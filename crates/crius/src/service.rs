//! The daemon's shared context: configuration, state, collaborators and events.

use std::path::PathBuf;
use std::sync::Arc;

use k8s_cri::v1 as cri;

use crate::backend::{Backends, ContainerRuntime};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::events::Events;
use crate::state::{ContainerRecord, Kind, PodRecord, State};

/// Everything the CRI calls work on. Cheap to share (`Arc<Crius>`).
pub struct Crius {
    /// Configuration in force.
    pub cfg: Config,
    /// Pods, containers, names.
    pub state: State,
    /// Collaborators.
    pub be: Backends,
    /// Lifecycle events.
    pub events: Events,
    /// The crius-pause binary for infra containers, if found.
    pub pause_binary: Option<PathBuf>,
    /// The streaming server, when started.
    pub streaming: std::sync::OnceLock<Arc<dyn crate::streaming::StreamUrls>>,
    /// NRI, when enabled.
    pub nri: std::sync::OnceLock<crate::nri::Nri>,
    /// Container removals still finishing in the background.
    pub cleanups: crate::container::cleanup::Cleanups,
}

impl Crius {
    /// A context over an opened state and the collaborators.
    pub fn new(cfg: Config, state: State, be: Backends) -> Crius {
        let pause_binary = cfg.pause_binary();
        Crius {
            cfg,
            state,
            be,
            events: Events::new(),
            pause_binary,
            streaming: std::sync::OnceLock::new(),
            nri: std::sync::OnceLock::new(),
            cleanups: Default::default(),
        }
    }

    /// The runtime of a handler ("" = the default one).
    pub fn runtime(&self, handler: &str) -> Result<Arc<dyn ContainerRuntime>> {
        let name = if handler.is_empty() {
            self.cfg.default_runtime.as_str()
        } else {
            handler
        };
        self.be
            .runtimes
            .get(name)
            .cloned()
            .ok_or_else(|| Error::InvalidArgument(format!("unknown runtime handler {name:?}")))
    }

    /// Persists a pod record.
    pub fn save_pod(&self, rec: &PodRecord) -> Result<()> {
        self.state.store.put(Kind::Pod, &rec.id, rec)
    }

    /// Persists a container record.
    pub fn save_container(&self, rec: &ContainerRecord) -> Result<()> {
        self.state.store.put(Kind::Container, &rec.id, rec)
    }

    /// Persists a change of an existing container record whose loss in a machine crash only
    /// takes the container back to its previous record ([`crate::state::Store::update`]).
    pub fn update_container(&self, rec: &ContainerRecord) -> Result<()> {
        self.state.store.update(Kind::Container, &rec.id, rec)
    }

    /// Sends a lifecycle event for `id` (a container or a pod) with the pod's status and the
    /// statuses of its containers, as the evented PLEG expects.
    pub fn emit(&self, id: &str, pod_id: &str, kind: cri::ContainerEventType) {
        let (pod_status, statuses) = match self.state.pod(pod_id) {
            Ok(p) => {
                let rec = p.get();
                let statuses = self
                    .state
                    .pod_containers(&rec.id)
                    .into_iter()
                    .map(|c| crate::container::status::container_status(&c.get()))
                    .collect();
                (Some(crate::sandbox::status::pod_status(&rec)), statuses)
            }
            Err(_) => (None, Vec::new()),
        };
        self.events.send(cri::ContainerEventResponse {
            container_id: id.to_string(),
            container_event_type: kind as i32,
            created_at: crate::state::now_ns(),
            pod_sandbox_status: pod_status,
            containers_statuses: statuses,
        });
    }
}
