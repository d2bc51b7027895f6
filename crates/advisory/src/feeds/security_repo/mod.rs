//! The security-repository feed: advisories from a release's own security
//! pocket (Debian `<codename>-security` on `deb.debian.org/debian-security`,
//! Ubuntu `<codename>-security` on `security.ubuntu.com/ubuntu`, or
//! `ports.ubuntu.com/ubuntu-ports` for architectures other than amd64 and
//! i386).
//!
//! Every upload to a security pocket is a security fix, so an installed
//! source package older (dpkg order) than the newest version of that source
//! in the pocket's `Packages` indexes (every component the `Release`
//! lists) is fixable. The CVE ids and the urgency come from the upload's
//! changelog entries after the installed version up to the fixed one, read
//! from the `usr/share/doc/<binary>/changelog.Debian.gz` inside the
//! smallest binary of the upload (following a doc-directory symlink to a
//! sibling binary of the same source). Each CVE becomes one [`Advisory`]:
//! `package` = the source, status fixed in the pocket's source version,
//! severity = the highest urgency of those entries (`low` → LOW, `medium` →
//! MEDIUM, `high` → HIGH, `emergency`/`critical` → CRITICAL), rated by
//! `debian`/`ubuntu`.
//!
//! **Updates without CVE ids.** When those entries name no CVE (or the
//! changelog cannot be read), the update is still reported, once, under
//! drydock's own stable id `DRYDOCK-<FAMILY>-<source>-<fixed version>`:
//! `<FAMILY>` is `DEBIAN` or `UBUNTU`, `<source>` the source package and
//! `<fixed version>` the pocket's source version exactly as the archive
//! writes it (epoch included), e.g. `DRYDOCK-DEBIAN-tzdata-2025b-0+deb12u1`,
//! `DRYDOCK-UBUNTU-zlib-1:1.3.dfsg-3.1ubuntu2.1`. The same id is the alias
//! of the CVE advisories of that update. It is stable: the same upload
//! always gets the same id, on every machine.
//!
//! Trust and caching: `InRelease` is fetched and verified against the
//! family's keyring on every call; indexes and `.deb`s come through the
//! checksum-keyed download cache (re-hashed before use, so a damaged cached
//! file is fetched again); each upload's changelog entries are kept per
//! (family, source, version) under the cache directory, so an upload is
//! read once across runs and processes. Offline, only the cache is used:
//! the last verified `InRelease` (verified again; an expired `Valid-Until`
//! is only warned about), the indexes it names, and cached changelogs (an
//! upload whose changelog is not cached gets the stable id).
//!
//! This feed is computed per image at scan time and never written to the
//! advisory [`crate::Store`]. It never compares anything but source
//! versions and never installs anything.

mod disk;
mod select;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use futures_util::{StreamExt, stream};
use repo::apt::packages::{self, IndexPackage};
use repo::changelog::{self, ChangelogLocation};
use repo::{AptClient, Cache, DebFile, Keyring, ReleaseReuse, Suite, VerifiedSuite};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, KeyringProblem, NoSecuritySuite, Result};
use crate::model::{Advisory, Distro, Family};
use disk::CachedChangelog;
use disk::Disk;
use select::{Entry, SourceUpload, SourceVersions, Uploads};

use repo::distributions::{
    DEBIAN_KEYRING, DEBIAN_SECURITY, UBUNTU_ARCHIVE_KEY, UBUNTU_PORTS, UBUNTU_SECURITY,
};

/// How many sources' changelogs are fetched at once.
const PARALLEL: usize = 4;
/// How many binaries of an upload are tried for its changelog.
const MAX_CHANGELOG_TRIES: usize = 4;

/// An installed source package: the name and version an installed binary's
/// `Source:` field gives (its own name and version without one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstalledSource {
    /// The source package's name.
    pub source_name: String,
    /// The source package's version.
    pub source_version: String,
}

impl From<&pkgdb::Package> for InstalledSource {
    fn from(package: &pkgdb::Package) -> InstalledSource {
        InstalledSource {
            source_name: package.source_name.clone(),
            source_version: package.source_version.clone(),
        }
    }
}

