//! Running one CNI plugin binary.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::{Error, Result};

/// Used when the daemon has no PATH: plugins such as portmap run `iptables`.
const FALLBACK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The CNI environment of one operation.
pub(crate) struct Call<'a> {
    /// CNI_CONTAINERID.
    pub pod: &'a str,
    /// CNI_COMMAND.
    pub command: &'static str,
    /// CNI_NETNS (empty when the namespace is gone).
    pub netns: OsString,
    /// CNI_IFNAME.
    pub if_name: &'a str,
    /// CNI_ARGS.
    pub args: &'a str,
    /// CNI_PATH.
    pub path: OsString,
}

/// Runs `binary` with the call's environment and `stdin`; returns stdout on success, or the
/// plugin's error (its error JSON `msg`/`details`, else its stderr).
pub(crate) async fn invoke(
    call: &Call<'_>,
    plugin: &str,
    binary: &Path,
    stdin: &[u8],
) -> Result<Vec<u8>> {
    let spawn_err = |source| Error::PluginSpawn {
        pod: call.pod.to_string(),
        command: call.command,
        plugin: plugin.to_string(),
        binary: binary.to_path_buf(),
        source,
    };
    let mut cmd = Command::new(binary);
    cmd.env("CNI_COMMAND", call.command)
        .env("CNI_CONTAINERID", call.pod)
        .env("CNI_NETNS", &call.netns)
        .env("CNI_IFNAME", call.if_name)
        .env("CNI_ARGS", call.args)
        .env("CNI_PATH", &call.path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if std::env::var_os("PATH").is_none() {
        cmd.env("PATH", FALLBACK_PATH);
    }
    let mut child = cmd.spawn().map_err(spawn_err)?;
    let mut pipe = child.stdin.take();
    let write = async move {
        if let Some(pipe) = pipe.as_mut() {
            // A plugin may exit without reading stdin; its exit status tells what happened.
            let _ = pipe.write_all(stdin).await;
        }
        drop(pipe);
    };
    let ((), output) = tokio::join!(write, child.wait_with_output());
    let output = output.map_err(spawn_err)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        if !stderr.trim().is_empty() {
            tracing::debug!(pod = call.pod, plugin, command = call.command, stderr = %stderr.trim(), "CNI plugin stderr");
        }
        return Ok(output.stdout);
    }
    let (code, msg) = error_message(&output.stdout, &stderr, output.status);
    Err(Error::Plugin {
        pod: call.pod.to_string(),
        command: call.command,
        plugin: plugin.to_string(),
        code,
        msg,
    })
}

/// The message of a failed plugin: the CNI error JSON (`code`, `msg`, `details`) from stdout if
/// there is one, else stderr, else the exit status.
fn error_message(
    stdout: &[u8],
    stderr: &str,
    status: std::process::ExitStatus,
) -> (Option<u64>, String) {
    if let Ok(Value::Object(err)) = serde_json::from_slice::<Value>(stdout) {
        let code = err.get("code").and_then(Value::as_u64);
        let msg = err.get("msg").and_then(Value::as_str).unwrap_or("").trim();
        let details = err
            .get("details")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim();
        if !msg.is_empty() || !details.is_empty() {
            let mut text = msg.to_string();
            if !details.is_empty() && details != msg {
                if !text.is_empty() {
                    text.push_str(": ");
                }
                text.push_str(details);
            }
            if let Some(code) = code {
                text = format!("{text} (code {code})");
            }
            return (code, text);
        }
    }
    let stdout = String::from_utf8_lossy(stdout);
    for text in [stderr.trim(), stdout.trim()] {
        if !text.is_empty() {
            return (None, format!("{text} ({status})"));
        }
    }
    (None, status.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn error_json_and_fallbacks() {
        let st = std::process::ExitStatus::from_raw(1 << 8);
        let (code, msg) = error_message(
            br#"{"cniVersion":"1.0.0","code":7,"msg":"bad config","details":"no subnet"}"#,
            "",
            st,
        );
        assert_eq!(code, Some(7));
        assert_eq!(msg, "bad config: no subnet (code 7)");
        let (code, msg) = error_message(b"", "boom\n", st);
        assert_eq!(code, None);
        assert!(msg.starts_with("boom ("), "{msg}");
        let (_, msg) = error_message(b"", "", st);
        assert!(msg.contains('1'), "{msg}");
    }
}
