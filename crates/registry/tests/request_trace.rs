//! Every request through the registry's router is traced: a span with the
//! method and path, and an event with the status and latency.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// A log sink the test can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_logged_with_method_path_status_and_latency() {
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .init();

    let dir = tempfile::tempdir().unwrap();
    let registry = registry::Registry::open(registry::Config::new(dir.path()))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = registry.router();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let http = oci::client::http_client_builder().build().unwrap();
    let response = http
        .get(format!(
            "http://{address}/v2/team/app/manifests/v1?secret=query"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("/v2/team/app/manifests/v1"))
        .unwrap_or_else(|| panic!("no request line in {log:?}"));
    assert!(line.contains("method=GET"), "{line}");
    assert!(line.contains("status=404"), "{line}");
    assert!(line.contains("latency="), "{line}");
    assert!(
        !log.contains("secret=query"),
        "the query is not logged: {log}"
    );
}
