//! The inventory of an image: its OS identity and installed packages, each
//! with the layer it came from.
//!
//! Owns choosing which package databases to read from a [`Rootfs`],
//! attributing each package to a layer, and the two convenience readers:
//! [`from_dir`] (an unpacked root filesystem) and [`from_layout`] (an image
//! in an OCI layout; the only place this crate touches the `oci` crate's
//! I/O). Never writes anything.
//!
//! Layer of origin: a package is attributed to the lowest layer from which
//! its database file has listed it, with the same version and architecture,
//! in every layer that rewrote the file since; so a base-image package keeps
//! its base layer even when a later layer installs other packages.

use std::collections::HashSet;
use std::path::Path;

use futures_util::{StreamExt, TryStreamExt};
use oci::manifest::{ContentRef, Manifest};
use oci::{Digest, OciLayout, ParsedManifest};

use crate::error::{Error, ImageError, Result};
use crate::os::{self, OsFiles, OsInfo};
use crate::package::Package;
use crate::rootfs::{FileRef, LayerFiles, Rootfs, ScanLimits, Selection, scan_layer_selecting};
use crate::{apk, dpkg, eol, rpm};

/// Which package database an inventory was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackageDbKind {
    /// `var/lib/dpkg/status` (possibly with `status.d/` beside it).
    Dpkg,
    /// Only `var/lib/dpkg/status.d/` (distroless).
    DpkgStatusD,
    /// `lib/apk/db/installed` (Alpine, Wolfi, Chainguard).
    Apk,
    /// `rpmdb.sqlite` (rpm ≥ 4.16).
    RpmSqlite,
}

/// What an image (or an unpacked root filesystem) has installed, and who
/// its operating system is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    /// `None` when the image has no identity files (unknown OS, `scratch`).
    pub os: Option<OsInfo>,
    /// Sorted by name, architecture, version.
    pub packages: Vec<Package>,
    /// `None` when the image has no package database. When an image has
    /// several kinds, the first of dpkg, apk, rpm; packages come from all.
    pub package_db: Option<PackageDbKind>,
    /// Any layer had Windows container paths.
    pub windows: bool,
    /// The image configuration document, when the inventory came from an image.
    pub image_config: Option<serde_json::Value>,
    /// The digest of what the tag names (the index, for a multi-platform image).
    pub image_digest: Option<Digest>,
}

const DPKG_STATUS: &str = "var/lib/dpkg/status";
const DPKG_STATUS_D: &str = "var/lib/dpkg/status.d";
const APK_INSTALLED: &[&str] = &["lib/apk/db/installed", "usr/lib/apk/db/installed"];
const RPM_SQLITE: &[&str] = &[
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
    "var/lib/rpm/rpmdb.sqlite",
    "usr/share/rpm/rpmdb.sqlite",
];
const RPM_LEGACY: &[&str] = &[
    "var/lib/rpm/Packages",
    "var/lib/rpm/Packages.db",
    "usr/lib/sysimage/rpm/Packages",
    "usr/lib/sysimage/rpm/Packages.db",
];

