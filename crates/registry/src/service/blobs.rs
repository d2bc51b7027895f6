//! Reading, deleting and cross-mounting blobs of a repository. A blob is
//! visible in a repository only while it is linked there; a manifest's own
//! bytes are also served as a blob of its repository. Deleting only unlinks:
//! the file is reclaimed by garbage collection. Never writes blob files.

use bytes::Bytes;
use oci::Digest;

use crate::Registry;
use crate::error::Error;
use crate::storage::{metadata, unix_now};

/// A blob's content, ready to stream.
pub enum BlobContent {
    File { file: tokio::fs::File, size: u64 },
    Manifest(Bytes),
}

impl BlobContent {
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

async fn locate(registry: &Registry, repo: &str, digest: &Digest) -> Result<Located, Error> {
    let (repo, digest_text) = (repo.to_string(), digest.to_string());
    let grace = registry.inner.config.gc_grace.as_secs() as i64;
    registry
        .inner
        .metadata
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
                None => Err(Error::BlobUnknown(digest_text)),
            }
        })
        .await
}

/// The size of a blob in `repo`, for HEAD.
pub async fn size(registry: &Registry, repo: &str, digest: &Digest) -> Result<u64, Error> {
    Ok(match locate(registry, repo, digest).await? {
        Located::File(size) => size,
        Located::Manifest(bytes) => bytes.len() as u64,
    })
}

/// Opens a blob of `repo` for reading.
pub async fn open(registry: &Registry, repo: &str, digest: &Digest) -> Result<BlobContent, Error> {
    match locate(registry, repo, digest).await? {
        Located::File(size) => match tokio::fs::File::open(registry.inner.blobs.path(digest)).await
        {
            Ok(file) => Ok(BlobContent::File { file, size }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::error!("blob {digest} is recorded but its file is missing");
                Err(Error::BlobUnknown(digest.to_string()))
            }
            Err(e) => Err(e.into()),
        },
        Located::Manifest(bytes) => Ok(BlobContent::Manifest(bytes.into())),
    }
}

/// Unlinks a blob from `repo`.
pub async fn delete(registry: &Registry, repo: &str, digest: &Digest) -> Result<(), Error> {
    let (repo, digest_text) = (repo.to_string(), digest.to_string());
    registry
        .inner
        .metadata
        .call(
            move |c| match metadata::unlink_blob(c, &repo, &digest_text)? {
                true => Ok(()),
                false => Err(Error::BlobUnknown(digest_text)),
            },
        )
        .await
}

/// Links a blob that `from` holds into `to`; `None` when `from` does not hold it.
pub async fn mount(
    registry: &Registry,
    from: &str,
    to: &str,
    digest: &Digest,
) -> Result<Option<u64>, Error> {
    let _guard = registry.inner.lock.shared().await?;
    let (from, to, digest_text) = (from.to_string(), to.to_string(), digest.to_string());
    registry
        .inner
        .metadata
        .call(move |c| metadata::mount_blob(c, &from, &to, &digest_text, unix_now()))
        .await
}