/// How the security-repository feed reaches the archives and where it keeps its files.
#[derive(Debug, Clone)]
pub struct SecurityRepoOptions {
    /// The HTTP client every request goes through (with the user's TLS
    /// trust), built on the first request.
    pub http: oci::SharedHttp,
    /// Downloads (`sha256/…`) and the feed's own files (`security-repo/…`).
    pub cache_dir: PathBuf,
    /// Keyrings trusted for Debian suites; default [`DEBIAN_KEYRING`].
    pub debian_keyrings: Vec<PathBuf>,
    /// Keyrings trusted for Ubuntu suites; empty (the default) trusts the
    /// shipped [`UBUNTU_ARCHIVE_KEY`].
    pub ubuntu_keyrings: Vec<PathBuf>,
    /// Base URL replacing [`DEBIAN_SECURITY`].
    pub debian_mirror: Option<String>,
    /// Base URL replacing [`UBUNTU_SECURITY`] (amd64, i386).
    pub ubuntu_mirror: Option<String>,
    /// Base URL replacing [`UBUNTU_PORTS`] (other architectures).
    pub ubuntu_ports_mirror: Option<String>,
    /// Use only what the cache holds; never touch the network.
    pub offline: bool,
    /// Online, reuse a stored `InRelease` younger than this instead of fetching
    /// it again (it is still verified, `Valid-Until` included); `None` always fetches.
    pub max_age: Option<std::time::Duration>,
}

impl SecurityRepoOptions {
    /// The defaults: official mirrors, the keyrings above, online, requests
    /// made with `http`.
    pub fn new(cache_dir: impl Into<PathBuf>, http: oci::SharedHttp) -> SecurityRepoOptions {
        SecurityRepoOptions {
            http,
            cache_dir: cache_dir.into(),
            debian_keyrings: vec![PathBuf::from(DEBIAN_KEYRING)],
            ubuntu_keyrings: Vec::new(),
            debian_mirror: None,
            ubuntu_mirror: None,
            ubuntu_ports_mirror: None,
            offline: false,
            max_age: None,
        }
    }
}

/// The feed: one APT client per family (each trusting only its family's
/// keys) over one download cache.
pub struct SecurityRepo {
    options: SecurityRepoOptions,
    /// Each family's client, made (its keyring read) when the family is
    /// first asked for; a keyring that cannot be read is reported then.
    debian: OnceLock<std::result::Result<AptClient, Arc<KeyringProblem>>>,
    ubuntu: OnceLock<std::result::Result<AptClient, Arc<KeyringProblem>>>,
    disk: Disk,
    /// `<suite> <architecture>` → what its current indexes hold.
    memo: Mutex<HashMap<String, SuiteState>>,
    /// Changelog entries already read, per upload (which never changes), so
    /// rescanning many images reads each record from disk once.
    changelogs: Mutex<HashMap<UploadKey, Entries>>,
}

/// An upload: (family, source, version).
type UploadKey = (Family, String, String);

/// An upload's changelog entries; `None` when no binary of it carried a
/// changelog drydock could read.
type Entries = Option<Arc<Vec<Entry>>>;

/// What a suite's indexes (for one architecture) hold, as far as read: the
/// versions always, the uploads with their binaries once a changelog had to
/// be fetched.
#[derive(Clone)]
struct SuiteState {
    /// The checksums of the indexes, from the verified `InRelease`.
    content_key: String,
    versions: Arc<SourceVersions>,
    uploads: Option<Arc<Uploads>>,
}

/// The `Packages` indexes of a suite for one architecture, as its verified
/// `InRelease` lists them.
struct SuiteIndexes<'a> {
    verified: &'a VerifiedSuite,
    architecture: &'a str,
    /// (`<component>/binary-<arch>/Packages`, the listed file's path, its entry).
    files: Vec<(String, String, &'a repo::IndexFile)>,
    /// `<suite> <architecture>`.
    memo_key: String,
    /// The files' checksums, concatenated.
    content_key: String,
}

