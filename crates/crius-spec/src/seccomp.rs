//! Seccomp: the RuntimeDefault profile, localhost profiles, the CRI profile selection.

use std::path::Path;

use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::SecurityProfile;
use oci_spec::runtime::{
    Arch, Capabilities, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg,
    LinuxSeccompArgBuilder, LinuxSeccompOperator, LinuxSyscall,
};

use crate::error::{Result, SpecError};

/// Syscalls every container may use.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socket",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Architecture-specific syscalls allowed on x86.
const ALLOWED_X86: &[&str] = &["arch_prctl", "modify_ldt"];
/// Architecture-specific syscalls allowed on arm/aarch64.
const ALLOWED_ARM: &[&str] = &[
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "sync_file_range2",
    "breakpoint",
    "cacheflush",
    "set_tls",
];

/// Syscalls allowed only when the container holds a capability.
const BY_CAPABILITY: &[(Capability, &[&str])] = &[
    (
        Capability::SysAdmin,
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    (Capability::SysBoot, &["reboot"]),
    (Capability::SysChroot, &["chroot"]),
    (
        Capability::SysModule,
        &["delete_module", "init_module", "finit_module"],
    ),
    (Capability::SysPacct, &["acct"]),
    (
        Capability::SysPtrace,
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
        ],
    ),
    (Capability::SysRawio, &["iopl", "ioperm"]),
    (
        Capability::SysTime,
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    (Capability::SysTtyConfig, &["vhangup"]),
    (
        Capability::SysNice,
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    (Capability::Syslog, &["syslog"]),
    (Capability::Bpf, &["bpf"]),
    (Capability::Perfmon, &["perf_event_open"]),
    (Capability::DacReadSearch, &["open_by_handle_at"]),
];

/// `personality(2)` domains allowed without restriction: PER_LINUX, PER_LINUX32,
/// UNAME26, UNAME26|PER_LINUX32, and the query value 0xffffffff.
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The namespace flags of `clone(2)` a container without CAP_SYS_ADMIN may not pass.
const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

fn syscall(names: &[&str], action: LinuxSeccompAction) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names.iter().map(|n| n.to_string()).collect());
    s.set_action(action);
    s
}

fn arg(
    index: usize,
    value: u64,
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
) -> LinuxSeccompArg {
    let b = LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op);
    let b = match value_two {
        Some(v) => b.value_two(v),
        None => b,
    };
    // Every field is set or has a default: building cannot fail.
    b.build().unwrap_or_default()
}

/// The seccomp architectures for the host: x86_64 (+ x86, x32) or aarch64 (+ arm).
pub fn host_architectures() -> Vec<Arch> {
    match std::env::consts::ARCH {
        "aarch64" => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        "x86" => vec![Arch::ScmpArchX86],
        _ => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
    }
}

/// The RuntimeDefault profile: every syscall fails with EPERM except an allowlist of the
/// usual ones, plus those a capability in `caps` (the container's bounding set) unlocks.
/// `clone` may not create namespaces and `clone3` fails with ENOSYS (so libcs fall back to
/// `clone`) unless CAP_SYS_ADMIN is held.
pub fn default_profile(caps: &Capabilities) -> LinuxSeccomp {
    let mut allowed: Vec<&str> = ALLOWED.to_vec();
    match std::env::consts::ARCH {
        "aarch64" | "arm" => allowed.extend_from_slice(ALLOWED_ARM),
        _ => allowed.extend_from_slice(ALLOWED_X86),
    }
    for (cap, names) in BY_CAPABILITY {
        if caps.contains(cap) {
            allowed.extend_from_slice(names);
        }
    }
    allowed.sort_unstable();
    allowed.dedup();

    let mut rules = vec![syscall(&allowed, LinuxSeccompAction::ScmpActAllow)];
    for p in PERSONALITIES {
        let mut s = syscall(&["personality"], LinuxSeccompAction::ScmpActAllow);
        s.set_args(Some(vec![arg(0, p, None, LinuxSeccompOperator::ScmpCmpEq)]));
        rules.push(s);
    }
    if !caps.contains(&Capability::SysAdmin) {
        let mut clone = syscall(&["clone"], LinuxSeccompAction::ScmpActAllow);
        clone.set_args(Some(vec![arg(
            0,
            CLONE_NAMESPACE_FLAGS,
            Some(0),
            LinuxSeccompOperator::ScmpCmpMaskedEq,
        )]));
        rules.push(clone);
        let mut clone3 = syscall(&["clone3"], LinuxSeccompAction::ScmpActErrno);
        clone3.set_errno_ret(Some(libc::ENOSYS as u32));
        rules.push(clone3);
    }

    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(LinuxSeccompAction::ScmpActErrno);
    profile.set_default_errno_ret(Some(libc::EPERM as u32));
    profile.set_architectures(Some(host_architectures()));
    profile.set_syscalls(Some(rules));
    profile
}

