//! The patch of one image in an OCI layout, end to end.
//!
//! Owns the order of work for each linux platform of an image: read the
//! layers (only the package database, APT configuration and `/etc`, cached
//! per layer), refuse what cannot be patched (Windows, unknown or
//! unsupported OS, end of life unless allowed, no package database), fetch
//! and verify the suites' `InRelease` and indexes, plan, download and
//! verify the `.deb` files, build the layer, and write the new blobs into
//! the layout. Nothing is tagged here: the caller moves a tag once
//! everything it points to exists.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use oci::manifest::{ContentRef, Manifest, media_type};
use oci::{OciLayout, ParsedManifest};
use pkgdb::inventory::{ImageFiles, read_image, read_manifest};
use pkgdb::{Inventory, Rootfs, ScanLimits, Selection};
use repo::{AptClient, Cache, DebFile, Keyring, ReleaseReuse, Suite, distributions};
use scan::scanner::DiskLayerCache;
use serde_json::Value;

use crate::candidates::{IndexCache, IndexId, IndexOrigin};
use crate::dpkgdb::InstalledDb;
use crate::effects::{Handling, ScriptEffect};
use crate::error::PatchError;
use crate::image::{self, LayerRef};
use crate::layer::{self, BuiltLayer, PackageInput};
use crate::plan::{self, Plan, Wants};
use crate::preferences::Preferences;
use crate::sources::{self, AptSource, Distribution, Mirror, SignedBy};
use oci::error_chain;

pub use crate::plan::Request;

