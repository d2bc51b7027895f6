//! The data directory's cross-process lock (`gc.lock`): garbage collection
//! holds it exclusively while it deletes, writers that make blobs referenced
//! (blob finalize, mount, manifest put) hold it shared. A lock is an open file
//! description with `flock` semantics, so it also excludes within one process.
//! Never held across waiting for a client.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;

use super::StorageError;

/// The lock file of one data directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DataLock {
    path: PathBuf,
}

/// Holds the lock until dropped.
pub struct LockGuard {
    _file: File,
}

impl DataLock {
    /// The lock at `path` (created on first use).
    pub fn new(path: PathBuf) -> DataLock {
        DataLock { path }
    }

    /// Blocks until no garbage collection is deleting. Call off the async runtime.
    pub fn shared_blocking(&self) -> Result<LockGuard, StorageError> {
        let file = self.open()?;
        file.lock_shared()
            .map_err(StorageError::io("take a shared lock on", &self.path))?;
        Ok(LockGuard { _file: file })
    }

    /// Blocks until no writer holds the lock. Call off the async runtime.
    pub fn exclusive_blocking(&self) -> Result<LockGuard, StorageError> {
        let file = self.open()?;
        file.lock()
            .map_err(StorageError::io("take an exclusive lock on", &self.path))?;
        Ok(LockGuard { _file: file })
    }

    /// [`DataLock::shared_blocking`] from async code.
    pub async fn shared(&self) -> Result<LockGuard, StorageError> {
        let lock = self.clone();
        tokio::task::spawn_blocking(move || lock.shared_blocking()).await?
    }

    fn open(&self) -> Result<File, StorageError> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(StorageError::io("open lock file", &self.path))
    }
}
