//! The fixtures and oracles the patcher's tests rely on, checked against
//! the real thing: apt's plan computed on the host against a root's
//! database equals apt's own plan inside a chroot of that root; the
//! multi-platform layout is an index of an amd64 and an arm64 image that
//! each have a security update to make; dpkg's audit and verify say
//! nothing about a fresh image and something about a tampered one.
//! Needs root, network access to the archives, and the tools
//! scripts/install-test-deps.sh installs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use testkit::distroless::{self, ARCHITECTURES};
use testkit::oracle::inst_lines;
use testkit::{
    DEBIAN_TAG, UBUNTU_TAG, apt_upgradable, apt_upgrades, debian_layout, debian_rootfs, dpkg_audit,
    dpkg_status, dpkg_verify, run, ubuntu_layout, ubuntu_rootfs, umoci_unpack,
};

const BOOKWORM: &str = "deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main";

const NOBLE: &str = "deb http://archive.ubuntu.com/ubuntu noble main
deb http://archive.ubuntu.com/ubuntu noble-updates main
deb http://security.ubuntu.com/ubuntu noble-security main";

fn host_architecture() -> String {
    run(Command::new("dpkg").arg("--print-architecture"))
        .trim()
        .to_string()
}

/// A fresh copy of `layout:tag`'s root filesystem (the cached ones stay untouched).
fn fresh_rootfs(layout: &Path, tag: &str, work: &Path) -> std::path::PathBuf {
    let bundle = work.join("bundle");
    umoci_unpack(layout, tag, &bundle);
    bundle.join("rootfs")
}

/// `apt-get -s --with-new-pkgs upgrade` run by the image's own apt inside a
/// chroot of a copy of its root filesystem, with only `sources`.
fn chroot_upgrades(layout: &Path, tag: &str, sources: &str) -> BTreeMap<String, String> {
    let work = tempfile::tempdir().unwrap();
    let root = fresh_rootfs(layout, tag, work.path());
    let apt_dir = root.join("etc/apt");
    std::fs::write(apt_dir.join("sources.list"), format!("{sources}\n")).unwrap();
    for entry in std::fs::read_dir(apt_dir.join("sources.list.d")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let resolv = root.join("etc/resolv.conf");
    let _ = std::fs::remove_file(&resolv);
    std::fs::copy("/etc/resolv.conf", &resolv).unwrap();
    run(Command::new("mknod")
        .args(["-m", "666"])
        .arg(root.join("dev/null"))
        .args(["c", "1", "3"]));
    let chroot = |args: &[&str]| {
        let output = Command::new("chroot")
            .arg(&root)
            .args(args)
            .env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            output.status.success()
                && !stderr
                    .lines()
                    .any(|l| l.starts_with("W:") || l.starts_with("E:")),
            "chroot {args:?} failed:\n{}{stderr}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    chroot(&["apt-get", "-q", "update"]);
    inst_lines(&chroot(&[
        "apt-get",
        "-s",
        "--with-new-pkgs",
        "-o",
        "APT::Get::Always-Include-Phased-Updates=true",
        "upgrade",
    ]))
}

#[test]
fn debian_upgrades_match_apt_in_a_chroot() {
    let layout = debian_layout();
    let root = debian_rootfs(&layout);
    let upgrades = apt_upgrades(&root, &host_architecture(), BOOKWORM);
    eprintln!("bookworm image: {} upgrades: {upgrades:?}", upgrades.len());
    assert!(
        !upgrades.is_empty(),
        "the debootstrap image has nothing to upgrade"
    );
    assert_eq!(
        upgrades,
        chroot_upgrades(&layout, DEBIAN_TAG, BOOKWORM),
        "apt on the host and apt in a chroot of the image disagree"
    );
    // The image's dependencies are met: apt list --upgradable agrees.
    assert_eq!(
        apt_upgradable(&root, &host_architecture(), BOOKWORM),
        upgrades
    );
}

#[test]
fn ubuntu_release_pocket_upgrades_match_apt_in_a_chroot() {
    let layout = ubuntu_layout();
    let root = ubuntu_rootfs(&layout);
    let upgrades = apt_upgrades(&root, &host_architecture(), NOBLE);
    eprintln!("noble image: {} upgrades", upgrades.len());
    assert!(
        !upgrades.is_empty(),
        "noble's release pocket lacks no update"
    );
    assert_eq!(
        upgrades,
        chroot_upgrades(&layout, UBUNTU_TAG, NOBLE),
        "apt on the host and apt in a chroot of the image disagree"
    );
}

#[test]
fn multiarch_layout_is_an_index_of_two_platforms_with_security_updates() {
    let images = distroless::multiarch();
    let (layout, tag) = testkit::multiarch_layout();
    assert_eq!((&images.layout, &images.tag), (&layout, &tag));

    // The tag names an image index whose descriptors carry each platform,
    // and each image's config says its architecture.
    let blob = |digest: &serde_json::Value| -> serde_json::Value {
        let digest = digest.as_str().unwrap().strip_prefix("sha256:").unwrap();
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(digest)).unwrap())
            .unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let tagged = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag.as_str())
        .unwrap();
    assert_eq!(
        tagged["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let image_index = blob(&tagged["digest"]);
    let manifests = image_index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), ARCHITECTURES.len());
    for (descriptor, architecture) in manifests.iter().zip(ARCHITECTURES) {
        assert_eq!(descriptor["platform"]["os"], "linux");
        assert_eq!(descriptor["platform"]["architecture"], *architecture);
        let config = blob(&blob(&descriptor["digest"])["config"]["digest"]);
        assert_eq!(config["architecture"], *architecture);
        assert_eq!(config["os"], "linux");
    }

    for platform in &images.platforms {
        let root = testkit::multiarch_rootfs(&platform.architecture);
        let libc6 = std::fs::read_to_string(root.join("var/lib/dpkg/status.d/libc6")).unwrap();
        assert!(
            libc6.contains(&format!("\nArchitecture: {}\n", platform.architecture)),
            "{libc6}"
        );
        let status = dpkg_status(&root);
        assert_eq!(
            status.matches("\nStatus: install ok installed\n").count(),
            platform.packages.len(),
            "{status}"
        );

        let upgrades = apt_upgrades(&root, &platform.architecture, BOOKWORM);
        eprintln!(
            "multiarch {}: {} packages, security updates {:?}, apt upgrades {upgrades:?}",
            platform.architecture,
            platform.packages.len(),
            platform.security_updates
        );
        assert!(!platform.security_updates.is_empty());
        for name in platform.security_updates.keys() {
            assert!(
                upgrades.contains_key(name),
                "{}: apt does not upgrade {name}: {upgrades:?}",
                platform.architecture
            );
        }
        assert_eq!(
            apt_upgradable(&root, &platform.architecture, BOOKWORM),
            upgrades,
            "{}: the packages' dependencies are met, so apt upgrades every upgradable one",
            platform.architecture
        );
    }
}

