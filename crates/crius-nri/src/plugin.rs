//! One connected plugin: registration, configuration, and calls into its `Plugin` service.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use crate::api;
use crate::error::CallError;
use crate::frame::{PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN};
use crate::ttrpc::{Handler, Request, Session, Status};
use crate::Config;

/// ttrpc name of the service plugins serve.
pub const PLUGIN_SERVICE: &str = "nri.pkg.api.v1alpha1.Plugin";
/// ttrpc name of the service the runtime serves.
pub const RUNTIME_SERVICE: &str = "nri.pkg.api.v1alpha1.Runtime";
/// NRI protocol version this crate speaks (that of its api.proto).
pub const NRI_VERSION: &str = "v0.12.2";

/// Bit of `event` in a subscription mask.
pub fn event_bit(event: api::Event) -> i32 {
    1 << (event as i32 - 1)
}

/// Every event a plugin may subscribe to.
pub fn valid_events() -> i32 {
    (1 << (api::Event::Last as i32 - 1)) - 1
}

/// A registered and configured plugin.
pub struct Plugin {
    /// `<index>-<name>`, the order plugins are called in.
    pub name: String,
    events: i32,
    session: Session,
}

impl Plugin {
    /// Whether the plugin subscribed to `event`.
    pub fn subscribed(&self, event: api::Event) -> bool {
        self.events & event_bit(event) != 0
    }

    /// Calls `method` of the plugin's service.
    pub async fn call<Req: Message, Resp: Message + Default>(
        &self,
        method: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        self.session
            .call(PLUGIN_SERVICE, method, req, timeout)
            .await
    }

    /// Closes the plugin's connection.
    pub fn close(&self) {
        self.session.close()
    }

    /// Resolves once the plugin's connection is closed.
    pub async fn closed(&self) {
        self.session.closed().await
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty plugin name".into());
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.+".contains(*c)))
    {
        Some(c) => Err(format!("plugin name {name:?} contains {c:?}")),
        None => Ok(()),
    }
}

fn check_index(idx: &str) -> Result<(), String> {
    if idx.len() == 2 && idx.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("plugin index {idx:?} is not two digits"))
    }
}

/// Serves the runtime's side of the `Runtime` service; registrations go to `registered`.
fn runtime_service(registered: mpsc::UnboundedSender<api::RegisterPluginRequest>) -> Handler {
    Arc::new(move |req: Request| {
        let registered = registered.clone();
        Box::pin(async move {
            if req.service != RUNTIME_SERVICE {
                return Err(Status::new(
                    Status::UNIMPLEMENTED,
                    format!("unknown service {}", req.service),
                ));
            }
            match req.method.as_str() {
                "RegisterPlugin" => {
                    let r = api::RegisterPluginRequest::decode(req.payload.as_slice())
                        .map_err(|e| Status::new(3, e.to_string()))?;
                    check_name(&r.plugin_name)
                        .and_then(|()| check_index(&r.plugin_idx))
                        .map_err(|e| Status::new(3, e))?;
                    registered
                        .send(r)
                        .map_err(|_| Status::new(Status::UNKNOWN, "registration closed"))?;
                    Ok(api::Empty {}.encode_to_vec())
                }
                "UpdateContainers" => {
                    // Unsolicited updates are not supported: report every one as failed.
                    let r = api::UpdateContainersRequest::decode(req.payload.as_slice())
                        .map_err(|e| Status::new(3, e.to_string()))?;
                    tracing::info!(
                        n = r.update.len(),
                        "nri: unsolicited container updates refused"
                    );
                    Ok(api::UpdateContainersResponse { failed: r.update }.encode_to_vec())
                }
                m => Err(Status::new(
                    Status::UNIMPLEMENTED,
                    format!("unknown method {m}"),
                )),
            }
        })
    })
}

/// Waits for the plugin on `stream` to register, then configures it. Synchronization is left
/// to the caller.
pub async fn handshake(stream: UnixStream, config: &Config) -> Result<Plugin, String> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let session = Session::new(
        stream,
        PLUGIN_SERVICE_CONN,
        RUNTIME_SERVICE_CONN,
        runtime_service(tx),
    );
    let registration = tokio::select! {
        r = tokio::time::timeout(config.registration_timeout, rx.recv()) => r,
        () = session.closed() => return Err("connection closed before registration".into()),
    };
    let reg = match registration {
        Ok(Some(r)) => r,
        Ok(None) => return Err("registration channel closed".into()),
        Err(_) => return Err("registration timed out".into()),
    };
    let name = format!("{}-{}", reg.plugin_idx, reg.plugin_name);
    let req = api::ConfigureRequest {
        config: String::new(),
        runtime_name: config.runtime_name.clone(),
        runtime_version: config.runtime_version.clone(),
        registration_timeout: config.registration_timeout.as_millis() as i64,
        request_timeout: config.request_timeout.as_millis() as i64,
        nri_version: NRI_VERSION.to_string(),
    };
    let rpl: api::ConfigureResponse = session
        .call(PLUGIN_SERVICE, "Configure", &req, config.request_timeout)
        .await
        .map_err(|e| format!("plugin {name}: configure: {e}"))?;
    let events = match rpl.events {
        0 => valid_events(),
        e if e & !valid_events() != 0 => {
            return Err(format!("plugin {name}: invalid event mask {e:#x}"));
        }
        e => e,
    };
    tracing::info!(plugin = %name, version = %reg.nri_version, events = format!("{events:#x}"), "nri: plugin registered");
    Ok(Plugin {
        name,
        events,
        session,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_bits_follow_the_enum() {
        assert_eq!(event_bit(api::Event::RunPodSandbox), 1);
        assert_eq!(event_bit(api::Event::CreateContainer), 8);
        assert_eq!(valid_events(), 0x3fff);
    }

    #[test]
    fn names_and_indexes() {
        assert!(check_name("cri-test_nri.1+x").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_index("00").is_ok());
        assert!(check_index("1").is_err());
        assert!(check_index("1a").is_err());
    }
}
