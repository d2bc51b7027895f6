//! The crate's errors: [`ParseError`] from the pure feed parsers (which
//! record and field went wrong) and [`Error`] from the edges (files,
//! downloads, the store, the security repositories), which adds which file
//! or URL and what to do next. Where a variant has a cause (an I/O, HTTP or
//! SQLite error, the APT client's error, a damaged row's details) the cause
//! is its `source` and the message stops before it: print errors with their
//! chain (e.g. anyhow's `{:#}`). A parser's own words (a [`ParseError`], a
//! JSON syntax error) are the message itself, never also a `source`.
//!
//! A leaf among the crate's modules: it depends only on the model, so the
//! feeds, the store and the security-repository feed all return these
//! without any of them depending on another through this file.

use std::path::PathBuf;
use std::sync::Arc;

use crate::model::{Family, FeedKind, UnknownName};

/// A feed's bytes are not what its format says. `location` names the record
/// and field (`package "zlib", CVE-2023-45853, releases.bookworm`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if location.is_empty() { String::new() } else { format!("{location}: ") })]
pub struct ParseError {
    /// Where in the feed, outermost first; empty for the whole document.
    pub location: String,
    /// What is wrong there.
    pub message: String,
}

impl ParseError {
    /// An error at `location` (empty: the whole document).
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

/// Everything that can go wrong importing, fetching, storing or reading advisories.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input that is not a valid feed of its kind.
    #[error("{input} is not a valid {kind} feed: {error}")]
    Parse {
        /// The file or URL.
        input: String,
        /// The kind it was read as.
        kind: FeedKind,
        /// Where and what.
        error: ParseError,
    },
    /// An input or download past its size bound.
    #[error("{input} is larger than {limit} bytes; refusing it")]
    TooLarge {
        /// The file or URL.
        input: String,
        /// The bound in bytes.
        limit: u64,
    },
    /// An input whose feed kind cannot be told from its content (or
    /// contradicts the kind asked for).
    #[error("cannot tell which kind of feed {input} is ({reason})")]
    UnknownKind {
        /// The file.
        input: String,
        /// What it looks like instead.
        reason: String,
    },
    /// An input that is not JSON (often a truncated download). The parser's
    /// error (where it stopped) is part of the message, not a `source`.
    #[error("{input} is not valid JSON ({error}); is the file complete?")]
    InvalidJson {
        /// The file or URL.
        input: String,
        /// The JSON parser's error.
        error: serde_json::Error,
    },
    /// An input that yields no Debian, Ubuntu or Alpine advisory at all.
    #[error(
        "{input} holds no Debian, Ubuntu or Alpine advisories (OSV records of other \
         ecosystems, Ubuntu Pro and withdrawn records are skipped)"
    )]
    Empty {
        /// The file, directory or URL.
        input: String,
    },
    /// Two inputs of one import that hold the same feed.
    #[error(
        "{first} and {second} both hold feed {feed}; an import replaces a whole feed, so put \
         OSV records of one distribution in one directory or zip and import that"
    )]
    SameFeedTwice {
        /// The feed's name.
        feed: String,
        /// The first input holding it.
        first: String,
        /// The second input holding it.
        second: String,
    },
    /// A download of one feed that holds another (a mirror serving the wrong file).
    #[error(
        "{input} holds {found} advisories, but it was fetched as {expected}; the mirror serves \
         another feed at that URL"
    )]
    WrongFeed {
        /// The URL.
        input: String,
        /// The online feed it was fetched as.
        expected: String,
        /// The feed it holds.
        found: String,
    },
    /// A file or directory that cannot be read or written.
    #[error("{}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file drydock writes whose content cannot be serialized.
    #[error("cannot serialize {}", path.display())]
    Serialize {
        /// The file it was for.
        path: PathBuf,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// A request that did not complete (refused, TLS, timeout, a broken body).
    #[error("request to {url} failed")]
    Http {
        /// The URL.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// A server that answered with an error status.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The advisory database cannot be opened, read or written.
    #[error("advisory database {}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The advisory database's schema cannot be brought to this drydock's version.
    #[error("advisory database {}: cannot update its schema", path.display())]
    Migration {
        /// The database file.
        path: PathBuf,
        /// The migration's error.
        #[source]
        source: rusqlite_migration::Error,
    },
    /// An advisory database written by a newer drydock.
    #[error(
        "advisory database {} has schema version {found}, newer than this drydock reads \
         ({supported}); upgrade drydock or use another database",
        path.display()
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest version this build reads.
        supported: i64,
    },
    /// No advisory database where one was expected.
    #[error(
        "no advisory database at {}; run `drydock db update` (online) or `drydock db import FILE…` first",
        path.display()
    )]
    NoDatabase {
        /// Where it was expected.
        path: PathBuf,
    },
    /// A stored row this drydock cannot read back.
    #[error("advisory database {} holds a row this drydock cannot read: {row}", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// Which row (package, release, feed).
        row: String,
        /// What is wrong with it.
        #[source]
        source: Box<CorruptRow>,
    },
    /// The security-repository feed has no suite for this release.
    #[error("no security repository for {distro}")]
    UnknownRelease {
        /// The release asked for.
        distro: String,
        /// Why there is none.
        #[source]
        source: NoSecuritySuite,
    },
    /// A step of the security-repository feed failed; the cause (from the
    /// APT client: signature, checksum, download, `.deb`) is the `source`.
    #[error("{what}")]
    SecurityRepo {
        /// The step (`cannot fetch bookworm-security main/binary-amd64/Packages.xz`).
        what: String,
        /// The APT client's error.
        #[source]
        source: Box<repo::Error>,
    },
    /// Offline, and the cache lacks what is needed.
    #[error(
        "{what} is not in the cache at {} and drydock runs offline; run once online to fill the cache",
        cache.display()
    )]
    NotCached {
        /// The file needed.
        what: String,
        /// The cache directory.
        cache: PathBuf,
    },
    /// A family's archive keyring cannot be used.
    #[error(
        "cannot use the {family} archive keyring {}; install the distribution's \
         archive keyring package or name a keyring file",
        paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    Keyring {
        /// The family whose suites it verifies.
        family: Family,
        /// The keyring files (empty: the key shipped with drydock).
        paths: Vec<PathBuf>,
        /// Why it cannot be used.
        #[source]
        source: Arc<KeyringProblem>,
    },
    /// A validly signed `InRelease` of another suite than the one asked for.
    #[error(
        "{url} is validly signed but is the Release of {found:?}, not {expected}; check the mirror"
    )]
    WrongSuite {
        /// The `InRelease` URL.
        url: String,
        /// The suite asked for.
        expected: String,
        /// The suite it is.
        found: String,
    },
    /// A suite without packages for the image's architecture.
    #[error("{suite} has no packages for architecture {architecture} (it has: {available})")]
    NoArchitecture {
        /// The suite.
        suite: String,
        /// The image's architecture.
        architecture: String,
        /// The architectures it has.
        available: String,
    },
    /// A blocking step run off the async threads (parsing, hashing) panicked
    /// or was cancelled.
    #[error("a background task did not finish")]
    Task(#[source] tokio::task::JoinError),
}