impl SuiteIndexes<'_> {
    fn disk_key(&self) -> String {
        format!("{} {}", self.architecture, self.content_key)
    }
}

fn keyring(
    paths: &[PathBuf],
    builtin: Option<&[u8]>,
) -> std::result::Result<Keyring, KeyringProblem> {
    let mut keyring = Keyring::from_files(paths)?;
    if let Some(bytes) = builtin.filter(|_| paths.is_empty()) {
        keyring.add(bytes).map_err(KeyringProblem::ShippedKey)?;
    }
    if paths.is_empty() && builtin.is_none() {
        return Err(KeyringProblem::NoneGiven);
    }
    Ok(keyring)
}

impl SecurityRepo {
    /// The feed as `options` say. A keyring that cannot be read is not an
    /// error here: it is reported when its family is asked for.
    pub fn new(options: SecurityRepoOptions) -> Result<SecurityRepo> {
        Ok(SecurityRepo {
            disk: Disk::new(&options.cache_dir),
            options,
            debian: OnceLock::new(),
            ubuntu: OnceLock::new(),
            memo: Mutex::new(HashMap::new()),
            changelogs: Mutex::new(HashMap::new()),
        })
    }

    /// The suite serving `distro`'s security updates for `architecture`.
    pub fn suite(&self, distro: &Distro, architecture: &str) -> Result<Suite> {
        let name = select::suite_name(distro).map_err(|source| Error::UnknownRelease {
            distro: distro.to_string(),
            source,
        })?;
        let options = &self.options;
        let base = match distro.family {
            Family::Ubuntu if select::ubuntu_is_ports(architecture) => options
                .ubuntu_ports_mirror
                .as_deref()
                .unwrap_or(UBUNTU_PORTS),
            Family::Ubuntu => options.ubuntu_mirror.as_deref().unwrap_or(UBUNTU_SECURITY),
            _ => options.debian_mirror.as_deref().unwrap_or(DEBIAN_SECURITY),
        };
        Ok(Suite::new(base, &name))
    }

    fn client(&self, family: Family) -> Result<&AptClient> {
        let (client, paths, builtin) = match family {
            Family::Ubuntu => (
                &self.ubuntu,
                &self.options.ubuntu_keyrings,
                Some(UBUNTU_ARCHIVE_KEY),
            ),
            _ => (&self.debian, &self.options.debian_keyrings, None),
        };
        let client = client.get_or_init(|| {
            let options = &self.options;
            keyring(paths, builtin)
                .map(|k| AptClient::new(options.http.clone(), Cache::new(&options.cache_dir), k))
                .map_err(Arc::new)
        });
        client.as_ref().map_err(|problem| Error::Keyring {
            family,
            paths: paths.clone(),
            source: Arc::clone(problem),
        })
    }

    /// Fixable-by-the-security-pocket advisories for these installed source
    /// packages of one release, for the image's dpkg `architecture`
    /// (`amd64`, `arm64`, `armhf`, `i386`, …; `all` packages are always
    /// included). Sorted by package, then id.
    pub async fn advisories(
        &self,
        distro: &Distro,
        architecture: &str,
        installed: &[InstalledSource],
    ) -> Result<Vec<Advisory>> {
        let suite = self.suite(distro, architecture)?;
        let client = self.client(distro.family)?;
        let verified = self.verified_suite(client, &suite, distro).await?;
        let indexes = self.indexes(&verified, architecture)?;
        let versions = self.versions(client, &indexes).await?;
        let outdated: Vec<(String, String, String)> = select::outdated(
            installed
                .iter()
                .map(|i| (i.source_name.as_str(), i.source_version.as_str())),
            &versions,
        )
        .into_iter()
        .map(|(source, installed, fixed)| (source.into(), installed.into(), fixed.into()))
        .collect();
        let family = distro.family;
        let cached = self.known_changelogs(family, &outdated).await?;
        let missing = cached.iter().any(Option::is_none);
        // The uploads' binaries are read only when a changelog must be fetched.
        let uploads = if missing && !self.options.offline {
            Some(self.uploads(client, &indexes).await?)
        } else {
            None
        };
        let suite = &suite;
        // Futures made up front (not in a stream closure), so the whole future stays `Send`.
        let work: Vec<_> = outdated
            .iter()
            .zip(cached)
            .map(|((source, installed, fixed), cached)| {
                let upload = uploads.as_ref().and_then(|u| u.get(source.as_str()));
                async move {
                    let entries = match cached {
                        Some(entries) => entries,
                        None => {
                            let fetched = self
                                .fetch_changelog(client, suite, family, source, fixed, upload)
                                .await?
                                .map(Arc::new);
                            // `None` may be a download that fails today and works tomorrow.
                            if fetched.is_some() {
                                self.remember_changelog(family, source, fixed, &fetched);
                            }
                            fetched
                        }
                    };
                    Ok::<_, Error>(select::advisories(
                        distro,
                        &suite.name,
                        source,
                        installed,
                        fixed,
                        entries.as_deref().map(Vec::as_slice),
                    ))
                }
            })
            .collect();
        let results: Vec<Result<Vec<Advisory>>> = stream::iter(work)
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let mut advisories = Vec::new();
        for result in results {
            advisories.extend(result?);
        }
        advisories.sort_by(|a, b| a.package.cmp(&b.package).then_with(|| a.id.cmp(&b.id)));
        Ok(advisories)
    }