impl Inventory {
    /// Reads identity and packages from a merged view.
    pub fn from_rootfs(rootfs: &Rootfs) -> Result<Inventory> {
        let content = |path: &str| rootfs.read(path).map(|f| f.content);
        let os = os::identify(OsFiles {
            os_release: content("etc/os-release").or_else(|| content("usr/lib/os-release")),
            debian_version: content("etc/debian_version"),
            alpine_release: content("etc/alpine-release"),
            redhat_release: content("etc/redhat-release"),
        })?;
        let mut packages = Vec::new();
        let mut dbs = Vec::new();
        if let Some(found) = read_db(rootfs, DPKG_STATUS, |file, bytes| {
            dpkg::parse_status(file, bytes, dpkg::StatusFile::Status)
        })? {
            packages.extend(found);
            dbs.push(PackageDbKind::Dpkg);
        }
        let status_d = rootfs.list_files(DPKG_STATUS_D);
        let entries = status_d.iter().filter(|path| {
            let name = path.rsplit('/').next().unwrap_or_default();
            !name.starts_with('.') && !name.ends_with(".md5sums")
        });
        let mut distroless = false;
        for path in entries {
            if let Some(found) = read_db(rootfs, path, |file, bytes| {
                dpkg::parse_status(file, bytes, dpkg::StatusFile::StatusD)
            })? {
                packages.extend(found);
                distroless = true;
            }
        }
        if distroless {
            dbs.push(PackageDbKind::DpkgStatusD);
        }
        if let Some(path) = APK_INSTALLED.iter().find(|p| rootfs.read(p).is_some())
            && let Some(found) = read_db(rootfs, path, apk::parse_installed)?
        {
            packages.extend(found);
            dbs.push(PackageDbKind::Apk);
        }
        if let Some(path) = RPM_SQLITE.iter().find(|p| rootfs.read(p).is_some()) {
            if let Some(found) = read_db(rootfs, path, rpm::parse_sqlite)? {
                packages.extend(found);
                dbs.push(PackageDbKind::RpmSqlite);
            }
        } else if let Some(path) = RPM_LEGACY.iter().find(|p| rootfs.read(p).is_some()) {
            return Err(rpm::unsupported_format(path));
        }
        packages.sort_by(|a, b| {
            (&a.name, &a.architecture, a.kind)
                .cmp(&(&b.name, &b.architecture, b.kind))
                .then_with(|| a.kind.version_scheme().compare(&a.version, &b.version))
        });
        Ok(Inventory {
            os,
            packages,
            package_db: dbs.first().copied(),
            windows: rootfs.is_windows(),
            image_config: None,
            image_digest: None,
        })
    }

    /// The support dates of the identified release, when known.
    pub fn lifecycle(&self) -> Option<eol::Lifecycle> {
        self.os.as_ref().and_then(eol::lookup)
    }
}

/// Parses the database file at `path` and attributes its packages to layers.
fn read_db(
    rootfs: &Rootfs,
    path: &str,
    parse: impl Fn(&str, &[u8]) -> Result<Vec<Package>>,
) -> Result<Option<Vec<Package>>> {
    let versions = rootfs.versions(path);
    let Some(current) = versions.last() else {
        return Ok(None);
    };
    let mut packages = parse(path, current.content)?;
    attribute_layers(path, &versions, &mut packages, &parse);
    Ok(Some(packages))
}

fn attribute_layers(
    path: &str,
    versions: &[FileRef],
    packages: &mut [Package],
    parse: &impl Fn(&str, &[u8]) -> Result<Vec<Package>>,
) {
    let Some((current, older)) = versions.split_last() else {
        return;
    };
    for package in packages.iter_mut() {
        package.layer = current.layer.cloned();
    }
    let mut still_present: Vec<bool> = vec![true; packages.len()];
    for version in older.iter().rev() {
        // An older copy that does not parse attributes nothing further down.
        let listed = parse(path, version.content).unwrap_or_default();
        let listed: HashSet<(&str, &str, &str)> = listed.iter().map(Package::identity).collect();
        let mut any = false;
        for (package, present) in packages.iter_mut().zip(still_present.iter_mut()) {
            *present = *present && listed.contains(&package.identity());
            if *present {
                package.layer = version.layer.cloned();
                any = true;
            }
        }
        if !any {
            break;
        }
    }
}

/// The inventory of an unpacked root filesystem.
pub fn from_dir(root: &Path) -> Result<Inventory> {
    let files = LayerFiles::from_dir(root, &ScanLimits::default())?;
    Inventory::from_rootfs(&Rootfs::from_dir_files(files))
}

/// Where per-layer scan results are kept between scans, keyed by the
/// layer's blob digest (the same layer shared by many tags is read once).
pub trait LayerCache: Send + Sync {
    /// The scan result kept for the layer blob `layer`, if any.
    fn get(&self, layer: &Digest) -> Option<LayerFiles>;
    /// Keeps the scan result of the layer blob `layer`.
    fn put(&self, layer: &Digest, files: &LayerFiles);
}

