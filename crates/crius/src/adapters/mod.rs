//! Implementations of the `backend` traits over the crius-* crates.

pub mod image;
pub mod network;
pub mod oci;
pub mod spec;
pub mod streaming;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::backend::{Backends, ContainerRuntime};
use crate::config::Config;
use crate::error::Result;

/// Builds the collaborators from the configuration. The default handler must come up; other
/// handlers whose binary is missing are skipped with a warning.
pub async fn build(cfg: &Config) -> Result<Backends> {
    let monitor = cfg.monitor_path()?;
    let mut runtimes: BTreeMap<String, Arc<dyn ContainerRuntime>> = BTreeMap::new();
    for (name, h) in &cfg.runtimes {
        let root = h
            .root
            .clone()
            .unwrap_or_else(|| cfg.runroot.join("runtimes").join(name));
        match oci::OciRuntime::new(name, h.path.clone(), root, monitor.clone(), &cfg.runroot) {
            Ok(rt) => {
                runtimes.insert(name.clone(), Arc::new(rt));
            }
            Err(e) if *name != cfg.default_runtime => {
                tracing::warn!(handler = %name, error = %e, "runtime handler unavailable; skipped");
            }
            Err(e) => return Err(e),
        }
    }
    let images = image::Images::open(
        cfg.image_root(),
        cfg.registries_conf.clone(),
        cfg.image_pull_sync_fs,
    )
    .await?;
    let network = network::CniNetwork::new(
        cfg.ns_dir(),
        cfg.cni_config_dir.clone(),
        cfg.cni_plugin_dirs.clone(),
        cfg.root.join("cni-cache"),
    );
    Ok(Backends {
        runtimes,
        images: Arc::new(images),
        network: Arc::new(network),
        spec: Arc::new(spec::CriusSpec::detect()?.with_pids_limit(cfg.pids_limit)),
    })
}
