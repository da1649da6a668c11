//! Integration tests against the real daemon binary (run as root): runc, the local registry,
//! CNI bridge, tonic client over the unix socket.

mod common;

use std::time::Duration;

use common::Daemon;
use k8s_cri::v1 as cri;
use tonic::Code;

#[tokio::test]
async fn version_status_and_images() {
    let mut d = Daemon::start().await;
    let v =
        d.rt.version(cri::VersionRequest::default())
            .await
            .expect("version")
            .into_inner();
    assert_eq!(v.runtime_name, "crius");
    assert_eq!(v.runtime_api_version, "v1");

    let st =
        d.rt.status(cri::StatusRequest { verbose: true })
            .await
            .expect("status")
            .into_inner();
    let conds = st.status.expect("conditions").conditions;
    for t in ["RuntimeReady", "NetworkReady"] {
        let c = conds
            .iter()
            .find(|c| c.r#type == t)
            .unwrap_or_else(|| panic!("{t} missing"));
        assert!(c.status, "{t} false: {} {}", c.reason, c.message);
    }
    assert!(st.info.contains_key("config"));

    let image_ref = d.pull_busybox().await;
    assert!(
        image_ref.starts_with("sha256:") || image_ref.contains("@sha256:"),
        "{image_ref}"
    );
    let img = d
        .img
        .image_status(cri::ImageStatusRequest {
            image: Some(cri::ImageSpec {
                image: common::BUSYBOX.into(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .expect("image status")
        .into_inner()
        .image
        .expect("busybox present");
    assert!(
        img.repo_tags.iter().any(|t| t.contains("busybox:1")),
        "{:?}",
        img.repo_tags
    );
    let list = d
        .img
        .list_images(cri::ListImagesRequest::default())
        .await
        .expect("list")
        .into_inner()
        .images;
    assert!(list.iter().any(|i| i.id == img.id));

    // Unknown image: empty response, not an error; removing it succeeds.
    let none = d
        .img
        .image_status(cri::ImageStatusRequest {
            image: Some(cri::ImageSpec {
                image: "docker.io/library/nope:none".into(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .expect("status of unknown image")
        .into_inner();
    assert!(none.image.is_none());
    d.img
        .remove_image(cri::RemoveImageRequest {
            image: Some(cri::ImageSpec {
                image: "docker.io/library/nope:none".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("remove unknown image");
    let fs = d
        .img
        .image_fs_info(cri::ImageFsInfoRequest {})
        .await
        .expect("fs info")
        .into_inner();
    assert!(
        fs.image_filesystems[0]
            .used_bytes
            .as_ref()
            .expect("used")
            .value
            > 0
    );

    let rc =
        d.rt.runtime_config(cri::RuntimeConfigRequest {})
            .await
            .expect("runtime config")
            .into_inner();
    assert_eq!(
        rc.linux.expect("linux").cgroup_driver,
        cri::CgroupDriver::Cgroupfs as i32
    );
    d.shutdown().await;
}

#[tokio::test]
async fn pod_and_container_lifecycle() {
    let mut d = Daemon::start().await;
    d.pull_busybox().await;
    let mut events =
        d.rt.get_container_events(cri::GetEventsRequest {})
            .await
            .expect("events")
            .into_inner();
    let pc = d.pod_config("life", false);
    let pod = d.run_pod(&pc).await;
    assert_eq!(pod.len(), 64);

    let ps =
        d.rt.pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: true,
        })
        .await
        .expect("pod status")
        .into_inner();
    let s = ps.status.expect("status");
    assert_eq!(s.state, cri::PodSandboxState::SandboxReady as i32);
    let ip = s.network.expect("network").ip;
    assert!(!ip.is_empty(), "pod has an IP");

    let cfg = Daemon::container_config("web", &["sh", "-c", "echo started; exec sleep 1000"]);
    let id = d.create(&pod, &pc, cfg).await;
    assert_eq!(
        d.status(&id).await.state,
        cri::ContainerState::ContainerCreated as i32
    );
    d.start_ctr(&id).await;
    let st = d.status(&id).await;
    assert_eq!(st.state, cri::ContainerState::ContainerRunning as i32);
    assert!(st.started_at >= st.created_at && st.created_at > 0);
    assert_eq!(st.image.expect("image").image, common::BUSYBOX);
    assert!(!st.image_ref.is_empty());
    assert!(st.log_path.ends_with("web.log"));

    // exec_sync sees the pod's hostname and /etc/hosts with the pod IP.
    let out =
        d.rt.exec_sync(cri::ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "hostname; cat /etc/hosts; echo err >&2; exit 3".into(),
            ],
            timeout: 10,
        })
        .await
        .expect("exec_sync")
        .into_inner();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.exit_code, 3);
    assert!(stdout.starts_with("testhost\n"), "{stdout}");
    assert!(stdout.contains(&format!("{ip}\ttesthost")), "{stdout}");
    assert_eq!(out.stderr, b"err\n");

    // Timeout → DeadlineExceeded.
    let e =
        d.rt.exec_sync(cri::ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec!["sleep".into(), "30".into()],
            timeout: 1,
        })
        .await
        .expect_err("exec timeout");
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");

    // List filters.
    let by_state =
        d.rt.list_containers(cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                state: Some(cri::ContainerStateValue {
                    state: cri::ContainerState::ContainerRunning as i32,
                }),
                pod_sandbox_id: pod.clone(),
                ..Default::default()
            }),
        })
        .await
        .expect("list")
        .into_inner()
        .containers;
    assert_eq!(by_state.len(), 1);
    let by_prefix =
        d.rt.list_pod_sandbox(cri::ListPodSandboxRequest {
            filter: Some(cri::PodSandboxFilter {
                id: pod[..12].into(),
                ..Default::default()
            }),
        })
        .await
        .expect("list pods")
        .into_inner()
        .items;
    assert_eq!(by_prefix.len(), 1);

    // Stop: SIGTERM → 143 (sh execs sleep, which dies of SIGTERM), reason Error. Twice is fine.
    d.rt.stop_container(cri::StopContainerRequest {
        container_id: id.clone(),
        timeout: 10,
    })
    .await
    .expect("stop");
    d.rt.stop_container(cri::StopContainerRequest {
        container_id: id.clone(),
        timeout: 10,
    })
    .await
    .expect("stop again");
    let st = d.status(&id).await;
    assert_eq!(st.state, cri::ContainerState::ContainerExited as i32);
    assert!(
        st.exit_code == 143 || st.exit_code == 137,
        "exit code {}",
        st.exit_code
    );
    assert_eq!(st.reason, "Error");
    assert!(st.finished_at >= st.started_at);
    let log = std::fs::read_to_string(d.dir.path().join("logs/web.log")).expect("container log");
    assert!(log.contains("stdout F started"), "{log}");

    // Exec into a stopped container → FailedPrecondition.
    let e =
        d.rt.exec_sync(cri::ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec!["true".into()],
            timeout: 5,
        })
        .await
        .expect_err("exec in stopped container");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    // Remove twice, then the pod twice.
    d.rt.remove_container(cri::RemoveContainerRequest {
        container_id: id.clone(),
    })
    .await
    .expect("rm");
    d.rt.remove_container(cri::RemoveContainerRequest {
        container_id: id.clone(),
    })
    .await
    .expect("rm again");
    let e =
        d.rt.container_status(cri::ContainerStatusRequest {
            container_id: id.clone(),
            verbose: false,
        })
        .await
        .expect_err("gone");
    assert_eq!(e.code(), Code::NotFound);
    d.rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("stopp");
    d.rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("stopp again");
    d.rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("rmp");
    d.rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("rmp again");

    // Events, in order: pod created/started, container created/started/stopped/deleted, pod
    // stopped/deleted.
    use cri::ContainerEventType as E;
    let want = [
        (pod.clone(), E::ContainerCreatedEvent),
        (pod.clone(), E::ContainerStartedEvent),
        (id.clone(), E::ContainerCreatedEvent),
        (id.clone(), E::ContainerStartedEvent),
        (id.clone(), E::ContainerStoppedEvent),
        (id.clone(), E::ContainerDeletedEvent),
        (pod.clone(), E::ContainerStoppedEvent),
        (pod.clone(), E::ContainerDeletedEvent),
    ];
    for (wid, wkind) in want {
        let ev = tokio::time::timeout(Duration::from_secs(30), events.message())
            .await
            .expect("event in time")
            .expect("stream ok")
            .expect("event");
        assert_eq!(
            (ev.container_id.as_str(), ev.container_event_type),
            (wid.as_str(), wkind as i32)
        );
        if wkind != E::ContainerDeletedEvent {
            assert_eq!(ev.pod_sandbox_status.expect("pod status").id, pod);
        }
    }
    d.shutdown().await;
}

#[tokio::test]
async fn completed_container_and_shared_pid_pod() {
    let mut d = Daemon::start().await;
    d.pull_busybox().await;
    let mut events =
        d.rt.get_container_events(cri::GetEventsRequest {})
            .await
            .expect("events")
            .into_inner();
    let pc = d.pod_config("done", true);
    let pod = d.run_pod(&pc).await;
    // In a shared PID namespace, crius-pause is PID 1.
    let long = d
        .create(
            &pod,
            &pc,
            Daemon::container_config("long", &["sleep", "1000"]),
        )
        .await;
    d.start_ctr(&long).await;
    let out =
        d.rt.exec_sync(cri::ExecSyncRequest {
            container_id: long.clone(),
            cmd: vec!["cat".into(), "/proc/1/cmdline".into()],
            timeout: 10,
        })
        .await
        .expect("exec")
        .into_inner();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end_matches('\0'),
        "/pause"
    );

    let id = d
        .create(&pod, &pc, Daemon::container_config("once", &["true"]))
        .await;
    d.start_ctr(&id).await;
    // Wait for the STOPPED event of that container (the exit is observed, not polled).
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(30), events.message())
            .await
            .expect("event in time")
            .expect("stream ok")
            .expect("event");
        if ev.container_id == id
            && ev.container_event_type == cri::ContainerEventType::ContainerStoppedEvent as i32
        {
            let st = ev
                .containers_statuses
                .iter()
                .find(|s| s.id == id)
                .expect("own status in event");
            assert_eq!(st.state, cri::ContainerState::ContainerExited as i32);
            break;
        }
    }
    let st = d.status(&id).await;
    assert_eq!(st.state, cri::ContainerState::ContainerExited as i32);
    assert_eq!(st.exit_code, 0);
    assert_eq!(st.reason, "Completed");
    d.shutdown().await;
}

#[tokio::test]
async fn errors_and_validation() {
    let mut d = Daemon::start().await;
    d.pull_busybox().await;
    let unknown = "0".repeat(64);
    let e =
        d.rt.container_status(cri::ContainerStatusRequest {
            container_id: unknown.clone(),
            verbose: false,
        })
        .await
        .expect_err("unknown");
    assert_eq!(e.code(), Code::NotFound);
    let e =
        d.rt.pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: unknown.clone(),
            verbose: false,
        })
        .await
        .expect_err("unknown pod");
    assert_eq!(e.code(), Code::NotFound);
    let e =
        d.rt.start_container(cri::StartContainerRequest {
            container_id: unknown.clone(),
        })
        .await
        .expect_err("start unknown");
    assert_eq!(e.code(), Code::NotFound);
    // Stopping or removing an unknown container succeeds (CRI idempotence).
    d.rt.stop_container(cri::StopContainerRequest {
        container_id: unknown.clone(),
        timeout: 1,
    })
    .await
    .expect("stop unknown");
    d.rt.remove_container(cri::RemoveContainerRequest {
        container_id: unknown.clone(),
    })
    .await
    .expect("rm unknown");
    let e =
        d.rt.exec_sync(cri::ExecSyncRequest {
            container_id: unknown.clone(),
            cmd: vec!["true".into()],
            timeout: 1,
        })
        .await
        .expect_err("exec unknown");
    assert_eq!(e.code(), Code::NotFound);

    // Missing metadata: InvalidArgument naming the field.
    let mut pc = d.pod_config("bad", false);
    pc.metadata.as_mut().expect("md").uid.clear();
    let e =
        d.rt.run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(pc),
            runtime_handler: String::new(),
        })
        .await
        .expect_err("no uid");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("metadata.uid"), "{}", e.message());

    let pc = d.pod_config("val", false);
    let pod = d.run_pod(&pc).await;
    let mut cfg = Daemon::container_config("x", &["true"]);
    cfg.metadata = None;
    let e =
        d.rt.create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(cfg),
            sandbox_config: Some(pc.clone()),
        })
        .await
        .expect_err("no metadata");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("metadata"), "{}", e.message());

    // Unknown image: NotFound, and the name is released (a retry with a good image works).
    let mut cfg = Daemon::container_config("img", &["true"]);
    cfg.image = Some(cri::ImageSpec {
        image: "docker.io/library/absent:1".into(),
        ..Default::default()
    });
    let e =
        d.rt.create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(cfg),
            sandbox_config: Some(pc.clone()),
        })
        .await
        .expect_err("absent image");
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    d.create(&pod, &pc, Daemon::container_config("img", &["true"]))
        .await;

    // A container in a stopped pod: FailedPrecondition.
    d.rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("stopp");
    let e =
        d.rt.create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(Daemon::container_config("late", &["true"])),
            sandbox_config: Some(pc),
        })
        .await
        .expect_err("stopped pod");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    // Unimplemented calls say so.
    let e =
        d.rt.checkpoint_container(cri::CheckpointContainerRequest::default())
            .await
            .expect_err("checkpoint");
    assert_eq!(e.code(), Code::Unimplemented);
    d.shutdown().await;
}

