//! Scanning an image end to end: find it, take its inventory, look up
//! advisories, match, and assemble the [`Report`].
//!
//! Owns the I/O around the pure matcher: where images come from (a
//! registry, `oci:DIR[:TAG]`, `dir:ROOTFS`), the per-layer inventory cache
//! on disk (keyed by layer digest, so tags sharing base layers are read
//! once), and the clear refusals for images drydock cannot judge (Windows,
//! no known OS, no package database). Never writes to a registry.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use advisory::{
    AdvisoryView, Distro, Family, FeedAdvisory, FeedStatus, InstalledSource, PackedAdvisories,
    SecurityRepo, Store,
};
use oci::copy::{Endpoint, Silent};
use oci::{ClientOptions, Digest, ImageLocation, OciLayout, RegistryClient};
use pkgdb::inventory::{LayerCache, from_dir, from_layout};
use pkgdb::{Date, Inventory, LayerFiles, ScanLimits};

use crate::matching::{self, Filters};
use crate::report::{OsSummary, Report, TargetResult};

/// Why an image could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The text names no image drydock can read.
    #[error("{0:?} is not an image reference, oci:DIR[:TAG], docker-archive:FILE or dir:ROOTFS")]
    BadImage(String),
    /// Reading the image from its registry, layout or archive failed.
    #[error(transparent)]
    Image(#[from] oci::Error),
    /// Reading the image's package databases failed.
    #[error(transparent)]
    Inventory(#[from] pkgdb::Error),
    /// Reading the advisory database or the security repositories failed.
    #[error(transparent)]
    Advisory(Box<advisory::Error>),
    /// A Windows image: it has no OS packages drydock knows.
    #[error("{image} is a Windows image; drydock scans the OS packages of Linux images only")]
    Windows {
        /// The image.
        image: String,
    },
    /// Neither an OS release file nor a package database.
    #[error(
        "{image} has no known operating system and no package database, so there is nothing drydock can judge"
    )]
    NoOs {
        /// The image.
        image: String,
    },
    /// A known OS whose package database is absent (distroless without one, a stripped image).
    #[error("{image} runs {os}, which has no package database drydock can read (dpkg, apk or rpm)")]
    NoPackageDatabase {
        /// The image.
        image: String,
        /// The OS as its release file names it.
        os: String,
    },
    /// An OS whose advisories drydock does not match yet.
    #[error("{image} runs {os}; drydock matches advisories for Debian, Ubuntu and Alpine so far")]
    UnsupportedOs {
        /// The image.
        image: String,
        /// The OS as its release file names it.
        os: String,
    },
    /// Reading an unpacked root filesystem failed.
    #[error("reading {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A blocking part of the scan (reading a directory, the advisory database) did not finish.
    #[error("a blocking task of the scan failed")]
    Task(#[from] tokio::task::JoinError),
}

impl From<advisory::Error> for ScanError {
    fn from(error: advisory::Error) -> ScanError {
        ScanError::Advisory(Box::new(error))
    }
}

/// Where an image to scan is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A registry reference or an OCI layout.
    Location(ImageLocation),
    /// An unpacked root filesystem.
    Dir(PathBuf),
    /// A `docker save` archive.
    Archive(PathBuf),
}

impl ImageSource {
    /// Reads `dir:ROOTFS`, `docker-archive:FILE` (or an existing file's
    /// path), `oci:DIR[:TAG]` or a registry reference.
    pub fn parse(text: &str) -> Result<ImageSource, ScanError> {
        if let Some(dir) = text.strip_prefix("dir:") {
            if dir.is_empty() {
                return Err(ScanError::BadImage(text.to_string()));
            }
            return Ok(ImageSource::Dir(PathBuf::from(dir)));
        }
        if let Some(file) = text.strip_prefix("docker-archive:") {
            return Ok(ImageSource::Archive(PathBuf::from(file)));
        }
        if Path::new(text).is_file() {
            return Ok(ImageSource::Archive(PathBuf::from(text)));
        }
        text.parse()
            .map(ImageSource::Location)
            .map_err(|_| ScanError::BadImage(text.to_string()))
    }
}

