//! ListImages.
use super::*;

/// The CRI view of an image.
pub fn cri_image(i: crate::backend::ImageInfo) -> cri::Image {
    cri::Image {
        spec: Some(cri::ImageSpec {
            image: i.id.clone(),
            ..Default::default()
        }),
        id: i.id,
        repo_tags: i.repo_tags,
        repo_digests: i.repo_digests,
        size: i.size,
        uid: i.uid.map(|value| cri::Int64Value { value }),
        username: i.username,
        pinned: i.pinned,
    }
}

/// Images, optionally only the one the filter names.
pub async fn handle(c: Arc<Crius>, r: cri::ListImagesRequest) -> Result<cri::ListImagesResponse> {
    let want = r
        .filter
        .and_then(|f| f.image)
        .map(|s| s.image)
        .filter(|s| !s.is_empty());
    let images = match want {
        Some(name) => c.be.images.status(&name).await?.into_iter().collect(),
        None => c.be.images.list().await?,
    };
    Ok(cri::ListImagesResponse {
        images: images.into_iter().map(cri_image).collect(),
    })
}
