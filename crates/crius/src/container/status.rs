//! CRI views of a container record, and the ListContainers filter.

use std::collections::HashMap;

use k8s_cri::v1 as cri;

use crate::state::ContainerRecord;

/// The image spec echoed back: the name the user gave.
fn image_spec(rec: &ContainerRecord) -> cri::ImageSpec {
    rec.config.image.clone().unwrap_or_default()
}

/// ContainerStatus of a record.
pub fn container_status(rec: &ContainerRecord) -> cri::ContainerStatus {
    cri::ContainerStatus {
        id: rec.id.clone(),
        metadata: Some(rec.metadata()),
        state: rec.state.cri() as i32,
        created_at: rec.created_at,
        started_at: rec.started_at,
        finished_at: rec.finished_at,
        exit_code: rec.exit_code,
        image: Some(image_spec(rec)),
        image_ref: rec.image_ref.clone(),
        reason: rec.reason().to_string(),
        message: rec.message.clone(),
        labels: rec.config.labels.clone(),
        annotations: rec.config.annotations.clone(),
        mounts: rec.config.mounts.clone(),
        log_path: rec.log_path.clone(),
        resources: Some(cri::ContainerResources {
            linux: rec
                .resources
                .clone()
                .or_else(|| rec.config.linux.as_ref().and_then(|l| l.resources.clone())),
            windows: None,
        }),
        image_id: rec.image_id.clone(),
        user: rec
            .user
            .as_ref()
            .map(|(uid, gid, gids)| cri::ContainerUser {
                linux: Some(cri::LinuxContainerUser {
                    uid: i64::from(*uid),
                    gid: i64::from(*gid),
                    // The spec's group list starts with the primary group already.
                    supplemental_groups: gids.iter().copied().map(i64::from).collect(),
                }),
            }),
        stop_signal: crius_spec::signal_to_cri(rec.stop_signal),
    }
}

/// The ListContainers item of a record.
pub fn container_item(rec: &ContainerRecord) -> cri::Container {
    cri::Container {
        id: rec.id.clone(),
        pod_sandbox_id: rec.pod_id.clone(),
        metadata: Some(rec.metadata()),
        image: Some(image_spec(rec)),
        image_ref: rec.image_ref.clone(),
        state: rec.state.cri() as i32,
        created_at: rec.created_at,
        labels: rec.config.labels.clone(),
        annotations: rec.config.annotations.clone(),
        image_id: rec.image_id.clone(),
    }
}

/// Whether a record passes a ListContainers filter (ID prefix, pod ID prefix, state, labels).
pub fn matches(rec: &ContainerRecord, f: &cri::ContainerFilter) -> bool {
    if !f.id.is_empty() && !rec.id.starts_with(&f.id) {
        return false;
    }
    if !f.pod_sandbox_id.is_empty() && !rec.pod_id.starts_with(&f.pod_sandbox_id) {
        return false;
    }
    if let Some(s) = &f.state {
        if s.state != rec.state.cri() as i32 {
            return false;
        }
    }
    f.label_selector
        .iter()
        .all(|(k, v)| rec.config.labels.get(k) == Some(v))
}

/// The verbose info map of ContainerStatus: `info` = JSON with pid, bundle, runtime, config.
pub fn verbose_info(
    rec: &ContainerRecord,
    spec: Option<serde_json::Value>,
) -> HashMap<String, String> {
    let info = serde_json::json!({
        "id": rec.id,
        "name": rec.name,
        "sandboxID": rec.pod_id,
        "pid": rec.pid,
        "bundle": rec.bundle,
        "runtimeHandler": rec.runtime_handler,
        "imageId": rec.image_id,
        "stopSignal": rec.stop_signal,
        "config": rec.config,
        "runtimeSpec": spec,
    });
    HashMap::from([("info".to_string(), info.to_string())])
}
