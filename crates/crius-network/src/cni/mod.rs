//! CNI networking (spec versions 0.3.0 to 1.0.0) for pod sandboxes.
//!
//! [`Cni`] loads the first network config of its config directory (reloaded when the directory
//! changes), runs the plugin chain with ADD on [`Cni::setup`] and DEL in reverse on
//! [`Cni::teardown`], and caches what DEL needs (config, arguments, result) on disk before the
//! first plugin runs, so teardown works after a daemon restart or crash from the pod ID alone.

mod cache;
mod config;
mod exec;
mod result;

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{check_pod_id, namespace, Error, Result};
use cache::CacheEntry;
use config::{ConfigLoader, NetworkConfig};
use exec::Call;

/// File name of the network config crius ships.
pub const DEFAULT_CONFLIST_NAME: &str = "10-crius-bridge.conflist";

/// The network config crius ships: bridge `crius0` (gateway 10.85.0.1), host-local IPAM on
/// 10.85.0.0/16 with a default route, and portmap for hostPorts. cniVersion 1.0.0.
pub const DEFAULT_CONFLIST: &str = include_str!("../../cni/10-crius-bridge.conflist");

/// Default CNI network config directory.
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/net.d";

/// Default CNI plugin directories, searched in order (Debian installs into `/usr/lib/cni`).
pub const DEFAULT_PLUGIN_DIRS: &[&str] = &["/opt/cni/bin", "/usr/lib/cni"];

/// The interface name given to plugins (CNI_IFNAME).
pub const DEFAULT_IFNAME: &str = "eth0";

/// Where [`Cni`] finds configs and plugins and keeps its cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniOptions {
    /// Directory holding `*.conflist`, `*.conf`, `*.json`; the lexically first file is used.
    pub conf_dir: PathBuf,
    /// Directories searched, in order, for plugin binaries (also passed as CNI_PATH).
    pub plugin_dirs: Vec<PathBuf>,
    /// Directory for the per-pod result cache (`<cache_dir>/<pod-id>.json`); must persist
    /// across daemon restarts (e.g. under the daemon's state root).
    pub cache_dir: PathBuf,
    /// The pod interface name (CNI_IFNAME), `eth0` by default.
    pub if_name: String,
}

impl CniOptions {
    /// Default config and plugin directories, `eth0`, and the given cache directory.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            conf_dir: PathBuf::from(DEFAULT_CONF_DIR),
            plugin_dirs: DEFAULT_PLUGIN_DIRS.iter().map(PathBuf::from).collect(),
            cache_dir: cache_dir.into(),
            if_name: DEFAULT_IFNAME.to_string(),
        }
    }
}

/// Transport protocol of a port mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// A hostPort mapping, passed to plugins with the `portMappings` capability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Port on the host (mappings with 0 are skipped, as in CRI).
    pub host_port: u16,
    /// Port in the pod.
    pub container_port: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// Host address to bind to; empty means all.
    #[serde(rename = "hostIP", default, skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
}

/// DNS settings, passed to plugins with the `dns` capability.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsConfig {
    /// Name server addresses.
    #[serde(default)]
    pub servers: Vec<String>,
    /// Search domains.
    #[serde(default)]
    pub searches: Vec<String>,
    /// resolv.conf options.
    #[serde(default)]
    pub options: Vec<String>,
}

/// What [`Cni::setup`] needs to know about a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetwork {
    /// Pod sandbox ID (CNI_CONTAINERID, K8S_POD_INFRA_CONTAINER_ID, cache key).
    pub id: String,
    /// Pod name (K8S_POD_NAME).
    pub name: String,
    /// Pod namespace (K8S_POD_NAMESPACE).
    pub namespace: String,
    /// Pod UID (K8S_POD_UID).
    pub uid: String,
    /// The pod's pinned network namespace (CNI_NETNS).
    pub netns: PathBuf,
    /// hostPort mappings.
    pub port_mappings: Vec<PortMapping>,
    /// DNS settings, if any.
    pub dns: Option<DnsConfig>,
}

/// The pod's network as the plugin chain reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetworkStatus {
    /// The CNI network name.
    pub network: String,
    /// The pod interface (CNI_IFNAME).
    pub interface: String,
    /// Pod IPs on sandbox interfaces: IPv4 first, then IPv6; the first is the primary IP.
    pub ips: Vec<IpAddr>,
    /// MAC address of the pod interface, if the result reported it.
    pub mac: Option<String>,
}

/// The CNI manager: one per daemon (share it with `Arc`).
#[derive(Debug)]
pub struct Cni {
    opts: CniOptions,
    loader: ConfigLoader,
}

impl Cni {
    /// A manager with the given directories; nothing is read until first use.
    pub fn new(opts: CniOptions) -> Self {
        let loader = ConfigLoader::new(opts.conf_dir.clone());
        Self { opts, loader }
    }

    /// The options this manager was built with.
    pub fn options(&self) -> &CniOptions {
        &self.opts
    }

