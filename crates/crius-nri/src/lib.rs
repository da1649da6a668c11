//! The runtime side of the Node Resource Interface (NRI).
//!
//! [`Nri::start`] listens on a unix socket; external plugins connect, register, are configured
//! and synchronized with the pods and containers that exist (from a [`StateSource`] the daemon
//! implements, plus objects whose hooks ran but that the daemon has not published yet), then
//! receive the pod and container lifecycle events they subscribed to, in index order. A plugin
//! that answers an event with an error fails the operation ([`Error::Plugin`]); one that does not
//! answer within the request timeout, or disconnects, is dropped and the operation goes on.
//!
//! The wire protocol (`frame`, `ttrpc`) is written here: NRI multiplexes two ttrpc connections
//! over one stream, and the Rust ttrpc implementation uses rust-protobuf, not prost.

pub mod error;
pub mod frame;
mod plugin;
pub mod ttrpc;

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use prost::Message;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use error::{CallError, Error, Result};
use plugin::Plugin;

/// NRI protocol messages, generated from NRI's `api.proto` (package `nri.pkg.api.v1alpha1`).
#[allow(missing_docs, clippy::all)]
pub mod api {
    include!(concat!(env!("OUT_DIR"), "/nri.pkg.api.v1alpha1.rs"));
}

/// NRI's default time for a plugin to register after connecting.
pub const DEFAULT_REGISTRATION_TIMEOUT: Duration = Duration::from_secs(5);
/// NRI's default time for a plugin to answer a request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an object a hook announced may stay unpublished by the daemon and still be part of a
/// new plugin's synchronization (covers the window between a hook and the daemon's commit).
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(120);

/// How to run NRI.
#[derive(Debug, Clone)]
pub struct Config {
    /// The socket plugins connect to.
    pub socket_path: PathBuf,
    /// Runtime name sent to plugins.
    pub runtime_name: String,
    /// Runtime version sent to plugins.
    pub runtime_version: String,
    /// Time a plugin has to register after connecting; also bounds its synchronization.
    pub registration_timeout: Duration,
    /// Time a plugin has to answer one event.
    pub request_timeout: Duration,
}