    /// The suite's verified `InRelease`, reused as the options say
    /// ([`AptClient::release_reusing`]), and checked to be the suite asked for.
    async fn verified_suite(
        &self,
        client: &AptClient,
        suite: &Suite,
        distro: &Distro,
    ) -> Result<VerifiedSuite> {
        let url = format!("{}/dists/{}/InRelease", suite.base_url, suite.name);
        let reuse = ReleaseReuse {
            max_age: self.options.max_age,
            offline: self.options.offline,
        };
        let verified = match client.release_reusing(suite, reuse).await {
            Ok(verified) => verified,
            Err(repo::Error::NotFound { url }) => {
                return Err(Error::UnknownRelease {
                    distro: distro.to_string(),
                    source: NoSecuritySuite::NotServed { url },
                });
            }
            Err(repo::Error::NotStored { .. }) => {
                return Err(Error::NotCached {
                    what: format!("the InRelease of {suite}"),
                    cache: self.options.cache_dir.clone(),
                });
            }
            Err(source @ repo::Error::Keyring(_)) => {
                return Err(Error::SecurityRepo {
                    what: format!("the InRelease of {suite} did not verify"),
                    source: Box::new(source),
                });
            }
            Err(source) => {
                return Err(Error::SecurityRepo {
                    what: format!("cannot fetch the InRelease of {suite}"),
                    source: Box::new(source),
                });
            }
        };
        let release = &verified.release;
        if release.suite.as_deref() != Some(&suite.name)
            && release.codename.as_deref() != Some(&suite.name)
        {
            return Err(Error::WrongSuite {
                url,
                expected: suite.name.clone(),
                found: release
                    .suite
                    .clone()
                    .or_else(|| release.codename.clone())
                    .unwrap_or_default(),
            });
        }
        Ok(verified)
    }

    /// The changelog entries known for each (source, _, version) upload:
    /// remembered, else read from the disk cache (in one blocking task);
    /// `None` where neither has it.
    async fn known_changelogs(
        &self,
        family: Family,
        uploads: &[(String, String, String)],
    ) -> Result<Vec<Option<Entries>>> {
        let mut known: Vec<Option<Entries>> = {
            let memo = self.changelogs.lock().unwrap_or_else(|e| e.into_inner());
            uploads
                .iter()
                .map(|(source, _, version)| {
                    memo.get(&(family, source.clone(), version.clone()))
                        .cloned()
                })
                .collect()
        };
        let unread: Vec<(usize, String, String)> = uploads
            .iter()
            .zip(&known)
            .enumerate()
            .filter(|(_, (_, known))| known.is_none())
            .map(|(i, ((source, _, version), _))| (i, source.clone(), version.clone()))
            .collect();
        if unread.is_empty() {
            return Ok(known);
        }
        let disk = self.disk.clone();
        let read: Vec<(usize, Option<CachedChangelog>)> = tokio::task::spawn_blocking(move || {
            unread
                .into_iter()
                .map(|(i, source, version)| (i, disk.changelog(family, &source, &version)))
                .collect()
        })
        .await
        .map_err(join_error)?;
        for (i, record) in read {
            if let Some(record) = record {
                let entries = record.entries.map(Arc::new);
                self.remember_changelog(family, &record.source, &record.version, &entries);
                known[i] = Some(entries);
            }
        }
        Ok(known)
    }

