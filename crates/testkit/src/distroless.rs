//! Distroless-style images assembled from real `.deb` files the way
//! Google's distroless images are: each package's data extracted into one
//! root filesystem, and its control paragraph (which has no `Status` field)
//! written to `var/lib/dpkg/status.d/<name>`, its md5sums beside it as
//! `<name>.md5sums`. The packages are today's versions in Debian's archive,
//! downloaded with the `repo` crate and verified against the signed index.

use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use repo::{AptClient, Cache, DebFile, Keyring, Suite};

use crate::{cache_dir, field, run, umoci_unpack};

const DEBIAN: &str = "http://deb.debian.org/debian";
const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
const STATUS_D: &str = "var/lib/dpkg/status.d";

/// The packages of Google's distroless `base` image, picked by name from
/// bookworm's index.
const PACKAGES: &[&str] = &[
    "base-files",
    "netbase",
    "tzdata",
    "libc6",
    "libssl3",
    "ca-certificates",
    "zlib1g",
    "libgcc-s1",
];

/// The package the second layer deletes from `status.d` (a whiteout).
pub const REMOVED: &str = "netbase";

/// Packages the second layer may upgrade to trixie's version: the first
/// whose version there differs from bookworm's.
const UPGRADE_CANDIDATES: &[&str] = &["tzdata", "ca-certificates"];

/// A `.deb` downloaded from the archive and verified.
pub struct Deb {
    pub name: String,
    pub path: PathBuf,
    /// `Package Version Architecture source:Package source:Version`, as
    /// `dpkg-deb --show` reads them from the control file.
    pub identity: String,
}

/// One image of [`Distroless`], and what it must list.
pub struct Image {
    pub tag: String,
    /// The [`Deb::identity`] of every package whose `status.d` file it has.
    pub packages: BTreeSet<String>,
}

/// Both images, in one OCI layout.
pub struct Distroless {
    pub layout: PathBuf,
    /// One layer: [`PACKAGES`] from bookworm.
    pub base: Image,
    /// The base plus a layer that deletes [`REMOVED`]'s `status.d` file and
    /// installs [`Distroless::upgraded`] from trixie over its bookworm version.
    pub layered: Image,
    /// The name of the package the second layer upgrades.
    pub upgraded: String,
}

/// The images, built once per package set into the target directory (a new
/// point release changes the versions, and so the tags).
pub fn images() -> &'static Distroless {
    static IMAGES: OnceLock<Distroless> = OnceLock::new();
    IMAGES.get_or_init(build_images)
}

fn build_images() -> Distroless {
    let debs = fetch("bookworm", PACKAGES);
    let trixie = fetch("trixie", UPGRADE_CANDIDATES);
    let version = |deb: &Deb| deb.identity.split(' ').nth(1).unwrap().to_string();
    let upgrade = trixie
        .iter()
        .find(|new| {
            let old = debs.iter().find(|d| d.name == new.name).unwrap();
            version(old) != version(new)
        })
        .unwrap_or_else(|| {
            panic!("none of {UPGRADE_CANDIDATES:?} differs between bookworm and trixie")
        });

    let base_packages: BTreeSet<String> = debs.iter().map(|d| d.identity.clone()).collect();
    let replaced = |p: &&String| {
        [REMOVED, upgrade.name.as_str()]
            .iter()
            .any(|name| p.starts_with(&format!("{name} ")))
    };
    let layered_packages: BTreeSet<String> = base_packages
        .iter()
        .filter(|p| !replaced(p))
        .cloned()
        .chain([upgrade.identity.clone()])
        .collect();
    let base = Image {
        tag: format!("bookworm-{:016x}", hash(&base_packages)),
        packages: base_packages,
    };
    let layered = Image {
        tag: format!("{}-{:016x}", base.tag, hash(&layered_packages)),
        packages: layered_packages,
    };

    let layout = cache_dir().join("distroless");
    let index = std::fs::read_to_string(layout.join("index.json")).unwrap_or_default();
    let has = |tag: &str| index.contains(&format!("\"{tag}\""));
    if !has(&base.tag) {
        let _ = std::fs::remove_dir_all(&layout);
        build(&layout, &base.tag, None, |rootfs| {
            for deb in &debs {
                install(deb, rootfs);
            }
        });
    }
    if !has(&layered.tag) {
        build(&layout, &layered.tag, Some(&base.tag), |rootfs| {
            let status_d = rootfs.join(STATUS_D);
            for file in [REMOVED.to_string(), format!("{REMOVED}.md5sums")] {
                std::fs::remove_file(status_d.join(file)).unwrap();
            }
            install(upgrade, rootfs);
        });
    }
    Distroless {
        layout,
        upgraded: upgrade.name.clone(),
        base,
        layered,
    }
}

