//! `drydock import` and `drydock repo` end to end: real OCI layouts built
//! with umoci, a real `drydock serve`, skopeo and umoci reading the results,
//! and CNCF Distribution 2.8 as a registry that is not ours.

mod registry_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bytes::Bytes;
use oci::{OciLayout, media_type};
use registry_support::Server;

fn drydock(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drydock"))
        .args(args)
        .env("DRYDOCK_LOG", "warn")
        .env_remove("DRYDOCK_URL")
        .output()
        .expect("run drydock")
}

fn succeed(args: &[&str]) -> String {
    let out = drydock(args);
    assert!(
        out.status.success(),
        "drydock {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is required (scripts/install-test-deps.sh installs it): {e}")
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds a real single-platform image in `layout` with umoci, holding `files`.
fn umoci_image(layout: &Path, tag: &str, architecture: &str, files: &[(&str, &str)]) {
    let layout_s = layout.to_str().unwrap();
    if !layout.join("oci-layout").exists() {
        tool("umoci", &["init", "--layout", layout_s]);
    }
    let image = format!("{layout_s}:{tag}");
    tool("umoci", &["new", "--image", &image]);
    let bundle = tempfile::tempdir().unwrap();
    let bundle_dir = bundle.path().join("b");
    tool(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &image,
            bundle_dir.to_str().unwrap(),
        ],
    );
    for (name, content) in files {
        std::fs::write(bundle_dir.join("rootfs").join(name), content).unwrap();
    }
    tool(
        "umoci",
        &["repack", "--image", &image, bundle_dir.to_str().unwrap()],
    );
    tool(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--os",
            "linux",
            "--architecture",
            architecture,
        ],
    );
}

/// A layout with two platform images and an index `multi` over both.
async fn multi_platform_layout(dir: &Path) -> (OciLayout, Bytes) {
    umoci_image(dir, "amd", "amd64", &[("hello.txt", "hello from amd64\n")]);
    umoci_image(
        dir,
        "arm",
        "arm64",
        &[("hello.txt", "hello from arm64\n"), ("extra", "x")],
    );
    let layout = OciLayout::open(dir).await.unwrap();
    let platform = |arch: &str| serde_json::json!({"os": "linux", "architecture": arch});
    let mut entries = Vec::new();
    for (tag, arch) in [("amd", "amd64"), ("arm", "arm64")] {
        let content = layout.resolve(Some(tag)).await.unwrap();
        entries.push(serde_json::json!({
            "mediaType": content.media_type, "digest": content.digest.to_string(),
            "size": content.size, "platform": platform(arch),
        }));
    }
    let index = Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": media_type::OCI_INDEX, "manifests": entries,
        }))
        .unwrap(),
    );
    let content = layout
        .write_blob_bytes(index.clone(), media_type::OCI_INDEX)
        .await
        .unwrap();
    layout.set_tag(Some("multi"), &content).await.unwrap();
    (layout, index)
}

/// How many distinct blobs the tagged images of a layout require.
async fn distinct_blobs(dir: &Path, tags: &[&str]) -> usize {
    let layout = OciLayout::open(dir).await.unwrap();
    let mut digests = std::collections::HashSet::new();
    for tag in tags {
        let content = layout.resolve(Some(tag)).await.unwrap();
        let bytes = layout.read_blob_bytes(&content).await.unwrap();
        let parsed = oci::ParsedManifest::parse(&bytes, None).unwrap();
        digests.extend(parsed.required_blobs().into_iter().map(|b| b.digest));
    }
    digests.len()
}

