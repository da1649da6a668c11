//! `SpecGenerator` over crius-spec.

use std::collections::HashMap;
use std::path::PathBuf;

use crius_spec::{
    ContainerSpecInput, HostFeatures, ImageVolume, PodFiles, PodNamespaces, SpecError,
};
use k8s_cri::v1 as cri;

use crate::backend::{GeneratedSpec, SpecGenerator, SpecInput};
use crate::error::{Error, Result};

/// The generator, with the host facts gathered once at startup.
pub struct CriusSpec {
    caps: oci_spec::runtime::Capabilities,
    oom_score_adj: i32,
    host: HostFeatures,
    /// The daemon's default pids limit of every container (`pids_limit`; 0/-1 = unlimited).
    pids_limit: i64,
}

fn map_err(e: SpecError) -> Error {
    if e.is_invalid_argument() {
        Error::InvalidArgument(e.to_string())
    } else {
        Error::Internal(e.to_string())
    }
}

impl CriusSpec {
    /// Reads the daemon's capabilities, oom_score_adj and the host's security modules.
    pub fn detect() -> Result<CriusSpec> {
        let caps = crius_spec::daemon_capabilities()
            .map_err(|e| Error::internal("read daemon capabilities", e))?;
        let oom_score_adj = crius_spec::own_oom_score_adj().unwrap_or(0);
        Ok(CriusSpec {
            caps,
            oom_score_adj,
            host: HostFeatures::detect(),
            pids_limit: 0,
        })
    }

    /// Sets the default pids limit put into every container's spec.
    pub fn with_pids_limit(mut self, limit: i64) -> Self {
        self.pids_limit = limit;
        self
    }
}

impl SpecGenerator for CriusSpec {
    fn container_spec(&self, input: &SpecInput<'_>) -> Result<GeneratedSpec> {
        let pod = input.pod;
        let files = pod.files();
        let host_ipc = pod.ns_options().ipc == cri::NamespaceMode::Node as i32;
        let pod_files = PodFiles {
            hostname: Some(files.hostname()),
            hosts: Some(files.hosts()),
            resolv_conf: Some(files.resolv()),
            shm: Some(if host_ipc {
                PathBuf::from("/dev/shm")
            } else {
                files.shm()
            }),
        };
        let namespaces = PodNamespaces {
            network: pod.namespaces.net.clone(),
            ipc: pod.namespaces.ipc.clone(),
            uts: pod.namespaces.uts.clone(),
            pid: input.pod_pid_ns.clone(),
        };
        // A pod with a user namespace: its mappings (its root owns the volume directories).
        let userns_map = match &pod.namespaces.user {
            Some(_) => Some(
                crate::sandbox::userns::pod_mappings(&pod.config)?.ok_or_else(|| {
                    Error::Internal(format!(
                        "pod {} has a user namespace but no mappings",
                        pod.id
                    ))
                })?,
            ),
            None => None,
        };
        // Image VOLUMEs no CRI mount covers: an empty directory in the bundle each.
        let mut image_volumes = Vec::new();
        for (i, v) in
            crius_spec::uncovered_image_volumes(input.config, input.image.config().as_ref())
                .into_iter()
                .enumerate()
        {
            let host_dir = input.bundle.join("volumes").join(i.to_string());
            std::fs::create_dir_all(&host_dir)
                .map_err(|e| Error::internal(format!("create {}", host_dir.display()), e))?;
            if let Some((uid, gid)) = userns_map.map(|m| m.host_root()) {
                std::os::unix::fs::chown(&host_dir, Some(uid), Some(gid))
                    .map_err(|e| Error::internal(format!("chown {}", host_dir.display()), e))?;
            }
            image_volumes.push(ImageVolume {
                container_path: v,
                host_dir,
            });
        }
        let out = crius_spec::container_spec(&ContainerSpecInput {
            container_id: input.id,
            sandbox_id: &pod.id,
            config: input.config,
            sandbox_config: &pod.config,
            image: input.image,
            image_name: input.image_name,
            rootfs: input.rootfs,
            namespaces,
            target_pid_namespace: input.target_pid_ns.clone(),
            pod_files,
            log_path: input.log_path.clone(),
            cgroup_parent: pod.cgroup_parent.clone(),
            daemon_capabilities: self.caps.clone(),
            daemon_oom_score_adj: self.oom_score_adj,
            image_volumes,
            extra_annotations: HashMap::new(),
            host: self.host.clone(),
        })
        .map_err(map_err)?;
        let mut spec = out.spec;
        crius_spec::set_default_pids_limit(&mut spec, self.pids_limit).map_err(map_err)?;
        if let (Some(userns), Some(map)) = (&pod.namespaces.user, &userns_map) {
            crius_spec::join_user_namespace(&mut spec, userns, map);
        }
        Ok(GeneratedSpec {
            spec,
            stop_signal: out.stop_signal,
            user: Some((out.user.uid, out.user.gid, out.user.additional_gids)),
        })
    }

    fn linux_resources(
        &self,
        res: &cri::LinuxContainerResources,
    ) -> Result<oci_spec::runtime::LinuxResources> {
        crius_spec::linux_resources(res).map_err(map_err)
    }

    fn validate_pod(&self, config: &cri::PodSandboxConfig) -> Result<()> {
        let Some(linux) = &config.linux else {
            return Ok(());
        };
        let ns = linux
            .security_context
            .as_ref()
            .and_then(|s| s.namespace_options.clone())
            .unwrap_or_default();
        crius_spec::pod_user_namespace(Some(&ns)).map_err(map_err)?;
        let own_net = ns.network != cri::NamespaceMode::Node as i32;
        let own_ipc = ns.ipc != cri::NamespaceMode::Node as i32;
        crius_spec::pod_sysctls(&linux.sysctls, own_net, own_ipc)
            .map(drop)
            .map_err(map_err)
    }

    fn cgroups_path(&self, parent: &str, id: &str) -> String {
        crius_spec::cgroups_path(parent, id)
    }
}
