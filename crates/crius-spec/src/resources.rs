//! CRI `LinuxContainerResources` → OCI `LinuxResources`, with validation.

use k8s_cri::v1::LinuxContainerResources;
use oci_spec::runtime::{
    LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxPids, LinuxResources, Spec,
};

use crate::error::{Result, SpecError};

/// Largest `cpu.shares` the kernel accepts.
pub const MAX_CPU_SHARES: i64 = 262_144;
/// Smallest CFS quota/period the kernel accepts, in microseconds.
pub const MIN_CFS_US: i64 = 1_000;
/// Largest CFS period the kernel accepts, in microseconds.
pub const MAX_CFS_PERIOD_US: i64 = 1_000_000;

fn bad(field: &str, value: impl std::fmt::Display, why: &str) -> SpecError {
    SpecError::field(
        format!("linux.resources.{field}"),
        format!("{value}: {why}"),
    )
}

/// Validates a cpuset list such as `0-3,5,7-8`.
fn valid_cpuset(s: &str) -> bool {
    s.split(',').all(|part| {
        let mut ends = part.splitn(2, '-');
        let lo = ends.next().and_then(|v| v.trim().parse::<u32>().ok());
        match (lo, ends.next()) {
            (Some(_), None) => true,
            (Some(lo), Some(hi)) => hi.trim().parse::<u32>().map(|hi| hi >= lo).unwrap_or(false),
            _ => false,
        }
    })
}

/// The numbers of a (syntactically valid) cpu/node list, e.g. `0-2,5` -> 0, 1, 2, 5.
fn list_members(s: &str) -> impl Iterator<Item = u32> + '_ {
    s.split(',').flat_map(|part| {
        let mut ends = part.splitn(2, '-');
        let lo = ends
            .next()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(0);
        let hi = ends
            .next()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(lo);
        lo..=hi
    })
}

/// The CPUs and memory nodes of this host that a cpuset may name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostTopology {
    /// Online CPUs as a list (`/sys/devices/system/cpu/online`); `None` = unknown, not checked.
    pub cpus: Option<String>,
    /// Online memory nodes (`/sys/devices/system/node/online`); `None` = unknown, not checked.
    pub mems: Option<String>,
}

impl HostTopology {
    /// Reads the online CPUs and memory nodes from sysfs.
    pub fn detect() -> Self {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| valid_cpuset(s))
        };
        HostTopology {
            cpus: read("/sys/devices/system/cpu/online"),
            mems: read("/sys/devices/system/node/online"),
        }
    }
}

/// Checks that every member of `list` is in `available` (both valid lists); names the first
/// one that is not.
fn check_members(field: &str, list: &str, available: Option<&str>, what: &str) -> Result<()> {
    let Some(available) = available else {
        return Ok(());
    };
    let have: Vec<u32> = list_members(available).collect();
    // A range like 0-4000000000 would be a long walk: anything past the largest is missing.
    let max = have.iter().copied().max().unwrap_or(0);
    for part in list.split(',') {
        let mut ends = part.splitn(2, '-');
        let lo = ends.next().and_then(|v| v.trim().parse::<u32>().ok());
        let hi = ends
            .next()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .or(lo);
        if let (Some(lo), Some(hi)) = (lo, hi) {
            if hi > max {
                return Err(bad(
                    field,
                    list,
                    &format!("{what} {hi} does not exist on this host (online: {available})"),
                ));
            }
            if let Some(n) = (lo..=hi).find(|n| !have.contains(n)) {
                return Err(bad(
                    field,
                    list,
                    &format!("{what} {n} is not online on this host (online: {available})"),
                ));
            }
        }
    }
    Ok(())
}

