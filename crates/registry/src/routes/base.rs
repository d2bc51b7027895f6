//! `GET /v2/`: the API version check clients probe first.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub fn check() -> Response {
    (
        StatusCode::OK,
        [(
            "Docker-Distribution-API-Version",
            HeaderValue::from_static("registry/2.0"),
        )],
        axum::Json(serde_json::json!({})),
    )
        .into_response()
}