/// A cache that keeps nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCache;

impl LayerCache for NoCache {
    fn get(&self, _: &Digest) -> Option<LayerFiles> {
        None
    }
    fn put(&self, _: &Digest, _: &LayerFiles) {}
}

/// The inventory of the image `tag` names in an OCI layout (for an index,
/// the linux manifest for this machine's architecture). Each layer not in
/// `cache` is streamed once, on a blocking thread, with its digest verified.
pub async fn from_layout(
    layout: &OciLayout,
    tag: Option<&str>,
    cache: &dyn LayerCache,
    limits: ScanLimits,
) -> Result<Inventory> {
    let image = format!("oci:{}:{}", layout.root().display(), tag.unwrap_or(""));
    let image_error = |source: ImageError| Error::Image {
        image: image.clone(),
        source,
    };
    let mut content = layout.resolve(tag).await?;
    let tagged_digest = content.digest.clone();
    let mut manifest = read_manifest(layout, &content).await?;
    if let Manifest::Index(index) = &manifest.manifest {
        content = pick_platform(index).map_err(image_error)?;
        manifest = read_manifest(layout, &content).await?;
    }
    let image = read_image(layout, &manifest, cache, limits, &INVENTORY_SELECTION)
        .await
        .map_err(|e| match e {
            Error::Image { source, .. } => image_error(source),
            other => other,
        })?;
    let inventory = Inventory::from_rootfs(&image.rootfs)?;
    Ok(Inventory {
        image_config: Some(image.config),
        image_digest: Some(tagged_digest),
        ..inventory
    })
}

static INVENTORY_SELECTION: std::sync::LazyLock<Selection> =
    std::sync::LazyLock::new(Selection::inventory);

/// One image manifest of a layout with its configuration and the merged
/// view of its layers at the paths a [`Selection`] names.
pub struct ImageFiles {
    /// The image configuration document.
    pub config: serde_json::Value,
    /// The layer blobs, lowest first.
    pub layers: Vec<ContentRef>,
    /// The layers' diff IDs, in the same order.
    pub diff_ids: Vec<Digest>,
    /// The layers merged, at the paths the selection names.
    pub rootfs: Rootfs,
}

/// Reads an image manifest's config and layers. Each layer not in `cache`
/// is streamed once, on a blocking thread, with its digest verified; the
/// cache must only ever be used with one selection.
pub async fn read_image(
    layout: &OciLayout,
    manifest: &ParsedManifest,
    cache: &dyn LayerCache,
    limits: ScanLimits,
    selection: &Selection,
) -> Result<ImageFiles> {
    let image_error = |source: ImageError| Error::Image {
        image: format!("oci:{}", layout.root().display()),
        source,
    };
    let Manifest::Image(_) = &manifest.manifest else {
        return Err(image_error(ImageError::NestedIndex));
    };
    let references = manifest.references().map_err(oci::Error::from)?;
    let Some((config, layers)) = references.split_first() else {
        return Err(image_error(ImageError::NoConfig));
    };
    let config_bytes = layout.read_blob_bytes(config).await?;
    let image_config: serde_json::Value = serde_json::from_slice(&config_bytes)
        .map_err(|e| image_error(ImageError::ConfigNotJson(e)))?;
    let diff_ids = diff_ids(&image_config).map_err(image_error)?;
    if diff_ids.len() != layers.len() {
        return Err(image_error(ImageError::LayerCount {
            layers: layers.len(),
            diff_ids: diff_ids.len(),
        }));
    }
    // Layers are independent until merged: several are read (and
    // decompressed, each on its own blocking thread) at once.
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    // Futures made up front (not in a stream closure), so the whole future stays `Send`.
    let work: Vec<_> = layers
        .iter()
        .map(|layer| {
            let selection = selection.clone();
            async move {
                if let Some(files) = cache.get(&layer.digest) {
                    return Ok(files);
                }
                let files = scan_blob(layout, layer, limits, selection).await?;
                cache.put(&layer.digest, &files);
                Ok::<_, Error>(files)
            }
        })
        .collect();
    let scanned: Vec<LayerFiles> = futures_util::stream::iter(work)
        .buffered(parallel)
        .try_collect()
        .await?;
    let rootfs = Rootfs::from_layers(diff_ids.iter().cloned().zip(scanned));
    Ok(ImageFiles {
        config: image_config,
        layers: layers.to_vec(),
        diff_ids,
        rootfs,
    })
}

