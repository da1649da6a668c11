//! Exec, attach and port-forward driven by client-go (SPDY and WebSocket) against the
//! server with a backend that runs real host processes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{goclient, http_server, http_status, run_goclient, Event, HostBackend};
use crius_streaming::{
    AttachRequest, Clock, ExecRequest, PortForwardRequest, ServerConfig, StreamingServer, TermSize,
};
use tokio::sync::mpsc;

const TRANSPORTS: [&str; 2] = ["spdy", "websocket"];

async fn server() -> (StreamingServer<HostBackend>, mpsc::UnboundedReceiver<Event>) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (backend, events) = HostBackend::new();
    let server = StreamingServer::start(ServerConfig::default(), backend)
        .await
        .unwrap();
    (server, events)
}

fn exec(cmd: &[&str], stdin: bool, tty: bool) -> ExecRequest {
    ExecRequest {
        container_id: "c1".into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty,
        stdin,
        stdout: true,
        stderr: !tty,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_returns_exit_codes_and_output() {
    let Some(bin) = goclient() else { return };
    let (server, _events) = server().await;
    for transport in TRANSPORTS {
        let url = server
            .get_exec(exec(
                &["sh", "-c", "echo out; echo err >&2; exit 3"],
                false,
                false,
            ))
            .unwrap()
            .to_string();
        let run = run_goclient(&bin, &["exec", "-url", &url, "-transport", transport], b"").await;
        assert_eq!(run.code, 3, "{transport}: {run:?}");
        assert_eq!(run.stdout, "out\n", "{transport}");
        assert_eq!(run.stderr, "err\n", "{transport}");

        let url = server
            .get_exec(exec(&["true"], false, false))
            .unwrap()
            .to_string();
        let run = run_goclient(&bin, &["exec", "-url", &url, "-transport", transport], b"").await;
        assert_eq!(run.code, 0, "{transport}: {run:?}");
        assert_eq!(run.stdout, "");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_pipes_stdin_through() {
    let Some(bin) = goclient() else { return };
    let (server, _events) = server().await;
    // More than one SPDY window (64 KiB) and several WebSocket messages each way.
    let input: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    for transport in TRANSPORTS {
        let url = server
            .get_exec(exec(&["cat"], true, false))
            .unwrap()
            .to_string();
        let args = ["exec", "-url", &url, "-transport", transport, "-stdin"];
        let run = run_goclient(&bin, &args, input.as_bytes()).await;
        assert_eq!(run.code, 0, "{transport}: {}", run.stderr);
        assert!(
            run.stdout == input,
            "{transport}: stdout differs ({} bytes)",
            run.stdout.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_large_output() {
    let Some(bin) = goclient() else { return };
    let (server, _events) = server().await;
    for transport in TRANSPORTS {
        let url = server
            .get_exec(exec(
                &["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' a"],
                false,
                false,
            ))
            .unwrap()
            .to_string();
        let run = run_goclient(&bin, &["exec", "-url", &url, "-transport", transport], b"").await;
        assert_eq!(run.code, 0, "{transport}: {}", run.stderr);
        assert_eq!(run.stdout.len(), 300_000, "{transport}");
        assert!(run.stdout.bytes().all(|b| b == b'a'), "{transport}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_with_tty_gets_terminal_and_size() {
    let Some(bin) = goclient() else { return };
    let (server, mut events) = server().await;
    for transport in TRANSPORTS {
        let script = "test -t 0 && test -t 1 && echo on-a-tty; stty size; exit 5";
        let url = server
            .get_exec(exec(&["sh", "-c", script], false, true))
            .unwrap()
            .to_string();
        let args = [
            "exec",
            "-url",
            &url,
            "-transport",
            transport,
            "-tty",
            "-width",
            "100",
            "-height",
            "40",
        ];
        let run = run_goclient(&bin, &args, b"").await;
        assert_eq!(run.code, 5, "{transport}: {run:?}");
        // The terminal turns \n into \r\n.
        assert_eq!(run.stdout, "on-a-tty\r\n40 100\r\n", "{transport}");
        let mut resized = false;
        while let Ok(ev) = events.try_recv() {
            resized |= ev
                == Event::Resize(TermSize {
                    width: 100,
                    height: 40,
                });
        }
        assert!(
            resized,
            "{transport}: resize message did not reach the backend"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_with_tty_and_stdin() {
    let Some(bin) = goclient() else { return };
    let (server, _events) = server().await;
    for transport in TRANSPORTS {
        let url = server
            .get_exec(exec(&["sh", "-c", "read line; echo got:$line"], true, true))
            .unwrap()
            .to_string();
        let args = [
            "exec",
            "-url",
            &url,
            "-transport",
            transport,
            "-tty",
            "-stdin",
            "-width",
            "80",
            "-height",
            "24",
        ];
        let run = run_goclient(&bin, &args, b"hello\n").await;
        assert_eq!(run.code, 0, "{transport}: {run:?}");
        // The terminal echoes the input line, then the command's output follows.
        assert!(
            run.stdout.ends_with("got:hello\r\n"),
            "{transport}: {:?}",
            run.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_streams_stdin_to_stdout() {
    let Some(bin) = goclient() else { return };
    let (server, _events) = server().await;
    for transport in TRANSPORTS {
        let req = AttachRequest {
            container_id: "c1".into(),
            tty: false,
            stdin: true,
            stdout: true,
            stderr: true,
        };
        let url = server.get_attach(req).unwrap().to_string();
        let args = ["exec", "-url", &url, "-transport", transport, "-stdin"];
        let run = run_goclient(&bin, &args, b"attached\n").await;
        assert_eq!(run.code, 0, "{transport}: {run:?}");
        assert_eq!(run.stdout, "attached\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_carries_http() {
    let Some(bin) = goclient() else { return };
    let (server, mut events) = server().await;
    let port = http_server("hello-from-pod").await;
    for transport in TRANSPORTS {
        let req = PortForwardRequest {
            pod_sandbox_id: "pod-1".into(),
            ports: vec![port],
        };
        let url = server.get_port_forward(req).unwrap().to_string();
        let port_arg = port.to_string();
        let args = [
            "portforward",
            "-url",
            &url,
            "-transport",
            transport,
            "-port",
            &port_arg,
            "-requests",
            "3",
        ];
        let run = run_goclient(&bin, &args, b"").await;
        assert_eq!(run.code, 0, "{transport}: {run:?}");
        assert_eq!(run.stdout, "hello-from-pod\n".repeat(3), "{transport}");
        let mut forwards = 0;
        while let Ok(ev) = events.try_recv() {
            if ev == Event::Forward("pod-1".into(), port) {
                forwards += 1;
            }
        }
        assert_eq!(forwards, 3, "{transport}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_error_reaches_client() {
    let Some(bin) = goclient() else { return };
    let (server, _events) = server().await;
    // A port nothing listens on: bind, note the port, close.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    let req = PortForwardRequest {
        pod_sandbox_id: "pod-2".into(),
        ports: vec![],
    };
    let url = server.get_port_forward(req).unwrap().to_string();
    let args = ["portforward", "-url", &url, "-port", &port];
    let run = run_goclient(&bin, &args, b"").await;
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("error forwarding port") && run.stderr.contains("pod-2"),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn used_unknown_and_wrong_kind_tokens_get_404() {
    let Some(bin) = goclient() else { return };
    let (server, _events) = server().await;
    let url = server.get_exec(exec(&["true"], false, false)).unwrap();
    let url_s = url.to_string();
    let first = run_goclient(&bin, &["exec", "-url", &url_s], b"").await;
    assert_eq!(first.code, 0, "{first:?}");
    let second = run_goclient(&bin, &["exec", "-url", &url_s], b"").await;
    assert_eq!(second.code, 100, "{second:?}");
    assert!(second.stderr.contains("not found"), "{second:?}");
    let addr = server.local_addr();
    assert_eq!(http_status(addr, url.path(), "").await, 404);
    assert_eq!(http_status(addr, "/exec/0123abcd", "").await, 404);
    // A live token under another kind's path is not found either, and stays usable.
    let url = server
        .get_attach(AttachRequest {
            container_id: "c1".into(),
            stdout: true,
            ..AttachRequest::default()
        })
        .unwrap();
    let token = url.path().rsplit('/').next().unwrap();
    assert_eq!(http_status(addr, &format!("/exec/{token}"), "").await, 404);
    // Not an upgrade request: refused without using up the token.
    assert_eq!(http_status(addr, url.path(), "").await, 400);
    let spdy = "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v9.channel.k8s.io\r\n";
    assert_eq!(http_status(addr, url.path(), spdy).await, 403);
    let spdy = "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n";
    assert_eq!(http_status(addr, url.path(), spdy).await, 101);
    assert_eq!(http_status(addr, url.path(), spdy).await, 404);
}

/// A clock the test moves by hand.
struct ManualClock {
    base: Instant,
    offset: Mutex<Duration>,
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + *self.offset.lock().unwrap()
    }
}

#[tokio::test]
async fn invalid_requests_get_no_url() {
    let (server, _events) = server().await;
    let none = ExecRequest {
        container_id: "c1".into(),
        cmd: vec!["true".into()],
        ..ExecRequest::default()
    };
    assert!(matches!(
        server.get_exec(none),
        Err(crius_streaming::Error::InvalidRequest { kind: "exec", .. })
    ));
    let tty_stderr = AttachRequest {
        container_id: "c1".into(),
        tty: true,
        stderr: true,
        ..AttachRequest::default()
    };
    assert!(matches!(
        server.get_attach(tty_stderr),
        Err(crius_streaming::Error::InvalidRequest { kind: "attach", .. })
    ));
}

#[tokio::test]
async fn expired_token_gets_404() {
    let clock = Arc::new(ManualClock {
        base: Instant::now(),
        offset: Mutex::new(Duration::ZERO),
    });
    let (backend, _events) = HostBackend::new();
    let config = ServerConfig {
        clock: clock.clone(),
        ..ServerConfig::default()
    };
    let server = StreamingServer::start(config, backend).await.unwrap();
    let url = server.get_exec(exec(&["true"], false, false)).unwrap();
    assert_eq!(url.host(), Some("127.0.0.1"));
    assert_eq!(url.port_u16(), Some(server.local_addr().port()));
    let spdy = "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n";
    *clock.offset.lock().unwrap() = Duration::from_secs(61);
    assert_eq!(
        http_status(server.local_addr(), url.path(), spdy).await,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_websocket_channel_protocol() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let (server, _events) = server().await;
    let port = http_server("hello-over-channels").await;
    let req = PortForwardRequest {
        pod_sandbox_id: "pod-3".into(),
        ports: vec![],
    };
    let url = server.get_port_forward(req).unwrap();
    let ws_url = format!("ws://{}{}?port={port}", server.local_addr(), url.path());
    let mut request = ws_url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v4.channel.k8s.io".parse().unwrap(),
    );
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let (mut ws, resp) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    assert_eq!(
        resp.headers()["sec-websocket-protocol"],
        "v4.channel.k8s.io"
    );
    // Data and error channel of port 0 each first carry the port, little-endian.
    let mut first = Vec::new();
    while first.len() < 2 {
        if let Message::Binary(b) = ws.next().await.unwrap().unwrap() {
            first.push(b.to_vec());
        }
    }
    let le = port.to_le_bytes();
    assert!(first.contains(&vec![0, le[0], le[1]]), "{first:?}");
    assert!(first.contains(&vec![1, le[0], le[1]]), "{first:?}");
    let mut get = vec![0u8];
    get.extend_from_slice(b"GET / HTTP/1.1\r\nHost: pod\r\n\r\n");
    ws.send(Message::Binary(get.into())).await.unwrap();
    let mut response = Vec::new();
    while !String::from_utf8_lossy(&response).contains("hello-over-channels") {
        match ws.next().await.unwrap().unwrap() {
            Message::Binary(b) => {
                assert_eq!(b[0], 0, "unexpected channel in {b:?}");
                response.extend_from_slice(&b[1..]);
            }
            _ => continue,
        }
    }
    assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 200 OK"));
    ws.close(None).await.unwrap();
    drop(ws);
    server.wait_idle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_spdy_protocol_versions() {
    let Some(bin) = goclient() else { return };
    let (server, _events) = server().await;
    for proto in ["v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"] {
        // The v1 client never closes stdin, so it only gets stdin the command does not
        // wait to end.
        let script = if proto == "channel.k8s.io" {
            "read line; echo $line; echo err >&2"
        } else {
            "cat; echo err >&2"
        };
        let url = server
            .get_exec(exec(&["sh", "-c", script], true, false))
            .unwrap()
            .to_string();
        let args = ["exec", "-url", &url, "-stdin", "-spdy-protocol", proto];
        let run = run_goclient(&bin, &args, b"in\n").await;
        assert_eq!(run.code, 0, "{proto}: {run:?}");
        assert_eq!(
            (run.stdout.as_str(), run.stderr.as_str()),
            ("in\n", "err\n"),
            "{proto}"
        );
        // Before v4 the error stream carries text, so the exit code arrives as a message.
        let url = server
            .get_exec(exec(&["sh", "-c", "exit 3"], false, false))
            .unwrap()
            .to_string();
        let args = ["exec", "-url", &url, "-spdy-protocol", proto];
        let run = run_goclient(&bin, &args, b"").await;
        assert_eq!(run.code, 100, "{proto}: {run:?}");
        assert!(
            run.stderr.contains("non-zero exit code: 3"),
            "{proto}: {run:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_spdy_upgrade_ends_the_session() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (server, mut events) = server().await;
    let url = server.get_exec(exec(&["true"], false, false)).unwrap();
    let mut tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let req = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
         X-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n",
        url.path()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut b = [0u8; 256];
        let n = tcp.read(&mut b).await.unwrap();
        assert!(n > 0);
        head.extend_from_slice(&b[..n]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("x-stream-protocol-version: v4.channel.k8s.io"),
        "{head}"
    );
    // A control frame of SPDY version 2: a protocol error.
    tcp.write_all(&[0x80, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00])
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), server.wait_idle())
        .await
        .expect("session did not end");
    assert!(events.try_recv().is_err(), "the backend must not have run");
}
