//! Linux namespaces of a container.

use std::path::{Path, PathBuf};

use k8s_cri::v1::{ContainerConfig, NamespaceMode, NamespaceOption};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::error::{Result, SpecError};
use crate::types::PodNamespaces;

fn ns(typ: LinuxNamespaceType, path: Option<&Path>) -> LinuxNamespace {
    let mut n = LinuxNamespace::default();
    n.set_typ(typ);
    n.set_path(path.map(Path::to_path_buf));
    n
}

fn mode(value: i32, field: &str) -> Result<NamespaceMode> {
    NamespaceMode::try_from(value)
        .map_err(|_| SpecError::field(field, format!("unknown namespace mode {value}")))
}

/// The container ID whose PID namespace the config asks to join (PID mode TARGET), so the
/// daemon knows which `/proc/<pid>/ns/pid` to pass as `target_pid_namespace`.
pub fn pid_namespace_target(config: &ContainerConfig) -> Option<&str> {
    let opts = config
        .linux
        .as_ref()?
        .security_context
        .as_ref()?
        .namespace_options
        .as_ref()?;
    (opts.pid == NamespaceMode::Target as i32).then_some(opts.target_id.as_str())
}

/// Refuses user namespaces (userns_options with a mode other than NODE), for specs that cannot
/// join one (the infra container spec of [`crate::sandbox_spec`]).
pub fn check_user_namespace(opts: Option<&NamespaceOption>) -> Result<()> {
    if let Some(userns) = opts.and_then(|o| o.userns_options.as_ref()) {
        let m = mode(userns.mode, "namespace_options.userns_options.mode")?;
        if m != NamespaceMode::Node {
            return Err(SpecError::UserNamespaceUnsupported {
                mode: m.as_str_name().to_string(),
            });
        }
    }
    Ok(())
}