/// Validates a hugepage size as the CRI writes it: `<number><K|M|G|T|P>B`, e.g. `2MB`, `1GB`.
fn valid_page_size(s: &str) -> bool {
    let Some(rest) = s.strip_suffix('B') else {
        return false;
    };
    let Some(digits) = rest.strip_suffix(['K', 'M', 'G', 'T', 'P']) else {
        return false;
    };
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Converts and validates CRI container resources (CreateContainer and
/// UpdateContainerResources). Zero/empty values mean "not specified" and are left out.
///
/// Errors (InvalidArgument): negative values (except `-1` = unlimited for quota and swap),
/// shares above 262144, a quota below 1000us, a period outside [1000, 1000000]us, a swap limit
/// below the memory limit, malformed cpusets or hugepage sizes, unified keys with `/`.
/// CPUs and memory nodes of a cpuset must be online on this host.
/// `oom_score_adj` is not part of `LinuxResources` (see [`oom_score_adj`]).
pub fn linux_resources(r: &LinuxContainerResources) -> Result<LinuxResources> {
    linux_resources_on(r, &HostTopology::detect())
}

/// [`linux_resources`] against a given host topology.
pub fn linux_resources_on(
    r: &LinuxContainerResources,
    host: &HostTopology,
) -> Result<LinuxResources> {
    let mut cpu = LinuxCpu::default();
    let mut cpu_set = false;
    if r.cpu_shares != 0 {
        if !(0..=MAX_CPU_SHARES).contains(&r.cpu_shares) {
            return Err(bad(
                "cpu_shares",
                r.cpu_shares,
                "must be between 0 and 262144",
            ));
        }
        // The kernel's minimum is 2; the kubelet never sends less.
        cpu.set_shares(Some(r.cpu_shares.max(2) as u64));
        cpu_set = true;
    }
    if r.cpu_quota != 0 {
        if r.cpu_quota != -1 && r.cpu_quota < MIN_CFS_US {
            return Err(bad(
                "cpu_quota",
                r.cpu_quota,
                "must be -1 (unlimited) or at least 1000us",
            ));
        }
        cpu.set_quota(Some(r.cpu_quota));
        cpu_set = true;
    }
    if r.cpu_period != 0 {
        if !(MIN_CFS_US..=MAX_CFS_PERIOD_US).contains(&r.cpu_period) {
            return Err(bad(
                "cpu_period",
                r.cpu_period,
                "must be between 1000us and 1000000us",
            ));
        }
        cpu.set_period(Some(r.cpu_period as u64));
        cpu_set = true;
    }
    if !r.cpuset_cpus.is_empty() {
        if !valid_cpuset(&r.cpuset_cpus) {
            return Err(bad("cpuset_cpus", &r.cpuset_cpus, "not a cpu list"));
        }
        check_members("cpuset_cpus", &r.cpuset_cpus, host.cpus.as_deref(), "cpu")?;
        cpu.set_cpus(Some(r.cpuset_cpus.clone()));
        cpu_set = true;
    }
    if !r.cpuset_mems.is_empty() {
        if !valid_cpuset(&r.cpuset_mems) {
            return Err(bad("cpuset_mems", &r.cpuset_mems, "not a memory node list"));
        }
        check_members(
            "cpuset_mems",
            &r.cpuset_mems,
            host.mems.as_deref(),
            "memory node",
        )?;
        cpu.set_mems(Some(r.cpuset_mems.clone()));
        cpu_set = true;
    }

    let mut memory = LinuxMemory::default();
    let mut memory_set = false;
    if r.memory_limit_in_bytes != 0 {
        if r.memory_limit_in_bytes < 0 {
            return Err(bad(
                "memory_limit_in_bytes",
                r.memory_limit_in_bytes,
                "must not be negative",
            ));
        }
        memory.set_limit(Some(r.memory_limit_in_bytes));
        memory_set = true;
    }
    if r.memory_swap_limit_in_bytes != 0 {
        let swap = r.memory_swap_limit_in_bytes;
        if swap < -1 {
            return Err(bad(
                "memory_swap_limit_in_bytes",
                swap,
                "must be -1 (unlimited) or positive",
            ));
        }
        if swap > 0 && r.memory_limit_in_bytes > 0 && swap < r.memory_limit_in_bytes {
            return Err(bad(
                "memory_swap_limit_in_bytes",
                swap,
                "memory+swap limit must not be below memory_limit_in_bytes",
            ));
        }
        memory.set_swap(Some(swap));
        memory_set = true;
    }

    let mut hugepages = Vec::new();
    for h in &r.hugepage_limits {
        if !valid_page_size(&h.page_size) {
            return Err(bad(
                "hugepage_limits.page_size",
                &h.page_size,
                "expected e.g. 2MB or 1GB",
            ));
        }
        let limit = i64::try_from(h.limit)
            .map_err(|_| bad("hugepage_limits.limit", h.limit, "too large"))?;
        let mut l = LinuxHugepageLimit::default();
        l.set_page_size(h.page_size.clone());
        l.set_limit(limit);
        hugepages.push(l);
    }

    for key in r.unified.keys() {
        if key.is_empty() || key.contains('/') || !key.contains('.') {
            return Err(bad("unified", key, "not a cgroup v2 controller file name"));
        }
    }

    let mut res = LinuxResources::default();
    if cpu_set {
        res.set_cpu(Some(cpu));
    }
    if memory_set {
        res.set_memory(Some(memory));
    }
    if !hugepages.is_empty() {
        res.set_hugepage_limits(Some(hugepages));
    }
    if !r.unified.is_empty() {
        res.set_unified(Some(r.unified.clone()));
    }
    Ok(res)
}

/// The daemon's per-container pids limit (`pids_limit` in crius.toml) as OCI pids: a positive
/// value is the limit; 0 and -1 mean unlimited (nothing set); below -1 is an error.
pub fn pids_limit(limit: i64) -> Result<Option<LinuxPids>> {
    match limit {
        l if l > 0 => {
            let mut p = LinuxPids::default();
            p.set_limit(l);
            Ok(Some(p))
        }
        0 | -1 => Ok(None),
        l => Err(SpecError::field(
            "pids_limit",
            format!("{l}: must be positive, or 0 / -1 for unlimited"),
        )),
    }
}

/// Puts the daemon's default pids limit into `spec` (`linux.resources.pids`) unless the spec
/// already has one (e.g. set by a hook or a plugin). See [`pids_limit`].
pub fn set_default_pids_limit(spec: &mut Spec, limit: i64) -> Result<()> {
    let Some(pids) = pids_limit(limit)? else {
        return Ok(());
    };
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut res = linux.resources().clone().unwrap_or_default();
    if res.pids().is_none() {
        res.set_pids(Some(pids));
    }
    linux.set_resources(Some(res));
    spec.set_linux(Some(linux));
    Ok(())
}

/// The process's `oom_score_adj`: the CRI value (must be in [-1000, 1000]) raised to at least
/// the daemon's own, because lowering it needs CAP_SYS_RESOURCE, which this host withholds.
pub fn oom_score_adj(requested: i64, daemon: i32) -> Result<i32> {
    if !(-1000..=1000).contains(&requested) {
        return Err(bad(
            "oom_score_adj",
            requested,
            "must be between -1000 and 1000",
        ));
    }
    Ok((requested as i32).max(daemon))
}

/// The calling process's own `oom_score_adj` (from `/proc/self/oom_score_adj`).
pub fn own_oom_score_adj() -> std::io::Result<i32> {
    let text = std::fs::read_to_string("/proc/self/oom_score_adj")?;
    text.trim().parse().map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("/proc/self/oom_score_adj: {text:?}: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_cri::v1::HugepageLimit;

    fn res() -> LinuxContainerResources {
        LinuxContainerResources::default()
    }

    #[test]
    fn empty_is_empty() {
        let r = linux_resources(&res()).expect("empty");
        assert_eq!(r, LinuxResources::default());
    }

    #[test]
    fn full_conversion() {
        let mut r = res();
        r.cpu_shares = 512;
        r.cpu_quota = 50_000;
        r.cpu_period = 100_000;
        r.cpuset_cpus = "0-1,3".into();
        r.cpuset_mems = "0".into();
        r.memory_limit_in_bytes = 64 << 20;
        r.memory_swap_limit_in_bytes = 128 << 20;
        r.hugepage_limits = vec![HugepageLimit {
            page_size: "2MB".into(),
            limit: 4 << 20,
        }];
        r.unified.insert("memory.high".into(), "1000000".into());
        let out = linux_resources_on(&r, &eight_cpus()).expect("convert");
        let cpu = out.cpu().as_ref().expect("cpu");
        assert_eq!(cpu.shares(), Some(512));
        assert_eq!(cpu.quota(), Some(50_000));
        assert_eq!(cpu.period(), Some(100_000));
        assert_eq!(cpu.cpus().as_deref(), Some("0-1,3"));
        assert_eq!(cpu.mems().as_deref(), Some("0"));
        let mem = out.memory().as_ref().expect("memory");
        assert_eq!(mem.limit(), Some(64 << 20));
        assert_eq!(mem.swap(), Some(128 << 20));
        let hp = out.hugepage_limits().as_ref().expect("hugepages");
        assert_eq!(hp[0].page_size(), "2MB");
        assert_eq!(hp[0].limit(), 4 << 20);
        assert_eq!(
            out.unified().as_ref().expect("unified")["memory.high"],
            "1000000"
        );
    }

    fn eight_cpus() -> HostTopology {
        HostTopology {
            cpus: Some("0-7".into()),
            mems: Some("0".into()),
        }
    }

    #[test]
    fn cpuset_must_exist_on_the_host() {
        let host = HostTopology {
            cpus: Some("0-3,6-7".into()),
            mems: Some("0-1".into()),
        };
        let field_of = |e: SpecError| match e {
            SpecError::InvalidField { field, reason } => (field, reason),
            other => panic!("{other:?}"),
        };
        let mut r = res();
        r.cpuset_cpus = "0-3,7".into();
        r.cpuset_mems = "1".into();
        assert!(linux_resources_on(&r, &host).is_ok());
        r.cpuset_cpus = "8".into();
        let (f, why) = field_of(linux_resources_on(&r, &host).expect_err("cpu 8"));
        assert_eq!(f, "linux.resources.cpuset_cpus");
        assert!(why.contains("cpu 8 does not exist"), "{why}");
        r.cpuset_cpus = "2-5".into();
        let (f, why) = field_of(linux_resources_on(&r, &host).expect_err("cpu 4 offline"));
        assert_eq!(f, "linux.resources.cpuset_cpus");
        assert!(why.contains("cpu 4 is not online"), "{why}");
        r.cpuset_cpus = "0-4000000000".into();
        assert!(linux_resources_on(&r, &host).is_err());
        r.cpuset_cpus = "0".into();
        r.cpuset_mems = "0-2".into();
        let (f, _) = field_of(linux_resources_on(&r, &host).expect_err("node 2"));
        assert_eq!(f, "linux.resources.cpuset_mems");
        // Unknown topology: only the syntax is checked.
        r.cpuset_cpus = "1000".into();
        r.cpuset_mems = "9".into();
        assert!(linux_resources_on(&r, &HostTopology::default()).is_ok());
    }

    #[test]
    fn detected_topology_accepts_cpu_zero_only_up_to_online() {
        let host = HostTopology::detect();
        let online = host
            .cpus
            .clone()
            .expect("this host has /sys/devices/system/cpu/online");
        let mut r = res();
        r.cpuset_cpus = "0".into();
        assert!(linux_resources(&r).is_ok());
        let past = list_members(&online).max().expect("a cpu") + 1;
        r.cpuset_cpus = past.to_string();
        assert!(linux_resources(&r).is_err(), "cpu {past} past {online}");
    }

    #[test]
    fn pids_limit_mapping() {
        assert_eq!(pids_limit(0).expect("0"), None);
        assert_eq!(pids_limit(-1).expect("-1"), None);
        assert_eq!(
            pids_limit(1024).expect("1024").map(|p| p.limit()),
            Some(1024)
        );
        match pids_limit(-2) {
            Err(SpecError::InvalidField { field, .. }) => assert_eq!(field, "pids_limit"),
            other => panic!("{other:?}"),
        }

        let mut spec = Spec::default();
        set_default_pids_limit(&mut spec, 0).expect("unlimited");
        let pids_of = |s: &Spec| {
            s.linux()
                .as_ref()
                .and_then(|l| l.resources().as_ref())
                .and_then(|r| r.pids().as_ref())
                .map(|p| p.limit())
        };
        assert_eq!(pids_of(&spec), None);
        set_default_pids_limit(&mut spec, 100).expect("100");
        assert_eq!(pids_of(&spec), Some(100));
        // An explicit limit already in the spec wins; other resources are kept.
        let mut linux = spec.linux().clone().expect("linux");
        let mut res = linux.resources().clone().expect("resources");
        let mut own = LinuxPids::default();
        own.set_limit(7);
        res.set_pids(Some(own));
        let mut mem = LinuxMemory::default();
        mem.set_limit(Some(1 << 20));
        res.set_memory(Some(mem));
        linux.set_resources(Some(res));
        spec.set_linux(Some(linux));
        set_default_pids_limit(&mut spec, 100).expect("kept");
        assert_eq!(pids_of(&spec), Some(7));
        assert_eq!(
            spec.linux()
                .as_ref()
                .and_then(|l| l.resources().as_ref())
                .and_then(|r| r.memory().as_ref())
                .and_then(|m| m.limit()),
            Some(1 << 20)
        );
    }

    #[test]
    fn unlimited_values() {
        let mut r = res();
        r.cpu_quota = -1;
        r.memory_swap_limit_in_bytes = -1;
        r.memory_limit_in_bytes = 1 << 20;
        let out = linux_resources(&r).expect("unlimited");
        assert_eq!(out.cpu().as_ref().and_then(|c| c.quota()), Some(-1));
        assert_eq!(out.memory().as_ref().and_then(|m| m.swap()), Some(-1));
    }

    #[test]
    fn invalid_table() {
        type Edit = fn(&mut LinuxContainerResources);
        let cases: &[(&str, Edit)] = &[
            ("cpu_shares", |r| r.cpu_shares = -5),
            ("cpu_shares", |r| r.cpu_shares = 300_000),
            ("cpu_quota", |r| r.cpu_quota = 999),
            ("cpu_quota", |r| r.cpu_quota = -2),
            ("cpu_period", |r| r.cpu_period = 999),
            ("cpu_period", |r| r.cpu_period = 1_000_001),
            ("cpu_period", |r| r.cpu_period = -1),
            ("memory_limit_in_bytes", |r| r.memory_limit_in_bytes = -1),
            ("memory_swap_limit_in_bytes", |r| {
                r.memory_swap_limit_in_bytes = -2
            }),
            ("memory_swap_limit_in_bytes", |r| {
                r.memory_limit_in_bytes = 100 << 20;
                r.memory_swap_limit_in_bytes = 50 << 20;
            }),
            ("cpuset_cpus", |r| r.cpuset_cpus = "0-".into()),
            ("cpuset_cpus", |r| r.cpuset_cpus = "3-1".into()),
            ("cpuset_mems", |r| r.cpuset_mems = "a".into()),
            ("hugepage_limits.page_size", |r| {
                r.hugepage_limits = vec![HugepageLimit {
                    page_size: "2M".into(),
                    limit: 1,
                }]
            }),
            ("hugepage_limits.limit", |r| {
                r.hugepage_limits = vec![HugepageLimit {
                    page_size: "2MB".into(),
                    limit: u64::MAX,
                }]
            }),
            ("unified", |r| {
                r.unified.insert("../memory.max".into(), "1".into());
            }),
        ];
        for (field, edit) in cases {
            let mut r = res();
            edit(&mut r);
            match linux_resources(&r) {
                Err(SpecError::InvalidField { field: f, .. }) => {
                    assert_eq!(f, format!("linux.resources.{field}"), "{r:?}")
                }
                other => panic!("{field}: expected an error, got {other:?}"),
            }
        }
    }

    #[test]
    fn boundaries_accepted() {
        let mut r = res();
        r.cpu_quota = 1000;
        r.cpu_period = 1_000_000;
        r.cpu_shares = 2;
        assert!(linux_resources(&r).is_ok());
        r.cpu_period = 1000;
        r.cpu_shares = MAX_CPU_SHARES;
        assert!(linux_resources(&r).is_ok());
        r.cpu_shares = 1; // raised to the kernel minimum
        assert_eq!(
            linux_resources(&r)
                .expect("1")
                .cpu()
                .as_ref()
                .and_then(|c| c.shares()),
            Some(2)
        );
    }

    #[test]
    fn oom_clamped_to_daemon() {
        assert_eq!(oom_score_adj(-999, 0).expect("clamp"), 0);
        assert_eq!(oom_score_adj(-999, -1000).expect("allowed"), -999);
        assert_eq!(oom_score_adj(1000, -500).expect("high"), 1000);
        assert_eq!(oom_score_adj(0, 200).expect("raise"), 200);
        assert!(oom_score_adj(1001, 0).is_err());
        assert!(oom_score_adj(-1001, 0).is_err());
    }

    #[test]
    fn own_oom_reads_proc() {
        let v = own_oom_score_adj().expect("read");
        assert!((-1000..=1000).contains(&v));
    }
}
