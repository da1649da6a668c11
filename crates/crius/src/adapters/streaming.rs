//! Exec/Attach/PortForward over crius-streaming: the daemon's `Backend` runs the sessions
//! through crius-oci (exec, the monitor's attach socket) and crius-network (dial inside the
//! pod's network namespace).

use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use crius_streaming::{
    Backend, BackendError, PortForwardStream, ServerConfig, StreamingServer, Streams,
};
use k8s_cri::v1 as cri;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::service::Crius;
use crate::streaming::StreamUrls;

/// The backend the streaming server calls; holds the daemon weakly (the daemon owns the server).
pub struct CriBackend {
    crius: Weak<Crius>,
}

fn berr(e: impl std::fmt::Display) -> BackendError {
    e.to_string().into()
}

impl CriBackend {
    fn crius(&self) -> std::result::Result<Arc<Crius>, BackendError> {
        self.crius
            .upgrade()
            .ok_or_else(|| berr("crius is shutting down"))
    }
}

/// Copies `from` to `to` until end of file, then shuts `to` down.
async fn pump<R, W>(mut from: R, mut to: W)
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let _ = tokio::io::copy(&mut from, &mut to).await;
    let _ = to.shutdown().await;
}

impl Backend for CriBackend {
    async fn exec(
        &self,
        container_id: String,
        cmd: Vec<String>,
        streams: Streams,
    ) -> std::result::Result<i32, BackendError> {
        let c = self.crius()?;
        let rec = c.running(&container_id).await.map_err(berr)?;
        let rt = c.runtime(&rec.runtime_handler).map_err(berr)?;
        let oci = rt
            .oci()
            .ok_or_else(|| berr("runtime has no exec support"))?;
        let spec: oci_spec::runtime::Spec =
            serde_json::from_slice(&std::fs::read(rec.bundle.join("config.json")).map_err(berr)?)
                .map_err(berr)?;
        let mut process = spec.process().clone().unwrap_or_default();
        process.set_args(Some(cmd));
        process.set_terminal(Some(streams.tty));
        let mut sess = oci
            .exec(&rec.id, &process, streams.tty)
            .await
            .map_err(berr)?;
        let Streams {
            stdin,
            stdout,
            stderr,
            tty,
            mut resize,
        } = streams;
        let mut copies = Vec::new();
        // Stdin is copied until the client closes it, which an interactive client (`crictl
        // exec -it`) only does when the session ends: the exec's end must not wait for it.
        let mut stdin_copy = None;
        if tty {
            let pty = sess
                .pty
                .take()
                .ok_or_else(|| berr("exec with tty: no pty"))?;
            let (pty_r, pty_w) = tokio::io::split(pty);
            if let Some(input) = stdin {
                stdin_copy = Some(tokio::spawn(pump(input, pty_w)));
            }
            if let Some(out) = stdout {
                copies.push(tokio::spawn(pump(pty_r, out)));
            }
        } else {
            match (stdin, sess.stdin.take()) {
                (Some(input), Some(child_in)) => {
                    stdin_copy = Some(tokio::spawn(pump(input, child_in)));
                }
                (_, child_in) => drop(child_in),
            }
            if let (Some(out), Some(child_out)) = (stdout, sess.stdout.take()) {
                copies.push(tokio::spawn(pump(child_out, out)));
            }
            if let (Some(err), Some(child_err)) = (stderr, sess.stderr.take()) {
                copies.push(tokio::spawn(pump(child_err, err)));
            }
        }
        let code = loop {
            tokio::select! {
                r = sess.wait() => break r.map_err(berr)?,
                Some(sz) = resize.recv() => { let _ = sess.resize(sz.height, sz.width); }
            }
        };
        for t in copies {
            let _ = t.await;
        }
        if let Some(t) = stdin_copy {
            t.abort();
        }
        Ok(code)
    }

