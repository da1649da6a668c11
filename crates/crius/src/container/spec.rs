//! Which PID namespace a container joins, and stop-signal parsing.

use k8s_cri::v1 as cri;

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
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(rest) = name.strip_prefix("SIGRTMIN") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('+')?.parse().ok()?
        };
        return Some(libc::SIGRTMIN() + off);
    }
    if let Some(rest) = name.strip_prefix("SIGRTMAX") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('-')?.parse().ok()?
        };
        return Some(libc::SIGRTMAX() - off);
    }
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

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
