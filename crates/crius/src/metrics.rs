//! CRI metrics (ListMetricDescriptors, ListPodSandboxMetrics) under cAdvisor's metric names and
//! label keys, so that the kubelet can serve them in place of cAdvisor's.
//!
//! Values are read live (timestamp 0) from the same cgroupfs readers as [`crate::stats`]. The CRI
//! carries integers only, so the `*_seconds*` metrics are whole seconds.

use std::path::Path;

use k8s_cri::v1 as cri;
use k8s_cri::v1::MetricType;

use crate::service::Crius;
use crate::state::{now_ns, ContainerRecord, ContainerState, PodRecord};
use crate::stats::{
    cgroup_dir, container_cgroup, cpu_usage, memory_usage, read_u64, stat_field, stat_fields,
};

/// The label keys every metric starts with, as cAdvisor names them.
pub const BASE_LABELS: [&str; 6] = ["container", "id", "image", "name", "namespace", "pod"];

const NS_PER_SEC: u64 = 1_000_000_000;
/// USER_HZ, the unit of cgroup v1's cpuacct.stat.
const USER_HZ: u64 = 100;

struct Desc {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    extra: &'static [&'static str],
}

const fn d(
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    extra: &'static [&'static str],
) -> Desc {
    Desc {
        name,
        help,
        kind,
        extra,
    }
}

use MetricType::{Counter as C, Gauge as G};

const DEVICE: &[&str] = &["device"];
const IFACE: &[&str] = &["interface"];

static DESCRIPTORS: &[Desc] = &[
    d(
        "container_blkio_device_usage_total",
        "Blkio device bytes usage",
        C,
        &["device", "major", "minor", "operation"],
    ),
    d(
        "container_cpu_cfs_periods_total",
        "Number of elapsed enforcement period intervals",
        C,
        &[],
    ),
    d(
        "container_cpu_cfs_throttled_periods_total",
        "Number of throttled period intervals",
        C,
        &[],
    ),
    d(
        "container_cpu_cfs_throttled_seconds_total",
        "Total time duration the container has been throttled",
        C,
        &[],
    ),
    d(
        "container_cpu_system_seconds_total",
        "Cumulative system cpu time consumed in seconds",
        C,
        &[],
    ),
    d(
        "container_cpu_usage_seconds_total",
        "Cumulative cpu time consumed in seconds",
        C,
        &["cpu"],
    ),
    d(
        "container_cpu_user_seconds_total",
        "Cumulative user cpu time consumed in seconds",
        C,
        &[],
    ),
    d(
        "container_file_descriptors",
        "Number of open file descriptors for the container",
        G,
        &[],
    ),
    d(
        "container_fs_inodes_free",
        "Number of available inodes",
        G,
        DEVICE,
    ),
    d("container_fs_inodes_total", "Number of inodes", G, DEVICE),
    d(
        "container_fs_limit_bytes",
        "Number of bytes that can be consumed by the container on this filesystem",
        G,
        DEVICE,
    ),
    d(
        "container_fs_reads_bytes_total",
        "Cumulative count of bytes read",
        C,
        DEVICE,
    ),
    d(
        "container_fs_reads_total",
        "Cumulative count of reads completed",
        C,
        DEVICE,
    ),
    d(
        "container_fs_usage_bytes",
        "Number of bytes that are consumed by the container on this filesystem",
        G,
        DEVICE,
    ),
    d(
        "container_fs_writes_bytes_total",
        "Cumulative count of bytes written",
        C,
        DEVICE,
    ),
    d(
        "container_fs_writes_total",
        "Cumulative count of writes completed",
        C,
        DEVICE,
    ),
    d(
        "container_last_seen",
        "Last time a container was seen by the exporter",
        G,
        &[],
    ),
    d(
        "container_memory_cache",
        "Number of bytes of page cache memory",
        G,
        &[],
    ),
    d(
        "container_memory_failcnt",
        "Number of memory usage hits limits",
        C,
        &[],
    ),
    d(
        "container_memory_failures_total",
        "Cumulative count of memory allocation failures",
        C,
        &["failure_type", "scope"],
    ),
    d(
        "container_memory_kernel_usage",
        "Size of kernel memory allocated in bytes",
        G,
        &[],
    ),
    d(
        "container_memory_mapped_file",
        "Size of memory mapped files in bytes",
        G,
        &[],
    ),
    d(
        "container_memory_max_usage_bytes",
        "Maximum memory usage recorded in bytes",
        G,
        &[],
    ),
    d("container_memory_rss", "Size of RSS in bytes", G, &[]),
    d(
        "container_memory_swap",
        "Container swap usage in bytes",
        G,
        &[],
    ),
    d(
        "container_memory_usage_bytes",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
        G,
        &[],
    ),
    d(
        "container_memory_working_set_bytes",
        "Current working set in bytes",
        G,
        &[],
    ),
    d(
        "container_network_receive_bytes_total",
        "Cumulative count of bytes received",
        C,
        IFACE,
    ),
    d(
        "container_network_receive_errors_total",
        "Cumulative count of errors encountered while receiving",
        C,
        IFACE,
    ),
    d(
        "container_network_receive_packets_dropped_total",
        "Cumulative count of packets dropped while receiving",
        C,
        IFACE,
    ),
    d(
        "container_network_receive_packets_total",
        "Cumulative count of packets received",
        C,
        IFACE,
    ),
    d(
        "container_network_transmit_bytes_total",
        "Cumulative count of bytes transmitted",
        C,
        IFACE,
    ),
    d(
        "container_network_transmit_errors_total",
        "Cumulative count of errors encountered while transmitting",
        C,
        IFACE,
    ),
    d(
        "container_network_transmit_packets_dropped_total",
        "Cumulative count of packets dropped while transmitting",
        C,
        IFACE,
    ),
    d(
        "container_network_transmit_packets_total",
        "Cumulative count of packets transmitted",
        C,
        IFACE,
    ),
    d(
        "container_oom_events_total",
        "Count of out of memory events observed for the container",
        C,
        &[],
    ),
    d(
        "container_processes",
        "Number of processes running inside the container",
        G,
        &[],
    ),
    d(
        "container_sockets",
        "Number of open sockets for the container",
        G,
        &[],
    ),
    d(
        "container_spec_cpu_period",
        "CPU period of the container",
        G,
        &[],
    ),
    d(
        "container_spec_cpu_shares",
        "CPU share of the container",
        G,
        &[],
    ),
    d(
        "container_spec_memory_limit_bytes",
        "Memory limit for the container",
        G,
        &[],
    ),
    d(
        "container_spec_memory_swap_limit_bytes",
        "Memory swap limit for the container",
        G,
        &[],
    ),
    d(
        "container_start_time_seconds",
        "Start time of the container since unix epoch in seconds",
        G,
        &[],
    ),
    d(
        "container_threads",
        "Number of threads running inside the container",
        G,
        &[],
    ),
    d(
        "container_threads_max",
        "Maximum number of threads allowed inside the container, 0 if unlimited",
        G,
        &[],
    ),
];

