//! AppArmor, SELinux labels, masked and read-only paths.

use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::{LinuxContainerSecurityContext, SeLinuxOption, SecurityProfile};

use crate::error::{Result, SpecError};
use crate::types::HostFeatures;

/// Paths hidden from non-privileged containers when the CRI sends none.
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths made read-only in non-privileged containers when the CRI sends none.
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Masked and read-only paths: none for privileged containers; otherwise the CRI lists when
/// given (the kubelet always sends them: its defaults, or empty lists for `procMount:
/// Unmasked`, which an empty protobuf list cannot be told apart from), else the defaults.
pub fn masked_and_readonly_paths(
    privileged: bool,
    sc: Option<&LinuxContainerSecurityContext>,
) -> (Vec<String>, Vec<String>) {
    if privileged {
        return (Vec::new(), Vec::new());
    }
    let pick = |given: Option<&Vec<String>>, default: &[&str]| match given {
        Some(v) if !v.is_empty() => v.clone(),
        _ => default.iter().map(|s| s.to_string()).collect(),
    };
    (
        pick(sc.map(|s| &s.masked_paths), DEFAULT_MASKED_PATHS),
        pick(sc.map(|s| &s.readonly_paths), DEFAULT_READONLY_PATHS),
    )
}

/// What the CRI asks for AppArmor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppArmorChoice {
    /// The runtime's default (also when nothing is asked).
    RuntimeDefault,
    /// No confinement.
    Unconfined,
    /// A profile loaded on the node, by name.
    Localhost(String),
}

/// Interprets the typed `apparmor` field, else the deprecated `apparmor_profile` string
/// (`runtime/default`, `unconfined`, `localhost/<name>`, empty = runtime default).
pub fn apparmor_choice(typed: Option<&SecurityProfile>, legacy: &str) -> Result<AppArmorChoice> {
    if let Some(p) = typed {
        return match ProfileType::try_from(p.profile_type) {
            Ok(ProfileType::RuntimeDefault) => Ok(AppArmorChoice::RuntimeDefault),
            Ok(ProfileType::Unconfined) => Ok(AppArmorChoice::Unconfined),
            Ok(ProfileType::Localhost) => {
                let name = p
                    .localhost_ref
                    .strip_prefix("localhost/")
                    .unwrap_or(&p.localhost_ref);
                if name.is_empty() {
                    return Err(SpecError::field(
                        "linux.security_context.apparmor.localhost_ref",
                        "empty for a Localhost profile",
                    ));
                }
                Ok(AppArmorChoice::Localhost(name.to_string()))
            }
            Err(_) => Err(SpecError::field(
                "linux.security_context.apparmor.profile_type",
                format!("unknown profile type {}", p.profile_type),
            )),
        };
    }
    match legacy {
        "" | "runtime/default" => Ok(AppArmorChoice::RuntimeDefault),
        "unconfined" => Ok(AppArmorChoice::Unconfined),
        other => match other.strip_prefix("localhost/") {
            Some(name) if !name.is_empty() => Ok(AppArmorChoice::Localhost(name.to_string())),
            _ => Err(SpecError::field(
                "linux.security_context.apparmor_profile",
                format!("unknown AppArmor profile {other:?}"),
            )),
        },
    }
}

/// The process's AppArmor profile. A localhost profile on a host without AppArmor is an
/// error; runtime default and unconfined set nothing there. Privileged containers are not
/// confined unless they name a localhost profile.
pub fn apparmor_profile(
    privileged: bool,
    typed: Option<&SecurityProfile>,
    legacy: &str,
    host: &HostFeatures,
) -> Result<Option<String>> {
    let choice = apparmor_choice(typed, legacy)?;
    match choice {
        AppArmorChoice::Localhost(name) => {
            if !host.apparmor_enabled {
                return Err(SpecError::AppArmorUnavailable { profile: name });
            }
            Ok(Some(name))
        }
        AppArmorChoice::Unconfined => Ok(None),
        AppArmorChoice::RuntimeDefault if privileged || !host.apparmor_enabled => Ok(None),
        AppArmorChoice::RuntimeDefault => Ok(host.apparmor_default_profile.clone()),
    }
}