/// What is wrong with a stored row.
#[derive(Debug, thiserror::Error)]
pub enum CorruptRow {
    /// A packed blob of another layout version.
    #[error("packed advisories in format {found}, expected {expected}")]
    Format {
        /// The blob's format byte.
        found: u8,
        /// The format this build writes.
        expected: u8,
    },
    /// A packed blob that ends inside a field.
    #[error("packed advisories truncated at byte {at}")]
    Truncated {
        /// Where the field starts.
        at: usize,
    },
    /// A varint longer than a machine word.
    #[error("varint too large at byte {at}")]
    VarintTooLarge {
        /// Where it ends.
        at: usize,
    },
    /// A packed string that is not UTF-8.
    #[error("a string at byte {at} is not UTF-8")]
    NotUtf8 {
        /// Where it starts.
        at: usize,
    },
    /// Bytes after the last packed advisory.
    #[error("{count} trailing bytes after packed advisories")]
    Trailing {
        /// How many.
        count: usize,
    },
    /// A status byte or name that is none of the statuses.
    #[error("{id}: unknown status {status}")]
    Status {
        /// The advisory's id.
        id: String,
        /// The stored status.
        status: String,
    },
    /// A severity byte past the scale.
    #[error("{id}: unknown severity {code}")]
    Severity {
        /// The advisory's id.
        id: String,
        /// The stored byte.
        code: u8,
    },
    /// An advisory pointing past its package's texts.
    #[error("{id}: texts {index} of {count}")]
    Texts {
        /// The advisory's id.
        id: String,
        /// The index it holds.
        index: usize,
        /// How many texts the package has.
        count: usize,
    },
    /// A column that must not be NULL.
    #[error("column {column} is NULL")]
    Null {
        /// The column's index.
        column: usize,
    },
    /// A column of the wrong type.
    #[error("column {column}")]
    Column {
        /// The column's index.
        column: usize,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A column that should hold a JSON list of strings.
    #[error("column {column} is not a JSON list of strings")]
    List {
        /// The column's index.
        column: usize,
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A stored name (family, kind, severity) this build does not know.
    #[error(transparent)]
    Name(#[from] UnknownName),
}

/// Why a release has no security suite drydock can consult.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoSecuritySuite {
    /// Debian unstable (or experimental), which has no security suite.
    #[error("unstable has no security suite")]
    Unstable,
    /// A Debian release named by number, not codename.
    #[error("Debian releases are named by codename (bookworm, trixie), not {0:?}")]
    NotACodename(String),
    /// An Ubuntu release this build does not know.
    #[error("unknown Ubuntu release {release:?} (known: {known})")]
    UnknownUbuntu {
        /// The release asked for.
        release: String,
        /// The releases known, comma separated.
        known: String,
    },
    /// Alpine, which has no APT security repository.
    #[error("Alpine has no APT security repository")]
    Alpine,
    /// The suite's `InRelease` does not exist on the mirror.
    #[error(
        "{url} does not exist (HTTP 404): the release is not served there \
         (end of life, not released, or a mirror without it)"
    )]
    NotServed {
        /// The `InRelease` URL.
        url: String,
    },
}

/// Why a family's archive keyring cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyringProblem {
    /// A keyring file that cannot be read or holds no usable key.
    #[error(transparent)]
    Files(#[from] repo::KeyringError),
    /// The key shipped with drydock does not load.
    #[error("the shipped key")]
    ShippedKey(#[source] repo::KeyError),
    /// No keyring file named and no key shipped.
    #[error("no keyring given")]
    NoneGiven,
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

/// `Result` with [`Error`] as its default error.
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
