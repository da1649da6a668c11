//! Capabilities: the daemon's own set, the container default set, add/drop.

use std::str::FromStr;

use k8s_cri::v1::Capability as CriCapability;
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

use crate::error::{Result, SpecError};

/// Capability names by bit number (linux/capability.h), `CAP_` prefix omitted.
const CAP_BITS: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The capabilities a non-privileged container gets unless it adds or drops some (the set
/// Docker and containerd grant by default).
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Every capability this crate knows, in bit order.
pub fn all_capabilities() -> Capabilities {
    CAP_BITS
        .iter()
        .filter_map(|name| Capability::from_str(name).ok())
        .collect()
}

/// Decodes a hexadecimal capability mask as found in `/proc/<pid>/status` (`CapEff: 000001ff...`).
/// Bits this crate has no name for are ignored.
pub fn parse_capability_mask(hex: &str) -> Option<Capabilities> {
    let mask = u64::from_str_radix(hex.trim(), 16).ok()?;
    Some(
        CAP_BITS
            .iter()
            .enumerate()
            .filter(|(bit, _)| mask & (1u64 << bit) != 0)
            .filter_map(|(_, name)| Capability::from_str(name).ok())
            .collect(),
    )
}

/// The capabilities the calling process can pass to a child it runs as root: its effective set
/// intersected with its bounding set, from `/proc/self/status`.
pub fn daemon_capabilities() -> std::io::Result<Capabilities> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    capabilities_from_status(&status).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "/proc/self/status: no parsable CapEff/CapBnd lines",
        )
    })
}

/// Parses `CapEff` and `CapBnd` from the text of a `/proc/<pid>/status` file and returns their
/// intersection.
pub fn capabilities_from_status(status: &str) -> Option<Capabilities> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| parse_capability_mask(v.trim_start_matches(':')))
    };
    let eff = field("CapEff")?;
    let bnd = field("CapBnd")?;
    Some(eff.intersection(&bnd).copied().collect())
}

/// Parses a CRI capability name (`NET_ADMIN`, `CAP_NET_ADMIN`, any case).
pub fn parse_capability(name: &str) -> Result<Capability> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    Capability::from_str(bare).map_err(|_| SpecError::UnknownCapability {
        name: name.to_string(),
    })
}

fn is_all(name: &str) -> bool {
    name.trim().eq_ignore_ascii_case("ALL")
}

/// Computes the process capabilities of a container.
///
/// Privileged: exactly the daemon's capabilities. Otherwise: the default set, plus `add`
/// (`ALL` = every capability), minus `drop` (`ALL` = everything not explicitly added, the
/// kubelet's `drop: [ALL], add: [X]` idiom), plus ambient capabilities (which go into every
/// set). The result is intersected with `daemon` so runc is never asked for a capability the
/// daemon cannot grant.
pub fn container_capabilities(
    privileged: bool,
    cri: Option<&CriCapability>,
    daemon: &Capabilities,
) -> Result<LinuxCapabilities> {
    let mut ambient = Capabilities::new();
    let set: Capabilities = if privileged {
        daemon.clone()
    } else {
        let empty = CriCapability::default();
        let cri = cri.unwrap_or(&empty);
        let mut add = Capabilities::new();
        let mut add_all = false;
        for name in &cri.add_capabilities {
            if is_all(name) {
                add_all = true;
            } else {
                add.insert(parse_capability(name)?);
            }
        }
        let mut drop = Capabilities::new();
        let mut drop_all = false;
        for name in &cri.drop_capabilities {
            if is_all(name) {
                drop_all = true;
            } else {
                drop.insert(parse_capability(name)?);
            }
        }
        for name in &cri.add_ambient_capabilities {
            if is_all(name) {
                return Err(SpecError::field(
                    "linux.security_context.capabilities.add_ambient_capabilities",
                    "ALL is not allowed for ambient capabilities",
                ));
            }
            ambient.insert(parse_capability(name)?);
        }
        let mut set: Capabilities = if add_all {
            all_capabilities()
        } else if drop_all {
            Capabilities::new()
        } else {
            DEFAULT_CAPABILITIES.iter().copied().collect()
        };
        if !add_all {
            set.extend(add.iter().copied());
        }
        if !drop_all {
            set.retain(|c| !drop.contains(c));
        }
        ambient.retain(|c| !drop.contains(c));
        set.extend(ambient.iter().copied());
        set
    };
    let set: Capabilities = set.intersection(daemon).copied().collect();
    ambient.retain(|c| set.contains(c));
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()));
    caps.set_effective(Some(set.clone()));
    caps.set_permitted(Some(set));
    caps.set_inheritable(Some(ambient.clone()));
    caps.set_ambient(Some(ambient));
    Ok(caps)
}

