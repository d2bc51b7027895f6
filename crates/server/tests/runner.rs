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
use workflow::{RunStatus, Schedule, SkipReason, TaskKind};

async fn start_registry(dir: &std::path::Path) -> String {
    let registry = registry::Registry::open(registry::Config::new(dir.join("registry")))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, registry.router()).await });
    address
}

/// A runner over its own data directory.
fn runner_in(data: &std::path::Path, parallelism: usize) -> (Arc<Store>, Arc<Runner>) {
    runner_with(data, parallelism, |_| {})
}

/// A runner over its own data directory, in an environment `configure` adjusts.
fn runner_with(
    data: &std::path::Path,
    parallelism: usize,
    configure: impl FnOnce(&mut environment::Config),
) -> (Arc<Store>, Arc<Runner>) {
    std::fs::create_dir_all(data).unwrap();
    let store = Arc::new(Store::open(&data.join("workflows.db")).unwrap());
    let mut config = environment::Config {
        security_repo_max_age: Duration::from_secs(300),
        release_max_age: Duration::from_secs(300),
        ..environment::Config::new(data)
    };
    configure(&mut config);
    let runner = Runner::new(
        store.clone(),
        Arc::new(environment::Environment::new(config).unwrap()),
        RunnerOptions {
            parallelism,
            advisory_max_age: Duration::from_secs(86400),
        },
    )
    .unwrap();
    (store, runner)
}

fn workflow_record(name: &str, registry: &str, config: &str) -> WorkflowRecord {
    let now = Utc::now();
    WorkflowRecord {
        name: name.to_string(),
        registry: registry.to_string(),
        plain_http: true,
        config: config.to_string(),
        schedule: Schedule::parse("1d").unwrap(),
        created_at: now,
        updated_at: now,
        last_trigger_at: None,
        policy: Default::default(),
    }
}

fn client() -> RegistryClient {
    RegistryClient::new(ClientOptions {
        plain_http: true,
        ..ClientOptions::default()
    })
    .unwrap()
}

/// Copies the testkit Debian 12 image into `registry` as `repository:tag`.
async fn push_debian(registry: &str, repository: &str, tag: &str) -> ImageReference {
    push_debian_with(client(), registry, repository, tag).await
}

/// [`push_debian`] through `client`.
async fn push_debian_with(
    client: RegistryClient,
    registry: &str,
    repository: &str,
    tag: &str,
) -> ImageReference {
    let layout = OciLayout::open(testkit::debian_layout()).await.unwrap();
    let image = ImageReference::new(registry, repository, Some(tag), None).unwrap();
    oci::copy::copy_image(
        &Endpoint::Layout {
            layout,
            tag: Some(testkit::DEBIAN_TAG.to_string()),
        },
        &Endpoint::Registry {
            client,
            image: image.clone(),
        },
        Arc::new(Silent),
    )
    .await
    .unwrap();
    image
}

/// Pushes a one-layer image made of `files` with `config` (rootfs filled in).
async fn push_small_image(
    image: &ImageReference,
    mut config: serde_json::Value,
    files: &[(&str, &[u8])],
) {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, *content).unwrap();
    }
    let layer = bytes::Bytes::from(tar.into_inner().unwrap());
    config["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": [oci::Digest::sha256_of(&layer).to_string()]});
    let config = bytes::Bytes::from(serde_json::to_vec(&config).unwrap());
    let client = client();
    let mut descriptors = Vec::new();
    for (bytes, media_type) in [
        (config.clone(), "application/vnd.oci.image.config.v1+json"),
        (layer.clone(), "application/vnd.oci.image.layer.v1.tar"),
    ] {
        let content = oci::ContentRef {
            digest: oci::Digest::sha256_of(&bytes),
            size: bytes.len() as u64,
            media_type: media_type.to_string(),
        };
        let stream: oci::client::BlobStream =
            Box::pin(futures_util::stream::once(async move { Ok(bytes) }));
        client.push_blob(image, &content, stream).await.unwrap();
        descriptors.push(content);
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": descriptors[0].media_type, "digest": descriptors[0].digest.to_string(), "size": descriptors[0].size},
        "layers": [{"mediaType": descriptors[1].media_type, "digest": descriptors[1].digest.to_string(), "size": descriptors[1].size}],
    });
    client
        .put_manifest(
            image,
            image.tag().unwrap(),
            bytes::Bytes::from(serde_json::to_vec(&manifest).unwrap()),
            "application/vnd.oci.image.manifest.v1+json",
        )
        .await
        .unwrap();
}

