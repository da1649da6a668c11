//! The spec of a pod's infra (pause) container, run only when the pod shares a PID namespace.

use std::collections::HashMap;
use std::path::PathBuf;

use oci_spec::runtime::{
    Capabilities, Linux, LinuxCapabilities, LinuxNamespaceType, LinuxResources, Process, Root,
    Spec, User,
};

use crate::annotations as ann;
use crate::container::{cgroups_path, pod_annotations, pod_hostname};
use crate::error::Result;
use crate::mounts::{default_mounts, mount};
use crate::namespaces::check_user_namespace;
use crate::security::{DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS};
use crate::types::{PodNamespaces, SandboxSpecInput};
use crate::{devices, resources, seccomp, sysctl};

/// UID and GID the pause process runs as.
pub const PAUSE_ID: u32 = 65535;

/// Where the pause binary is mounted inside the infra container.
pub const PAUSE_PATH: &str = "/pause";

/// `oom_score_adj` the infra process asks for (raised to the daemon's own if that is higher).
pub const PAUSE_OOM_SCORE_ADJ: i64 = -998;

/// Builds the infra container spec: `/pause` (the host binary bind-mounted read-only) plus
/// `pause_args`, as UID/GID 65535 with no capabilities, the RuntimeDefault seccomp profile,
/// no_new_privileges, a read-only rootfs, joining the pod's network/IPC/UTS namespaces and
/// creating the PID namespace the pod's containers join. The rootfs directory and the pause
/// binary must be readable and searchable by UID 65535.
pub fn sandbox_spec(input: &SandboxSpecInput<'_>) -> Result<Spec> {
    let cfg = input.config;
    let linux_cfg = cfg.linux.as_ref();
    check_user_namespace(
        linux_cfg
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.as_ref()),
    )?;

    let mut args = vec![PAUSE_PATH.to_string()];
    args.extend(input.pause_args.iter().cloned());
    let mut proc_ = Process::default();
    proc_.set_terminal(Some(false));
    proc_.set_args(Some(args));
    proc_.set_env(Some(vec![format!("PATH={}", crate::process::DEFAULT_PATH)]));
    proc_.set_cwd(PathBuf::from("/"));
    let mut user = User::default();
    user.set_uid(PAUSE_ID);
    user.set_gid(PAUSE_ID);
    user.set_additional_gids(Some(vec![PAUSE_ID]));
    proc_.set_user(user);
    let none = Capabilities::new();
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(none.clone()));
    caps.set_effective(Some(none.clone()));
    caps.set_permitted(Some(none.clone()));
    caps.set_inheritable(Some(none.clone()));
    caps.set_ambient(Some(none.clone()));
    proc_.set_capabilities(Some(caps));
    proc_.set_no_new_privileges(Some(true));
    proc_.set_oom_score_adj(Some(resources::oom_score_adj(
        PAUSE_OOM_SCORE_ADJ,
        input.daemon_oom_score_adj,
    )?));
    proc_.set_rlimits(None);

    let mut mounts = default_mounts(false);
    mounts.push(mount(
        "/dev/shm",
        "tmpfs",
        "shm",
        &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    ));
    mounts.push(mount(
        PAUSE_PATH,
        "bind",
        input.pause_binary,
        &["rbind", "rprivate", "ro", "nosuid", "nodev"],
    ));
    for dir in &input.read_only_binds {
        let dest = dir.to_string_lossy();
        mounts.push(mount(
            &dest,
            "bind",
            dir,
            &["rbind", "rprivate", "ro", "nosuid", "nodev"],
        ));
    }

    let pod_ns = PodNamespaces {
        pid: None,
        ..input.namespaces.clone()
    };
    let mut namespaces = crate::namespaces::container_namespaces(None, &pod_ns, None, false)?;
    // container_namespaces joined `pid` = None as a new PID namespace already (POD mode).
    debug_assert!(namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Pid));
    namespaces.retain(|n| n.typ() != LinuxNamespaceType::Cgroup);

    let sysctls = sysctl::pod_sysctls(
        &linux_cfg.map(|l| l.sysctls.clone()).unwrap_or_default(),
        pod_ns.network.is_some(),
        pod_ns.ipc.is_some(),
    )?;

    let mut res = LinuxResources::default();
    res.set_devices(Some(vec![devices::deny_all_rule()]));

    let mut linux = Linux::default();
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    linux.set_sysctl((!sysctls.is_empty()).then_some(sysctls));
    linux.set_resources(Some(res));
    linux.set_cgroups_path(Some(PathBuf::from(cgroups_path(
        &input.cgroup_parent,
        input.sandbox_id,
    ))));
    linux.set_namespaces(Some(namespaces));
    linux.set_devices(None);
    linux.set_seccomp(Some(seccomp::default_profile(&none)));
    linux.set_masked_paths(Some(
        DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
    ));
    linux.set_readonly_paths(Some(
        DEFAULT_READONLY_PATHS
            .iter()
            .map(|s| s.to_string())
            .collect(),
    ));

    let mut annotations: HashMap<String, String> = cfg.annotations.clone();
    annotations.extend(pod_annotations(input.sandbox_id, cfg));
    annotations.insert(
        ann::CONTAINER_TYPE.into(),
        ann::CONTAINER_TYPE_SANDBOX.into(),
    );
    if !cfg.log_directory.is_empty() {
        annotations.insert(ann::SANDBOX_LOG_DIRECTORY.into(), cfg.log_directory.clone());
    }
    annotations.extend(input.extra_annotations.clone());

    let mut root = Root::default();
    root.set_path(input.rootfs.to_path_buf());
    root.set_readonly(Some(true));

    let mut spec = Spec::default();
    spec.set_process(Some(proc_));
    spec.set_root(Some(root));
    let hostname = pod_hostname(cfg);
    spec.set_hostname((pod_ns.uts.is_some() && !hostname.is_empty()).then_some(hostname));
    spec.set_mounts(Some(mounts));
    spec.set_annotations(Some(annotations));
    spec.set_linux(Some(linux));
    spec.set_hooks(None);
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_cri::v1::{LinuxPodSandboxConfig, PodSandboxConfig, PodSandboxMetadata};
    use std::path::Path;

    fn config() -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: "p".into(),
                uid: "u".into(),
                namespace: "ns".into(),
                attempt: 0,
            }),
            hostname: "pod-host".into(),
            log_directory: "/var/log/pods/ns_p_u".into(),
            annotations: [("a".to_string(), "b".to_string())].into(),
            linux: Some(LinuxPodSandboxConfig {
                sysctls: [("kernel.shmmax".to_string(), "1000000".to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn input<'a>(cfg: &'a PodSandboxConfig, ns: PodNamespaces) -> SandboxSpecInput<'a> {
        SandboxSpecInput {
            sandbox_id: "sb1",
            config: cfg,
            pause_binary: Path::new("/usr/libexec/crius/pause"),
            pause_args: vec!["--quiet".into()],
            read_only_binds: vec!["/usr/lib".into()],
            rootfs: Path::new("/var/lib/crius/infra-root"),
            namespaces: ns,
            cgroup_parent: "/kubepods/podu".into(),
            daemon_oom_score_adj: -900,
            extra_annotations: HashMap::new(),
        }
    }

    #[test]
    fn pause_spec() {
        let cfg = config();
        let ns = PodNamespaces {
            network: Some("/run/netns/x".into()),
            ipc: Some("/run/ipc/x".into()),
            uts: Some("/run/uts/x".into()),
            pid: Some("/ignored".into()),
        };
        let spec = sandbox_spec(&input(&cfg, ns)).expect("spec");
        let p = spec.process().as_ref().expect("process");
        assert_eq!(
            p.args().as_deref(),
            Some(&["/pause".to_string(), "--quiet".to_string()][..])
        );
        assert_eq!((p.user().uid(), p.user().gid()), (PAUSE_ID, PAUSE_ID));
        assert_eq!(p.oom_score_adj(), Some(-900), "clamped to the daemon's");
        assert_eq!(p.no_new_privileges(), Some(true));
        let caps = p.capabilities().as_ref().expect("caps");
        assert!(caps.bounding().as_ref().expect("bounding").is_empty());
        let root = spec.root().as_ref().expect("root");
        assert_eq!(root.readonly(), Some(true));
        assert_eq!(root.path(), Path::new("/var/lib/crius/infra-root"));
        let pause = spec
            .mounts()
            .as_ref()
            .expect("mounts")
            .iter()
            .find(|m| m.destination() == Path::new(PAUSE_PATH))
            .expect("pause mount");
        assert_eq!(
            pause.source().as_deref(),
            Some(Path::new("/usr/libexec/crius/pause"))
        );
        assert!(pause
            .options()
            .as_ref()
            .expect("opts")
            .contains(&"ro".to_string()));
        let linux = spec.linux().as_ref().expect("linux");
        let ns: Vec<String> = linux
            .namespaces()
            .as_ref()
            .expect("ns")
            .iter()
            .map(|n| format!("{}={:?}", n.typ(), n.path()))
            .collect();
        assert!(
            ns.contains(&"pid=None".to_string()),
            "{ns:?}: new PID namespace"
        );
        assert!(
            ns.contains(&"net=Some(\"/run/netns/x\")".to_string()),
            "{ns:?}"
        );
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/kubepods/podu/sb1"))
        );
        assert!(linux.seccomp().is_some());
        assert_eq!(
            linux.sysctl().as_ref().expect("sysctl")["kernel.shmmax"],
            "1000000"
        );
        assert_eq!(spec.hostname().as_deref(), Some("pod-host"));
        let a = spec.annotations().as_ref().expect("annotations");
        assert_eq!(a[ann::CONTAINER_TYPE], ann::CONTAINER_TYPE_SANDBOX);
        assert_eq!(a[ann::SANDBOX_LOG_DIRECTORY], "/var/log/pods/ns_p_u");
        assert_eq!(a["a"], "b");
    }

    #[test]
    fn host_ipc_refuses_ipc_sysctls() {
        let cfg = config();
        let ns = PodNamespaces {
            network: Some("/run/netns/x".into()),
            ..Default::default()
        };
        assert!(matches!(
            sandbox_spec(&input(&cfg, ns)),
            Err(crate::SpecError::Sysctl { .. })
        ));
    }
}
