//! Reading, deleting and cross-mounting blobs of a repository. A blob is
//! visible in a repository only while it is linked there; a manifest's own
//! bytes are also served as a blob of its repository. Deleting only unlinks:
//! the file is reclaimed by garbage collection. Never writes blob files.

use std::time::Duration;

use bytes::Bytes;
use oci::Digest;

use crate::error::RequestError;
use crate::storage::{BlobStore, DataLock, Metadata, StorageError, metadata, unix_now};

/// A blob's content, ready to stream.
pub enum BlobContent {
    /// A blob file, opened, with its recorded size.
    File {
        /// The open file, positioned at its start.
        file: tokio::fs::File,
        /// Where it is, for errors.
        path: std::path::PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// A manifest's bytes, served as a blob of its repository.
    Manifest(Bytes),
}

impl BlobContent {
    /// The content's size in bytes.
    pub fn size(&self) -> u64 {
        match self {
            BlobContent::File { size, .. } => *size,
            BlobContent::Manifest(bytes) => bytes.len() as u64,
        }
    }
}

enum Located {
    File(u64),
    Manifest(Vec<u8>),
}

/// Blob reads, deletes and mounts over one data directory.
pub struct BlobService {
    blobs: BlobStore,
    metadata: Metadata,
    lock: DataLock,
    /// The garbage collector's grace period; a read pushes collection back by half of it.
    grace: Duration,
}

impl BlobService {
    /// The service over these storage handles.
    pub fn new(
        blobs: BlobStore,
        metadata: Metadata,
        lock: DataLock,
        grace: Duration,
    ) -> BlobService {
        BlobService {
            blobs,
            metadata,
            lock,
            grace,
        }
    }

    async fn locate(&self, repo: &str, digest: &Digest) -> Result<Located, RequestError> {
        let (repo, digest_text) = (repo.to_string(), digest.to_string());
        let grace = self.grace.as_secs() as i64;
        self.metadata
            .call(move |c| {
                if let Some(size) = metadata::linked_blob_size(c, &repo, &digest_text)? {
                    // A client that sees a blob may skip uploading it and push a
                    // manifest next: keep garbage collection away for a while.
                    let now = unix_now();
                    metadata::touch_blob(c, &digest_text, now, now - grace / 2)?;
                    return Ok(Located::File(size));
                }
                match metadata::get_manifest(c, &repo, &digest_text)? {
                    Some(manifest) => Ok(Located::Manifest(manifest.content)),
                    None => Err(RequestError::BlobUnknown(digest_text)),
                }
            })
            .await
    }

    /// The size of a blob in `repo`, for HEAD.
    pub async fn size(&self, repo: &str, digest: &Digest) -> Result<u64, RequestError> {
        Ok(match self.locate(repo, digest).await? {
            Located::File(size) => size,
            Located::Manifest(bytes) => bytes.len() as u64,
        })
    }

    /// Opens a blob of `repo` for reading.
    pub async fn open(&self, repo: &str, digest: &Digest) -> Result<BlobContent, RequestError> {
        match self.locate(repo, digest).await? {
            Located::File(size) => {
                let path = self.blobs.path(digest);
                match tokio::fs::File::open(&path).await {
                    Ok(file) => Ok(BlobContent::File { file, path, size }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        tracing::error!("blob {digest} is recorded but its file is missing");
                        Err(RequestError::BlobUnknown(digest.to_string()))
                    }
                    Err(e) => Err(StorageError::io("open blob file", path)(e).into()),
                }
            }
            Located::Manifest(bytes) => Ok(BlobContent::Manifest(bytes.into())),
        }
    }

    /// Unlinks a blob from `repo`.
    pub async fn delete(&self, repo: &str, digest: &Digest) -> Result<(), RequestError> {
        let (repo, digest_text) = (repo.to_string(), digest.to_string());
        self.metadata
            .call(
                move |c| match metadata::unlink_blob(c, &repo, &digest_text)? {
                    true => Ok(()),
                    false => Err(RequestError::BlobUnknown(digest_text)),
                },
            )
            .await
    }

    /// Links a blob that `from` holds into `to`; `None` when `from` does not hold it.
    pub async fn mount(
        &self,
        from: &str,
        to: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, RequestError> {
        let _guard = self.lock.shared().await?;
        let (from, to, digest_text) = (from.to_string(), to.to_string(), digest.to_string());
        self.metadata
            .call(move |c| {
                metadata::mount_blob(c, &from, &to, &digest_text, unix_now())
                    .map_err(RequestError::from)
            })
            .await
    }
}
