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

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, Method, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use crate::Registry;
use crate::error::Error;
use path::Endpoint;

pub fn router(registry: Registry) -> Router {
    Router::new()
        .route("/v2", any(dispatch))
        .route("/v2/", any(dispatch))
        .route("/v2/{*path}", any(dispatch))
        .layer(middleware::from_fn_with_state(
            registry.clone(),
            authenticate,
        ))
        .layer(middleware::map_response(announce_api_version))
        .with_state(registry)
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

/// The `Range` header of an upload holding `size` bytes: `0-<last byte>`.
pub fn upload_range(size: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("0-{}", size.saturating_sub(1)))
        .expect("digits and '-' are a valid header value")
}

/// The htpasswd check every `/v2/` request passes first (and, through
/// [`Registry::protect`], the routes other crates serve beside the registry).
pub(crate) async fn authenticate(
    State(registry): State<Registry>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(authenticator) = &registry.inner.authenticator
        && let Err(e) = authenticator
            .authorize(request.method(), request.headers())
            .await
    {
        return e.into_response();
    }
    next.run(request).await
}

/// A request taken apart for the handlers.
pub struct Call {
    pub registry: Registry,
    pub parts: Parts,
    pub query: HashMap<String, String>,
    pub body: Body,
}

impl Call {
    pub fn header(&self, name: axum::http::HeaderName) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn dispatch(State(registry): State<Registry>, request: Request) -> Response {
    match route(registry, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn route(registry: Registry, request: Request) -> Result<Response, Error> {
    let (parts, body) = request.into_parts();
    let endpoint = path::parse(parts.uri.path())?;
    let Query(query) = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .map_err(|e| Error::Unsupported(format!("malformed query string: {e}")))?;
    let method = parts.method.clone();
    let call = Call {
        registry,
        parts,
        query,
        body,
    };
    let unsupported = || Error::Unsupported(format!("{method} is not supported on this endpoint"));
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