#[test]
fn distroless_images_with_unmet_dependencies_have_upgradable_packages() {
    let images = distroless::images();
    let work = tempfile::tempdir().unwrap();
    let root = fresh_rootfs(&images.layout, &images.base.tag, work.path());
    // Its ca-certificates depends on openssl, which it lacks: apt refuses to plan.
    let refused = std::panic::catch_unwind(|| apt_upgrades(&root, "amd64", BOOKWORM))
        .expect_err("apt planned an upgrade of packages whose dependencies are unmet");
    let message = refused.downcast_ref::<String>().unwrap();
    assert!(message.contains("nmet dependencies"), "{message}");

    let upgradable = apt_upgradable(&root, "amd64", BOOKWORM);
    eprintln!("distroless base: upgradable {upgradable:?}");
    for name in upgradable.keys() {
        assert!(
            images
                .base
                .packages
                .iter()
                .any(|p| p.starts_with(&format!("{name} "))),
            "{name} is not installed"
        );
    }
}

#[test]
fn dpkg_is_silent_on_fresh_images_and_reports_a_changed_file() {
    for (layout, tag) in [(debian_layout(), DEBIAN_TAG), (ubuntu_layout(), UBUNTU_TAG)] {
        let work = tempfile::tempdir().unwrap();
        let root = fresh_rootfs(&layout, tag, work.path());
        assert_eq!(dpkg_audit(&root), "", "{tag}");
        assert_eq!(
            dpkg_verify(&root, &["libc6", "base-files", "dpkg"]),
            "",
            "{tag}"
        );

        std::fs::write(root.join("etc/debian_version"), "tampered\n").unwrap();
        let said = dpkg_verify(&root, &["base-files"]);
        assert!(said.contains("/etc/debian_version"), "{tag}: {said}");
        let info = root.join("var/lib/dpkg/info");
        let list = std::fs::read_dir(&info)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|f| f == "libc6.list" || (f.starts_with("libc6:") && f.ends_with(".list")))
            .unwrap();
        std::fs::remove_file(info.join(list)).unwrap();
        assert_ne!(
            dpkg_audit(&root),
            "",
            "{tag}: a package without its file list"
        );
    }
}
