//! The crate's errors: [`ParseError`] from the pure feed parsers (which
//! record and field went wrong) and [`Error`] from the edges (files,
//! downloads, the store), which adds which file or URL and what to do next.
//! Messages are complete on their own; only [`Error::Http`] and
//! [`Error::SecurityRepo`] keep their cause as a `source` (print it with the
//! chain, e.g. anyhow's `{:#}`).

use std::path::PathBuf;

use crate::model::{Family, FeedKind};

/// A feed's bytes are not what its format says. `location` names the record
/// and field (`package "zlib", CVE-2023-45853, releases.bookworm`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if location.is_empty() { String::new() } else { format!("{location}: ") })]
pub struct ParseError {
    pub location: String,
    pub message: String,
}

impl ParseError {
    pub fn new(location: impl Into<String>, message: impl Into<String>) -> ParseError {
        ParseError {
            location: location.into(),
            message: message.into(),
        }
    }

    /// The same error seen from an enclosing record (`entry "x.json"`, …).
    pub fn within(mut self, outer: &str) -> ParseError {
        self.location = if self.location.is_empty() {
            outer.to_string()
        } else {
            format!("{outer}, {}", self.location)
        };
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{input} is not a valid {kind} feed: {error}")]
    Parse {
        input: String,
        kind: FeedKind,
        error: ParseError,
    },
    #[error("{input} is larger than {limit} bytes; refusing it")]
    TooLarge { input: String, limit: u64 },
    #[error(
        "cannot tell which kind of feed {input} is ({reason}); name it with --kind tracker|osv|secdb"
    )]
    UnknownKind { input: String, reason: String },
    #[error("{input} is not valid JSON ({error}); is the file complete?")]
    InvalidJson {
        input: String,
        error: serde_json::Error,
    },
    #[error("{input} holds no Debian, Ubuntu or Alpine advisories{hint}")]
    Empty { input: String, hint: String },
    #[error(
        "{first} and {second} both hold feed {feed}; an import replaces a whole feed, so put \
         OSV records of one distribution in one directory or zip and import that"
    )]
    SameFeedTwice {
        feed: String,
        first: String,
        second: String,
    },
    #[error("{input} holds {found} advisories, but it was fetched as {expected}; check --mirror")]
    WrongFeed {
        input: String,
        expected: String,
        found: String,
    },
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The message stops at the URL; the cause (refused, TLS, timeout…) is the `source`.
    #[error("request to {url} failed")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered HTTP {status}; check the URL, or point --mirror at a reachable copy")]
    Status { url: String, status: u16 },
    #[error("advisory database {}: {error}", path.display())]
    Sqlite {
        path: PathBuf,
        error: rusqlite::Error,
    },
    #[error(
        "advisory database {} has schema version {found}, newer than this drydock reads \
         ({supported}); upgrade drydock or use another --db",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "no advisory database at {}; run `drydock db update` (online) or `drydock db import FILE…` first",
        path.display()
    )]
    NoDatabase { path: PathBuf },
    #[error("advisory database {} holds a row this drydock cannot read: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    /// The security-repository feed has no suite for this release.
    #[error("no security repository for {distro}: {reason}")]
    UnknownRelease { distro: String, reason: String },
    /// A step of the security-repository feed failed; the cause (from the
    /// APT client: signature, checksum, download, `.deb`) is the `source`.
    #[error("{what}")]
    SecurityRepo {
        what: String,
        #[source]
        source: repo::Error,
    },
    #[error(
        "{what} is not in the cache at {} and drydock runs offline; run once online to fill the cache",
        cache.display()
    )]
    NotCached { what: String, cache: PathBuf },
    #[error(
        "cannot use the {family} archive keyring {}: {message}; install the distribution's \
         archive keyring package or name a keyring file",
        paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    Keyring {
        family: Family,
        paths: Vec<PathBuf>,
        message: String,
    },
    #[error(
        "{url} is validly signed but is the Release of {found:?}, not {expected}; check the mirror"
    )]
    WrongSuite {
        url: String,
        expected: String,
        found: String,
    },
    #[error("{suite} has no packages for architecture {architecture} (it has: {available})")]
    NoArchitecture {
        suite: String,
        architecture: String,
        available: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |error| Error::Io { path, error }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::ParseError;

    #[test]
    fn locations_nest_outward() {
        let error = ParseError::new("affected[0]", "missing field `package`")
            .within("record DSA-1")
            .within("entry \"DSA-1.json\"");
        assert_eq!(
            error.to_string(),
            "entry \"DSA-1.json\", record DSA-1, affected[0]: missing field `package`"
        );
        assert_eq!(ParseError::new("", "empty").to_string(), "empty");
    }
}