fn blob_files(layout: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = layout.join("blobs/sha256");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn imports_a_multi_platform_index_through_the_registry_unchanged() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source");
    let (_, index_bytes) = multi_platform_layout(&source).await;
    let server = Server::start(&[]);
    let addr = &server.address;
    let server_url = &server.base;

    let out = succeed(&[
        "import",
        &format!("oci:{}:multi", source.display()),
        &format!("{addr}/team/app"),
    ]);
    let expected_blobs = distinct_blobs(&source, &["amd", "arm"]).await;
    assert!(
        out.contains(&format!("3 manifest(s); blobs: {expected_blobs} copied")),
        "{out}"
    );

    // The tag came from the source; a real client sees the index byte for byte.
    let tags: Vec<String> = serde_json::from_str(&succeed(&[
        "repo", "tags", "team/app", "--server", server_url,
    ]))
    .unwrap();
    assert_eq!(tags, ["multi"]);
    let raw = tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{addr}/team/app:multi"),
        ],
    );
    assert_eq!(raw.as_bytes(), index_bytes.as_ref());

    // Within one registry blobs are mounted, not copied.
    let out = succeed(&[
        "import",
        &format!("{addr}/team/app:multi"),
        &format!("{addr}/other/app:v2"),
    ]);
    assert!(out.contains("0 copied") && out.contains("mounted"), "{out}");
    let listed: Vec<String> =
        serde_json::from_str(&succeed(&["repo", "list", "--server", server_url])).unwrap();
    assert_eq!(listed, ["other/app", "team/app"]);
    let table = succeed(&[
        "repo",
        "tags",
        "other/app",
        "--server",
        server_url,
        "--output",
        "table",
    ]);
    assert_eq!(table.lines().collect::<Vec<_>>(), ["Tag", "---", "v2"]);

    // Out to a layout again: every blob identical to the source's.
    let exported = work.path().join("exported");
    succeed(&[
        "import",
        &format!("{addr}/other/app:v2"),
        &format!("oci:{}", exported.display()),
    ]);
    let source_blobs = blob_files(&source);
    for (name, bytes) in blob_files(&exported) {
        let original = source_blobs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| b);
        assert_eq!(original, Some(&bytes), "blob {name} differs or is unknown");
    }
    let exported_layout = OciLayout::open(&exported).await.unwrap();
    assert_eq!(exported_layout.tags().await.unwrap(), ["v2"]);

    // One platform by digest, then umoci unpacks what came back.
    let arm = OciLayout::open(&source)
        .await
        .unwrap()
        .resolve(Some("arm"))
        .await
        .unwrap();
    let single = work.path().join("single");
    succeed(&[
        "import",
        &format!("{addr}/other/app@{}", arm.digest),
        &format!("oci:{}:arm", single.display()),
    ]);
    let bundle = work.path().join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:arm", single.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/hello.txt")).unwrap(),
        "hello from arm64\n"
    );
}