impl Config {
    /// A configuration with NRI's default timeouts.
    pub fn new(socket_path: impl Into<PathBuf>) -> Config {
        Config {
            socket_path: socket_path.into(),
            runtime_name: "crius".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            registration_timeout: DEFAULT_REGISTRATION_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// The pods and containers the daemon has, for synchronizing newly connected plugins.
pub trait StateSource: Send + Sync + 'static {
    /// Every pod sandbox the daemon lists.
    fn pods(&self) -> Vec<api::PodSandbox>;
    /// Every container the daemon lists.
    fn containers(&self) -> Vec<api::Container>;
}

/// Objects announced by hooks, so that a plugin synchronizing while a hook runs still learns of
/// them (the daemon publishes them only after the hook).
#[derive(Default)]
struct Known {
    pods: HashMap<String, (Instant, api::PodSandbox)>,
    containers: HashMap<String, (Instant, api::Container)>,
}

struct Shared {
    config: Config,
    source: Arc<dyn StateSource>,
    /// Synchronized plugins, in call order.
    plugins: Mutex<Vec<Arc<Plugin>>>,
    /// Held while a hook records its object and picks its plugins, and for a whole
    /// synchronization: an object is either in a plugin's sync set or gets it as an event.
    known: tokio::sync::Mutex<Known>,
    count: watch::Sender<usize>,
}

impl Shared {
    fn ready(&self) -> Vec<Arc<Plugin>> {
        self.plugins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn add(&self, p: Arc<Plugin>) {
        let mut plugins = self.plugins.lock().unwrap_or_else(PoisonError::into_inner);
        plugins.push(p);
        plugins.sort_by(|a, b| a.name.cmp(&b.name));
        self.count.send_replace(plugins.len());
    }

    fn drop_plugin(&self, p: &Arc<Plugin>) {
        let mut plugins = self.plugins.lock().unwrap_or_else(PoisonError::into_inner);
        let before = plugins.len();
        plugins.retain(|q| !Arc::ptr_eq(q, p));
        if plugins.len() != before {
            tracing::info!(plugin = %p.name, "nri: plugin dropped");
        }
        p.close();
        self.count.send_replace(plugins.len());
    }
}

/// The NRI runtime side. Dropping it stops accepting plugins.
pub struct Nri {
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Drop for Nri {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn pod_id(p: &api::PodSandbox) -> String {
    p.id.clone()
}

impl Nri {
    /// Listens on `config.socket_path` (replacing a stale socket) and accepts plugins.
    pub fn start(config: Config, source: Arc<dyn StateSource>) -> Result<Nri> {
        let path = config.socket_path.clone();
        let listen_err = |source| Error::Listen {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(listen_err)?;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(listen_err(e)),
        }
        let listener = UnixListener::bind(&path).map_err(listen_err)?;
        // Plugins adjust containers: only root may connect.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(listen_err)?;
        let shared = Arc::new(Shared {
            config,
            source,
            plugins: Mutex::new(Vec::new()),
            known: tokio::sync::Mutex::new(Known::default()),
            count: watch::channel(0).0,
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::downgrade(&shared)));
        tracing::info!(socket = %path.display(), "nri: accepting plugins");
        Ok(Nri { shared, accept })
    }

    /// Number of synchronized plugins.
    pub fn plugin_count(&self) -> usize {
        *self.shared.count.borrow()
    }

    /// Waits until exactly `n` plugins are synchronized.
    pub async fn wait_for_plugins(&self, n: usize) {
        let mut rx = self.shared.count.subscribe();
        // The sender lives in `shared`, which `self` keeps alive: this cannot fail.
        let _ = rx.wait_for(|c| *c == n).await;
    }

    /// Sends one event to every subscribed plugin in order, after `record` updated the known
    /// objects. Returns the answers; the first error answer fails the event.
    async fn dispatch<Req: Message, Resp: Message + Default>(
        &self,
        event: api::Event,
        object: &str,
        req: &Req,
        record: impl FnOnce(&mut Known),
    ) -> Result<Vec<(String, Resp)>> {
        let plugins = {
            let mut known = self.shared.known.lock().await;
            record(&mut known);
            self.shared.ready()
        };
        let method = event.as_str_name();
        let name = pretty(event);
        let mut answers = Vec::new();
        for p in plugins.iter().filter(|p| p.subscribed(event)) {
            match p.call(name, req, self.shared.config.request_timeout).await {
                Ok(r) => answers.push((p.name.clone(), r)),
                Err(CallError::Status { message, .. }) => {
                    return Err(Error::Plugin {
                        plugin: p.name.clone(),
                        event: name,
                        object: object.to_string(),
                        message,
                    });
                }
                Err(e) => {
                    tracing::warn!(plugin = %p.name, event = method, object, error = %e, "nri: plugin failed, dropping it");
                    self.shared.drop_plugin(p);
                }
            }
        }
        Ok(answers)
    }

    /// A pod sandbox is being started; an error fails RunPodSandbox.
    pub async fn run_pod_sandbox(&self, pod: &api::PodSandbox) -> Result<()> {
        let req = api::RunPodSandboxRequest {
            pod: Some(pod.clone()),
        };
        let id = pod_id(pod);
        let r = self
            .dispatch::<_, api::RunPodSandboxResponse>(api::Event::RunPodSandbox, &id, &req, |k| {
                k.pods.insert(id.clone(), (Instant::now(), pod.clone()));
            })
            .await;
        if r.is_err() {
            self.shared.known.lock().await.pods.remove(&id);
        }
        r.map(drop)
    }

    /// A pod sandbox was stopped (its containers already are).
    pub async fn stop_pod_sandbox(&self, pod: &api::PodSandbox) -> Result<()> {
        let req = api::StopPodSandboxRequest {
            pod: Some(pod.clone()),
        };
        self.dispatch::<_, api::StopPodSandboxResponse>(
            api::Event::StopPodSandbox,
            &pod.id,
            &req,
            |k| {
                if let Some(e) = k.pods.get_mut(&pod.id) {
                    e.1 = pod.clone();
                }
            },
        )
        .await
        .map(drop)
    }

    /// A pod sandbox was removed.
    pub async fn remove_pod_sandbox(&self, pod: &api::PodSandbox) -> Result<()> {
        let req = api::RemovePodSandboxRequest {
            pod: Some(pod.clone()),
        };
        self.dispatch::<_, api::RemovePodSandboxResponse>(
            api::Event::RemovePodSandbox,
            &pod.id,
            &req,
            |k| {
                k.pods.remove(&pod.id);
                k.containers.retain(|_, c| c.1.pod_sandbox_id != pod.id);
            },
        )
        .await
        .map(drop)
    }

    /// A container is being created: returns the plugins' adjustments, merged in call order
    /// (later plugins' singular values win, lists and maps accumulate). An error fails
    /// CreateContainer.
    pub async fn create_container(
        &self,
        pod: &api::PodSandbox,
        ctr: &api::Container,
    ) -> Result<api::ContainerAdjustment> {
        let req = api::CreateContainerRequest {
            pod: Some(pod.clone()),
            container: Some(ctr.clone()),
        };
        let id = ctr.id.clone();
        let r = self
            .dispatch::<_, api::CreateContainerResponse>(
                api::Event::CreateContainer,
                &id,
                &req,
                |k| {
                    k.containers
                        .insert(id.clone(), (Instant::now(), ctr.clone()));
                },
            )
            .await;
        let answers = match r {
            Ok(a) => a,
            Err(e) => {
                self.shared.known.lock().await.containers.remove(&id);
                return Err(e);
            }
        };
        let mut merged = api::ContainerAdjustment::default();
        for (plugin, rpl) in answers {
            if !rpl.update.is_empty() || !rpl.evict.is_empty() {
                tracing::warn!(%plugin, container = %id, "nri: updates/evictions of other containers are not supported, ignored");
            }
            if let Some(adjust) = rpl.adjust {
                // Protobuf merge semantics: exactly "apply this plugin's adjustment on top".
                if let Err(e) = merged.merge(adjust.encode_to_vec().as_slice()) {
                    tracing::warn!(%plugin, error = %e, "nri: adjustment not merged");
                }
            }
        }
        Ok(merged)
    }

    /// A container was created (not started yet).
    pub async fn post_create_container(
        &self,
        pod: &api::PodSandbox,
        ctr: &api::Container,
    ) -> Result<()> {
        let req = api::PostCreateContainerRequest {
            pod: Some(pod.clone()),
            container: Some(ctr.clone()),
        };
        self.container_event::<_, api::PostCreateContainerResponse>(
            api::Event::PostCreateContainer,
            ctr,
            &req,
        )
        .await
    }

    /// A container is being started; an error fails StartContainer.
    pub async fn start_container(&self, pod: &api::PodSandbox, ctr: &api::Container) -> Result<()> {
        let req = api::StartContainerRequest {
            pod: Some(pod.clone()),
            container: Some(ctr.clone()),
        };
        self.container_event::<_, api::StartContainerResponse>(
            api::Event::StartContainer,
            ctr,
            &req,
        )
        .await
    }

    /// A container was started.
    pub async fn post_start_container(
        &self,
        pod: &api::PodSandbox,
        ctr: &api::Container,
    ) -> Result<()> {
        let req = api::PostStartContainerRequest {
            pod: Some(pod.clone()),
            container: Some(ctr.clone()),
        };
        self.container_event::<_, api::PostStartContainerResponse>(
            api::Event::PostStartContainer,
            ctr,
            &req,
        )
        .await
    }

    /// A container's resources are being updated; an error fails UpdateContainerResources.
    pub async fn update_container(
        &self,
        pod: &api::PodSandbox,
        ctr: &api::Container,
        resources: Option<api::LinuxResources>,
    ) -> Result<()> {
        let req = api::UpdateContainerRequest {
            pod: Some(pod.clone()),
            container: Some(ctr.clone()),
            linux_resources: resources,
        };
        self.container_event::<_, api::UpdateContainerResponse>(
            api::Event::UpdateContainer,
            ctr,
            &req,
        )
        .await
    }

    /// A container stopped (by StopContainer, or on its own).
    pub async fn stop_container(&self, pod: &api::PodSandbox, ctr: &api::Container) -> Result<()> {
        let req = api::StopContainerRequest {
            pod: Some(pod.clone()),
            container: Some(ctr.clone()),
        };
        self.container_event::<_, api::StopContainerResponse>(api::Event::StopContainer, ctr, &req)
            .await
    }

    /// A container was removed.
    pub async fn remove_container(
        &self,
        pod: &api::PodSandbox,
        ctr: &api::Container,
    ) -> Result<()> {
        let req = api::RemoveContainerRequest {
            pod: Some(pod.clone()),
            container: Some(ctr.clone()),
        };
        self.dispatch::<_, api::RemoveContainerResponse>(
            api::Event::RemoveContainer,
            &ctr.id,
            &req,
            |k| {
                k.containers.remove(&ctr.id);
            },
        )
        .await
        .map(drop)
    }

    async fn container_event<Req: Message, Resp: Message + Default>(
        &self,
        event: api::Event,
        ctr: &api::Container,
        req: &Req,
    ) -> Result<()> {
        self.dispatch::<_, Resp>(event, &ctr.id, req, |k| {
            if let Some(e) = k.containers.get_mut(&ctr.id) {
                e.1 = ctr.clone();
            }
        })
        .await
        .map(drop)
    }
}

/// The ttrpc method name of an event.
fn pretty(event: api::Event) -> &'static str {
    use api::Event as E;
    match event {
        E::RunPodSandbox => "RunPodSandbox",
        E::StopPodSandbox => "StopPodSandbox",
        E::RemovePodSandbox => "RemovePodSandbox",
        E::CreateContainer => "CreateContainer",
        E::PostCreateContainer => "PostCreateContainer",
        E::StartContainer => "StartContainer",
        E::PostStartContainer => "PostStartContainer",
        E::UpdateContainer => "UpdateContainer",
        E::PostUpdateContainer => "PostUpdateContainer",
        E::StopContainer => "StopContainer",
        E::RemoveContainer => "RemoveContainer",
        E::UpdatePodSandbox => "UpdatePodSandbox",
        E::PostUpdatePodSandbox => "PostUpdatePodSandbox",
        E::ValidateContainerAdjustment => "ValidateContainerAdjustment",
        E::Unknown | E::Last => "Unknown",
    }
}

async fn accept_loop(listener: UnixListener, shared: Weak<Shared>) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "nri: accept failed");
                continue;
            }
        };
        let Some(s) = shared.upgrade() else { return };
        tokio::spawn(async move {
            if let Err(e) = connect(stream, s).await {
                tracing::warn!(error = %e, "nri: plugin not connected");
            }
        });
    }
}

