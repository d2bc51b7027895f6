//! `GET /v2/<name>/referrers/<digest>[?artifactType=…]`: never 404, an empty
//! index when nothing refers to the digest.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oci::{Digest, media_type};

use super::Call;
use crate::error::RequestError;

pub async fn list(call: Call, name: &str, digest: &Digest) -> Result<Response, RequestError> {
    let artifact_type = call.query.get("artifactType").filter(|a| !a.is_empty());
    let index = call
        .services
        .manifests
        .referrers(name, digest, artifact_type.map(String::as_str))
        .await?;
    let mut response = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(media_type::OCI_INDEX),
        )],
        index,
    )
        .into_response();
    if artifact_type.is_some() {
        response.headers_mut().insert(
            HeaderName::from_static("oci-filters-applied"),
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(response)
}
