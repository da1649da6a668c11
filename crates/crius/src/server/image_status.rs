//! ImageStatus: an unknown image is an empty response, not an error.
use super::*;

/// The status of one image.
pub async fn handle(c: Arc<Crius>, r: cri::ImageStatusRequest) -> Result<cri::ImageStatusResponse> {
    let name = r.image.map(|s| s.image).unwrap_or_default();
    if name.is_empty() {
        return Err(Error::InvalidArgument("image.image is required".into()));
    }
    let Some(info) = c.be.images.status(&name).await? else {
        return Ok(cri::ImageStatusResponse::default());
    };
    let mut extra = std::collections::HashMap::new();
    if r.verbose {
        if let Ok(cfg) = c.be.images.config(&info.id).await {
            let v = serde_json::json!({ "id": info.id, "imageSpec": cfg });
            extra.insert("info".to_string(), v.to_string());
        }
    }
    Ok(cri::ImageStatusResponse {
        image: Some(super::list_images::cri_image(info)),
        info: extra,
    })
}
