//! The CRI v1 gRPC services. Each call lives in its own file as `handle(crius, request)`; this
//! module only delegates. Every call runs in its own task so that a client hanging up cannot
//! cancel a half-done operation (the rollback guards still cover panics).

use std::sync::Arc;

use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_server::ImageService;
use k8s_cri::v1::runtime_service_server::RuntimeService;
use tonic::{Request, Response, Status};

use crate::error::{Error, Result};
use crate::service::Crius;

pub mod attach;
pub mod container_stats;
pub mod container_status;
pub mod create_container;
pub mod deadline;
pub mod exec;
pub mod exec_sync;
pub mod get_container_events;
pub mod image_fs_info;
pub mod image_status;
pub mod list_container_stats;
pub mod list_containers;
pub mod list_images;
pub mod list_metric_descriptors;
pub mod list_pod_sandbox;
pub mod list_pod_sandbox_metrics;
pub mod list_pod_sandbox_stats;
pub mod pod_sandbox_stats;
pub mod pod_sandbox_status;
pub mod port_forward;
pub mod pull_image;
pub mod remove_container;
pub mod remove_image;
pub mod remove_pod_sandbox;
pub mod reopen_container_log;
pub mod run_pod_sandbox;
pub mod runtime_config;
pub mod start_container;
pub mod status;
pub mod stop_container;
pub mod stop_pod_sandbox;
pub mod stream_container_stats;
pub mod stream_containers;
pub mod stream_images;
pub mod stream_pod_sandbox_metrics;
pub mod stream_pod_sandbox_stats;
pub mod stream_pod_sandboxes;
pub mod update_container_resources;
pub mod update_pod_sandbox_resources;
pub mod update_runtime_config;
pub mod version;

/// The RuntimeService implementation.
#[derive(Clone)]
pub struct Runtime(pub Arc<Crius>);

/// The ImageService implementation.
#[derive(Clone)]
pub struct Images(pub Arc<Crius>);

/// Runs a call's handler in its own task and converts the result.
async fn run<T, F, Fut>(
    c: &Arc<Crius>,
    name: &'static str,
    f: F,
) -> std::result::Result<Response<T>, Status>
where
    T: Send + 'static,
    F: FnOnce(Arc<Crius>) -> Fut,
    Fut: std::future::Future<Output = Result<T>> + Send + 'static,
{
    tracing::debug!(call = name, "request");
    let fut = f(c.clone());
    match tokio::spawn(fut).await {
        Ok(Ok(v)) => Ok(Response::new(v)),
        Ok(Err(e)) => {
            tracing::debug!(call = name, error = %e, "request failed");
            Err(e.into())
        }
        Err(e) => Err(Error::internal(name, e).into()),
    }
}

/// Generates a service impl whose listed methods delegate to `<module>::handle` (the macro
/// emits the whole impl so that `async_trait` sees the generated methods). The `streams` list is
/// the Stream* list calls: their handler lists and chunks, and the messages are sent in order.
macro_rules! delegate {
    (impl $trait:ident for $ty:ident {
        $($method:ident : $module:ident ($req:ty) -> $resp:ty;)*
    } streams {
        $($smethod:ident : $smodule:ident ($sreq:ty) -> $stream:ident ($sresp:ty);)*
    } { $($extra:tt)* }) => {
        #[tonic::async_trait]
        impl $trait for $ty {
            $(
                async fn $method(&self, request: Request<$req>) -> std::result::Result<Response<$resp>, Status> {
                    let r = request.into_inner();
                    run(&self.0, stringify!($method), move |c| $module::handle(c, r)).await
                }
            )*
            $(
                type $stream = ListStream<$sresp>;

                async fn $smethod(
                    &self,
                    request: Request<$sreq>,
                ) -> std::result::Result<Response<Self::$stream>, Status> {
                    let r = request.into_inner();
                    let msgs = run(&self.0, stringify!($smethod), move |c| $smodule::handle(c, r))
                        .await?
                        .into_inner();
                    Ok(Response::new(Box::pin(tokio_stream::iter(msgs.into_iter().map(Ok)))))
                }
            )*
            $($extra)*
        }
    };
}

/// Items per message of the Stream* list calls: small enough that a chunk of the largest CRI
/// objects stays far below gRPC's 4 MiB default message limit.
pub const STREAM_CHUNK: usize = 256;

/// Splits a list into messages of at most [`STREAM_CHUNK`] items (none for an empty list: every
/// message carries at least one item).
pub fn chunks<T, M>(items: Vec<T>, wrap: impl Fn(Vec<T>) -> M) -> Vec<M> {
    let mut out = Vec::with_capacity(items.len().div_ceil(STREAM_CHUNK));
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        out.push(wrap(it.by_ref().take(STREAM_CHUNK).collect()));
    }
    out
}

/// The response stream of a Stream* list call.
pub type ListStream<M> =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = std::result::Result<M, Status>> + Send>>;

fn unimplemented<T>(what: &str) -> std::result::Result<Response<T>, Status> {
    Err(Error::Unimplemented(format!("{what} is not implemented by crius")).into())
}