/// Layer scans kept on disk as `<dir>/<alg>/<hex>`, written atomically.
pub struct DiskLayerCache {
    dir: PathBuf,
}

impl DiskLayerCache {
    /// The cache kept under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> DiskLayerCache {
        DiskLayerCache { dir: dir.into() }
    }

    fn path(&self, layer: &Digest) -> PathBuf {
        self.dir.join(layer.algorithm().as_str()).join(layer.hex())
    }
}

impl LayerCache for DiskLayerCache {
    fn get(&self, layer: &Digest) -> Option<LayerFiles> {
        // A damaged entry is a miss: the layer is simply scanned again.
        LayerFiles::decode(&std::fs::read(self.path(layer)).ok()?).ok()
    }

    fn put(&self, layer: &Digest, files: &LayerFiles) {
        if let Err(e) = oci::atomic::write_atomic(
            &self.path(layer),
            &files.encode(),
            oci::atomic::Durability::Cache,
        ) {
            tracing::warn!("cannot cache the scan of layer {layer}: {e}");
        }
    }
}

/// Where "now" comes from for the decisions that depend on it (a
/// release's end of life) and the times reports carry: the system's clock,
/// or a fixed instant (reproducible reports, tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// The system's clock.
    #[default]
    System,
    /// Always this instant.
    Fixed(chrono::DateTime<chrono::Utc>),
}

impl Clock {
    /// The current instant.
    pub fn now(self) -> chrono::DateTime<chrono::Utc> {
        match self {
            Clock::System => chrono::Utc::now(),
            Clock::Fixed(instant) => instant,
        }
    }

    /// Today's date and the current time in RFC 3339 (whole seconds), in UTC.
    pub fn today_and_stamp(self) -> (Date, String) {
        use chrono::Datelike as _;
        let now = self.now();
        let date = Date {
            year: u16::try_from(now.year()).unwrap_or(u16::MAX),
            month: now.month() as u8,
            day: now.day() as u8,
        };
        (date, now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }
}

/// What the scanner reads and where it keeps its caches.
pub struct ScannerOptions {
    /// `<dir>/layers` holds per-layer scans, `<dir>/images` the layout registry images are pulled into.
    pub cache_dir: PathBuf,
    /// How registries are reached.
    pub registry: ClientOptions,
    /// Which findings the reports keep.
    pub filters: Filters,
    /// Where "now" comes from (end of life, report times).
    pub clock: Clock,
}

/// Scans images: reads their package databases (layer by layer, cached)
/// and matches them against the advisory store and the security repositories.
pub struct Scanner {
    /// Read on blocking threads only (SQLite stays off the async runtime).
    store: Option<Arc<Mutex<Store>>>,
    /// The distro's own security pocket, most trusted for Debian and Ubuntu.
    security: Option<SecurityRepo>,
    layers: DiskLayerCache,
    pulled: PathBuf,
    /// Built on first use: loading TLS roots costs milliseconds that local scans need not pay.
    client: std::sync::OnceLock<RegistryClient>,
    registry_options: ClientOptions,
    filters: Filters,
    clock: Clock,
    memo: Arc<Mutex<AdvisoryMemo>>,
}

/// Advisories already read from the store, per distro and source package,
/// so that scanning many images with the same base does not read the same
/// rows again. Valid while the store's feeds are the ones it was filled
/// under: any import or update changes a feed's `fetched_at` and `sha256`,
/// which empties it. Lists are shared with the scans that use them, not copied.
#[derive(Default)]
struct AdvisoryMemo {
    feeds: Vec<FeedStatus>,
    by_distro: HashMap<Distro, HashMap<String, Advisories>>,
    /// The packed bytes held.
    bytes: usize,
}

/// One source package's stored advisories, one entry per feed by feed name,
/// still packed ([`PackedAdvisories::views`] reads them in place).
type Advisories = Arc<Vec<PackedAdvisories>>;

/// Past this many packed bytes held, the memo starts over (bounds its memory
/// for a long-lived scanner that sees many distros).
const MEMO_MAX_BYTES: usize = 32 << 20;

/// A layout tag naming a pulled registry image (`localhost:5000/a/b:1` → `localhost_5000_a_b_1`).
fn pull_tag(reference: &oci::ImageReference) -> String {
    oci::layout::tag_naming(&format!(
        "{}/{}/{}",
        reference.registry(),
        reference.repository(),
        reference.manifest_reference()
    ))
}

impl Scanner {
    /// A scanner over an advisory store and the security-repository feed
    /// (either may be absent; with neither, only inventories are reported).
    pub fn new(
        store: Option<Store>,
        security: Option<SecurityRepo>,
        options: ScannerOptions,
    ) -> Result<Scanner, ScanError> {
        Ok(Scanner {
            store: store.map(|store| Arc::new(Mutex::new(store))),
            security,
            layers: DiskLayerCache::new(options.cache_dir.join("layers")),
            pulled: options.cache_dir.join("images"),
            client: std::sync::OnceLock::new(),
            registry_options: options.registry,
            filters: options.filters,
            clock: options.clock,
            memo: Arc::default(),
        })
    }