    async fn attach(
        &self,
        container_id: String,
        streams: Streams,
    ) -> std::result::Result<(), BackendError> {
        let c = self.crius()?;
        let rec = c.running(&container_id).await.map_err(berr)?;
        let rt = c.runtime(&rec.runtime_handler).map_err(berr)?;
        let oci = rt
            .oci()
            .ok_or_else(|| berr("runtime has no attach support"))?
            .clone();
        let att = Arc::new(oci.attach(&rec.id).await.map_err(berr)?);
        let Streams {
            stdin,
            mut stdout,
            mut stderr,
            tty,
            mut resize,
        } = streams;
        let want_output = stdout.is_some() || stderr.is_some();
        let input = stdin.map(|mut input| {
            let att = att.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 << 10];
                loop {
                    match input.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if att.send_stdin(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = att.close_stdin();
            })
        });
        let id = rec.id.clone();
        let out_att = att.clone();
        let output = async move {
            while let Ok(Some((kind, data))) = out_att.recv().await {
                let target = match kind {
                    crius_oci::AttachStreamKind::Stderr if !tty => stderr.as_mut(),
                    _ => stdout.as_mut(),
                };
                if let Some(w) = target {
                    if w.write_all(&data).await.is_err() {
                        break;
                    }
                    let _ = w.flush().await;
                }
            }
            if let Some(mut w) = stdout {
                let _ = w.shutdown().await;
            }
            if let Some(mut w) = stderr {
                let _ = w.shutdown().await;
            }
        };
        tokio::pin!(output);
        match (want_output, input) {
            (true, _) => loop {
                tokio::select! {
                    _ = &mut output => break,
                    Some(sz) = resize.recv() => { let _ = oci.resize(&id, sz.height, sz.width).await; }
                }
            },
            (false, Some(input)) => {
                let _ = input.await;
            }
            (false, None) => {}
        }
        Ok(())
    }

    async fn port_forward(
        &self,
        pod_sandbox_id: String,
        port: u16,
        mut stream: PortForwardStream,
    ) -> std::result::Result<(), BackendError> {
        let c = self.crius()?;
        let pod = c.state.pod(&pod_sandbox_id).map_err(berr)?.get();
        let connect = move || -> std::io::Result<std::net::TcpStream> {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .or_else(|_| std::net::TcpStream::connect(("::1", port)))
        };
        let std_stream = match &pod.namespaces.net {
            Some(ns) => crius_network::namespace::run_in_netns(ns, connect)
                .await
                .map_err(berr)?
                .map_err(berr)?,
            None => connect().map_err(berr)?,
        };
        std_stream.set_nonblocking(true).map_err(berr)?;
        let mut tcp = tokio::net::TcpStream::from_std(std_stream).map_err(berr)?;
        let _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp).await;
        Ok(())
    }
}

/// The running server, as the daemon's URL source.
pub struct Urls {
    server: StreamingServer<CriBackend>,
}

fn url_err(e: crius_streaming::Error) -> Error {
    Error::Unavailable(format!("streaming server: {e}"))
}

impl StreamUrls for Urls {
    fn exec(&self, r: &cri::ExecRequest) -> Result<String> {
        self.server
            .get_exec(crius_streaming::ExecRequest {
                container_id: r.container_id.clone(),
                cmd: r.cmd.clone(),
                tty: r.tty,
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
            })
            .map(|u| u.to_string())
            .map_err(url_err)
    }

    fn attach(&self, r: &cri::AttachRequest) -> Result<String> {
        self.server
            .get_attach(crius_streaming::AttachRequest {
                container_id: r.container_id.clone(),
                tty: r.tty,
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
            })
            .map(|u| u.to_string())
            .map_err(url_err)
    }

    fn port_forward(&self, r: &cri::PortForwardRequest) -> Result<String> {
        self.server
            .get_port_forward(crius_streaming::PortForwardRequest {
                pod_sandbox_id: r.pod_sandbox_id.clone(),
                ports: r
                    .port
                    .iter()
                    .filter_map(|p| u16::try_from(*p).ok())
                    .collect(),
            })
            .map(|u| u.to_string())
            .map_err(url_err)
    }
}

/// Starts the streaming server on the configured address and registers it with the daemon.
pub async fn start(c: &Arc<Crius>) -> Result<()> {
    let ip: std::net::IpAddr = c.cfg.stream_address.parse().map_err(|e| {
        Error::InvalidArgument(format!("stream_address {:?}: {e}", c.cfg.stream_address))
    })?;
    let config = ServerConfig {
        addr: SocketAddr::new(ip, c.cfg.stream_port),
        ..Default::default()
    };
    let server = StreamingServer::start(
        config,
        CriBackend {
            crius: Arc::downgrade(c),
        },
    )
    .await
    .map_err(|e| Error::Unavailable(format!("streaming server: {e}")))?;
    tracing::info!(addr = %server.local_addr(), "streaming server listening");
    let _ = c.streaming.set(Arc::new(Urls { server }));
    Ok(())
}
