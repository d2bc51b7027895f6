//! The crate's error type: which repository, file or URL, and what to do.

use std::path::PathBuf;

use crate::apt::keyring::KeyringError;
use crate::apt::release::ReleaseError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error(transparent)]
    Deb(#[from] crate::deb::DebError),
    #[error(transparent)]
    Index(#[from] pkgdb::Error),
    #[error("request to {url} failed")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} not found (HTTP 404); the mirror may be out of date or the suite may not exist")]
    NotFound { url: String },
    #[error("{url} does not match the checksum its signed index gives")]
    Checksum {
        url: String,
        #[source]
        source: oci::VerifyError,
    },
    #[error(
        "the index of {suite} expired at {valid_until} (Valid-Until), so it may be a replayed old copy; \
         use a current mirror"
    )]
    Expired { suite: String, valid_until: i64 },
    #[error("{suite} does not list {path} in its Release file")]
    NotListed { suite: String, path: String },
    #[error("{what} decompresses to more than {limit} bytes; refusing it")]
    TooLarge { what: String, limit: u64 },
    #[error("cannot decompress {what}")]
    Decompress {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
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
