//! `drydock patch` end to end on real images built from Debian's and
//! Ubuntu's archives, with apt and dpkg as the oracles: the upgraded set
//! equals what `apt-get -s --with-new-pkgs upgrade` plans from the same
//! suites (computed now, never written down), and the patched root
//! filesystem passes `dpkg --audit` and `dpkg -V`. Needs root and the
//! tools of scripts/install-test-deps.sh.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use patch_support::{drydock, patch_update_all, succeed};
use testkit::oracle::{apt_upgradable, apt_upgrades, dpkg_audit, dpkg_verify};

mod patch_support;
mod registry_support;

const DEBIAN_SOURCES: &str = "deb http://deb.debian.org/debian bookworm main\n\
deb http://deb.debian.org/debian bookworm-updates main\n\
deb http://deb.debian.org/debian-security bookworm-security main\n";
const DEBIAN_SECURITY: &str = "deb http://deb.debian.org/debian-security bookworm-security main\n";

/// A private copy of a layout, so tests never change the cached fixtures.
fn copy_layout(layout: &Path, into: &Path) -> PathBuf {
    let copy = into.join("layout");
    testkit::run(Command::new("cp").arg("-a").arg(layout).arg(&copy));
    copy
}

fn unpack(layout: &Path, tag: &str, into: &Path) -> PathBuf {
    let bundle = into.join(format!("bundle-{tag}"));
    testkit::umoci_unpack(layout, tag, &bundle);
    bundle.join("rootfs")
}

/// name → version of the installed packages, as dpkg itself reads `root`'s database.
fn dpkg_packages(root: &Path) -> BTreeMap<String, String> {
    let status = testkit::oracle::dpkg_status(root);
    let admin = tempfile::tempdir().unwrap();
    std::fs::write(admin.path().join("status"), status).unwrap();
    testkit::run(
        Command::new("dpkg-query")
            .arg(format!("--admindir={}", admin.path().display()))
            .args(["-W", "-f", "${Package} ${Version}\n"]),
    )
    .lines()
    .filter_map(|l| l.split_once(' '))
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect()
}

fn changed(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    after
        .iter()
        .filter(|(name, version)| before.get(*name) != Some(version))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}

fn manifest_of(layout: &Path, tag: &str) -> serde_json::Value {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no tag {tag}"))["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn tag_digest(layout: &Path, tag: &str) -> Option<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .map(|m| m["digest"].as_str().unwrap().to_string())
}

#[test]
fn debian_image_upgrades_exactly_what_apt_would() {
    let work = tempfile::tempdir().unwrap();
    let layout = copy_layout(&testkit::debian_layout(), work.path());
    let original_root = testkit::debian_rootfs(&testkit::debian_layout());
    let expected = apt_upgrades(&original_root, "amd64", DEBIAN_SOURCES);
    assert!(
        !expected.is_empty(),
        "the base release should lack some updates"
    );

    let image = format!("oci:{}:{}", layout.display(), testkit::DEBIAN_TAG);
    let vex = work.path().join("vex.json");
    let data = work.path().join("data");
    succeed(drydock(
        &data,
        &[
            "patch",
            &image,
            "--update-all",
            "--tag",
            "patched",
            "--vex",
            vex.to_str().unwrap(),
        ],
    ));
    let root = unpack(&layout, "patched", work.path());
    let before = dpkg_packages(&original_root);
    let after = dpkg_packages(&root);
    assert_eq!(
        changed(&before, &after),
        expected,
        "drydock's upgrades differ from apt's plan"
    );

    assert!(
        apt_upgradable(&root, "amd64", DEBIAN_SECURITY).is_empty(),
        "security updates remain"
    );
    assert_eq!(dpkg_audit(&root), "", "dpkg --audit");
    let upgraded: Vec<&str> = expected.keys().map(String::as_str).collect();
    assert_eq!(dpkg_verify(&root, &upgraded), "", "dpkg -V");
    // The upgraded programs run and report their new versions.
    let in_chroot = |args: &[&str]| testkit::run(Command::new("chroot").arg(&root).args(args));
    let listed = in_chroot(&["dpkg-query", "-W", "-f", "${Package} ${Version}\n"]);
    for (name, version) in &expected {
        assert!(
            listed.contains(&format!("{name} {version}\n")),
            "{name} {version} not in\n{listed}"
        );
    }
    if let Some(version) = expected.get("apt") {
        assert!(in_chroot(&["apt", "--version"]).contains(version.as_str()));
    }
    if let Some(version) = expected.get("perl-base") {
        let upstream = version.split('-').next().unwrap();
        assert!(in_chroot(&["perl", "-e", "print $^V"]).contains(upstream));
    }
    // The history says what changed; the base image is recorded.
    let manifest = manifest_of(&layout, "patched");
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.name"],
        image.as_str()
    );
    let vex: serde_json::Value = serde_json::from_slice(&std::fs::read(&vex).unwrap()).unwrap();
    assert_eq!(vex["@context"], "https://openvex.dev/ns/v0.2.0");
}