/// Registers, configures and synchronizes one plugin, then watches for its disconnection.
async fn connect(stream: tokio::net::UnixStream, shared: Arc<Shared>) -> Result<(), String> {
    let p = Arc::new(plugin::handshake(stream, &shared.config).await?);
    {
        let mut known = shared.known.lock().await;
        let (pods, containers) = snapshot(&shared, &mut known);
        let req = api::SynchronizeRequest {
            pods,
            containers,
            more: false,
        };
        // Synchronization is part of registration: it gets the registration timeout.
        let _: api::SynchronizeResponse = p
            .call("Synchronize", &req, shared.config.registration_timeout)
            .await
            .map_err(|e| format!("plugin {}: synchronize: {e}", p.name))?;
        shared.add(p.clone());
    }
    tracing::info!(plugin = %p.name, "nri: plugin synchronized");
    let weak = Arc::downgrade(&shared);
    drop(shared);
    tokio::spawn(async move {
        p.closed().await;
        if let Some(s) = weak.upgrade() {
            s.drop_plugin(&p);
        }
    });
    Ok(())
}

/// The daemon's objects plus those announced by hooks and not published yet.
fn snapshot(shared: &Shared, known: &mut Known) -> (Vec<api::PodSandbox>, Vec<api::Container>) {
    let mut pods = shared.source.pods();
    let mut containers = shared.source.containers();
    let pod_ids: HashSet<String> = pods.iter().map(|p| p.id.clone()).collect();
    let ctr_ids: HashSet<String> = containers.iter().map(|c| c.id.clone()).collect();
    known
        .pods
        .retain(|id, (t, _)| pod_ids.contains(id) || t.elapsed() < IN_FLIGHT_GRACE);
    known
        .containers
        .retain(|id, (t, _)| ctr_ids.contains(id) || t.elapsed() < IN_FLIGHT_GRACE);
    pods.extend(
        known
            .pods
            .iter()
            .filter(|(id, _)| !pod_ids.contains(*id))
            .map(|(_, (_, p))| p.clone()),
    );
    containers.extend(
        known
            .containers
            .iter()
            .filter(|(id, _)| !ctr_ids.contains(*id))
            .map(|(_, (_, c))| c.clone()),
    );
    (pods, containers)
}
