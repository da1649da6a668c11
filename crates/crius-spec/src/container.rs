//! The container spec builder: puts all the rules together.

use std::collections::HashMap;
use std::path::PathBuf;

use k8s_cri::v1::{LinuxContainerSecurityContext, PodSandboxConfig};
use oci_spec::runtime::{Linux, LinuxResources, Process, Root, Spec, User};

use crate::annotations as ann;
use crate::error::{Result, SpecError};
use crate::types::{ContainerSpec, ContainerSpecInput};
use crate::{
    caps, devices, mounts, namespaces, process, resources, seccomp, security, sysctl, user,
};

/// `cgroupsPath` for the cgroupfs driver: `<parent>/<id>`, always absolute.
pub fn cgroups_path(parent: &str, id: &str) -> String {
    let parent = parent.trim_matches('/');
    if parent.is_empty() {
        format!("/{id}")
    } else {
        format!("/{parent}/{id}")
    }
}

/// The host's hostname (for containers in the host UTS namespace).
fn host_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The pod's hostname as containers see it: the sandbox config's, or the host's when empty.
pub(crate) fn pod_hostname(sandbox: &PodSandboxConfig) -> String {
    if sandbox.hostname.is_empty() {
        host_hostname()
    } else {
        sandbox.hostname.clone()
    }
}

/// Annotations shared by container and sandbox specs: the pod's identity.
pub(crate) fn pod_annotations(
    sandbox_id: &str,
    sandbox: &PodSandboxConfig,
) -> HashMap<String, String> {
    let mut a = HashMap::new();
    a.insert(ann::SANDBOX_ID.to_string(), sandbox_id.to_string());
    if let Some(m) = &sandbox.metadata {
        a.insert(ann::SANDBOX_NAME.to_string(), m.name.clone());
        a.insert(ann::SANDBOX_NAMESPACE.to_string(), m.namespace.clone());
        a.insert(ann::SANDBOX_UID.to_string(), m.uid.clone());
    }
    a
}

fn sandbox_privileged(sandbox: &PodSandboxConfig) -> bool {
    sandbox
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .map(|s| s.privileged)
        .unwrap_or(false)
}

