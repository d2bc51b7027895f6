//! The runner end to end, in process: an embedded registry holding a real
//! Debian 12 image (built from the archive's base release by testkit), a
//! workflow over it, and what the runs leave behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use oci::copy::{Endpoint, Silent};
use oci::{ClientOptions, ImageReference, OciLayout, RegistryClient};
use server::runner::{Runner, RunnerOptions};
use server::store::{RunFilter, Store, WorkflowRecord};
use workflow::{RunStatus, Schedule, TaskKind};

async fn start_registry(dir: &std::path::Path) -> String {
    let registry = registry::Registry::open(registry::Config::new(dir.join("registry"))).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, registry.router()).await });
    address
}

async fn wait_for_runs(store: &Store, workflow: &str) -> Vec<server::store::Run> {
    let started = Instant::now();
    loop {
        let runs = store
            .runs(&RunFilter {
                workflow: Some(workflow),
                ..RunFilter::default()
            })
            .unwrap();
        if !runs.is_empty() && runs.iter().all(|r| !r.status.is_active()) {
            return runs;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "runs did not finish: {runs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_then_skips_with_the_reason() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let address = start_registry(dir.path()).await;
    let layout = OciLayout::open(testkit::debian_layout()).await.unwrap();
    let client = RegistryClient::new(ClientOptions {
        plain_http: true,
        ..ClientOptions::default()
    })
    .unwrap();
    let original = ImageReference::new(&address, "debian", Some("12"), None).unwrap();
    oci::copy::copy_image(
        &Endpoint::Layout {
            layout,
            tag: Some(testkit::DEBIAN_TAG.to_string()),
        },
        &Endpoint::Registry {
            client: client.clone(),
            image: original.clone(),
        },
        Arc::new(Silent),
    )
    .await
    .unwrap();
    // An upstream tag that looks like a patch but is not one.
    let lookalike = original.with_tag("12-7").unwrap();
    let fetched = client.get_manifest(&original).await.unwrap();
    client
        .put_manifest(
            &lookalike,
            "12-7",
            fetched.bytes.clone(),
            &fetched.media_type,
        )
        .await
        .unwrap();

    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let store = Arc::new(Store::open(&data.join("workflows.db")).unwrap());
    let runner = Runner::new(
        store.clone(),
        RunnerOptions {
            data_dir: data.clone(),
            parallelism: 2,
            offline: false,
        },
    )
    .unwrap();
    let now = Utc::now();
    let record = WorkflowRecord {
        name: "cp".to_string(),
        registry: address.clone(),
        plain_http: true,
        config: r#"{"version":"v1","repositories":[{"repository":"debian","tags":["12"]},{"repository":"missing","tags":["1"]}]}"#.to_string(),
        schedule: Schedule::parse("1d").unwrap(),
        created_at: now,
        updated_at: now,
        last_trigger_at: None,
    };
    assert!(store.create_workflow(&record).unwrap());
    let dry_run = runner.dry_run(&record).await.unwrap();
    let text = workflow::render_dry_run(&dry_run);
    assert!(text.contains("Matches found: 1"), "{text}");
    assert!(text.contains("missing"), "{text}");

    runner.trigger("cp").unwrap();
    let runs = wait_for_runs(&store, "cp").await;
    let of = |kind| {
        runs.iter()
            .filter(|r| r.kind == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    let patches = of(TaskKind::Patch);
    assert_eq!(patches.len(), 1, "{runs:#?}");
    let log = store.run_log(&patches[0].id).unwrap().unwrap();
    assert_eq!(patches[0].status, RunStatus::Succeeded, "{log}");
    let patched = original.with_tag("12-1").unwrap();
    assert_eq!(
        patches[0].patched_image.as_deref(),
        Some(format!("{address}/debian:12-1").as_str())
    );
    client.get_manifest(&patched).await.expect("12-1 exists");
    assert_eq!(
        client.get_manifest(&original).await.unwrap().digest,
        fetched.digest,
        "the original is untouched"
    );

    // The next trigger scans 12-1, finds nothing fixable, and creates no 12-2.
    runner.trigger("cp").unwrap();
    let runs = wait_for_runs(&store, "cp").await;
    let scans: Vec<_> = runs.iter().filter(|r| r.kind == TaskKind::Scan).collect();
    assert_eq!(
        scans[0].image.as_deref(),
        Some(format!("{address}/debian:12-1").as_str())
    );
    assert_eq!(scans[0].status, RunStatus::Skipped);
    assert_eq!(
        scans[0].reason.as_deref(),
        Some("no fixable OS vulnerabilities found")
    );
    assert!(
        client
            .get_manifest(&original.with_tag("12-2").unwrap())
            .await
            .is_err()
    );
}
