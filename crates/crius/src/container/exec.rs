//! ExecSync as the container's own process: the exec'd command gets the container's user,
//! groups, environment, working directory, capabilities and security settings from its
//! config.json (runtimes differ in what `exec` inherits by default: crun runs as root).

use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::backend::ExecOutput;
use crate::error::{Context, Error, Result};
use crate::state::ContainerRecord;

/// How long output is still collected after the command exited.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// Each stream keeps at most this many bytes; the rest is read and dropped.
const CAP: usize = 16 << 20;

type Shared = std::sync::Arc<std::sync::Mutex<Vec<u8>>>;

async fn read_capped<R: tokio::io::AsyncRead + Unpin>(r: Option<R>, out: Shared) {
    let Some(mut r) = r else { return };
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
                let room = CAP.saturating_sub(o.len());
                o.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// What a reader collected, waiting at most [`OUTPUT_GRACE`] for it to reach end of file.
async fn collect(h: tokio::task::JoinHandle<()>, out: Shared) -> Vec<u8> {
    let abort = h.abort_handle();
    if tokio::time::timeout(OUTPUT_GRACE, h).await.is_err() {
        abort.abort();
    }
    let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
    std::mem::take(&mut *o)
}

/// Runs `cmd` in `rec` with the container's process settings; at `timeout` the command is
/// killed (dropping the session kills it) and DeadlineExceeded returned.
pub async fn exec_sync(
    oci: &crius_oci::Runtime,
    rec: &ContainerRecord,
    cmd: Vec<String>,
    timeout: Option<Duration>,
) -> Result<ExecOutput> {
    let spec: oci_spec::runtime::Spec = serde_json::from_slice(
        &std::fs::read(rec.bundle.join("config.json")).ctx("read config.json")?,
    )
    .ctx("parse config.json")?;
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(cmd));
    process.set_terminal(Some(false));
    let run = async {
        let mut sess = oci
            .exec(&rec.id, &process, false)
            .await
            .map_err(crate::adapters::oci::map_err)?;
        drop(sess.stdin.take());
        let (out_buf, err_buf) = (Shared::default(), Shared::default());
        let out = tokio::spawn(read_capped(sess.stdout.take(), out_buf.clone()));
        let err = tokio::spawn(read_capped(sess.stderr.take(), err_buf.clone()));
        let waited = match timeout {
            Some(t) => match tokio::time::timeout(t, sess.wait()).await {
                Ok(r) => r,
                Err(_) => {
                    // Kill the command and wait until it is gone before answering.
                    let _ = sess.kill();
                    let _ = sess.wait().await;
                    out.abort();
                    err.abort();
                    return Err(Error::DeadlineExceeded(format!(
                        "exec in container {}: timed out after {t:?}",
                        rec.id
                    )));
                }
            },
            None => sess.wait().await,
        };
        let exit_code = waited.map_err(crate::adapters::oci::map_err)?;
        // A background child of the command may keep the pipes open: do not wait for it long.
        let stdout = collect(out, out_buf).await;
        let stderr = collect(err, err_buf).await;
        Ok::<_, Error>(ExecOutput {
            stdout,
            stderr,
            exit_code,
        })
    };
    run.await
}