/// Builds a container's OCI spec from its CRI config, its pod's config and its image (see the
/// crate docs for the rules). `root.path` is `input.rootfs`.
#[allow(deprecated)] // the CRI's deprecated seccomp/apparmor string fields are still honoured
pub fn container_spec(input: &ContainerSpecInput<'_>) -> Result<ContainerSpec> {
    let config = input.config;
    let image = input.image.config().as_ref();
    let default_sc = LinuxContainerSecurityContext::default();
    let linux_cfg = config.linux.as_ref();
    let sc = linux_cfg
        .and_then(|l| l.security_context.as_ref())
        .unwrap_or(&default_sc);
    let privileged = sc.privileged;
    if privileged && !sandbox_privileged(input.sandbox_config) {
        return Err(SpecError::field(
            "linux.security_context.privileged",
            "the pod sandbox was not created privileged",
        ));
    }

    // Process.
    let args = process::command_line(config, image)?;
    let resolved = user::resolve_user(
        input.rootfs,
        Some(sc),
        image.and_then(|i| i.user().as_deref()),
    )?;
    let hostname = pod_hostname(input.sandbox_config);
    let mut env = process::environment(
        image.and_then(|i| i.env().as_deref()).unwrap_or(&[]),
        &config.envs,
        &hostname,
        resolved.home.as_deref(),
    )?;
    if config.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_string());
    }
    let cwd = process::working_dir(config, image)?;
    let stop_signal = process::stop_signal(config, image)?;

    let mut capabilities = caps::container_capabilities(
        privileged,
        sc.capabilities.as_ref(),
        &input.daemon_capabilities,
    )?;
    if resolved.uid != 0 {
        caps::drop_for_non_root(&mut capabilities);
    }
    let bounding = capabilities.bounding().clone().unwrap_or_default();
    let seccomp = seccomp::container_seccomp(
        privileged,
        sc.seccomp.as_ref(),
        &sc.seccomp_profile_path,
        &bounding,
    )?;
    let apparmor = security::apparmor_profile(
        privileged,
        sc.apparmor.as_ref(),
        &sc.apparmor_profile,
        &input.host,
    )?;
    let selinux = security::selinux_label(sc.selinux_options.as_ref(), &input.host);

    let cri_resources = linux_cfg.and_then(|l| l.resources.as_ref());
    let oom = resources::oom_score_adj(
        cri_resources.map(|r| r.oom_score_adj).unwrap_or(0),
        input.daemon_oom_score_adj,
    )?;

    let mut proc_ = Process::default();
    proc_.set_terminal(Some(config.tty));
    proc_.set_args(Some(args));
    proc_.set_env(Some(env));
    proc_.set_cwd(PathBuf::from(cwd));
    let mut u = User::default();
    u.set_uid(resolved.uid);
    u.set_gid(resolved.gid);
    u.set_additional_gids(Some(resolved.additional_gids.clone()));
    proc_.set_user(u);
    proc_.set_capabilities(Some(capabilities));
    proc_.set_no_new_privileges(Some(sc.no_new_privs));
    proc_.set_apparmor_profile(apparmor);
    proc_.set_selinux_label(selinux);
    proc_.set_oom_score_adj(Some(oom));
    // Resource limits are inherited from the daemon: raising RLIMIT_NOFILE above the daemon's
    // hard limit needs CAP_SYS_RESOURCE, which this host withholds.
    proc_.set_rlimits(None);

    // Mounts.
    let (cri_mounts, rootfs_propagation) =
        mounts::cri_mounts(config, privileged, input.host.recursive_read_only)?;
    let uncovered = mounts::uncovered_image_volumes(config, image);
    let (volume_mounts, skipped_volumes) =
        mounts::image_volume_mounts(&uncovered, &input.image_volumes);
    let all_mounts = mounts::merge_mounts(vec![
        mounts::default_mounts(privileged),
        mounts::pod_mounts(&input.pod_files, sc.readonly_rootfs),
        volume_mounts,
        cri_mounts,
    ]);

    // Devices and resources.
    let (mut devs, dev_rules) = devices::cri_devices(&config.devices)?;
    let mut rules = Vec::new();
    if privileged {
        let cri_paths: Vec<PathBuf> = devs.iter().map(|d| d.path().clone()).collect();
        let host = devices::host_devices()?;
        devs.extend(host.into_iter().filter(|d| !cri_paths.contains(d.path())));
        rules.push(devices::allow_all_rule());
    } else {
        rules.push(devices::deny_all_rule());
        rules.extend(dev_rules);
    }
    let mut res = match cri_resources {
        Some(r) => resources::linux_resources(r)?,
        None => LinuxResources::default(),
    };
    res.set_devices(Some(rules));

    // Namespaces and sysctls.
    let ns_opts = sc.namespace_options.as_ref();
    let namespaces = namespaces::container_namespaces(
        ns_opts,
        &input.namespaces,
        input.target_pid_namespace.as_deref(),
        input.host.cgroup_namespace,
    )?;
    let has_ns = |t: oci_spec::runtime::LinuxNamespaceType| namespaces.iter().any(|n| n.typ() == t);
    let pod_sysctls = input
        .sandbox_config
        .linux
        .as_ref()
        .map(|l| l.sysctls.clone())
        .unwrap_or_default();
    let sysctls = sysctl::pod_sysctls(
        &pod_sysctls,
        has_ns(oci_spec::runtime::LinuxNamespaceType::Network),
        has_ns(oci_spec::runtime::LinuxNamespaceType::Ipc),
    )?;
    let own_uts = has_ns(oci_spec::runtime::LinuxNamespaceType::Uts);

    let (masked, readonly) = security::masked_and_readonly_paths(privileged, Some(sc));

    let mut linux = Linux::default();
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    linux.set_sysctl((!sysctls.is_empty()).then_some(sysctls));
    linux.set_resources(Some(res));
    linux.set_cgroups_path(Some(PathBuf::from(cgroups_path(
        &input.cgroup_parent,
        input.container_id,
    ))));
    linux.set_namespaces(Some(namespaces));
    linux.set_devices((!devs.is_empty()).then_some(devs));
    linux.set_seccomp(seccomp);
    linux.set_rootfs_propagation(rootfs_propagation.map(|p| p.as_str().to_string()));
    linux.set_masked_paths(Some(masked));
    linux.set_readonly_paths(Some(readonly));
    linux.set_mount_label(None);

    // Annotations: CRI ones, then crius markers, then the daemon's extras.
    let mut annotations: HashMap<String, String> = config.annotations.clone();
    annotations.extend(pod_annotations(input.sandbox_id, input.sandbox_config));
    annotations.insert(
        ann::CONTAINER_TYPE.into(),
        ann::CONTAINER_TYPE_CONTAINER.into(),
    );
    if let Some(m) = &config.metadata {
        annotations.insert(ann::CONTAINER_NAME.into(), m.name.clone());
    }
    if !input.image_name.is_empty() {
        annotations.insert(ann::IMAGE_NAME.into(), input.image_name.to_string());
    }
    if let Some(p) = &input.log_path {
        annotations.insert(ann::LOG_PATH.into(), p.display().to_string());
    }
    annotations.extend(input.extra_annotations.clone());

    let mut root = Root::default();
    root.set_path(input.rootfs.to_path_buf());
    root.set_readonly(Some(sc.readonly_rootfs));

    let mut spec = Spec::default();
    spec.set_process(Some(proc_));
    spec.set_root(Some(root));
    spec.set_hostname((own_uts && !hostname.is_empty()).then_some(hostname));
    spec.set_mounts(Some(all_mounts));
    spec.set_annotations(Some(annotations));
    spec.set_linux(Some(linux));
    spec.set_hooks(None);

    Ok(ContainerSpec {
        spec,
        stop_signal,
        user: resolved,
        tty: config.tty,
        skipped_volumes,
    })
}

#[cfg(test)]
#[path = "container_tests.rs"]
mod tests;
