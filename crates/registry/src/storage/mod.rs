//! Where registry state lives: blob files on the filesystem (`blobs`), the
//! reference graph in SQLite (`metadata`) and the cross-process lock that
//! keeps garbage collection from racing blob writers (`lock`).
//!
//! Storage knows nothing of HTTP or of the spec's rules; it never decides
//! whether a request is valid, only stores and retrieves what it is given.
//! It depends on no other module of the crate.

mod blobs;
mod error;
mod lock;
pub mod metadata;

pub use blobs::BlobStore;
pub use error::StorageError;
pub use lock::DataLock;
pub use metadata::{Metadata, NewManifest, PutManifest, Referrer, StoredManifest};

/// Seconds since the Unix epoch, the timestamps of the metadata store.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
