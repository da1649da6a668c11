//! RunPodSandbox undoes everything when CNI ADD fails while the infra container of a
//! pod-shared PID namespace is being started at the same time (run as root: runc, CNI).

mod common;

use common::{entries, mounts_under, processes_under, Daemon};
use k8s_cri::v1 as cri;

/// Addresses host-local holds in `dir` (its files are named by IP; `lock` and
/// `last_reserved_ip.*` are its own).
fn ipam_allocations(dir: &std::path::Path) -> Vec<String> {
    walk(dir)
        .into_iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
        .collect()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn failed_cni_add_with_infra_container_leaves_nothing() {
    let mut d = Daemon::start().await;
    let root = d.dir.path().to_path_buf();
    // A chain whose second plugin fails ADD (no such sysctl; its DEL succeeds) after the
    // bridge plugin has made a veth and host-local has allocated an address. Lexically first:
    // this one is used.
    std::fs::write(
        root.join("cni/00-failing.conflist"),
        format!(
            r#"{{"cniVersion":"1.0.0","name":"failing","plugins":[{{"type":"bridge","bridge":"{bridge}","isGateway":true,"ipMasq":false,"ipam":{{"type":"host-local","dataDir":"{ipam}","ranges":[[{{"subnet":"{subnet}"}}]]}}}},{{"type":"tuning","sysctl":{{"net.ipv4.conf.eth0.crius_no_such_sysctl":"1"}}}}]}}"#,
            bridge = d.bridge,
            ipam = root.join("ipam").display(),
            subnet = d.subnet,
        ),
    )
    .expect("write failing conflist");

    let pc = d.pod_config("rollback", true);
    let err =
        d.rt.run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(pc.clone()),
            runtime_handler: String::new(),
        })
        .await
        .expect_err("CNI ADD must fail");
    assert!(
        err.message().contains("tuning"),
        "error names the failing plugin: {}",
        err.message()
    );

    // Nothing of the pod is left: no pod, no infra container (runc state, monitor, pause),
    // no namespace pins or /dev/shm, no pod files, no address, no veth, no CNI cache entry.
    let pods =
        d.rt.list_pod_sandbox(cri::ListPodSandboxRequest::default())
            .await
            .expect("list pods")
            .into_inner()
            .items;
    assert!(pods.is_empty(), "pods left: {pods:?}");
    assert_eq!(entries(&root.join("runc")), Vec::<String>::new());
    let daemon = d.child.as_ref().map(|c| c.id());
    let procs: Vec<u32> = processes_under(&root.join("run"))
        .into_iter()
        .filter(|p| Some(*p) != daemon)
        .collect();
    assert_eq!(procs, Vec::<u32>::new(), "monitor or pause left");
    // The pin directories are mount points of their own by design; pins would be below.
    let pin_dirs: Vec<String> = ["netns", "ipcns", "utsns", "userns"]
        .iter()
        .map(|k| root.join("run/ns").join(k).to_string_lossy().into_owned())
        .collect();
    let mounts: Vec<String> = mounts_under(&root.join("run"))
        .into_iter()
        .filter(|m| !pin_dirs.contains(m))
        .collect();
    assert_eq!(mounts, Vec::<String>::new(), "pins or shm left");
    assert_eq!(entries(&root.join("run/pods")), Vec::<String>::new());
    assert_eq!(ipam_allocations(&root.join("ipam")), Vec::<String>::new());
    let ports = std::path::Path::new("/sys/class/net")
        .join(&d.bridge)
        .join("brif");
    assert_eq!(entries(&ports), Vec::<String>::new());
    assert_eq!(
        entries(&root.join("root/cni-cache")),
        Vec::<String>::new(),
        "CNI cache entries left"
    );

    // The name is free again, and with a working network the same pod runs.
    std::fs::remove_file(root.join("cni/00-failing.conflist")).expect("remove conflist");
    let pod = d.run_pod(&pc).await;
    d.stop_and_remove_pod(&pod).await;
    assert_eq!(entries(&root.join("runc")), Vec::<String>::new());
    d.shutdown().await;
}
