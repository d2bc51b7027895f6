//! Content-addressed blob files: `blobs/<algorithm>/<first 2 hex>/<hex>`,
//! plus the `uploads/` directory where upload sessions stream before they are
//! renamed in. A file is only ever installed complete (fsync, rename, fsync
//! of the directory), so a blob path either holds the whole verified content
//! or nothing. Never records anything in the metadata store.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci::{Algorithm, Digest};

use crate::error::Error;

#[derive(Debug, Clone)]
pub struct BlobStore {
    blobs_dir: PathBuf,
    uploads_dir: PathBuf,
}

/// A blob file found on disk by [`BlobStore::list`].
pub struct BlobFile {
    pub digest: Digest,
    pub size: u64,
    pub modified: std::time::SystemTime,
}

impl BlobStore {
    pub fn open(data_dir: &Path) -> Result<BlobStore, Error> {
        let store = BlobStore {
            blobs_dir: data_dir.join("blobs"),
            uploads_dir: data_dir.join("uploads"),
        };
        fs::create_dir_all(&store.blobs_dir)?;
        fs::create_dir_all(&store.uploads_dir)?;
        Ok(store)
    }

    pub fn uploads_dir(&self) -> PathBuf {
        self.uploads_dir.clone()
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir
            .join(digest.algorithm().as_str())
            .join(&digest.hex()[..2])
            .join(digest.hex())
    }

    /// Moves a complete, verified, already fsynced file into place under
    /// `digest`. Installing content that is already there is harmless: the
    /// bytes are identical by construction. Blocking.
    pub fn install_blocking(&self, temp: &Path, digest: &Digest) -> Result<(), Error> {
        let target = self.path(digest);
        let dir = target.parent().expect("blob paths have a parent directory");
        fs::create_dir_all(dir)?;
        fs::rename(temp, &target)?;
        fs::File::open(dir)?.sync_all()?;
        Ok(())
    }

    /// Removes a blob file; a file already gone is not an error. Blocking.
    pub fn remove_blocking(&self, digest: &Digest) -> Result<(), Error> {
        match fs::remove_file(self.path(digest)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Every well-named blob file on disk. Blocking.
    pub fn list_blocking(&self) -> Result<Vec<BlobFile>, Error> {
        let mut found = Vec::new();
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let algorithm_dir = self.blobs_dir.join(algorithm.as_str());
            for prefix in read_dir_or_empty(&algorithm_dir)? {
                for entry in read_dir_or_empty(&prefix.path())? {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let Ok(digest) = format!("{}:{name}", algorithm.as_str()).parse::<Digest>()
                    else {
                        continue;
                    };
                    let Ok(meta) = entry.metadata() else { continue };
                    found.push(BlobFile {
                        digest,
                        size: meta.len(),
                        modified: meta.modified()?,
                    });
                }
            }
        }
        Ok(found)
    }
}

/// The entries of `dir`, or none when it does not exist.
fn read_dir_or_empty(dir: &Path) -> Result<Vec<fs::DirEntry>, Error> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.collect::<Result<_, _>>()?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}
