//! The environment's error: building it, and what the pieces it assembles
//! report through it.

use std::path::PathBuf;

use crate::publish::PublishError;

/// Why the environment could not be built, or a piece it runs failed.
#[derive(Debug, thiserror::Error)]
pub enum EnvironmentError {
    /// A configured certificate file cannot be read.
    #[error("reading the certificate file {}", path.display())]
    ReadCertificate {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A configured certificate file is not PEM.
    #[error("the certificate file {} is not PEM", path.display())]
    ParseCertificate {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: reqwest::Error,
    },
    /// A configured certificate file holds no certificate.
    #[error("the certificate file {} holds no certificate", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The HTTP client cannot be built (the TLS backend refused its setup).
    #[error("setting up the HTTP client")]
    HttpClient(#[source] reqwest::Error),
    /// The advisory database exists but cannot be opened.
    #[error("opening the advisory database {}", path.display())]
    AdvisoryDatabase {
        /// The database file.
        path: PathBuf,
        /// Why it cannot be opened.
        #[source]
        source: Box<advisory::Error>,
    },
    /// The security repositories' feed cannot be set up.
    #[error(transparent)]
    SecurityRepo(Box<advisory::Error>),
    /// The registry client cannot be built.
    #[error(transparent)]
    Registry(#[from] oci::Error),
    /// Scanning failed.
    #[error(transparent)]
    Scan(Box<scan::ScanError>),
    /// Planning or building the patch failed.
    #[error(transparent)]
    Patch(Box<patch::PatchError>),
    /// Reading the image or writing its patch failed.
    #[error(transparent)]
    Publish(Box<PublishError>),
    /// The patched image's tag would be derived from the original's, which has none.
    #[error("{image} has no tag to derive the patched image's tag from")]
    NoTagToDerive {
        /// The image as named.
        image: String,
    },
    /// A `docker save` archive is patched only into an OCI layout.
    #[error(
        "{image} is a docker save archive, which drydock does not rewrite; the patched image needs an OCI layout to go to"
    )]
    ArchiveNeedsOutput {
        /// The archive as named.
        image: String,
    },
    /// The run was canceled before the patched image was written.
    #[error("canceled before the patched image was written; nothing was written")]
    Canceled,
}

/// The pieces' errors are large; boxed, the environment's stays small.
macro_rules! boxed_from {
    ($($source:ty => $variant:ident),* $(,)?) => {$(
        impl From<$source> for EnvironmentError {
            fn from(error: $source) -> EnvironmentError {
                EnvironmentError::$variant(Box::new(error))
            }
        }
    )*};
}

boxed_from! {
    advisory::Error => SecurityRepo,
    scan::ScanError => Scan,
    patch::PatchError => Patch,
    PublishError => Publish,
}
