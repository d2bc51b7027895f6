//! The one place where drydock's pieces are assembled from configuration.
//!
//! An [`Environment`] is built once per process (the `drydock` command, or
//! `drydock serve`) from one [`Config`]: the data directory and its
//! [`DataLayout`], the HTTP client every download and registry request goes
//! through (with the user's trusted certificates), the mirrors applied to
//! every APT archive, the registry policy, offline mode and how long
//! verified indexes are reused. It hands out the [`scan::Scanner`], the
//! [`patch::patcher::Patcher`] and the advisory store and fetcher, and runs
//! the one publish sequence ([`Environment::patch_and_publish`]: open,
//! plan, build, write, evidence, attach, tag last) that both `drydock patch`
//! and workflow runs call. The command line and the server only parse their
//! input into a [`Config`] and requests.
//!
//! Never decides what to scan or patch and never prints: callers get values
//! (reports, outcomes, [`PatchResult`]) and present them.

mod error;
mod layout;
mod publish;
mod publishing;

use std::path::PathBuf;
use std::time::Duration;

use advisory::{Fetcher, SecurityRepo, SecurityRepoOptions};
use oci::{ClientOptions, Credentials, RegistryClient, SharedHttp};
use patch::patcher::{Patcher, PatcherOptions};
use patch::sources::Mirror;
use scan::matching::Filters;
use scan::{Clock, Scanner, ScannerOptions};

pub use error::EnvironmentError;
pub use layout::DataLayout;
pub use publish::{Evidence, PublishError, REPORT_TYPE, VEX_TYPE, Written};
pub use publishing::{LayoutOutput, Observer, PatchRequest, PatchResult, Stage, TagChoice, Wants};
pub use repo::distributions;

/// How registries are reached.
#[derive(Debug, Clone, Default)]
pub struct RegistryPolicy {
    /// HTTP instead of HTTPS for every registry (loopback ones always get HTTP).
    pub plain_http: bool,
    /// Credentials for every registry, instead of those of the auth files.
    pub credentials: Option<Credentials>,
    /// Upload blobs in chunks of this many bytes instead of one request.
    pub chunk_size: Option<usize>,
}

/// Everything an [`Environment`] is built from.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data directory (registry storage, databases, caches).
    pub data_dir: PathBuf,
    /// The advisory database, when not the data directory's.
    pub advisory_db: Option<PathBuf>,
    /// Use only what is cached: no network for the security repositories'
    /// indexes nor for advisory feeds.
    pub offline: bool,
    /// Rewrites of APT archive URLs, applied to the distributions'
    /// archives and security pockets and to the images' own suites.
    pub mirrors: Vec<Mirror>,
    /// Consult the distributions' security repositories (Debian's and
    /// Ubuntu's `-security` pockets) as the most trusted advisory feed.
    pub security_repo: bool,
    /// A security repository's verified `InRelease` younger than this is
    /// reused instead of fetched again (zero always fetches).
    pub security_repo_max_age: Duration,
    /// A suite's verified `InRelease` is reused by the same patcher for this
    /// long (a server patching many images); zero fetches it for every image.
    pub release_max_age: Duration,
    /// How registries are reached.
    pub registry: RegistryPolicy,
    /// PEM files of certificate authorities trusted besides the system's,
    /// for registries, mirrors and feeds alike.
    pub ca_certificates: Vec<PathBuf>,
    /// Where "now" comes from for scans, patches and their evidence.
    pub clock: Clock,
}

impl Config {
    /// The defaults for a data directory: the official archives, online,
    /// the security repositories consulted and their index reused for an
    /// hour, every suite's `InRelease` fetched for each patch, HTTPS.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            advisory_db: None,
            offline: false,
            mirrors: Vec::new(),
            security_repo: true,
            security_repo_max_age: Duration::from_secs(3600),
            release_max_age: Duration::ZERO,
            registry: RegistryPolicy::default(),
            ca_certificates: Vec::new(),
            clock: Clock::System,
        }
    }
}

/// What a patcher may do beyond upgrading a supported release from signed suites.
#[derive(Debug, Clone, Default)]
pub struct PatchPolicy {
    /// Patch an end-of-life release from what its suites still hold.
    pub allow_eol: bool,
    /// Use suites whose signature is missing or does not verify.
    pub allow_unsigned: bool,
    /// `os/arch[/variant]` platforms to patch; empty patches every Linux platform.
    pub platforms: Vec<String>,
}

/// drydock's pieces, assembled once from a [`Config`].
#[derive(Debug)]
pub struct Environment {
    config: Config,
    layout: DataLayout,
    http: SharedHttp,
}

impl Environment {
    /// Builds the environment: reads the trusted certificates (the one
    /// HTTP client is built on its first request).
    pub fn new(config: Config) -> Result<Environment, EnvironmentError> {
        let mut trusted = Vec::new();
        for path in &config.ca_certificates {
            let pem = std::fs::read(path).map_err(|source| EnvironmentError::ReadCertificate {
                path: path.clone(),
                source,
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
                EnvironmentError::ParseCertificate {
                    path: path.clone(),
                    source,
                }
            })?;
            if certificates.is_empty() {
                return Err(EnvironmentError::NoCertificate { path: path.clone() });
            }
            trusted.extend(certificates);
        }
        Ok(Environment {
            layout: DataLayout::new(&config.data_dir),
            config,
            http: SharedHttp::new(trusted),
        })
    }

    /// The configuration the environment was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The data directory's layout.
    pub fn layout(&self) -> &DataLayout {
        &self.layout
    }

