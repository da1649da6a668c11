//! The Kubernetes Container Runtime Interface, v1.
//!
//! Generated at build time (prost + tonic) from `proto/api.proto`, the protocol definition of
//! `k8s.io/cri-api` v0.37.0 (Kubernetes 1.37), kept unmodified. The `k8s-cri` crate on crates.io
//! (0.11) generates the same way but from an older api.proto that lacks fields the kubelet and
//! critest now use (`Mount.image_sub_path`, `ImageSpec.image_ref`), so the workspace depends on
//! this crate under the name `k8s-cri`: code keeps writing `k8s_cri::v1::...`.

/// CRI v1 (`runtime.v1`): messages, `runtime_service_{client,server}`,
/// `image_service_{client,server}`.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("runtime.v1");
}