#[test]
fn patches_are_deterministic_and_repatching_starts_from_the_original() {
    let work = tempfile::tempdir().unwrap();
    let layout = copy_layout(&testkit::debian_layout(), work.path());
    let data = work.path().join("data");
    let image = format!("oci:{}:{}", layout.display(), testkit::DEBIAN_TAG);
    succeed(drydock(
        &data,
        &["patch", &image, "--update-all", "--tag", "p1"],
    ));
    succeed(drydock(
        &data,
        &["patch", &image, "--update-all", "--tag", "p1-again"],
    ));
    let first = tag_digest(&layout, "p1").unwrap();
    assert_eq!(
        tag_digest(&layout, "p1-again").unwrap(),
        first,
        "same inputs, same digest"
    );
    assert_eq!(
        tag_digest(&layout, testkit::DEBIAN_TAG),
        tag_digest(&testkit::debian_layout(), testkit::DEBIAN_TAG),
        "the original tag is untouched"
    );

    let patched = format!("oci:{}:p1", layout.display());
    succeed(drydock(
        &data,
        &["patch", &patched, "--update-all", "--tag", "p2"],
    ));
    let original_layers = manifest_of(&layout, testkit::DEBIAN_TAG)["layers"]
        .as_array()
        .unwrap()
        .len();
    let second = manifest_of(&layout, "p2");
    assert_eq!(
        second["layers"].as_array().unwrap().len(),
        original_layers + 1
    );
    assert_eq!(
        second["annotations"]["dev.drydock.patch.original"],
        manifest_of(&layout, "p1")["annotations"]["dev.drydock.patch.original"]
    );
}

#[test]
fn distroless_image_is_patched_in_status_d() {
    let work = tempfile::tempdir().unwrap();
    let images = testkit::distroless::images();
    let layout = copy_layout(&images.layout, work.path());
    let original_root = unpack(&layout, &images.base.tag, work.path());
    let expected = apt_upgradable(&original_root, "amd64", DEBIAN_SOURCES);
    let image = format!("oci:{}:{}", layout.display(), images.base.tag);
    let data = work.path().join("data");
    let out = succeed(drydock(
        &data,
        &["patch", &image, "--update-all", "--tag", "patched"],
    ));
    if expected.is_empty() {
        assert!(out.contains("needs no patch"), "{out}");
        return;
    }
    // Sandbox mode runs the image's own dpkg, which a distroless image lacks.
    let refused = patch_update_all(&data, &image, "sandboxed", true);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("has no dpkg"), "{said}");
    assert_eq!(tag_digest(&layout, "sandboxed"), None, "nothing is written");
    let root = unpack(&layout, "patched", work.path());
    assert!(
        !root.join("var/lib/dpkg/status").exists(),
        "a distroless image keeps status.d only"
    );
    let after = dpkg_packages(&root);
    let before = dpkg_packages(&original_root);
    let upgraded = changed(&before, &after);
    for (name, version) in &expected {
        assert_eq!(upgraded.get(name), Some(version), "{name}");
    }
    assert!(apt_upgradable(&root, "amd64", DEBIAN_SOURCES).is_empty());
}

#[test]
fn two_platform_index_is_patched_per_platform() {
    let work = tempfile::tempdir().unwrap();
    let (fixture, tag) = testkit::distroless::multiarch_layout();
    let layout = copy_layout(&fixture, work.path());
    let data = work.path().join("data");
    let image = format!("oci:{}:{tag}", layout.display());
    succeed(drydock(
        &data,
        &["patch", &image, "--update-all", "--tag", "patched"],
    ));
    let original = manifest_of(&layout, &tag);
    let patched = manifest_of(&layout, "patched");
    let platforms = |index: &serde_json::Value| -> Vec<(String, String)> {
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["platform"]["architecture"].as_str().unwrap().to_string(),
                    m["digest"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let (before, after) = (platforms(&original), platforms(&patched));
    assert_eq!(before.len(), 2);
    assert_eq!(after.len(), 2);
    for ((arch, old), (new_arch, new)) in before.iter().zip(&after) {
        assert_eq!(arch, new_arch);
        assert_ne!(old, new, "{arch} was not patched");
        let original_root = testkit::distroless::multiarch_rootfs(arch);
        let expected = apt_upgradable(&original_root, arch, DEBIAN_SOURCES);
        assert!(!expected.is_empty());
        // Unpack this platform's patched manifest through a tag of its own.
        let digest = new.trim_start_matches("sha256:");
        let size = std::fs::metadata(layout.join("blobs/sha256").join(digest))
            .unwrap()
            .len();
        let platform_tag = format!("patched-{arch}");
        let mut index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        index["manifests"].as_array_mut().unwrap().push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": new, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": platform_tag}
        }));
        std::fs::write(
            layout.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
        let root = unpack(&layout, &platform_tag, work.path());
        let upgraded = changed(&dpkg_packages(&original_root), &dpkg_packages(&root));
        for (name, version) in &expected {
            assert_eq!(upgraded.get(name), Some(version), "{arch} {name}");
        }
    }
}