fn hash(packages: &BTreeSet<String>) -> u64 {
    let mut hasher = DefaultHasher::new();
    packages.hash(&mut hasher);
    hasher.finish()
}

/// Downloads the amd64 (or `all`) `.deb` of each of `names` from a suite
/// of Debian's archive.
fn fetch(suite: &str, names: &[&str]) -> Vec<Deb> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let keyring = Keyring::from_files(&[DEBIAN_KEYRING])
        .unwrap_or_else(|e| panic!("{e} (the debian-archive-keyring package provides it)"));
    let apt = AptClient::new(Cache::new(cache_dir().join("apt")), keyring).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let verified = apt
            .release(&Suite::new(DEBIAN, suite))
            .await
            .unwrap_or_else(|e| panic!("{suite}: {e}"));
        let index = apt
            .index(&verified, "main/binary-amd64/Packages")
            .await
            .unwrap_or_else(|e| panic!("{suite}: {e}"));
        let index = String::from_utf8(index).unwrap();
        let mut debs = Vec::new();
        for name in names {
            let paragraph = index
                .split("\n\n")
                .find(|p| field(p, "Package").as_deref() == Some(name))
                .unwrap_or_else(|| panic!("{suite} has no package {name} today"));
            let wanted = |f| field(paragraph, f).unwrap_or_else(|| panic!("{name}: no {f}"));
            let path = apt
                .download(
                    DEBIAN,
                    &wanted("Filename"),
                    &wanted("SHA256"),
                    wanted("Size").parse().unwrap(),
                )
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let identity = run(Command::new("dpkg-deb")
                .args(["--show", "--showformat"])
                .arg("${Package} ${Version} ${Architecture} ${source:Package} ${source:Version}")
                .arg(&path));
            debs.push(Deb {
                name: name.to_string(),
                path,
                identity,
            });
        }
        debs
    })
}

/// Adds a package to a root filesystem as distroless images do.
fn install(deb: &Deb, rootfs: &Path) {
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb.path)
        .arg(rootfs));
    let control = DebFile::new(&deb.path).control_files().unwrap();
    let paragraph = &control["control"];
    assert!(
        !String::from_utf8_lossy(paragraph).contains("\nStatus:"),
        "{}: a .deb's control file has no Status field",
        deb.name
    );
    let status_d = rootfs.join(STATUS_D);
    std::fs::create_dir_all(&status_d).unwrap();
    std::fs::write(status_d.join(&deb.name), paragraph).unwrap();
    if let Some(md5sums) = control.get("md5sums") {
        std::fs::write(status_d.join(format!("{}.md5sums", deb.name)), md5sums).unwrap();
    }
}

/// Adds `tag` to the layout: a new image whose one layer `populate` fills,
/// or, on `base`, a second layer with `populate`'s changes (deleted files
/// become whiteouts).
fn build(layout: &Path, tag: &str, base: Option<&str>, populate: impl FnOnce(&Path)) {
    let image = |tag: &str| format!("{}:{tag}", layout.display());
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle");
    match base {
        Some(base) => umoci_unpack(layout, base, &bundle),
        None => {
            if !layout.join("oci-layout").exists() {
                run(Command::new("umoci").args(["init", "--layout"]).arg(layout));
            }
            run(Command::new("umoci")
                .args(["new", "--image"])
                .arg(image(tag)));
            umoci_unpack(layout, tag, &bundle);
        }
    }
    populate(&bundle.join("rootfs"));
    run(Command::new("umoci")
        .args(["repack", "--image"])
        .arg(image(tag))
        .arg(&bundle));
    run(Command::new("umoci")
        .args([
            "config",
            "--os",
            "linux",
            "--architecture",
            "amd64",
            "--image",
        ])
        .arg(image(tag)));
}
