//! Distroless-style images assembled from real `.deb` files the way
//! Google's distroless images are: each package's data extracted into one
//! root filesystem, and its control paragraph (which has no `Status` field)
//! written to `var/lib/dpkg/status.d/<name>`, its md5sums beside it as
//! `<name>.md5sums`. The packages are today's versions in Debian's archive,
//! downloaded with the `repo` crate and verified against the signed index
//! ([`crate::archive`]). Two layouts: [`images`] (amd64, a base image and a
//! layer on it) and [`multiarch`] (one tag naming an image index of an
//! amd64 and an arm64 image).

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock, PoisonError};

use repo::DebFile;
use sha2::{Digest, Sha256};

pub use crate::archive::Deb;
use crate::archive::{DEBIAN, DEBIAN_SECURITY, download, fetch, packages};
use crate::{cache_dir, field, run, umoci_unpack};

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

/// One image of [`Distroless`], and what it must list.
pub struct Image {
    /// Its tag in the layout.
    pub tag: String,
    /// The [`Deb::identity`] of every package whose `status.d` file it has.
    pub packages: BTreeSet<String>,
}

/// Both images, in one OCI layout.
pub struct Distroless {
    /// The OCI layout holding both images.
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
    let debs = fetch("bookworm", "amd64", PACKAGES);
    let trixie = fetch("trixie", "amd64", UPGRADE_CANDIDATES);
    let upgrade = trixie
        .iter()
        .find(|new| {
            let old = debs.iter().find(|d| d.name == new.name).unwrap();
            old.version() != new.version()
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
        build(&layout, &base.tag, None, "amd64", |rootfs| {
            for deb in &debs {
                install(deb, rootfs);
            }
        });
    }
    if !has(&layered.tag) {
        build(&layout, &layered.tag, Some(&base.tag), "amd64", |rootfs| {
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

/// Adds `tag` to the layout: a new image for `architecture` whose one layer
/// `populate` fills, or, on `base`, a second layer with `populate`'s
/// changes (deleted files become whiteouts).
fn build(
    layout: &Path,
    tag: &str,
    base: Option<&str>,
    architecture: &str,
    populate: impl FnOnce(&Path),
) {
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
            architecture,
            "--image",
        ])
        .arg(image(tag)));
}

/// The platforms of [`multiarch`], in the order of its index.
pub const ARCHITECTURES: &[&str] = &["amd64", "arm64"];

/// The suite [`multiarch`]'s packages come from, and the one whose newer
/// versions it must lack.
const MULTIARCH_SUITE: &str = "bookworm";
const MULTIARCH_SECURITY_SUITE: &str = "bookworm-security";

/// One platform of [`Multiarch`].
pub struct Platform {
    /// Debian's name of the architecture (`amd64`, `arm64`).
    pub architecture: String,
    /// A tag of this platform's image alone (umoci can unpack it; it
    /// cannot unpack an index).
    pub tag: String,
    /// The [`Deb::identity`] of every package whose `status.d` file it has.
    pub packages: BTreeSet<String>,
    /// Its packages that `bookworm-security` had a newer version of when
    /// the images were chosen: name → that version.
    pub security_updates: BTreeMap<String, String>,
}

/// Two distroless-style images, amd64 and arm64, of the same package names
/// from plain `bookworm` (no point-release or security updates beyond the
/// suite's), under one tag that names an OCI image index.
pub struct Multiarch {
    /// The OCI layout holding the index and both platforms.
    pub layout: PathBuf,
    /// Names the image index, whose descriptors carry each platform.
    pub tag: String,
    /// In the order of [`ARCHITECTURES`].
    pub platforms: Vec<Platform>,
}

/// [`multiarch`]'s layout and the tag of its image index.
pub fn multiarch_layout() -> (PathBuf, String) {
    let images = multiarch();
    (images.layout.clone(), images.tag.clone())
}

/// The two-platform images, built once per package set into the target
/// directory. The packages are [`PACKAGES`] and everything they depend on
/// (`Depends`, `Pre-Depends`), so that apt can plan their upgrade (see
/// [`crate::apt_upgrades`]); when none of them has a newer version in
/// `bookworm-security` for some platform, the smallest package that has
/// one is added too, so that each platform has a security update to make.
pub fn multiarch() -> &'static Multiarch {
    static IMAGES: OnceLock<Multiarch> = OnceLock::new();
    IMAGES.get_or_init(build_multiarch)
}

/// The root filesystem of [`multiarch`]'s image for `architecture`,
/// unpacked once with umoci.
pub fn multiarch_rootfs(architecture: &str) -> PathBuf {
    static UNPACKING: Mutex<()> = Mutex::new(());
    let images = multiarch();
    let platform = images
        .platforms
        .iter()
        .find(|p| p.architecture == architecture)
        .unwrap_or_else(|| {
            panic!("the multiarch images are {ARCHITECTURES:?}, not {architecture}")
        });
    let _unpacking = UNPACKING.lock().unwrap_or_else(PoisonError::into_inner);
    let bundle = cache_dir().join("multiarch-bundles").join(&platform.tag);
    if !bundle.join("rootfs").join(STATUS_D).exists() {
        let partial = bundle.with_extension("partial");
        let _ = std::fs::remove_dir_all(&partial);
        let _ = std::fs::remove_dir_all(&bundle);
        std::fs::create_dir_all(bundle.parent().unwrap()).unwrap();
        umoci_unpack(&images.layout, &platform.tag, &partial);
        std::fs::rename(&partial, &bundle).unwrap();
    }
    bundle.join("rootfs")
}

/// One platform's packages, as [`choose`] picked them.
struct Chosen {
    architecture: &'static str,
    debs: Vec<Deb>,
    security_updates: BTreeMap<String, String>,
}

fn build_multiarch() -> Multiarch {
    let started = std::time::Instant::now();
    let chosen: Vec<Chosen> = ARCHITECTURES.iter().map(|a| choose(a)).collect();
    let identities =
        |c: &Chosen| -> BTreeSet<String> { c.debs.iter().map(|d| d.identity.clone()).collect() };
    let tag = format!(
        "{MULTIARCH_SUITE}-multiarch-{:016x}",
        hash(&chosen.iter().flat_map(identities).collect())
    );
    let platforms: Vec<Platform> = chosen
        .iter()
        .map(|c| Platform {
            architecture: c.architecture.to_string(),
            tag: format!("{tag}-{}", c.architecture),
            packages: identities(c),
            security_updates: c.security_updates.clone(),
        })
        .collect();

    let layout = cache_dir().join("multiarch");
    let index = std::fs::read_to_string(layout.join("index.json")).unwrap_or_default();
    if !index.contains(&format!("\"{tag}\"")) {
        let partial = cache_dir().join("multiarch.partial");
        let _ = std::fs::remove_dir_all(&partial);
        for (platform, chosen) in platforms.iter().zip(&chosen) {
            build(
                &partial,
                &platform.tag,
                None,
                chosen.architecture,
                |rootfs| {
                    for deb in &chosen.debs {
                        install(deb, rootfs);
                    }
                },
            );
        }
        add_index(&partial, &tag, &platforms);
        let _ = std::fs::remove_dir_all(&layout);
        std::fs::rename(&partial, &layout).unwrap();
        eprintln!(
            "testkit: built {}:{tag} in {:.0?}",
            layout.display(),
            started.elapsed()
        );
    }
    Multiarch {
        layout,
        tag,
        platforms,
    }
}

/// A Packages index by package name (its first paragraph of each).
type Paragraphs<'a> = BTreeMap<String, &'a str>;

fn paragraphs(index: &str) -> Paragraphs<'_> {
    let mut by_name = BTreeMap::new();
    for p in index.split("\n\n") {
        if let Some(name) = field(p, "Package") {
            by_name.entry(name).or_insert(p);
        }
    }
    by_name
}

