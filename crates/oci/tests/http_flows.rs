//! Client flows over real HTTP against small in-process endpoints: the
//! bearer-token handshake (a 401 with a `WWW-Authenticate: Bearer`
//! challenge, a token service that checks basic credentials) and `Link`
//! paging of tag lists.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use oci::{ClientOptions, Credentials, ImageReference, RegistryClient};

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

#[derive(Default)]
struct Seen {
    token_requests: Vec<Vec<(String, String)>>,
}

type Shared = Arc<Mutex<(String, Seen)>>;

async fn token(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let mut guard = state.lock().unwrap();
    guard.1.token_requests.push(query);
    // alice:s3cret
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some("Basic YWxpY2U6czNjcmV0")
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    axum::Json(serde_json::json!({"token": "granted", "expires_in": 300})).into_response()
}

async fn manifest(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let realm = state.lock().unwrap().0.clone();
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some("Bearer granted")
    {
        let challenge = format!(
            r#"Bearer realm="{realm}",service="test-registry",scope="repository:team/app:pull""#
        );
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, challenge)],
        )
            .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/vnd.oci.image.manifest.v1+json",
        )],
        MANIFEST,
    )
        .into_response()
}

/// Tags served two per page, with `Link` to the next page, like Distribution with `n=2`.
async fn paged_tags(axum::extract::RawQuery(query): axum::extract::RawQuery) -> Response {
    let all = ["a", "b", "c", "d", "e"];
    let last = query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("last=")))
        .map(str::to_string);
    let start = last.map_or(0, |l| {
        all.iter()
            .position(|t| *t == l)
            .map_or(all.len(), |i| i + 1)
    });
    let page: Vec<&str> = all.iter().skip(start).take(2).copied().collect();
    let body = axum::Json(serde_json::json!({"name": "team/app", "tags": page}));
    match page.last() {
        Some(last) if start + page.len() < all.len() => {
            let link = format!(r#"</v2/team/app/tags/list?n=2&last={last}>; rel="next""#);
            ([(header::LINK, link)], body).into_response()
        }
        _ => body.into_response(),
    }
}

async fn serve() -> (String, Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let state: Shared = Arc::new(Mutex::new((
        format!("http://{address}/token"),
        Seen::default(),
    )));
    let app = Router::new()
        .route("/token", get(token))
        .route("/v2/team/app/manifests/{reference}", get(manifest))
        .route("/v2/team/app/tags/list", get(paged_tags))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (address, state)
}

#[tokio::test]
async fn fetches_and_caches_a_bearer_token() {
    let (address, state) = serve().await;
    let image: ImageReference = format!("{address}/team/app:v1").parse().unwrap();
    let client = RegistryClient::new(ClientOptions {
        credentials: Credentials::parse("alice:s3cret"),
        ..Default::default()
    })
    .unwrap();
    let fetched = client.get_manifest(&image).await.unwrap();
    assert_eq!(fetched.bytes.as_ref(), MANIFEST.as_bytes());
    assert_eq!(fetched.digest, oci::Digest::sha256_of(MANIFEST.as_bytes()));
    client.get_manifest(&image).await.unwrap();

    let seen = &state.lock().unwrap().1;
    assert_eq!(
        seen.token_requests.len(),
        1,
        "the token is cached for the second request"
    );
    let query = &seen.token_requests[0];
    assert!(query.contains(&("service".into(), "test-registry".into())));
    assert!(query.contains(&("scope".into(), "repository:team/app:pull".into())));
}

#[tokio::test]
async fn reports_refused_credentials_clearly() {
    let (address, _) = serve().await;
    let image: ImageReference = format!("{address}/team/app:v1").parse().unwrap();
    let client = RegistryClient::new(ClientOptions {
        credentials: Credentials::parse("alice:wrong"),
        ..Default::default()
    })
    .unwrap();
    let error = client.get_manifest(&image).await.unwrap_err();
    assert!(
        matches!(
            &error,
            oci::Error::Auth {
                reason: oci::AuthError::TokenRefused {
                    with_credentials: true,
                    ..
                },
                ..
            }
        ),
        "{error:?}"
    );
    // As the binary prints it: the error and its causes.
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(e) = cause {
        text = format!("{text}: {e}");
        cause = e.source();
    }
    assert!(
        text.contains("authentication with") && text.contains("check the credentials"),
        "{text}"
    );
}

#[tokio::test]
async fn follows_link_pages_of_tags() {
    let (address, _) = serve().await;
    let image: ImageReference = format!("{address}/team/app").parse().unwrap();
    let client = RegistryClient::new(ClientOptions::default()).unwrap();
    assert_eq!(
        client.list_tags(&image).await.unwrap(),
        ["a", "b", "c", "d", "e"]
    );
}