/// The SELinux process label `user:role:type:level`, only on SELinux hosts and only when all
/// four parts are given (partial labels need policy defaults crius does not compute).
pub fn selinux_label(opts: Option<&SeLinuxOption>, host: &HostFeatures) -> Option<String> {
    let o = opts?;
    if !host.selinux_enabled {
        return None;
    }
    let parts = [&o.user, &o.role, &o.r#type, &o.level];
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(format!("{}:{}:{}:{}", o.user, o.role, o.r#type, o.level))
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // table tests
mod tests {
    use super::*;

    fn host(apparmor: bool) -> HostFeatures {
        HostFeatures {
            apparmor_enabled: apparmor,
            apparmor_default_profile: apparmor.then(|| "crius-default".to_string()),
            selinux_enabled: false,
            cgroup_namespace: false,
            recursive_read_only: false,
        }
    }

    #[test]
    fn masked_paths_table() {
        let (m, r) = masked_and_readonly_paths(true, None);
        assert!(m.is_empty() && r.is_empty());
        let (m, r) = masked_and_readonly_paths(false, None);
        assert!(m.contains(&"/proc/kcore".to_string()));
        assert!(r.contains(&"/proc/sys".to_string()));
        let sc = LinuxContainerSecurityContext {
            masked_paths: vec!["/proc/x".into()],
            readonly_paths: vec!["/proc/y".into()],
            ..Default::default()
        };
        assert_eq!(
            masked_and_readonly_paths(false, Some(&sc)),
            (vec!["/proc/x".to_string()], vec!["/proc/y".to_string()])
        );
        let (m, _) = masked_and_readonly_paths(true, Some(&sc));
        assert!(m.is_empty(), "privileged ignores CRI lists");
    }

    #[test]
    fn apparmor_table() {
        let typed = |t: ProfileType, r: &str| SecurityProfile {
            profile_type: t as i32,
            localhost_ref: r.into(),
        };
        // (privileged, typed, legacy, apparmor on host, expected Ok value or None = error)
        let cases: Vec<(
            bool,
            Option<SecurityProfile>,
            &str,
            bool,
            Option<Option<&str>>,
        )> = vec![
            (false, None, "", false, Some(None)),
            (false, None, "runtime/default", false, Some(None)),
            (false, None, "unconfined", false, Some(None)),
            (false, None, "localhost/prof", false, None),
            (
                false,
                Some(typed(ProfileType::Localhost, "prof")),
                "",
                false,
                None,
            ),
            (false, None, "", true, Some(Some("crius-default"))),
            (true, None, "", true, Some(None)),
            (false, None, "unconfined", true, Some(None)),
            (false, None, "localhost/prof", true, Some(Some("prof"))),
            (
                true,
                Some(typed(ProfileType::Localhost, "localhost/p2")),
                "",
                true,
                Some(Some("p2")),
            ),
            (
                false,
                Some(typed(ProfileType::Unconfined, "")),
                "localhost/x",
                true,
                Some(None),
            ),
            (false, None, "weird", true, None),
            (
                false,
                Some(typed(ProfileType::Localhost, "")),
                "",
                true,
                None,
            ),
        ];
        for (privileged, t, legacy, on, want) in cases {
            let got = apparmor_profile(privileged, t.as_ref(), legacy, &host(on));
            match want {
                Some(w) => assert_eq!(got.expect(legacy).as_deref(), w, "{t:?} {legacy} {on}"),
                None => assert!(got.is_err(), "{t:?} {legacy} {on}: {got:?}"),
            }
        }
        match apparmor_profile(false, None, "localhost/prof", &host(false)) {
            Err(e @ SpecError::AppArmorUnavailable { .. }) => {
                assert!(e.to_string().contains("AppArmor is not enabled"));
                assert!(e.is_invalid_argument());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn selinux_only_when_enabled_and_complete() {
        let opts = SeLinuxOption {
            user: "system_u".into(),
            role: "system_r".into(),
            r#type: "container_t".into(),
            level: "s0:c1,c2".into(),
        };
        let mut h = host(false);
        assert_eq!(selinux_label(Some(&opts), &h), None);
        h.selinux_enabled = true;
        assert_eq!(
            selinux_label(Some(&opts), &h).as_deref(),
            Some("system_u:system_r:container_t:s0:c1,c2")
        );
        let partial = SeLinuxOption {
            level: String::new(),
            ..opts
        };
        assert_eq!(selinux_label(Some(&partial), &h), None);
        assert_eq!(selinux_label(None, &h), None);
    }
}
