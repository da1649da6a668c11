//! The server over TLS, driven by client-go trusting a CA made for the test.

mod common;

use std::sync::Arc;

use common::{goclient, http_server, run_goclient, HostBackend};
use crius_streaming::rustls::pki_types::pem::PemObject;
use crius_streaming::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use crius_streaming::{rustls, ExecRequest, PortForwardRequest, ServerConfig, StreamingServer};

/// A self-signed certificate for 127.0.0.1 made with the openssl CLI; `None` without it.
fn self_signed(dir: &std::path::Path) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=crius-streaming-test"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => Some((cert, key)),
        other => {
            eprintln!("SKIP: openssl could not make a test certificate: {other:?}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_and_port_forward_over_tls() {
    let Some(bin) = goclient() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = self_signed(dir.path()) else {
        return;
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let (backend, _events) = HostBackend::new();
    let config = ServerConfig {
        tls: Some(Arc::new(tls)),
        ..ServerConfig::default()
    };
    let server = StreamingServer::start(config, backend).await.unwrap();
    let ca = cert.to_str().unwrap();
    let port = http_server("over-tls").await.to_string();
    for transport in ["spdy", "websocket"] {
        let req = ExecRequest {
            container_id: "c1".into(),
            cmd: vec!["sh".into(), "-c".into(), "cat; exit 4".into()],
            tty: false,
            stdin: true,
            stdout: true,
            stderr: true,
        };
        let url = server.get_exec(req).unwrap();
        assert_eq!(url.scheme_str(), Some("https"));
        let url = url.to_string();
        let args = [
            "exec",
            "-url",
            &url,
            "-transport",
            transport,
            "-stdin",
            "-ca",
            ca,
        ];
        let run = run_goclient(&bin, &args, b"secret\n").await;
        assert_eq!(run.code, 4, "{transport}: {run:?}");
        assert_eq!(run.stdout, "secret\n", "{transport}");

        let req = PortForwardRequest {
            pod_sandbox_id: "pod".into(),
            ports: vec![],
        };
        let url = server.get_port_forward(req).unwrap().to_string();
        let args = [
            "portforward",
            "-url",
            &url,
            "-transport",
            transport,
            "-port",
            &port,
            "-ca",
            ca,
        ];
        let run = run_goclient(&bin, &args, b"").await;
        assert_eq!(run.code, 0, "{transport}: {run:?}");
        assert_eq!(run.stdout, "over-tls\n", "{transport}");
    }
    // Without the CA the client refuses the server.
    let url = server
        .get_exec(ExecRequest {
            container_id: "c1".into(),
            cmd: vec!["true".into()],
            stdout: true,
            ..ExecRequest::default()
        })
        .unwrap()
        .to_string();
    let run = run_goclient(&bin, &["exec", "-url", &url], b"").await;
    assert_eq!(run.code, 100, "{run:?}");
    assert!(run.stderr.contains("certificate"), "{run:?}");
}
