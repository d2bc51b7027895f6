//! The registry's two kinds of failure. [`OpenError`]: the data directory,
//! the metadata database or the htpasswd file cannot be used, so there is no
//! registry to serve. [`RequestError`]: one request fails; this is the only
//! place that decides what that looks like on the wire (the distribution
//! spec's error code, HTTP status and headers). Internal failures are logged
//! here with their whole cause chain and never leak their details to
//! clients. Depends only on leaf modules (`auth`'s htpasswd error, `storage`'s
//! error).

use std::path::PathBuf;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::HtpasswdError;
use crate::storage::StorageError;

/// Why a registry could not be opened over a data directory.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The data directory does not exist and cannot be created.
    #[error("cannot create the data directory {}", path.display())]
    DataDir {
        /// The data directory.
        path: PathBuf,
        /// Why it could not be created.
        #[source]
        source: std::io::Error,
    },
    /// The blob directories (`blobs/`, `uploads/`) cannot be prepared.
    #[error("cannot prepare the blob store")]
    Blobs(#[source] StorageError),
    /// The metadata database cannot be opened or its schema brought up to date.
    #[error("cannot open the metadata database {}", path.display())]
    Metadata {
        /// The database file (`registry.db`).
        path: PathBuf,
        /// What failed.
        #[source]
        source: StorageError,
    },
    /// The configured htpasswd file cannot be read or is not usable.
    #[error(transparent)]
    Htpasswd(#[from] HtpasswdError),
    /// The blocking task that opened the registry panicked or was cancelled.
    #[error("opening the registry did not finish")]
    Task(#[from] tokio::task::JoinError),
}

/// Why one request of the distribution API failed. Each variant is one of
/// the spec's error codes (see [`RequestError::status_and_code`]) or an
/// internal failure answered with `UNKNOWN` (500).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The blob is neither linked into the repository nor one of its manifests.
    #[error("blob {0} is not known to this repository")]
    BlobUnknown(String),
    /// An upload's chunk or body is malformed (bad `Content-Range`, a body
    /// shorter or longer than announced, a body that broke off).
    #[error("blob upload invalid: {0}")]
    BlobUploadInvalid(String),
    /// The upload session does not exist (completed, cancelled, expired, or
    /// its id is not a UUID).
    #[error(
        "upload session {0} is not known: it completed, was cancelled or expired; start a new upload"
    )]
    BlobUploadUnknown(String),
    /// A digest is malformed, missing, or not what the content hashes to.
    #[error("digest invalid: {0}")]
    DigestInvalid(String),
    /// A pushed manifest references a blob or child manifest the repository lacks.
    #[error(
        "manifest references {0}, which is not in this repository; push it before the manifest"
    )]
    ManifestBlobUnknown(String),
    /// A pushed manifest cannot be parsed or validated, or a reference is neither tag nor digest.
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    /// No manifest under this tag or digest in the repository.
    #[error("manifest {0} is not known to this repository")]
    ManifestUnknown(String),
    /// The repository name breaks the distribution spec's grammar.
    #[error(
        "invalid repository name {0:?}: use lowercase path components of letters, digits and single separators (. _ __ -), joined by '/'"
    )]
    NameInvalid(String),
    /// The repository holds nothing.
    #[error("repository {0} is not known")]
    NameUnknown(String),
    /// A pushed manifest is larger than the configured limit.
    #[error("manifest is larger than this registry's limit of {limit} bytes")]
    ManifestTooLarge {
        /// The limit in bytes (inclusive).
        limit: u64,
    },
    /// A chunk does not start where the upload session ends.
    #[error(
        "chunk starts at byte {start} but the upload holds {size} bytes; resume at byte {size}"
    )]
    ChunkOutOfOrder {
        /// The session's URL, sent back so the client can resume.
        location: String,
        /// Where the chunk said it starts.
        start: u64,
        /// How many bytes the session holds.
        size: u64,
    },
    /// A blob read's `Range` lies outside the blob.
    #[error("requested range lies outside the blob's {size} bytes")]
    RangeNotSatisfiable {
        /// The blob's size in bytes.
        size: u64,
    },
    /// Credentials are missing or wrong.
    #[error("authentication required: send valid credentials (HTTP basic auth)")]
    Unauthorized,
    /// The method is not offered on this endpoint, or the query string is malformed.
    #[error("{0}")]
    Unsupported(String),
    /// The `n` of a listing is not a non-negative integer.
    #[error("invalid page size: {0}")]
    PaginationNumberInvalid(String),
    /// The path is not an endpoint of the distribution API.
    #[error("no distribution API endpoint at {0}")]
    RouteUnknown(String),
    /// Storage failed underneath the request.
    #[error("storage failed")]
    Storage(#[from] StorageError),
    /// A blocking task the request waited for panicked or was cancelled.
    #[error("a background task did not finish")]
    Task(#[from] tokio::task::JoinError),
}

impl RequestError {
    /// The HTTP status and the spec's error code this failure is answered with.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            RequestError::BlobUnknown(_) => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
            RequestError::BlobUploadInvalid(_) => (StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID"),
            RequestError::BlobUploadUnknown(_) => (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
            RequestError::DigestInvalid(_) => (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
            RequestError::ManifestBlobUnknown(_) => {
                (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
            }
            RequestError::ManifestInvalid(_) => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
            RequestError::ManifestUnknown(_) => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
            RequestError::NameInvalid(_) => (StatusCode::BAD_REQUEST, "NAME_INVALID"),
            RequestError::NameUnknown(_) => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
            RequestError::ManifestTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID")
            }
            RequestError::ChunkOutOfOrder { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID")
            }
            RequestError::RangeNotSatisfiable { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UNKNOWN")
            }
            RequestError::Unauthorized => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            RequestError::Unsupported(_) => (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED"),
            RequestError::PaginationNumberInvalid(_) => {
                (StatusCode::BAD_REQUEST, "PAGINATION_NUMBER_INVALID")
            }
            RequestError::RouteUnknown(_) => (StatusCode::NOT_FOUND, "UNSUPPORTED"),
            RequestError::Storage(_) | RequestError::Task(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN")
            }
        }
    }
}

/// The `Range` header of an upload holding `size` bytes: `0-<last byte>`.
pub(crate) fn upload_range(size: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("0-{}", size.saturating_sub(1)))
        .expect("digits and '-' are a valid header value")
}

pub(crate) use oci::error_chain as chain;

impl IntoResponse for RequestError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = if status.is_server_error() {
            tracing::error!("request failed: {}", chain(&self));
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
            RequestError::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"drydock\""),
                );
            }
            RequestError::ChunkOutOfOrder { location, size, .. } => {
                if let Ok(value) = HeaderValue::from_str(location) {
                    headers.insert(header::LOCATION, value);
                }
                headers.insert(header::RANGE, upload_range(*size));
            }
            RequestError::RangeNotSatisfiable { size } => {
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert(header::CONTENT_RANGE, value);
                }
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_failures_keep_their_cause_out_of_the_message() {
        let error = RequestError::Storage(StorageError::Io {
            action: "remove blob file",
            path: "/data/blobs/x".into(),
            source: std::io::Error::other("disk on fire"),
        });
        assert_eq!(error.to_string(), "storage failed");
        assert_eq!(
            chain(&error),
            "storage failed: cannot remove blob file /data/blobs/x: disk on fire"
        );
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
