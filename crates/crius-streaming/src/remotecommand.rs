//! The Kubernetes remotecommand protocols (exec and attach), independent of the transport:
//! SPDY streams or WebSocket channels are turned into [`Channels`] and handed to [`run`].

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::backend::Backend;
use crate::spdy::{Gone, SendHalf};
use crate::types::{InputStream, OutputStream, Streams, TermSize};
use crate::ws::ChannelSender;

/// How long a v1 client gets to read an error before its output streams end.
const V1_ERROR_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// Buffer of the pipes between the protocol and the backend.
const PIPE_SIZE: usize = 64 * 1024;

/// A negotiated remotecommand protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Version {
    /// `channel.k8s.io` (also used when the client named no version).
    V1,
    /// `v2.channel.k8s.io`.
    V2,
    /// `v3.channel.k8s.io`: adds the resize stream.
    V3,
    /// `v4.channel.k8s.io`: JSON status with the exit code on the error stream.
    V4,
    /// `v5.channel.k8s.io` (WebSocket only): adds the close-channel message.
    V5,
}

impl Version {
    /// The protocol name on the wire.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Version::V1 => "channel.k8s.io",
            Version::V2 => "v2.channel.k8s.io",
            Version::V3 => "v3.channel.k8s.io",
            Version::V4 => "v4.channel.k8s.io",
            Version::V5 => "v5.channel.k8s.io",
        }
    }

    /// Parses a protocol name.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        [Self::V1, Self::V2, Self::V3, Self::V4, Self::V5]
            .into_iter()
            .find(|v| v.name() == name)
    }
}

/// Versions offered over SPDY, in no particular order (the client's order decides).
pub(crate) const SPDY_VERSIONS: [Version; 4] = [Version::V4, Version::V3, Version::V2, Version::V1];

/// What to run.
#[derive(Debug, Clone)]
pub(crate) enum Session {
    /// Run a command.
    Exec {
        container_id: String,
        cmd: Vec<String>,
    },
    /// Attach to the container's main process.
    Attach { container_id: String },
}

/// The session's options (from the CRI request).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// Where to send one output stream.
pub(crate) enum OutSink {
    /// A SPDY stream.
    Spdy(SendHalf),
    /// A WebSocket channel.
    Ws(ChannelSender),
}

impl OutSink {
    async fn send(&mut self, data: &[u8]) -> Result<(), Gone> {
        match self {
            OutSink::Spdy(s) => s.send(data).await,
            OutSink::Ws(s) => s.send(data).await,
        }
    }

    async fn finish(&mut self) {
        if let OutSink::Spdy(s) = self {
            let _ = s.finish().await;
        }
    }
}

/// The client's streams, transport-neutral.
pub(crate) struct Channels {
    /// Client stdin data (ends when the client closes stdin).
    pub stdin: Option<mpsc::Receiver<Vec<u8>>>,
    /// Raw resize stream bytes (JSON objects).
    pub resize: Option<mpsc::Receiver<Vec<u8>>>,
    /// Stdout towards the client.
    pub stdout: Option<OutSink>,
    /// Stderr towards the client.
    pub stderr: Option<OutSink>,
    /// The error/status stream.
    pub error: OutSink,
}

/// Aborts a task when dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Waits until the client has gone away.
pub(crate) async fn client_gone(gone: &mut watch::Receiver<bool>) {
    // An error means the connection's tasks ended: gone as well.
    let _ = gone.wait_for(|g| *g).await;
}

fn stdin_pump(mut rx: mpsc::Receiver<Vec<u8>>) -> (InputStream, AbortOnDrop<()>) {
    let (backend_side, mut ours) = tokio::io::duplex(PIPE_SIZE);
    let task = tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            if ours.write_all(&data).await.is_err() {
                return;
            }
        }
        let _ = ours.shutdown().await;
    });
    (Box::new(backend_side), AbortOnDrop(task))
}

fn output_pump(mut sink: OutSink) -> (OutputStream, AbortOnDrop<OutSink>) {
    let (backend_side, mut ours) = tokio::io::duplex(PIPE_SIZE);
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match ours.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink.send(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        sink
    });
    (Box::new(backend_side), AbortOnDrop(task))
}

/// Takes the complete JSON terminal sizes from the front of `buf`, leaving a partial one.
/// Garbage is dropped.
pub(crate) fn parse_resizes(buf: &mut Vec<u8>) -> Vec<TermSize> {
    let mut sizes = Vec::new();
    let mut iter = serde_json::Deserializer::from_slice(buf).into_iter::<TermSize>();
    let consumed = loop {
        match iter.next() {
            Some(Ok(size)) => sizes.push(size),
            Some(Err(e)) if e.is_eof() => break iter.byte_offset(),
            Some(Err(_)) => break buf.len(),
            None => break buf.len(),
        }
    };
    buf.drain(..consumed);
    sizes
}

fn resize_pump(
    rx: Option<mpsc::Receiver<Vec<u8>>>,
) -> (mpsc::Receiver<TermSize>, Option<AbortOnDrop<()>>) {
    let (tx, sizes) = mpsc::channel(16);
    let Some(mut rx) = rx else {
        return (sizes, None);
    };
    let task = tokio::spawn(async move {
        let mut buf = Vec::new();
        while let Some(data) = rx.recv().await {
            buf.extend_from_slice(&data);
            for size in parse_resizes(&mut buf) {
                if tx.send(size).await.is_err() {
                    return;
                }
            }
        }
    });
    (sizes, Some(AbortOnDrop(task)))
}

