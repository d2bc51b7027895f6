//! The one error type of `pkgdb`. Every variant names what it concerns (the
//! layer, the file inside the image, the line, the package) and its message
//! says what to do about it.

use std::path::PathBuf;

pub use crate::version::VersionError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A package database or identity file that does not follow its format.
    #[error("{file}: line {line}: {message}")]
    Format {
        file: String,
        line: usize,
        message: String,
    },
    /// A package entry that is well-formed text but not a usable package.
    #[error("{file}: package {package}: {message}")]
    Package {
        file: String,
        package: String,
        message: String,
    },
    #[error(transparent)]
    Version(#[from] VersionError),
    /// A layer that cannot be read: bad compression, not a tar, too large.
    #[error("layer {layer}: {message}")]
    Layer { layer: String, message: String },
    #[error("rpm database {file}: {message}")]
    Rpm { file: String, message: String },
    /// A cached per-layer scan result that does not decode.
    #[error("cached layer scan: {0}; discard the cache entry and scan the layer again")]
    Cache(String),
    /// An embedded or supplied end-of-life table that does not parse.
    #[error("end-of-life table {file}: line {line}: {message}")]
    Feed {
        file: String,
        line: usize,
        message: String,
    },
    #[error("image {image}: {message}")]
    Image { image: String, message: String },
    #[error(transparent)]
    Oci(#[from] oci::Error),
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

    pub fn format(file: &str, line: usize, message: impl Into<String>) -> Error {
        Error::Format {
            file: file.to_string(),
            line,
            message: message.into(),
        }
    }
}
