//! GetContainerEvents: a server stream of lifecycle events, broadcast to every subscriber.
use super::*;
use tokio_stream::wrappers::{errors::BroadcastStreamRecvError, BroadcastStream};
use tokio_stream::StreamExt;

/// The stream type.
pub type EventStream = std::pin::Pin<
    Box<
        dyn tokio_stream::Stream<
                Item = std::result::Result<cri::ContainerEventResponse, tonic::Status>,
            > + Send,
    >,
>;

/// Subscribes to the events sent from now on.
pub fn handle(c: &Crius) -> EventStream {
    let rx = c.events.subscribe();
    Box::pin(BroadcastStream::new(rx).filter_map(|ev| match ev {
        Ok(ev) => Some(Ok(ev)),
        Err(BroadcastStreamRecvError::Lagged(n)) => {
            tracing::warn!(missed = n, "event subscriber lagged");
            None
        }
    }))
}
