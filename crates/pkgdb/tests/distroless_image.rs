//! Inventories of distroless-style images assembled from real `.deb` files
//! (one `status.d` file per package, see the testkit crate),
//! checked against what was installed: each package's identity as
//! `dpkg-deb` reads it from the `.deb`'s control file. Needs root (umoci
//! unpack), network access to deb.debian.org and the tools of
//! scripts/install-test-deps.sh.

use std::collections::BTreeSet;

use pkgdb::inventory::{self, NoCache};
use pkgdb::{Inventory, PackageDbKind, ScanLimits};
use testkit::distroless::{self, REMOVED};
use testkit::umoci_unpack;

/// `name version architecture source source-version`, as [`distroless::Deb::identity`].
fn identities(inventory: &Inventory) -> BTreeSet<String> {
    inventory
        .packages
        .iter()
        .map(|p| {
            format!(
                "{} {} {} {} {}",
                p.name, p.version, p.architecture, p.source_name, p.source_version
            )
        })
        .collect()
}

/// The inventory of `tag` in the distroless layout, read from its layers.
fn from_layout(tag: &str) -> Inventory {
    let layout_dir = &distroless::images().layout;
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let layout = oci::OciLayout::open(layout_dir).await.unwrap();
        inventory::from_layout(&layout, Some(tag), &NoCache, ScanLimits::default())
            .await
            .unwrap()
    })
}

/// Unpacks `tag` with umoci (which applies whiteouts) and runs `check` on its root.
fn with_unpacked(tag: &str, check: impl FnOnce(&std::path::Path)) {
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle");
    umoci_unpack(&distroless::images().layout, tag, &bundle);
    check(&bundle.join("rootfs"));
}

#[test]
fn distroless_inventory_equals_the_installed_debs() {
    let image = &distroless::images().base;
    let inventory = from_layout(&image.tag);
    assert_eq!(identities(&inventory), image.packages);
    assert_eq!(
        inventory.packages.len(),
        image.packages.len(),
        "no package listed twice (the .md5sums files are not packages)"
    );
    assert_eq!(inventory.package_db, Some(PackageDbKind::DpkgStatusD));
    let layers: BTreeSet<_> = inventory.packages.iter().map(|p| &p.layer).collect();
    assert_eq!(layers.len(), 1);
    assert!(layers.iter().all(|l| l.is_some()));
    // OS identity: base-files' os-release, and its debian_version for the point release.
    let os = inventory.os.as_ref().expect("base-files ships os-release");
    assert_eq!(
        (
            os.id.as_str(),
            os.version_id.as_deref(),
            os.codename.as_deref()
        ),
        ("debian", Some("12"), Some("bookworm"))
    );
    with_unpacked(&image.tag, |rootfs| {
        assert!(rootfs.join("var/lib/dpkg/status.d/libc6.md5sums").exists());
        assert!(!rootfs.join("var/lib/dpkg/status").exists());
        let point = std::fs::read_to_string(rootfs.join("etc/debian_version")).unwrap();
        assert_eq!(os.release.as_deref(), Some(point.trim()));
        let from_dir = inventory::from_dir(rootfs).unwrap();
        assert_eq!(identities(&from_dir), image.packages);
        assert_eq!(from_dir.os, inventory.os);
    });
}

#[test]
fn a_later_layer_deletes_and_upgrades_status_d_entries() {
    let images = distroless::images();
    let inventory = from_layout(&images.layered.tag);
    assert_eq!(identities(&inventory), images.layered.packages);
    assert!(inventory.packages.iter().all(|p| p.name != REMOVED));
    // The upgraded package comes from the second layer, the rest from the base's one.
    let base_layer = from_layout(&images.base.tag).packages[0].layer.clone();
    for package in &inventory.packages {
        if package.name == images.upgraded {
            assert!(package.layer.is_some() && package.layer != base_layer);
        } else {
            assert_eq!(package.layer, base_layer, "{}", package.name);
        }
    }
    with_unpacked(&images.layered.tag, |rootfs| {
        let from_dir = inventory::from_dir(rootfs).unwrap();
        assert_eq!(identities(&from_dir), images.layered.packages);
    });
}