    /// The inventory of an image and, when it has one, its manifest digest.
    async fn inventory(
        &self,
        source: &ImageSource,
    ) -> Result<(Inventory, Option<Digest>), ScanError> {
        let limits = ScanLimits::default();
        match source {
            ImageSource::Dir(root) => {
                let root = root.clone();
                let inventory = tokio::task::spawn_blocking(move || from_dir(&root)).await??;
                Ok((inventory, None))
            }
            ImageSource::Location(ImageLocation::Layout { path, tag }) => {
                let layout = OciLayout::open(path).await?;
                let inventory = from_layout(&layout, tag.as_deref(), &self.layers, limits).await?;
                let digest = inventory.image_digest.clone();
                Ok((inventory, digest))
            }
            ImageSource::Archive(file) => {
                let layout = OciLayout::create(&self.pulled).await?;
                let tag = format!(
                    "archive-{}",
                    &oci::docker_archive::archive_key(file)?.hex()[..32]
                );
                let manifest = oci::docker_archive::import(file, &layout, &tag).await?;
                let inventory = from_layout(&layout, Some(&tag), &self.layers, limits).await?;
                Ok((inventory, Some(manifest.digest)))
            }
            ImageSource::Location(ImageLocation::Registry(reference)) => {
                // Pulled into a local layout that persists: blobs already there are not fetched again.
                let layout = OciLayout::create(&self.pulled).await?;
                let tag = pull_tag(reference);
                let client = match self.client.get() {
                    Some(client) => client.clone(),
                    None => {
                        let client = RegistryClient::new(self.registry_options.clone())?;
                        self.client.get_or_init(|| client).clone()
                    }
                };
                let source = Endpoint::Registry {
                    client,
                    image: reference.clone(),
                };
                let destination = Endpoint::Layout {
                    layout: layout.clone(),
                    tag: Some(tag.clone()),
                };
                let copied = oci::copy::copy_image(&source, &destination, Arc::new(Silent)).await?;
                let inventory = from_layout(&layout, Some(&tag), &self.layers, limits).await?;
                Ok((inventory, copied.digest))
            }
        }
    }

    /// Where the scanner's "now" comes from.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Scans `image` (as the user wrote it) and returns the report.
    pub async fn scan(&self, image: &str) -> Result<Report, ScanError> {
        let source = ImageSource::parse(image)?;
        let (inventory, digest) = self.inventory(&source).await?;
        self.scan_inventory(image, &inventory, digest).await
    }

