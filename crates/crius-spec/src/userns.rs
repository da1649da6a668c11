//! Pod user namespaces (CRI `NamespaceOption.userns_options`).
//!
//! Rules (CRI api.proto `UserNamespace`): mode NODE (or no options) = the host's user
//! namespace; mode POD = one user namespace for the whole pod, with exactly one UID and one GID
//! mapping that map container ID 0; CONTAINER and TARGET are not defined for user namespaces.
//! A pod with its own user namespace cannot share the host's network, IPC or PID namespace
//! (the kubelet refuses `hostUsers: false` with those too): its containers could not mount
//! sysfs, mqueue or proc for namespaces their user namespace does not own.
//!
//! Containers join the pod's (pinned) user namespace by path; runc 1.1 still wants
//! `uidMappings`/`gidMappings` in the spec then (it uses them to find the host root), so
//! [`join_user_namespace`] sets both.

use std::path::Path;

use k8s_cri::v1::{IdMapping, NamespaceMode, NamespaceOption};
use oci_spec::runtime::{
    LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceType, Spec,
};

use crate::error::{Result, SpecError};

/// The ID mappings of a pod's user namespace, in OCI form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserNamespaceMappings {
    /// The one UID range.
    pub uid: LinuxIdMapping,
    /// The one GID range.
    pub gid: LinuxIdMapping,
}

impl UserNamespaceMappings {
    /// The host UID and GID of the namespace's root (container ID 0 always maps to `host_id`).
    pub fn host_root(&self) -> (u32, u32) {
        (self.uid.host_id(), self.gid.host_id())
    }
}

const FIELD: &str = "namespace_options.userns_options";

fn one_mapping(list: &[IdMapping], what: &str) -> Result<LinuxIdMapping> {
    let field = format!("{FIELD}.{what}");
    let [m] = list else {
        return Err(SpecError::field(
            field,
            format!(
                "mode POD needs exactly one mapping, got {} (more than one is not supported)",
                list.len()
            ),
        ));
    };
    if m.length == 0 {
        return Err(SpecError::field(field, "mapping length is 0"));
    }
    if m.container_id != 0 {
        return Err(SpecError::field(
            field,
            format!(
                "container ID 0 is not mapped (the mapping starts at container ID {})",
                m.container_id
            ),
        ));
    }
    if u64::from(m.host_id) + u64::from(m.length) > u64::from(u32::MAX) {
        return Err(SpecError::field(
            field,
            format!(
                "mapping {} {} {} goes beyond ID 2^32-1",
                m.container_id, m.host_id, m.length
            ),
        ));
    }
    LinuxIdMappingBuilder::default()
        .container_id(m.container_id)
        .host_id(m.host_id)
        .size(m.length)
        .build()
        .map_err(|e| SpecError::Internal {
            what: "uid/gid mapping",
            reason: e.to_string(),
        })
}

/// The pod's user namespace mappings when `opts` asks for one (mode POD), `None` for mode NODE
/// or no options. Mode CONTAINER or TARGET, a mapping count other than one, a range not
/// starting at container ID 0, or host network/IPC/PID with mode POD are InvalidArgument.
pub fn pod_user_namespace(opts: Option<&NamespaceOption>) -> Result<Option<UserNamespaceMappings>> {
    let Some(o) = opts else {
        return Ok(None);
    };
    let Some(userns) = &o.userns_options else {
        return Ok(None);
    };
    let mode = NamespaceMode::try_from(userns.mode).map_err(|_| {
        SpecError::field(
            format!("{FIELD}.mode"),
            format!("unknown namespace mode {}", userns.mode),
        )
    })?;
    match mode {
        NamespaceMode::Node => return Ok(None),
        NamespaceMode::Pod => {}
        NamespaceMode::Container | NamespaceMode::Target => {
            return Err(SpecError::field(
                format!("{FIELD}.mode"),
                format!(
                    "mode {} is not supported for user namespaces (only NODE or POD)",
                    mode.as_str_name()
                ),
            ))
        }
    }
    for (value, name) in [(o.network, "network"), (o.ipc, "ipc"), (o.pid, "pid")] {
        if value == NamespaceMode::Node as i32 {
            return Err(SpecError::field(
                format!("namespace_options.{name}"),
                "a pod with a user namespace (userns mode POD) cannot use the host's namespace",
            ));
        }
    }
    Ok(Some(UserNamespaceMappings {
        uid: one_mapping(&userns.uids, "uids")?,
        gid: one_mapping(&userns.gids, "gids")?,
    }))
}

