//! `/v2/<name>/blobs/uploads/…`: starting uploads (sessions, monolithic
//! `?digest=` pushes and cross-repository mounts), appending chunks, reading
//! a session's progress, completing and cancelling it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oci::Digest;
use uuid::Uuid;

use super::Call;
use super::headers::parse_content_range;
use super::path::parse_digest;
use crate::error::{RequestError, upload_range};
use crate::service::uploads::ChunkRange;

fn session_location(name: &str, id: Uuid) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("names, digests and uuids are valid header values")
}

/// 202 with where and how far a session is.
fn accepted(name: &str, id: Uuid, size: u64) -> Response {
    (
        StatusCode::ACCEPTED,
        [
            (header::LOCATION, header_value(&session_location(name, id))),
            (header::RANGE, upload_range(size)),
            (
                header::HeaderName::from_static("docker-upload-uuid"),
                header_value(&id.to_string()),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(0)),
        ],
    )
        .into_response()
}

/// 201 pointing at the finished blob.
fn created(name: &str, digest: &Digest) -> Response {
    (
        StatusCode::CREATED,
        [
            (
                header::LOCATION,
                header_value(&format!("/v2/{name}/blobs/{digest}")),
            ),
            (
                header::HeaderName::from_static("docker-content-digest"),
                header_value(&digest.to_string()),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(0)),
        ],
    )
        .into_response()
}

fn query_digest(call: &Call) -> Result<Option<Digest>, RequestError> {
    call.query
        .get("digest")
        .map(|d| parse_digest(d))
        .transpose()
}

fn chunk_range(call: &Call) -> Result<Option<ChunkRange>, RequestError> {
    match call.header(header::CONTENT_RANGE) {
        None => Ok(None),
        Some(value) => parse_content_range(value).map(Some).ok_or_else(|| {
            RequestError::BlobUploadInvalid(format!(
                "Content-Range {value:?} is not of the form <start>-<end>"
            ))
        }),
    }
}

/// `POST /v2/<name>/blobs/uploads/`, with `?mount=&from=` or `?digest=` or neither.
pub async fn start(call: Call, name: &str) -> Result<Response, RequestError> {
    let services = call.services.clone();
    if let (Some(mount), Some(from)) = (call.query.get("mount"), call.query.get("from")) {
        let digest = parse_digest(mount)?;
        if oci::reference::is_valid_repository_name(from)
            && services.blobs.mount(from, name, &digest).await?.is_some()
        {
            return Ok(created(name, &digest));
        }
    }
    let id = services.uploads.start().await?;
    match query_digest(&call)? {
        Some(digest) => {
            let location = session_location(name, id);
            let outcome = services
                .uploads
                .complete(id, name, &digest, (None, call.body), &location)
                .await;
            if outcome.is_err() {
                // A failed monolithic push leaves nothing behind.
                let _ = services.uploads.discard(id).await;
            }
            outcome.map(|_| created(name, &digest))
        }
        None => Ok(accepted(name, id, 0)),
    }
}

/// `PATCH /v2/<name>/blobs/uploads/<id>`: a chunk, streamed or with `Content-Range`.
pub async fn patch(call: Call, name: &str, id: Uuid) -> Result<Response, RequestError> {
    let range = chunk_range(&call)?;
    let location = session_location(name, id);
    let size = call
        .services
        .uploads
        .append(id, range, call.body, &location)
        .await?;
    Ok(accepted(name, id, size))
}

/// `GET /v2/<name>/blobs/uploads/<id>`: how much has arrived.
pub async fn status(call: Call, name: &str, id: Uuid) -> Result<Response, RequestError> {
    let size = call.services.uploads.size(id).await?;
    let mut response = accepted(name, id, size);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response.headers_mut().remove(header::CONTENT_LENGTH);
    Ok(response)
}

/// `PUT /v2/<name>/blobs/uploads/<id>?digest=`: optional last chunk, then verify and store.
pub async fn finish(call: Call, name: &str, id: Uuid) -> Result<Response, RequestError> {
    let digest = query_digest(&call)?.ok_or_else(|| {
        RequestError::DigestInvalid(
            "the digest query parameter is required to complete an upload".into(),
        )
    })?;
    let range = chunk_range(&call)?;
    let location = session_location(name, id);
    call.services
        .uploads
        .complete(id, name, &digest, (range, call.body), &location)
        .await?;
    Ok(created(name, &digest))
}

/// `DELETE /v2/<name>/blobs/uploads/<id>`.
pub async fn cancel(call: Call, id: Uuid) -> Result<Response, RequestError> {
    call.services.uploads.discard(id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