    /// Matches an inventory already read (`image` names it in the report).
    pub async fn scan_inventory(
        &self,
        image: &str,
        inventory: &Inventory,
        digest: Option<Digest>,
    ) -> Result<Report, ScanError> {
        let windows_config = inventory
            .image_config
            .as_ref()
            .and_then(|c| c.get("os"))
            .is_some_and(|os| os == "windows");
        if inventory.windows || windows_config {
            return Err(ScanError::Windows {
                image: image.to_string(),
            });
        }
        let Some(os) = inventory.os.clone() else {
            return Err(ScanError::NoOs {
                image: image.to_string(),
            });
        };
        let os_text = os.pretty_name.clone().unwrap_or_else(|| os.id.clone());
        if inventory.package_db.is_none() {
            return Err(ScanError::NoPackageDatabase {
                image: image.to_string(),
                os: os_text,
            });
        }
        let Some((distro, family)) = matching::distro_of(&os) else {
            return Err(ScanError::UnsupportedOs {
                image: image.to_string(),
                os: os_text,
            });
        };
        let (today, created_at) = self.clock.today_and_stamp();
        let os_name = os
            .release
            .clone()
            .or(os.version_id.clone())
            .unwrap_or_default();
        let summary = OsSummary {
            family,
            name: os_name.clone(),
            eosl: inventory
                .lifecycle()
                .is_some_and(|l| l.is_end_of_life(today)),
        };
        let mut sources: Vec<&str> = inventory
            .packages
            .iter()
            .map(|p| p.source_name.as_str())
            .collect();
        sources.sort_unstable();
        sources.dedup();
        let stored = match &self.store {
            Some(store) => {
                let (store, memo) = (Arc::clone(store), Arc::clone(&self.memo));
                let (distro, sources) = (
                    distro.clone(),
                    sources.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                );
                tokio::task::spawn_blocking(move || {
                    let store = store.lock().unwrap_or_else(PoisonError::into_inner);
                    advisories_for(&store, &memo, &distro, &sources)
                })
                .await??
            }
            None => BTreeMap::new(),
        };
        let security = match self.security_advisories(&distro, inventory).await {
            Ok(found) => found,
            // An end-of-life release's security pocket is usually gone from
            // the archive: report what the store knows, with EOSL set.
            Err(e) if summary.eosl => {
                tracing::warn!("{image}: {e}");
                BTreeMap::new()
            }
            Err(e) => return Err(e),
        };
        let findings = matching::findings_from_views(
            family,
            &inventory.packages,
            &candidates(&stored, &security)?,
            &self.filters,
        );
        Ok(Report {
            artifact_name: image.to_string(),
            artifact_digest: digest.map(|d| d.to_string()),
            os: Some(summary),
            image_config: inventory
                .image_config
                .clone()
                .unwrap_or(serde_json::Value::Null),
            results: vec![TargetResult {
                target: format!("{image} ({} {os_name})", family.as_str()),
                family,
                packages: inventory.packages.iter().map(matching::entry).collect(),
                findings,
            }],
            created_at,
        })
    }
}

/// The stored advisories of `sources` for `distro`, from the memo or, for
/// those not yet in it, from the store. Blocking (SQLite).
fn advisories_for(
    store: &Store,
    memo: &Mutex<AdvisoryMemo>,
    distro: &Distro,
    sources: &[String],
) -> Result<BTreeMap<String, Advisories>, ScanError> {
    let feeds = store.feeds()?;
    let mut memo = memo.lock().unwrap_or_else(PoisonError::into_inner);
    if memo.feeds != feeds || memo.bytes > MEMO_MAX_BYTES {
        *memo = AdvisoryMemo {
            feeds,
            ..AdvisoryMemo::default()
        };
    }
    let memo = &mut *memo;
    let by_package = memo.by_distro.entry(distro.clone()).or_default();
    let missing: Vec<&str> = sources
        .iter()
        .map(String::as_str)
        .filter(|source| !by_package.contains_key(*source))
        .collect();
    if !missing.is_empty() {
        let mut found = store.packed_advisories_for_many(distro, &missing)?;
        for source in missing {
            let advisories = found.remove(source).unwrap_or_default();
            memo.bytes += advisories
                .iter()
                .map(PackedAdvisories::packed_len)
                .sum::<usize>();
            by_package.insert(source.to_string(), Arc::new(advisories));
        }
    }
    Ok(sources
        .iter()
        .filter_map(|source| {
            let advisories = by_package.get(source)?;
            (!advisories.is_empty()).then(|| (source.clone(), Arc::clone(advisories)))
        })
        .collect())
}

/// Each source's advisories in trust order, as matching reads them: the
/// security pocket's first (they speak for an id before the stored feeds
/// do), then the store's by id (by feed name among equal ids).
fn candidates<'a>(
    stored: &'a BTreeMap<String, Advisories>,
    security: &'a BTreeMap<String, Vec<FeedAdvisory>>,
) -> Result<BTreeMap<&'a str, Vec<AdvisoryView<'a>>>, ScanError> {
    let mut all: BTreeMap<&str, Vec<AdvisoryView>> = BTreeMap::new();
    for (source, advisories) in security {
        all.entry(source)
            .or_default()
            .extend(advisories.iter().map(AdvisoryView::from));
    }
    for (source, feeds) in stored {
        let list = all.entry(source).or_default();
        let first = list.len();
        for feed in feeds.iter() {
            list.extend(feed.views()?);
        }
        // Each feed's views are in id order: a stable sort merges them.
        if feeds.len() > 1 {
            list[first..].sort_by(|a, b| a.id.cmp(b.id));
        }
    }
    Ok(all)
}

