//! Bad and hostile input: every rejection carries the spec's error code and
//! leaves the store consistent; concurrent pushes of one blob or one tag all
//! end well.

mod registry_support;

use registry_support::*;
use reqwest::StatusCode;

#[tokio::test]
async fn wrong_digest_discards_the_upload() {
    let server = Server::start(&[]);
    let client = client();
    let wrong = sha256(b"something else");
    let monolithic = client
        .post(server.url(&format!("/v2/bad/blobs/uploads/?digest={wrong}")))
        .body("actual content")
        .send()
        .await
        .unwrap();
    assert_eq!(monolithic.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(monolithic).await, "DIGEST_INVALID");

    let start = client
        .post(server.url("/v2/bad/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = header(&start, "location");
    let put = client
        .put(server.url(&format!("{location}?digest={wrong}")))
        .body("actual content")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(put).await, "DIGEST_INVALID");
    let status = client.get(server.url(&location)).send().await.unwrap();
    assert_eq!(error_code(status).await, "BLOB_UPLOAD_UNKNOWN");
    for digest in [wrong, sha256(b"actual content")] {
        let head = client
            .head(server.url(&format!("/v2/bad/blobs/{digest}")))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), StatusCode::NOT_FOUND);
    }
    let malformed = client
        .post(server.url("/v2/bad/blobs/uploads/?digest=sha256:xyz"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(malformed).await, "DIGEST_INVALID");
    let no_digest = client.put(server.url(&location)).send().await.unwrap();
    assert_eq!(no_digest.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_manifests_are_rejected_and_leave_no_tag() {
    let server = Server::start(&[]);
    let client = client();
    let config = b"{}";
    push_blob(&server, &client, "bad", config).await;
    let missing_layer = image_manifest(
        OCI_MANIFEST,
        (OCI_CONFIG, config),
        &[(OCI_LAYER, b"never pushed")],
    );
    let put = put_manifest(&server, &client, "bad", "t", OCI_MANIFEST, &missing_layer).await;
    assert_eq!(put.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(put).await, "MANIFEST_BLOB_UNKNOWN");

    // A blob of another repository does not count.
    push_blob(&server, &client, "other", b"never pushed").await;
    let put = put_manifest(&server, &client, "bad", "t", OCI_MANIFEST, &missing_layer).await;
    assert_eq!(error_code(put).await, "MANIFEST_BLOB_UNKNOWN");

    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(b"no manifest"), "size": 11}],
    }))
    .unwrap();
    let put = put_manifest(&server, &client, "bad", "t", OCI_INDEX, &index).await;
    assert_eq!(error_code(put).await, "MANIFEST_BLOB_UNKNOWN");

    for body in [
        &b"{not json"[..],
        b"[]",
        b"{\"schemaVersion\":2,\"config\":{}}",
        b"",
    ] {
        let put = put_manifest(&server, &client, "bad", "t", OCI_MANIFEST, body).await;
        assert_eq!(put.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_code(put).await, "MANIFEST_INVALID");
    }
    let valid = image_manifest(OCI_MANIFEST, (OCI_CONFIG, config), &[]);
    let mismatch = put_manifest(
        &server,
        &client,
        "bad",
        &sha256(b"other"),
        OCI_MANIFEST,
        &valid,
    )
    .await;
    assert_eq!(mismatch.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(mismatch).await, "DIGEST_INVALID");
    let wrong_type = put_manifest(&server, &client, "bad", "t", DOCKER_MANIFEST, &valid).await;
    assert_eq!(error_code(wrong_type).await, "MANIFEST_INVALID");

    let tags = client
        .get(server.url("/v2/bad/tags/list"))
        .send()
        .await
        .unwrap();
    let tags: serde_json::Value = tags.json().await.unwrap();
    assert_eq!(tags["tags"], serde_json::json!([]));

    let put = put_manifest(&server, &client, "bad", "t", OCI_MANIFEST, &valid).await;
    assert_eq!(put.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn invalid_repository_names() {
    let server = Server::start(&[]);
    let client = client();
    for path in [
        "/v2/Upper/tags/list",
        "/v2/a/-b/manifests/latest",
        "/v2/a__-b/blobs/uploads/",
    ] {
        let response = client.post(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(error_code(response).await, "NAME_INVALID", "{path}");
    }
    for path in [
        "/v2/../etc/manifests/latest",
        "/v2/a/../b/tags/list",
        "/v2/a//b/tags/list",
    ] {
        let answer = raw_request(
            &server,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(answer.contains("NAME_INVALID"), "{path}: {answer}");
    }
    let bad_tag = client
        .get(server.url("/v2/ok/manifests/.hidden"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_tag.status(), StatusCode::BAD_REQUEST);
    let wrong_method = client
        .post(server.url("/v2/ok/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(wrong_method).await, "UNSUPPORTED");
}

#[tokio::test]
async fn truncated_uploads_record_nothing() {
    let server = Server::start(&[]);
    let client = client();
    let content = vec![7u8; 200_000];
    let digest = sha256(&content);
    let half = &content[..100_000];

    // Monolithic push whose body stops half-way.
    let mut request = format!(
        "POST /v2/trunc/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        content.len()
    )
    .into_bytes();
    request.extend_from_slice(half);
    send_and_hang_up(&server, &request);
    let head = client
        .head(server.url(&format!("/v2/trunc/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::NOT_FOUND);

    // A session chunk that stops half-way is rolled back.
    let start = client
        .post(server.url("/v2/trunc/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = header(&start, "location");
    let first = client
        .patch(server.url(&location))
        .header("Content-Range", "0-99")
        .body(content[..100].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let mut request = format!(
        "PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        content.len() - 100
    )
    .into_bytes();
    request.extend_from_slice(half);
    send_and_hang_up(&server, &request);
    let status = client.get(server.url(&location)).send().await.unwrap();
    assert_eq!(header(&status, "range"), "0-99");

    // The session still completes correctly from where it really is.
    let put = client
        .put(server.url(&format!("{location}?digest={digest}")))
        .header("Content-Range", format!("100-{}", content.len() - 1))
        .body(content[100..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_blob(&server, &client, "trunc", &digest, &content).await;
}

#[tokio::test]
async fn concurrent_pushes_of_one_blob_and_one_tag() {
    let server = std::sync::Arc::new(Server::start(&[]));
    let client = client();
    let content: Vec<u8> = (0..500_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let digest = sha256(&content);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (server, client, content, digest) = (
            server.clone(),
            client.clone(),
            content.clone(),
            digest.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let start = client
                .post(server.url("/v2/race/blobs/uploads/"))
                .send()
                .await
                .unwrap();
            let location = header(&start, "location");
            let patch = client
                .patch(server.url(&location))
                .body(content)
                .send()
                .await
                .unwrap();
            assert_eq!(patch.status(), StatusCode::ACCEPTED);
            let location = header(&patch, "location");
            let put = client
                .put(server.url(&format!("{location}?digest={digest}")))
                .send()
                .await
                .unwrap();
            put.status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::CREATED);
    }
    assert_blob(&server, &client, "race", &digest, &content).await;

    let mut tasks = Vec::new();
    for i in 0..8 {
        let (server, client) = (server.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let (manifest, digest, _) = push_image(
                &server,
                &client,
                "race",
                &format!("own{i}"),
                &format!("s{i}"),
            )
            .await;
            let put = put_manifest(&server, &client, "race", "same", OCI_MANIFEST, &manifest).await;
            (put.status(), digest)
        }));
    }
    let mut digests = Vec::new();
    for task in tasks {
        let (status, digest) = task.await.unwrap();
        assert_eq!(status, StatusCode::CREATED);
        digests.push(digest);
    }
    let get = client
        .get(server.url("/v2/race/manifests/same"))
        .send()
        .await
        .unwrap();
    let digest = header(&get, "docker-content-digest");
    let bytes = get.bytes().await.unwrap();
    assert_eq!(sha256(&bytes), digest);
    assert!(digests.contains(&digest));
    let tags: serde_json::Value = client
        .get(server.url("/v2/race/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"].as_array().unwrap().len(), 9);
}