/// All metric descriptors crius reports.
pub fn descriptors() -> Vec<cri::MetricDescriptor> {
    DESCRIPTORS
        .iter()
        .map(|d| cri::MetricDescriptor {
            name: d.name.into(),
            help: d.help.into(),
            label_keys: BASE_LABELS
                .iter()
                .chain(d.extra)
                .map(|s| s.to_string())
                .collect(),
        })
        .collect()
}

/// Collects the metrics of one object (a container or a pod), which share the base labels.
pub struct Sink {
    base: Vec<String>,
    /// The metrics collected so far.
    pub out: Vec<cri::Metric>,
}

impl Sink {
    /// A sink whose metrics carry `base` as the values of [`BASE_LABELS`].
    pub fn new(base: [String; 6]) -> Sink {
        Sink {
            base: base.into(),
            out: Vec::new(),
        }
    }

    /// Adds one sample of a described metric; `extra` are the values of its own label keys.
    /// Unknown names and wrong label counts are dropped (a programming error).
    pub fn push(&mut self, name: &str, extra: &[&str], value: u64) {
        let Some(d) = DESCRIPTORS.iter().find(|d| d.name == name) else {
            debug_assert!(false, "undescribed metric {name}");
            return;
        };
        if d.extra.len() != extra.len() {
            debug_assert!(false, "wrong label count for {name}");
            return;
        }
        let mut label_values = self.base.clone();
        label_values.extend(extra.iter().map(|s| s.to_string()));
        self.out.push(cri::Metric {
            name: name.into(),
            timestamp: 0,
            metric_type: d.kind as i32,
            label_values,
            value: Some(cri::UInt64Value { value }),
        });
    }

