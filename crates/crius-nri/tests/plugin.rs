//! crius-nri against a fake plugin written with the crate's own ttrpc peer, over the real socket.

use std::sync::Arc;
use std::time::Duration;

use crius_nri::api;
use crius_nri::frame::{PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN};
use crius_nri::ttrpc::{Handler, Request, Session, Status};
use crius_nri::{Config, Error, Nri, StateSource};
use prost::Message;
use tokio::sync::{mpsc, Notify};

/// What the fake plugin saw, in order.
#[derive(Debug, PartialEq)]
enum Seen {
    Configure(String),
    Sync(Vec<String>, Vec<String>),
    Event(String, String),
}

struct Fixed;

impl StateSource for Fixed {
    fn pods(&self) -> Vec<api::PodSandbox> {
        vec![pod("existing-pod", "existing")]
    }
    fn containers(&self) -> Vec<api::Container> {
        vec![api::Container {
            id: "existing-ctr".into(),
            pod_sandbox_id: "existing-pod".into(),
            ..Default::default()
        }]
    }
}

fn pod(id: &str, name: &str) -> api::PodSandbox {
    api::PodSandbox {
        id: id.into(),
        name: name.into(),
        ..Default::default()
    }
}

fn events_mask(events: &[api::Event]) -> i32 {
    events.iter().map(|e| 1 << (*e as i32 - 1)).sum()
}

/// The fake plugin: records what it sees; fails RunPodSandbox for pods named "fail", adjusts
/// every created container's env, and never answers StopContainer until `release` is notified.
fn plugin_service(seen: mpsc::UnboundedSender<Seen>, release: Arc<Notify>) -> Handler {
    Arc::new(move |req: Request| {
        let seen = seen.clone();
        let release = release.clone();
        Box::pin(async move {
            let p = req.payload.as_slice();
            let bad = |e: prost::DecodeError| Status::new(3, e.to_string());
            match req.method.as_str() {
                "Configure" => {
                    let r = api::ConfigureRequest::decode(p).map_err(bad)?;
                    let _ = seen.send(Seen::Configure(r.runtime_name));
                    let events = events_mask(&[
                        api::Event::RunPodSandbox,
                        api::Event::CreateContainer,
                        api::Event::StopContainer,
                    ]);
                    Ok(api::ConfigureResponse { events }.encode_to_vec())
                }
                "Synchronize" => {
                    let r = api::SynchronizeRequest::decode(p).map_err(bad)?;
                    let _ = seen.send(Seen::Sync(
                        r.pods.into_iter().map(|p| p.id).collect(),
                        r.containers.into_iter().map(|c| c.id).collect(),
                    ));
                    Ok(api::SynchronizeResponse::default().encode_to_vec())
                }
                "RunPodSandbox" => {
                    let r = api::RunPodSandboxRequest::decode(p).map_err(bad)?;
                    let pod = r.pod.unwrap_or_default();
                    let _ = seen.send(Seen::Event(req.method.clone(), pod.id));
                    if pod.name == "fail" {
                        return Err(Status::new(Status::UNKNOWN, "induced failure"));
                    }
                    Ok(api::RunPodSandboxResponse {}.encode_to_vec())
                }
                "CreateContainer" => {
                    let r = api::CreateContainerRequest::decode(p).map_err(bad)?;
                    let _ = seen.send(Seen::Event(
                        req.method.clone(),
                        r.container.unwrap_or_default().id,
                    ));
                    let adjust = api::ContainerAdjustment {
                        env: vec![api::KeyValue {
                            key: "FROM_PLUGIN".into(),
                            value: "1".into(),
                        }],
                        ..Default::default()
                    };
                    Ok(api::CreateContainerResponse {
                        adjust: Some(adjust),
                        ..Default::default()
                    }
                    .encode_to_vec())
                }
                "StopContainer" => {
                    let _ = seen.send(Seen::Event(req.method.clone(), String::new()));
                    release.notified().await;
                    Ok(api::StopContainerResponse::default().encode_to_vec())
                }
                m => Err(Status::new(Status::UNIMPLEMENTED, m)),
            }
        })
    })
}

