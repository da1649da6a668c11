//! Pod-level parts of a container's OCI spec that only the daemon knows: the pod's pinned
//! namespaces, the shared PID namespace, the pod files (/etc/hosts, /etc/resolv.conf,
//! /etc/hostname, /dev/shm) and the cgroup path. Applied to the JSON of the generated spec.

use k8s_cri::v1 as cri;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::state::PodRecord;

/// Where a container's PID namespace comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PidNs {
    /// Its own.
    Private,
    /// The host's.
    Host,
    /// Another process's (`/proc/<pid>/ns/pid`: the pod infra or a target container).
    Join(String),
}

/// Applies the pod parts to `spec` (the generated spec as JSON).
pub fn apply_pod(spec: &mut Value, pod: &PodRecord, config: &cri::ContainerConfig, id: &str, pid: PidNs) -> Result<()> {
    let obj = spec.as_object_mut().ok_or_else(|| Error::Internal("generated spec is not an object".into()))?;
    let host_ipc = pod.ns_options().ipc == cri::NamespaceMode::Node as i32;

    // Namespaces: keep user/cgroup/time from the generator, set the rest.
    let linux = obj.entry("linux").or_insert_with(|| json!({}));
    let linux = linux.as_object_mut().ok_or_else(|| Error::Internal("spec.linux is not an object".into()))?;
    let mut namespaces: Vec<Value> = linux
        .get("namespaces")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|n| matches!(n.get("type").and_then(Value::as_str), Some("user" | "cgroup" | "time")))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    namespaces.push(json!({"type": "mount"}));
    let ns = &pod.namespaces;
    for (kind, path) in [("network", &ns.net), ("ipc", &ns.ipc), ("uts", &ns.uts)] {
        if let Some(p) = path {
            namespaces.push(json!({"type": kind, "path": p}));
        }
    }
    match &pid {
        PidNs::Private => namespaces.push(json!({"type": "pid"})),
        PidNs::Host => {}
        PidNs::Join(p) => namespaces.push(json!({"type": "pid", "path": p})),
    }
    linux.insert("namespaces".into(), Value::Array(namespaces));
    linux.insert("cgroupsPath".into(), json!(format!("{}/crius-{}", pod.cgroup_parent.trim_end_matches('/'), id)));

    // Hostname only with the pod's own UTS namespace.
    if ns.uts.is_some() {
        obj.insert("hostname".into(), json!(pod.hostname()));
    } else {
        obj.remove("hostname");
    }

    // Pod files, unless the container mounts its own at that path.
    let user_dests: Vec<&str> = config.mounts.iter().map(|m| m.container_path.as_str()).collect();
    let files = pod.files();
    let shm_src = if host_ipc { "/dev/shm".into() } else { files.shm() };
    let readonly_rootfs = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .map(|s| s.readonly_rootfs)
        .unwrap_or(false);
    let file_opts = if readonly_rootfs { json!(["rbind", "rprivate", "ro"]) } else { json!(["rbind", "rprivate", "rw"]) };
    let extra = [
        ("/etc/hosts", files.hosts(), file_opts.clone()),
        ("/etc/resolv.conf", files.resolv(), file_opts.clone()),
        ("/etc/hostname", files.hostname(), file_opts),
        ("/dev/shm", shm_src, json!(["rbind", "rprivate", "nosuid", "noexec", "nodev"])),
    ];
    let mounts = obj.entry("mounts").or_insert_with(|| json!([]));
    let mounts = mounts.as_array_mut().ok_or_else(|| Error::Internal("spec.mounts is not an array".into()))?;
    for (dest, src, opts) in extra {
        if user_dests.contains(&dest) {
            continue;
        }
        mounts.retain(|m| m.get("destination").and_then(Value::as_str) != Some(dest));
        mounts.push(json!({"destination": dest, "type": "bind", "source": src, "options": opts}));
    }
    Ok(())
}

