//! Container lifecycle events (GetContainerEvents), broadcast to every subscriber.

use k8s_cri::v1 as cri;
use tokio::sync::broadcast;

/// How many events a slow subscriber may lag behind before it misses some.
const CAPACITY: usize = 1024;

/// The broadcaster.
#[derive(Debug, Clone)]
pub struct Events {
    tx: broadcast::Sender<cri::ContainerEventResponse>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    /// A broadcaster with no subscriber.
    pub fn new() -> Events {
        let (tx, _) = broadcast::channel(CAPACITY);
        Events { tx }
    }

    /// Sends an event to all current subscribers (none is fine).
    pub fn send(&self, ev: cri::ContainerEventResponse) {
        tracing::debug!(id = %ev.container_id, kind = ev.container_event_type, "event");
        let _ = self.tx.send(ev);
    }

    /// A new subscription, receiving events sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<cri::ContainerEventResponse> {
        self.tx.subscribe()
    }
}