/// Chooses the packages of one platform (see [`multiarch`]) and downloads them.
fn choose(architecture: &'static str) -> Chosen {
    let index_text = packages(DEBIAN, MULTIARCH_SUITE, architecture);
    let security_text = packages(DEBIAN_SECURITY, MULTIARCH_SECURITY_SUITE, architecture);
    let (index, security) = (paragraphs(&index_text), paragraphs(&security_text));
    let mut roots: Vec<String> = PACKAGES.iter().map(|p| p.to_string()).collect();
    let mut names = closure(&index, &roots);
    let mut updates = newer(&index, &security, &names);
    if updates.is_empty() {
        let upgradable: BTreeSet<String> = security.keys().cloned().collect();
        let smallest = newer(&index, &security, &upgradable)
            .into_keys()
            .filter_map(|name| {
                let size: u64 = field(security[&name], "Installed-Size")?.parse().ok()?;
                Some((size, name))
            })
            .min()
            .unwrap_or_else(|| {
                panic!(
                    "{MULTIARCH_SECURITY_SUITE} {architecture} updates no package of {MULTIARCH_SUITE}"
                )
            });
        roots.push(smallest.1);
        names = closure(&index, &roots);
        updates = newer(&index, &security, &names);
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let debs = download(DEBIAN, MULTIARCH_SUITE, &index_text, &names);
    for deb in &debs {
        let indexed = field(index[&deb.name], "Version").unwrap();
        assert_eq!(
            deb.version(),
            indexed,
            "{}: the .deb is not the indexed version",
            deb.name
        );
    }
    Chosen {
        architecture,
        debs,
        security_updates: updates,
    }
}

/// `roots` and every package they depend on (`Pre-Depends`, `Depends`) in
/// `index`, by name: each dependency not yet satisfied by a package of the
/// set (or one that `Provides` it) adds its first alternative that is a
/// real package, else that alternative's provider of the highest
/// `Priority`. Versions are not compared: one suite is consistent.
fn closure(index: &Paragraphs, roots: &[String]) -> BTreeSet<String> {
    let mut providers: BTreeMap<String, Vec<(u8, String)>> = BTreeMap::new();
    for (name, p) in index {
        let Some(provides) = field(p, "Provides") else {
            continue;
        };
        let rank = match field(p, "Priority").as_deref() {
            Some("required") => 0,
            Some("important") => 1,
            Some("standard") => 2,
            Some("optional") => 3,
            _ => 4,
        };
        for virtual_name in relation_names(&provides) {
            providers
                .entry(virtual_name)
                .or_default()
                .push((rank, name.clone()));
        }
    }
    let mut set = BTreeSet::new();
    let mut queue: Vec<String> = roots.to_vec();
    while let Some(name) = queue.pop() {
        if !set.insert(name.clone()) {
            continue;
        }
        let paragraph = index
            .get(&name)
            .unwrap_or_else(|| panic!("the index has no package {name}"));
        let relations = ["Pre-Depends", "Depends"]
            .iter()
            .filter_map(|f| field(paragraph, f))
            .collect::<Vec<_>>()
            .join(", ");
        for group in relations.split(',').filter(|g| !g.trim().is_empty()) {
            let alternatives = relation_names(group);
            let chosen = |p: &String| set.contains(p) || queue.contains(p);
            let satisfied = alternatives.iter().any(|a| {
                chosen(a)
                    || providers
                        .get(a)
                        .is_some_and(|ps| ps.iter().any(|(_, p)| chosen(p)))
            });
            if satisfied {
                continue;
            }
            let pick = alternatives
                .iter()
                .find_map(|a| {
                    if index.contains_key(a) {
                        return Some(a.clone());
                    }
                    providers.get(a)?.iter().min().map(|(_, p)| p.clone())
                })
                .unwrap_or_else(|| panic!("{name}: nothing in the index satisfies {group:?}"));
            queue.push(pick);
        }
    }
    set
}

/// The package names of a relation field or one of its alternative groups
/// (`a (>= 1) | b:any, c` → a, b, c).
fn relation_names(relation: &str) -> Vec<String> {
    relation
        .split([',', '|'])
        .filter_map(|r| r.split([' ', '(', ':', '[', '<']).find(|w| !w.is_empty()))
        .map(str::to_string)
        .collect()
}

/// Those of `names` whose version in `security` is newer than in `index`:
/// name → the newer version.
fn newer(
    index: &Paragraphs,
    security: &Paragraphs,
    names: &BTreeSet<String>,
) -> BTreeMap<String, String> {
    names
        .iter()
        .filter_map(|name| {
            let old = field(index.get(name)?, "Version")?;
            let new = field(security.get(name)?, "Version")?;
            version_greater(&new, &old).then(|| (name.clone(), new))
        })
        .collect()
}

/// `dpkg --compare-versions a gt b`.
fn version_greater(a: &str, b: &str) -> bool {
    Command::new("dpkg")
        .args(["--compare-versions", a, "gt", b])
        .status()
        .unwrap_or_else(|e| panic!("dpkg --compare-versions: {e}"))
        .success()
}

/// Adds to the layout an image index naming each platform's image, tagged
/// `tag` (the platforms' own tags stay).
fn add_index(layout: &Path, tag: &str, platforms: &[Platform]) {
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let manifests = index["manifests"].as_array_mut().unwrap();
    let descriptors: Vec<serde_json::Value> = platforms
        .iter()
        .map(|platform| {
            let manifest = manifests
                .iter()
                .find(|m| {
                    m["annotations"]["org.opencontainers.image.ref.name"] == platform.tag.as_str()
                })
                .unwrap_or_else(|| {
                    panic!("{}: umoci did not tag {}", layout.display(), platform.tag)
                });
            serde_json::json!({
                "mediaType": manifest["mediaType"],
                "digest": manifest["digest"],
                "size": manifest["size"],
                "platform": {"architecture": platform.architecture, "os": "linux"},
            })
        })
        .collect();
    let image_index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": descriptors,
    }))
    .unwrap();
    let hex: String = Sha256::digest(&image_index)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(layout.join("blobs/sha256").join(&hex), &image_index).unwrap();
    manifests.push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": format!("sha256:{hex}"),
        "size": image_index.len(),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }));
    let temp = index_path.with_extension("part");
    std::fs::write(&temp, serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::rename(&temp, &index_path).unwrap();
}