/// The architecture name Docker-format profiles use in `includes`/`excludes` (Go's GOARCH).
fn host_goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn arch_json_name(a: &Arch) -> Option<String> {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
}

/// Does a Docker-format `includes`/`excludes` condition hold for this container?
/// (`caps`: all listed capabilities held; `arches`: the host is one of them; `minKernel` is
/// assumed satisfied.)
fn condition_holds(cond: &serde_json::Value, caps: &Capabilities, all_caps_needed: bool) -> bool {
    let mut checks = Vec::new();
    if let Some(list) = cond.get("caps").and_then(|c| c.as_array()) {
        let held = |n: &serde_json::Value| {
            n.as_str()
                .and_then(|n| crate::caps::parse_capability(n).ok())
                .map(|c| caps.contains(&c))
                .unwrap_or(false)
        };
        if !list.is_empty() {
            checks.push(if all_caps_needed {
                list.iter().all(held)
            } else {
                list.iter().any(held)
            });
        }
    }
    if let Some(list) = cond.get("arches").and_then(|c| c.as_array()) {
        if !list.is_empty() {
            checks.push(list.iter().any(|a| a.as_str() == Some(host_goarch())));
        }
    }
    if all_caps_needed {
        checks.iter().all(|c| *c)
    } else {
        checks.iter().any(|c| *c)
    }
}

/// Rewrites a Docker-format profile (singular `name`, `archMap`, `includes`/`excludes`,
/// `comment`) into the OCI form, evaluating the conditions for `caps` and the host.
fn normalize_profile(v: &mut serde_json::Value, caps: &Capabilities) {
    let Some(obj) = v.as_object_mut() else { return };
    if !obj.contains_key("architectures") {
        let primary: Vec<String> = host_architectures()
            .iter()
            .filter_map(arch_json_name)
            .collect();
        let mapped = obj
            .get("archMap")
            .and_then(|m| m.as_array())
            .and_then(|entries| {
                entries.iter().find(|e| {
                    e.get("architecture").and_then(|a| a.as_str())
                        == primary.first().map(String::as_str)
                })
            });
        if let Some(entry) = mapped {
            let mut arches = vec![entry["architecture"].clone()];
            if let Some(sub) = entry.get("subArchitectures").and_then(|s| s.as_array()) {
                arches.extend(sub.iter().cloned());
            }
            obj.insert("architectures".into(), serde_json::Value::Array(arches));
        }
    }
    obj.remove("archMap");
    if let Some(rules) = obj.get_mut("syscalls").and_then(|s| s.as_array_mut()) {
        rules.retain(|r| {
            let included = r
                .get("includes")
                .map(|c| condition_holds(c, caps, true))
                .unwrap_or(true);
            let excluded = r
                .get("excludes")
                .map(|c| condition_holds(c, caps, false))
                .unwrap_or(false);
            included && !excluded
        });
        for r in rules.iter_mut() {
            let Some(rule) = r.as_object_mut() else {
                continue;
            };
            if !rule.contains_key("names") {
                if let Some(name) = rule.remove("name") {
                    rule.insert("names".into(), serde_json::Value::Array(vec![name]));
                }
            }
            for k in ["includes", "excludes", "comment", "name"] {
                rule.remove(k);
            }
        }
    }
}

