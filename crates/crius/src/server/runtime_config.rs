//! RuntimeConfig.
use super::*;

/// The cgroup driver: cgroupfs.
pub async fn handle(
    _c: Arc<Crius>,
    _r: cri::RuntimeConfigRequest,
) -> Result<cri::RuntimeConfigResponse> {
    Ok(cri::RuntimeConfigResponse {
        linux: Some(cri::LinuxRuntimeConfiguration {
            cgroup_driver: cri::CgroupDriver::Cgroupfs as i32,
        }),
    })
}