/// A copy of `original`'s manifest that claims to be drydock's patch of
/// `base_name` (the content is unpatched, so a scan still finds fixes).
async fn pretend_patch(
    original: &ImageReference,
    base_name: &str,
    tags: impl Iterator<Item = String>,
) {
    let client = client();
    let fetched = client.get_manifest(original).await.unwrap();
    let mut manifest: serde_json::Value = serde_json::from_slice(&fetched.bytes).unwrap();
    manifest["annotations"] = serde_json::json!({
        patch::image::ANNOTATION_ORIGINAL: fetched.digest.to_string(),
        patch::image::ANNOTATION_BASE_NAME: base_name,
    });
    let bytes = bytes::Bytes::from(serde_json::to_vec(&manifest).unwrap());
    for tag in tags {
        let image = original.with_tag(&tag).unwrap();
        client
            .put_manifest(&image, &tag, bytes.clone(), &fetched.media_type)
            .await
            .unwrap();
    }
}

async fn wait_for_runs(store: &Store, workflow: &str) -> Vec<server::store::Run> {
    let started = Instant::now();
    loop {
        let runs = store
            .runs(&RunFilter {
                workflow: Some(workflow),
                ..RunFilter::default()
            })
            .await
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

    let (store, runner) = runner_in(&dir.path().join("data"), 2);
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
        policy: Default::default(),
    };
    assert!(store.create_workflow(&record).await.unwrap());
    let dry_run = runner.dry_run(&record).await.unwrap();
    let text = workflow::render_dry_run(&dry_run);
    assert!(text.contains("Matches found: 1"), "{text}");
    assert!(text.contains("missing"), "{text}");

    runner.trigger("cp").await.unwrap();
    let runs = wait_for_runs(&store, "cp").await;
    let of = |kind| {
        runs.iter()
            .filter(|r| r.kind == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    let patches = of(TaskKind::Patch);
    assert_eq!(patches.len(), 1, "{runs:#?}");
    let log = store.run_log(&patches[0].id).await.unwrap().unwrap();
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
    runner.trigger("cp").await.unwrap();
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

/// A workflow set to sandbox mode patches with the image's own dpkg
/// running the maintainer scripts (root and bubblewrap, as CI has them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_in_sandbox_mode_runs_the_maintainer_scripts() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let address = start_registry(dir.path()).await;
    let original = push_debian(&address, "debian", "12").await;
    let (store, runner) = runner_in(&dir.path().join("data"), 1);
    let config = r#"{"version":"v1","repositories":[{"repository":"debian","tags":["12"]}]}"#;
    let record = WorkflowRecord {
        policy: server::store::ScanPolicy {
            maintainer_scripts: patch::patcher::ScriptMode::Sandbox,
            ..Default::default()
        },
        ..workflow_record("sandboxed", &address, config)
    };
    store.create_workflow(&record).await.unwrap();
    assert_eq!(
        store
            .workflow("sandboxed")
            .await
            .unwrap()
            .unwrap()
            .policy
            .maintainer_scripts,
        patch::patcher::ScriptMode::Sandbox,
        "the setting is stored"
    );
    runner.trigger("sandboxed").await.unwrap();
    let runs = wait_for_runs(&store, "sandboxed").await;
    let patch = runs
        .iter()
        .find(|r| r.kind == TaskKind::Patch)
        .unwrap_or_else(|| panic!("no patch run: {runs:#?}"));
    let log = store.run_log(&patch.id).await.unwrap().unwrap();
    assert_eq!(patch.status, RunStatus::Succeeded, "{log}");
    assert!(log.contains("run in the sandbox: "), "{log}");
    assert!(!log.contains("not run: "), "{log}");
    client()
        .get_manifest(&original.with_tag("12-1").unwrap())
        .await
        .expect("12-1 exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floating_moves_the_patched_tag() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let address = start_registry(dir.path()).await;
    let original = push_debian(&address, "debian", "12").await;
    // A previous "patch" that fixed nothing: the floating tag exists and is drydock's.
    pretend_patch(
        &original,
        &format!("{address}/debian:12"),
        ["12-patched".to_string()].into_iter(),
    )
    .await;
    let before = client()
        .get_manifest(&original.with_tag("12-patched").unwrap())
        .await
        .unwrap()
        .digest;
    let (store, runner) = runner_in(&dir.path().join("data"), 2);
    let config = r#"{"version":"v1","tag-convention":"floating","repositories":[{"repository":"debian","tags":["12"]}]}"#;
    store
        .create_workflow(&workflow_record("f", &address, config))
        .await
        .unwrap();
    runner.trigger("f").await.unwrap();
    let runs = wait_for_runs(&store, "f").await;
    let patch = runs
        .iter()
        .find(|r| r.kind == TaskKind::Patch)
        .expect("a patch run");
    assert_eq!(
        patch.status,
        RunStatus::Succeeded,
        "{}",
        store.run_log(&patch.id).await.unwrap().unwrap()
    );
    let after = client()
        .get_manifest(&original.with_tag("12-patched").unwrap())
        .await
        .unwrap()
        .digest;
    assert_ne!(before, after, "-patched moved");
    assert!(
        client()
            .get_manifest(&original.with_tag("12-1").unwrap())
            .await
            .is_err(),
        "floating never makes -1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matching_limits_and_skip_reasons() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let address = start_registry(dir.path()).await;
    let debian = push_debian(&address, "debian", "12").await;
    pretend_patch(
        &debian,
        &format!("{address}/debian:12"),
        ["12-patched".to_string()].into_iter(),
    )
    .await;
    let lookalike = debian.with_tag("12-7").unwrap();
    let fetched = client().get_manifest(&debian).await.unwrap();
    client()
        .put_manifest(
            &lookalike,
            "12-7",
            fetched.bytes.clone(),
            &fetched.media_type,
        )
        .await
        .unwrap();
    let (store, runner) = runner_in(&dir.path().join("data"), 2);

    // `*` picks originals (an upstream lookalike of a patch tag is one), never drydock's patches;
    // disabled repositories are ignored, missing ones listed.
    let config = r#"{"version":"v1","repositories":[
        {"repository":"debian","tags":["*"]},
        {"repository":"ignored","tags":["1"],"enabled":false},
        {"repository":"absent","tags":["1"]}]}"#;
    let record = workflow_record("star", &address, config);
    let text = workflow::render_dry_run(&runner.dry_run(&record).await.unwrap());
    assert!(
        text.contains("debian,12,N/A") && text.contains("debian,12-7,N/A"),
        "{text}"
    );
    assert!(!text.contains("debian,12-patched"), "{text}");
    assert!(
        text.contains("absent") && !text.contains("ignored"),
        "{text}"
    );
    assert!(text.contains("Matches found: 2"), "{text}");

    // More than 100 images are refused, and a run of such a workflow fails saying so.
    let many: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
    for tag in &many {
        let image = debian.with_tag(tag).unwrap();
        client()
            .put_manifest(&image, tag, fetched.bytes.clone(), &fetched.media_type)
            .await
            .unwrap();
    }
    let crowded = workflow_record(
        "crowded",
        &address,
        r#"{"version":"v1","repositories":[{"repository":"debian","tags":["*"]}]}"#,
    );
    assert!(
        runner
            .dry_run(&crowded)
            .await
            .unwrap()
            .check_image_limit()
            .is_err()
    );
    store.create_workflow(&crowded).await.unwrap();
    runner.trigger("crowded").await.unwrap();
    let trigger = wait_for_runs(&store, "crowded").await.remove(0);
    assert_eq!(trigger.status, RunStatus::Failed);
    assert!(
        trigger
            .reason
            .unwrap()
            .contains("maximum limit of 100 images")
    );

    // The 999 boundary: with -1 … -998 the next patch is -999; with -999 there is none.
    let limited = push_debian(&address, "limited", "1").await;
    let base = format!("{address}/limited:1");
    pretend_patch(&limited, &base, (1..=998).map(|n| format!("1-{n}"))).await;
    let record = workflow_record(
        "limit",
        &address,
        r#"{"version":"v1","repositories":[{"repository":"limited","tags":["1"]}]}"#,
    );
    let dry_run = runner.dry_run(&record).await.unwrap();
    assert_eq!(
        dry_run.matched[0].next_patch.as_ref().unwrap().name(),
        "1-999"
    );
    pretend_patch(&limited, &base, std::iter::once("1-999".to_string())).await;
    let dry_run = runner.dry_run(&record).await.unwrap();
    assert!(dry_run.matched[0].next_patch.is_err());
    store.create_workflow(&record).await.unwrap();
    runner.trigger("limit").await.unwrap();
    let runs = wait_for_runs(&store, "limit").await;
    let scan = runs.iter().find(|r| r.kind == TaskKind::Scan).unwrap();
    assert_eq!(scan.status, RunStatus::Skipped);
    assert_eq!(
        scan.reason.as_deref(),
        Some(SkipReason::TagLimitReached.to_string().as_str())
    );
    assert!(
        client()
            .get_manifest(&limited.with_tag("1-1000").unwrap())
            .await
            .is_err()
    );

    // A Windows image and an end-of-life release are skipped with their reasons.
    let windows = ImageReference::new(&address, "windows", Some("ltsc"), None).unwrap();
    push_small_image(
        &windows,
        serde_json::json!({"os": "windows", "architecture": "amd64"}),
        &[("Files/Windows/System32/cmd.exe", b"MZ")],
    )
    .await;
    let eol = ImageReference::new(&address, "stretch", Some("9"), None).unwrap();
    push_small_image(
        &eol,
        serde_json::json!({"os": "linux", "architecture": "amd64"}),
        &[
            ("etc/os-release", b"ID=debian\nVERSION_ID=\"9\"\nVERSION_CODENAME=stretch\n"),
            ("var/lib/dpkg/status", b"Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 9.9+deb9u13\n"),
        ],
    )
    .await;
    let record = workflow_record(
        "skips",
        &address,
        r#"{"version":"v1","repositories":[{"repository":"windows","tags":["ltsc"]},{"repository":"stretch","tags":["9"]}]}"#,
    );
    store.create_workflow(&record).await.unwrap();
    runner.trigger("skips").await.unwrap();
    let runs = wait_for_runs(&store, "skips").await;
    let reason_of = |repository: &str| {
        let scan = runs
            .iter()
            .find(|r| r.kind == TaskKind::Scan && r.repository.as_deref() == Some(repository))
            .unwrap();
        assert_eq!(scan.status, RunStatus::Skipped, "{scan:?}");
        scan.reason.clone().unwrap()
    };
    assert_eq!(reason_of("windows"), SkipReason::WindowsImage.to_string());
    assert_eq!(reason_of("stretch"), SkipReason::EndOfLife.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_run_stops_queued_work() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let address = start_registry(dir.path()).await;
    for tag in ["a", "b", "c"] {
        push_debian(&address, "debian", tag).await;
    }
    let (store, runner) = runner_in(&dir.path().join("data"), 1);
    let config =
        r#"{"version":"v1","repositories":[{"repository":"debian","tags":["a","b","c"]}]}"#;
    store
        .create_workflow(&workflow_record("c", &address, config))
        .await
        .unwrap();
    runner.trigger("c").await.unwrap();
    // Wait until the scans are queued, then cancel: one image at a time, so some never start.
    let started = Instant::now();
    while store
        .runs(&RunFilter {
            kind: Some(TaskKind::Scan),
            ..RunFilter::default()
        })
        .await
        .unwrap()
        .len()
        < 3
    {
        assert!(started.elapsed() < Duration::from_secs(120));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let canceled = runner.cancel("c").await.unwrap();
    assert!(!canceled.is_empty());
    let runs = wait_for_runs(&store, "c").await;
    let canceled_scans: Vec<_> = runs
        .iter()
        .filter(|r| r.kind == TaskKind::Scan && r.status == RunStatus::Canceled)
        .collect();
    assert!(canceled_scans.len() >= 2, "{runs:#?}");
    for scan in canceled_scans {
        let patched = ImageReference::new(
            &address,
            "debian",
            Some(&format!("{}-1", scan.tag.as_deref().unwrap())),
            None,
        )
        .unwrap();
        assert!(
            client().get_manifest(&patched).await.is_err(),
            "a canceled image got a patch"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_against_an_external_registry() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let distribution = testkit::distribution::Distribution::start();
    let original = push_debian(&distribution.address, "debian", "12").await;
    let dir = tempfile::tempdir().unwrap();
    let (store, runner) = runner_in(&dir.path().join("data"), 2);
    let config = r#"{"version":"v1","repositories":[{"repository":"debian","tags":["12"]}]}"#;
    store
        .create_workflow(&workflow_record("ext", &distribution.address, config))
        .await
        .unwrap();
    runner.trigger("ext").await.unwrap();
    let runs = wait_for_runs(&store, "ext").await;
    let patch = runs
        .iter()
        .find(|r| r.kind == TaskKind::Patch)
        .expect("a patch run");
    assert_eq!(
        patch.status,
        RunStatus::Succeeded,
        "{}",
        store.run_log(&patch.id).await.unwrap().unwrap()
    );
    let patched = client()
        .get_manifest(&original.with_tag("12-1").unwrap())
        .await
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&patched.bytes).unwrap();
    assert!(manifest["annotations"][patch::image::ANNOTATION_ORIGINAL].is_string());
    // A second run sees the patch as drydock's (from its annotations) and finds nothing to do.
    runner.trigger("ext").await.unwrap();
    let runs = wait_for_runs(&store, "ext").await;
    let scan = runs.iter().find(|r| r.kind == TaskKind::Scan).unwrap();
    assert_eq!(
        scan.image.as_deref(),
        Some(format!("{}/debian:12-1", distribution.address).as_str())
    );
    assert_eq!(scan.status, RunStatus::Skipped);
}

/// A workflow against an HTTPS registry lists, scans and patches over
/// HTTPS (the workflow does not ask for plain HTTP), trusting the registry's
/// private certificate authority through the environment's configuration;
/// without that trust, the run fails on the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_against_an_https_registry_speaks_https() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let distribution = testkit::distribution::Distribution::start_tls();
    let ca = distribution.ca_certificate.clone().unwrap();
    let trusting = environment::Environment::new(environment::Config {
        ca_certificates: vec![ca.clone()],
        ..environment::Config::new("unused")
    })
    .unwrap();
    let client = trusting
        .registry_client(&environment::RegistryPolicy::default())
        .unwrap();
    let original = push_debian_with(client.clone(), &distribution.address, "debian", "12").await;
    let config = r#"{"version":"v1","repositories":[{"repository":"debian","tags":["12"]}]}"#;
    let record = WorkflowRecord {
        plain_http: false,
        ..workflow_record("tls", &distribution.address, config)
    };

    let dir = tempfile::tempdir().unwrap();
    let (store, runner) = runner_in(&dir.path().join("untrusting"), 2);
    store.create_workflow(&record).await.unwrap();
    runner.trigger("tls").await.unwrap();
    let runs = wait_for_runs(&store, "tls").await;
    assert_eq!(runs.len(), 1, "only the trigger ran: {runs:#?}");
    assert_eq!(runs[0].status, RunStatus::Failed);
    let reason = runs[0].reason.clone().unwrap_or_default();
    assert!(
        reason.contains(&format!("https://{}", distribution.address))
            && reason.contains("certificate"),
        "{reason}"
    );

    let (store, runner) = runner_with(&dir.path().join("trusting"), 2, |config| {
        config.ca_certificates = vec![ca.clone()];
    });
    store.create_workflow(&record).await.unwrap();
    runner.trigger("tls").await.unwrap();
    let runs = wait_for_runs(&store, "tls").await;
    for kind in [TaskKind::Trigger, TaskKind::Scan, TaskKind::Patch] {
        let run = runs
            .iter()
            .find(|r| r.kind == kind)
            .expect("every step ran");
        assert_eq!(
            run.status,
            RunStatus::Succeeded,
            "{kind:?}: {}",
            store.run_log(&run.id).await.unwrap().unwrap()
        );
    }
    let patched = client
        .get_manifest(&original.with_tag("12-1").unwrap())
        .await
        .expect("the patch was pushed over HTTPS");
    let manifest: serde_json::Value = serde_json::from_slice(&patched.bytes).unwrap();
    assert!(manifest["annotations"][patch::image::ANNOTATION_ORIGINAL].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_policy_sets_findings_aside() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let address = start_registry(dir.path()).await;
    let original = push_debian(&address, "debian", "12").await;
    let data = dir.path().join("data");
    // What the image has fixable today, computed now.
    let scanner = environment::Environment::new(environment::Config::new(&data))
        .unwrap()
        .patch_scanner(&environment::RegistryPolicy {
            plain_http: true,
            ..environment::RegistryPolicy::default()
        })
        .unwrap();
    let report = scanner.scan(&format!("{address}/debian:12")).await.unwrap();
    let findings: Vec<&scan::Finding> = report.results.iter().flat_map(|r| &r.findings).collect();
    assert!(
        !findings.is_empty(),
        "the base release should have fixable findings"
    );
    let ids: Vec<String> = findings
        .iter()
        .map(|f| f.vulnerability_id.clone())
        .collect();
    let worst = findings.iter().map(|f| f.severity).max().unwrap();

    let (store, runner) = runner_in(&data, 2);
    let config = r#"{"version":"v1","repositories":[{"repository":"debian","tags":["12"]}]}"#;
    let mut policies = vec![(
        "ignoring",
        server::store::ScanPolicy {
            min_severity: None,
            ignore: ids,
            ..Default::default()
        },
    )];
    if let Some(above) = advisory::Severity::ALL.into_iter().find(|s| *s > worst) {
        policies.push((
            "threshold",
            server::store::ScanPolicy {
                min_severity: Some(above),
                ..Default::default()
            },
        ));
    }
    for (name, policy) in policies {
        let record = WorkflowRecord {
            policy,
            ..workflow_record(name, &address, config)
        };
        store.create_workflow(&record).await.unwrap();
        runner.trigger(name).await.unwrap();
        let runs = wait_for_runs(&store, name).await;
        let scan = runs.iter().find(|r| r.kind == TaskKind::Scan).unwrap();
        assert_eq!(scan.status, RunStatus::Skipped, "{name}");
        assert_eq!(
            scan.reason.as_deref(),
            Some(SkipReason::NothingFixable.to_string().as_str())
        );
        let log = store.run_log(&scan.id).await.unwrap().unwrap();
        assert!(
            log.contains("severity threshold or on its ignore list"),
            "{log}"
        );
        assert!(runs.iter().all(|r| r.kind != TaskKind::Patch), "{name}");
    }
    assert!(
        client()
            .get_manifest(&original.with_tag("12-1").unwrap())
            .await
            .is_err()
    );
}