/// Reads and parses a manifest or index blob of a layout.
pub async fn read_manifest(layout: &OciLayout, content: &ContentRef) -> Result<ParsedManifest> {
    let bytes = layout.read_blob_bytes(content).await?;
    Ok(ParsedManifest::parse(&bytes, Some(&content.media_type)).map_err(oci::Error::from)?)
}

fn pick_platform(index: &oci_spec::image::ImageIndex) -> Result<ContentRef, ImageError> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let chosen = index.manifests().iter().find(|d| {
        d.platform()
            .as_ref()
            .is_some_and(|p| p.os().to_string() == "linux" && p.architecture().to_string() == arch)
    });
    let descriptor = chosen.ok_or_else(|| ImageError::NoPlatform {
        platform: format!("linux/{arch}"),
    })?;
    Ok(ContentRef {
        digest: descriptor
            .digest()
            .as_ref()
            .parse()
            .map_err(ImageError::IndexDigest)?,
        size: descriptor.size(),
        media_type: descriptor.media_type().to_string(),
    })
}

fn diff_ids(config: &serde_json::Value) -> Result<Vec<Digest>, ImageError> {
    let list = config
        .pointer("/rootfs/diff_ids")
        .and_then(|v| v.as_array())
        .ok_or(ImageError::NoDiffIds)?;
    list.iter()
        .map(|v| {
            v.as_str()
                .ok_or(ImageError::DiffIdNotString)?
                .parse()
                .map_err(ImageError::DiffId)
        })
        .collect()
}

/// How many chunks of a layer blob are read (and hashed) ahead of its decompression.
const READ_AHEAD_CHUNKS: usize = 4;

