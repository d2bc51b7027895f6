//! Inventories of real images built from Debian's archive, checked against
//! dpkg itself. Needs root (debootstrap, umoci unpack), network access to
//! deb.debian.org and the tools of scripts/install-test-deps.sh. Images are
//! built once into the target directory and reused.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use pkgdb::inventory::{self, NoCache};
use pkgdb::{Inventory, PackageDbKind, ScanLimits};
use testkit::{DEBIAN_TAG, debian_layout, debian_rootfs, run};

/// `Package Version Architecture` of every package dpkg says has its files on disk.
fn dpkg_query(rootfs: &Path) -> BTreeSet<String> {
    let output = run(Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            rootfs.join("var/lib/dpkg").display()
        ))
        .args([
            "-W",
            "-f",
            "${Package} ${Version} ${Architecture} ${db:Status-Status}\n",
        ]));
    output
        .lines()
        .filter(|l| !l.ends_with(" not-installed") && !l.ends_with(" config-files"))
        .map(|l| l.rsplit_once(' ').map_or(l, |(head, _)| head).to_string())
        .collect()
}

fn summary(inventory: &Inventory) -> BTreeSet<String> {
    inventory
        .packages
        .iter()
        .map(|p| format!("{} {} {}", p.name, p.version, p.architecture))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn debootstrap_bookworm_inventory_equals_dpkg_query() {
    let layout_dir = debian_layout();
    let rootfs = debian_rootfs(&layout_dir);
    let expected = dpkg_query(&rootfs);
    assert!(
        expected.len() > 50,
        "dpkg-query listed only {} packages",
        expected.len()
    );

    let layout = oci::OciLayout::open(&layout_dir).await.unwrap();
    let started = std::time::Instant::now();
    let inventory =
        inventory::from_layout(&layout, Some(DEBIAN_TAG), &NoCache, ScanLimits::default())
            .await
            .unwrap();
    eprintln!(
        "inventory of {} packages from the OCI layout in {:?}",
        inventory.packages.len(),
        started.elapsed()
    );
    assert_eq!(summary(&inventory), expected);
    assert_eq!(
        inventory.packages.len(),
        expected.len(),
        "no package listed twice"
    );
    assert_eq!(inventory.package_db, Some(PackageDbKind::Dpkg));
    let os = inventory.os.as_ref().unwrap();
    assert_eq!(
        (
            os.id.as_str(),
            os.version_id.as_deref(),
            os.codename.as_deref()
        ),
        ("debian", Some("12"), Some("bookworm"))
    );
    let point = std::fs::read_to_string(rootfs.join("etc/debian_version")).unwrap();
    assert_eq!(os.release.as_deref(), Some(point.trim()));
    assert_eq!(
        inventory.lifecycle().unwrap().codename.as_deref(),
        Some("bookworm")
    );
    // One layer: every package comes from it.
    let layers: BTreeSet<_> = inventory.packages.iter().map(|p| p.layer.clone()).collect();
    assert_eq!(layers.len(), 1);
    assert!(layers.iter().all(Option::is_some));
    // Source names and versions, as dpkg-query computes them.
    let sources = run(Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            rootfs.join("var/lib/dpkg").display()
        ))
        .args([
            "-W",
            "-f",
            "${Package} ${source:Package} ${source:Version}\n",
        ]));
    let ours: BTreeSet<String> = inventory
        .packages
        .iter()
        .map(|p| format!("{} {} {}", p.name, p.source_name, p.source_version))
        .collect();
    let theirs: BTreeSet<String> = sources
        .lines()
        .filter(|l| {
            ours.iter()
                .any(|o| o.split(' ').next() == l.split(' ').next())
        })
        .map(str::to_string)
        .collect();
    assert_eq!(ours, theirs);

    let from_dir = inventory::from_dir(&rootfs).unwrap();
    assert_eq!(summary(&from_dir), expected);
    assert_eq!(from_dir.os, inventory.os);
}