/// The container's PID namespace choice from its security context.
pub fn pid_mode(config: &cri::ContainerConfig, pod: &PodRecord) -> i32 {
    config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
        .map(|n| n.pid)
        .unwrap_or_else(|| pod.ns_options().pid)
}

/// The target container ID for `NamespaceMode::Target`.
pub fn pid_target(config: &cri::ContainerConfig) -> Option<String> {
    config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
        .map(|n| n.target_id.clone())
        .filter(|t| !t.is_empty())
}

/// Parses an image StopSignal ("SIGTERM", "TERM", "15", "SIGRTMIN+3"); `None` when unknown.
pub fn parse_signal(s: &str) -> Option<i32> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<i32>() {
        return Some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    if let Some(rest) = name.strip_prefix("SIGRTMIN") {
        let off: i32 = if rest.is_empty() { 0 } else { rest.strip_prefix('+')?.parse().ok()? };
        return Some(libc::SIGRTMIN() + off);
    }
    if let Some(rest) = name.strip_prefix("SIGRTMAX") {
        let off: i32 = if rest.is_empty() { 0 } else { rest.strip_prefix('-')?.parse().ok()? };
        return Some(libc::SIGRTMAX() - off);
    }
    name.parse::<nix::sys::signal::Signal>().ok().map(|s| s as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::PodNamespaces;
    use crate::state::{PodState, Stage};

    fn pod() -> PodRecord {
        PodRecord {
            id: "p".repeat(64),
            name: "k8s_POD_a_b_c_0".into(),
            stage: Stage::Created,
            state: PodState::Ready,
            created_at: 1,
            config: cri::PodSandboxConfig { hostname: "web".into(), ..Default::default() },
            runtime_handler: "runc".into(),
            namespaces: PodNamespaces {
                net: Some("/run/x/net".into()),
                ipc: Some("/run/x/ipc".into()),
                uts: Some("/run/x/uts".into()),
            },
            ips: vec![],
            network_attached: false,
            run_dir: "/run/crius/pods/p".into(),
            shm_mounted: true,
            cgroup_parent: "/kubepods/".into(),
            infra_id: None,
            infra_pid: None,
        }
    }

    #[test]
    fn pod_namespaces_and_files() {
        let mut spec = json!({
            "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "cgroup"}]},
            "mounts": [{"destination": "/dev/shm", "type": "tmpfs", "source": "shm"}]
        });
        let cfg = cri::ContainerConfig {
            mounts: vec![cri::Mount { container_path: "/etc/hosts".into(), ..Default::default() }],
            ..Default::default()
        };
        apply_pod(&mut spec, &pod(), &cfg, "c1", PidNs::Join("/proc/9/ns/pid".into())).expect("apply");
        let ns = spec["linux"]["namespaces"].as_array().expect("ns");
        let kinds: Vec<&str> = ns.iter().map(|n| n["type"].as_str().expect("type")).collect();
        assert_eq!(kinds, vec!["cgroup", "mount", "network", "ipc", "uts", "pid"]);
        assert_eq!(ns[2]["path"], "/run/x/net");
        assert_eq!(ns[5]["path"], "/proc/9/ns/pid");
        assert_eq!(spec["linux"]["cgroupsPath"], "/kubepods/crius-c1");
        assert_eq!(spec["hostname"], "web");
        let dests: Vec<&str> =
            spec["mounts"].as_array().expect("m").iter().map(|m| m["destination"].as_str().expect("d")).collect();
        assert_eq!(dests, vec!["/etc/resolv.conf", "/etc/hostname", "/dev/shm"]);
        assert_eq!(spec["mounts"][2]["source"], "/run/crius/pods/p/shm");
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM"), Some(15));
        assert_eq!(parse_signal("term"), Some(15));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("SIGWINCH"), Some(libc::SIGWINCH));
        assert_eq!(parse_signal("SIGRTMIN+3"), Some(libc::SIGRTMIN() + 3));
        assert_eq!(parse_signal("BOGUS"), None);
        assert_eq!(parse_signal(""), None);
    }
}