    fn opt(&mut self, name: &str, extra: &[&str], value: Option<u64>) {
        if let Some(v) = value {
            self.push(name, extra, v);
        }
    }
}

/// Adds the cgroup metrics (CPU, memory, blkio, processes) of the cgroup `rel`.
pub fn cgroup_metrics(s: &mut Sink, rel: &str) {
    if let Some(cpu) = cpu_usage(rel) {
        let ns = cpu.usage_core_nano_seconds.map_or(0, |v| v.value);
        s.push(
            "container_cpu_usage_seconds_total",
            &["total"],
            ns / NS_PER_SEC,
        );
    }
    // user and system time: cpuacct.stat in clock ticks (v1), cpu.stat in microseconds (v2)
    let times = match cgroup_dir("cpuacct", rel) {
        Some((dir, false)) => stat_fields(&dir.join("cpuacct.stat"), ["user", "system"])
            .map(|t| t.map(|v| v.map(|t| t / USER_HZ))),
        Some((dir, true)) => stat_fields(&dir.join("cpu.stat"), ["user_usec", "system_usec"])
            .map(|t| t.map(|v| v.map(|us| us / 1_000_000))),
        None => None,
    };
    if let Some([user, system]) = times {
        s.opt("container_cpu_user_seconds_total", &[], user);
        s.opt("container_cpu_system_seconds_total", &[], system);
    }
    if let Some((dir, v2)) = cgroup_dir("cpu", rel) {
        let keys = if v2 {
            ["nr_periods", "nr_throttled", "throttled_usec"]
        } else {
            ["nr_periods", "nr_throttled", "throttled_time"]
        };
        let [periods, throttled_periods, throttled] =
            stat_fields(&dir.join("cpu.stat"), keys).unwrap_or([None; 3]);
        s.opt("container_cpu_cfs_periods_total", &[], periods);
        s.opt(
            "container_cpu_cfs_throttled_periods_total",
            &[],
            throttled_periods,
        );
        // v2 counts microseconds, v1 nanoseconds
        let throttled = throttled.map(|t| if v2 { t / 1_000_000 } else { t / NS_PER_SEC });
        s.opt("container_cpu_cfs_throttled_seconds_total", &[], throttled);
        if v2 {
            let period = std::fs::read_to_string(dir.join("cpu.max")).ok();
            let period = period
                .as_deref()
                .and_then(|t| t.split_whitespace().nth(1)?.parse().ok());
            s.opt("container_spec_cpu_period", &[], period);
            s.opt(
                "container_spec_cpu_shares",
                &[],
                read_u64(&dir.join("cpu.weight")),
            );
        } else {
            s.opt(
                "container_spec_cpu_period",
                &[],
                read_u64(&dir.join("cpu.cfs_period_us")),
            );
            s.opt(
                "container_spec_cpu_shares",
                &[],
                read_u64(&dir.join("cpu.shares")),
            );
        }
    }
    memory_metrics(s, rel);
    blkio_metrics(s, rel);
    process_metrics(s, rel);
}