/// Loads a localhost profile: OCI `LinuxSeccomp` JSON, or the Docker profile format (whose
/// `includes`/`excludes` conditions are evaluated against `caps`, the container's bounding
/// set). Missing or unparsable → error naming the file.
pub fn load_profile(path: &Path, caps: &Capabilities) -> Result<LinuxSeccomp> {
    let profile = || path.display().to_string();
    if !path.is_absolute() {
        return Err(SpecError::Seccomp {
            profile: profile(),
            reason: "localhost profile path must be absolute".into(),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| SpecError::Seccomp {
        profile: profile(),
        reason: format!("read: {e}"),
    })?;
    let mut value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| SpecError::Seccomp {
            profile: profile(),
            reason: format!("parse: {e}"),
        })?;
    normalize_profile(&mut value, caps);
    serde_json::from_value::<LinuxSeccomp>(value).map_err(|e| SpecError::Seccomp {
        profile: profile(),
        reason: format!("parse: {e}"),
    })
}

/// What the CRI asks for, after folding the typed field and the deprecated string field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompChoice {
    /// No filter.
    Unconfined,
    /// [`default_profile`].
    RuntimeDefault,
    /// A profile file on the node.
    Localhost(String),
}

/// Interprets the CRI seccomp selection: the typed `seccomp` field wins; else the deprecated
/// string (`runtime/default`, `docker/default`, `unconfined`, `localhost/<path>`, empty =
/// unconfined).
pub fn seccomp_choice(typed: Option<&SecurityProfile>, legacy: &str) -> Result<SeccompChoice> {
    if let Some(p) = typed {
        return match ProfileType::try_from(p.profile_type) {
            Ok(ProfileType::RuntimeDefault) => Ok(SeccompChoice::RuntimeDefault),
            Ok(ProfileType::Unconfined) => Ok(SeccompChoice::Unconfined),
            Ok(ProfileType::Localhost) if !p.localhost_ref.is_empty() => {
                Ok(SeccompChoice::Localhost(p.localhost_ref.clone()))
            }
            Ok(ProfileType::Localhost) => Err(SpecError::field(
                "linux.security_context.seccomp.localhost_ref",
                "empty for a Localhost profile",
            )),
            Err(_) => Err(SpecError::field(
                "linux.security_context.seccomp.profile_type",
                format!("unknown profile type {}", p.profile_type),
            )),
        };
    }
    match legacy {
        "" | "unconfined" => Ok(SeccompChoice::Unconfined),
        "runtime/default" | "docker/default" => Ok(SeccompChoice::RuntimeDefault),
        other => match other.strip_prefix("localhost/") {
            Some(path) if !path.is_empty() => Ok(SeccompChoice::Localhost(path.to_string())),
            _ => Err(SpecError::field(
                "linux.security_context.seccomp_profile_path",
                format!("unknown seccomp profile {other:?}"),
            )),
        },
    }
}

