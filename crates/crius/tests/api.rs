//! The CRI calls and fields of cri-api v0.37 that k8s-cri 0.11 lacked: the Stream* list calls,
//! UpdatePodSandboxResources, ContainerConfig.stop_signal and Mount.mount_options, against the
//! real daemon (runc, the local registry, tonic over the unix socket).

mod common;

use common::Daemon;
use k8s_cri::v1 as cri;
use tokio_stream::StreamExt;
use tonic::Code;

/// Collects every message of a server stream.
async fn collect<T>(mut s: tonic::Streaming<T>) -> Vec<T> {
    let mut out = Vec::new();
    while let Some(m) = s.next().await {
        out.push(m.expect("stream message"));
    }
    out
}

#[tokio::test]
async fn stream_lists_match_list_calls() {
    let mut d = Daemon::start().await;
    d.pull_busybox().await;
    let pc = d.pod_config("streams", false);
    let pod = d.run_pod(&pc).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let cfg = Daemon::container_config(&format!("c{i}"), &["sleep", "1000"]);
        ids.push(d.create(&pod, &pc, cfg).await);
    }
    d.start_ctr(&ids[0]).await;

    let listed: Vec<String> =
        d.rt.list_containers(cri::ListContainersRequest::default())
            .await
            .expect("list")
            .into_inner()
            .containers
            .into_iter()
            .map(|c| c.id)
            .collect();
    let msgs = collect(
        d.rt.stream_containers(cri::StreamContainersRequest::default())
            .await
            .expect("stream containers")
            .into_inner(),
    )
    .await;
    assert!(
        msgs.iter().all(|m| !m.containers.is_empty()),
        "no empty chunk"
    );
    let mut streamed: Vec<String> = msgs
        .into_iter()
        .flat_map(|m| m.containers)
        .map(|c| c.id)
        .collect();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    streamed.sort();
    assert_eq!(streamed, listed_sorted, "each container exactly once");
    assert_eq!(streamed.len(), 3);

    // The filter applies as in ListContainers.
    let running = collect(
        d.rt.stream_containers(cri::StreamContainersRequest {
            filter: Some(cri::ContainerFilter {
                state: Some(cri::ContainerStateValue {
                    state: cri::ContainerState::ContainerRunning as i32,
                }),
                ..Default::default()
            }),
        })
        .await
        .expect("stream running")
        .into_inner(),
    )
    .await;
    let running: Vec<String> = running
        .into_iter()
        .flat_map(|m| m.containers)
        .map(|c| c.id)
        .collect();
    assert_eq!(running, vec![ids[0].clone()]);

    let pods = collect(
        d.rt.stream_pod_sandboxes(cri::StreamPodSandboxesRequest::default())
            .await
            .expect("stream pods")
            .into_inner(),
    )
    .await;
    let pods: Vec<String> = pods
        .into_iter()
        .flat_map(|m| m.pod_sandboxes)
        .map(|p| p.id)
        .collect();
    assert_eq!(pods, vec![pod.clone()]);

    let stats = collect(
        d.rt.stream_container_stats(cri::StreamContainerStatsRequest::default())
            .await
            .expect("stream stats")
            .into_inner(),
    )
    .await;
    assert_eq!(
        stats.iter().map(|m| m.container_stats.len()).sum::<usize>(),
        3
    );

    let pod_stats = collect(
        d.rt.stream_pod_sandbox_stats(cri::StreamPodSandboxStatsRequest::default())
            .await
            .expect("stream pod stats")
            .into_inner(),
    )
    .await;
    assert_eq!(
        pod_stats
            .iter()
            .flat_map(|m| &m.pod_sandbox_stats)
            .filter_map(|s| s.attributes.as_ref())
            .map(|a| a.id.clone())
            .collect::<Vec<_>>(),
        vec![pod.clone()]
    );

    let images = collect(
        d.img
            .stream_images(cri::StreamImagesRequest::default())
            .await
            .expect("stream images")
            .into_inner(),
    )
    .await;
    assert!(images
        .iter()
        .flat_map(|m| &m.images)
        .any(|i| i.repo_tags.iter().any(|t| t.contains("busybox"))));

    d.shutdown().await;
}

#[tokio::test]
async fn pod_resources_stop_signal_and_mount_options() {
    let mut d = Daemon::start().await;
    d.pull_busybox().await;

    let err =
        d.rt.update_pod_sandbox_resources(cri::UpdatePodSandboxResourcesRequest {
            pod_sandbox_id: "no-such-pod".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown pod");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    let pc = d.pod_config("podres", false);
    let pod = d.run_pod(&pc).await;
    d.rt.update_pod_sandbox_resources(cri::UpdatePodSandboxResourcesRequest {
        pod_sandbox_id: pod.clone(),
        resources: Some(cri::LinuxContainerResources {
            memory_limit_in_bytes: 256 << 20,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .expect("update pod resources");
    let err =
        d.rt.update_pod_sandbox_resources(cri::UpdatePodSandboxResourcesRequest {
            pod_sandbox_id: pod.clone(),
            resources: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: -1,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("negative memory limit");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    // The CRI stop signal overrides the image's: SIGUSR1 is trapped and the shell exits 0, where
    // the default SIGTERM would end it with 143.
    let host_dir = d.dir.path().join("noexec");
    std::fs::create_dir(&host_dir).expect("mkdir");
    let mut cfg = Daemon::container_config(
        "sig",
        &[
            "sh",
            "-c",
            "trap 'exit 0' USR1; echo ready; while true; do sleep 0.1; done",
        ],
    );
    cfg.stop_signal = cri::Signal::Sigusr1 as i32;
    cfg.mounts = vec![cri::Mount {
        container_path: "/data".into(),
        host_path: host_dir.display().to_string(),
        mount_options: vec!["noexec".into(), "nodev".into()],
        ..Default::default()
    }];
    let id = d.create(&pod, &pc, cfg).await;
    assert_eq!(d.status(&id).await.stop_signal, cri::Signal::Sigusr1 as i32);
    d.start_ctr(&id).await;
    let out =
        d.rt.exec_sync(cri::ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec!["grep".into(), " /data ".into(), "/proc/mounts".into()],
            timeout: 10,
        })
        .await
        .expect("exec")
        .into_inner();
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.exit_code, 0, "{line}");
    assert!(line.contains("noexec") && line.contains("nodev"), "{line}");
    d.rt.stop_container(cri::StopContainerRequest {
        container_id: id.clone(),
        timeout: 30,
    })
    .await
    .expect("stop");
    let st = d.status(&id).await;
    assert_eq!(st.state, cri::ContainerState::ContainerExited as i32);
    assert_eq!(st.exit_code, 0, "the trap ran: SIGUSR1 was sent");

    let mut bad = Daemon::container_config("badopt", &["true"]);
    bad.mounts = vec![cri::Mount {
        container_path: "/data".into(),
        host_path: host_dir.display().to_string(),
        mount_options: vec!["suid".into()],
        ..Default::default()
    }];
    let err =
        d.rt.create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(bad),
            sandbox_config: Some(pc.clone()),
        })
        .await
        .expect_err("suid is not a supported mount option");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    d.shutdown().await;
}
