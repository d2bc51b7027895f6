//! The crate's error type: which repository, file or URL, and what to do.
//!
//! The readers' own errors ([`KeyringError`], [`ReleaseError`],
//! [`DebError`], the index parser's `pkgdb::Error`) are rolled up here;
//! they live in their modules and never import this one back.

use std::path::PathBuf;

use crate::deb::DebError;
use crate::keyring::KeyringError;
use crate::release::ReleaseError;

/// Everything that can go wrong reaching a repository and reading what it serves.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A keyring that cannot be used, or a signature that does not verify.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// A verified `Release` that is not usable.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// A `.deb` that cannot be read.
    #[error(transparent)]
    Deb(#[from] DebError),
    /// A `Packages` index that does not parse.
    #[error(transparent)]
    Index(#[from] pkgdb::Error),
    /// The HTTP client cannot be built (the TLS backend refused its setup).
    #[error("setting up the HTTP client")]
    HttpClient(#[source] reqwest::Error),
    /// The request did not complete (connection, TLS, timeout, a broken body).
    #[error("request to {url} failed")]
    Http {
        /// The URL requested.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status other than 404.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// Offline, and no verified `InRelease` of the suite was ever stored.
    #[error("the InRelease of {suite} is not stored under {} and drydock runs offline; run once online to store it", cache.display())]
    NotStored {
        /// The suite.
        suite: String,
        /// The download cache it would be stored in.
        cache: std::path::PathBuf,
    },
    /// The server answered 404 (at every URL tried).
    #[error("{url} not found (HTTP 404); the mirror may be out of date or the suite may not exist")]
    NotFound {
        /// The last URL tried.
        url: String,
    },
    /// A download whose size or SHA256 differs from what the signed index says.
    #[error("{url} does not match the checksum its signed index gives")]
    Checksum {
        /// The URL downloaded.
        url: String,
        /// Which of size and digest differs.
        #[source]
        source: oci::VerifyError,
    },
    /// A `Release` past its `Valid-Until`.
    #[error(
        "the index of {suite} expired at {valid_until} (Valid-Until), so it may be a replayed old copy; \
         use a current mirror"
    )]
    Expired {
        /// The suite.
        suite: String,
        /// `Valid-Until`, in seconds since the epoch.
        valid_until: i64,
    },
    /// An index the suite's `Release` does not list.
    #[error("{suite} does not list {path} in its Release file")]
    NotListed {
        /// The suite.
        suite: String,
        /// The index path asked for (`main/binary-amd64/Packages`).
        path: String,
    },
    /// A checksum or pool path that cannot be used as given (not SHA256 hex,
    /// an empty or `..` path component).
    #[error("{suite}: {path}: {reason}")]
    InvalidEntry {
        /// The suite or archive it came from.
        suite: String,
        /// The index or pool path.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A file or stream past its size bound.
    #[error("{what} decompresses to more than {limit} bytes; refusing it")]
    TooLarge {
        /// The file or URL.
        what: String,
        /// The bound in bytes.
        limit: u64,
    },
    /// Compressed data that does not decompress.
    #[error("cannot decompress {what}")]
    Decompress {
        /// The file or index.
        what: String,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// A file of the download cache that cannot be read or written.
    #[error("{}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

/// `Result` with [`Error`] as its default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failure that trying again may cure: the connection, or the server's
    /// 5xx and 429 answers.
    fn is_transient(&self) -> bool {
        match self {
            Error::Http { .. } => true,
            Error::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// Runs `attempt` up to three times while it fails transiently (after 0.5 s,
/// then 1.5 s): archives and mirrors drop connections now and then.
pub(crate) async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut delays = [500u64, 1500].into_iter();
    loop {
        match attempt().await {
            Err(e) if e.is_transient() => match delays.next() {
                Some(ms) => {
                    tracing::debug!("{e}; retrying in {ms} ms");
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                }
                None => return Err(e),
            },
            other => return other,
        }
    }
}
