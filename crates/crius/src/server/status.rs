//! Status: RuntimeReady and NetworkReady conditions that tell the truth.
use super::*;

/// The runtime and network conditions (and verbose info).
pub async fn handle(c: Arc<Crius>, r: cri::StatusRequest) -> Result<cri::StatusResponse> {
    let runtime_ready = match c.cfg.validate() {
        Ok(()) => cri::RuntimeCondition {
            r#type: "RuntimeReady".into(),
            status: true,
            reason: String::new(),
            message: String::new(),
        },
        Err(e) => cri::RuntimeCondition {
            r#type: "RuntimeReady".into(),
            status: false,
            reason: "RuntimeUnavailable".into(),
            message: e.to_string(),
        },
    };
    let network_ready = match c.be.network.status().await {
        Ok(()) => cri::RuntimeCondition {
            r#type: "NetworkReady".into(),
            status: true,
            reason: String::new(),
            message: String::new(),
        },
        Err((reason, message)) => cri::RuntimeCondition {
            r#type: "NetworkReady".into(),
            status: false,
            reason,
            message,
        },
    };
    let mut info = std::collections::HashMap::new();
    if r.verbose {
        let cfg = serde_json::json!({
            "root": c.cfg.root, "runroot": c.cfg.runroot, "defaultRuntime": c.cfg.default_runtime,
            "runtimes": c.cfg.runtimes.keys().collect::<Vec<_>>(), "cniConfigDir": c.cfg.cni_config_dir,
            "cniPluginDirs": c.cfg.cni_plugin_dirs, "cgroupDriver": "cgroupfs",
        });
        info.insert("config".to_string(), cfg.to_string());
    }
    let rro = recursive_read_only_by_handler(&c);
    // Pods with a user namespace: idmapped layers on the image store, any handler.
    let userns = crate::sandbox::userns::supported(&c);
    let features = |name: &str| {
        Some(cri::RuntimeHandlerFeatures {
            recursive_read_only_mounts: rro.get(name).copied().unwrap_or(false),
            user_namespaces: userns,
        })
    };
    // The kubelet (and critest) name the default handler "", so it is listed under that name too.
    let runtime_handlers = std::iter::once(cri::RuntimeHandler {
        name: String::new(),
        features: features(&c.cfg.default_runtime),
    })
    .chain(c.cfg.runtimes.keys().map(|name| cri::RuntimeHandler {
        name: name.clone(),
        features: features(name),
    }))
    .collect();
    Ok(cri::StatusResponse {
        status: Some(cri::RuntimeStatus {
            conditions: vec![runtime_ready, network_ready],
        }),
        info,
        runtime_handlers,
        features: Some(cri::RuntimeFeatures {
            supplemental_groups_policy: crius_spec::SUPPLEMENTAL_GROUPS_POLICY_SUPPORTED,
            // noexec, nodev and nosuid on CRI bind mounts (crius_spec::cri_mounts).
            mount_options: true,
            user_namespaces_host_network: false,
        }),
    })
}

/// Whether each handler's runtime (and the kernel) honour recursive read-only mounts. Asking
/// runs the runtime binary, so it is asked once per daemon, at the first Status.
fn recursive_read_only_by_handler(c: &Crius) -> &'static std::collections::BTreeMap<String, bool> {
    static RRO: std::sync::OnceLock<std::collections::BTreeMap<String, bool>> =
        std::sync::OnceLock::new();
    RRO.get_or_init(|| {
        c.cfg
            .runtimes
            .iter()
            .map(|(name, h)| {
                (
                    name.clone(),
                    crius_spec::recursive_read_only_supported(&h.path),
                )
            })
            .collect()
    })
}