/// What a patch layer scan keeps: the inventory's files, the APT
/// configuration, the dpkg database, file lists and statoverrides, apt's
/// auto-installed marks, trigger interests, debconf's database, all of `/etc` (to compare conffiles), the
/// certificates the trust store is built from, the keyrings third-party
/// suites name, and what is where
/// everywhere else (directories and symlinks dpkg must respect, bytecode
/// that goes stale).
static PATCH_SELECTION: LazyLock<Selection> = LazyLock::new(|| {
    let mut selection = Selection::inventory();
    selection.files.extend(
        [
            "bin",
            "sbin",
            "lib",
            "lib32",
            "lib64",
            "libx32",
            crate::admin::STATOVERRIDE,
            crate::dpkgdb::EXTENDED_STATES,
            crate::dpkgdb::DIVERSIONS,
            crate::debconf::CONFIG,
            crate::debconf::TEMPLATES,
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    selection.dirs.push(crate::dpkgdb::INFO.to_string());
    selection.dirs.push(crate::triggers::DIR.to_string());
    selection.trees.extend(
        [
            "etc",
            "usr/share/keyrings",
            "usr/local/share/keyrings",
            "usr/share/ca-certificates",
            "usr/local/share/ca-certificates",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    selection.all_paths = true;
    selection
});

/// Names the per-layer cache of [`PATCH_SELECTION`] scans: a new name
/// whenever the selection changes, so no scan made for another one is read.
const PATCH_SELECTION_CACHE: &str = "layers-5";

/// How many `.deb` files are downloaded at once.
const PARALLEL_DOWNLOADS: usize = 6;

/// How a [`Patcher`] works: its cache, mirrors, keys and what it allows.
pub struct PatcherOptions {
    /// `<dir>/apt` holds downloads, `<dir>/layers-N` per-layer scans, `<dir>/indexes.db` parsed indexes.
    pub cache_dir: PathBuf,
    /// Rewrites of the suites' URLs, the first matching one applied.
    pub mirrors: Vec<Mirror>,
    /// Keyrings trusted for Debian suites (default: the system's Debian archive keyring).
    pub debian_keyrings: Vec<PathBuf>,
    /// Extra keyrings for Ubuntu suites (Ubuntu's archive key ships with drydock).
    pub ubuntu_keyrings: Vec<PathBuf>,
    /// Patch releases past their end of life from what their suites still hold.
    pub allow_eol: bool,
    /// Accept suites whose signature is missing or does not verify (the
    /// image's `[trusted=yes]` entries are accepted without this).
    pub allow_unsigned: bool,
    /// `os/arch[/variant]` platforms to patch; empty patches every linux platform.
    pub platforms: Vec<String>,
    /// A verified `InRelease` is reused for this long by the same patcher
    /// (a server patching many images); zero fetches it for every image.
    pub release_max_age: std::time::Duration,
    /// The HTTP client every suite, index and package is fetched with.
    pub http: oci::SharedHttp,
    /// Where "now" comes from (a release's end of life).
    pub clock: scan::Clock,
}

/// How the upgraded packages' maintainer scripts and triggers are handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScriptMode {
    /// Their known effects reproduced natively, the rest reported as not run.
    #[default]
    Native,
    /// The image's own apt and dpkg run them in a sandbox (bubblewrap).
    Sandbox,
}

impl ScriptMode {
    /// Whether this is the default, native mode.
    pub fn is_native(&self) -> bool {
        *self == ScriptMode::Native
    }
}

/// A maintainer-script mode that is neither `native` nor `sandbox`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("maintainer scripts: {0:?} is neither \"native\" nor \"sandbox\"")]
pub struct UnknownScriptMode(pub String);

impl std::str::FromStr for ScriptMode {
    type Err = UnknownScriptMode;

    fn from_str(text: &str) -> Result<ScriptMode, UnknownScriptMode> {
        match text.to_ascii_lowercase().as_str() {
            "native" => Ok(ScriptMode::Native),
            "sandbox" => Ok(ScriptMode::Sandbox),
            _ => Err(UnknownScriptMode(text.to_string())),
        }
    }
}

/// A Trivy report that drydock cannot take its requests from.
#[derive(Debug, thiserror::Error)]
pub enum TrivyReportError {
    /// The report is not JSON.
    #[error("not JSON")]
    NotJson(#[source] serde_json::Error),
    /// The JSON has no `Results` array, as every Trivy JSON report has.
    #[error("no Results array; this is not a Trivy JSON report")]
    NoResults,
    /// A fixable vulnerability does not say which package it is in.
    #[error("vulnerability {id} has no PkgName")]
    NoPackageName {
        /// The vulnerability's id.
        id: String,
    },
}

/// Where the packages to upgrade come from.
pub enum WantSource<'a> {
    /// Scan each platform and upgrade what has a fixed version.
    Scan(&'a scan::Scanner),
    /// A Trivy JSON report's fixable OS-package findings.
    Report(Vec<Request>),
    /// Every package with a newer version.
    All,
}

/// One platform's result.
pub struct PlatformOutcome {
    /// `linux/amd64`.
    pub platform: String,
    /// What the patch installs (or would, in a dry run).
    pub plan: Plan,
    /// The distribution's suites consulted, mirrors applied.
    pub sources: Vec<AptSource>,
    /// The image's third-party repositories and whether they were consulted.
    pub third_party: Vec<ThirdPartySuite>,
    /// Set when something was built.
    pub layer: Option<BuiltLayer>,
    /// The patched platform's manifest, when something was built.
    pub manifest: Option<ContentRef>,
    /// The patched image's inventory (for the post-patch scan).
    pub inventory_after: Option<Inventory>,
    /// The distro, for purls (`debian`, `ubuntu`) and its release (`12`).
    pub distro: (String, String),
}

/// A third-party suite the image configures (`bookworm-pgdg`, a PPA).
#[derive(Debug, Clone)]
pub struct ThirdPartySuite {
    /// The suite as the image configures it.
    pub source: AptSource,
    /// Why its indexes were not read (no key for it in the image, a bad
    /// signature, the repository unreachable); `None`: they were.
    pub skipped: Option<String>,
}

/// The result of patching one image.
pub struct Outcome {
    /// The image patched (a manifest or an index).
    pub original: ContentRef,
    /// The new manifest or index; `None` when nothing needed patching (or a dry run).
    pub patched: Option<ContentRef>,
    /// Each platform patched (one for a single-platform image).
    pub platforms: Vec<PlatformOutcome>,
}

/// The native patcher: patches images of OCI layouts, keeping its caches
/// (downloads, per-layer scans, parsed indexes, verified suites) across them.
pub struct Patcher {
    options: PatcherOptions,
    /// Built on first use: a keyring costs milliseconds to parse, and an
    /// image needs only its own distribution's.
    debian: std::sync::OnceLock<AptClient>,
    ubuntu: std::sync::OnceLock<AptClient>,
    layers: DiskLayerCache,
    /// Read and written on blocking threads only (SQLite, parsing indexes).
    indexes: Arc<IndexCache>,
}

/// Why a keyring cannot be used (its files, or a key built into drydock).
type KeyringProblem = Box<dyn std::error::Error + Send + Sync>;

fn keyring(paths: &[PathBuf], builtin: Option<&[u8]>) -> Result<Keyring, KeyringProblem> {
    let mut keyring = Keyring::from_files(paths)?;
    if let Some(bytes) = builtin {
        keyring.add(bytes)?;
    }
    Ok(keyring)
}

impl Patcher {
    /// A patcher with `options`; opens (or creates) its index cache.
    pub fn new(options: PatcherOptions) -> Result<Patcher, PatchError> {
        Ok(Patcher {
            debian: std::sync::OnceLock::new(),
            ubuntu: std::sync::OnceLock::new(),
            layers: DiskLayerCache::new(options.cache_dir.join(PATCH_SELECTION_CACHE)),
            indexes: Arc::new(IndexCache::open(&options.cache_dir.join("indexes.db"))?),
            options,
        })
    }

    fn apt(&self, distribution: Distribution) -> Result<&AptClient, PatchError> {
        let cell = match distribution {
            Distribution::Debian => &self.debian,
            Distribution::Ubuntu => &self.ubuntu,
        };
        if let Some(client) = cell.get() {
            return Ok(client);
        }
        let build = || -> Result<AptClient, KeyringProblem> {
            let cache = Cache::new(self.options.cache_dir.join("apt"));
            let keyring = match distribution {
                Distribution::Debian if self.options.debian_keyrings.is_empty() => {
                    keyring(&[PathBuf::from(distributions::DEBIAN_KEYRING)], None)
                }
                Distribution::Debian => keyring(&self.options.debian_keyrings, None),
                Distribution::Ubuntu => keyring(
                    &self.options.ubuntu_keyrings,
                    Some(distributions::UBUNTU_ARCHIVE_KEY),
                ),
            }?;
            Ok(AptClient::new(self.options.http.clone(), cache, keyring))
        };
        let client = build().map_err(|source| PatchError::Keyring {
            distribution,
            source,
        })?;
        // Another image may have built it meanwhile: either one will do.
        Ok(cell.get_or_init(|| client))
    }

    /// Patches the image `original` (a manifest or an index) of `layout`.
    /// `name` is how the user named it (recorded as the base image).
    pub async fn patch(
        &self,
        layout: &OciLayout,
        original: &ContentRef,
        name: &str,
        wants: &WantSource<'_>,
        scripts: ScriptMode,
        dry_run: bool,
    ) -> Result<Outcome, PatchError> {
        let top = read_manifest(layout, original).await?;
        let original_json: Value = serde_json::from_slice(&layout.read_blob_bytes(original).await?)
            .map_err(|source| PatchError::ManifestNotJson {
                image: name.to_string(),
                source,
            })?;
        let Manifest::Index(index) = &top.manifest else {
            let outcome = self
                .patch_manifest(layout, original, &top, "", name, wants, scripts, dry_run)
                .await?;
            let patched = outcome.manifest.clone();
            return Ok(Outcome {
                original: original.clone(),
                patched,
                platforms: vec![outcome],
            });
        };
        let mut platforms = Vec::new();
        let mut entries = Vec::new();
        let descriptors = original_json
            .get("manifests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (descriptor, json) in index.manifests().iter().zip(descriptors) {
            let platform = descriptor.platform().as_ref().map(|p| {
                let mut text = format!("{}/{}", p.os(), p.architecture());
                if let Some(variant) = p.variant() {
                    text.push_str(&format!("/{variant}"));
                }
                text
            });
            let wanted = platform.as_ref().is_some_and(|p| {
                p.starts_with("linux/")
                    && (self.options.platforms.is_empty()
                        || self
                            .options
                            .platforms
                            .iter()
                            .any(|w| p == w || p.starts_with(&format!("{w}/"))))
            });
            let is_image = media_type::is_manifest(descriptor.media_type().as_ref());
            if !wanted || !is_image {
                entries.push(image::IndexEntry {
                    original: json,
                    patched: None,
                });
                continue;
            }
            let platform = platform.unwrap_or_default();
            let content = ContentRef {
                digest: descriptor.digest().as_ref().parse().map_err(|source| {
                    PatchError::IndexEntryDigest {
                        image: name.to_string(),
                        source,
                    }
                })?,
                size: descriptor.size(),
                media_type: descriptor.media_type().to_string(),
            };
            let manifest = read_manifest(layout, &content).await?;
            let outcome = self
                .patch_manifest(
                    layout, &content, &manifest, &platform, name, wants, scripts, dry_run,
                )
                .await?;
            entries.push(image::IndexEntry {
                original: json,
                patched: outcome
                    .manifest
                    .as_ref()
                    .map(|m| (m.digest.clone(), m.size)),
            });
            platforms.push(outcome);
        }
        if platforms.is_empty() {
            return Err(PatchError::NoPlatform {
                image: name.to_string(),
            });
        }
        let patched = if platforms.iter().any(|p| p.manifest.is_some()) {
            let packages = platforms
                .iter()
                .map(|p| format!("{}:{}", p.platform, image::packages_annotation(&p.plan)))
                .collect::<Vec<_>>()
                .join(";");
            let index =
                image::rewrite_index(&original_json, &original.digest, name, entries, &packages);
            let bytes = serde_json::to_vec(&index).expect("an index serialises");
            Some(
                layout
                    .write_blob_bytes(Bytes::from(bytes), media_type::OCI_INDEX)
                    .await?,
            )
        } else {
            None
        };
        Ok(Outcome {
            original: original.clone(),
            patched,
            platforms,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn patch_manifest(
        &self,
        layout: &OciLayout,
        content: &ContentRef,
        manifest: &ParsedManifest,
        platform: &str,
        name: &str,
        wants: &WantSource<'_>,
        scripts: ScriptMode,
        dry_run: bool,
    ) -> Result<PlatformOutcome, PatchError> {
        let label = if platform.is_empty() {
            name.to_string()
        } else {
            format!("{name} ({platform})")
        };
        let files = read_image(
            layout,
            manifest,
            &self.layers,
            ScanLimits::default(),
            &PATCH_SELECTION,
        )
        .await?;
        let inventory = Inventory::from_rootfs(&files.rootfs)?;
        let windows = files.config.get("os").is_some_and(|os| os == "windows");
        if inventory.windows || windows {
            return Err(PatchError::Windows { image: label });
        }
        let Some(os) = inventory.os.clone() else {
            return Err(PatchError::NoOs { image: label });
        };
        let Some(distribution) = Distribution::from_os_id(&os.id) else {
            return Err(PatchError::UnsupportedOs {
                image: label,
                os: os.pretty_name.clone().unwrap_or(os.id),
            });
        };
        let Some(codename) = os.codename.clone() else {
            return Err(PatchError::NoCodename { image: label });
        };
        let (today, _) = self.options.clock.today_and_stamp();
        if let Some(lifecycle) = inventory.lifecycle()
            && lifecycle.is_end_of_life(today)
            && !self.options.allow_eol
        {
            return Err(PatchError::EndOfLife {
                image: label,
                release: os.pretty_name.clone().unwrap_or(codename),
                ended: lifecycle.end_of_service().map(|d| d.to_string()),
            });
        }
        let Some(db) = InstalledDb::read(&files.rootfs)? else {
            return Err(PatchError::NoDpkgDatabase { image: label });
        };
        let installed = db.installed();
        let native = installed
            .iter()
            .map(|f| f.architecture.as_str())
            .find(|a| *a != "all")
            .map(str::to_string)
            .or_else(|| {
                files
                    .config
                    .get("architecture")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "amd64".to_string());
        let configured = configured_sources(&files.rootfs)?;
        let mut sources = sources::effective(&configured, distribution, &codename, &native);
        sources::apply_mirrors(&mut sources, &self.options.mirrors);
        let preferences = preferences(&files.rootfs)?;
        let apt = self.apt(distribution)?;
        // Foreign architectures' packages (`libc6:i386`) come from their own indexes.
        let mut architectures: Vec<&str> = vec![native.as_str()];
        for facts in &installed {
            if facts.architecture != "all" && !architectures.contains(&facts.architecture.as_str())
            {
                architectures.push(&facts.architecture);
            }
        }
        let mut indexes = self.indexes_for(apt, &sources, &architectures).await?;
        let mut third_party = Vec::new();
        for source in sources::third_party(&configured, distribution) {
            let skipped = match self
                .third_party_indexes(&files.rootfs, &source, &architectures)
                .await
            {
                Ok(found) => {
                    indexes.extend(found);
                    None
                }
                Err(error) => {
                    let reason = error_chain(&error);
                    tracing::warn!(
                        "{label}: third-party suite {} {} not consulted: {reason}",
                        source.uri,
                        source.suite
                    );
                    Some(reason)
                }
            };
            third_party.push(ThirdPartySuite { source, skipped });
        }
        let requests = match wants {
            WantSource::All => None,
            WantSource::Report(requests) => Some(requests.clone()),
            WantSource::Scan(scanner) => {
                let report = scanner.scan_inventory(&label, &inventory, None).await?;
                Some(requests_from_report(&report))
            }
        };
        let wants = match requests {
            Some(requests) => Wants::Packages(requests),
            None => Wants::All,
        };
        let names: Vec<String> = installed.iter().map(|f| f.name.clone()).collect();
        let mut available = {
            let (cache, indexes) = (Arc::clone(&self.indexes), indexes.clone());
            tokio::task::spawn_blocking(move || cache.closure(&indexes, names))
                .await
                .map_err(|source| PatchError::Task {
                    task: "candidates",
                    source,
                })??
        };
        if preferences.matter(&available) {
            available = preferences.candidates(available, &installed, &native);
        }
        let plan = plan::plan(&installed, &available, &native, &wants, &db.held())?;
        let distro = (os.id.clone(), os.version_id.clone().unwrap_or_default());
        let mut outcome = PlatformOutcome {
            platform: platform.to_string(),
            plan,
            sources,
            third_party,
            layer: None,
            manifest: None,
            inventory_after: None,
            distro,
        };
        if dry_run || outcome.plan.is_empty() {
            return Ok(outcome);
        }
        if scripts == ScriptMode::Sandbox
            && let Some(reason) = crate::sandbox::unavailable(&native, &files.rootfs)
        {
            return Err(PatchError::SandboxUnavailable {
                image: label,
                reason,
            });
        }
        let debs = self.download(apt, &outcome.plan).await?;
        let deb_paths: Vec<PathBuf> = debs.iter().map(|d| d.path().to_path_buf()).collect();
        let rootfs_files = files;
        let (layer, rootfs_files) = {
            let plan = outcome.plan.clone();
            tokio::task::spawn_blocking(move || {
                let inputs: Vec<PackageInput> = plan
                    .steps
                    .iter()
                    .zip(debs)
                    .map(|(step, deb)| PackageInput { step, deb })
                    .collect();
                let layer = layer::build(&db, &rootfs_files.rootfs, &inputs);
                (layer, rootfs_files)
            })
            .await
            .map_err(|source| PatchError::Task {
                task: "layer",
                source,
            })?
        };
        let mut layer = layer?;
        if scripts == ScriptMode::Sandbox {
            layer = self
                .run_in_sandbox(layout, &rootfs_files, layer, &outcome.plan, deb_paths)
                .await?;
        }
        let (manifest_ref, after) = self
            .write_image(layout, content, &rootfs_files, &layer, &outcome.plan, name)
            .await?;
        outcome.inventory_after = Some(after);
        outcome.layer = Some(layer);
        outcome.manifest = Some(manifest_ref);
        Ok(outcome)
    }

    /// The layer the image's own apt and dpkg leave, in the sandbox, for
    /// `plan`'s verified `debs`. The natively built `layer` comes first: it
    /// has vetted every package's entries (no `..`, devices, escaping
    /// links) and holds the new records the sandbox needs.
    async fn run_in_sandbox(
        &self,
        layout: &OciLayout,
        files: &ImageFiles,
        layer: BuiltLayer,
        plan: &Plan,
        debs: Vec<PathBuf>,
    ) -> Result<BuiltLayer, PatchError> {
        let request = crate::sandbox::Request {
            layers: files
                .layers
                .iter()
                .map(|l| (layout.blob_path(&l.digest), l.digest.clone()))
                .collect(),
            packages: debs
                .into_iter()
                .zip(&plan.steps)
                .zip(&layer.records)
                .map(|((deb, step), record)| crate::sandbox::Package {
                    deb,
                    size: step.to.package.size,
                    sha256: step.to.package.sha256.clone(),
                    facts: record.facts.clone(),
                    control: record.control.clone(),
                    upgrade: record.replaces.is_some(),
                })
                .collect(),
            extended_states: layer::extended_states(&files.rootfs, &layer.records),
            epoch: layer.newest_mtime,
            work_dir: self.options.cache_dir.join("sandbox"),
            max_layer_bytes: ScanLimits::default().max_layer_bytes,
        };
        let captured = tokio::task::spawn_blocking(move || crate::sandbox::run(&request))
            .await
            .map_err(|source| PatchError::Task {
                task: "sandbox",
                source,
            })??;
        tracing::debug!("dpkg in the sandbox:\n{}", captured.log);
        // Whatever native mode found to reproduce or leave, dpkg ran it all.
        let mut script_effects: Vec<ScriptEffect> = Vec::new();
        for effect in layer.script_effects {
            if !script_effects.iter().any(|e| e.package == effect.package) {
                script_effects.push(ScriptEffect {
                    effect: "maintainer scripts and triggers".to_string(),
                    handling: Handling::Run,
                    ..effect
                });
            }
        }
        Ok(BuiltLayer {
            blob: captured.layer.blob,
            digest: captured.layer.digest,
            diff_id: captured.layer.diff_id,
            uncompressed_size: captured.layer.uncompressed_size,
            linker_cache_updated: captured.written.iter().any(|p| p == "etc/ld.so.cache"),
            whiteouts: captured.whiteouts,
            conffiles_kept: layer.conffiles_kept,
            script_effects,
            records: layer.records,
            newest_mtime: layer.newest_mtime,
        })
    }

    /// A suite's verified `InRelease`: reused while younger than
    /// `release_max_age`; a bad or missing signature is refused unless the
    /// user allowed it ([`PatcherOptions::allow_unsigned`], or
    /// `[trusted=yes]` in the image).
    async fn verified_suite<'s>(
        &self,
        apt: &AptClient,
        source: &'s AptSource,
    ) -> Result<(&'s AptSource, repo::VerifiedSuite), PatchError> {
        let suite = Suite::new(&source.uri, &source.suite);
        let reuse = ReleaseReuse {
            max_age: Some(self.options.release_max_age).filter(|age| !age.is_zero()),
            offline: false,
        };
        let verified = match apt.release_reusing(&suite, reuse).await {
            Ok(verified) => verified,
            Err(repo::Error::Keyring(e)) if self.options.allow_unsigned || source.trusted => {
                tracing::warn!(
                    "{suite}: {}; used without a valid signature, as allowed",
                    error_chain(&e)
                );
                apt.release_without_signature(&suite).await?
            }
            Err(source @ repo::Error::Keyring(_)) => {
                return Err(PatchError::Unsigned {
                    suite: suite.to_string(),
                    source,
                });
            }
            Err(e) => return Err(e.into()),
        };
        Ok((source, verified))
    }

    /// Verifies each suite once and makes sure its indexes for each of
    /// `architectures` are in the cache.
    async fn indexes_for(
        &self,
        apt: &AptClient,
        sources: &[AptSource],
        architectures: &[&str],
    ) -> Result<Vec<IndexId>, PatchError> {
        let verified = futures_util::future::try_join_all(
            sources
                .iter()
                .map(|source| self.verified_suite(apt, source)),
        )
        .await?;
        self.cached_indexes(apt, &verified, architectures).await
    }

    /// The indexes of a third-party suite, verified with the keys the
    /// image gives it (its `signed-by`, else apt's trusted keys); an error
    /// says why the suite cannot be used. Never reuses a verification made
    /// with other keys.
    async fn third_party_indexes(
        &self,
        rootfs: &Rootfs,
        source: &AptSource,
        architectures: &[&str],
    ) -> Result<Vec<IndexId>, ThirdPartyError> {
        if source.suite.ends_with('/') {
            return Err(ThirdPartyError::FlatRepository);
        }
        let suite = Suite::new(&source.uri, &source.suite);
        let cache = Cache::new(self.options.cache_dir.join("apt"));
        let keyring = if source.trusted {
            Keyring::default()
        } else {
            third_party_keyring(rootfs, source)?
        };
        let apt = AptClient::new(self.options.http.clone(), cache, keyring);
        let verified = if source.trusted {
            apt.release_without_signature(&suite).await
        } else {
            apt.release(&suite).await
        }?;
        Ok(self
            .cached_indexes(&apt, &[(source, verified)], architectures)
            .await?)
    }

    /// Makes sure the indexes of `verified` suites for each of
    /// `architectures` are in the cache.
    async fn cached_indexes(
        &self,
        apt: &AptClient,
        verified: &[(&AptSource, repo::VerifiedSuite)],
        architectures: &[&str],
    ) -> Result<Vec<IndexId>, PatchError> {
        let mut indexes = Vec::new();
        // Collected, so no closure is held across the awaits below (the
        // future would not be `Send` for every lifetime the callers need).
        let wanted: Vec<(&str, &(&AptSource, repo::VerifiedSuite))> = architectures
            .iter()
            .flat_map(|arch| verified.iter().map(move |v| (*arch, v)))
            .collect();
        for (arch, (source, verified)) in wanted {
            for component in &source.components {
                let stem = format!("{component}/binary-{arch}/Packages");
                let Some(sha256) = ["xz", "gz", ""]
                    .iter()
                    .map(|ext| {
                        if ext.is_empty() {
                            stem.clone()
                        } else {
                            format!("{stem}.{ext}")
                        }
                    })
                    .find_map(|path| verified.release.files.get(&path).map(|f| f.sha256.clone()))
                else {
                    continue; // a component this suite does not carry for the architecture
                };
                let cache = Arc::clone(&self.indexes);
                let key = sha256.clone();
                let cached = tokio::task::spawn_blocking(move || cache.has(&key))
                    .await
                    .map_err(|source| PatchError::Task {
                        task: "index cache",
                        source,
                    })?;
                if !cached {
                    let bytes = apt.index(verified, &stem).await?;
                    let file = format!("{} {stem}", verified.suite);
                    let (cache, key) = (Arc::clone(&self.indexes), sha256.clone());
                    tokio::task::spawn_blocking(move || cache.insert(&key, &file, &bytes))
                        .await
                        .map_err(|source| PatchError::Task {
                            task: "index cache",
                            source,
                        })??;
                }
                let release = &verified.release;
                indexes.push(IndexId {
                    sha256,
                    origin: Arc::new(IndexOrigin {
                        base_url: source.uri.clone(),
                        host: source.configured_host().to_string(),
                        suite: source.suite.clone(),
                        component: component.clone(),
                        architecture: arch.to_string(),
                        origin: release.origin.clone(),
                        label: release.label.clone(),
                        archive: release.suite.clone(),
                        codename: release.codename.clone(),
                        version: release.version.clone(),
                        not_automatic: release.not_automatic,
                        but_automatic_upgrades: release.but_automatic_upgrades,
                    }),
                });
            }
        }
        Ok(indexes)
    }

    async fn download(&self, apt: &AptClient, plan: &Plan) -> Result<Vec<DebFile>, PatchError> {
        // Collected first, as in `cached_indexes`: no closure across the await.
        let downloads: Vec<_> = plan
            .steps
            .iter()
            .map(|step| async move {
                let package = &step.to.package;
                apt.download(
                    &step.to.base_url,
                    &package.filename,
                    &package.sha256,
                    package.size,
                )
                .await
                .map(DebFile::new)
            })
            .collect();
        let downloads = futures_util::stream::iter(downloads)
            .buffered(PARALLEL_DOWNLOADS)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(downloads)
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_image(
        &self,
        layout: &OciLayout,
        original: &ContentRef,
        files: &ImageFiles,
        layer: &BuiltLayer,
        plan: &Plan,
        name: &str,
    ) -> Result<(ContentRef, Inventory), PatchError> {
        let layer_ref = LayerRef {
            digest: layer.digest.clone(),
            size: layer.blob.len() as u64,
            diff_id: layer.diff_id.clone(),
        };
        layout
            .write_blob_bytes(Bytes::from(layer.blob.clone()), media_type::OCI_LAYER_GZIP)
            .await?;
        let config = image::rewrite_config(&files.config, &layer_ref, plan, &layer.script_effects);
        let config_bytes = serde_json::to_vec(&config).expect("a config serialises");
        let config_ref = layout
            .write_blob_bytes(Bytes::from(config_bytes), media_type::OCI_CONFIG)
            .await?;
        let original_json: Value = serde_json::from_slice(&layout.read_blob_bytes(original).await?)
            .map_err(|source| PatchError::ManifestNotJson {
                image: name.to_string(),
                source,
            })?;
        let rewritten = image::rewrite_manifest(
            &original_json,
            &original.digest,
            name,
            (&config_ref.digest, config_ref.size),
            &layer_ref,
            plan,
        );
        let bytes = serde_json::to_vec(&rewritten).expect("a manifest serialises");
        let manifest_ref = layout
            .write_blob_bytes(Bytes::from(bytes.clone()), media_type::OCI_MANIFEST)
            .await?;
        let patched = ParsedManifest::parse(&bytes, Some(media_type::OCI_MANIFEST))
            .map_err(oci::Error::from)?;
        let after = read_image(
            layout,
            &patched,
            &self.layers,
            ScanLimits::default(),
            &PATCH_SELECTION,
        )
        .await?;
        let inventory = Inventory::from_rootfs(&after.rootfs)?;
        Ok((manifest_ref, inventory))
    }
}

/// Why a third-party suite of the image is not consulted.
#[derive(Debug, thiserror::Error)]
enum ThirdPartyError {
    /// The suite is a path (`deb URI ./`): a flat repository.
    #[error("a flat repository (its suite is a path); drydock reads dists/ suites only")]
    FlatRepository,
    /// Its `signed-by` names fingerprints, which drydock cannot look up.
    #[error(
        "its signed-by names key fingerprints; drydock verifies third-party \
         suites with keyring files or inline keys"
    )]
    Fingerprints,
    /// Its `signed-by` holds an inline key that cannot be used.
    #[error("its inline key")]
    InlineKey(#[source] KeyringProblem),
    /// None of the key files that could sign it holds a usable key; each
    /// problem is said.
    #[error("{}", .0.join("; "))]
    NoUsableKey(Vec<String>),
    /// Fetching or verifying the suite failed.
    #[error(transparent)]
    Repository(#[from] repo::Error),
    /// Its indexes cannot be read.
    #[error(transparent)]
    Indexes(Box<PatchError>),
}

impl From<PatchError> for ThirdPartyError {
    fn from(error: PatchError) -> ThirdPartyError {
        ThirdPartyError::Indexes(Box::new(error))
    }
}

/// Where drydock reads keyring files in an image (besides `/etc`).
const KEY_TREES: [&str; 3] = ["etc", "usr/share/keyrings", "usr/local/share/keyrings"];

/// apt's trusted keys in the image, where a source has no `signed-by`.
const TRUSTED_KEYS: &str = "etc/apt/trusted.gpg";
const TRUSTED_KEYS_DIR: &str = "etc/apt/trusted.gpg.d";

/// The keys apt accepts for a third-party `source` of the image: those its
/// `signed-by` names (keyring files or an inline key), else apt's trusted
/// keys (`/etc/apt/trusted.gpg`, `/etc/apt/trusted.gpg.d/*.{gpg,asc}`).
fn third_party_keyring(rootfs: &Rootfs, source: &AptSource) -> Result<Keyring, ThirdPartyError> {
    let mut keyring = Keyring::default();
    let files: Vec<String> = match &source.signed_by {
        Some(SignedBy::Inline(key)) => {
            keyring
                .add(key.as_bytes())
                .map_err(|e| ThirdPartyError::InlineKey(e.into()))?;
            return Ok(keyring);
        }
        Some(SignedBy::Fingerprints(_)) => {
            return Err(ThirdPartyError::Fingerprints);
        }
        Some(SignedBy::Files(paths)) => paths
            .iter()
            .map(|p| p.trim_start_matches('/').to_string())
            .collect(),
        None => std::iter::once(TRUSTED_KEYS.to_string())
            .filter(|p| rootfs.read(p).is_some())
            .chain(
                rootfs
                    .list_files(TRUSTED_KEYS_DIR)
                    .into_iter()
                    .filter(|p| p.ends_with(".gpg") || p.ends_with(".asc")),
            )
            .collect(),
    };
    // As apt does, a file that holds no usable key is passed over as long
    // as another one does.
    let mut problems = Vec::new();
    let mut usable = 0;
    for path in &files {
        match rootfs.read(path) {
            None => problems.push(format!(
                "its key file /{path} is not in the image (drydock reads keys under {})",
                KEY_TREES.map(|t| format!("/{t}")).join(", ")
            )),
            Some(file) => match keyring.add(file.content) {
                Ok(()) => usable += 1,
                Err(e) => {
                    let problem: KeyringProblem = e.into();
                    problems.push(format!("its key file /{path}: {}", error_chain(&*problem)));
                }
            },
        }
    }
    if usable == 0 {
        if files.is_empty() {
            problems.push(
                "the image has no key for it (no signed-by, nothing in /etc/apt/trusted.gpg.d)"
                    .to_string(),
            );
        }
        return Err(ThirdPartyError::NoUsableKey(problems));
    }
    for problem in problems {
        tracing::warn!("{} {}: {problem}", source.uri, source.suite);
    }
    Ok(keyring)
}

/// The image's apt preferences: `/etc/apt/preferences`, then the files of
/// `/etc/apt/preferences.d` apt reads (no extension or `.pref`), by name.
fn preferences(rootfs: &Rootfs) -> Result<Preferences, PatchError> {
    let mut paths: Vec<String> = rootfs
        .list_files(PREFERENCES_DIR)
        .into_iter()
        .filter(|path| {
            let name = path.rsplit('/').next().unwrap_or("");
            let valid = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            valid && (!name.contains('.') || name.ends_with(".pref"))
        })
        .collect();
    paths.sort();
    paths.insert(0, PREFERENCES.to_string());
    let texts: Vec<(String, String)> = paths
        .into_iter()
        .filter_map(|path| rootfs.text(&path).map(|text| (path, text)))
        .collect();
    Ok(Preferences::parse(
        texts.iter().map(|(p, t)| (p.as_str(), t.as_str())),
    )?)
}

const PREFERENCES: &str = "etc/apt/preferences";
const PREFERENCES_DIR: &str = "etc/apt/preferences.d";

fn configured_sources(rootfs: &Rootfs) -> Result<Vec<AptSource>, PatchError> {
    let mut found = Vec::new();
    if let Some(list) = rootfs.text("etc/apt/sources.list") {
        found.extend(sources::parse_one_line("etc/apt/sources.list", &list)?);
    }
    for path in rootfs.list_files("etc/apt/sources.list.d") {
        let Some(content) = rootfs.text(&path) else {
            continue;
        };
        if path.ends_with(".list") {
            found.extend(sources::parse_one_line(&path, &content)?);
        } else if path.ends_with(".sources") {
            found.extend(sources::parse_deb822(&path, &content)?);
        }
    }
    Ok(found)
}

/// One request per package with a fixable finding: the highest fixed version and every id.
pub(crate) fn requests_from_report(report: &scan::Report) -> Vec<Request> {
    let mut by_package: BTreeMap<String, Request> = BTreeMap::new();
    for finding in report.results.iter().flat_map(|r| &r.findings) {
        let Some(fixed) = finding.fixed_version() else {
            continue;
        };
        merge_request(
            &mut by_package,
            &finding.package.name,
            fixed,
            &finding.vulnerability_id,
        );
    }
    by_package.into_values().collect()
}

/// Adds one fixed finding to the requests, keeping the highest fixed version.
pub(crate) fn merge_request(
    requests: &mut BTreeMap<String, Request>,
    name: &str,
    fixed: &str,
    id: &str,
) {
    let request = requests.entry(name.to_string()).or_insert_with(|| Request {
        name: name.to_string(),
        fixed_source_version: None,
        vulnerabilities: Vec::new(),
    });
    let higher = request
        .fixed_source_version
        .as_deref()
        .is_none_or(|current| pkgdb::version::dpkg::compare(fixed, current).is_gt());
    if higher {
        request.fixed_source_version = Some(fixed.to_string());
    }
    if !request.vulnerabilities.iter().any(|v| v == id) {
        request.vulnerabilities.push(id.to_string());
    }
}

/// Requests from a Trivy JSON report: `Class: os-pkgs` results,
/// vulnerabilities with a `FixedVersion` (the highest when it lists several).
pub fn requests_from_trivy(json: &[u8]) -> Result<Vec<Request>, TrivyReportError> {
    let report: Value = serde_json::from_slice(json).map_err(TrivyReportError::NotJson)?;
    let results = report
        .get("Results")
        .and_then(Value::as_array)
        .ok_or(TrivyReportError::NoResults)?;
    let mut by_package = BTreeMap::new();
    for result in results {
        if result.get("Class").and_then(Value::as_str) != Some("os-pkgs") {
            continue;
        }
        for vulnerability in result
            .get("Vulnerabilities")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let field = |name| {
                vulnerability
                    .get(name)
                    .and_then(Value::as_str)
                    .unwrap_or("")
            };
            let (name, id) = (field("PkgName"), field("VulnerabilityID"));
            let Some(fixed) = field("FixedVersion")
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .max_by(|a, b| pkgdb::version::dpkg::compare(a, b))
            else {
                continue;
            };
            if name.is_empty() {
                return Err(TrivyReportError::NoPackageName { id: id.to_string() });
            }
            merge_request(&mut by_package, name, fixed, id);
        }
    }
    Ok(by_package.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server spawns patches on its runtime: the future must be `Send`.
    #[allow(dead_code)]
    fn patching_is_send(patcher: &Patcher, layout: &OciLayout, original: &ContentRef) {
        fn send<T: Send>(_: T) {}
        send(patcher.patch(
            layout,
            original,
            "image",
            &WantSource::All,
            ScriptMode::Native,
            true,
        ));
    }

    #[test]
    fn reads_fixable_findings_from_a_trivy_report() {
        let report = br#"{"SchemaVersion":2,"Results":[
          {"Target":"x (debian 12.5)","Class":"os-pkgs","Type":"debian","Vulnerabilities":[
            {"VulnerabilityID":"CVE-1","PkgName":"libssl3","InstalledVersion":"3.0.1","FixedVersion":"3.0.2"},
            {"VulnerabilityID":"CVE-2","PkgName":"libssl3","InstalledVersion":"3.0.1","FixedVersion":"3.0.3, 3.0.2"},
            {"VulnerabilityID":"CVE-3","PkgName":"zlib1g","InstalledVersion":"1","FixedVersion":""}]},
          {"Target":"app","Class":"lang-pkgs","Vulnerabilities":[
            {"VulnerabilityID":"CVE-4","PkgName":"lodash","FixedVersion":"4"}]}]}"#;
        let requests = requests_from_trivy(report).unwrap();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].name, "libssl3");
        assert_eq!(requests[0].fixed_source_version.as_deref(), Some("3.0.3"));
        assert_eq!(requests[0].vulnerabilities, ["CVE-1", "CVE-2"]);
        assert!(matches!(
            requests_from_trivy(b"{}"),
            Err(TrivyReportError::NoResults)
        ));
        assert!(matches!(
            requests_from_trivy(b"nope"),
            Err(TrivyReportError::NotJson(_))
        ));
    }
}
