//! RemoveImage: removing an unknown image succeeds.
use super::*;

/// Removes an image.
pub async fn handle(c: Arc<Crius>, r: cri::RemoveImageRequest) -> Result<cri::RemoveImageResponse> {
    let name = r.image.map(|s| s.image).unwrap_or_default();
    if name.is_empty() {
        return Err(Error::InvalidArgument("image.image is required".into()));
    }
    match c.be.images.remove(&name).await {
        Ok(()) | Err(Error::NotFound(_)) => Ok(cri::RemoveImageResponse {}),
        Err(e) => Err(e),
    }
}
