//! Streaming (Exec/Attach/PortForward) over crius-streaming: not wired yet, so the three RPCs
//! answer UNIMPLEMENTED.

use std::sync::Arc;

use crate::service::Crius;

/// Starts the streaming server and registers it with the daemon (no-op until wired).
pub async fn start(_c: &Arc<Crius>) {}
