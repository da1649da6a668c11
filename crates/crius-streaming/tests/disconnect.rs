//! A client that disconnects mid-stream leaves no process and no file descriptor behind.
//! Its own test binary: it counts this process's fds, which parallel tests would disturb.

mod common;

use std::process::Stdio;

use common::{goclient, run_goclient, Event, HostBackend};
use crius_streaming::{ExecRequest, ServerConfig, StreamingServer};
use tokio::io::{AsyncBufReadExt, BufReader};

const DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_kills_process_and_leaks_no_fd() {
    let Some(bin) = goclient() else { return };
    let (backend, mut events) = HostBackend::new();
    let server = StreamingServer::start(ServerConfig::default(), backend)
        .await
        .unwrap();
    let req = |cmd: &str| ExecRequest {
        container_id: "c1".into(),
        cmd: vec!["sh".into(), "-c".into(), cmd.into()],
        tty: false,
        stdin: true,
        stdout: true,
        stderr: true,
    };
    // Warm up: a full session per transport, so that fds the runtime opens lazily (signal
    // handling for child processes, ...) exist before counting.
    for transport in ["spdy", "websocket"] {
        let url = server.get_exec(req("true")).unwrap().to_string();
        let args = ["exec", "-url", &url, "-transport", transport, "-stdin"];
        assert_eq!(run_goclient(&bin, &args, b"").await.code, 0);
    }
    server.wait_idle().await;
    while events.try_recv().is_ok() {}
    let before = fd_count();

    for transport in ["spdy", "websocket"] {
        let url = server
            .get_exec(req("echo started; exec sleep 1000"))
            .unwrap()
            .to_string();
        let mut client = tokio::process::Command::new(&bin)
            .args(["exec", "-url", &url, "-transport", transport, "-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("started"));
        let pid = match events.recv().await.unwrap() {
            Event::Started(pid) => pid,
            other => panic!("{transport}: unexpected {other:?}"),
        };
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

        // The client dies mid-stream (its stdin is still open, the command still running).
        client.kill().await.unwrap();
        drop(lines);
        drop(client);

        // Deadlines only turn a hang into a failure.
        let reaped = tokio::time::timeout(DEADLINE, events.recv()).await;
        assert_eq!(reaped, Ok(Some(Event::Reaped(pid))), "{transport}");
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "{transport}: exec'd process {pid} still exists"
        );
        tokio::time::timeout(DEADLINE, server.wait_idle())
            .await
            .expect("session did not end after the client went away");
        assert_eq!(server.active_sessions(), 0);
    }
    assert_eq!(fd_count(), before, "file descriptors leaked");
}