/// Connects a fake plugin and registers it; returns its session and what it sees.
async fn connect_plugin(
    nri_socket: &std::path::Path,
    name: &str,
    release: Arc<Notify>,
) -> (Session, mpsc::UnboundedReceiver<Seen>) {
    let stream = tokio::net::UnixStream::connect(nri_socket)
        .await
        .expect("connect to the NRI socket");
    let (tx, rx) = mpsc::unbounded_channel();
    let session = Session::new(
        stream,
        RUNTIME_SERVICE_CONN,
        PLUGIN_SERVICE_CONN,
        plugin_service(tx, release),
    );
    let reg = api::RegisterPluginRequest {
        plugin_name: name.into(),
        plugin_idx: "05".into(),
        nri_version: "test".into(),
    };
    let _: api::Empty = session
        .call(
            "nri.pkg.api.v1alpha1.Runtime",
            "RegisterPlugin",
            &reg,
            Duration::from_secs(30),
        )
        .await
        .expect("register");
    (session, rx)
}

#[tokio::test]
async fn plugin_lifecycle_errors_adjustments_timeouts_and_disconnects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("nri").join("nri.sock");
    let mut config = Config::new(&socket);
    // Short enough to keep the test quick; the timeout path is what is exercised.
    config.request_timeout = Duration::from_millis(300);
    let nri = Nri::start(config, Arc::new(Fixed)).expect("start");
    let mode = std::fs::metadata(&socket).expect("socket").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let release = Arc::new(Notify::new());

    let (plugin, mut seen) = connect_plugin(&socket, "fake", release.clone()).await;
    assert_eq!(seen.recv().await, Some(Seen::Configure("crius".into())));
    assert_eq!(
        seen.recv().await,
        Some(Seen::Sync(
            vec!["existing-pod".into()],
            vec!["existing-ctr".into()]
        ))
    );
    nri.wait_for_plugins(1).await;

    // An accepted event reaches the plugin before the hook returns.
    nri.run_pod_sandbox(&pod("p1", "ok"))
        .await
        .expect("run pod");
    assert_eq!(
        seen.try_recv().ok(),
        Some(Seen::Event("RunPodSandbox".into(), "p1".into()))
    );

    // Unsubscribed events are not sent.
    nri.stop_pod_sandbox(&pod("p1", "ok"))
        .await
        .expect("stop pod");
    assert!(
        seen.try_recv().is_err(),
        "StopPodSandbox was not subscribed"
    );

    // A plugin error fails the hook and names plugin, event and object.
    let err = nri
        .run_pod_sandbox(&pod("p2", "fail"))
        .await
        .expect_err("plugin error must fail the hook");
    match &err {
        Error::Plugin {
            plugin,
            event,
            object,
            message,
        } => {
            assert_eq!(
                (plugin.as_str(), *event, object.as_str()),
                ("05-fake", "RunPodSandbox", "p2")
            );
            assert!(message.contains("induced failure"), "{message}");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(
        seen.try_recv().ok(),
        Some(Seen::Event("RunPodSandbox".into(), "p2".into()))
    );

    // Adjustments come back merged.
    let ctr = api::Container {
        id: "c1".into(),
        pod_sandbox_id: "p1".into(),
        name: "c".into(),
        ..Default::default()
    };
    let adjust = nri
        .create_container(&pod("p1", "ok"), &ctr)
        .await
        .expect("create");
    assert_eq!(adjust.env.len(), 1);
    assert_eq!(adjust.env[0].key, "FROM_PLUGIN");

    // A second plugin connecting now is synchronized with the daemon's objects plus the pod and
    // container whose hooks ran (the failed pod is not among them).
    let (second, mut seen2) = connect_plugin(&socket, "second", release.clone()).await;
    assert!(matches!(seen2.recv().await, Some(Seen::Configure(_))));
    match seen2.recv().await {
        Some(Seen::Sync(mut pods, mut ctrs)) => {
            pods.sort();
            ctrs.sort();
            assert_eq!(pods, vec!["existing-pod".to_string(), "p1".to_string()]);
            assert_eq!(ctrs, vec!["c1".to_string(), "existing-ctr".to_string()]);
        }
        other => panic!("expected a sync, got {other:?}"),
    }
    nri.wait_for_plugins(2).await;
    drop(second);
    nri.wait_for_plugins(1).await;

    // A plugin that does not answer in time is dropped, and the hook still succeeds.
    nri.stop_container(&pod("p1", "ok"), &ctr)
        .await
        .expect("a hung plugin must not fail the hook");
    assert_eq!(nri.plugin_count(), 0);
    release.notify_waiters();
    plugin.closed().await;
    assert!(plugin.is_closed());

    // With no plugins, hooks are no-ops.
    nri.run_pod_sandbox(&pod("p3", "fail"))
        .await
        .expect("no plugins, no failure");
}

/// A plugin whose Synchronize blocks until released.
fn blocking_sync_service(
    seen: mpsc::UnboundedSender<Seen>,
    reached: Arc<Notify>,
    release: Arc<Notify>,
) -> Handler {
    Arc::new(move |req: Request| {
        let (seen, reached, release) = (seen.clone(), reached.clone(), release.clone());
        Box::pin(async move {
            let p = req.payload.as_slice();
            let bad = |e: prost::DecodeError| Status::new(3, e.to_string());
            match req.method.as_str() {
                "Configure" => Ok(api::ConfigureResponse {
                    events: events_mask(&[api::Event::CreateContainer]),
                }
                .encode_to_vec()),
                "Synchronize" => {
                    let r = api::SynchronizeRequest::decode(p).map_err(bad)?;
                    let _ = seen.send(Seen::Sync(
                        r.pods.into_iter().map(|p| p.id).collect(),
                        r.containers.into_iter().map(|c| c.id).collect(),
                    ));
                    reached.notify_one();
                    release.notified().await;
                    Ok(api::SynchronizeResponse::default().encode_to_vec())
                }
                "CreateContainer" => {
                    let r = api::CreateContainerRequest::decode(p).map_err(bad)?;
                    let _ = seen.send(Seen::Event(
                        req.method.clone(),
                        r.container.unwrap_or_default().id,
                    ));
                    Ok(api::CreateContainerResponse::default().encode_to_vec())
                }
                m => Err(Status::new(Status::UNIMPLEMENTED, m)),
            }
        })
    })
}

#[tokio::test]
async fn container_created_during_synchronize_is_not_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("nri.sock");
    let nri = Arc::new(Nri::start(Config::new(&socket), Arc::new(Fixed)).expect("start"));
    let (reached, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (tx, mut seen) = mpsc::unbounded_channel();
    let stream = tokio::net::UnixStream::connect(&socket)
        .await
        .expect("connect");
    let plugin = Session::new(
        stream,
        RUNTIME_SERVICE_CONN,
        PLUGIN_SERVICE_CONN,
        blocking_sync_service(tx, reached.clone(), release.clone()),
    );
    let reg = api::RegisterPluginRequest {
        plugin_name: "late".into(),
        plugin_idx: "10".into(),
        ..Default::default()
    };
    let _: api::Empty = plugin
        .call(
            "nri.pkg.api.v1alpha1.Runtime",
            "RegisterPlugin",
            &reg,
            Duration::from_secs(30),
        )
        .await
        .expect("register");
    reached.notified().await;

    // The plugin is inside Synchronize: create a container now.
    let creating = {
        let nri = nri.clone();
        tokio::spawn(async move {
            let ctr = api::Container {
                id: "during".into(),
                pod_sandbox_id: "existing-pod".into(),
                ..Default::default()
            };
            nri.create_container(&pod("existing-pod", "existing"), &ctr)
                .await
        })
    };
    release.notify_one();
    creating.await.expect("join").expect("create");
    nri.wait_for_plugins(1).await;

    // The container reached the plugin exactly one way: in the sync set or as an event.
    let mut via_sync = false;
    let mut via_event = false;
    while let Ok(s) = seen.try_recv() {
        match s {
            Seen::Sync(_, ctrs) => via_sync |= ctrs.iter().any(|c| c == "during"),
            Seen::Event(m, id) => via_event |= m == "CreateContainer" && id == "during",
            Seen::Configure(_) => {}
        }
    }
    assert!(via_sync ^ via_event, "sync {via_sync}, event {via_event}");
}
