//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`: blob reads (streamed,
//! with single byte ranges) and unlinking.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oci::Digest;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::Call;
use super::headers::{ByteRange, resolve_range};
use crate::error::RequestError;
use crate::service::blobs::BlobContent;
use crate::storage::StorageError;

/// Bytes read from disk per chunk of a blob response.
const READ_CHUNK_BYTES: usize = 256 * 1024;

fn blob_headers(digest: &Digest, length: u64) -> [(header::HeaderName, HeaderValue); 4] {
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        ),
        (header::CONTENT_LENGTH, HeaderValue::from(length)),
        (
            header::HeaderName::from_static("docker-content-digest"),
            HeaderValue::from_str(&digest.to_string()).expect("digests are valid header values"),
        ),
        (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
    ]
}

pub async fn head(call: Call, name: &str, digest: &Digest) -> Result<Response, RequestError> {
    let size = call.services.blobs.size(name, digest).await?;
    Ok((StatusCode::OK, blob_headers(digest, size)).into_response())
}

pub async fn get(call: Call, name: &str, digest: &Digest) -> Result<Response, RequestError> {
    let content = call.services.blobs.open(name, digest).await?;
    let size = content.size();
    let (status, start, length) = match resolve_range(call.header(header::RANGE), size) {
        ByteRange::Whole => (StatusCode::OK, 0, size),
        ByteRange::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        ByteRange::Unsatisfiable => return Err(RequestError::RangeNotSatisfiable { size }),
    };
    let body = match content {
        BlobContent::File { mut file, path, .. } => {
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(StorageError::io("seek in blob file", path))?;
            Body::from_stream(ReaderStream::with_capacity(
                file.take(length),
                READ_CHUNK_BYTES,
            ))
        }
        BlobContent::Manifest(bytes) => {
            Body::from(bytes.slice(start as usize..(start + length) as usize))
        }
    };
    let mut response = (status, blob_headers(digest, length), body).into_response();
    if status == StatusCode::PARTIAL_CONTENT {
        let range = format!("bytes {start}-{}/{size}", start + length - 1);
        response.headers_mut().insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&range).expect("digits are valid header values"),
        );
    }
    Ok(response)
}

pub async fn delete(call: Call, name: &str, digest: &Digest) -> Result<Response, RequestError> {
    call.services.blobs.delete(name, digest).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
