//! Downloading the online feeds (`drydock db update`): one [`Source`] per
//! feed family, each at its canonical URL or under a mirror base URL.
//! Downloads stream to a temporary file beside the store (bounded, hashed
//! on the way), then parse off the async threads. Never writes to the store:
//! the caller stores what comes back.
//!
//! URLs (base + path; a mirror named for the source replaces the base):
//! - `tracker`: `https://security-tracker.debian.org/tracker` + `/data/json`
//! - `osv-debian`, `osv-ubuntu`, `osv-alpine`:
//!   `https://osv-vulnerabilities.storage.googleapis.com` + `/Debian/all.zip` (`Ubuntu`, `Alpine`)
//! - `secdb`: `https://secdb.alpinelinux.org` + `/v<branch>/main.json` and
//!   `/v<branch>/community.json` for each Alpine branch asked for.

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::{Feed, LoadedFeed, MAX_JSON_BYTES, MAX_ZIP_BYTES, parse_file, unix_now};
use crate::error::{Error, Result};
use crate::model::{Family, FeedKind, FeedSource, UnknownName};

/// An online feed `drydock db update` can fetch.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(
    serialize_all = "kebab-case",
    parse_err_ty = UnknownName,
    parse_err_fn = unknown_source
)]
pub enum Source {
    /// The Debian Security Tracker's JSON.
    Tracker,
    /// osv.dev's Debian records.
    OsvDebian,
    /// osv.dev's Ubuntu records.
    OsvUbuntu,
    /// osv.dev's Alpine records.
    OsvAlpine,
    /// Alpine's secdb, for each branch asked for.
    Secdb,
}

fn unknown_source(name: &str) -> UnknownName {
    UnknownName {
        vocabulary: "feed source",
        name: name.to_string(),
        expected: "one of tracker, osv-debian, osv-ubuntu, osv-alpine, secdb",
    }
}

/// Alpine branches fetched from the secdb when none are named.
pub const DEFAULT_ALPINE_RELEASES: [&str; 5] = ["3.19", "3.20", "3.21", "3.22", "3.23"];

impl Source {
    /// Every source, in declaration order.
    pub const ALL: [Source; 5] = [
        Source::Tracker,
        Source::OsvDebian,
        Source::OsvUbuntu,
        Source::OsvAlpine,
        Source::Secdb,
    ];

    /// The name used on the command line (`tracker`, `osv-debian`, …, `secdb`).
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The canonical base URL (what a mirror replaces).
    pub fn default_base(self) -> &'static str {
        match self {
            Source::Tracker => "https://security-tracker.debian.org/tracker",
            Source::OsvDebian | Source::OsvUbuntu | Source::OsvAlpine => {
                "https://osv-vulnerabilities.storage.googleapis.com"
            }
            Source::Secdb => "https://secdb.alpinelinux.org",
        }
    }

    fn kind(self) -> FeedKind {
        match self {
            Source::Tracker => FeedKind::Tracker,
            Source::OsvDebian | Source::OsvUbuntu | Source::OsvAlpine => FeedKind::Osv,
            Source::Secdb => FeedKind::Secdb,
        }
    }

    /// The one family an OSV source may yield (a zip of another family is refused).
    fn osv_family(self) -> Option<Family> {
        match self {
            Source::OsvDebian => Some(Family::Debian),
            Source::OsvUbuntu => Some(Family::Ubuntu),
            Source::OsvAlpine => Some(Family::Alpine),
            Source::Tracker | Source::Secdb => None,
        }
    }

    fn size_limit(self) -> u64 {
        match self.kind() {
            FeedKind::Osv => MAX_ZIP_BYTES,
            FeedKind::Tracker | FeedKind::Secdb => MAX_JSON_BYTES,
        }
    }
}

/// Called as a download progresses: URL, bytes so far, total if announced.
pub type Progress<'a> = &'a (dyn Fn(&str, u64, Option<u64>) + Sync);

/// Downloads and parses online feeds.
pub struct Fetcher {
    http: reqwest::Client,
    mirrors: BTreeMap<Source, String>,
    alpine_releases: Vec<String>,
    scratch: PathBuf,
}

impl Fetcher {
    /// A fetcher downloading with `http` (which carries the user's TLS
    /// trust); `mirrors` replace sources' base URLs; `alpine_releases` are
    /// the secdb branches to fetch (`3.20`, or `edge`); `scratch` is where
    /// downloads are spooled (the store's directory, so big zips stay off tmpfs).
    pub fn new(
        http: reqwest::Client,
        mirrors: BTreeMap<Source, String>,
        alpine_releases: Vec<String>,
        scratch: &Path,
    ) -> Fetcher {
        Fetcher {
            http,
            mirrors,
            alpine_releases,
            scratch: scratch.to_path_buf(),
        }
    }

