//! Pods with their own user namespace (CRI `userns_options` mode POD).
//!
//! The pod's user namespace is made and pinned with its other namespaces (crius-network), which
//! it owns; every container (and the infra process) joins it by path (crius-spec
//! `join_user_namespace`), and container root filesystems are overlays of idmapped image layers
//! (crius-image), so image files owned by root are owned by root inside. The feature is
//! advertised (Status `user_namespaces`) only when the image store's filesystem takes idmapped
//! mounts, probed once with a throwaway user namespace as critest probes it.

use std::path::PathBuf;
use std::sync::OnceLock;

use k8s_cri::v1 as cri;

use crate::error::{Error, Result};
use crate::service::Crius;
use crate::state::PodRecord;

/// The mappings of the pod's user namespace, `None` without one (mode NODE or no options).
/// Invalid options (CONTAINER/TARGET, not exactly one mapping, container ID 0 unmapped, host
/// network/IPC/PID) are InvalidArgument.
pub fn pod_mappings(
    config: &cri::PodSandboxConfig,
) -> Result<Option<crius_spec::UserNamespaceMappings>> {
    let opts = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref());
    crius_spec::pod_user_namespace(opts).map_err(|e| Error::InvalidArgument(e.to_string()))
}

/// Whether idmapped mounts work on the filesystem of `dir` (with a throwaway user namespace
/// mapping 0 to host 65536); the reason when not.
pub fn probe_idmap(dir: &std::path::Path) -> std::result::Result<(), String> {
    let range = crius_network::IdRange {
        container_id: 0,
        host_id: 65536,
        size: 65536,
    };
    let helper = crius_network::UsernsProcess::spawn(
        &crius_network::UsernsMappings {
            uids: range,
            gids: range,
        },
        nix::sched::CloneFlags::empty(),
    )
    .map_err(|e| e.to_string())?;
    crius_image::idmap_supported(dir, &helper.ns_path("user"))
        .map_err(|e| format!("idmapped mount of {}: {e}", dir.display()))
}

/// Whether this daemon supports pods with a user namespace: [`probe_idmap`] on the image
/// store, once per daemon. (runc >= 1.1 and crun join a user namespace by path alike.)
pub fn supported(c: &Crius) -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| match probe_idmap(&c.cfg.image_root()) {
        Ok(()) => true,
        Err(reason) => {
            tracing::warn!(%reason, "user namespaces disabled: no idmapped mounts");
            false
        }
    })
}

/// Makes sure the pod's root (an unprivileged host UID) can reach what the OCI runtime mounts
/// from inside the user namespace: container rootfs (image store), bundles and pod files. Each
/// directory from `/` down to them must be searchable by others (`o+x`). The daemon's own
/// directories (under `root` / `runroot`) that are not get `o+x` added (traverse only, as a
/// 0711 directory); any other one is a FailedPrecondition naming it.
pub fn ensure_traversable(c: &Crius) -> Result<()> {
    make_searchable(
        &[
            c.cfg.image_root().join("containers"),
            c.cfg.bundles_dir(),
            c.cfg.pods_run_dir(),
        ],
        &[c.cfg.root.clone(), c.cfg.runroot.clone()],
    )
}

/// Creates each of `targets` and makes every directory from `/` down to it searchable by
/// others: directories under one of `own` get `o+x`, any other one lacking it is an error.
fn make_searchable(targets: &[PathBuf], own: &[PathBuf]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for target in targets {
        std::fs::create_dir_all(target)
            .map_err(|e| Error::internal(format!("create {}", target.display()), e))?;
        for dir in target.ancestors() {
            let md = std::fs::metadata(dir)
                .map_err(|e| Error::internal(format!("stat {}", dir.display()), e))?;
            let mode = md.permissions().mode() & 0o7777;
            if mode & 0o001 != 0 {
                continue;
            }
            if !own.iter().any(|o| dir.starts_with(o)) {
                return Err(Error::FailedPrecondition(format!(
                    "user namespaces: {} (mode {mode:o}) is not searchable by the pod's root; \
                     every parent of the daemon's root and runroot needs o+x (e.g. 0711)",
                    dir.display(),
                )));
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o001))
                .map_err(|e| Error::internal(format!("chmod o+x {}", dir.display()), e))?;
            tracing::info!(dir = %dir.display(), "made searchable for user namespace pods");
        }
    }
    Ok(())
}

impl Crius {
    /// Mounts a container's rootfs for `pod`: idmapped for the pod's user namespace, if any.
    pub async fn mount_pod_rootfs(
        &self,
        pod: &PodRecord,
        image_id: &str,
        container_id: &str,
    ) -> Result<PathBuf> {
        let Some(userns) = &pod.namespaces.user else {
            return self.be.images.mount_rootfs(image_id, container_id).await;
        };
        let map = pod_mappings(&pod.config)?.ok_or_else(|| {
            Error::Internal(format!(
                "pod {} has a user namespace but no userns_options mappings",
                pod.id
            ))
        })?;
        let (uid, gid) = map.host_root();
        self.be
            .images
            .mount_rootfs_idmapped(image_id, container_id, userns, uid, gid)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_finds_idmap_support_on_a_local_filesystem() {
        // The workspace's target dir is on the machine's root filesystem (ext4 here).
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("tempdir");
        assert_eq!(probe_idmap(dir.path()), Ok(()));
        assert!(probe_idmap(std::path::Path::new("/nonexistent/x")).is_err());
    }

    #[test]
    fn own_directories_become_searchable_others_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        let tmp = tempfile::tempdir().expect("tempdir");
        let own = tmp.path().join("own");
        std::fs::create_dir(&own).expect("mkdir");
        std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let target = own.join("a/b");
        make_searchable(std::slice::from_ref(&target), std::slice::from_ref(&own))
            .expect("own dirs");
        assert_eq!(mode(&own), 0o701);
        assert!(target.is_dir());

        let foreign = tmp.path().join("foreign");
        std::fs::create_dir(&foreign).expect("mkdir");
        std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let err = make_searchable(&[foreign.join("x")], &[foreign.join("x")]).unwrap_err();
        assert!(
            matches!(err, Error::FailedPrecondition(ref m) if m.contains("foreign")),
            "{err}"
        );
        assert_eq!(mode(&foreign), 0o700, "a foreign directory is left alone");
    }

    #[test]
    fn mappings_come_from_the_pod_security_context() {
        let m = vec![cri::IdMapping {
            host_id: 1000,
            container_id: 0,
            length: 100000,
        }];
        let mut cfg = cri::PodSandboxConfig {
            linux: Some(cri::LinuxPodSandboxConfig {
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        userns_options: Some(cri::UserNamespace {
                            mode: cri::NamespaceMode::Pod as i32,
                            uids: m.clone(),
                            gids: m,
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = pod_mappings(&cfg).expect("valid").expect("POD");
        assert_eq!(got.host_root(), (1000, 1000));
        assert_eq!(
            pod_mappings(&cri::PodSandboxConfig::default()).expect("none"),
            None
        );
        let ns = cfg
            .linux
            .as_mut()
            .and_then(|l| l.security_context.as_mut())
            .and_then(|s| s.namespace_options.as_mut())
            .expect("options");
        ns.userns_options.as_mut().expect("userns").mode = cri::NamespaceMode::Container as i32;
        assert!(matches!(pod_mappings(&cfg), Err(Error::InvalidArgument(_))));
    }
}