#[tokio::test]
async fn concurrent_creates_of_one_name() {
    let mut d = Daemon::start().await;
    d.pull_busybox().await;
    let pc = d.pod_config("race", false);
    let pod = d.run_pod(&pc).await;
    let req = cri::CreateContainerRequest {
        pod_sandbox_id: pod.clone(),
        config: Some(Daemon::container_config("same", &["sleep", "100"])),
        sandbox_config: Some(pc),
    };
    let (mut a, mut b) = (d.rt.clone(), d.rt.clone());
    let (ra, rb) = tokio::join!(a.create_container(req.clone()), b.create_container(req));
    let results = [ra, rb];
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let exists = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.code() == Code::AlreadyExists))
        .count();
    assert_eq!((ok, exists), (1, 1), "{results:?}");
    d.shutdown().await;
}

#[tokio::test]
async fn restart_keeps_running_container() {
    let mut d = Daemon::start().await;
    d.pull_busybox().await;
    let pc = d.pod_config("restart", false);
    let pod = d.run_pod(&pc).await;
    let run = d
        .create(
            &pod,
            &pc,
            Daemon::container_config("run", &["sleep", "1000"]),
        )
        .await;
    d.start_ctr(&run).await;
    // `quick` waits for a flag file on a host mount, then exits 7: we make it end while the
    // daemon is down.
    let flag = d.dir.path().join("flag");
    std::fs::create_dir_all(&flag).expect("flag dir");
    let mut qc = Daemon::container_config(
        "quick",
        &[
            "sh",
            "-c",
            "while [ ! -e /flag/go ]; do sleep 0.05; done; exit 7",
        ],
    );
    qc.mounts.push(cri::Mount {
        container_path: "/flag".into(),
        host_path: flag.to_string_lossy().into_owned(),
        ..Default::default()
    });
    let quick = d.create(&pod, &pc, qc).await;
    d.start_ctr(&quick).await;

    d.stop_only();
    std::fs::write(flag.join("go"), b"").expect("flag");
    // The container and its monitor end (the monitor writes the exit record, then exits).
    common::wait_no_process_with(&quick);
    d.start_again().await;
    let st = d.status(&quick).await;
    assert_eq!(st.state, cri::ContainerState::ContainerExited as i32);
    assert_eq!(st.exit_code, 7);
    assert_eq!(st.reason, "Error");

    let st = d.status(&run).await;
    assert_eq!(st.state, cri::ContainerState::ContainerRunning as i32);
    assert_eq!(st.id, run);
    let out =
        d.rt.exec_sync(cri::ExecSyncRequest {
            container_id: run.clone(),
            cmd: vec!["echo".into(), "hi".into()],
            timeout: 10,
        })
        .await
        .expect("exec after restart")
        .into_inner();
    assert_eq!(out.stdout, b"hi\n");
    let ps =
        d.rt.pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: false,
        })
        .await
        .expect("pod")
        .into_inner();
    assert_eq!(
        ps.status.expect("status").state,
        cri::PodSandboxState::SandboxReady as i32
    );
    d.rt.stop_container(cri::StopContainerRequest {
        container_id: run.clone(),
        timeout: 5,
    })
    .await
    .expect("stop after restart");
    assert_eq!(
        d.status(&run).await.state,
        cri::ContainerState::ContainerExited as i32
    );
    d.shutdown().await;
}

