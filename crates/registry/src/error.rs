//! The registry's one error type and its mapping to the distribution spec's
//! error codes, HTTP statuses and headers. This is the only place that decides
//! what a failure looks like on the wire; internal failures are logged here
//! and never leak their details to clients.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::HtpasswdError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("blob {0} is not known to this repository")]
    BlobUnknown(String),
    #[error("blob upload invalid: {0}")]
    BlobUploadInvalid(String),
    #[error(
        "upload session {0} is not known: it completed, was cancelled or expired; start a new upload"
    )]
    BlobUploadUnknown(String),
    #[error("digest invalid: {0}")]
    DigestInvalid(String),
    #[error(
        "manifest references {0}, which is not in this repository; push it before the manifest"
    )]
    ManifestBlobUnknown(String),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest {0} is not known to this repository")]
    ManifestUnknown(String),
    #[error(
        "invalid repository name {0:?}: use lowercase path components of letters, digits and single separators (. _ __ -), joined by '/'"
    )]
    NameInvalid(String),
    #[error("repository {0} is not known")]
    NameUnknown(String),
    #[error("size invalid: {0}")]
    SizeInvalid(String),
    #[error("manifest is larger than this registry's limit of {limit} bytes")]
    ManifestTooLarge { limit: u64 },
    #[error(
        "chunk starts at byte {start} but the upload holds {size} bytes; resume at byte {size}"
    )]
    ChunkOutOfOrder {
        location: String,
        start: u64,
        size: u64,
    },
    #[error("requested range lies outside the blob's {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("authentication required: send valid credentials (HTTP basic auth)")]
    Unauthorized,
    #[error("{0}")]
    Unsupported(String),
    #[error("invalid page size: {0}")]
    PaginationNumberInvalid(String),
    #[error("no distribution API endpoint at {0}")]
    RouteUnknown(String),
    #[error(transparent)]
    Htpasswd(#[from] HtpasswdError),
    #[error("storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata store failed: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl Error {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::BlobUnknown(_) => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
            Error::BlobUploadInvalid(_) => (StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID"),
            Error::BlobUploadUnknown(_) => (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
            Error::DigestInvalid(_) => (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
            Error::ManifestBlobUnknown(_) => (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"),
            Error::ManifestInvalid(_) => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
            Error::ManifestUnknown(_) => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
            Error::NameInvalid(_) => (StatusCode::BAD_REQUEST, "NAME_INVALID"),
            Error::NameUnknown(_) => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
            Error::SizeInvalid(_) => (StatusCode::BAD_REQUEST, "SIZE_INVALID"),
            Error::ManifestTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID"),
            Error::ChunkOutOfOrder { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID")
            }
            Error::RangeNotSatisfiable { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UNKNOWN")
            }
            Error::Unauthorized => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            Error::Unsupported(_) => (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED"),
            Error::PaginationNumberInvalid(_) => {
                (StatusCode::BAD_REQUEST, "PAGINATION_NUMBER_INVALID")
            }
            Error::RouteUnknown(_) => (StatusCode::NOT_FOUND, "UNSUPPORTED"),
            Error::Htpasswd(_) | Error::Io(_) | Error::Database(_) | Error::Task(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN")
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = if status.is_server_error() {
            tracing::error!("request failed: {self}");
            "internal server error; see the registry's log".to_string()
        } else {
            tracing::debug!("request rejected: {self}");
            self.to_string()
        };
        let body = serde_json::json!({
            "errors": [{"code": code, "message": message, "detail": null}]
        });
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            Error::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"drydock\""),
                );
            }
            Error::ChunkOutOfOrder { location, size, .. } => {
                if let Ok(value) = HeaderValue::from_str(location) {
                    headers.insert(header::LOCATION, value);
                }
                headers.insert(header::RANGE, crate::routes::upload_range(*size));
            }
            Error::RangeNotSatisfiable { size } => {
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert(header::CONTENT_RANGE, value);
                }
            }
            _ => {}
        }
        response
    }
}