#[tokio::test]
async fn refuses_tampered_content_and_moves_no_tag() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source");
    umoci_image(&source, "t", "amd64", &[("payload", &"p".repeat(4096))]);
    let layout = OciLayout::open(&source).await.unwrap();
    let manifest = layout.resolve(Some("t")).await.unwrap();
    let manifest_bytes = layout.read_blob_bytes(&manifest).await.unwrap();
    let parsed = oci::ParsedManifest::parse(&manifest_bytes, None).unwrap();
    let layer = parsed.required_blobs().pop().unwrap();
    let path: PathBuf = source.join("blobs/sha256").join(layer.digest.hex());
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();

    let server = Server::start(&[]);
    let out = drydock(&[
        "import",
        &format!("oci:{}:t", source.display()),
        &format!("{}/victim:t", server.address),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Whichever side finishes hashing first refuses it: drydock's reader or the registry.
    let refused = stderr.contains("digest mismatch") || stderr.contains("DIGEST_INVALID");
    assert!(
        refused && stderr.contains(&layer.digest.to_string()),
        "{stderr}"
    );
    // Blobs that verified may have landed (uploads run concurrently), but no tag moved:
    // the repository is unknown, or it lists no tags.
    let tags = drydock(&["repo", "tags", "victim", "--server", &server.base]);
    if tags.status.success() {
        let listed: Vec<String> = serde_json::from_slice(&tags.stdout).unwrap();
        assert!(
            listed.is_empty(),
            "no tag may exist after a failed import: {listed:?}"
        );
    }

    let missing = drydock(&[
        "import",
        "oci:/nonexistent/layout:t",
        &format!("{}/x:t", server.address),
    ]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not an OCI image layout"));
    let bad_name = drydock(&[
        "import",
        &format!("oci:{}:t", source.display()),
        &format!("{}/Bad/Name:t", server.address),
    ]);
    assert!(String::from_utf8_lossy(&bad_name.stderr).contains("invalid repository name"));
}

#[tokio::test]
async fn authenticates_with_htpasswd_credentials_from_flags_and_docker_config() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source");
    umoci_image(&source, "t", "amd64", &[("f", "auth")]);
    let htpasswd = work.path().join("htpasswd");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    std::fs::write(&htpasswd, format!("alice:{hash}\n")).unwrap();
    let server = Server::start(&["--htpasswd", htpasswd.to_str().unwrap()]);
    let src = format!("oci:{}:t", source.display());
    let dest = format!("{}/private/app:t", server.address);

    let anonymous = drydock(&["import", &src, &dest]);
    assert!(!anonymous.status.success());
    assert!(String::from_utf8_lossy(&anonymous.stderr).contains("user name and password"));
    let wrong = drydock(&["import", &src, &dest, "--dest-creds", "alice:nope"]);
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("refused the credentials"));
    succeed(&["import", &src, &dest, "--dest-creds", "alice:s3cret"]);

    // Credentials from a Docker config.json, as `docker login` leaves them.
    let docker_config = work.path().join("docker");
    std::fs::create_dir_all(&docker_config).unwrap();
    let auth = base64_encode("alice:s3cret");
    std::fs::write(
        docker_config.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
            server.address
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_drydock"))
        .args([
            "import",
            &dest,
            &format!("oci:{}", work.path().join("back").display()),
        ])
        .env("DOCKER_CONFIG", &docker_config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Credentials from a credential helper (`credHelpers`), as docker-credential-* programs give them.
    let bin = work.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-drydocktest");
    let script = format!(
        "#!/bin/sh\nread host\n[ \"$1\" = get ] && [ \"$host\" = \"{}\" ] || exit 1\necho '{{\"Username\":\"alice\",\"Secret\":\"s3cret\"}}'\n",
        server.address
    );
    std::fs::write(&helper, script).unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        docker_config.join("config.json"),
        format!(
            r#"{{"credHelpers":{{"{}":"drydocktest"}}}}"#,
            server.address
        ),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_drydock"))
        .args([
            "import",
            &dest,
            &format!("oci:{}", work.path().join("via-helper").display()),
        ])
        .env("DOCKER_CONFIG", &docker_config)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn base64_encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Pushes an artifact whose subject is `subject` and lists it back as a referrer.
async fn referrer_round_trip(
    client: &oci::RegistryClient,
    image: &oci::ImageReference,
    subject: &oci::ContentRef,
) {
    let empty = oci::ContentRef {
        digest: oci::Digest::sha256_of(b"{}"),
        size: 2,
        media_type: media_type::OCI_EMPTY.to_string(),
    };
    let stream: oci::client::BlobStream = Box::pin(futures_util::stream::once(async {
        Ok(Bytes::from_static(b"{}"))
    }));
    client.push_blob(image, &empty, stream).await.unwrap();
    let artifact = serde_json::json!({
        "schemaVersion": 2, "mediaType": media_type::OCI_MANIFEST,
        "artifactType": "application/vnd.drydock.test+json",
        "config": {"mediaType": media_type::OCI_EMPTY, "digest": empty.digest.to_string(), "size": 2},
        "layers": [{"mediaType": media_type::OCI_EMPTY, "digest": empty.digest.to_string(), "size": 2}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest.to_string(), "size": subject.size},
        "annotations": {"org.example.note": "evidence"},
    });
    let bytes = Bytes::from(serde_json::to_vec(&artifact).unwrap());
    let digest = client
        .push_referrer(image, bytes.clone(), media_type::OCI_MANIFEST)
        .await
        .unwrap();
    assert_eq!(digest, oci::Digest::sha256_of(&bytes));
    // Pushing it twice must not list it twice.
    client
        .push_referrer(image, bytes, media_type::OCI_MANIFEST)
        .await
        .unwrap();

    let found = client
        .referrers(image, &subject.digest, None)
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].digest().as_ref(), digest.to_string());
    assert_eq!(
        found[0]
            .artifact_type()
            .as_ref()
            .map(|a| a.to_string())
            .as_deref(),
        Some("application/vnd.drydock.test+json")
    );
    let filtered = client
        .referrers(image, &subject.digest, Some("application/other"))
        .await
        .unwrap();
    assert!(filtered.is_empty());
}

#[tokio::test]
async fn client_speaks_to_distribution_and_drydock_alike() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source");
    umoci_image(&source, "t", "amd64", &[("f", "peer")]);
    let layout = OciLayout::open(&source).await.unwrap();
    let subject = layout.resolve(Some("t")).await.unwrap();
    let client = oci::RegistryClient::new(oci::ClientOptions {
        chunk_size: Some(1024),
        ..Default::default()
    })
    .unwrap();

    let distribution = testkit::distribution::Distribution::start();
    let drydock_server = Server::start(&[]);
    for address in [&distribution.address, &drydock_server.address] {
        // Chunked uploads (1 KiB PATCHes) through `--chunk-size` and through the library.
        succeed(&[
            "import",
            &format!("oci:{}:t", source.display()),
            &format!("{address}/peer/app:t"),
        ]);
        let image: oci::ImageReference = format!("{address}/peer/chunked:t").parse().unwrap();
        let endpoint_src = oci::copy::Endpoint::Layout {
            layout: layout.clone(),
            tag: Some("t".into()),
        };
        let endpoint_dst = oci::copy::Endpoint::Registry {
            client: client.clone(),
            image: image.clone(),
        };
        let report = oci::copy::copy_image(
            &endpoint_src,
            &endpoint_dst,
            std::sync::Arc::new(oci::copy::Silent),
        )
        .await
        .unwrap();
        assert_eq!(report.digest.as_ref(), Some(&subject.digest));
        assert_eq!(client.list_tags(&image).await.unwrap(), ["t"]);
        referrer_round_trip(&client, &image, &subject).await;
    }
    // Distribution 2.8 has no referrers API: the fallback tag index was written.
    let fallback = format!("{}/peer/chunked", distribution.address);
    let tags: Vec<String> = serde_json::from_str(&succeed(&["repo", "tags", &fallback])).unwrap();
    assert!(
        tags.contains(&format!("sha256-{}", subject.digest.hex())),
        "{tags:?}"
    );
    // drydock has one, so no fallback tag appears there.
    let ours = format!("{}/peer/chunked", drydock_server.address);
    let tags: Vec<String> = serde_json::from_str(&succeed(&["repo", "tags", &ours])).unwrap();
    assert_eq!(tags, ["t"]);
}
