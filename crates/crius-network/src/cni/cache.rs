//! The per-pod CNI cache: everything DEL needs, written atomically before the first ADD and
//! again with the result after the last.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::config::{plugin_type, NetworkConfig};
use super::{runtime_config, PodNetwork};
use crate::{Error, Result};

const KIND: &str = "crius-cni-cache/v1";

/// One pod's cached CNI state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CacheEntry {
    /// Format marker.
    pub kind: String,
    /// CNI_CONTAINERID.
    pub pod_id: String,
    /// CNI_IFNAME.
    pub if_name: String,
    /// CNI_NETNS given to ADD.
    pub netns: PathBuf,
    /// CNI_ARGS.
    pub cni_args: String,
    /// The config file the network came from.
    pub config_file: PathBuf,
    /// Network name.
    pub network: String,
    /// Network cniVersion.
    pub cni_version: String,
    /// Plugin configs as loaded (without name/cniVersion/prevResult/runtimeConfig added).
    pub plugins: Vec<Map<String, Value>>,
    /// runtimeConfig values by capability name.
    pub runtime_config: Map<String, Value>,
    /// The last result of the chain (the final result once `complete`).
    pub result: Option<Value>,
    /// True once every ADD succeeded.
    pub complete: bool,
}

fn version(v: &str) -> (u32, u32, u32) {
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

impl CacheEntry {
    /// The entry for a pod about to be set up.
    pub fn new(pod: &PodNetwork, net: &NetworkConfig, if_name: &str) -> Self {
        let cni_args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
            pod.namespace, pod.name, pod.id, pod.uid
        );
        Self {
            kind: KIND.into(),
            pod_id: pod.id.clone(),
            if_name: if_name.into(),
            netns: pod.netns.clone(),
            cni_args,
            config_file: net.file.clone(),
            network: net.name.clone(),
            cni_version: net.cni_version.clone(),
            plugins: net.plugins.clone(),
            runtime_config: runtime_config(pod),
            result: None,
            complete: false,
        }
    }

    /// An entry for tearing down a pod whose cache is unusable: current config, no result.
    pub fn fallback(pod_id: &str, net: &NetworkConfig, if_name: &str) -> Self {
        Self {
            kind: KIND.into(),
            pod_id: pod_id.into(),
            if_name: if_name.into(),
            netns: PathBuf::new(),
            cni_args: format!("IgnoreUnknown=1;K8S_POD_INFRA_CONTAINER_ID={pod_id}"),
            config_file: net.file.clone(),
            network: net.name.clone(),
            cni_version: net.cni_version.clone(),
            plugins: net.plugins.clone(),
            runtime_config: Map::new(),
            result: None,
            complete: false,
        }
    }

    /// The `type` of plugin `i`.
    pub fn plugin_type(&self, i: usize) -> String {
        self.plugins
            .get(i)
            .map(|p| plugin_type(p).to_string())
            .unwrap_or_default()
    }

    /// DEL gets prevResult from CNI 0.4.0 on.
    pub fn del_takes_prev_result(&self) -> bool {
        version(&self.cni_version) >= (0, 4, 0)
    }

    /// The stdin of plugin `i`: its config plus `name`, `cniVersion`, `prevResult` (if any,
    /// from 0.3.0 on) and the `runtimeConfig` entries for the capabilities it declares.
    pub fn plugin_stdin(&self, i: usize, prev: Option<&Value>) -> Vec<u8> {
        let mut conf = self.plugins.get(i).cloned().unwrap_or_default();
        conf.insert("name".into(), Value::String(self.network.clone()));
        conf.insert("cniVersion".into(), Value::String(self.cni_version.clone()));
        match prev {
            Some(prev) if version(&self.cni_version) >= (0, 3, 0) => {
                conf.insert("prevResult".into(), prev.clone());
            }
            _ => {}
        }
        let caps = conf.get("capabilities").and_then(Value::as_object);
        let wanted: Map<String, Value> = self
            .runtime_config
            .iter()
            .filter(|(k, _)| caps.and_then(|c| c.get(k.as_str())) == Some(&Value::Bool(true)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !wanted.is_empty() {
            let rc = conf
                .entry("runtimeConfig")
                .or_insert_with(|| Value::Object(Map::new()));
            if !rc.is_object() {
                *rc = Value::Object(Map::new());
            }
            if let Value::Object(rc) = rc {
                rc.extend(wanted);
            }
        }
        serde_json::to_vec(&conf).unwrap_or_default()
    }
}

fn cache_err(pod: &str, path: &Path, msg: String) -> Error {
    Error::Cache {
        pod: pod.to_string(),
        path: path.to_path_buf(),
        msg,
    }
}

fn write_blocking(path: &Path, entry: &CacheEntry, durable: bool) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "cache path has no parent"))?;
    std::fs::create_dir_all(dir)?;
    let bytes = serde_json::to_vec_pretty(entry).map_err(io::Error::other)?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(&bytes)?;
    if durable {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if durable {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Atomically replaces the cache file (temp file, fsync, rename, fsync dir).
pub(crate) async fn write(path: &Path, entry: &CacheEntry) -> Result<()> {
    write_mode(path, entry, true).await
}

/// Atomically replaces the cache file without waiting for the disk (temp file, rename): a
/// daemon crash still sees the new entry. For the entry with the result, which only a machine
/// crash can lose (or leave unreadable: teardown then runs DEL from the current config, and
/// after a reboot there is no netns, veth or iptables rule left to delete anyway).
pub(crate) async fn write_volatile(path: &Path, entry: &CacheEntry) -> Result<()> {
    write_mode(path, entry, false).await
}

async fn write_mode(path: &Path, entry: &CacheEntry, durable: bool) -> Result<()> {
    let owned_path = path.to_path_buf();
    let owned = entry.clone();
    tokio::task::spawn_blocking(move || write_blocking(&owned_path, &owned, durable))
        .await
        .map_err(|e| cache_err(&entry.pod_id, path, format!("write: {e}")))?
        .map_err(|e| cache_err(&entry.pod_id, path, format!("write: {e}")))
}

/// Reads a cache file; `None` if there is none.
pub(crate) async fn read(pod: &str, path: &Path) -> Result<Option<CacheEntry>> {
    let bytes = match tokio::fs::read(path).await {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(cache_err(pod, path, format!("read: {e}"))),
    };
    let entry: CacheEntry =
        serde_json::from_slice(&bytes).map_err(|e| cache_err(pod, path, format!("parse: {e}")))?;
    if entry.kind != KIND || entry.pod_id != pod {
        return Err(cache_err(
            pod,
            path,
            format!(
                "not a cache entry of this pod (kind {:?}, pod {:?})",
                entry.kind, entry.pod_id
            ),
        ));
    }
    Ok(Some(entry))
}

/// Deletes a cache file; a missing one is fine.
pub(crate) async fn remove(pod: &str, path: &Path) -> Result<()> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(cache_err(pod, path, format!("remove: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::{DnsConfig, PortMapping, Protocol};
    use serde_json::json;

    fn net() -> NetworkConfig {
        let plugins = json!([
            {"type": "bridge", "capabilities": {"dns": false}},
            {"type": "portmap", "capabilities": {"portMappings": true}, "runtimeConfig": {"x": 1}}
        ]);
        NetworkConfig {
            file: "/etc/cni/net.d/x.conflist".into(),
            name: "n".into(),
            cni_version: "1.0.0".into(),
            plugins: serde_json::from_value(plugins).unwrap(),
        }
    }

    fn pod() -> PodNetwork {
        PodNetwork {
            id: "abc".into(),
            name: "web".into(),
            namespace: "default".into(),
            uid: "u-1".into(),
            netns: "/run/crius/netns/abc".into(),
            port_mappings: vec![
                PortMapping {
                    host_port: 8080,
                    container_port: 80,
                    protocol: Protocol::Tcp,
                    host_ip: String::new(),
                },
                PortMapping {
                    host_port: 0,
                    container_port: 81,
                    protocol: Protocol::Udp,
                    host_ip: String::new(),
                },
            ],
            dns: Some(DnsConfig {
                servers: vec!["10.0.0.10".into()],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn stdin_has_name_version_prev_result_and_declared_capabilities() {
        let e = CacheEntry::new(&pod(), &net(), "eth0");
        assert_eq!(
            e.cni_args,
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1"
        );
        let first: Value = serde_json::from_slice(&e.plugin_stdin(0, None)).unwrap();
        assert_eq!(first["name"], "n");
        assert_eq!(first["cniVersion"], "1.0.0");
        assert!(first.get("prevResult").is_none());
        assert!(
            first.get("runtimeConfig").is_none(),
            "dns capability is false"
        );
        let prev = json!({"cniVersion": "1.0.0", "ips": []});
        let second: Value = serde_json::from_slice(&e.plugin_stdin(1, Some(&prev))).unwrap();
        assert_eq!(second["prevResult"], prev);
        assert_eq!(
            second["runtimeConfig"],
            json!({"x": 1, "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]})
        );
    }

    #[tokio::test]
    async fn write_read_remove() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/abc.json");
        assert_eq!(read("abc", &path).await.unwrap(), None);
        let mut e = CacheEntry::new(&pod(), &net(), "eth0");
        write(&path, &e).await.unwrap();
        e.result = Some(json!({"ips": []}));
        e.complete = true;
        write_volatile(&path, &e).await.unwrap();
        assert_eq!(read("abc", &path).await.unwrap(), Some(e));
        assert!(read("other", &path).await.is_err());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp files left");
        remove("abc", &path).await.unwrap();
        remove("abc", &path).await.unwrap();
        assert_eq!(read("abc", &path).await.unwrap(), None);
    }
}
