//! StreamImages: ListImages's result sent as a stream of chunks (KEP-5825, CRIListStreaming).
use super::*;

/// The ListImages result in chunks of at most [`STREAM_CHUNK`] items.
pub async fn handle(
    c: Arc<Crius>,
    r: cri::StreamImagesRequest,
) -> Result<Vec<cri::StreamImagesResponse>> {
    let all = list_images::handle(c, cri::ListImagesRequest { filter: r.filter }).await?;
    Ok(chunks(all.images, |images| cri::StreamImagesResponse {
        images,
    }))
}