/// Streams one layer blob through [`scan_layer`] on a blocking thread and
/// reads it to the end so its digest is verified. Reading the file and
/// hashing it run in a task of their own, ahead of the decompression, so
/// the two overlap on two cores.
async fn scan_blob(
    layout: &OciLayout,
    layer: &ContentRef,
    limits: ScanLimits,
    selection: Selection,
) -> Result<LayerFiles> {
    let mut blob = layout.read_blob(layer).await?;
    let (sender, receiver) = tokio::sync::mpsc::channel(READ_AHEAD_CHUNKS);
    let read_ahead = tokio::spawn(async move {
        while let Some(chunk) = blob.next().await {
            let failed = chunk.is_err();
            if sender.send(chunk).await.is_err() || failed {
                break;
            }
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((chunk.map_err(std::io::Error::other), receiver))
    });
    let mut reader =
        tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(Box::pin(stream)));
    let name = layer.digest.to_string();
    let scanned = tokio::task::spawn_blocking(move || {
        let files = scan_layer_selecting(&name, &mut reader, &limits, &selection)?;
        std::io::copy(&mut reader, &mut std::io::sink()).map_err(|source| Error::LayerRead {
            layer: name.clone(),
            what: "cannot be read to its end",
            source,
        })?;
        Ok(files)
    })
    .await;
    // Scanning stopped early (an error): the reader stops at its next send.
    read_ahead.abort();
    scanned.map_err(|e| Error::LayerRead {
        layer: layer.digest.to_string(),
        what: "the scanning task failed",
        source: std::io::Error::other(e),
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::PackageKind;
    use crate::rootfs::EntryKind;
    use crate::rootfs::tests::tar;

    fn layer(entries: &[(&str, EntryKind)]) -> LayerFiles {
        crate::rootfs::scan_layer("t", &mut &tar(entries)[..], &ScanLimits::default()).unwrap()
    }

    fn status(packages: &[(&str, &str)]) -> EntryKind {
        let text: String = packages
            .iter()
            .map(|(name, version)| format!("Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n\n"))
            .collect();
        EntryKind::File(text.into_bytes())
    }

    #[test]
    fn attributes_packages_to_the_layer_that_brought_them() {
        let (d1, d2, d3) = (
            Digest::sha256_of(b"1"),
            Digest::sha256_of(b"2"),
            Digest::sha256_of(b"3"),
        );
        let base = layer(&[
            (
                "etc/os-release",
                EntryKind::File(
                    b"ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n".to_vec(),
                ),
            ),
            (
                "var/lib/dpkg/status",
                status(&[("libc6", "2.36-9"), ("zlib1g", "1:1.2.13")]),
            ),
        ]);
        let add = layer(&[(
            "var/lib/dpkg/status",
            status(&[
                ("libc6", "2.36-9"),
                ("zlib1g", "1:1.2.13"),
                ("curl", "7.88"),
            ]),
        )]);
        let upgrade = layer(&[(
            "var/lib/dpkg/status",
            status(&[
                ("libc6", "2.36-9+deb12u7"),
                ("zlib1g", "1:1.2.13"),
                ("curl", "7.88"),
            ]),
        )]);
        let rootfs =
            Rootfs::from_layers([(d1.clone(), base), (d2.clone(), add), (d3.clone(), upgrade)]);
        let inventory = Inventory::from_rootfs(&rootfs).unwrap();
        let layers: Vec<_> = inventory
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.layer.clone()))
            .collect();
        assert_eq!(
            layers,
            [
                ("curl", Some(d2)),
                ("libc6", Some(d3)),
                ("zlib1g", Some(d1))
            ]
        );
        assert_eq!(inventory.package_db, Some(PackageDbKind::Dpkg));
        assert_eq!(inventory.lifecycle().unwrap().version, "12");
    }

    #[test]
    fn images_without_a_database_or_identity() {
        let empty = Inventory::from_rootfs(&Rootfs::from_layers([(
            Digest::sha256_of(b"1"),
            layer(&[]),
        )]))
        .unwrap();
        assert_eq!(empty, Inventory::default());
        let legacy = layer(&[(
            "var/lib/rpm/Packages",
            EntryKind::File(b"\0\0\0\0".to_vec()),
        )]);
        let err = Inventory::from_rootfs(&Rootfs::from_layers([(Digest::sha256_of(b"1"), legacy)]))
            .unwrap_err();
        assert!(crate::error::chain(&err).contains("BerkeleyDB"), "{err}");
        let corrupt = layer(&[(
            "var/lib/dpkg/status",
            EntryKind::File(b"Package: a\ngarbage\n".to_vec()),
        )]);
        let err =
            Inventory::from_rootfs(&Rootfs::from_layers([(Digest::sha256_of(b"1"), corrupt)]))
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "var/lib/dpkg/status: line 2: expected \"Field: value\", found \"garbage\""
        );
    }

    #[test]
    fn reads_apk_and_rpm_databases() {
        let apk = layer(&[
            ("etc/alpine-release", EntryKind::File(b"3.20.3\n".to_vec())),
            (
                "lib/apk/db/installed",
                EntryKind::File(b"P:musl\nV:1.2.5-r0\nA:x86_64\no:musl\n".to_vec()),
            ),
        ]);
        let inventory =
            Inventory::from_rootfs(&Rootfs::from_layers([(Digest::sha256_of(b"1"), apk)])).unwrap();
        assert_eq!(inventory.package_db, Some(PackageDbKind::Apk));
        assert_eq!(inventory.os.unwrap().id, "alpine");
        assert_eq!(inventory.packages[0].kind, PackageKind::Apk);
    }
}
