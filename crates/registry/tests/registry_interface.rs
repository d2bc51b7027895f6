//! The registry through its real router, in process: pushes and pulls with
//! drydock's own registry client, error bodies with the spec's codes, garbage
//! collection, and reopening a data directory. (`drydock serve`'s end-to-end
//! conformance suite lives with the binary.)

use bytes::Bytes;
use oci::manifest::media_type;
use oci::{ClientOptions, ContentRef, Digest, ImageReference, RegistryClient};

/// Serves a registry over `data_dir` on a loopback port; returns its address.
async fn serve(data_dir: &std::path::Path) -> (registry::Registry, String) {
    let registry = registry::Registry::open(registry::Config::new(data_dir))
        .await
        .expect("open the registry");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let router = registry.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (registry, address)
}

fn content(bytes: &[u8], media_type: &str) -> ContentRef {
    ContentRef {
        digest: Digest::sha256_of(bytes),
        size: bytes.len() as u64,
        media_type: media_type.to_string(),
    }
}

fn stream(bytes: &'static [u8]) -> oci::client::BlobStream {
    Box::pin(futures_util::stream::once(async move {
        Ok(Bytes::from_static(bytes))
    }))
}

/// The spec's error code of an error body.
async fn error_code(http: &reqwest::Client, url: String) -> (u16, String) {
    let response = http.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    (
        status,
        body["errors"][0]["code"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_list_and_collect() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, address) = serve(dir.path()).await;
    let client = RegistryClient::new(ClientOptions {
        chunk_size: Some(5),
        ..ClientOptions::default()
    })
    .unwrap();
    let image: ImageReference = format!("{address}/team/app:v1").parse().unwrap();

    const CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux"}"#;
    const LAYER: &[u8] = b"not really a tar, but bytes all the same";
    let config = content(CONFIG, media_type::OCI_CONFIG);
    let layer = content(LAYER, media_type::OCI_LAYER_GZIP);
    client
        .push_blob(&image, &config, stream(CONFIG))
        .await
        .unwrap();
    client
        .push_blob(&image, &layer, stream(LAYER))
        .await
        .unwrap();
    assert!(client.has_blob(&image, &layer.digest).await.unwrap());

    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "config": {"mediaType": config.media_type, "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}],
    }))
    .unwrap();
    let digest = client
        .put_manifest(
            &image,
            "v1",
            Bytes::from(manifest.clone()),
            media_type::OCI_MANIFEST,
        )
        .await
        .unwrap();
    assert_eq!(digest, Digest::sha256_of(&manifest));

    let fetched = client.get_manifest(&image).await.unwrap();
    assert_eq!(fetched.bytes, manifest);
    assert_eq!(fetched.media_type, media_type::OCI_MANIFEST);
    let pulled = client.get_blob_bytes(&image, &layer, 1024).await.unwrap();
    assert_eq!(pulled, LAYER);
    assert_eq!(client.list_tags(&image).await.unwrap(), ["v1"]);
    assert_eq!(client.catalog(&address).await.unwrap(), ["team/app"]);

    // A repository that does not exist is absent, not an error.
    let nothing: ImageReference = format!("{address}/no/such:latest").parse().unwrap();
    assert!(matches!(
        client.list_tags(&nothing).await,
        Err(oci::Error::NotFound(_))
    ));

    let http = oci::client::http_client_builder().build().unwrap();
    assert_eq!(
        error_code(&http, format!("http://{address}/v2/team/app/manifests/v2")).await,
        (404, "MANIFEST_UNKNOWN".to_string())
    );
    assert_eq!(
        error_code(&http, format!("http://{address}/v2/Team/tags/list")).await,
        (400, "NAME_INVALID".to_string())
    );
    assert_eq!(
        error_code(&http, format!("http://{address}/v2/no/such/tags/list")).await,
        (404, "NAME_UNKNOWN".to_string())
    );

    // Everything is referenced or too young: nothing to collect.
    let report = registry.gc(true).await.unwrap();
    assert!(report.dry_run);
    assert_eq!(report.blobs_removed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_reopens_with_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let image_path = "team/app:v1";
    const MANIFEST_CONFIG: &[u8] = b"{}";
    let config = content(MANIFEST_CONFIG, media_type::OCI_CONFIG);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "config": {"mediaType": config.media_type, "digest": config.digest, "size": config.size},
        "layers": [],
    }))
    .unwrap();
    let client = RegistryClient::new(ClientOptions::default()).unwrap();
    {
        let (_registry, address) = serve(dir.path()).await;
        let image: ImageReference = format!("{address}/{image_path}").parse().unwrap();
        client
            .push_blob(&image, &config, stream(MANIFEST_CONFIG))
            .await
            .unwrap();
        client
            .put_manifest(
                &image,
                "v1",
                Bytes::from(manifest.clone()),
                media_type::OCI_MANIFEST,
            )
            .await
            .unwrap();
    }
    let (_registry, address) = serve(dir.path()).await;
    let image: ImageReference = format!("{address}/{image_path}").parse().unwrap();
    assert_eq!(client.get_manifest(&image).await.unwrap().bytes, manifest);
}