    /// The URLs `source` is fetched from.
    pub fn urls(&self, source: Source) -> Vec<String> {
        let base = self
            .mirrors
            .get(&source)
            .map(String::as_str)
            .unwrap_or(source.default_base())
            .trim_end_matches('/');
        match source {
            Source::Tracker => vec![format!("{base}/data/json")],
            Source::OsvDebian => vec![format!("{base}/Debian/all.zip")],
            Source::OsvUbuntu => vec![format!("{base}/Ubuntu/all.zip")],
            Source::OsvAlpine => vec![format!("{base}/Alpine/all.zip")],
            Source::Secdb => self
                .alpine_releases
                .iter()
                .flat_map(|release| {
                    let branch = match release.as_str() {
                        "edge" => "edge".to_string(),
                        number => format!("v{}", number.trim_start_matches('v')),
                    };
                    ["main", "community"].map(|repo| format!("{base}/{branch}/{repo}.json"))
                })
                .collect(),
        }
    }

    /// Downloads and parses every URL of `source`; all or nothing.
    pub async fn fetch(&self, source: Source, progress: Progress<'_>) -> Result<Vec<LoadedFeed>> {
        let mut loaded = Vec::new();
        for url in self.urls(source) {
            let (file, sha256) = self.download(&url, source.size_limit(), progress).await?;
            let parse_url = url.clone();
            let feeds = tokio::task::spawn_blocking(move || {
                parse_file(file, &parse_url, Some(source.kind()))
            })
            .await
            .map_err(Error::Task)??;
            for feed in feeds {
                check_family(source, &feed, &url)?;
                loaded.push(LoadedFeed {
                    source: FeedSource {
                        name: feed.name,
                        kind: feed.kind,
                        location: url.clone(),
                        fetched_at: unix_now(),
                        modified_at: None,
                        sha256: sha256.clone(),
                    },
                    advisories: feed.advisories,
                });
            }
        }
        Ok(loaded)
    }

    /// Streams `url` into an anonymous file in the scratch directory.
    async fn download(
        &self,
        url: &str,
        limit: u64,
        progress: Progress<'_>,
    ) -> Result<(std::fs::File, String)> {
        let http_error = |source| Error::Http {
            url: url.to_string(),
            source,
        };
        let mut response = self.http.get(url).send().await.map_err(http_error)?;
        if !response.status().is_success() {
            return Err(Error::Status {
                url: url.to_string(),
                status: response.status().as_u16(),
            });
        }
        let total = response.content_length();
        if total.is_some_and(|total| total > limit) {
            return Err(Error::TooLarge {
                input: url.to_string(),
                limit,
            });
        }
        std::fs::create_dir_all(&self.scratch).map_err(Error::io(&self.scratch))?;
        let mut file = tempfile::tempfile_in(&self.scratch).map_err(Error::io(&self.scratch))?;
        let mut hasher = Sha256::new();
        let mut received = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(http_error)? {
            received += chunk.len() as u64;
            if received > limit {
                return Err(Error::TooLarge {
                    input: url.to_string(),
                    limit,
                });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).map_err(Error::io(&self.scratch))?;
            progress(url, received, total);
        }
        file.seek(SeekFrom::Start(0))
            .map_err(Error::io(&self.scratch))?;
        Ok((file, hex::encode(hasher.finalize())))
    }
}

/// An OSV zip fetched for one family must hold only that family.
fn check_family(source: Source, feed: &Feed, url: &str) -> Result<()> {
    match source.osv_family() {
        Some(family) if feed.advisories.iter().any(|a| a.distro.family != family) => {
            Err(Error::WrongFeed {
                input: url.to_string(),
                expected: source.name().to_string(),
                found: feed.name.clone(),
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_mirrors() {
        let mirrors = BTreeMap::from([(Source::OsvUbuntu, "http://127.0.0.1:9/osv/".to_string())]);
        let fetcher = Fetcher::new(
            oci::client::http_client_builder().build().unwrap(),
            mirrors,
            vec!["3.20".into(), "edge".into()],
            Path::new("."),
        );
        assert_eq!(
            fetcher.urls(Source::Tracker),
            ["https://security-tracker.debian.org/tracker/data/json"]
        );
        assert_eq!(
            fetcher.urls(Source::OsvUbuntu),
            ["http://127.0.0.1:9/osv/Ubuntu/all.zip"]
        );
        assert_eq!(
            fetcher.urls(Source::Secdb),
            [
                "https://secdb.alpinelinux.org/v3.20/main.json",
                "https://secdb.alpinelinux.org/v3.20/community.json",
                "https://secdb.alpinelinux.org/edge/main.json",
                "https://secdb.alpinelinux.org/edge/community.json",
            ]
        );
        assert_eq!("osv-alpine".parse(), Ok(Source::OsvAlpine));
        assert!(
            "nvd"
                .parse::<Source>()
                .unwrap_err()
                .to_string()
                .contains("tracker, osv-debian")
        );
        for source in Source::ALL {
            assert_eq!(source.name().parse(), Ok(source));
        }
        assert_eq!(Source::ALL, <Source as strum::VariantArray>::VARIANTS);
    }
}
