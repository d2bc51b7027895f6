//! The HTTP surface of the distribution API. Every `/v2/…` request goes
//! through authentication, then [`path::parse`] picks the endpoint and one
//! handler per endpoint family (`base`, `blob`, `blob_upload`, `manifest`,
//! `referrers`, `tags`) turns headers and bodies into service calls and
//! service results into spec responses. Handlers hold no logic of their own
//! beyond that translation, and every failure leaves as a spec error body.

mod base;
mod blob;
mod blob_upload;
mod headers;
mod manifest;
mod pagination;
mod path;
mod referrers;
mod tags;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, Method, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use tower_http::LatencyUnit;
use tower_http::trace::{DefaultOnRequest, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::auth::Authenticator;
use crate::error::RequestError;
use crate::service::Services;
use path::Endpoint;

/// Who may use the routes: `None` lets every request pass.
pub type Gate = Option<Arc<Authenticator>>;

/// The distribution API (`/v2/…`) over `services`, behind `gate`, every
/// request traced.
pub fn router(services: Arc<Services>, gate: Gate) -> Router {
    Router::new()
        .route("/v2", any(dispatch))
        .route("/v2/", any(dispatch))
        .route("/v2/{*path}", any(dispatch))
        .layer(middleware::from_fn_with_state(gate, authenticate))
        .layer(middleware::map_response(announce_api_version))
        .layer(
            // One span per request (method and path, never the query or the
            // headers), a DEBUG event when it arrives and an INFO event with
            // the status and latency when its response starts.
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                    )
                })
                .on_request(DefaultOnRequest::new().level(Level::DEBUG))
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(LatencyUnit::Millis),
                )
                .on_failure(()),
        )
        .with_state(services)
}

/// Puts `router` behind `gate`, as `Registry::protect` offers other crates.
pub fn protect(router: Router, gate: Gate) -> Router {
    router.layer(middleware::from_fn_with_state(gate, authenticate))
}

/// Every answer, errors and auth challenges included, says which API it speaks,
/// as Docker clients check on `/v2/` and Distribution does everywhere.
async fn announce_api_version(mut response: Response) -> Response {
    response.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

/// The htpasswd check every `/v2/` request passes first (and, through
/// [`protect`], the routes other crates serve beside the registry).
async fn authenticate(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    if let Some(authenticator) = &gate {
        match authenticator
            .authorize(request.method(), request.headers())
            .await
        {
            Ok(true) => {}
            Ok(false) => return RequestError::Unauthorized.into_response(),
            Err(e) => return RequestError::Task(e).into_response(),
        }
    }
    next.run(request).await
}

/// A request taken apart for the handlers.
pub struct Call {
    /// The registry's services.
    pub services: Arc<Services>,
    /// Method, URI and headers.
    pub parts: Parts,
    /// The query string's parameters.
    pub query: HashMap<String, String>,
    /// The body, unread.
    pub body: Body,
}

impl Call {
    /// A header's value, when present and visible ASCII.
    pub fn header(&self, name: axum::http::HeaderName) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn dispatch(State(services): State<Arc<Services>>, request: Request) -> Response {
    match route(services, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn route(services: Arc<Services>, request: Request) -> Result<Response, RequestError> {
    let (parts, body) = request.into_parts();
    let endpoint = path::parse(parts.uri.path())?;
    let Query(query) = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .map_err(|e| RequestError::Unsupported(format!("malformed query string: {e}")))?;
    let method = parts.method.clone();
    let call = Call {
        services,
        parts,
        query,
        body,
    };
    let unsupported =
        || RequestError::Unsupported(format!("{method} is not supported on this endpoint"));
    match endpoint {
        Endpoint::Base => match method {
            Method::GET | Method::HEAD => Ok(base::check()),
            _ => Err(unsupported()),
        },
        Endpoint::Catalog => match method {
            Method::GET => tags::catalog(call).await,
            _ => Err(unsupported()),
        },
        Endpoint::Tags { name } => match method {
            Method::GET => tags::list(call, &name).await,
            _ => Err(unsupported()),
        },
        Endpoint::Manifest { name, reference } => match method {
            Method::GET => manifest::get(call, &name, &reference, true).await,
            Method::HEAD => manifest::get(call, &name, &reference, false).await,
            Method::PUT => manifest::put(call, &name, reference).await,
            Method::DELETE => manifest::delete(call, &name, &reference).await,
            _ => Err(unsupported()),
        },
        Endpoint::Blob { name, digest } => match method {
            Method::GET => blob::get(call, &name, &digest).await,
            Method::HEAD => blob::head(call, &name, &digest).await,
            Method::DELETE => blob::delete(call, &name, &digest).await,
            _ => Err(unsupported()),
        },
        Endpoint::UploadStart { name } => match method {
            Method::POST => blob_upload::start(call, &name).await,
            _ => Err(unsupported()),
        },
        Endpoint::Upload { name, id } => match method {
            Method::GET => blob_upload::status(call, &name, id).await,
            Method::PATCH => blob_upload::patch(call, &name, id).await,
            Method::PUT => blob_upload::finish(call, &name, id).await,
            Method::DELETE => blob_upload::cancel(call, id).await,
            _ => Err(unsupported()),
        },
        Endpoint::Referrers { name, digest } => match method {
            Method::GET => referrers::list(call, &name, &digest).await,
            _ => Err(unsupported()),
        },
    }
}