/// The seccomp filter of a container: `None` for unconfined or privileged containers.
pub fn container_seccomp(
    privileged: bool,
    typed: Option<&SecurityProfile>,
    legacy: &str,
    caps: &Capabilities,
) -> Result<Option<LinuxSeccomp>> {
    if privileged {
        return Ok(None);
    }
    match seccomp_choice(typed, legacy)? {
        SeccompChoice::Unconfined => Ok(None),
        SeccompChoice::RuntimeDefault => Ok(Some(default_profile(caps))),
        SeccompChoice::Localhost(path) => load_profile(Path::new(&path), caps).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::DEFAULT_CAPABILITIES;

    fn allowed_names(p: &LinuxSeccomp) -> Vec<String> {
        p.syscalls()
            .as_ref()
            .expect("syscalls")
            .iter()
            .filter(|s| s.action() == LinuxSeccompAction::ScmpActAllow && s.args().is_none())
            .flat_map(|s| s.names().clone())
            .collect()
    }

    #[test]
    fn default_profile_shape() {
        let caps: Capabilities = DEFAULT_CAPABILITIES.iter().copied().collect();
        let p = default_profile(&caps);
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(1));
        let archs = p.architectures().clone().expect("archs");
        assert!(archs.contains(&Arch::ScmpArchX86_64) || archs.contains(&Arch::ScmpArchAarch64));
        let allowed = allowed_names(&p);
        for must in [
            "read",
            "write",
            "execve",
            "exit_group",
            "chroot",
            "futex",
            "socket",
        ] {
            assert!(allowed.iter().any(|n| n == must), "{must} not allowed");
        }
        for blocked in [
            "mount",
            "unshare",
            "setns",
            "reboot",
            "init_module",
            "bpf",
            "clone3",
            "keyctl",
            "kexec_load",
        ] {
            assert!(!allowed.iter().any(|n| n == blocked), "{blocked} allowed");
        }
        // clone restricted by flags, clone3 -> ENOSYS.
        let rules = p.syscalls().clone().expect("rules");
        let clone = rules
            .iter()
            .find(|s| s.names() == &["clone".to_string()])
            .expect("clone rule");
        let a = &clone.args().clone().expect("args")[0];
        assert_eq!(a.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(a.value(), CLONE_NAMESPACE_FLAGS);
        assert_eq!(a.value_two(), Some(0));
        let clone3 = rules
            .iter()
            .find(|s| s.names() == &["clone3".to_string()])
            .expect("clone3");
        assert_eq!(clone3.errno_ret(), Some(libc::ENOSYS as u32));
        // No name twice in the allow rule.
        let mut sorted = allowed.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), allowed.len());
    }

    #[test]
    fn capabilities_unlock_syscalls() {
        let mut caps: Capabilities = DEFAULT_CAPABILITIES.iter().copied().collect();
        caps.insert(Capability::SysAdmin);
        caps.insert(Capability::SysTime);
        let p = default_profile(&caps);
        let allowed = allowed_names(&p);
        for n in [
            "mount",
            "unshare",
            "setns",
            "clone",
            "clone3",
            "settimeofday",
        ] {
            assert!(
                allowed.iter().any(|a| a == n),
                "{n} should be allowed with SYS_ADMIN/SYS_TIME"
            );
        }
        caps.remove(&Capability::SysChroot);
        assert!(!allowed_names(&default_profile(&caps))
            .iter()
            .any(|a| a == "chroot"));
    }

    #[test]
    fn profile_serializes_as_runc_expects() {
        let p = default_profile(&Capabilities::new());
        let json = serde_json::to_value(&p).expect("json");
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["defaultErrnoRet"], 1);
        assert!(json["architectures"][0]
            .as_str()
            .expect("arch")
            .starts_with("SCMP_ARCH_"));
        assert_eq!(json["syscalls"][0]["action"], "SCMP_ACT_ALLOW");
    }

    #[test]
    fn choice_table() {
        let typed = |t: ProfileType, r: &str| SecurityProfile {
            profile_type: t as i32,
            localhost_ref: r.into(),
        };
        let cases: Vec<(Option<SecurityProfile>, &str, Option<SeccompChoice>)> = vec![
            (None, "", Some(SeccompChoice::Unconfined)),
            (None, "unconfined", Some(SeccompChoice::Unconfined)),
            (None, "runtime/default", Some(SeccompChoice::RuntimeDefault)),
            (None, "docker/default", Some(SeccompChoice::RuntimeDefault)),
            (
                None,
                "localhost//p.json",
                Some(SeccompChoice::Localhost("/p.json".into())),
            ),
            (None, "localhost/", None),
            (None, "bogus", None),
            (
                Some(typed(ProfileType::RuntimeDefault, "")),
                "unconfined",
                Some(SeccompChoice::RuntimeDefault),
            ),
            (
                Some(typed(ProfileType::Unconfined, "")),
                "runtime/default",
                Some(SeccompChoice::Unconfined),
            ),
            (
                Some(typed(ProfileType::Localhost, "/x.json")),
                "",
                Some(SeccompChoice::Localhost("/x.json".into())),
            ),
            (Some(typed(ProfileType::Localhost, "")), "", None),
            (
                Some(SecurityProfile {
                    profile_type: 9,
                    localhost_ref: String::new(),
                }),
                "",
                None,
            ),
        ];
        for (t, legacy, want) in cases {
            let got = seccomp_choice(t.as_ref(), legacy);
            match want {
                Some(w) => assert_eq!(got.expect(legacy), w, "{t:?} {legacy}"),
                None => assert!(got.is_err(), "{t:?} {legacy}: {got:?}"),
            }
        }
    }

    #[test]
    fn localhost_profiles() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("good.json");
        std::fs::write(
            &good,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        )
        .expect("write");
        let p = load_profile(&good, &Capabilities::new()).expect("load");
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(
            p.syscalls().as_ref().expect("sys")[0].names(),
            &["mkdir".to_string()]
        );

        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{not json").expect("write");
        let missing = dir.path().join("missing.json");
        for path in [&bad, &missing] {
            match load_profile(path, &Capabilities::new()) {
                Err(e @ SpecError::Seccomp { .. }) => {
                    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
                    assert!(e.is_invalid_argument());
                }
                other => panic!("expected a seccomp error, got {other:?}"),
            }
        }
        assert!(load_profile(Path::new("relative.json"), &Capabilities::new()).is_err());

        let typed = SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: good.display().to_string(),
        };
        assert!(
            container_seccomp(false, Some(&typed), "", &Capabilities::new())
                .expect("ok")
                .is_some()
        );
        assert!(
            container_seccomp(true, Some(&typed), "", &Capabilities::new())
                .expect("priv")
                .is_none()
        );
    }

    #[test]
    fn docker_format_profiles() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("docker.json");
        let arch = host_architectures()
            .first()
            .and_then(arch_json_name)
            .expect("arch name");
        let profile = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "archMap": [
                {"architecture": arch, "subArchitectures": ["SCMP_ARCH_X86"]},
                {"architecture": "SCMP_ARCH_S390X", "subArchitectures": []}
            ],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "basics"},
                {"name": "getpid", "action": "SCMP_ACT_ALLOW"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_PTRACE"]}},
                {"names": ["arch_only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": [host_goarch()]}},
                {"names": ["other_arch"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}}
            ]
        });
        std::fs::write(&path, profile.to_string()).expect("write");
        let names = |caps: &Capabilities| -> Vec<String> {
            load_profile(&path, caps)
                .expect("load")
                .syscalls()
                .clone()
                .expect("rules")
                .iter()
                .flat_map(|r| r.names().clone())
                .collect()
        };
        let none = Capabilities::new();
        assert_eq!(
            names(&none),
            ["read", "write", "getpid", "ptrace", "arch_only"]
        );
        let admin: Capabilities = [Capability::SysAdmin, Capability::SysPtrace]
            .into_iter()
            .collect();
        assert_eq!(
            names(&admin),
            ["read", "write", "getpid", "mount", "arch_only"]
        );
        let p = load_profile(&path, &none).expect("load");
        let archs: Vec<String> = p
            .architectures()
            .clone()
            .expect("archs")
            .iter()
            .filter_map(arch_json_name)
            .collect();
        assert_eq!(archs, [arch, "SCMP_ARCH_X86".to_string()]);
    }
}