    /// Ok when the config directory holds a valid network config and every plugin it names is
    /// found; otherwise the reason (for NetworkReady=false). Re-reads the config if any config
    /// file changed.
    pub async fn status(&self) -> Result<()> {
        let net = self.loader.load()?;
        self.find_plugins(&net)?;
        Ok(())
    }

    /// Runs ADD for every plugin of the network, in order, in the pod's network namespace, and
    /// returns the pod's IPs. On failure, runs DEL for what was added, removes the cache entry,
    /// and returns the plugin's error. Fails if the pod is already set up. If the future is
    /// dropped mid-way (e.g. a timeout), the running plugin is killed: call [`Cni::teardown`].
    /// Calls for one pod must not overlap (the daemon serializes per pod).
    pub async fn setup(&self, pod: &PodNetwork) -> Result<PodNetworkStatus> {
        check_pod_id(&pod.id)?;
        let net = self.loader.load()?;
        let binaries = self.find_plugins(&net)?;
        let mut entry = CacheEntry::new(pod, &net, &self.opts.if_name);
        let cache_path = self.cache_path(&pod.id);
        if cache::read(&pod.id, &cache_path).await?.is_some() {
            return Err(Error::Cache {
                pod: pod.id.clone(),
                path: cache_path,
                msg: "pod network is already set up (tear it down first)".into(),
            });
        }
        cache::write(&cache_path, &entry).await?;

        let call = Call {
            pod: &pod.id,
            command: "ADD",
            netns: pod.netns.as_os_str().to_owned(),
            if_name: &entry.if_name,
            args: &entry.cni_args,
            path: self.cni_path(),
        };
        let mut prev: Option<Value> = None;
        for (i, binary) in binaries.iter().enumerate() {
            let plugin = entry.plugin_type(i);
            let stdin = entry.plugin_stdin(i, prev.as_ref());
            let outcome = exec::invoke(&call, &plugin, binary, &stdin)
                .await
                .and_then(|out| result::parse_output(&pod.id, &plugin, &out));
            match outcome {
                Ok(Some(res)) => prev = Some(res),
                Ok(None) => {}
                Err(err) => {
                    entry.result = prev;
                    return Err(self.undo_failed_add(&cache_path, &entry, i, err).await);
                }
            }
        }
        entry.result = prev;
        entry.complete = true;
        // The entry written before the first ADD is durable (a machine crash cannot lose the
        // fact that addresses were allocated); this one need not be (see write_volatile).
        if let Err(err) = cache::write_volatile(&cache_path, &entry).await {
            // Without the result on disk a later DEL would lack prevResult: undo now instead.
            let last = entry.plugins.len().saturating_sub(1);
            return Err(self.undo_failed_add(&cache_path, &entry, last, err).await);
        }
        let result = entry.result.as_ref().unwrap_or(&Value::Null);
        result::status(&pod.id, &net.name, &entry.if_name, result)
    }

    /// Runs DEL for every plugin, in reverse order, with the config, arguments and result cached
    /// by [`Cni::setup`], then drops the cache entry. Idempotent: without a cache entry (never
    /// set up, or already torn down) it does nothing. If the pinned netns is gone, plugins get an
    /// empty CNI_NETNS. On error the cache entry is kept so that a later call can retry.
    pub async fn teardown(&self, pod_id: &str) -> Result<()> {
        check_pod_id(pod_id)?;
        let cache_path = self.cache_path(pod_id);
        let entry = match cache::read(pod_id, &cache_path).await {
            Ok(Some(entry)) => entry,
            Ok(None) => return Ok(()),
            Err(err) => {
                // Unreadable cache (manual edit, disk damage): DEL with the current config
                // rather than never being able to tear the pod down.
                tracing::warn!(pod = pod_id, error = %err, "CNI cache unusable; tearing down with the current config");
                let net = self.loader.load()?;
                CacheEntry::fallback(pod_id, &net, &self.opts.if_name)
            }
        };
        let last = entry.plugins.len().saturating_sub(1);
        self.del_chain(&entry, last).await?;
        cache::remove(pod_id, &cache_path).await
    }

    /// The pod's network status from the cache (after a restart, for PodSandboxStatus); `None`
    /// if the pod has no completed setup.
    pub async fn cached_status(&self, pod_id: &str) -> Result<Option<PodNetworkStatus>> {
        check_pod_id(pod_id)?;
        let Some(entry) = cache::read(pod_id, &self.cache_path(pod_id)).await? else {
            return Ok(None);
        };
        if !entry.complete {
            return Ok(None);
        }
        let result = entry.result.as_ref().unwrap_or(&Value::Null);
        result::status(pod_id, &entry.network, &entry.if_name, result).map(Some)
    }