/// The cgroup directories named `rel` in every hierarchy.
fn cgroup_dirs_named(rel: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .expect("cgroup root")
        .flatten()
        .map(|e| e.path().join(rel))
        .filter(|p| p.exists())
        .collect()
}

#[tokio::test]
async fn pod_metrics_and_own_cgroup_parent_removed() {
    let mut d = Daemon::start().await;
    d.pull_busybox().await;
    let mut pc = d.pod_config("metrics", false);
    let pod_cg = format!("{}/{}", d.cgroup_parent, crius_testutil::unique_id("podcg"));
    if let Some(l) = pc.linux.as_mut() {
        l.cgroup_parent = format!("/{pod_cg}");
    }
    let pod = d.run_pod(&pc).await;
    let cfg = Daemon::container_config("m", &["sh", "-c", "exec sleep 1000"]);
    let id = d.create(&pod, &pc, cfg).await;
    d.start_ctr(&id).await;
    assert!(
        !cgroup_dirs_named(&pod_cg).is_empty(),
        "the pod's cgroup parent was made"
    );

    // Descriptors and metrics agree on names and label counts; values are real.
    let descs =
        d.rt.list_metric_descriptors(cri::ListMetricDescriptorsRequest {})
            .await
            .expect("descriptors")
            .into_inner()
            .descriptors;
    let keys: std::collections::HashMap<_, _> = descs
        .iter()
        .map(|d| (d.name.clone(), d.label_keys.len()))
        .collect();
    let all =
        d.rt.list_pod_sandbox_metrics(cri::ListPodSandboxMetricsRequest {})
            .await
            .expect("metrics")
            .into_inner()
            .pod_metrics;
    let pm = all
        .iter()
        .find(|m| m.pod_sandbox_id == pod)
        .expect("our pod");
    let cm = pm
        .container_metrics
        .iter()
        .find(|c| c.container_id == id)
        .expect("our container");
    for m in pm.metrics.iter().chain(&cm.metrics) {
        assert_eq!(Some(&m.label_values.len()), keys.get(&m.name), "{}", m.name);
    }
    let value = |n: &str| {
        cm.metrics
            .iter()
            .find(|m| m.name == n)
            .and_then(|m| m.value)
            .map(|v| v.value)
    };
    assert!(value("container_memory_usage_bytes").expect("memory") > 0);
    assert!(value("container_processes").expect("processes") >= 1);
    assert!(value("container_start_time_seconds").expect("start") > 0);
    assert!(
        pm.metrics
            .iter()
            .any(|m| m.name == "container_network_receive_bytes_total"
                && m.label_values.last().map(String::as_str) == Some("eth0")),
        "pod network metrics: {:?}",
        pm.metrics
    );

    d.rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("stop pod");
    d.rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("remove pod");
    assert_eq!(cgroup_dirs_named(&pod_cg), Vec::<std::path::PathBuf>::new());
    d.shutdown().await;
}