    fn remember_changelog(&self, family: Family, source: &str, version: &str, entries: &Entries) {
        self.changelogs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                (family, source.to_string(), version.to_string()),
                entries.clone(),
            );
    }

    /// The suite's `Packages` indexes for `architecture` (every component).
    fn indexes<'a>(
        &self,
        verified: &'a VerifiedSuite,
        architecture: &'a str,
    ) -> Result<SuiteIndexes<'a>> {
        let release = &verified.release;
        let suite = &verified.suite;
        let no_architecture = || Error::NoArchitecture {
            suite: suite.to_string(),
            architecture: architecture.to_string(),
            available: release.architectures.join(" "),
        };
        if !release.architectures.is_empty()
            && !release.architectures.iter().any(|a| a == architecture)
        {
            return Err(no_architecture());
        }
        let mut files = Vec::new();
        for component in &release.components {
            // Debian's security suites list `updates/main` but keep `main/…`.
            let names = [Some(component.as_str()), component.strip_prefix("updates/")];
            if let Some(index) = names.into_iter().flatten().find_map(|name| {
                let stem = format!("{name}/binary-{architecture}/Packages");
                ["xz", "gz"]
                    .iter()
                    .map(|ext| format!("{stem}.{ext}"))
                    .chain([stem.clone()])
                    .find_map(|path| release.files.get(&path).map(|f| (path, f)))
                    .map(|(path, file)| (stem, path, file))
            }) {
                files.push(index);
            }
        }
        if files.is_empty() {
            return Err(no_architecture());
        }
        let content_key = files.iter().map(|(_, _, f)| f.sha256.as_str()).collect();
        Ok(SuiteIndexes {
            verified,
            architecture,
            files,
            memo_key: format!("{suite} {architecture}"),
            content_key,
        })
    }

    fn remembered(&self, indexes: &SuiteIndexes<'_>) -> Option<SuiteState> {
        let memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        memo.get(&indexes.memo_key)
            .filter(|state| state.content_key == indexes.content_key)
            .cloned()
    }

    fn remember(
        &self,
        indexes: &SuiteIndexes<'_>,
        versions: Arc<SourceVersions>,
        uploads: Option<Arc<Uploads>>,
    ) -> SuiteState {
        let state = SuiteState {
            content_key: indexes.content_key.clone(),
            versions,
            uploads,
        };
        self.memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(indexes.memo_key.clone(), state.clone());
        state
    }

    /// The newest version of each source in the indexes: remembered while
    /// their signed checksums stay the same, then the compact `.versions`
    /// file a previous run stored for them, else read from the indexes.
    async fn versions(
        &self,
        client: &AptClient,
        indexes: &SuiteIndexes<'_>,
    ) -> Result<Arc<SourceVersions>> {
        if let Some(state) = self.remembered(indexes) {
            return Ok(state.versions);
        }
        let disk = self.disk.clone();
        let key = indexes.disk_key();
        let stored = tokio::task::spawn_blocking(move || disk.versions(&key))
            .await
            .map_err(join_error)?;
        if let Some(versions) = stored {
            return Ok(self.remember(indexes, Arc::new(versions), None).versions);
        }
        Ok(self.read_indexes(client, indexes).await?.versions)
    }

    /// The newest upload of each source with its binaries: remembered, stored
    /// by a previous run, or read from the indexes.
    async fn uploads(
        &self,
        client: &AptClient,
        indexes: &SuiteIndexes<'_>,
    ) -> Result<Arc<Uploads>> {
        let remembered = self.remembered(indexes);
        if let Some(uploads) = remembered.as_ref().and_then(|s| s.uploads.clone()) {
            return Ok(uploads);
        }
        let disk = self.disk.clone();
        let key = indexes.disk_key();
        let stored = tokio::task::spawn_blocking(move || disk.uploads(&key))
            .await
            .map_err(join_error)?;
        if let Some(uploads) = stored {
            let versions = match remembered {
                Some(state) => state.versions,
                None => Arc::new(select::source_versions(&uploads)),
            };
            let uploads = Arc::new(uploads);
            self.remember(indexes, versions, Some(uploads.clone()));
            return Ok(uploads);
        }
        let state = self.read_indexes(client, indexes).await?;
        Ok(state.uploads.expect("read from the indexes"))
    }

    /// Reads the indexes (downloaded through the checksum-keyed cache), keeps
    /// the newest upload of each source (of `architecture` and `all`), stores
    /// uploads and versions for the next run and remembers them.
    async fn read_indexes(
        &self,
        client: &AptClient,
        indexes: &SuiteIndexes<'_>,
    ) -> Result<SuiteState> {
        let verified = indexes.verified;
        let suite = &verified.suite;
        let mut all = Vec::new();
        for (stem, path, file) in &indexes.files {
            let what = format!("{} {path}", suite.name);
            let present = verify_cached(client.cache(), &file.sha256, file.size, &what).await?;
            if self.options.offline && !present {
                return Err(Error::NotCached {
                    what,
                    cache: self.options.cache_dir.clone(),
                });
            }
            let bytes =
                client
                    .index(verified, stem)
                    .await
                    .map_err(|source| Error::SecurityRepo {
                        what: format!("cannot fetch {what}"),
                        source: Box::new(source),
                    })?;
            let architecture = indexes.architecture.to_string();
            let parsed = tokio::task::spawn_blocking(move || {
                packages::parse(&what, &bytes)
                    .map(|entries| {
                        entries
                            .into_iter()
                            .filter(|p| p.architecture == architecture || p.architecture == "all")
                            .collect::<Vec<_>>()
                    })
                    .map_err(|source| Error::SecurityRepo {
                        what: format!("cannot read {what}"),
                        source: Box::new(repo::Error::Index(source)),
                    })
            })
            .await
            .map_err(join_error)??;
            all.extend(parsed);
        }
        let disk = self.disk.clone();
        let key = indexes.disk_key();
        let (uploads, versions) = tokio::task::spawn_blocking(move || {
            let uploads = select::newest_uploads(all);
            let versions = select::source_versions(&uploads);
            disk.put_uploads(&key, &uploads, &versions)
                .map(|()| (uploads, versions))
        })
        .await
        .map_err(join_error)??;
        Ok(self.remember(indexes, Arc::new(versions), Some(Arc::new(uploads))))
    }

    /// The changelog entries of the upload of `source` at `version`, read
    /// from its binaries (smallest first) and stored for the next run. `None`
    /// when none could be read, offline (nothing is fetched), or when the
    /// indexes name no such upload.
    async fn fetch_changelog(
        &self,
        client: &AptClient,
        suite: &Suite,
        family: Family,
        source: &str,
        version: &str,
        upload: Option<&SourceUpload>,
    ) -> Result<Option<Vec<Entry>>> {
        let upload = match upload {
            Some(upload) if !self.options.offline && upload.version == version => upload,
            _ => {
                tracing::warn!(
                    source,
                    version,
                    "offline and the changelog of this upload is not cached; reporting it without CVE ids"
                );
                return Ok(None);
            }
        };
        let mut queue: VecDeque<(&IndexPackage, String)> = upload
            .binaries
            .iter()
            .map(|b| (b, b.name.clone()))
            .collect();
        let mut seen = HashSet::new();
        let mut tries = 0;
        let mut unsure = false;
        while let Some((binary, doc)) = queue.pop_front() {
            if tries == MAX_CHANGELOG_TRIES {
                break;
            }
            if !seen.insert((binary.filename.clone(), doc.clone())) {
                continue;
            }
            tries += 1;
            match self.read_changelog(client, suite, binary, &doc).await {
                Ok(ChangelogLocation::Found(text)) => match changelog::parse(&text) {
                    Ok(parsed) => {
                        let entries: Vec<Entry> = parsed.iter().map(Entry::from).collect();
                        let record = CachedChangelog::new(
                            family,
                            source,
                            &upload.version,
                            Some((binary.name.clone(), binary.sha256.clone())),
                            Some(entries.clone()),
                        );
                        self.disk.put_changelog(&record)?;
                        return Ok(Some(entries));
                    }
                    Err(error) => tracing::warn!(
                        binary = %binary.name, version = %binary.version, %error,
                        "unreadable changelog; trying another binary of the source"
                    ),
                },
                Ok(ChangelogLocation::Elsewhere(target)) => {
                    let target = target.trim_end_matches('/');
                    let target = target.rsplit('/').next().unwrap_or(target);
                    if let Some(sibling) = upload.binaries.iter().find(|b| b.name == target) {
                        queue.push_front((sibling, target.to_string()));
                    }
                }
                Ok(ChangelogLocation::Missing) => {}
                Err(error) => {
                    unsure = true;
                    tracing::warn!(
                        binary = %binary.name, version = %binary.version, error = %error_chain(&error),
                        "cannot read the changelog; trying another binary of the source"
                    );
                }
            }
        }
        tracing::warn!(
            source,
            version = %upload.version,
            "no changelog found in {tries} binaries of the upload; reporting it without CVE ids"
        );
        // A download that failed may work next time; only a settled answer is kept.
        if !unsure {
            let record = CachedChangelog::new(family, source, &upload.version, None, None);
            self.disk.put_changelog(&record)?;
        }
        Ok(None)
    }

    async fn read_changelog(
        &self,
        client: &AptClient,
        suite: &Suite,
        binary: &IndexPackage,
        doc: &str,
    ) -> Result<ChangelogLocation> {
        let what = format!("{} {}", suite.name, binary.filename);
        verify_cached(client.cache(), &binary.sha256, binary.size, &what).await?;
        let deb = client
            .download(
                &suite.base_url,
                &binary.filename,
                &binary.sha256,
                binary.size,
            )
            .await
            .map_err(|source| Error::SecurityRepo {
                what: format!("cannot download {what}"),
                source: Box::new(source),
            })?;
        let doc = doc.to_string();
        tokio::task::spawn_blocking(move || {
            changelog::read_from_deb(&DebFile::new(&deb), &doc).map_err(|error| {
                Error::SecurityRepo {
                    what: format!("cannot read {what}"),
                    source: Box::new(repo::Error::Deb(error)),
                }
            })
        })
        .await
        .map_err(join_error)?
    }
}

