//! `Network` over crius-network: pinned namespaces under `<runroot>/ns`, CNI with its result
//! cache under `<root>/cni-cache` (durable: teardown must work after a restart).

use std::path::PathBuf;

use crius_network::{namespace, Cni, CniOptions, NamespaceDirs, NamespaceSet};
use k8s_cri::v1 as cri;

use crate::backend::{Network, NsWanted, PodNamespaces, PodNetwork};
use crate::error::{Error, Result};

/// Namespaces and CNI of the daemon.
pub struct CniNetwork {
    dirs: NamespaceDirs,
    cni: Cni,
    pod_cidr: std::sync::Mutex<String>,
}

fn map_err(what: &str, e: crius_network::Error) -> Error {
    Error::Internal(format!("{what}: {e}"))
}

impl CniNetwork {
    /// Namespace pins under `ns_root`, CNI configs from `conf_dir`, plugins from `plugin_dirs`.
    pub fn new(
        ns_root: PathBuf,
        conf_dir: PathBuf,
        plugin_dirs: Vec<PathBuf>,
        cache_dir: PathBuf,
    ) -> CniNetwork {
        let mut opts = CniOptions::new(cache_dir);
        opts.conf_dir = conf_dir;
        opts.plugin_dirs = plugin_dirs;
        CniNetwork {
            dirs: NamespaceDirs::under(ns_root),
            cni: Cni::new(opts),
            pod_cidr: Default::default(),
        }
    }
}

fn port(p: &cri::PortMapping) -> Option<crius_network::PortMapping> {
    let protocol = match cri::Protocol::try_from(p.protocol).unwrap_or(cri::Protocol::Tcp) {
        cri::Protocol::Tcp => crius_network::Protocol::Tcp,
        cri::Protocol::Udp => crius_network::Protocol::Udp,
        cri::Protocol::Sctp => crius_network::Protocol::Sctp,
    };
    Some(crius_network::PortMapping {
        host_port: u16::try_from(p.host_port).ok().filter(|p| *p != 0)?,
        container_port: u16::try_from(p.container_port).ok()?,
        protocol,
        host_ip: p.host_ip.clone(),
    })
}

#[tonic::async_trait]
impl Network for CniNetwork {
    async fn create_namespaces(
        &self,
        pod_id: &str,
        hostname: &str,
        want: NsWanted,
    ) -> Result<PodNamespaces> {
        let set = NamespaceSet {
            net: want.net,
            ipc: want.ipc,
            uts: want.uts,
        };
        let host = (want.uts && !hostname.is_empty()).then_some(hostname);
        let range = |m: oci_spec::runtime::LinuxIdMapping| crius_network::IdRange {
            container_id: m.container_id(),
            host_id: m.host_id(),
            size: m.size(),
        };
        let userns = want.user.map(|m| crius_network::UsernsMappings {
            uids: range(m.uid),
            gids: range(m.gid),
        });
        let ns = namespace::create_with_userns(&self.dirs, pod_id, set, host, userns.as_ref())
            .await
            .map_err(|e| map_err(&format!("pod {pod_id}: create namespaces"), e))?;
        Ok(PodNamespaces {
            net: ns.net,
            ipc: ns.ipc,
            uts: ns.uts,
            user: ns.user,
        })
    }

    async fn remove_namespaces(&self, pod_id: &str) -> Result<()> {
        namespace::remove(&self.dirs, pod_id)
            .await
            .map_err(|e| map_err(&format!("pod {pod_id}: remove namespaces"), e))
    }

    async fn setup(&self, pod: &PodNetwork) -> Result<Vec<String>> {
        let p = crius_network::PodNetwork {
            id: pod.id.clone(),
            name: pod.name.clone(),
            namespace: pod.namespace.clone(),
            uid: pod.uid.clone(),
            netns: pod.netns.clone(),
            port_mappings: pod.port_mappings.iter().filter_map(port).collect(),
            dns: pod.dns.as_ref().map(|d| crius_network::DnsConfig {
                servers: d.servers.clone(),
                searches: d.searches.clone(),
                options: d.options.clone(),
            }),
        };
        let st = self
            .cni
            .setup(&p)
            .await
            .map_err(|e| map_err(&format!("pod {}: CNI ADD", pod.id), e))?;
        Ok(st.ips.iter().map(|ip| ip.to_string()).collect())
    }

    async fn teardown(&self, pod: &PodNetwork) -> Result<()> {
        self.cni
            .teardown(&pod.id)
            .await
            .map_err(|e| map_err(&format!("pod {}: CNI DEL", pod.id), e))
    }

    async fn attached_pods(&self) -> Result<Vec<String>> {
        self.cni
            .cached_pods()
            .await
            .map_err(|e| map_err("list CNI cache", e))
    }

    async fn status(&self) -> std::result::Result<(), (String, String)> {
        self.cni
            .status()
            .await
            .map_err(|e| ("NetworkPluginNotReady".to_string(), e.to_string()))
    }

    async fn set_pod_cidr(&self, cidr: &str) -> Result<()> {
        tracing::info!(cidr, "pod CIDR updated");
        *self.pod_cidr.lock().unwrap_or_else(|p| p.into_inner()) = cidr.to_string();
        Ok(())
    }
}
