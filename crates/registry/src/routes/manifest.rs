//! `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Call;
use crate::error::RequestError;
use crate::service::manifests::Reference;

fn header_value(text: &str) -> Result<HeaderValue, RequestError> {
    HeaderValue::from_str(text).map_err(|_| {
        RequestError::ManifestInvalid(format!("{text:?} cannot be sent as a header value"))
    })
}

pub async fn get(
    call: Call,
    name: &str,
    reference: &Reference,
    with_body: bool,
) -> Result<Response, RequestError> {
    let manifest = call.services.manifests.get(name, reference).await?;
    let headers = [
        (header::CONTENT_TYPE, header_value(&manifest.media_type)?),
        (
            header::CONTENT_LENGTH,
            HeaderValue::from(manifest.content.len()),
        ),
        (
            HeaderName::from_static("docker-content-digest"),
            header_value(&manifest.digest)?,
        ),
    ];
    let body = if with_body {
        Body::from(manifest.content)
    } else {
        Body::empty()
    };
    Ok((StatusCode::OK, headers, body).into_response())
}

pub async fn put(call: Call, name: &str, reference: Reference) -> Result<Response, RequestError> {
    let content_type = call.header(header::CONTENT_TYPE).map(str::to_string);
    let pushed = call
        .services
        .manifests
        .put(name, reference, content_type.as_deref(), call.body)
        .await?;
    let digest = pushed.digest.to_string();
    let mut response = (
        StatusCode::CREATED,
        [
            (
                header::LOCATION,
                header_value(&format!("/v2/{name}/manifests/{digest}"))?,
            ),
            (
                HeaderName::from_static("docker-content-digest"),
                header_value(&digest)?,
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(0)),
        ],
    )
        .into_response();
    if let Some(subject) = pushed.subject {
        response.headers_mut().insert(
            HeaderName::from_static("oci-subject"),
            header_value(&subject.to_string())?,
        );
    }
    Ok(response)
}

pub async fn delete(
    call: Call,
    name: &str,
    reference: &Reference,
) -> Result<Response, RequestError> {
    call.services.manifests.delete(name, reference).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
