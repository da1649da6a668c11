//! Pod sysctls: only namespaced ones, and only in namespaces the pod owns.

use std::collections::HashMap;

use crate::error::{Result, SpecError};

/// The namespace a sysctl belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SysctlNamespace {
    Ipc,
    Net,
}

const IPC_SYSCTLS: &[&str] = &[
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
];

fn namespace_of(name: &str) -> Option<SysctlNamespace> {
    // Both the dotted form and the slash form (`net/ipv4/ip_forward`, used when a component
    // contains a dot, e.g. an interface name) are accepted.
    let dotted = if name.contains('/') {
        name.replace('/', ".")
    } else {
        name.to_string()
    };
    if dotted.starts_with("net.") {
        Some(SysctlNamespace::Net)
    } else if dotted.starts_with("fs.mqueue.") || IPC_SYSCTLS.contains(&dotted.as_str()) {
        Some(SysctlNamespace::Ipc)
    } else {
        None
    }
}

/// Validates the pod's sysctls for the container spec: `net.*` needs the pod's own network
/// namespace, `kernel.shm*`, `kernel.msg*`, `kernel.sem` and `fs.mqueue.*` its own IPC
/// namespace; anything else is not namespaced and refused.
pub fn pod_sysctls(
    sysctls: &HashMap<String, String>,
    own_netns: bool,
    own_ipcns: bool,
) -> Result<HashMap<String, String>> {
    for name in sysctls.keys() {
        let err = |reason: &str| SpecError::Sysctl {
            name: name.clone(),
            reason: reason.to_string(),
        };
        match namespace_of(name) {
            Some(SysctlNamespace::Net) if !own_netns => {
                return Err(err("the pod uses the host network namespace"))
            }
            Some(SysctlNamespace::Ipc) if !own_ipcns => {
                return Err(err("the pod uses the host IPC namespace"))
            }
            Some(_) => {}
            None => return Err(err("not a namespaced sysctl")),
        }
    }
    Ok(sysctls.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        // (name, own netns, own ipc, allowed)
        let cases = [
            ("net.ipv4.ip_forward", true, true, true),
            ("net/ipv4/conf/eth0.100/rp_filter", true, false, true),
            ("net.core.somaxconn", false, true, false),
            ("kernel.shmmax", true, true, true),
            ("kernel.shm_rmid_forced", false, true, true),
            ("kernel.msgmnb", true, false, false),
            ("kernel.sem", false, true, true),
            ("fs.mqueue.msg_max", false, true, true),
            ("fs.mqueue.msg_max", true, false, false),
            ("kernel.hostname", true, true, false),
            ("vm.swappiness", true, true, false),
            ("kernel.shmfoo", true, true, false),
            ("fs.file-max", true, true, false),
        ];
        for (name, net, ipc, ok) in cases {
            let map: HashMap<String, String> = [(name.to_string(), "1".to_string())].into();
            let got = pod_sysctls(&map, net, ipc);
            if ok {
                assert_eq!(got.expect(name), map);
            } else {
                match got {
                    Err(e @ SpecError::Sysctl { .. }) => {
                        assert!(e.to_string().contains(name), "{e}")
                    }
                    other => panic!("{name}: expected a sysctl error, got {other:?}"),
                }
            }
        }
    }
}