/// The bytes written on the error stream at the end of a session; `None` writes nothing.
pub(crate) fn status_message(version: Version, result: &Result<i32, String>) -> Option<Vec<u8>> {
    let json = version >= Version::V4;
    match result {
        Ok(0) if json => Some(
            json!({"metadata": {}, "status": "Success"})
                .to_string()
                .into(),
        ),
        Ok(0) => None,
        Ok(code) if json => {
            let message = format!("command terminated with non-zero exit code: exit code {code}");
            let status = json!({
                "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
            });
            Some(status.to_string().into())
        }
        Ok(code) => Some(format!("command terminated with non-zero exit code: {code}").into()),
        Err(message) if json => {
            let status = json!({
                "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": "InternalError",
                "details": {"causes": [{"message": message}]},
                "code": 500,
            });
            Some(status.to_string().into())
        }
        Err(message) => Some(message.clone().into_bytes()),
    }
}

/// Runs one exec or attach session over `ch` until the backend is done (then writes the
/// status and closes the streams) or the client is gone (then cancels the backend).
pub(crate) async fn run<B: Backend>(
    backend: &B,
    session: Session,
    version: Version,
    tty: bool,
    ch: Channels,
    mut gone: watch::Receiver<bool>,
) {
    let Channels {
        stdin,
        resize,
        stdout,
        stderr,
        mut error,
    } = ch;
    let (stdin, _stdin_task) = match stdin {
        Some(rx) => {
            let (s, t) = stdin_pump(rx);
            (Some(s), Some(t))
        }
        None => (None, None),
    };
    let (stdout, stdout_task) = match stdout {
        Some(sink) => {
            let (s, t) = output_pump(sink);
            (Some(s), Some(t))
        }
        None => (None, None),
    };
    let (stderr, stderr_task) = match stderr.filter(|_| !tty) {
        Some(sink) => {
            let (s, t) = output_pump(sink);
            (Some(s), Some(t))
        }
        None => (None, None),
    };
    let (resize, _resize_task) = resize_pump(resize);
    let streams = Streams {
        stdin,
        stdout,
        stderr,
        tty,
        resize,
    };
    let work = async {
        match session {
            Session::Exec { container_id, cmd } => backend
                .exec(container_id, cmd, streams)
                .await
                .map_err(|e| e.to_string()),
            Session::Attach { container_id } => backend
                .attach(container_id, streams)
                .await
                .map(|()| 0)
                .map_err(|e| e.to_string()),
        }
    };
    let result = tokio::select! {
        r = work => r,
        _ = client_gone(&mut gone) => {
            tracing::debug!("streaming client went away; session cancelled");
            return;
        }
    };
    // Flush what the backend wrote before reporting the status.
    let mut sinks = Vec::new();
    for mut task in [stdout_task, stderr_task].into_iter().flatten() {
        let joined = tokio::select! {
            j = &mut task.0 => j,
            _ = client_gone(&mut gone) => return,
        };
        if let Ok(sink) = joined {
            sinks.push(sink);
        }
    }
    let status = status_message(version, &result);
    let failed = status.is_some() && version == Version::V1;
    if let Some(msg) = status {
        let _ = error.send(&msg).await;
    }
    error.finish().await;
    if failed {
        // A v1 client stops at whichever ends first, its output streams or the error
        // stream: keep the outputs open until it has hung up, so the error is seen.
        let _ = tokio::time::timeout(V1_ERROR_WAIT, client_gone(&mut gone)).await;
    }
    for mut sink in sinks {
        sink.finish().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_messages_are_parsed_across_chunks() {
        let mut buf = br#"{"Width":80,"Height":24}{"Width":1"#.to_vec();
        assert_eq!(
            parse_resizes(&mut buf),
            vec![TermSize {
                width: 80,
                height: 24
            }]
        );
        buf.extend_from_slice(b"00,\"Height\":40}\n");
        assert_eq!(
            parse_resizes(&mut buf),
            vec![TermSize {
                width: 100,
                height: 40
            }]
        );
        assert!(buf.iter().all(|b| b.is_ascii_whitespace()));
        let mut bad = b"not json".to_vec();
        assert!(parse_resizes(&mut bad).is_empty());
        assert!(bad.is_empty());
    }

    #[test]
    fn v4_status_carries_exit_code() {
        let msg = status_message(Version::V4, &Ok(3)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&msg).unwrap();
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(v["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(v["details"]["causes"][0]["message"], "3");
        let ok = status_message(Version::V5, &Ok(0)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&ok).unwrap();
        assert_eq!(v["status"], "Success");
        assert_eq!(status_message(Version::V2, &Ok(0)), None);
        let text = status_message(Version::V3, &Err("boom".into())).unwrap();
        assert_eq!(text, b"boom");
    }

    #[test]
    fn version_names_round_trip() {
        for v in [
            Version::V1,
            Version::V2,
            Version::V3,
            Version::V4,
            Version::V5,
        ] {
            assert_eq!(Version::from_name(v.name()), Some(v));
        }
        assert_eq!(Version::from_name("v6.channel.k8s.io"), None);
    }
}
