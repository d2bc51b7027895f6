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
use std::sync::{Arc, Mutex};

use futures_util::{StreamExt, stream};
use repo::apt::packages::{self, IndexPackage};
use repo::changelog::{self, ChangelogLocation};
use repo::{AptClient, Cache, DebFile, Keyring, ReleaseReuse, Suite, VerifiedSuite};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, KeyringProblem, NoSecuritySuite, Result};
use crate::model::{Advisory, Distro, Family};
use disk::CachedChangelog;
use disk::Disk;
use select::{Entry, SourceUpload, Uploads};

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
    /// A keyring that could not be read is reported when its family is asked for.
    debian: std::result::Result<AptClient, Arc<KeyringProblem>>,
    ubuntu: std::result::Result<AptClient, Arc<KeyringProblem>>,
    disk: Disk,
    /// `<suite> <architecture>` → (the index checksums, what they hold).
    memo: Mutex<HashMap<String, (String, Arc<Uploads>)>>,
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
        let client = |keyring: std::result::Result<Keyring, KeyringProblem>| {
            keyring
                .map(|k| AptClient::new(options.http.clone(), Cache::new(&options.cache_dir), k))
                .map_err(Arc::new)
        };
        let debian = client(keyring(&options.debian_keyrings, None));
        let ubuntu = client(keyring(&options.ubuntu_keyrings, Some(UBUNTU_ARCHIVE_KEY)));
        Ok(SecurityRepo {
            disk: Disk::new(&options.cache_dir),
            options,
            debian,
            ubuntu,
            memo: Mutex::new(HashMap::new()),
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
        let (client, paths) = match family {
            Family::Ubuntu => (&self.ubuntu, &self.options.ubuntu_keyrings),
            _ => (&self.debian, &self.options.debian_keyrings),
        };
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
        let uploads = self.uploads(client, &verified, architecture).await?;
        let outdated = select::outdated(
            installed
                .iter()
                .map(|i| (i.source_name.as_str(), i.source_version.as_str())),
            &uploads,
        );
        // Futures made up front (not in a stream closure), so the whole future stays `Send`.
        let work: Vec<_> = outdated
            .into_iter()
            .map(|(source, installed, upload)| {
                self.source_advisories(client, &suite, distro, source, installed, upload)
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

    async fn source_advisories(
        &self,
        client: &AptClient,
        suite: &Suite,
        distro: &Distro,
        source: &str,
        installed: &str,
        upload: &SourceUpload,
    ) -> Result<Vec<Advisory>> {
        let entries = self
            .changelog(client, suite, distro.family, source, upload)
            .await?;
        Ok(select::advisories(
            distro,
            &suite.name,
            source,
            installed,
            &upload.version,
            entries.as_deref(),
        ))
    }

    /// The suite's verified `InRelease`: fetched (and stored for offline
    /// use), or offline the stored one, verified again.
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

    /// The newest upload of each source in the suite's `Packages` indexes
    /// (every component, `architecture` and `all`). Kept in memory per
    /// suite and architecture while the signed index checksums stay the
    /// same, so scanning many images parses each index once.
    async fn uploads(
        &self,
        client: &AptClient,
        verified: &VerifiedSuite,
        architecture: &str,
    ) -> Result<Arc<Uploads>> {
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
        let mut indexes = Vec::new();
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
                indexes.push(index);
            }
        }
        if indexes.is_empty() {
            return Err(no_architecture());
        }
        let memo_key = format!("{suite} {architecture}");
        let content_key: String = indexes.iter().map(|(_, _, f)| f.sha256.as_str()).collect();
        if let Some((key, uploads)) = self
            .memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&memo_key)
            && *key == content_key
        {
            return Ok(uploads.clone());
        }
        let disk_key = format!("{architecture} {content_key}");
        if let Some(uploads) = self.disk.uploads(&disk_key) {
            let uploads = Arc::new(uploads);
            self.memo
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(memo_key, (content_key, uploads.clone()));
            return Ok(uploads);
        }
        let mut all = Vec::new();
        for (stem, path, file) in indexes {
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
                    .index(verified, &stem)
                    .await
                    .map_err(|source| Error::SecurityRepo {
                        what: format!("cannot fetch {what}"),
                        source: Box::new(source),
                    })?;
            let architecture = architecture.to_string();
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
        let uploads = tokio::task::spawn_blocking(move || select::newest_uploads(all))
            .await
            .map_err(join_error)?;
        self.disk.put_uploads(&disk_key, &uploads)?;
        let uploads = Arc::new(uploads);
        self.memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(memo_key, (content_key, uploads.clone()));
        Ok(uploads)
    }

    /// The changelog entries of `upload` of `source`: cached, or read from
    /// the upload's binaries (smallest first). `None` when none could be read.
    async fn changelog(
        &self,
        client: &AptClient,
        suite: &Suite,
        family: Family,
        source: &str,
        upload: &SourceUpload,
    ) -> Result<Option<Vec<Entry>>> {
        if let Some(record) = self.disk.changelog(family, source, &upload.version) {
            return Ok(record.entries);
        }
        if self.options.offline {
            tracing::warn!(
                source,
                version = %upload.version,
                "offline and the changelog of this upload is not cached; reporting it without CVE ids"
            );
            return Ok(None);
        }
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
