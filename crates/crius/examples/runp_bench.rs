//! runp_bench: times RunPodSandbox, StopPodSandbox and RemovePodSandbox over one gRPC
//! connection, without crictl's process start and connection per call. Works against any CRI
//! v1 runtime (crius, containerd).
//!
//! ```text
//! runp_bench SOCKET N [--host-network] [--pid-container]
//! ```
//! With no flag the pod config has no namespace options (as `critest -benchmark` and
//! bench/run.sh send it): CRI's default, a pod-shared PID namespace. `--pid-container` asks
//! for one PID namespace per container (what the kubelet sends for most pods).
//! Prints `run stop remove` milliseconds per iteration, then the median and p90 of each. One
//! warm-up iteration is made and not printed. A failed call ends the run with an error.

use std::time::Instant;

use anyhow::{bail, Context};

#[path = "support/uds.rs"]
mod uds;
use k8s_cri::v1 as cri;
use uds::connect;

fn pod_config(i: usize, host_network: bool, pid_container: bool) -> cri::PodSandboxConfig {
    let name = format!("runp-bench-{}-{i}", std::process::id());
    let network = if host_network {
        cri::NamespaceMode::Node
    } else {
        cri::NamespaceMode::Pod
    };
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.clone(),
            namespace: "bench".into(),
            uid: name.clone(),
            attempt: 0,
        }),
        hostname: name,
        log_directory: String::new(),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: (host_network || pid_container).then(|| cri::NamespaceOption {
                    network: network as i32,
                    pid: if pid_container {
                        cri::NamespaceMode::Container as i32
                    } else {
                        cri::NamespaceMode::Pod as i32
                    },
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn stats(label: &str, v: &mut [f64]) {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return;
    }
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    println!(
        "# {label}: median {:.1} ms, p90 {:.1} ms, min {:.1} ms (n={})",
        p(0.5),
        p(0.9),
        v[0],
        v.len()
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (sock, n) = match args.as_slice() {
        [sock, n, ..] => (sock.as_str(), n.parse::<usize>().context("N")?),
        _ => bail!("usage: runp_bench SOCKET N [--host-network] [--pid-container]"),
    };
    let host_network = args.iter().any(|a| a == "--host-network");
    let pid_container = args.iter().any(|a| a == "--pid-container");
    let mut rt = connect(sock).await?;
    let (mut run, mut stop, mut remove) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..=n {
        let t = Instant::now();
        let id = rt
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(pod_config(i, host_network, pid_container)),
                runtime_handler: String::new(),
            })
            .await
            .context("RunPodSandbox")?
            .into_inner()
            .pod_sandbox_id;
        let t_run = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await
        .context("StopPodSandbox")?;
        let t_stop = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id })
            .await
            .context("RemovePodSandbox")?;
        let t_remove = t.elapsed().as_secs_f64() * 1e3;
        if i == 0 {
            continue; // warm-up
        }
        println!("{t_run:.2} {t_stop:.2} {t_remove:.2}");
        run.push(t_run);
        stop.push(t_stop);
        remove.push(t_remove);
    }
    stats("RunPodSandbox", &mut run);
    stats("StopPodSandbox", &mut stop);
    stats("RemovePodSandbox", &mut remove);
    Ok(())
}
