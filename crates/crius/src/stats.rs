//! Container and pod statistics from cgroupfs: CPU usage (cpuacct, or cpu.stat on v2), memory
//! working set (usage minus inactive file pages), and the writable layer usage.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_cri::v1 as cri;

use crate::service::Crius;
use crate::state::{now_ns, ContainerRecord, ContainerState};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

pub(crate) fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

pub(crate) fn stat_field(p: &Path, key: &str) -> Option<u64> {
    let [v] = stat_fields(p, [key])?;
    v
}

/// Values of `keys` in a flat-keyed cgroup file (`key value` lines, such as memory.stat), read
/// once: the kernel formats the whole file at every read, which makes it the costly part of a
/// stats call. `None` when the file cannot be read; a missing key is `None` in its place.
pub(crate) fn stat_fields<const N: usize>(p: &Path, keys: [&str; N]) -> Option<[Option<u64>; N]> {
    let text = std::fs::read_to_string(p).ok()?;
    let mut out = [None; N];
    for l in text.lines() {
        let mut it = l.split_ascii_whitespace();
        let (Some(k), Some(v)) = (it.next(), it.next()) else {
            continue;
        };
        if let Some(i) = keys.iter().position(|&want| want == k) {
            out[i] = v.parse().ok();
        }
    }
    Some(out)
}

/// The first existing directory among a cgroup-v1 controller's mount and the v2 tree.
pub(crate) fn cgroup_dir(controller: &str, rel: &str) -> Option<(PathBuf, bool)> {
    let rel = rel.trim_start_matches('/');
    let v1 = Path::new(CGROUP_ROOT).join(controller).join(rel);
    if v1.is_dir() {
        return Some((v1, false));
    }
    let v2 = Path::new(CGROUP_ROOT).join(rel);
    if Path::new(CGROUP_ROOT).join("cgroup.controllers").exists() && v2.is_dir() {
        return Some((v2, true));
    }
    None
}

/// CPU usage of a cgroup.
pub fn cpu_usage(rel: &str) -> Option<cri::CpuUsage> {
    let ns = match cgroup_dir("cpuacct", rel)? {
        (d, false) => read_u64(&d.join("cpuacct.usage"))?,
        (d, true) => stat_field(&d.join("cpu.stat"), "usage_usec")? * 1000,
    };
    Some(cri::CpuUsage {
        timestamp: now_ns(),
        usage_core_nano_seconds: Some(cri::UInt64Value { value: ns }),
        usage_nano_cores: None,
        psi: None,
    })
}

/// Memory usage of a cgroup; working set = usage - inactive file.
pub fn memory_usage(rel: &str) -> Option<cri::MemoryUsage> {
    let (d, v2) = cgroup_dir("memory", rel)?;
    let (usage, keys) = if v2 {
        (
            read_u64(&d.join("memory.current"))?,
            ["inactive_file", "anon", "pgfault", "pgmajfault"],
        )
    } else {
        (
            read_u64(&d.join("memory.usage_in_bytes"))?,
            [
                "total_inactive_file",
                "total_rss",
                "total_pgfault",
                "total_pgmajfault",
            ],
        )
    };
    let [inactive, rss, faults, major] =
        stat_fields(&d.join("memory.stat"), keys).map_or([0; 4], |f| f.map(|v| v.unwrap_or(0)));
    let v = |value| Some(cri::UInt64Value { value });
    Some(cri::MemoryUsage {
        timestamp: now_ns(),
        working_set_bytes: v(usage.saturating_sub(inactive)),
        available_bytes: None,
        usage_bytes: v(usage),
        rss_bytes: v(rss),
        page_faults: v(faults),
        major_page_faults: v(major),
        psi: None,
    })
}

/// The cgroup of a container relative to the hierarchy roots.
pub fn container_cgroup(c: &Crius, rec: &ContainerRecord) -> String {
    let parent = c
        .state
        .pod(&rec.pod_id)
        .map(|p| p.get().cgroup_parent)
        .unwrap_or_default();
    c.be.spec.cgroups_path(&parent, &rec.id)
}

