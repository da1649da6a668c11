//! ImageFsInfo.
use super::*;

/// Usage of the image filesystem.
pub async fn handle(
    c: Arc<Crius>,
    _r: cri::ImageFsInfoRequest,
) -> Result<cri::ImageFsInfoResponse> {
    let u = c.be.images.fs_info().await?;
    let usage = cri::FilesystemUsage {
        timestamp: crate::state::now_ns(),
        fs_id: Some(cri::FilesystemIdentifier {
            mountpoint: u.mountpoint,
        }),
        used_bytes: Some(cri::UInt64Value {
            value: u.used_bytes,
        }),
        inodes_used: Some(cri::UInt64Value {
            value: u.inodes_used,
        }),
    };
    Ok(cri::ImageFsInfoResponse {
        image_filesystems: vec![usage.clone()],
        container_filesystems: vec![usage],
    })
}
