//! The distribution spec's conformance matrix, over HTTP against a real
//! `drydock serve`: pull, push (every upload style), content discovery and
//! content management.

mod registry_support;

use registry_support::*;
use reqwest::StatusCode;

#[tokio::test]
async fn base_endpoint_announces_api_version() {
    let server = Server::start(&[]);
    let response = client().get(server.url("/v2/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "docker-distribution-api-version"),
        "registry/2.0"
    );
    // Errors say it too, as Distribution's do.
    let missing = client()
        .get(server.url("/v2/no/such/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        header(&missing, "docker-distribution-api-version"),
        "registry/2.0"
    );
}

#[tokio::test]
async fn pull_manifest_and_blob_with_get_head_and_range() {
    let server = Server::start(&[]);
    let client = client();
    let (manifest, digest, layer_digest) =
        push_image(&server, &client, "pull/me", "v1", "pull").await;

    for reference in ["v1", digest.as_str()] {
        let url = server.url(&format!("/v2/pull/me/manifests/{reference}"));
        let head = client.head(&url).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(header(&head, "docker-content-digest"), digest);
        assert_eq!(header(&head, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&head, "content-length"), manifest.len().to_string());
        let get = client
            .get(&url)
            .header("Accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), StatusCode::OK);
        assert_eq!(get.bytes().await.unwrap(), manifest);
    }

    let layer = b"layer for pull";
    let url = server.url(&format!("/v2/pull/me/blobs/{layer_digest}"));
    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-length"), layer.len().to_string());
    assert_eq!(header(&head, "docker-content-digest"), layer_digest);
    let get = client.get(&url).send().await.unwrap();
    assert_eq!(get.bytes().await.unwrap().as_ref(), layer);

    let part = client
        .get(&url)
        .header("Range", "bytes=6-8")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&part, "content-range"),
        format!("bytes 6-8/{}", layer.len())
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &layer[6..=8]);
    let beyond = client
        .get(&url)
        .header("Range", "bytes=100-")
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // The manifest is also readable through the blob endpoint.
    assert_blob(&server, &client, "pull/me", &digest, &manifest).await;

    let missing = client
        .get(server.url(&format!("/v2/pull/me/blobs/{}", sha256(b"nothing"))))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(missing).await, "BLOB_UNKNOWN");
    let missing = client
        .get(server.url("/v2/pull/me/manifests/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(missing).await, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn push_post_then_put_and_streamed_patch() {
    let server = Server::start(&[]);
    let client = client();
    let content = b"post then put".to_vec();
    let digest = sha256(&content);

    let start = client
        .post(server.url("/v2/push/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::ACCEPTED);
    assert!(!header(&start, "docker-upload-uuid").is_empty());
    let location = header(&start, "location");
    assert!(location.starts_with("/v2/push/blobs/uploads/"));
    let put = client
        .put(server.url(&format!("{location}?digest={digest}")))
        .body(content.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(header(&put, "location"), format!("/v2/push/blobs/{digest}"));
    assert_eq!(header(&put, "docker-content-digest"), digest);

    // Streamed: a PATCH without Content-Range, then a PUT without a body.
    let streamed: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let streamed_digest = sha256(&streamed);
    let start = client
        .post(server.url("/v2/push/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = header(&start, "location");
    let chunks = futures_util::stream::iter(
        streamed
            .chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let patch = client
        .patch(server.url(&location))
        .header("Content-Type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&patch, "range"), format!("0-{}", streamed.len() - 1));
    let location = header(&patch, "location");
    let status = client.get(server.url(&location)).send().await.unwrap();
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        header(&status, "range"),
        format!("0-{}", streamed.len() - 1)
    );
    let put = client
        .put(server.url(&format!("{location}?digest={streamed_digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_blob(&server, &client, "push", &streamed_digest, &streamed).await;
}

#[tokio::test]
async fn push_chunked_with_content_range_and_out_of_order_416() {
    let server = Server::start(&[]);
    let client = client();
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let digest = sha256(&content);
    let (first, second) = content.split_at(60_000);

    let start = client
        .post(server.url("/v2/chunked/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = header(&start, "location");

    let out_of_order = client
        .patch(server.url(&location))
        .header(
            "Content-Range",
            format!("{}-{}", first.len(), content.len() - 1),
        )
        .body(second.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(out_of_order.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&out_of_order, "range"), "0-0");
    assert_eq!(error_code(out_of_order).await, "BLOB_UPLOAD_INVALID");

    let patch = client
        .patch(server.url(&location))
        .header("Content-Range", format!("0-{}", first.len() - 1))
        .body(first.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&patch, "range"), format!("0-{}", first.len() - 1));
    let location = header(&patch, "location");

    // Re-sending the first chunk is also out of order now.
    let repeat = client
        .patch(server.url(&location))
        .header("Content-Range", format!("0-{}", first.len() - 1))
        .body(first.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(repeat.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&repeat, "range"), format!("0-{}", first.len() - 1));

    let put = client
        .put(server.url(&format!("{location}?digest={digest}")))
        .header(
            "Content-Range",
            format!("{}-{}", first.len(), content.len() - 1),
        )
        .body(second.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_blob(&server, &client, "chunked", &digest, &content).await;
}

#[tokio::test]
async fn cross_mount_creates_or_falls_back_to_an_upload() {
    let server = Server::start(&[]);
    let client = client();
    let digest = push_blob(&server, &client, "source/repo", b"shared layer").await;

    let mounted = client
        .post(server.url(&format!(
            "/v2/target/blobs/uploads/?mount={digest}&from=source/repo"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(mounted.status(), StatusCode::CREATED);
    assert_eq!(
        header(&mounted, "location"),
        format!("/v2/target/blobs/{digest}")
    );
    let get = client
        .get(server.url(&format!("/v2/target/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(get.bytes().await.unwrap().as_ref(), b"shared layer");

    let unknown = sha256(b"not anywhere");
    let fallback = client
        .post(server.url(&format!(
            "/v2/target/blobs/uploads/?mount={unknown}&from=source/repo"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(fallback.status(), StatusCode::ACCEPTED);
    let location = header(&fallback, "location");
    let put = client
        .put(server.url(&format!(
            "{location}?digest={}",
            sha256(b"uploaded instead")
        )))
        .body("uploaded instead")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn empty_layer_and_cancelled_upload() {
    let server = Server::start(&[]);
    let client = client();
    let digest = push_blob(&server, &client, "empty", b"").await;
    let head = client
        .head(server.url(&format!("/v2/empty/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-length"), "0");
    let get = client
        .get(server.url(&format!("/v2/empty/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert!(get.bytes().await.unwrap().is_empty());

    let start = client
        .post(server.url("/v2/empty/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = header(&start, "location");
    let cancel = client.delete(server.url(&location)).send().await.unwrap();
    assert_eq!(cancel.status(), StatusCode::NO_CONTENT);
    let status = client.get(server.url(&location)).send().await.unwrap();
    assert_eq!(status.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(status).await, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn oci_and_docker_media_types_and_manifest_size_limit() {
    let server = Server::start(&[]);
    let client = client();
    let config = b"{\"docker\":true}";
    let layer = b"docker layer";
    push_blob(&server, &client, "types", config).await;
    push_blob(&server, &client, "types", layer).await;
    let docker = image_manifest(
        DOCKER_MANIFEST,
        (DOCKER_CONFIG, config),
        &[(DOCKER_LAYER, layer)],
    );
    let put = put_manifest(
        &server,
        &client,
        "types",
        "docker",
        DOCKER_MANIFEST,
        &docker,
    )
    .await;
    assert_eq!(put.status(), StatusCode::CREATED);
    let get = client
        .get(server.url("/v2/types/manifests/docker"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&get, "content-type"), DOCKER_MANIFEST);
    assert_eq!(get.bytes().await.unwrap(), docker);

    // An index over the docker manifest.
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": sha256(&docker), "size": docker.len(),
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    }))
    .unwrap();
    let put = put_manifest(&server, &client, "types", "index", OCI_INDEX, &index).await;
    assert_eq!(put.status(), StatusCode::CREATED);
    let get = client
        .get(server.url("/v2/types/manifests/index"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&get, "content-type"), OCI_INDEX);

    // Exactly 4 MiB (padded with an annotation) is accepted; one byte more is not.
    let limit = 4 * 1024 * 1024;
    let padded = |len: usize| {
        let base = image_manifest(
            OCI_MANIFEST,
            (DOCKER_CONFIG, config),
            &[(DOCKER_LAYER, layer)],
        );
        let mut value: serde_json::Value = serde_json::from_slice(&base).unwrap();
        value["annotations"] = serde_json::json!({"pad": ""});
        let overhead = serde_json::to_vec(&value).unwrap().len();
        value["annotations"]["pad"] = "x".repeat(len - overhead).into();
        let bytes = serde_json::to_vec(&value).unwrap();
        assert_eq!(bytes.len(), len);
        bytes
    };
    let at_limit = padded(limit);
    let put = put_manifest(&server, &client, "types", "big", OCI_MANIFEST, &at_limit).await;
    assert_eq!(put.status(), StatusCode::CREATED);
    let get = client
        .get(server.url("/v2/types/manifests/big"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.bytes().await.unwrap(), at_limit);
    let put = put_manifest(
        &server,
        &client,
        "types",
        "too-big",
        OCI_MANIFEST,
        &padded(limit + 1),
    )
    .await;
    assert_eq!(put.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(put).await, "SIZE_INVALID");
}

#[tokio::test]
async fn tag_list_paging_and_catalog() {
    let server = Server::start(&[]);
    let client = client();
    let (manifest, _, _) = push_image(&server, &client, "tags/repo", "c", "tags").await;
    for tag in ["a", "e", "b", "d"] {
        let put = put_manifest(&server, &client, "tags/repo", tag, OCI_MANIFEST, &manifest).await;
        assert_eq!(put.status(), StatusCode::CREATED);
    }
    let all: serde_json::Value = client
        .get(server.url("/v2/tags/repo/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        all,
        serde_json::json!({"name": "tags/repo", "tags": ["a", "b", "c", "d", "e"]})
    );

    let mut collected = Vec::new();
    let mut next = Some("/v2/tags/repo/tags/list?n=2".to_string());
    while let Some(path) = next.take() {
        let response = client.get(server.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        next = response.headers().get("link").map(|l| {
            let l = l.to_str().unwrap();
            assert!(l.ends_with("; rel=\"next\""), "{l}");
            l[1..l.find('>').unwrap()].to_string()
        });
        let page: serde_json::Value = response.json().await.unwrap();
        let tags = page["tags"].as_array().unwrap().clone();
        assert!(tags.len() <= 2);
        collected.extend(tags.into_iter().map(|t| t.as_str().unwrap().to_string()));
    }
    assert_eq!(collected, ["a", "b", "c", "d", "e"]);

    let after: serde_json::Value = client
        .get(server.url("/v2/tags/repo/tags/list?n=10&last=c"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["tags"], serde_json::json!(["d", "e"]));

    let unknown = client
        .get(server.url("/v2/no/such/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(unknown).await, "NAME_UNKNOWN");

    push_blob(&server, &client, "another", b"x").await;
    let catalog: serde_json::Value = client
        .get(server.url("/v2/_catalog"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        catalog,
        serde_json::json!({"repositories": ["another", "tags/repo"]})
    );
    let first = client
        .get(server.url("/v2/_catalog?n=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&first, "link"),
        "</v2/_catalog?n=1&last=another>; rel=\"next\""
    );
}

#[tokio::test]
async fn referrers_with_subject_and_artifact_type_filter() {
    let server = Server::start(&[]);
    let client = client();
    let (subject_bytes, subject, _) = push_image(&server, &client, "ref", "base", "subject").await;
    let empty_config = b"{}";
    push_blob(&server, &client, "ref", empty_config).await;

    let none = client
        .get(server.url(&format!("/v2/ref/referrers/{subject}")))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::OK);
    assert_eq!(header(&none, "content-type"), OCI_INDEX);
    let index: serde_json::Value = none.json().await.unwrap();
    assert_eq!(index["manifests"], serde_json::json!([]));

    let mut referrer_digests = Vec::new();
    for (artifact_type, payload) in [
        ("application/vnd.example.sbom", "sbom"),
        ("application/vnd.example.vex", "vex"),
    ] {
        let blob = push_blob(&server, &client, "ref", payload.as_bytes()).await;
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(empty_config), "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": blob, "size": payload.len()}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_bytes.len()},
            "annotations": {"org.example.kind": payload},
        }))
        .unwrap();
        let digest = sha256(&manifest);
        let put = put_manifest(&server, &client, "ref", &digest, OCI_MANIFEST, &manifest).await;
        assert_eq!(put.status(), StatusCode::CREATED);
        assert_eq!(header(&put, "oci-subject"), subject);
        referrer_digests.push((artifact_type, digest, manifest.len()));
    }

    let all = client
        .get(server.url(&format!("/v2/ref/referrers/{subject}")))
        .send()
        .await
        .unwrap();
    assert!(all.headers().get("oci-filters-applied").is_none());
    let index: serde_json::Value = all.json().await.unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    for (artifact_type, digest, size) in &referrer_digests {
        let entry = manifests
            .iter()
            .find(|m| m["digest"] == digest.as_str())
            .unwrap();
        assert_eq!(entry["artifactType"], *artifact_type);
        assert_eq!(entry["size"], *size);
        assert_eq!(entry["mediaType"], OCI_MANIFEST);
        assert!(entry["annotations"]["org.example.kind"].is_string());
    }

    let filtered = client
        .get(server.url(&format!(
            "/v2/ref/referrers/{subject}?artifactType=application/vnd.example.vex"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&filtered, "oci-filters-applied"), "artifactType");
    let index: serde_json::Value = filtered.json().await.unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        index["manifests"][0]["digest"],
        referrer_digests[1].1.as_str()
    );

    let invalid = client
        .get(server.url("/v2/ref/referrers/sha256:nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(invalid).await, "DIGEST_INVALID");
}

#[tokio::test]
async fn delete_manifest_by_digest_and_tag_and_delete_blob() {
    let server = Server::start(&[]);
    let client = client();
    let (manifest, digest, layer_digest) = push_image(&server, &client, "del", "one", "del").await;
    let put = put_manifest(&server, &client, "del", "two", OCI_MANIFEST, &manifest).await;
    assert_eq!(put.status(), StatusCode::CREATED);

    let by_tag = client
        .delete(server.url("/v2/del/manifests/one"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_tag.status(), StatusCode::ACCEPTED);
    let gone = client
        .get(server.url("/v2/del/manifests/one"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let still = client
        .get(server.url("/v2/del/manifests/two"))
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), StatusCode::OK);

    let by_digest = client
        .delete(server.url(&format!("/v2/del/manifests/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(by_digest.status(), StatusCode::ACCEPTED);
    for reference in ["two", digest.as_str()] {
        let gone = client
            .get(server.url(&format!("/v2/del/manifests/{reference}")))
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), StatusCode::NOT_FOUND);
        assert_eq!(error_code(gone).await, "MANIFEST_UNKNOWN");
    }
    let tags: serde_json::Value = client
        .get(server.url("/v2/del/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], serde_json::json!([]));
    let again = client
        .delete(server.url(&format!("/v2/del/manifests/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    let blob_url = server.url(&format!("/v2/del/blobs/{layer_digest}"));
    assert_eq!(
        client.delete(&blob_url).send().await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let gone = client.get(&blob_url).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(gone).await, "BLOB_UNKNOWN");
    assert_eq!(
        client.delete(&blob_url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn shuts_down_cleanly_on_sigterm() {
    let mut server = Server::start(&[]);
    assert!(
        server.terminate(),
        "serve should exit successfully on SIGTERM"
    );
}