#[test]
fn ubuntu_image_upgrades_exactly_what_apt_would() {
    let work = tempfile::tempdir().unwrap();
    let fixture = testkit::ubuntu_layout();
    let layout = copy_layout(&fixture, work.path());
    let original_root = testkit::ubuntu_rootfs(&fixture);
    let sources = "deb http://archive.ubuntu.com/ubuntu noble main restricted universe multiverse\n\
deb http://archive.ubuntu.com/ubuntu noble-updates main restricted universe multiverse\n\
deb http://security.ubuntu.com/ubuntu noble-security main restricted universe multiverse\n";
    let expected = apt_upgrades(&original_root, "amd64", sources);
    assert!(!expected.is_empty());
    let image = format!("oci:{}:{}", layout.display(), testkit::UBUNTU_TAG);
    let data = work.path().join("data");
    succeed(drydock(
        &data,
        &["patch", &image, "--update-all", "--tag", "patched"],
    ));
    let root = unpack(&layout, "patched", work.path());
    assert_eq!(
        changed(&dpkg_packages(&original_root), &dpkg_packages(&root)),
        expected
    );
    assert_eq!(dpkg_audit(&root), "");
}

/// A one-layer image with an os-release and, optionally, a dpkg status file.
fn tiny_image(dir: &Path, os_release: &str, status: Option<&str>) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/os-release"), os_release).unwrap();
    if let Some(status) = status {
        std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
        std::fs::write(root.join("var/lib/dpkg/status"), status).unwrap();
    }
    let layout = dir.join("layout");
    testkit::run(
        Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout),
    );
    testkit::run(
        Command::new("umoci")
            .args(["new", "--image"])
            .arg(format!("{}:t", layout.display())),
    );
    let bundle = dir.join("bundle");
    testkit::umoci_unpack(&layout, "t", &bundle);
    testkit::run(
        Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", root.display()))
            .arg(bundle.join("rootfs")),
    );
    testkit::run(
        Command::new("umoci")
            .args(["repack", "--image"])
            .arg(format!("{}:t", layout.display()))
            .arg(&bundle),
    );
    layout
}

#[test]
fn refuses_images_it_cannot_patch_and_writes_nothing() {
    let status = "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 9.9+deb9u13\n";
    let cases = [
        (
            "ID=debian\nVERSION_ID=\"9\"\nVERSION_CODENAME=stretch\n",
            Some(status),
            "end of life",
        ),
        (
            "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
            None,
            "no dpkg database",
        ),
        ("ID=alpine\nVERSION_ID=3.20.3\n", None, "not supported"),
    ];
    for (os_release, status, message) in cases {
        let work = tempfile::tempdir().unwrap();
        let layout = tiny_image(work.path(), os_release, status);
        let before = std::fs::read(layout.join("index.json")).unwrap();
        let output = drydock(
            &work.path().join("data"),
            &[
                "patch",
                &format!("oci:{}:t", layout.display()),
                "--update-all",
            ],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{message}: patched anyway");
        assert!(stderr.contains(message), "{message}: {stderr}");
        assert_eq!(
            std::fs::read(layout.join("index.json")).unwrap(),
            before,
            "{message}: the layout changed"
        );
        if message == "end of life" {
            // --allow-eol gets past the refusal (to stretch's suites, which
            // deb.debian.org no longer serves).
            let output = drydock(
                &work.path().join("data"),
                &[
                    "patch",
                    &format!("oci:{}:t", layout.display()),
                    "--update-all",
                    "--allow-eol",
                ],
            );
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!stderr.contains("end of life"), "{stderr}");
        }
    }
}