impl Crius {
    /// ContainerStats of one container.
    pub async fn container_stats_of(&self, rec: &ContainerRecord) -> cri::ContainerStats {
        let running = rec.state == ContainerState::Running;
        let cg = container_cgroup(self, rec);
        let layer = self
            .be
            .images
            .writable_layer_usage(&rec.id)
            .await
            .ok()
            .flatten();
        let ts = now_ns();
        cri::ContainerStats {
            attributes: Some(cri::ContainerAttributes {
                id: rec.id.clone(),
                metadata: Some(rec.metadata()),
                labels: rec.config.labels.clone(),
                annotations: rec.config.annotations.clone(),
            }),
            cpu: if running { cpu_usage(&cg) } else { None },
            memory: if running { memory_usage(&cg) } else { None },
            writable_layer: layer.map(|(bytes, inodes)| cri::FilesystemUsage {
                timestamp: ts,
                fs_id: Some(cri::FilesystemIdentifier {
                    mountpoint: self.cfg.image_root().to_string_lossy().into_owned(),
                }),
                used_bytes: Some(cri::UInt64Value { value: bytes }),
                inodes_used: Some(cri::UInt64Value { value: inodes }),
            }),
            swap: None,
            io: None,
        }
    }

    /// PodSandboxStats of one pod: sums of its running containers' CPU and memory.
    pub async fn pod_stats_of(&self, pod: &crate::state::PodRecord) -> cri::PodSandboxStats {
        let mut containers = Vec::new();
        for c in self.state.pod_containers(&pod.id) {
            containers.push(self.container_stats_of(&c.get()).await);
        }
        let ts = now_ns();
        let sum = |f: &dyn Fn(&cri::ContainerStats) -> Option<u64>| -> Option<cri::UInt64Value> {
            let vals: Vec<u64> = containers.iter().filter_map(f).collect();
            (!vals.is_empty()).then(|| cri::UInt64Value {
                value: vals.iter().sum(),
            })
        };
        let cpu = sum(&|s| {
            s.cpu
                .as_ref()?
                .usage_core_nano_seconds
                .as_ref()
                .map(|v| v.value)
        });
        let ws = sum(&|s| {
            s.memory
                .as_ref()?
                .working_set_bytes
                .as_ref()
                .map(|v| v.value)
        });
        let usage = sum(&|s| s.memory.as_ref()?.usage_bytes.as_ref().map(|v| v.value));
        cri::PodSandboxStats {
            attributes: Some(cri::PodSandboxAttributes {
                id: pod.id.clone(),
                metadata: Some(pod.metadata()),
                labels: pod.config.labels.clone(),
                annotations: pod.config.annotations.clone(),
            }),
            linux: Some(cri::LinuxPodSandboxStats {
                cpu: Some(cri::CpuUsage {
                    timestamp: ts,
                    usage_core_nano_seconds: cpu,
                    usage_nano_cores: None,
                    psi: None,
                }),
                memory: Some(cri::MemoryUsage {
                    timestamp: ts,
                    working_set_bytes: ws,
                    usage_bytes: usage,
                    ..Default::default()
                }),
                network: None,
                process: None,
                containers,
                io: None,
            }),
            windows: None,
        }
    }
}

/// Whether labels match a selector.
pub fn labels_match(labels: &HashMap<String, String>, sel: &HashMap<String, String>) -> bool {
    sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_reads_each_key_once_from_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("memory.stat");
        std::fs::write(
            &p,
            "cache 10\nrss 20\ntotal_rss 200\nbroken\ntotal_inactive_file x\ntotal_pgfault 7\n",
        )
        .unwrap();
        let got = stat_fields(
            &p,
            [
                "total_rss",
                "total_pgfault",
                "total_inactive_file",
                "absent",
            ],
        );
        assert_eq!(got, Some([Some(200), Some(7), None, None]));
        assert_eq!(stat_field(&p, "rss"), Some(20));
        assert_eq!(stat_fields(&dir.path().join("missing"), ["rss"]), None);
    }
}
