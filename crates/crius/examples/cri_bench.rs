//! cri_bench: times single CRI calls over one gRPC connection, without crictl's process start
//! and connection per call. Works against any CRI v1 runtime (crius, containerd).
//!
//! ```text
//! cri_bench SOCKET list-containers N
//! cri_bench SOCKET list-container-stats N
//! cri_bench SOCKET list-pod-sandbox-stats N
//! cri_bench SOCKET container-status N CONTAINER_ID
//! cri_bench SOCKET exec-sync N CONTAINER_ID [CMD...]   (default CMD: true)
//! ```
//! Prints one latency per line in milliseconds (bench/run.sh takes the percentiles). A failed
//! call ends the run with an error; one warm-up call is made and not printed.

use std::time::Instant;

use anyhow::{bail, Context};

#[path = "support/uds.rs"]
mod uds;
use k8s_cri::v1 as cri;
use uds::connect;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (sock, call, n) = match args.as_slice() {
        [sock, call, n, ..] => (
            sock.as_str(),
            call.as_str(),
            n.parse::<usize>().context("N")?,
        ),
        _ => bail!(
            "usage: cri_bench SOCKET list-containers|list-container-stats|list-pod-sandbox-stats|container-status|exec-sync N [ID [CMD...]]"
        ),
    };
    let id = args.get(3).cloned().unwrap_or_default();
    let cmd: Vec<String> = match args.get(4..) {
        Some(c) if !c.is_empty() => c.to_vec(),
        _ => vec!["true".into()],
    };
    if !call.starts_with("list-") && id.is_empty() {
        bail!("{call} needs a container ID");
    }
    let mut rt = connect(sock).await?;
    for i in 0..=n {
        let t = Instant::now();
        match call {
            "list-containers" => {
                rt.list_containers(cri::ListContainersRequest::default())
                    .await?;
            }
            "list-container-stats" => {
                rt.list_container_stats(cri::ListContainerStatsRequest::default())
                    .await?;
            }
            "list-pod-sandbox-stats" => {
                rt.list_pod_sandbox_stats(cri::ListPodSandboxStatsRequest::default())
                    .await?;
            }
            "container-status" => {
                rt.container_status(cri::ContainerStatusRequest {
                    container_id: id.clone(),
                    verbose: false,
                })
                .await?;
            }
            "exec-sync" => {
                let r = rt
                    .exec_sync(cri::ExecSyncRequest {
                        container_id: id.clone(),
                        cmd: cmd.clone(),
                        timeout: 30,
                    })
                    .await?
                    .into_inner();
                if r.exit_code != 0 {
                    bail!("exec {cmd:?} exited {}", r.exit_code);
                }
            }
            other => bail!("unknown call {other}"),
        }
        if i > 0 {
            println!("{:.3}", t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(())
}
