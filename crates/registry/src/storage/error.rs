//! What can go wrong where registry state lives: a file of the data
//! directory, the metadata database or its schema, or a blocking task that
//! did the work. Knows nothing of HTTP or of the distribution spec's codes.

use std::path::PathBuf;

/// A failure of the registry's storage: its files, its metadata database or
/// the blocking task that touched them. Returned by start-up, garbage
/// collection and, inside a request, mapped to the spec's `UNKNOWN` (500).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file or directory of the data directory could not be created,
    /// opened, read, written, synced, renamed, locked or removed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done, e.g. "create directory" or "remove blob file".
        action: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// Why the operating system refused.
        #[source]
        source: std::io::Error,
    },
    /// The metadata database could not be opened or refused a statement.
    #[error("the metadata database failed")]
    Database(#[from] rusqlite::Error),
    /// The metadata database's schema could not be brought up to date.
    #[error("cannot bring the metadata database's schema up to date")]
    Migration(#[from] rusqlite_migration::Error),
    /// A blocking task doing storage work panicked or was cancelled.
    #[error("a storage task did not finish")]
    Task(#[from] tokio::task::JoinError),
}

impl StorageError {
    /// Wraps an I/O error with what was being done to which path, for `map_err`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> StorageError {
        let path = path.into();
        move |source| StorageError::Io {
            action,
            path,
            source,
        }
    }
}
