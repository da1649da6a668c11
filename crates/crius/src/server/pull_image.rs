//! PullImage.
use super::*;

/// Pulls an image (through the configured mirrors) and returns its ref.
pub async fn handle(c: Arc<Crius>, r: cri::PullImageRequest) -> Result<cri::PullImageResponse> {
    let name = r.image.map(|s| s.image).unwrap_or_default();
    if name.is_empty() {
        return Err(Error::InvalidArgument("image.image is required".into()));
    }
    let auth = r.auth.map(|a| crate::backend::Auth {
        username: a.username,
        password: a.password,
        auth: a.auth,
        identity_token: a.identity_token,
        registry_token: a.registry_token,
    });
    let image_ref = c.be.images.pull(&name, auth).await?;
    tracing::info!(image = %name, %image_ref, "pulled");
    Ok(cri::PullImageResponse { image_ref })
}
