//! Attachments: the device's resumable upload (CBOR, next to push and pull) and the
//! coordinator's list and download of a response's files.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use fieldsync_protocol::api::MediaInfo;
use fieldsync_protocol::media::{MediaChunk, MediaOffer, MediaStatus};

use super::Cbor;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, CborError};
use crate::service::media;

/// `POST /v1/sync/media/offer`: what the server holds of a file a device is about to send.
pub async fn offer(
    State(state): State<AppState>,
    caller: Caller,
    Cbor(req): Cbor<MediaOffer>,
) -> Result<Cbor<MediaStatus>, CborError> {
    let status = media::offer(&state.db, &state.keys, &caller, req).await?;
    Ok(Cbor(status))
}

/// `POST /v1/sync/media/chunk`: the next chunk of an offered file.
pub async fn chunk(
    State(state): State<AppState>,
    caller: Caller,
    Cbor(req): Cbor<MediaChunk>,
) -> Result<Cbor<MediaStatus>, CborError> {
    let status = media::chunk(&state.db, &state.keys, &caller, req).await?;
    Ok(Cbor(status))
}

/// `GET /v1/responses/{id}/media`: a response's files.
#[utoipa::path(
    get,
    path = "/v1/responses/{id}/media",
    operation_id = "list_media",
    tag = "media",
    summary = "List a response's files (photos, recordings)",
    description = "For admins, coordinators, ops and support staff, on the same terms as \
        reading the response itself.",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The response's id")),
    responses(
        (status = 200, description = "The response's files, those still arriving included",
            body = Vec<MediaInfo>),
        (status = 403, description = "An enumerator device cannot read files, or the response \
            is restricted and the caller is not an admin"),
        (status = 404, description = "No such response visible to the caller"),
        (status = 422, description = "The response is stored but cannot be read"),
        (status = 503, description = "The response was received and is still being processed"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<MediaInfo>>, ApiError> {
    Ok(Json(media::list(&state.db, &caller, &id).await?))
}

/// `GET /v1/responses/{id}/media/{name}`: one file, decrypted chunk by chunk as the client
/// reads it (like an export, it holds an export slot while it streams).
#[utoipa::path(
    get,
    path = "/v1/responses/{id}/media/{name}",
    operation_id = "download_media",
    tag = "media",
    summary = "Download one file of a response, decrypted",
    description = "For admins, coordinators, ops and support staff, on the same terms as \
        reading the response itself. The body streams with the file's own media type \
        (`media_type` of the listing) and its length.",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "The response's id"),
        ("name" = String, Path, description = "The file's attachment name, as listed"),
    ),
    responses(
        (status = 200, description = "The file, streamed",
            headers(("content-length" = u64, description = "The file's size in bytes")),
            content(("application/octet-stream"))),
        (status = 403, description = "An enumerator device cannot read files, or the response \
            is restricted and the caller is not an admin"),
        (status = 404, description = "No such response visible to the caller, or no such file"),
        (status = 422, description = "The response is stored but cannot be read"),
        (status = 503, description = "The file is still being uploaded, the response is still \
            being processed, or the most exports and downloads the server runs at once are \
            running"),
    )
)]
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let reader = media::open(&state.db, &state.keys, &caller, &id, &name).await?;
    let Some(permit) = super::responses::export_permit(&state).await else {
        return Err(ApiError::Unavailable(format!(
            "{} exports and downloads are already running; retry in a minute",
            state.settings.max_exports
        )));
    };
    let size = reader.row.size;
    let media_type = HeaderValue::from_str(&reader.row.media_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let stream = futures_util::stream::unfold(Some((reader, permit)), |state| async move {
        let (mut reader, permit) = state?;
        match reader.next_chunk().await {
            Ok(Some(bytes)) => Some((Ok(bytes), Some((reader, permit)))),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "download failed");
                Some((Err(std::io::Error::other("download failed")), None))
            }
        }
    });
    let mut resp = Body::from_stream(stream).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, media_type);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    Ok(resp)
}
