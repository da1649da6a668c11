//! CRI views of a pod record, and the ListPodSandbox filter.

use k8s_cri::v1 as cri;

use crate::state::{PodRecord, PodState};

/// The CRI state value.
pub fn cri_state(rec: &PodRecord) -> cri::PodSandboxState {
    match rec.state {
        PodState::Ready => cri::PodSandboxState::SandboxReady,
        PodState::NotReady => cri::PodSandboxState::SandboxNotready,
    }
}

/// PodSandboxStatus of a record.
pub fn pod_status(rec: &PodRecord) -> cri::PodSandboxStatus {
    let network = if rec.host_network() {
        None
    } else {
        Some(cri::PodSandboxNetworkStatus {
            ip: rec.ips.first().cloned().unwrap_or_default(),
            additional_ips: rec
                .ips
                .iter()
                .skip(1)
                .map(|ip| cri::PodIp { ip: ip.clone() })
                .collect(),
        })
    };
    cri::PodSandboxStatus {
        id: rec.id.clone(),
        metadata: Some(rec.metadata()),
        state: cri_state(rec) as i32,
        created_at: rec.created_at,
        network,
        linux: Some(cri::LinuxPodSandboxStatus {
            namespaces: Some(cri::Namespace {
                options: Some(rec.ns_options()),
            }),
        }),
        labels: rec.config.labels.clone(),
        annotations: rec.config.annotations.clone(),
        runtime_handler: rec.runtime_handler.clone(),
    }
}

/// The ListPodSandbox item of a record.
pub fn pod_item(rec: &PodRecord) -> cri::PodSandbox {
    cri::PodSandbox {
        id: rec.id.clone(),
        metadata: Some(rec.metadata()),
        state: cri_state(rec) as i32,
        created_at: rec.created_at,
        labels: rec.config.labels.clone(),
        annotations: rec.config.annotations.clone(),
        runtime_handler: rec.runtime_handler.clone(),
    }
}

/// Whether a record passes a ListPodSandbox filter (ID prefix, state, labels).
pub fn matches(rec: &PodRecord, f: &cri::PodSandboxFilter) -> bool {
    if !f.id.is_empty() && !rec.id.starts_with(&f.id) {
        return false;
    }
    if let Some(s) = &f.state {
        if s.state != cri_state(rec) as i32 {
            return false;
        }
    }
    f.label_selector
        .iter()
        .all(|(k, v)| rec.config.labels.get(k) == Some(v))
}

/// The verbose info map of PodSandboxStatus: `info` = JSON of the record.
pub fn verbose_info(rec: &PodRecord) -> std::collections::HashMap<String, String> {
    let mut m = std::collections::HashMap::new();
    let info = serde_json::json!({
        "id": rec.id,
        "name": rec.name,
        "runtimeHandler": rec.runtime_handler,
        "namespaces": rec.namespaces,
        "ips": rec.ips,
        "runDir": rec.run_dir,
        "cgroupParent": rec.cgroup_parent,
        "infraContainerId": rec.infra_id,
        "infraPid": rec.infra_pid,
        "config": rec.config,
    });
    m.insert("info".to_string(), info.to_string());
    m
}