/// The container's namespaces: always a new mount namespace; network, IPC and UTS join the
/// pod's (host when the pod has none, or when the container asks for NODE); PID per the
/// container's mode: CONTAINER → new, POD → the pod's (new when the pod has no infra process),
/// NODE → host, TARGET → `target_pid`; a new cgroup namespace when `cgroupns`.
///
/// The container's `userns_options` are only checked ([`crate::pod_user_namespace`]): the user
/// namespace is the pod's, joined with [`crate::join_user_namespace`] by the daemon, which
/// knows where it is pinned.
pub fn container_namespaces(
    opts: Option<&NamespaceOption>,
    pod: &PodNamespaces,
    target_pid: Option<&Path>,
    cgroupns: bool,
) -> Result<Vec<LinuxNamespace>> {
    crate::userns::pod_user_namespace(opts)?;
    let default = NamespaceOption::default();
    let o = opts.unwrap_or(&default);
    let mut out = vec![ns(LinuxNamespaceType::Mount, None)];

    let join = |m: NamespaceMode, pod_path: &Option<PathBuf>| match m {
        NamespaceMode::Node => None,
        _ => pod_path.clone(),
    };
    let net_mode = mode(o.network, "namespace_options.network")?;
    if let Some(p) = join(net_mode, &pod.network) {
        out.push(ns(LinuxNamespaceType::Network, Some(&p)));
    }
    let ipc_mode = mode(o.ipc, "namespace_options.ipc")?;
    if let Some(p) = join(ipc_mode, &pod.ipc) {
        out.push(ns(LinuxNamespaceType::Ipc, Some(&p)));
    }
    if let Some(p) = join(net_mode, &pod.uts) {
        out.push(ns(LinuxNamespaceType::Uts, Some(&p)));
    }
    match mode(o.pid, "namespace_options.pid")? {
        NamespaceMode::Container => out.push(ns(LinuxNamespaceType::Pid, None)),
        NamespaceMode::Pod => out.push(ns(LinuxNamespaceType::Pid, pod.pid.as_deref())),
        NamespaceMode::Node => {}
        NamespaceMode::Target => {
            let path = target_pid.ok_or_else(|| {
                SpecError::field(
                    "namespace_options.target_id",
                    format!(
                        "PID namespace of target container {:?} is not available",
                        o.target_id
                    ),
                )
            })?;
            out.push(ns(LinuxNamespaceType::Pid, Some(path)));
        }
    }
    if cgroupns {
        out.push(ns(LinuxNamespaceType::Cgroup, None));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // table tests
mod tests {
    use super::*;
    use k8s_cri::v1::UserNamespace;

    fn describe(v: &[LinuxNamespace]) -> Vec<String> {
        v.iter()
            .map(|n| match n.path() {
                Some(p) => format!("{}={}", n.typ(), p.display()),
                None => n.typ().to_string(),
            })
            .collect()
    }

    fn pod(with_pid: bool) -> PodNamespaces {
        PodNamespaces {
            network: Some("/run/netns/p".into()),
            ipc: Some("/run/ipcns/p".into()),
            uts: Some("/run/utsns/p".into()),
            pid: with_pid.then(|| PathBuf::from("/proc/42/ns/pid")),
        }
    }

    fn opts(net: NamespaceMode, pid: NamespaceMode, ipc: NamespaceMode) -> NamespaceOption {
        NamespaceOption {
            network: net as i32,
            pid: pid as i32,
            ipc: ipc as i32,
            ..Default::default()
        }
    }

    #[test]
    fn table() {
        use NamespaceMode::*;
        let cases: Vec<(
            NamespaceOption,
            PodNamespaces,
            Option<&str>,
            bool,
            Vec<&str>,
        )> = vec![
            (
                opts(Pod, Container, Pod),
                pod(false),
                None,
                false,
                vec![
                    "mnt",
                    "net=/run/netns/p",
                    "ipc=/run/ipcns/p",
                    "uts=/run/utsns/p",
                    "pid",
                ],
            ),
            (
                opts(Pod, Pod, Pod),
                pod(true),
                None,
                false,
                vec![
                    "mnt",
                    "net=/run/netns/p",
                    "ipc=/run/ipcns/p",
                    "uts=/run/utsns/p",
                    "pid=/proc/42/ns/pid",
                ],
            ),
            (
                opts(Pod, Pod, Pod),
                pod(false),
                None,
                true,
                vec![
                    "mnt",
                    "net=/run/netns/p",
                    "ipc=/run/ipcns/p",
                    "uts=/run/utsns/p",
                    "pid",
                    "cgroup",
                ],
            ),
            (opts(Node, Node, Node), pod(false), None, false, vec!["mnt"]),
            (
                opts(Pod, Container, Pod),
                PodNamespaces::default(),
                None,
                false,
                vec!["mnt", "pid"],
            ),
            (
                opts(Pod, Target, Pod),
                pod(false),
                Some("/proc/7/ns/pid"),
                false,
                vec![
                    "mnt",
                    "net=/run/netns/p",
                    "ipc=/run/ipcns/p",
                    "uts=/run/utsns/p",
                    "pid=/proc/7/ns/pid",
                ],
            ),
        ];
        for (o, p, target, cg, want) in cases {
            let got =
                container_namespaces(Some(&o), &p, target.map(Path::new), cg).expect("namespaces");
            assert_eq!(describe(&got), want, "{o:?}");
        }
        // No options at all = POD for everything.
        let got = container_namespaces(None, &pod(true), None, false).expect("none");
        assert_eq!(
            describe(&got).last().map(String::as_str),
            Some("pid=/proc/42/ns/pid")
        );
    }

    #[test]
    fn errors() {
        let o = opts(
            NamespaceMode::Pod,
            NamespaceMode::Target,
            NamespaceMode::Pod,
        );
        assert!(matches!(
            container_namespaces(Some(&o), &pod(false), None, false),
            Err(SpecError::InvalidField { field, .. }) if field.contains("target_id")
        ));
        let bad = NamespaceOption {
            pid: 17,
            ..Default::default()
        };
        assert!(container_namespaces(Some(&bad), &pod(false), None, false).is_err());
        let userns = NamespaceOption {
            userns_options: Some(UserNamespace {
                mode: NamespaceMode::Pod as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        // POD without its one mapping, and CONTAINER, are the request's fault.
        match container_namespaces(Some(&userns), &pod(false), None, false) {
            Err(e @ SpecError::InvalidField { .. }) => {
                assert!(e.to_string().contains("exactly one"), "{e}");
                assert!(e.is_invalid_argument());
            }
            other => panic!("{other:?}"),
        }
        let container = NamespaceOption {
            userns_options: Some(UserNamespace {
                mode: NamespaceMode::Container as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(container_namespaces(Some(&container), &pod(false), None, false).is_err());
        // POD with a mapping is fine here (the daemon adds the pod's user namespace).
        let map = vec![k8s_cri::v1::IdMapping {
            host_id: 1000,
            container_id: 0,
            length: 65536,
        }];
        let good = NamespaceOption {
            userns_options: Some(UserNamespace {
                mode: NamespaceMode::Pod as i32,
                uids: map.clone(),
                gids: map,
            }),
            ..Default::default()
        };
        let got = container_namespaces(Some(&good), &pod(false), None, false).expect("pod userns");
        assert!(!describe(&got).iter().any(|n| n.starts_with("user")));
        let node = NamespaceOption {
            userns_options: Some(UserNamespace {
                mode: NamespaceMode::Node as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(container_namespaces(Some(&node), &pod(false), None, false).is_ok());
    }

    #[test]
    fn target_lookup() {
        use k8s_cri::v1::{LinuxContainerConfig, LinuxContainerSecurityContext};
        let cfg = |pid: NamespaceMode| ContainerConfig {
            linux: Some(LinuxContainerConfig {
                resources: None,
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        pid: pid as i32,
                        target_id: "abc".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        assert_eq!(
            pid_namespace_target(&cfg(NamespaceMode::Target)),
            Some("abc")
        );
        assert_eq!(pid_namespace_target(&cfg(NamespaceMode::Pod)), None);
        assert_eq!(pid_namespace_target(&ContainerConfig::default()), None);
    }
}
