//! Interoperability with real clients: skopeo and umoci (an OCI layout copied
//! in and back out byte-identical, then unpacked) and the `oci-client` crate.

mod registry_support;

use std::path::Path;
use std::process::Command;

use registry_support::*;

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn manifest_digest(layout: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn skopeo_round_trip_of_an_umoci_layout() {
    require_tool("skopeo");
    require_tool("umoci");
    let server = Server::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let bundle = work.path().join("bundle");
    let (layout_s, bundle_s) = (layout.to_str().unwrap(), bundle.to_str().unwrap());
    let image = format!("{layout_s}:t");
    run("umoci", &["init", "--layout", layout_s]);
    run("umoci", &["new", "--image", &image]);
    run(
        "umoci",
        &["unpack", "--rootless", "--image", &image, bundle_s],
    );
    std::fs::create_dir_all(bundle.join("rootfs/etc")).unwrap();
    std::fs::write(bundle.join("rootfs/etc/greeting"), "hello from drydock\n").unwrap();
    std::fs::write(
        bundle.join("rootfs/big.bin"),
        (0..2_000_000u32)
            .map(|i| (i % 253) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    run("umoci", &["repack", "--image", &image, bundle_s]);

    let remote = format!("docker://{}/clients/skopeo:t", server.address);
    run(
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &format!("oci:{image}"),
            &remote,
        ],
    );
    let pulled = work.path().join("pulled");
    let pulled_image = format!("{}:t", pulled.to_str().unwrap());
    run(
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            &remote,
            &format!("oci:{pulled_image}"),
        ],
    );

    assert_eq!(manifest_digest(&pulled), manifest_digest(&layout));
    let mut compared = 0;
    for entry in std::fs::read_dir(pulled.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        let original = layout.join("blobs/sha256").join(entry.file_name());
        assert_eq!(
            std::fs::read(entry.path()).unwrap(),
            std::fs::read(&original).unwrap(),
            "blob {:?}",
            entry.file_name()
        );
        compared += 1;
    }
    assert!(
        compared >= 3,
        "expected manifest, config and layers, found {compared} blobs"
    );

    let unpacked = work.path().join("unpacked");
    run(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &pulled_image,
            unpacked.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(unpacked.join("rootfs/etc/greeting")).unwrap(),
        "hello from drydock\n"
    );
}

#[tokio::test]
async fn oci_client_pushes_and_pulls() {
    use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
    use oci_client::secrets::RegistryAuth;

    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = Server::start(&[]);
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    });
    let reference: oci_client::Reference = format!("{}/clients/oci-client:v1", server.address)
        .parse()
        .unwrap();
    let layers = vec![
        ImageLayer::oci_v1(b"first layer".to_vec(), None),
        ImageLayer::oci_v1(vec![9u8; 3_000_000], None),
    ];
    let config = Config::oci_v1(
        b"{\"architecture\":\"amd64\",\"os\":\"linux\"}".to_vec(),
        None,
    );
    client
        .push(
            &reference,
            &layers,
            config.clone(),
            &RegistryAuth::Anonymous,
            None,
        )
        .await
        .expect("oci-client push");
    let image = client
        .pull(
            &reference,
            &RegistryAuth::Anonymous,
            vec![OCI_LAYER, "application/vnd.oci.image.layer.v1.tar"],
        )
        .await
        .expect("oci-client pull");
    assert_eq!(image.layers.len(), 2);
    let mut pulled: Vec<String> = image.layers.iter().map(|l| sha256(&l.data)).collect();
    let mut pushed: Vec<String> = layers.iter().map(|l| sha256(&l.data)).collect();
    pulled.sort();
    pushed.sort();
    assert_eq!(pulled, pushed);
    assert_eq!(image.config.data, config.data);
}
