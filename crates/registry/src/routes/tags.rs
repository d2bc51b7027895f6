//! `GET /v2/<name>/tags/list` and `GET /v2/_catalog`, both paged with `n`/`last`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Call;
use super::pagination::PageRequest;
use crate::error::RequestError;

fn with_link(body: serde_json::Value, link: Option<String>) -> Response {
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    if let Some(value) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

pub async fn list(call: Call, name: &str) -> Result<Response, RequestError> {
    let page = PageRequest::from_query(&call.query)?;
    let fetched = call
        .services
        .manifests
        .tags(name, &page.last, page.fetch_limit())
        .await?;
    let (tags, link) = page.page(fetched, &format!("/v2/{name}/tags/list"));
    Ok(with_link(
        serde_json::json!({"name": name, "tags": tags}),
        link,
    ))
}

pub async fn catalog(call: Call) -> Result<Response, RequestError> {
    let page = PageRequest::from_query(&call.query)?;
    let fetched = call
        .services
        .manifests
        .repositories(&page.last, page.fetch_limit())
        .await?;
    let (repositories, link) = page.page(fetched, "/v2/_catalog");
    Ok(with_link(
        serde_json::json!({"repositories": repositories}),
        link,
    ))
}