    /// The HTTP client (system roots plus the configured certificates),
    /// built on the first call.
    pub fn http(&self) -> Result<reqwest::Client, EnvironmentError> {
        self.http.get().map_err(EnvironmentError::HttpClient)
    }

    /// The advisory database's path.
    pub fn advisory_db(&self) -> PathBuf {
        self.config
            .advisory_db
            .clone()
            .unwrap_or_else(|| self.layout.advisory_db())
    }

    /// The registry client options for `policy`, over the environment's HTTP client.
    pub fn registry_options(&self, policy: &RegistryPolicy) -> ClientOptions {
        ClientOptions {
            plain_http: policy.plain_http,
            credentials: policy.credentials.clone(),
            chunk_size: policy.chunk_size,
            http: Some(self.http.clone()),
        }
    }

    /// A registry client reaching registries as `policy` says.
    pub fn registry_client(
        &self,
        policy: &RegistryPolicy,
    ) -> Result<RegistryClient, EnvironmentError> {
        Ok(RegistryClient::new(self.registry_options(policy))?)
    }

    /// The advisory database, or `None` when it was never written.
    pub fn advisory_store(&self) -> Result<Option<advisory::Store>, EnvironmentError> {
        let path = self.advisory_db();
        if !path.exists() {
            return Ok(None);
        }
        advisory::Store::open_existing(&path)
            .map(Some)
            .map_err(|source| EnvironmentError::AdvisoryDatabase {
                path,
                source: Box::new(source),
            })
    }

    /// The advisory database opened for writing (created when absent).
    pub fn advisory_store_for_update(&self) -> Result<advisory::Store, EnvironmentError> {
        let path = self.advisory_db();
        advisory::Store::open(&path).map_err(|source| EnvironmentError::AdvisoryDatabase {
            path,
            source: Box::new(source),
        })
    }

    /// The fetcher of online advisory feeds; `feed_mirrors` replace feeds'
    /// base URLs, `alpine_releases` are the secdb branches fetched.
    pub fn advisory_fetcher(
        &self,
        feed_mirrors: std::collections::BTreeMap<advisory::Source, String>,
        alpine_releases: Vec<String>,
    ) -> Result<Fetcher, EnvironmentError> {
        // Downloads are spooled beside the database, so big zips stay off tmpfs.
        let scratch = self
            .advisory_db()
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from);
        Ok(Fetcher::new(
            self.http()?,
            feed_mirrors,
            alpine_releases,
            &scratch,
        ))
    }

    /// The distributions' security repositories as a feed, when the
    /// configuration consults them.
    fn security_repo(&self) -> Result<Option<SecurityRepo>, EnvironmentError> {
        if !self.config.security_repo {
            return Ok(None);
        }
        let mirrored = |official: &str| patch::sources::mirrored(official, &self.config.mirrors);
        let options = SecurityRepoOptions {
            debian_mirror: mirrored(distributions::DEBIAN_SECURITY),
            ubuntu_mirror: mirrored(distributions::UBUNTU_SECURITY),
            ubuntu_ports_mirror: mirrored(distributions::UBUNTU_PORTS),
            offline: self.config.offline,
            max_age: Some(self.config.security_repo_max_age).filter(|age| !age.is_zero()),
            ..SecurityRepoOptions::new(self.layout.scan_cache(), self.http.clone())
        };
        Ok(Some(SecurityRepo::new(options)?))
    }

    /// A scanner reporting what `filters` keep, reaching registries as
    /// `registry` says, over the advisory database (when there is one) and
    /// the security repositories (when configured).
    pub fn scanner(
        &self,
        filters: Filters,
        registry: &RegistryPolicy,
    ) -> Result<Scanner, EnvironmentError> {
        Ok(Scanner::new(
            self.advisory_store()?,
            self.security_repo()?,
            ScannerOptions {
                cache_dir: self.layout.scan_cache(),
                registry: self.registry_options(registry),
                filters,
                clock: self.config.clock,
            },
        )?)
    }

    /// The scanner that chooses what a patch fixes and checks the result:
    /// fixable findings of every severity.
    pub fn patch_scanner(&self, registry: &RegistryPolicy) -> Result<Scanner, EnvironmentError> {
        self.scanner(
            Filters {
                ignore_unfixed: true,
                severities: Vec::new(),
            },
            registry,
        )
    }

    /// A patcher over the configured mirrors and the patch cache.
    pub fn patcher(&self, policy: PatchPolicy) -> Result<Patcher, EnvironmentError> {
        Ok(Patcher::new(PatcherOptions {
            cache_dir: self.layout.patch_cache(),
            mirrors: self.config.mirrors.clone(),
            debian_keyrings: Vec::new(),
            ubuntu_keyrings: Vec::new(),
            allow_eol: policy.allow_eol,
            allow_unsigned: policy.allow_unsigned,
            platforms: policy.platforms,
            release_max_age: self.config.release_max_age,
            http: self.http.clone(),
            clock: self.config.clock,
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_certificate(path: PathBuf) -> Result<Environment, EnvironmentError> {
        Environment::new(Config {
            ca_certificates: vec![path],
            ..Config::new("unused")
        })
    }

    #[test]
    fn a_certificate_file_that_cannot_be_used_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(matches!(
            with_certificate(missing),
            Err(EnvironmentError::ReadCertificate { path, .. }) if path.ends_with("missing.pem")
        ));
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "not a certificate\n").unwrap();
        let refused = with_certificate(text).unwrap_err();
        assert!(
            matches!(
                refused,
                EnvironmentError::NoCertificate { .. } | EnvironmentError::ParseCertificate { .. }
            ),
            "{refused:?}"
        );
        assert!(refused.to_string().contains("notes.txt"), "{refused}");
    }
}