/// Makes `spec` join the user namespace pinned at `path` with `map` as its mappings (which
/// runc needs even when joining); any user namespace entry already there is replaced.
pub fn join_user_namespace(spec: &mut Spec, path: &Path, map: &UserNamespaceMappings) {
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    namespaces.retain(|n| n.typ() != LinuxNamespaceType::User);
    let mut user = LinuxNamespace::default();
    user.set_typ(LinuxNamespaceType::User);
    user.set_path(Some(path.to_path_buf()));
    namespaces.push(user);
    linux.set_namespaces(Some(namespaces));
    linux.set_uid_mappings(Some(vec![map.uid]));
    linux.set_gid_mappings(Some(vec![map.gid]));
    spec.set_linux(Some(linux));
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_cri::v1::UserNamespace;

    fn idm(c: u32, h: u32, l: u32) -> IdMapping {
        IdMapping {
            container_id: c,
            host_id: h,
            length: l,
        }
    }

    fn opts(mode: NamespaceMode, uids: Vec<IdMapping>, gids: Vec<IdMapping>) -> NamespaceOption {
        NamespaceOption {
            userns_options: Some(UserNamespace {
                mode: mode as i32,
                uids,
                gids,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn node_and_absent_mean_no_user_namespace() {
        assert_eq!(pod_user_namespace(None).unwrap(), None);
        let none = NamespaceOption::default();
        assert_eq!(pod_user_namespace(Some(&none)).unwrap(), None);
        let node = opts(NamespaceMode::Node, vec![], vec![]);
        assert_eq!(pod_user_namespace(Some(&node)).unwrap(), None);
    }

    #[test]
    fn pod_mode_gives_the_one_mapping() {
        let o = opts(
            NamespaceMode::Pod,
            vec![idm(0, 1000, 100000)],
            vec![idm(0, 2000, 65536)],
        );
        let m = pod_user_namespace(Some(&o)).unwrap().unwrap();
        assert_eq!(
            (m.uid.container_id(), m.uid.host_id(), m.uid.size()),
            (0, 1000, 100000)
        );
        assert_eq!(m.gid.host_id(), 2000);
        assert_eq!(m.host_root(), (1000, 2000));
    }

    #[test]
    fn invalid_requests_are_invalid_arguments() {
        let good = vec![idm(0, 1000, 100000)];
        let cases = [
            (opts(NamespaceMode::Container, vec![], vec![]), "CONTAINER"),
            (opts(NamespaceMode::Target, vec![], vec![]), "TARGET"),
            (
                opts(
                    NamespaceMode::Pod,
                    vec![idm(0, 1000, 100000), idm(0, 2000, 100000)],
                    good.clone(),
                ),
                "exactly one",
            ),
            (opts(NamespaceMode::Pod, vec![], good.clone()), "got 0"),
            (
                opts(NamespaceMode::Pod, good.clone(), vec![idm(1, 1000, 100000)]),
                "container ID 0",
            ),
            (
                opts(NamespaceMode::Pod, vec![idm(0, 1000, 0)], good.clone()),
                "length is 0",
            ),
            (
                opts(NamespaceMode::Pod, vec![idm(0, u32::MAX, 2)], good.clone()),
                "beyond",
            ),
            (
                NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    ..opts(NamespaceMode::Pod, good.clone(), good.clone())
                },
                "host's namespace",
            ),
        ];
        for (o, want) in cases {
            let err = pod_user_namespace(Some(&o)).unwrap_err();
            assert!(err.is_invalid_argument(), "{err}");
            assert!(err.to_string().contains(want), "{err} lacks {want:?}");
        }
        let mut bad_mode = opts(NamespaceMode::Pod, good.clone(), good);
        bad_mode.userns_options.as_mut().unwrap().mode = 9;
        assert!(pod_user_namespace(Some(&bad_mode)).is_err());
    }

    #[test]
    fn join_sets_path_and_mappings_once() {
        let o = opts(
            NamespaceMode::Pod,
            vec![idm(0, 1000, 100000)],
            vec![idm(0, 1000, 100000)],
        );
        let m = pod_user_namespace(Some(&o)).unwrap().unwrap();
        let mut spec = Spec::default();
        join_user_namespace(&mut spec, Path::new("/run/x/userns/p"), &m);
        join_user_namespace(&mut spec, Path::new("/run/x/userns/p"), &m);
        let linux = spec.linux().as_ref().unwrap();
        let users: Vec<_> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|n| n.typ() == LinuxNamespaceType::User)
            .collect();
        assert_eq!(users.len(), 1);
        assert_eq!(
            users[0].path().as_deref(),
            Some(Path::new("/run/x/userns/p"))
        );
        assert_eq!(linux.uid_mappings().as_ref().unwrap(), &vec![m.uid]);
        assert_eq!(linux.gid_mappings().as_ref().unwrap(), &vec![m.gid]);
        // The other namespaces of the default spec are kept.
        assert!(linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Network));
    }
}
