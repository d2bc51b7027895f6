//! A download cache keyed by SHA256: `<dir>/sha256/<hex>`.
//!
//! Owns "fetch this content unless we already hold it": a file enters the
//! cache only after its size and SHA256 matched what a signed index
//! promised (written to a temp file, verified, synced, renamed), so a
//! cached file is always trustworthy and shared by every suite and image
//! that names the same checksum. Never stores unverified bytes.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use oci::{Digest, Verifier};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

/// A download cache directory: files stored by their SHA256, verified before they enter.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache under `dir` (created on the first download).
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    /// The directory it keeps its files under.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    /// The cached file for `digest`, if present.
    pub async fn get(&self, digest: &Digest) -> Option<PathBuf> {
        let path = self.path(digest);
        tokio::fs::try_exists(&path)
            .await
            .unwrap_or(false)
            .then_some(path)
    }

    /// Returns the cached file for `digest`, downloading it from the first of
    /// `urls` that serves it (a 404 moves on to the next: indexes can lag the pool).
    pub async fn fetch(
        &self,
        http: &reqwest::Client,
        urls: &[String],
        digest: &Digest,
        size: u64,
    ) -> Result<PathBuf> {
        if let Some(path) = self.get(digest).await {
            return Ok(path);
        }
        let mut last_error = None;
        for url in urls {
            match crate::error::retrying(|| self.download(http, url, digest, size)).await {
                Ok(path) => return Ok(path),
                Err(Error::NotFound { .. }) => {
                    last_error = Some(Error::NotFound { url: url.clone() })
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or(Error::NotFound { url: String::new() }))
    }

    async fn download(
        &self,
        http: &reqwest::Client,
        url: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<PathBuf> {
        let response = http.get(url).send().await.map_err(|source| Error::Http {
            url: url.to_string(),
            source,
        })?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(Error::NotFound {
                url: url.to_string(),
            });
        }
        if !response.status().is_success() {
            return Err(Error::Status {
                url: url.to_string(),
                status: response.status().as_u16(),
            });
        }
        let final_path = self.path(digest);
        let dir = final_path.parent().unwrap_or(&self.dir).to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(Error::io(&dir))?;
        // Unique per download: two tasks may fetch the same package at once.
        static DOWNLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let serial = DOWNLOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = dir.join(format!(
            ".tmp-{}-{serial}-{}",
            std::process::id(),
            digest.hex()
        ));
        let result = async {
            let mut file = tokio::io::BufWriter::new(
                tokio::fs::File::create(&temp)
                    .await
                    .map_err(Error::io(&temp))?,
            );
            let mut verifier = Verifier::new(digest.clone(), Some(size));
            let mut body = response.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|source| Error::Http {
                    url: url.to_string(),
                    source,
                })?;
                verifier.update(&chunk).map_err(|source| Error::Checksum {
                    url: url.to_string(),
                    source,
                })?;
                file.write_all(&chunk).await.map_err(Error::io(&temp))?;
            }
            verifier.finish().map_err(|source| Error::Checksum {
                url: url.to_string(),
                source,
            })?;
            file.flush().await.map_err(Error::io(&temp))?;
            file.get_ref().sync_all().await.map_err(Error::io(&temp))?;
            tokio::fs::rename(&temp, &final_path)
                .await
                .map_err(Error::io(&final_path))
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e);
        }
        Ok(final_path)
    }
}
