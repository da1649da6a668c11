//! The benchmark examples' gRPC connection: a tonic channel over the runtime's unix socket.

use std::path::PathBuf;

use anyhow::Context;
use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

/// A RuntimeService client on `sock` (a path, `unix://` prefix allowed), with a 64 MiB
/// message limit so that lists of many containers fit.
pub async fn connect(sock: &str) -> anyhow::Result<RuntimeServiceClient<Channel>> {
    let sock = PathBuf::from(sock.trim_start_matches("unix://"));
    let ch = Endpoint::try_from("http://[::]:50051")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let sock = sock.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(sock).await?))
            }
        }))
        .await
        .context("connect")?;
    Ok(RuntimeServiceClient::new(ch).max_decoding_message_size(64 << 20))
}