/// What `execve` does for a non-root user: the effective and permitted sets keep only the
/// ambient capabilities (the bounding set is unchanged, so file capabilities still work).
pub fn drop_for_non_root(caps: &mut LinuxCapabilities) {
    let ambient = caps.ambient().clone().unwrap_or_default();
    caps.set_effective(Some(ambient.clone()));
    caps.set_permitted(Some(ambient));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(set: &Option<Capabilities>) -> Vec<String> {
        let mut v: Vec<String> = set
            .as_ref()
            .map(|s| s.iter().map(|c| c.to_string()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    fn cri(add: &[&str], drop: &[&str], ambient: &[&str]) -> CriCapability {
        CriCapability {
            add_capabilities: add.iter().map(|s| s.to_string()).collect(),
            drop_capabilities: drop.iter().map(|s| s.to_string()).collect(),
            add_ambient_capabilities: ambient.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn mask_parsing_matches_this_host_layout() {
        // The host this project runs on withholds CAP_SYS_RESOURCE (bit 24).
        let caps = parse_capability_mask("000001fffeffffff").expect("parse");
        assert_eq!(caps.len(), 40);
        assert!(!caps.contains(&Capability::SysResource));
        assert!(caps.contains(&Capability::SysAdmin));
        assert!(caps.contains(&Capability::CheckpointRestore));
        assert_eq!(parse_capability_mask("0").expect("zero").len(), 0);
        assert!(parse_capability_mask("zz").is_none());
    }

    #[test]
    fn status_intersects_effective_and_bounding() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000000000003\nCapBnd:\t0000000000000006\n";
        let caps = capabilities_from_status(status).expect("parse");
        assert_eq!(caps, [Capability::DacOverride].into_iter().collect());
        assert!(capabilities_from_status("CapEff:\t1\n").is_none());
    }

    #[test]
    fn daemon_capabilities_reads_proc() {
        let caps = daemon_capabilities().expect("read");
        // Tests run as root: at least CAP_SYS_ADMIN is there.
        assert!(caps.contains(&Capability::SysAdmin));
    }

    #[test]
    fn parse_names() {
        assert_eq!(
            parse_capability("NET_ADMIN").expect("a"),
            Capability::NetAdmin
        );
        assert_eq!(
            parse_capability("CAP_SYS_ADMIN").expect("b"),
            Capability::SysAdmin
        );
        assert_eq!(parse_capability("cap_kill").expect("c"), Capability::Kill);
        assert!(matches!(
            parse_capability("NOPE"),
            Err(SpecError::UnknownCapability { name }) if name == "NOPE"
        ));
    }

    #[test]
    fn add_drop_table() {
        let daemon = parse_capability_mask("000001fffeffffff").expect("mask");
        let default_names: Vec<String> = {
            let mut v: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect();
            v.sort();
            v
        };
        struct Case {
            name: &'static str,
            privileged: bool,
            add: &'static [&'static str],
            drop: &'static [&'static str],
            has: &'static [Capability],
            lacks: &'static [Capability],
            len: Option<usize>,
        }
        let cases = [
            Case {
                name: "default",
                privileged: false,
                add: &[],
                drop: &[],
                has: &[Capability::Chown, Capability::AuditWrite],
                lacks: &[Capability::SysAdmin],
                len: Some(14),
            },
            Case {
                name: "add",
                privileged: false,
                add: &["NET_ADMIN"],
                drop: &[],
                has: &[Capability::NetAdmin, Capability::Chown],
                lacks: &[],
                len: Some(15),
            },
            Case {
                name: "drop",
                privileged: false,
                add: &[],
                drop: &["CAP_CHOWN", "KILL"],
                has: &[Capability::Setuid],
                lacks: &[Capability::Chown, Capability::Kill],
                len: Some(12),
            },
            Case {
                name: "drop all add one",
                privileged: false,
                add: &["NET_BIND_SERVICE"],
                drop: &["ALL"],
                has: &[Capability::NetBindService],
                lacks: &[Capability::Chown],
                len: Some(1),
            },
            Case {
                name: "drop all",
                privileged: false,
                add: &[],
                drop: &["all"],
                has: &[],
                lacks: &[Capability::Chown],
                len: Some(0),
            },
            Case {
                name: "add all minus drop, never beyond the daemon",
                privileged: false,
                add: &["ALL"],
                drop: &["SYS_ADMIN"],
                has: &[Capability::NetAdmin],
                lacks: &[Capability::SysAdmin, Capability::SysResource],
                len: Some(39),
            },
            Case {
                name: "privileged = daemon set",
                privileged: true,
                add: &[],
                drop: &["ALL"],
                has: &[Capability::SysAdmin],
                lacks: &[Capability::SysResource],
                len: Some(40),
            },
            Case {
                name: "add what the daemon lacks",
                privileged: false,
                add: &["SYS_RESOURCE"],
                drop: &[],
                has: &[],
                lacks: &[Capability::SysResource],
                len: Some(14),
            },
        ];
        for case in cases {
            let c = cri(case.add, case.drop, &[]);
            let caps = container_capabilities(case.privileged, Some(&c), &daemon).expect(case.name);
            let eff = caps.effective().clone().expect("effective");
            for cap in case.has {
                assert!(eff.contains(cap), "{}: missing {cap}", case.name);
            }
            for cap in case.lacks {
                assert!(!eff.contains(cap), "{}: has {cap}", case.name);
            }
            if let Some(len) = case.len {
                assert_eq!(eff.len(), len, "{}", case.name);
            }
            assert_eq!(caps.bounding(), caps.effective(), "{}", case.name);
            assert_eq!(caps.permitted(), caps.effective(), "{}", case.name);
            assert_eq!(names(caps.ambient()), Vec::<String>::new(), "{}", case.name);
        }
        let caps = container_capabilities(false, None, &daemon).expect("none");
        assert_eq!(names(caps.effective()), default_names);
    }

    #[test]
    fn ambient_goes_everywhere() {
        let daemon = all_capabilities();
        let c = cri(&[], &[], &["NET_ADMIN"]);
        let caps = container_capabilities(false, Some(&c), &daemon).expect("ambient");
        for set in [
            caps.ambient(),
            caps.inheritable(),
            caps.effective(),
            caps.bounding(),
            caps.permitted(),
        ] {
            assert!(set.as_ref().expect("set").contains(&Capability::NetAdmin));
        }
        let bad = cri(&[], &[], &["ALL"]);
        assert!(container_capabilities(false, Some(&bad), &daemon).is_err());
        let unknown = cri(&["FLY"], &[], &[]);
        assert!(matches!(
            container_capabilities(false, Some(&unknown), &daemon),
            Err(SpecError::UnknownCapability { .. })
        ));
    }
}