    /// The pods that have a cache entry: set up and not (completely) torn down. A missing
    /// cache directory means none.
    pub async fn cached_pods(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut dir = match tokio::fs::read_dir(&self.opts.cache_dir).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(self.cache_dir_err(e)),
        };
        while let Some(entry) = dir.next_entry().await.map_err(|e| self.cache_dir_err(e))? {
            let name = entry.file_name();
            if let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) {
                if check_pod_id(id).is_ok() {
                    out.push(id.to_string());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn cache_dir_err(&self, e: std::io::Error) -> Error {
        Error::Cache {
            pod: "*".into(),
            path: self.opts.cache_dir.clone(),
            msg: format!("list: {e}"),
        }
    }

    fn cache_path(&self, pod_id: &str) -> PathBuf {
        self.opts.cache_dir.join(format!("{pod_id}.json"))
    }

    fn cni_path(&self) -> OsString {
        std::env::join_paths(&self.opts.plugin_dirs).unwrap_or_default()
    }

    fn find_plugin(&self, plugin: &str) -> Option<PathBuf> {
        if plugin.is_empty() || plugin.contains('/') {
            return None;
        }
        self.opts
            .plugin_dirs
            .iter()
            .map(|d| d.join(plugin))
            .find(|p| is_executable(p))
    }

    fn find_plugins(&self, net: &NetworkConfig) -> Result<Vec<PathBuf>> {
        net.plugins
            .iter()
            .map(|p| {
                let ty = config::plugin_type(p);
                self.find_plugin(ty).ok_or_else(|| Error::PluginNotFound {
                    network: net.name.clone(),
                    file: net.file.clone(),
                    plugin: ty.to_string(),
                    dirs: self.opts.plugin_dirs.clone(),
                })
            })
            .collect()
    }

    /// After ADD of plugin `failed` failed: DEL plugins `failed..=0`, then drop the cache entry.
    async fn undo_failed_add(
        &self,
        cache_path: &Path,
        entry: &CacheEntry,
        failed: usize,
        err: Error,
    ) -> Error {
        let cleanup = match self.del_chain(entry, failed).await {
            Ok(()) => cache::remove(&entry.pod_id, cache_path).await,
            Err(e) => Err(e),
        };
        match cleanup {
            Ok(()) => err,
            Err(cleanup_err) => {
                tracing::error!(pod = %entry.pod_id, error = %cleanup_err, "cleanup after failed CNI ADD failed; cache kept for teardown");
                match err {
                    Error::Plugin {
                        pod,
                        command,
                        plugin,
                        code,
                        msg,
                    } => Error::Plugin {
                        pod,
                        command,
                        plugin,
                        code,
                        msg: format!("{msg}; cleanup failed (retry teardown): {cleanup_err}"),
                    },
                    other => other,
                }
            }
        }
    }

    /// DEL for plugins `last..=0`; every plugin is tried, the first error is returned.
    async fn del_chain(&self, entry: &CacheEntry, last: usize) -> Result<()> {
        let netns = if namespace::is_pinned(&entry.netns) {
            entry.netns.as_os_str().to_owned()
        } else {
            OsString::new()
        };
        let call = Call {
            pod: &entry.pod_id,
            command: "DEL",
            netns,
            if_name: &entry.if_name,
            args: &entry.cni_args,
            path: self.cni_path(),
        };
        let prev = entry
            .result
            .as_ref()
            .filter(|_| entry.del_takes_prev_result());
        let mut first_err = None;
        let count = entry.plugins.len().min(last.saturating_add(1));
        for i in (0..count).rev() {
            let plugin = entry.plugin_type(i);
            let outcome = match self.find_plugin(&plugin) {
                Some(binary) => {
                    let stdin = entry.plugin_stdin(i, prev);
                    exec::invoke(&call, &plugin, &binary, &stdin)
                        .await
                        .map(drop)
                }
                None => Err(Error::PluginNotFound {
                    network: entry.network.clone(),
                    file: entry.config_file.clone(),
                    plugin: plugin.clone(),
                    dirs: self.opts.plugin_dirs.clone(),
                }),
            };
            if let Err(e) = outcome {
                tracing::warn!(pod = %entry.pod_id, plugin = %plugin, error = %e, "CNI DEL failed");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Writes [`DEFAULT_CONFLIST`] into `conf_dir` (created if needed) unless the directory already
/// holds a network config. Returns whether it wrote the file.
pub fn install_default_config(conf_dir: &Path) -> std::io::Result<bool> {
    std::fs::create_dir_all(conf_dir)?;
    if config::has_config_files(conf_dir)? {
        return Ok(false);
    }
    let path = conf_dir.join(DEFAULT_CONFLIST_NAME);
    let mut tmp = tempfile::NamedTempFile::new_in(conf_dir)?;
    std::io::Write::write_all(&mut tmp, DEFAULT_CONFLIST.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(true)
}

/// The `runtimeConfig` values of a pod, keyed by capability name.
fn runtime_config(pod: &PodNetwork) -> Map<String, Value> {
    let mut rc = Map::new();
    let mappings: Vec<&PortMapping> = pod
        .port_mappings
        .iter()
        .filter(|m| m.host_port != 0)
        .collect();
    if !mappings.is_empty() {
        if let Ok(v) = serde_json::to_value(&mappings) {
            rc.insert("portMappings".into(), v);
        }
    }
    if let Some(dns) = &pod.dns {
        if let Ok(v) = serde_json::to_value(dns) {
            rc.insert("dns".into(), v);
        }
    }
    rc
}