fn memory_metrics(s: &mut Sink, rel: &str) {
    let Some(m) = memory_usage(rel) else { return };
    let val = |v: Option<cri::UInt64Value>| v.map(|v| v.value);
    let usage = val(m.usage_bytes);
    s.opt("container_memory_usage_bytes", &[], usage);
    s.opt(
        "container_memory_working_set_bytes",
        &[],
        val(m.working_set_bytes),
    );
    s.opt("container_memory_rss", &[], val(m.rss_bytes));
    let faults = val(m.page_faults).unwrap_or(0);
    let major = val(m.major_page_faults).unwrap_or(0);
    s.push(
        "container_memory_failures_total",
        &["pgfault", "container"],
        faults,
    );
    s.push(
        "container_memory_failures_total",
        &["pgmajfault", "container"],
        major,
    );
    let Some((dir, v2)) = cgroup_dir("memory", rel) else {
        return;
    };
    let st = dir.join("memory.stat");
    // v1 reports "unlimited" as a huge page-rounded number, v2 as "max": both become 0.
    let limit = |p: &Path| read_u64(p).filter(|&v| v < i64::MAX as u64 / 2).or(Some(0));
    if v2 {
        let [cache, mapped, kernel] =
            stat_fields(&st, ["file", "file_mapped", "kernel"]).unwrap_or([None; 3]);
        let [failcnt, oom] =
            stat_fields(&dir.join("memory.events"), ["max", "oom_kill"]).unwrap_or([None; 2]);
        s.opt("container_memory_cache", &[], cache);
        s.opt("container_memory_mapped_file", &[], mapped);
        s.opt("container_memory_kernel_usage", &[], kernel);
        s.opt("container_memory_failcnt", &[], failcnt);
        s.opt("container_oom_events_total", &[], oom);
        let peak = read_u64(&dir.join("memory.peak")).or(usage);
        s.opt("container_memory_max_usage_bytes", &[], peak);
        let swap = read_u64(&dir.join("memory.swap.current")).or(Some(0));
        s.opt("container_memory_swap", &[], swap);
        s.opt(
            "container_spec_memory_limit_bytes",
            &[],
            limit(&dir.join("memory.max")),
        );
        s.opt(
            "container_spec_memory_swap_limit_bytes",
            &[],
            limit(&dir.join("memory.swap.max")),
        );
    } else {
        let [cache, mapped, swap] =
            stat_fields(&st, ["total_cache", "total_mapped_file", "total_swap"])
                .unwrap_or([None; 3]);
        s.opt("container_memory_cache", &[], cache);
        s.opt("container_memory_mapped_file", &[], mapped);
        let kmem = read_u64(&dir.join("memory.kmem.usage_in_bytes")).or(Some(0));
        s.opt("container_memory_kernel_usage", &[], kmem);
        s.opt(
            "container_memory_failcnt",
            &[],
            read_u64(&dir.join("memory.failcnt")),
        );
        let oom = stat_field(&dir.join("memory.oom_control"), "oom_kill").or(Some(0));
        s.opt("container_oom_events_total", &[], oom);
        let peak = read_u64(&dir.join("memory.max_usage_in_bytes")).or(usage);
        s.opt("container_memory_max_usage_bytes", &[], peak);
        s.opt("container_memory_swap", &[], swap.or(Some(0)));
        s.opt(
            "container_spec_memory_limit_bytes",
            &[],
            limit(&dir.join("memory.limit_in_bytes")),
        );
        let memsw = limit(&dir.join("memory.memsw.limit_in_bytes"));
        s.opt("container_spec_memory_swap_limit_bytes", &[], memsw);
    }
}

/// Per-device byte and operation counts from cgroup v1 blkio (`MAJ:MIN Op N` lines).
pub fn parse_blkio(text: &str) -> Vec<(String, String, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (dev, op, n) = (it.next()?, it.next()?, it.next()?);
            dev.contains(':')
                .then(|| Some((dev.to_string(), op.to_string(), n.parse().ok()?)))?
        })
        .collect()
}

fn blkio_metrics(s: &mut Sink, rel: &str) {
    let Some((dir, false)) = cgroup_dir("blkio", rel) else {
        return;
    };
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .map(|t| parse_blkio(&t))
            .unwrap_or_default()
    };
    for (dev, op, n) in read("blkio.throttle.io_service_bytes_recursive") {
        let (major, minor) = dev.split_once(':').unwrap_or((&dev, ""));
        s.push(
            "container_blkio_device_usage_total",
            &[&dev, major, minor, &op],
            n,
        );
        match op.as_str() {
            "Read" => s.push("container_fs_reads_bytes_total", &[&dev], n),
            "Write" => s.push("container_fs_writes_bytes_total", &[&dev], n),
            _ => {}
        }
    }
    for (dev, op, n) in read("blkio.throttle.io_serviced_recursive") {
        match op.as_str() {
            "Read" => s.push("container_fs_reads_total", &[&dev], n),
            "Write" => s.push("container_fs_writes_total", &[&dev], n),
            _ => {}
        }
    }
}

