//! `Fetcher` against a local HTTP server (axum on 127.0.0.1) serving the
//! fixtures under mirror base URLs, the way `drydock db update --mirror` uses it.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use advisory::{Error, Fetcher, Source, Store};
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use support::{osv_zip, read_fixture};

type Files = Arc<HashMap<String, Vec<u8>>>;

async fn serve(State(files): State<Files>, uri: Uri) -> Result<Vec<u8>, StatusCode> {
    files.get(uri.path()).cloned().ok_or(StatusCode::NOT_FOUND)
}

/// Serves `files` (path → body); returns the base URL.
async fn server(files: Vec<(&str, Vec<u8>)>) -> String {
    let files: Files = Arc::new(files.into_iter().map(|(p, b)| (p.to_string(), b)).collect());
    let app = axum::Router::new().fallback(serve).with_state(files);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

fn http() -> reqwest::Client {
    oci::client::http_client_builder().build().unwrap()
}

fn mirrors(base: &str) -> BTreeMap<Source, String> {
    BTreeMap::from([
        (Source::Tracker, format!("{base}/tracker")),
        (Source::OsvDebian, format!("{base}/osv")),
        (Source::OsvUbuntu, format!("{base}/osv")),
        (Source::OsvAlpine, format!("{base}/osv/")),
        (Source::Secdb, format!("{base}/secdb")),
    ])
}

#[tokio::test]
async fn every_source_fetches_from_its_mirror() {
    let base = server(vec![
        ("/tracker/data/json", read_fixture("tracker.json")),
        ("/osv/Debian/all.zip", osv_zip(&["osv/debian"])),
        ("/osv/Ubuntu/all.zip", osv_zip(&["osv/ubuntu"])),
        ("/osv/Alpine/all.zip", osv_zip(&["osv/alpine"])),
        (
            "/secdb/v3.20/main.json",
            read_fixture("secdb/v3.20-main.json"),
        ),
        (
            "/secdb/v3.20/community.json",
            read_fixture("secdb/v3.20-community.json"),
        ),
    ])
    .await;
    let scratch = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(http(), mirrors(&base), vec!["3.20".into()], scratch.path());
    let received = AtomicU64::new(0);
    let progress = |_: &str, bytes: u64, _: Option<u64>| {
        received.fetch_max(bytes, Ordering::Relaxed);
    };
    let mut loaded = Vec::new();
    for source in Source::ALL {
        loaded.extend(fetcher.fetch(source, &progress).await.unwrap());
    }
    let summary: Vec<(&str, &str, usize)> = loaded
        .iter()
        .map(|l| {
            (
                l.source.name.as_str(),
                l.source.location.strip_prefix(&base).unwrap(),
                l.advisories.len(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("debian-tracker", "/tracker/data/json", 14),
            ("osv-debian", "/osv/Debian/all.zip", 6),
            ("osv-ubuntu", "/osv/Ubuntu/all.zip", 4),
            ("osv-alpine", "/osv/Alpine/all.zip", 4),
            ("secdb-3.20-main", "/secdb/v3.20/main.json", 11),
            ("secdb-3.20-community", "/secdb/v3.20/community.json", 1),
        ]
    );
    assert!(received.load(Ordering::Relaxed) > 0);
    // The tracker's digest is that of the served bytes.
    let tracker = &loaded[0].source;
    let local = advisory::feeds::load(&[support::fixture("tracker.json")], None).unwrap();
    assert_eq!(tracker.sha256, local[0].source.sha256);
    // Downloads are spooled to anonymous files: nothing is left behind.
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);

    let mut store = Store::open(&scratch.path().join("advisories.db")).unwrap();
    store.replace_feeds(&loaded).unwrap();
    assert_eq!(store.feeds().unwrap().len(), 6);
}

#[tokio::test]
async fn fetch_failures_name_the_url() {
    let base = server(vec![
        // Ubuntu records where Debian's belong: refused, not stored as osv-ubuntu.
        ("/osv/Debian/all.zip", osv_zip(&["osv/ubuntu"])),
        ("/tracker/data/json", b"<html>rate limited</html>".to_vec()),
    ])
    .await;
    let scratch = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(http(), mirrors(&base), vec!["3.20".into()], scratch.path());
    let quiet = |_: &str, _: u64, _: Option<u64>| {};

    let error = fetcher.fetch(Source::OsvDebian, &quiet).await.unwrap_err();
    assert!(matches!(error, Error::WrongFeed { .. }), "{error}");
    assert!(
        error.to_string().contains("holds osv-ubuntu advisories"),
        "{error}"
    );

    let error = fetcher.fetch(Source::Tracker, &quiet).await.unwrap_err();
    assert_eq!(
        error.to_string().split(": expected").next().unwrap(),
        format!("{base}/tracker/data/json is not a valid Debian Security Tracker JSON feed")
    );

    let error = fetcher.fetch(Source::Secdb, &quiet).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("{base}/secdb/v3.20/main.json answered HTTP 404")
    );

    let unreachable = Fetcher::new(
        http(),
        BTreeMap::from([(Source::Tracker, "http://127.0.0.1:1".to_string())]),
        vec![],
        scratch.path(),
    );
    let error = unreachable
        .fetch(Source::Tracker, &quiet)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("request to http://127.0.0.1:1/data/json failed"),
        "{error}"
    );
}