#[test]
fn refuses_a_tampered_release_file_and_writes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let layout = copy_layout(&testkit::debian_layout(), work.path());
    // A mirror serving Debian's real InRelease files with one signed byte changed.
    let mirror = work.path().join("mirror");
    for suite in ["bookworm", "bookworm-updates"] {
        let real = testkit::download(&format!(
            "http://deb.debian.org/debian/dists/{suite}/InRelease"
        ));
        let text = String::from_utf8(real).unwrap();
        let tampered = text.replacen("Components: main", "Components: mains", 1);
        assert_ne!(tampered, text);
        let dir = mirror.join(format!("debian/dists/{suite}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("InRelease"), tampered).unwrap();
    }
    let server = testkit::FileServer::start(&mirror);
    let before = std::fs::read(layout.join("index.json")).unwrap();
    let output = drydock(
        &work.path().join("data"),
        &[
            "patch",
            &format!("oci:{}:{}", layout.display(), testkit::DEBIAN_TAG),
            "--update-all",
            "--mirror",
            &format!("http://deb.debian.org/debian={}/debian", server.url),
        ],
    );
    drop(server);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "patched from a tampered suite");
    assert!(stderr.contains("signature"), "{stderr}");
    assert!(stderr.contains("--allow-unsigned"), "{stderr}");
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        before,
        "the layout changed"
    );
}

/// GET with OCI manifest and index accepted: status, `Docker-Content-Digest`, body.
fn get(url: &str) -> (u16, Option<String>, Vec<u8>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let response = registry_support::client()
            .get(url)
            .header(
                "Accept",
                "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
            )
            .send()
            .await
            .unwrap();
        let digest = response
            .headers()
            .get("docker-content-digest")
            .map(|v| v.to_str().unwrap().to_string());
        (response.status().as_u16(), digest, response.bytes().await.unwrap().to_vec())
    })
}

#[test]
fn patches_a_registry_image_beside_the_original_pushing_only_new_blobs() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let server = registry_support::Server::start(&[]);
    let layout = testkit::debian_layout();
    let original = format!("{}/debian:12", server.address);
    registry_support::drydock(&[
        "import",
        &format!("oci:{}:{}", layout.display(), testkit::DEBIAN_TAG),
        &original,
    ]);
    let head = |reference: &str| {
        let (status, digest, _) = get(&server.url(&format!("/v2/debian/manifests/{reference}")));
        (status == 200).then_some(digest).flatten()
    };
    let before = head("12").unwrap();

    // The default plan: what the scan finds fixable, i.e. what the security pocket updates.
    let root = testkit::debian_rootfs(&layout);
    let security = "deb http://deb.debian.org/debian bookworm main\n".to_string() + DEBIAN_SECURITY;
    let expected = apt_upgrades(&root, "amd64", &security);
    let vex = work.path().join("vex.json");
    let out = succeed(drydock(
        &data,
        &["patch", &original, "--vex", vex.to_str().unwrap()],
    ));
    assert_eq!(head("12").unwrap(), before, "the original tag moved");
    let patched = head("12-patched").expect("12-patched was pushed");
    assert!(
        out.contains("blobs: 2 pushed"),
        "only the new layer and config are sent:\n{out}"
    );

    let pulled = work.path().join("pulled");
    registry_support::drydock(&[
        "import",
        &format!("{}/debian:12-patched", server.address),
        &format!("oci:{}:p", pulled.display()),
    ]);
    let patched_root = unpack(&pulled, "p", work.path());
    let upgraded = changed(&dpkg_packages(&root), &dpkg_packages(&patched_root));
    assert_eq!(
        upgraded.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the scan-driven plan differs from the security pocket's updates"
    );

    // The VEX document and the post-patch scan are referrers of the patched manifest.
    let referrers: serde_json::Value =
        serde_json::from_slice(&get(&server.url(&format!("/v2/debian/referrers/{patched}"))).2)
            .unwrap();
    let mut types: Vec<&str> = referrers["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["artifactType"].as_str())
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "application/vnd.drydock.scan.report.v1+json",
            "application/vnd.openvex+json"
        ]
    );
    let vex: serde_json::Value = serde_json::from_slice(&std::fs::read(&vex).unwrap()).unwrap();
    assert!(!vex["statements"].as_array().unwrap().is_empty());

    // Scanning the patched image finds nothing fixable left.
    let report: serde_json::Value = serde_json::from_str(&succeed(drydock(
        &data,
        &[
            "scan",
            &format!("{}/debian:12-patched", server.address),
            "--ignore-unfixed",
            "--format",
            "json",
        ],
    )))
    .unwrap();
    let left: usize = report["Results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Vulnerabilities"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(left, 0);
}
