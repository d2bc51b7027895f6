//! Garbage collection: `drydock gc` against a live `drydock serve` data
//! directory, and the periodic collection inside `serve`.

mod registry_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use registry_support::*;
use reqwest::StatusCode;

fn blob_path(data_dir: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    data_dir.join("blobs/sha256").join(&hex[..2]).join(hex)
}

fn write_orphan(data_dir: &Path, digest: &str, content: &[u8]) {
    let path = blob_path(data_dir, digest);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
}

fn upload_files(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir.join("uploads"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn gc_removes_only_old_unreferenced_blobs_and_expired_uploads() {
    let server = Server::start(&["--gc-interval", "0"]);
    let client = client();
    let data = server.data_dir.clone();
    let (_, _, referenced_layer) = push_image(&server, &client, "gc/app", "v1", "gc").await;
    let old = push_blob(&server, &client, "gc/app", b"old and unreferenced").await;
    let stale_upload = header(
        &client
            .post(server.url("/v2/gc/app/blobs/uploads/"))
            .send()
            .await
            .unwrap(),
        "location",
    );
    // A file no row knows about, from long ago.
    let orphan = sha256(b"orphan");
    write_orphan(&data, &orphan, b"orphan");
    std::fs::File::options()
        .write(true)
        .open(blob_path(&data, &orphan))
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();

    tokio::time::sleep(Duration::from_secs(3)).await;
    let young = push_blob(&server, &client, "gc/app", b"young and unreferenced").await;
    let young_orphan = sha256(b"young orphan");
    write_orphan(&data, &young_orphan, b"young orphan");
    let fresh_upload = header(
        &client
            .post(server.url("/v2/gc/app/blobs/uploads/"))
            .send()
            .await
            .unwrap(),
        "location",
    );
    let data_arg = data.to_str().unwrap();
    let gc_args = [
        "gc",
        "--data-dir",
        data_arg,
        "--grace",
        "1s",
        "--upload-expiry",
        "2s",
    ];

    let uploads_before = upload_files(&data);
    assert_eq!(uploads_before.len(), 2);
    let dry = drydock(&[&gc_args[..], &["--dry-run"]].concat());
    assert!(dry.contains("would remove 1 unreferenced blobs"), "{dry}");
    assert!(dry.contains("1 orphaned blob files"), "{dry}");
    assert!(dry.contains("1 expired uploads"), "{dry}");
    for digest in [&old, &orphan, &young, &referenced_layer] {
        assert!(
            blob_path(&data, digest).exists(),
            "dry run removed {digest}"
        );
    }
    assert_eq!(upload_files(&data), uploads_before);

    let report = drydock(&gc_args);
    assert!(report.contains("removed 1 unreferenced blobs"), "{report}");
    assert!(!blob_path(&data, &old).exists());
    assert!(!blob_path(&data, &orphan).exists());
    for digest in [&young, &young_orphan, &referenced_layer] {
        assert!(blob_path(&data, digest).exists(), "gc removed {digest}");
    }
    let gone = client
        .head(server.url(&format!("/v2/gc/app/blobs/{old}")))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    for digest in [&young, &referenced_layer] {
        let kept = client
            .get(server.url(&format!("/v2/gc/app/blobs/{digest}")))
            .send()
            .await
            .unwrap();
        assert_eq!(kept.status(), StatusCode::OK);
        assert_eq!(sha256(&kept.bytes().await.unwrap()), *digest);
    }
    let expired = client.get(server.url(&stale_upload)).send().await.unwrap();
    assert_eq!(error_code(expired).await, "BLOB_UPLOAD_UNKNOWN");
    let fresh = client.get(server.url(&fresh_upload)).send().await.unwrap();
    assert_eq!(fresh.status(), StatusCode::NO_CONTENT);

    // The collected blob can be pushed again.
    push_blob(&server, &client, "gc/app", b"old and unreferenced").await;
    let back = client
        .get(server.url(&format!("/v2/gc/app/blobs/{old}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        back.bytes().await.unwrap().as_ref(),
        b"old and unreferenced"
    );
}

#[tokio::test]
async fn serve_collects_periodically() {
    let server = Server::start(&["--gc-interval", "1s", "--gc-grace", "1s"]);
    let client = client();
    let (_, _, layer) = push_image(&server, &client, "periodic", "v1", "periodic").await;
    let unreferenced = push_blob(&server, &client, "periodic", b"collect me").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while blob_path(&server.data_dir, &unreferenced).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "serve never collected the unreferenced blob"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(blob_path(&server.data_dir, &layer).exists());
    let manifest = client
        .get(server.url("/v2/periodic/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.status(), StatusCode::OK);
}
