//! Version.
use super::*;

/// The runtime's name and versions.
pub async fn handle(_c: Arc<Crius>, _r: cri::VersionRequest) -> Result<cri::VersionResponse> {
    Ok(cri::VersionResponse {
        version: "0.1.0".into(),
        runtime_name: "crius".into(),
        runtime_version: env!("CARGO_PKG_VERSION").into(),
        runtime_api_version: "v1".into(),
    })
}
