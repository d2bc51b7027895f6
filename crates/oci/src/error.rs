//! The crate's error type: what went wrong, with which image, blob or file.

use std::path::PathBuf;

use crate::digest::{Digest, VerifyError};
use crate::manifest::ManifestError;
use crate::reference::ReferenceError;

/// One error as a registry reports it in its `{"errors":[…]}` body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RegistryErrorBody {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("request to {url} failed")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{operation} at {url}: HTTP {status}{}", format_registry_errors(.errors))]
    Registry {
        operation: &'static str,
        url: String,
        status: u16,
        errors: Vec<RegistryErrorBody>,
    },
    #[error("authentication with {registry} failed: {message}")]
    Auth { registry: String, message: String },
    #[error("credentials for {registry}: {message}")]
    Credentials { registry: String, message: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error(
        "blob {digest} is {size} bytes, more than the {limit}-byte limit for this kind of content"
    )]
    TooLarge {
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("OCI layout {}: {message}", path.display())]
    Layout { path: PathBuf, message: String },
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

    /// The registry's error codes, when the registry answered with some.
    pub fn registry_codes(&self) -> Vec<&str> {
        match self {
            Error::Registry { errors, .. } => errors.iter().map(|e| e.code.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

fn format_registry_errors(errors: &[RegistryErrorBody]) -> String {
    errors
        .iter()
        .map(|e| {
            if e.message.is_empty() {
                format!(" {}", e.code)
            } else {
                format!(" {}: {}", e.code, e.message)
            }
        })
        .collect::<Vec<_>>()
        .join(";")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
