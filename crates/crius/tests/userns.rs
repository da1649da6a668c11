//! Pods with a user namespace (CRI `userns_options` mode POD) through the CRI, as root: the
//! containers run in the pod's user namespace, see the image's root-owned files as root's
//! (idmapped layers), can use the pod's network/UTS namespaces (owned by the user namespace),
//! and removing the pod leaves no mount or process. Invalid requests are InvalidArgument and
//! leave nothing behind. Real daemon, runc, busybox from the local registry.

mod common;

use common::Daemon;
use k8s_cri::v1 as cri;
use tonic::Code;

fn mapping(container_id: u32, host_id: u32, length: u32) -> cri::IdMapping {
    cri::IdMapping {
        host_id,
        container_id,
        length,
    }
}

fn userns(mode: cri::NamespaceMode, uids: Vec<cri::IdMapping>) -> cri::UserNamespace {
    cri::UserNamespace {
        mode: mode as i32,
        gids: uids.clone(),
        uids,
    }
}

/// `d.pod_config(name, shared_pid)` with `userns_options`.
fn pod_with_userns(
    d: &Daemon,
    name: &str,
    shared_pid: bool,
    u: cri::UserNamespace,
) -> cri::PodSandboxConfig {
    let mut pc = d.pod_config(name, shared_pid);
    ns_options(&mut pc).userns_options = Some(u);
    pc
}

fn ns_options(pc: &mut cri::PodSandboxConfig) -> &mut cri::NamespaceOption {
    pc.linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|s| s.namespace_options.as_mut())
        .expect("pod_config sets namespace options")
}

/// A busybox container running `script`, with the pod's namespace options (as the kubelet
/// and critest pass them).
fn container(pc: &cri::PodSandboxConfig, name: &str, script: &str) -> cri::ContainerConfig {
    let mut cfg = Daemon::container_config(name, &["sh", "-c", script]);
    cfg.linux = Some(cri::LinuxContainerConfig {
        security_context: Some(cri::LinuxContainerSecurityContext {
            namespace_options: pc
                .linux
                .as_ref()
                .and_then(|l| l.security_context.as_ref())
                .and_then(|s| s.namespace_options.clone()),
            ..Default::default()
        }),
        ..Default::default()
    });
    cfg
}

/// Runs `script` in a new container of `pod` to its end; returns its stdout lines.
async fn run_script(
    d: &mut Daemon,
    pod: &str,
    pc: &cri::PodSandboxConfig,
    name: &str,
    script: &str,
) -> Vec<String> {
    let id = d.create(pod, pc, container(pc, name, script)).await;
    d.start_ctr(&id).await;
    let st = d.wait_exited(&id).await;
    let log = std::fs::read_to_string(&st.log_path).expect("container log");
    assert_eq!(st.exit_code, 0, "{name}: {log}");
    log.lines()
        .filter_map(|l| l.split_once(" stdout F ").map(|(_, s)| s.to_string()))
        .collect()
}

const SCRIPT: &str = "cat /proc/self/uid_map /proc/self/gid_map; \
    stat -c %u:%g /bin/busybox; stat -c %u:%g /; \
    touch /created && stat -c %u /created; \
    hostname; grep -c testhost /etc/hosts; \
    ls /sys/class/net | grep -c lo; id -u; \
    touch /dev/shm/x && echo shm-ok";

