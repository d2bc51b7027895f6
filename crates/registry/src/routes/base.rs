//! `GET /v2/`: the API version check clients probe first. The version
//! header itself is added to every response by the router.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub fn check() -> Response {
    (StatusCode::OK, axum::Json(serde_json::json!({}))).into_response()
}