fn process_metrics(s: &mut Sink, rel: &str) {
    let dir = cgroup_dir("pids", rel).or_else(|| cgroup_dir("memory", rel));
    let Some((dir, _)) = dir else { return };
    let pids: Vec<u32> = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    s.push("container_processes", &[], pids.len() as u64);
    let (mut fds, mut sockets) = (0u64, 0u64);
    for pid in &pids {
        let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for e in rd.flatten() {
            fds += 1;
            if std::fs::read_link(e.path())
                .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
            {
                sockets += 1;
            }
        }
    }
    s.push("container_file_descriptors", &[], fds);
    s.push("container_sockets", &[], sockets);
    let threads = read_u64(&dir.join("pids.current")).or_else(|| {
        let tasks = std::fs::read_to_string(dir.join("tasks")).ok()?;
        Some(tasks.lines().count() as u64)
    });
    s.opt("container_threads", &[], threads);
    // "max" (unlimited) does not parse: 0, as cAdvisor reports it.
    let max = read_u64(&dir.join("pids.max")).unwrap_or(0);
    s.push("container_threads_max", &[], max);
}

/// Per-interface counters from `/proc/<pid>/net/dev`, loopback left out: (interface,
/// [rx bytes, rx packets, rx errs, rx drop, tx bytes, tx packets, tx errs, tx drop]).
pub fn parse_net_dev(text: &str) -> Vec<(String, [u64; 8])> {
    text.lines()
        .filter_map(|l| {
            let (iface, rest) = l.split_once(':')?;
            let iface = iface.trim();
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|v| v.parse().ok())
                .collect::<Option<_>>()?;
            (iface != "lo" && f.len() >= 12).then(|| {
                (
                    iface.to_string(),
                    [f[0], f[1], f[2], f[3], f[8], f[9], f[10], f[11]],
                )
            })
        })
        .collect()
}

const NET_NAMES: [&str; 8] = [
    "container_network_receive_bytes_total",
    "container_network_receive_packets_total",
    "container_network_receive_errors_total",
    "container_network_receive_packets_dropped_total",
    "container_network_transmit_bytes_total",
    "container_network_transmit_packets_total",
    "container_network_transmit_errors_total",
    "container_network_transmit_packets_dropped_total",
];

fn network_metrics(s: &mut Sink, pid: u32) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return;
    };
    for (iface, vals) in parse_net_dev(&text) {
        for (name, v) in NET_NAMES.iter().zip(vals) {
            s.push(name, &[&iface], v);
        }
    }
}

impl Crius {
    /// The metrics of one running container (None when it is not running).
    pub async fn container_metrics_of(
        &self,
        pod: &PodRecord,
        rec: &ContainerRecord,
    ) -> Option<cri::ContainerMetrics> {
        if rec.state != ContainerState::Running {
            return None;
        }
        let cg = container_cgroup(self, rec);
        let meta = pod.metadata();
        let mut s = Sink::new([
            rec.name.clone(),
            cg.clone(),
            rec.image_ref.clone(),
            rec.id.clone(),
            meta.namespace,
            meta.name,
        ]);
        cgroup_metrics(&mut s, &cg);
        let now = u64::try_from(now_ns()).unwrap_or(0);
        s.push("container_last_seen", &[], now / NS_PER_SEC);
        let started = u64::try_from(rec.started_at).unwrap_or(0);
        s.push("container_start_time_seconds", &[], started / NS_PER_SEC);
        let dev = self.cfg.image_root().to_string_lossy().into_owned();
        if let Ok(Some((bytes, _))) = self.be.images.writable_layer_usage(&rec.id).await {
            s.push("container_fs_usage_bytes", &[&dev], bytes);
        }
        if let Ok(st) = nix::sys::statvfs::statvfs(&self.cfg.image_root()) {
            let frag = st.fragment_size();
            s.push("container_fs_limit_bytes", &[&dev], st.blocks() * frag);
            s.push("container_fs_inodes_total", &[&dev], st.files());
            s.push("container_fs_inodes_free", &[&dev], st.files_free());
        }
        Some(cri::ContainerMetrics {
            container_id: rec.id.clone(),
            metrics: s.out,
        })
    }

