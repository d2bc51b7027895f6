//! The patcher's errors.

use std::path::PathBuf;

use crate::plan::PlanError;

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error(transparent)]
    Plan(#[from] Box<PlanError>),
    #[error(transparent)]
    Database(#[from] pkgdb::Error),
    #[error(transparent)]
    Repository(#[from] repo::Error),
    #[error(transparent)]
    Oci(#[from] oci::Error),
    #[error(transparent)]
    Scan(#[from] scan::ScanError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{package}: {message}")]
    UnsafePackage { package: String, message: String },
    #[error("{package}: {source}")]
    Deb {
        package: String,
        #[source]
        source: repo::DebError,
    },
    #[error("{image}: {message}")]
    Image { image: String, message: String },
    #[error("{0}")]
    Refused(String),
    /// Sandbox mode could not run the image's dpkg, or dpkg failed there.
    #[error("maintainer scripts in the sandbox: {0}")]
    Sandbox(String),
}

impl From<PlanError> for PatchError {
    fn from(error: PlanError) -> PatchError {
        PatchError::Plan(Box::new(error))
    }
}
