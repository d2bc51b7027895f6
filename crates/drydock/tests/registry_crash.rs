//! Crash safety: `kill -9` during a large streamed upload and during a burst
//! of manifest pushes, then a restart on the same data directory. Everything
//! acknowledged must be served byte-identical, nothing unacknowledged may be
//! half-visible, and the store must keep accepting pushes.

mod registry_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use registry_support::*;
use reqwest::StatusCode;

/// A tag and the manifest bytes pushed under it.
type TaggedManifest = (String, Vec<u8>);

/// Deterministic content of `len` bytes.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 9)) as u8)
        .collect()
}

#[tokio::test]
async fn kill_during_large_upload_then_resume_after_restart() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(data.path(), &["--gc-interval", "0"]);
    let client = client();
    let (manifest, _, _) = push_image(&server, &client, "crash/up", "before", "before").await;

    let content = Arc::new(pattern(64 * 1024 * 1024));
    let digest = sha256(&content);
    let start = client
        .post(server.url("/v2/crash/up/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = header(&start, "location");
    let sent = Arc::new(Mutex::new(0usize));
    let (body_content, body_sent) = (content.clone(), sent.clone());
    let chunks = futures_util::stream::unfold(0usize, move |offset| {
        let (content, sent) = (body_content.clone(), body_sent.clone());
        async move {
            if offset >= content.len() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            let end = (offset + 256 * 1024).min(content.len());
            *sent.lock().unwrap() = end;
            Some((
                Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(&content[offset..end])),
                end,
            ))
        }
    });
    let upload = tokio::spawn({
        let (client, url) = (client.clone(), server.url(&location));
        async move {
            client
                .patch(url)
                .body(reqwest::Body::wrap_stream(chunks))
                .send()
                .await
        }
    });
    while *sent.lock().unwrap() < 8 * 1024 * 1024 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();
    assert!(
        upload.await.unwrap().is_err(),
        "the interrupted upload must not be acknowledged"
    );

    let server = Server::start_in(data.path(), &["--gc-interval", "0"]);
    let before = client
        .get(server.url("/v2/crash/up/manifests/before"))
        .send()
        .await
        .unwrap();
    assert_eq!(before.bytes().await.unwrap(), manifest);
    let missing = client
        .head(server.url(&format!("/v2/crash/up/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // The session survives: resume from what the server actually holds.
    let status = client.get(server.url(&location)).send().await.unwrap();
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    let range = header(&status, "range");
    let held: usize = range.split('-').nth(1).unwrap().parse::<usize>().unwrap() + 1;
    assert!(held <= content.len());
    let put = client
        .put(server.url(&format!("{location}?digest={digest}")))
        .header("Content-Range", format!("{held}-{}", content.len() - 1))
        .body(content[held..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    let get = client
        .get(server.url(&format!("/v2/crash/up/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(sha256(&get.bytes().await.unwrap()), digest);
}

#[tokio::test]
async fn kill_during_manifest_burst_keeps_every_acknowledged_tag() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(data.path(), &["--gc-interval", "0"]);
    let client = client();
    let config = b"{\"burst\":true}";
    let layer = b"burst layer";
    push_blob(&server, &client, "crash/burst", config).await;
    push_blob(&server, &client, "crash/burst", layer).await;

    let acknowledged: Arc<Mutex<Vec<TaggedManifest>>> = Arc::default();
    let mut pushers = Vec::new();
    for worker in 0..4 {
        let (client, url, acknowledged) = (
            client.clone(),
            server.url("/v2/crash/burst/manifests"),
            acknowledged.clone(),
        );
        pushers.push(tokio::spawn(async move {
            for i in 0.. {
                let tag = format!("w{worker}-{i}");
                let mut value: serde_json::Value = serde_json::from_slice(&image_manifest(
                    OCI_MANIFEST,
                    (OCI_CONFIG, config),
                    &[(OCI_LAYER, layer)],
                ))
                .unwrap();
                value["annotations"] = serde_json::json!({"tag": tag});
                let manifest = serde_json::to_vec(&value).unwrap();
                let response = client
                    .put(format!("{url}/{tag}"))
                    .header("Content-Type", OCI_MANIFEST)
                    .body(manifest.clone())
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        acknowledged.lock().unwrap().push((tag, manifest))
                    }
                    _ => return,
                }
            }
        }));
    }
    while acknowledged.lock().unwrap().len() < 50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill9();
    for pusher in pushers {
        pusher.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    let server = Server::start_in(data.path(), &["--gc-interval", "0"]);
    for (tag, manifest) in &acknowledged {
        let get = client
            .get(server.url(&format!("/v2/crash/burst/manifests/{tag}")))
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), StatusCode::OK, "acknowledged tag {tag} lost");
        assert_eq!(&get.bytes().await.unwrap(), manifest, "tag {tag} changed");
    }
    let tags: serde_json::Value = client
        .get(server.url("/v2/crash/burst/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tags = tags["tags"].as_array().unwrap();
    assert!(tags.len() >= acknowledged.len());
    for tag in tags {
        let get = client
            .get(server.url(&format!(
                "/v2/crash/burst/manifests/{}",
                tag.as_str().unwrap()
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), StatusCode::OK, "tag {tag} points at nothing");
        let digest = header(&get, "docker-content-digest");
        assert_eq!(sha256(&get.bytes().await.unwrap()), digest);
    }
    let (_, _, _) = push_image(&server, &client, "crash/burst", "after", "after").await;
}