    /// The metrics of one pod: its network (from the pod's network namespace) and its running
    /// containers'.
    pub async fn pod_metrics_of(&self, pod: &PodRecord) -> cri::PodSandboxMetrics {
        let containers: Vec<ContainerRecord> = self
            .state
            .pod_containers(&pod.id)
            .iter()
            .map(|e| e.get())
            .collect();
        let mut container_metrics = Vec::new();
        for c in &containers {
            container_metrics.extend(self.container_metrics_of(pod, c).await);
        }
        let meta = pod.metadata();
        let mut s = Sink::new([
            "POD".into(),
            pod.cgroup_parent.clone(),
            String::new(),
            pod.id.clone(),
            meta.namespace,
            meta.name,
        ]);
        // Any process inside the pod's network namespace shows its interfaces.
        let netns_pid = pod.infra_pid.or_else(|| {
            containers
                .iter()
                .find(|c| c.state == ContainerState::Running && c.pid > 0)
                .map(|c| c.pid)
        });
        if let (false, Some(pid)) = (pod.host_network(), netns_pid) {
            network_metrics(&mut s, pid);
        }
        cri::PodSandboxMetrics {
            pod_sandbox_id: pod.id.clone(),
            metrics: s.out,
            container_metrics,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn base() -> [String; 6] {
        ["c", "/x", "img", "id", "ns", "pod"].map(String::from)
    }

    #[test]
    fn descriptors_are_unique_helped_and_labelled() {
        let ds = descriptors();
        let names: HashSet<_> = ds.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names.len(), ds.len(), "duplicate names");
        for d in &ds {
            assert!(!d.help.is_empty(), "{}", d.name);
            assert_eq!(
                &d.label_keys[..6],
                &BASE_LABELS.map(String::from)[..],
                "{}",
                d.name
            );
        }
        for n in [
            "container_cpu_usage_seconds_total",
            "container_memory_working_set_bytes",
            "container_spec_memory_limit_bytes",
            "container_last_seen",
            "container_network_receive_bytes_total",
        ] {
            assert!(names.contains(n), "{n} missing");
        }
        let cpu = ds
            .iter()
            .find(|d| d.name == "container_cpu_usage_seconds_total")
            .expect("cpu");
        assert_eq!(cpu.label_keys.last().map(String::as_str), Some("cpu"));
    }

    #[test]
    fn sink_matches_label_keys_and_types() {
        let mut s = Sink::new(base());
        s.push("container_cpu_usage_seconds_total", &["total"], 7);
        s.push("container_memory_rss", &[], 9);
        let ds = descriptors();
        for m in &s.out {
            let d = ds.iter().find(|d| d.name == m.name).expect("described");
            assert_eq!(m.label_values.len(), d.label_keys.len(), "{}", m.name);
        }
        assert_eq!(s.out[0].metric_type, MetricType::Counter as i32);
        assert_eq!(s.out[0].label_values[6], "total");
        assert_eq!(s.out[1].metric_type, MetricType::Gauge as i32);
        assert_eq!(s.out[1].value, Some(cri::UInt64Value { value: 9 }));
        assert_eq!(s.out[1].timestamp, 0);
    }

    #[test]
    fn net_dev_parsing_skips_loopback() {
        let text = "Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n    lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n  eth0: 100 2 3 4 0 0 0 0 200 5 6 7 0 0 0 0\n";
        assert_eq!(
            parse_net_dev(text),
            vec![("eth0".to_string(), [100, 2, 3, 4, 200, 5, 6, 7])]
        );
    }

    #[test]
    fn blkio_parsing() {
        let text = "8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096\n";
        let v = parse_blkio(text);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0], ("8:0".into(), "Read".into(), 4096));
    }

    /// The cgroup of this test process (in the memory hierarchy) gives real values.
    #[test]
    fn own_cgroup_has_memory_and_process_metrics() {
        let own = std::fs::read_to_string("/proc/self/cgroup").expect("cgroup");
        let rel = own
            .lines()
            .find_map(|l| {
                let mut p = l.splitn(3, ':');
                let (_, ctrl, path) = (p.next()?, p.next()?, p.next()?);
                (ctrl.split(',').any(|c| c == "memory") || ctrl.is_empty())
                    .then(|| path.to_string())
            })
            .expect("memory cgroup");
        let mut s = Sink::new(base());
        cgroup_metrics(&mut s, &rel);
        let get = |n: &str| {
            s.out
                .iter()
                .find(|m| m.name == n)
                .and_then(|m| m.value)
                .map(|v| v.value)
        };
        assert!(get("container_memory_usage_bytes").expect("usage") > 0);
        assert!(get("container_processes").expect("processes") >= 1);
        assert!(get("container_file_descriptors").expect("fds") >= 1);
    }
}