delegate! {
    impl RuntimeService for Runtime {
        version: version(cri::VersionRequest) -> cri::VersionResponse;
        run_pod_sandbox: run_pod_sandbox(cri::RunPodSandboxRequest) -> cri::RunPodSandboxResponse;
        stop_pod_sandbox: stop_pod_sandbox(cri::StopPodSandboxRequest) -> cri::StopPodSandboxResponse;
        remove_pod_sandbox: remove_pod_sandbox(cri::RemovePodSandboxRequest) -> cri::RemovePodSandboxResponse;
        pod_sandbox_status: pod_sandbox_status(cri::PodSandboxStatusRequest) -> cri::PodSandboxStatusResponse;
        list_pod_sandbox: list_pod_sandbox(cri::ListPodSandboxRequest) -> cri::ListPodSandboxResponse;
        create_container: create_container(cri::CreateContainerRequest) -> cri::CreateContainerResponse;
        start_container: start_container(cri::StartContainerRequest) -> cri::StartContainerResponse;
        stop_container: stop_container(cri::StopContainerRequest) -> cri::StopContainerResponse;
        remove_container: remove_container(cri::RemoveContainerRequest) -> cri::RemoveContainerResponse;
        list_containers: list_containers(cri::ListContainersRequest) -> cri::ListContainersResponse;
        container_status: container_status(cri::ContainerStatusRequest) -> cri::ContainerStatusResponse;
        update_container_resources: update_container_resources(cri::UpdateContainerResourcesRequest) -> cri::UpdateContainerResourcesResponse;
        reopen_container_log: reopen_container_log(cri::ReopenContainerLogRequest) -> cri::ReopenContainerLogResponse;
        exec_sync: exec_sync(cri::ExecSyncRequest) -> cri::ExecSyncResponse;
        exec: exec(cri::ExecRequest) -> cri::ExecResponse;
        attach: attach(cri::AttachRequest) -> cri::AttachResponse;
        port_forward: port_forward(cri::PortForwardRequest) -> cri::PortForwardResponse;
        container_stats: container_stats(cri::ContainerStatsRequest) -> cri::ContainerStatsResponse;
        list_container_stats: list_container_stats(cri::ListContainerStatsRequest) -> cri::ListContainerStatsResponse;
        pod_sandbox_stats: pod_sandbox_stats(cri::PodSandboxStatsRequest) -> cri::PodSandboxStatsResponse;
        list_pod_sandbox_stats: list_pod_sandbox_stats(cri::ListPodSandboxStatsRequest) -> cri::ListPodSandboxStatsResponse;
        update_runtime_config: update_runtime_config(cri::UpdateRuntimeConfigRequest) -> cri::UpdateRuntimeConfigResponse;
        status: status(cri::StatusRequest) -> cri::StatusResponse;
        runtime_config: runtime_config(cri::RuntimeConfigRequest) -> cri::RuntimeConfigResponse;
        list_metric_descriptors: list_metric_descriptors(cri::ListMetricDescriptorsRequest) -> cri::ListMetricDescriptorsResponse;
        list_pod_sandbox_metrics: list_pod_sandbox_metrics(cri::ListPodSandboxMetricsRequest) -> cri::ListPodSandboxMetricsResponse;
        update_pod_sandbox_resources: update_pod_sandbox_resources(cri::UpdatePodSandboxResourcesRequest) -> cri::UpdatePodSandboxResourcesResponse;
    } streams {
        stream_pod_sandboxes: stream_pod_sandboxes(cri::StreamPodSandboxesRequest) -> StreamPodSandboxesStream(cri::StreamPodSandboxesResponse);
        stream_containers: stream_containers(cri::StreamContainersRequest) -> StreamContainersStream(cri::StreamContainersResponse);
        stream_container_stats: stream_container_stats(cri::StreamContainerStatsRequest) -> StreamContainerStatsStream(cri::StreamContainerStatsResponse);
        stream_pod_sandbox_stats: stream_pod_sandbox_stats(cri::StreamPodSandboxStatsRequest) -> StreamPodSandboxStatsStream(cri::StreamPodSandboxStatsResponse);
        stream_pod_sandbox_metrics: stream_pod_sandbox_metrics(cri::StreamPodSandboxMetricsRequest) -> StreamPodSandboxMetricsStream(cri::StreamPodSandboxMetricsResponse);
    } {

    async fn checkpoint_pod(
        &self,
        _r: Request<cri::CheckpointPodRequest>,
    ) -> std::result::Result<Response<cri::CheckpointPodResponse>, Status> {
        unimplemented("CheckpointPod")
    }

    async fn restore_pod(
        &self,
        _r: Request<cri::RestorePodRequest>,
    ) -> std::result::Result<Response<cri::RestorePodResponse>, Status> {
        unimplemented("RestorePod")
    }

    async fn checkpoint_container(
        &self,
        _r: Request<cri::CheckpointContainerRequest>,
    ) -> std::result::Result<Response<cri::CheckpointContainerResponse>, Status> {
        unimplemented("CheckpointContainer")
    }

    type GetContainerEventsStream = get_container_events::EventStream;

    async fn get_container_events(
        &self,
        _r: Request<cri::GetEventsRequest>,
    ) -> std::result::Result<Response<Self::GetContainerEventsStream>, Status> {
        Ok(Response::new(get_container_events::handle(&self.0)))
    }
}
}

delegate! {
    impl ImageService for Images {
        list_images: list_images(cri::ListImagesRequest) -> cri::ListImagesResponse;
        image_status: image_status(cri::ImageStatusRequest) -> cri::ImageStatusResponse;
        pull_image: pull_image(cri::PullImageRequest) -> cri::PullImageResponse;
        remove_image: remove_image(cri::RemoveImageRequest) -> cri::RemoveImageResponse;
        image_fs_info: image_fs_info(cri::ImageFsInfoRequest) -> cri::ImageFsInfoResponse;
    } streams {
        stream_images: stream_images(cri::StreamImagesRequest) -> StreamImagesStream(cri::StreamImagesResponse);
    } {}
}