impl Scanner {
    /// The security pocket's advisories for the image, by source package.
    async fn security_advisories(
        &self,
        distro: &advisory::Distro,
        inventory: &Inventory,
    ) -> Result<BTreeMap<String, Vec<FeedAdvisory>>, ScanError> {
        let mut by_source: BTreeMap<String, Vec<FeedAdvisory>> = BTreeMap::new();
        let Some(security) = &self.security else {
            return Ok(by_source);
        };
        if !matches!(distro.family, Family::Debian | Family::Ubuntu) {
            return Ok(by_source);
        }
        let debs: Vec<&pkgdb::Package> = inventory
            .packages
            .iter()
            .filter(|p| p.kind == pkgdb::PackageKind::Deb)
            .collect();
        // The dpkg architecture of the image: its first architecture-specific package's.
        let Some(architecture) = debs
            .iter()
            .map(|p| p.architecture.as_str())
            .find(|a| *a != "all")
        else {
            return Ok(by_source);
        };
        let mut installed: Vec<InstalledSource> =
            debs.iter().map(|p| InstalledSource::from(*p)).collect();
        installed.sort_by(|a, b| {
            (&a.source_name, &a.source_version).cmp(&(&b.source_name, &b.source_version))
        });
        installed.dedup_by(|a, b| {
            a.source_name == b.source_name && a.source_version == b.source_version
        });
        let found = security
            .advisories(distro, architecture, &installed)
            .await?;
        for advisory in found {
            by_source
                .entry(advisory.package.clone())
                .or_default()
                .push(FeedAdvisory {
                    feed: "security-repo".to_string(),
                    advisory,
                });
        }
        Ok(by_source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Debian 12 root filesystem under `dir` whose dpkg status is `status`.
    fn bookworm_root(dir: &Path, status: &str) -> PathBuf {
        let root = dir.join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
        std::fs::write(
            root.join("etc/os-release"),
            "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
        )
        .unwrap();
        std::fs::write(root.join("var/lib/dpkg/status"), status).unwrap();
        root
    }

    /// One scanner, two scans; between them the feed is re-imported with the
    /// advisory's fix moved past the installed version: the second scan must
    /// see the new data, not the memo's.
    #[test]
    fn advisory_memo_follows_feed_updates() {
        let work = tempfile::tempdir().unwrap();
        let root = bookworm_root(
            work.path(),
            "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\n\
             Source: zlib\nVersion: 1:1.2.13.dfsg-1\n",
        );
        let db = work.path().join("advisories.db");
        let import = |fixed: &str| {
            let feed = work.path().join("tracker.json");
            let tracker = serde_json::json!({"zlib": {"CVE-2099-1": {"releases": {"bookworm": {
                "status": "resolved", "fixed_version": fixed, "urgency": "high",
                "repositories": {"bookworm": "1:1.2.13.dfsg-1"}}}}}});
            std::fs::write(&feed, serde_json::to_vec(&tracker).unwrap()).unwrap();
            let feeds = advisory::feeds::load(&[feed], None).unwrap();
            Store::open(&db).unwrap().replace_feeds(&feeds).unwrap();
        };
        import("1:1.2.13.dfsg-1");
        let scanner = Scanner::new(
            Some(Store::open_existing(&db).unwrap()),
            None,
            ScannerOptions {
                cache_dir: work.path().join("cache"),
                registry: ClientOptions::default(),
                filters: Filters::default(),
                clock: Clock::System,
            },
        )
        .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let image = format!("dir:{}", root.display());
        let findings = |scanner: &Scanner| {
            runtime.block_on(scanner.scan(&image)).unwrap().results[0]
                .findings
                .len()
        };
        assert_eq!(findings(&scanner), 0, "fixed in the installed version");
        assert_eq!(findings(&scanner), 0, "from the memo");
        import("1:1.2.13.dfsg-1+deb12u1");
        assert_eq!(findings(&scanner), 1, "the re-imported feed is seen");
    }

    /// The scanner's clock decides end of life and stamps the report: the
    /// same Debian 12 root is supported in 2025 and past its end in 2031.
    #[test]
    fn the_clock_decides_end_of_life_and_stamps_the_report() {
        let work = tempfile::tempdir().unwrap();
        let root = bookworm_root(work.path(), "");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let scan_at = |instant: &str| {
            let instant = chrono::DateTime::parse_from_rfc3339(instant)
                .unwrap()
                .with_timezone(&chrono::Utc);
            let scanner = Scanner::new(
                None,
                None,
                ScannerOptions {
                    cache_dir: work.path().join("cache"),
                    registry: ClientOptions::default(),
                    filters: Filters::default(),
                    clock: Clock::Fixed(instant),
                },
            )
            .unwrap();
            runtime
                .block_on(scanner.scan(&format!("dir:{}", root.display())))
                .unwrap()
        };
        let supported = scan_at("2025-03-01T12:00:00Z");
        assert_eq!(supported.created_at, "2025-03-01T12:00:00Z");
        assert!(!supported.os.unwrap().eosl);
        assert!(scan_at("2031-01-01T00:00:00Z").os.unwrap().eosl);
    }

    #[test]
    fn parses_image_sources() {
        assert_eq!(
            ImageSource::parse("dir:/tmp/root").unwrap(),
            ImageSource::Dir("/tmp/root".into())
        );
        assert!(matches!(
            ImageSource::parse("oci:/x:1").unwrap(),
            ImageSource::Location(ImageLocation::Layout { .. })
        ));
        assert!(matches!(
            ImageSource::parse("nginx").unwrap(),
            ImageSource::Location(ImageLocation::Registry(_))
        ));
        assert!(ImageSource::parse("dir:").is_err());
        assert!(ImageSource::parse("Bad Name").is_err());
    }

    #[test]
    fn pull_tags_are_valid_tags() {
        let reference: oci::ImageReference = "localhost:5000/team/app:1.25".parse().unwrap();
        let tag = pull_tag(&reference);
        assert_eq!(tag, "localhost_5000_team_app_1.25");
        assert!(oci::reference::is_valid_tag(&tag));
    }

    #[test]
    fn clock_formats_rfc3339() {
        let (date, stamp) = Clock::System.today_and_stamp();
        assert!(date.year >= 2024);
        assert_eq!(stamp.len(), 20);
        assert!(stamp.ends_with('Z'));
        assert_eq!(&stamp[..10], date.to_string());
    }
}