#[tokio::test]
async fn pod_mode_containers_run_in_the_pod_user_namespace_with_idmapped_rootfs() {
    let mut d = Daemon::start().await;
    d.pull_busybox().await;
    let st =
        d.rt.status(cri::StatusRequest { verbose: true })
            .await
            .expect("status")
            .into_inner();
    let default = st
        .runtime_handlers
        .iter()
        .find(|h| h.name.is_empty())
        .expect("the default handler is listed as \"\"");
    assert!(
        default.features.as_ref().is_some_and(|f| f.user_namespaces),
        "{default:?}"
    );

    for shared_pid in [false, true] {
        let pc = pod_with_userns(
            &d,
            "userns",
            shared_pid,
            userns(cri::NamespaceMode::Pod, vec![mapping(0, 1000, 100000)]),
        );
        let pod = d.run_pod(&pc).await;
        let name = format!("u-{shared_pid}");
        let out = run_script(&mut d, &pod, &pc, &name, SCRIPT).await;
        let words: Vec<&str> = out.iter().flat_map(|l| l.split_whitespace()).collect();
        assert_eq!(
            words,
            [
                "0", "1000", "100000", // uid_map
                "0", "1000", "100000", // gid_map
                "0:0",    // the image's root-owned busybox, through the idmapped layers
                "0:0",    // the rootfs top (the upper dir, owned by the mapped root)
                "0",      // a file the container creates
                "testhost", "1",      // its UTS namespace and the pod's /etc/hosts
                "1",      // sysfs of the pod's netns is mountable: owned by the user namespace
                "0",      // root inside
                "shm-ok", // the pod's /dev/shm is writable
            ],
            "shared_pid={shared_pid}: {out:?}"
        );
        // A second container shares the user namespace; exec runs in it too.
        let id = d
            .create(
                &pod,
                &pc,
                container(&pc, &format!("s-{shared_pid}"), "exec sleep 300"),
            )
            .await;
        d.start_ctr(&id).await;
        let out =
            d.rt.exec_sync(cri::ExecSyncRequest {
                container_id: id.clone(),
                cmd: vec!["cat".into(), "/proc/self/uid_map".into()],
                timeout: 10,
            })
            .await
            .expect("exec_sync")
            .into_inner();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.split_whitespace().collect::<Vec<_>>(),
            ["0", "1000", "100000"],
            "{text}"
        );
        if shared_pid {
            // After a daemon restart the pod (its pinned user namespace, the idmapped rootfs)
            // is still there and still removed completely.
            d.restart().await;
            let out =
                d.rt.exec_sync(cri::ExecSyncRequest {
                    container_id: id.clone(),
                    cmd: vec![
                        "stat".into(),
                        "-c".into(),
                        "%u".into(),
                        "/bin/busybox".into(),
                    ],
                    timeout: 10,
                })
                .await
                .expect("exec_sync after restart")
                .into_inner();
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
        }
        d.stop_and_remove_pod(&pod).await;
    }

    // Mode NODE: the host's user namespace.
    let pc = pod_with_userns(&d, "node", false, userns(cri::NamespaceMode::Node, vec![]));
    let pod = d.run_pod(&pc).await;
    let out = run_script(&mut d, &pod, &pc, "n", "cat /proc/self/uid_map").await;
    let host = std::fs::read_to_string("/proc/self/uid_map").expect("own uid_map");
    assert_eq!(
        out.iter()
            .flat_map(|l| l.split_whitespace())
            .collect::<Vec<_>>(),
        host.split_whitespace().collect::<Vec<_>>()
    );
    // shutdown asserts that no mount (idmapped layers, user namespace pins) or process is left.
    d.shutdown().await;
}

#[tokio::test]
async fn invalid_user_namespace_requests_are_refused_and_leave_nothing() {
    let mut d = Daemon::start().await;
    let good = vec![mapping(0, 1000, 100000)];
    let mut host_net = pod_with_userns(&d, "bad", false, userns(cri::NamespaceMode::Pod, good));
    ns_options(&mut host_net).network = cri::NamespaceMode::Node as i32;
    let cases = [
        (
            pod_with_userns(
                &d,
                "bad",
                false,
                userns(cri::NamespaceMode::Container, vec![]),
            ),
            "CONTAINER",
        ),
        (
            pod_with_userns(&d, "bad", false, userns(cri::NamespaceMode::Target, vec![])),
            "TARGET",
        ),
        (
            pod_with_userns(
                &d,
                "bad",
                false,
                userns(
                    cri::NamespaceMode::Pod,
                    vec![mapping(0, 1000, 100000), mapping(0, 2000, 100000)],
                ),
            ),
            "exactly one",
        ),
        (
            pod_with_userns(
                &d,
                "bad",
                false,
                userns(cri::NamespaceMode::Pod, vec![mapping(1, 1000, 100000)]),
            ),
            "container ID 0",
        ),
        (host_net, "host's namespace"),
    ];
    for (pc, want) in cases {
        let err =
            d.rt.run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(pc),
                runtime_handler: String::new(),
            })
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(want), "{want:?} not in {err:?}");
    }
    assert!(d.known_ids().await.is_empty());
    let pins = d.dir.path().join("run/ns/userns");
    let left = std::fs::read_dir(&pins).map(|rd| rd.count()).unwrap_or(0);
    assert_eq!(left, 0, "user namespace pins left in {}", pins.display());
    d.shutdown().await;
}
