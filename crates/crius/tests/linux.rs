//! Linux fidelity through the CRI, from inside real containers (run as root): OOM kills,
//! UpdateContainerResources reaching the cgroup, CPU statistics, out-of-range resources, and
//! the daemon's per-container pids limit. Real daemon, runc, busybox from the local registry.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Daemon;
use k8s_cri::v1 as cri;
use tonic::Code;

const MIB: i64 = 1 << 20;

/// A host cgroup-v1 file of a container: `/sys/fs/cgroup/<controller>/<parent>/<id>/<file>`.
fn host_cgroup_file(d: &Daemon, controller: &str, id: &str, file: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(&d.cgroup_parent)
        .join(id)
        .join(file)
}

/// Reads a host cgroup file of a container (trimmed).
fn read_host(d: &Daemon, controller: &str, id: &str, file: &str) -> String {
    let p = host_cgroup_file(d, controller, id, file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Runs `cmd` in the container; panics unless it exits 0; returns its stdout, trimmed.
async fn exec_ok(d: &mut Daemon, id: &str, cmd: &[&str]) -> String {
    let out =
        d.rt.exec_sync(cri::ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 10,
        })
        .await
        .expect("exec_sync")
        .into_inner();
    assert_eq!(
        out.exit_code,
        0,
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A busybox container config with these resources.
fn with_resources(
    name: &str,
    cmd: &[&str],
    res: cri::LinuxContainerResources,
) -> cri::ContainerConfig {
    let mut cfg = Daemon::container_config(name, cmd);
    cfg.linux = Some(cri::LinuxContainerConfig {
        resources: Some(res),
        ..Default::default()
    });
    cfg
}

/// The container's cumulative CPU time from ContainerStats.
async fn cpu_ns(d: &mut Daemon, id: &str) -> u64 {
    d.rt.container_stats(cri::ContainerStatsRequest {
        container_id: id.into(),
    })
    .await
    .expect("container stats")
    .into_inner()
    .stats
    .and_then(|s| s.cpu)
    .and_then(|c| c.usage_core_nano_seconds)
    .expect("cpu usage reported")
    .value
}

/// Each (controller, file, value) reads the same on the host and inside the container.
async fn cgroup_files_hold(d: &mut Daemon, id: &str, files: &[(&str, &str, i64)]) {
    for (ctl, file, want) in files {
        assert_eq!(read_host(d, ctl, id, file), want.to_string(), "{file}");
        let path = format!("/sys/fs/cgroup/{ctl}/{file}");
        let inside = exec_ok(d, id, &["cat", &path]).await;
        assert_eq!(inside, want.to_string(), "{file} inside");
    }
}

/// Runs `cmd` in a new container of `pod` limited to 32 MiB of memory and no swap, and waits
/// until it has exited.
async fn run_limited(
    d: &mut Daemon,
    pod: &str,
    pc: &cri::PodSandboxConfig,
    name: &str,
    cmd: &[&str],
) -> cri::ContainerStatus {
    let cfg = with_resources(
        name,
        cmd,
        cri::LinuxContainerResources {
            memory_limit_in_bytes: 32 * MIB,
            memory_swap_limit_in_bytes: 32 * MIB,
            ..Default::default()
        },
    );
    let id = d.create(pod, pc, cfg).await;
    d.start_ctr(&id).await;
    d.wait_exited(&id).await
}

/// dd allocates its whole 64 MiB block and fills it from /dev/zero: anonymous memory twice the
/// limit, and no swap to escape to (memory+swap = memory).
const HOG: &[&str] = &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"];

#[tokio::test]
async fn memory_limit_exceeded_is_oomkilled_under_conmon() {
    // Debian's conmon reports the OOM kill its own way (its oom file): the same outcome.
    let mut d = Daemon::start_with_monitor(std::path::Path::new("/usr/bin/conmon")).await;
    d.pull_busybox().await;
    let pc = d.pod_config("oom-conmon", false);
    let pod = d.run_pod(&pc).await;
    let st = run_limited(&mut d, &pod, &pc, "hog", HOG).await;
    assert_eq!(st.reason, "OOMKilled", "{st:?}");
    assert_eq!(st.exit_code, 137, "{st:?}");
    d.shutdown().await;
}

#[tokio::test]
async fn memory_limit_exceeded_is_oomkilled() {
    let mut d = Daemon::start().await;
    d.pull_busybox().await;
    let pc = d.pod_config("oom", false);
    let pod = d.run_pod(&pc).await;
    let st = run_limited(&mut d, &pod, &pc, "hog", HOG).await;
    assert_eq!(st.reason, "OOMKilled", "{st:?}");
    assert_eq!(st.exit_code, 137, "{st:?}");
    assert!(st.finished_at >= st.started_at, "{st:?}");

    // A child killed by the OOM killer while the main process goes on and exits 0: the
    // container still ends as OOMKilled (an OOM kill happened in its cgroup), with exit code 0.
    let child = "dd if=/dev/zero of=/dev/null bs=64M count=1; echo dd=$?";
    let st = run_limited(&mut d, &pod, &pc, "child", &["sh", "-c", child]).await;
    assert_eq!(st.reason, "OOMKilled", "{st:?}");
    assert_eq!(st.exit_code, 0, "{st:?}");
    let log = std::fs::read_to_string(&st.log_path).expect("child's log");
    assert!(log.contains(" stdout F dd=137"), "{log}");

    // A container that stays under its limit is not reported as OOMKilled.
    let small = ["dd", "if=/dev/zero", "of=/dev/null", "bs=1M", "count=4"];
    let st = run_limited(&mut d, &pod, &pc, "small", &small).await;
    assert_eq!(st.reason, "Completed", "{st:?}");
    assert_eq!(st.exit_code, 0, "{st:?}");
    d.shutdown().await;
}

#[tokio::test]
async fn update_container_resources_reaches_the_cgroup() {
    let mut d = Daemon::start().await;
    d.pull_busybox().await;
    let pc = d.pod_config("upd", false);
    let pod = d.run_pod(&pc).await;
    let before = cri::LinuxContainerResources {
        memory_limit_in_bytes: 64 * MIB,
        memory_swap_limit_in_bytes: 64 * MIB,
        cpu_shares: 512,
        cpu_quota: 50_000,
        cpu_period: 100_000,
        ..Default::default()
    };
    let cfg = with_resources("upd", &["sleep", "1000"], before.clone());
    let id = d.create(&pod, &pc, cfg).await;
    d.start_ctr(&id).await;

    let reported = d
        .status(&id)
        .await
        .resources
        .and_then(|r| r.linux)
        .expect("ContainerStatus.resources.linux at creation");
    assert_eq!(reported, before);

    // (host file, file inside the container, expected) for a set of resources. Without a
    // cgroup namespace (cgroup v1), runc mounts the container's own cgroup directory of each
    // hierarchy at /sys/fs/cgroup/<controller>.
    let files = |r: &cri::LinuxContainerResources| {
        [
            ("memory", "memory.limit_in_bytes", r.memory_limit_in_bytes),
            (
                "memory",
                "memory.memsw.limit_in_bytes",
                r.memory_swap_limit_in_bytes,
            ),
            ("cpu", "cpu.shares", r.cpu_shares),
            ("cpu", "cpu.cfs_quota_us", r.cpu_quota),
            ("cpu", "cpu.cfs_period_us", r.cpu_period),
        ]
    };
    cgroup_files_hold(&mut d, &id, &files(&before)).await;
    // No pids_limit configured: unlimited.
    assert_eq!(read_host(&d, "pids", &id, "pids.max"), "max");

    let after = cri::LinuxContainerResources {
        memory_limit_in_bytes: 96 * MIB,
        memory_swap_limit_in_bytes: 96 * MIB,
        cpu_shares: 256,
        cpu_quota: 30_000,
        cpu_period: 50_000,
        cpuset_cpus: "0".into(),
        ..Default::default()
    };
    d.rt.update_container_resources(cri::UpdateContainerResourcesRequest {
        container_id: id.clone(),
        linux: Some(after.clone()),
        ..Default::default()
    })
    .await
    .expect("update resources");
    cgroup_files_hold(&mut d, &id, &files(&after)).await;
    assert_eq!(read_host(&d, "cpuset", &id, "cpuset.cpus"), "0");
    let inside = exec_ok(&mut d, &id, &["cat", "/sys/fs/cgroup/cpuset/cpuset.cpus"]).await;
    assert_eq!(inside, "0");
    let allowed = exec_ok(
        &mut d,
        &id,
        &["grep", "Cpus_allowed_list", "/proc/self/status"],
    )
    .await;
    assert!(allowed.ends_with("\t0"), "{allowed}");
    let st = d.status(&id).await;
    let reported = st
        .resources
        .and_then(|r| r.linux)
        .expect("ContainerStatus.resources.linux");
    assert_eq!(reported, after);

    // An out-of-range update is refused and changes nothing.
    let e =
        d.rt.update_container_resources(cri::UpdateContainerResourcesRequest {
            container_id: id.clone(),
            linux: Some(cri::LinuxContainerResources {
                cpu_period: 5_000_000,
                ..after.clone()
            }),
            ..Default::default()
        })
        .await
        .expect_err("period out of range");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("cpu_period"), "{}", e.message());
    assert_eq!(read_host(&d, "cpu", &id, "cpu.cfs_period_us"), "50000");
    d.shutdown().await;
}

#[tokio::test]
async fn cpu_usage_grows_while_busy() {
    let mut d = Daemon::start().await;
    d.pull_busybox().await;
    let pc = d.pod_config("cpu", false);
    let pod = d.run_pod(&pc).await;
    let cfg = Daemon::container_config("spin", &["sh", "-c", "while :; do :; done"]);
    let id = d.create(&pod, &pc, cfg).await;
    d.start_ctr(&id).await;

    let first = cpu_ns(&mut d, &id).await;
    // Wait until the busy loop has used 50 ms more CPU (bounded; the value is what is awaited).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut now = first;
    while now < first + 50_000_000 {
        assert!(
            Instant::now() < deadline,
            "cpu usage stuck at {now} (first {first})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        now = cpu_ns(&mut d, &id).await;
    }
    // The same counter as the host's cgroup file (which only grows).
    let host: u64 = read_host(&d, "cpuacct", &id, "cpuacct.usage")
        .parse()
        .expect("cpuacct.usage");
    assert!(host >= now, "host {host} < reported {now}");

    let list =
        d.rt.list_container_stats(cri::ListContainerStatsRequest {
            filter: Some(cri::ContainerStatsFilter {
                pod_sandbox_id: pod.clone(),
                ..Default::default()
            }),
        })
        .await
        .expect("list container stats")
        .into_inner()
        .stats;
    let listed = list
        .iter()
        .find(|s| s.attributes.as_ref().is_some_and(|a| a.id == id))
        .and_then(|s| s.cpu.as_ref())
        .and_then(|c| c.usage_core_nano_seconds.as_ref())
        .expect("our container in ListContainerStats")
        .value;
    assert!(listed >= now, "listed {listed} < {now}");

    let ps =
        d.rt.pod_sandbox_stats(cri::PodSandboxStatsRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .expect("pod stats")
        .into_inner()
        .stats
        .expect("pod stats set");
    let linux = ps.linux.expect("linux pod stats");
    let in_pod = linux
        .containers
        .iter()
        .find(|s| s.attributes.as_ref().is_some_and(|a| a.id == id))
        .and_then(|s| s.cpu.as_ref())
        .and_then(|c| c.usage_core_nano_seconds.as_ref())
        .expect("our container in PodSandboxStats")
        .value;
    assert!(in_pod >= now, "pod's container {in_pod} < {now}");
    let pod_cpu = linux
        .cpu
        .and_then(|c| c.usage_core_nano_seconds)
        .expect("pod cpu")
        .value;
    assert!(pod_cpu >= now, "pod {pod_cpu} < container {now}");
    d.shutdown().await;
}
/// ContainerStats' memory figures come from the container's memory cgroup (memory.stat read
/// once for all its fields) and its writable layer from the overlay upper dir: a file written
/// inside the container shows in the layer, and its page cache is charged to the container.
#[tokio::test]
async fn memory_and_writable_layer_stats_follow_the_container() {
    let mut d = Daemon::start().await;
    d.pull_busybox().await;
    let pc = d.pod_config("memstat", false);
    let pod = d.run_pod(&pc).await;
    let id = d.run_sleeper(&pod, &pc, "hold").await;
    // dd runs in the container's cgroup: the 3 MiB it writes are charged there
    exec_ok(
        &mut d,
        &id,
        &["dd", "if=/dev/zero", "of=/written", "bs=1M", "count=3"],
    )
    .await;

    let st =
        d.rt.container_stats(cri::ContainerStatsRequest {
            container_id: id.clone(),
        })
        .await
        .expect("container stats")
        .into_inner()
        .stats
        .expect("stats set");
    let v = |x: Option<cri::UInt64Value>| x.expect("value set").value;
    let layer = st.writable_layer.expect("writable layer");
    let used = v(layer.used_bytes);
    assert!(used >= 3 << 20, "writable layer {used} < 3 MiB");
    assert!(v(layer.inodes_used) >= 1);

    let mem = st.memory.expect("memory stats");
    let (usage, ws) = (v(mem.usage_bytes), v(mem.working_set_bytes));
    assert!(usage >= 3 << 20, "usage {usage} < the 3 MiB written");
    assert!(ws <= usage, "working set {ws} > usage {usage}");
    assert!(
        v(mem.rss_bytes) > 0,
        "the sleeping process has anonymous memory"
    );
    assert!(v(mem.page_faults) > 0);
    // the host's cgroup saw at least that much
    let host: u64 = read_host(&d, "memory", &id, "memory.max_usage_in_bytes")
        .parse()
        .expect("max usage");
    assert!(host >= usage, "host max usage {host} < reported {usage}");
    d.shutdown().await;
}

/// Runtime state entries, bundles and container cgroups of a daemon (what a create leaves).
fn leftovers(d: &Daemon) -> Vec<String> {
    let mut out = Vec::new();
    for dir in [
        d.dir.path().join("runc"),
        d.dir.path().join("run/containers"),
    ] {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            out.push(e.path().display().to_string());
        }
    }
    for ctl in ["memory", "cpu", "pids", "cpuset"] {
        let parent = Path::new("/sys/fs/cgroup").join(ctl).join(&d.cgroup_parent);
        for e in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                out.push(e.path().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn out_of_range_resources_are_refused() {
    let mut d = Daemon::start().await;
    d.pull_busybox().await;
    let pc = d.pod_config("range", false);
    let pod = d.run_pod(&pc).await;
    let before = leftovers(&d);
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").expect("online cpus");
    let past_last_cpu = online
        .trim()
        .rsplit([',', '-'])
        .next()
        .and_then(|s| s.parse::<u32>().ok())
        .expect("last online cpu")
        + 1;
    let cases: Vec<(&str, cri::LinuxContainerResources)> = vec![
        (
            "memory_limit_in_bytes",
            cri::LinuxContainerResources {
                memory_limit_in_bytes: -MIB,
                ..Default::default()
            },
        ),
        (
            "cpu_shares",
            cri::LinuxContainerResources {
                cpu_shares: 262_145,
                ..Default::default()
            },
        ),
        (
            "cpuset_cpus",
            cri::LinuxContainerResources {
                cpuset_cpus: format!("0,{past_last_cpu}"),
                ..Default::default()
            },
        ),
        (
            "cpu_period",
            cri::LinuxContainerResources {
                cpu_period: 999,
                ..Default::default()
            },
        ),
        (
            "cpu_period",
            cri::LinuxContainerResources {
                cpu_period: 1_000_001,
                ..Default::default()
            },
        ),
    ];
    for (field, res) in cases {
        let e =
            d.rt.create_container(cri::CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(with_resources("bad", &["true"], res.clone())),
                sandbox_config: Some(pc.clone()),
            })
            .await
            .expect_err(field);
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        assert!(e.message().contains(field), "{field}: {}", e.message());
        let listed =
            d.rt.list_containers(cri::ListContainersRequest::default())
                .await
                .expect("list")
                .into_inner()
                .containers;
        assert!(listed.is_empty(), "{field}: {listed:?}");
        assert_eq!(leftovers(&d), before, "{field}: something was left");
    }
    // The name was released each time: the same name with valid resources is created.
    let ok = d
        .create(
            &pod,
            &pc,
            with_resources(
                "bad",
                &["true"],
                cri::LinuxContainerResources {
                    cpuset_cpus: "0".into(),
                    cpu_period: 100_000,
                    cpu_shares: 262_144,
                    ..Default::default()
                },
            ),
        )
        .await;
    assert_eq!(d.status(&ok).await.metadata.expect("md").name, "bad");
    d.shutdown().await;
}

#[tokio::test]
async fn configured_pids_limit_applies_to_containers() {
    let mut d = Daemon::start_with_config("pids_limit = 123\n").await;
    d.pull_busybox().await;
    let pc = d.pod_config("pids", false);
    let pod = d.run_pod(&pc).await;
    let id = d
        .create(&pod, &pc, Daemon::container_config("p", &["sleep", "1000"]))
        .await;
    d.start_ctr(&id).await;
    assert_eq!(read_host(&d, "pids", &id, "pids.max"), "123");
    let inside = exec_ok(&mut d, &id, &["cat", "/sys/fs/cgroup/pids/pids.max"]).await;
    assert_eq!(inside, "123");
    d.shutdown().await;
}