/// Whether the cache holds the file of this checksum intact. A cached file
/// whose size or SHA256 no longer matches is removed (so it is fetched again).
async fn verify_cached(cache: &Cache, sha256: &str, size: u64, what: &str) -> Result<bool> {
    let Ok(digest) = format!("sha256:{sha256}").parse::<oci::Digest>() else {
        return Ok(false);
    };
    let Some(path) = cache.get(&digest).await else {
        return Ok(false);
    };
    let expected = sha256.to_ascii_lowercase();
    let check = path.clone();
    let intact = tokio::task::spawn_blocking(move || file_matches(&check, &expected, size))
        .await
        .map_err(join_error)?;
    if !intact {
        tracing::warn!(file = %path.display(), "cached copy of {what} is damaged; fetching it again");
        std::fs::remove_file(&path).map_err(Error::io(&path))?;
    }
    Ok(intact)
}

fn file_matches(path: &Path, sha256: &str, size: u64) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut reader = file.take(size + 1);
    let mut total = 0u64;
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buffer[..n]);
                total += n as u64;
            }
            Err(_) => return false,
        }
    }
    total == size && hex::encode(hasher.finalize()) == sha256
}

fn join_error(error: tokio::task::JoinError) -> Error {
    Error::Task(error)
}

use oci::error_chain;
