//! Content-addressed blob files: `blobs/<algorithm>/<first 2 hex>/<hex>`,
//! plus the `uploads/` directory where upload sessions stream before they are
//! renamed in. A file is only ever installed complete (fsync, rename, fsync
//! of the directory), so a blob path either holds the whole verified content
//! or nothing. Never records anything in the metadata store.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci::{Algorithm, Digest};

use super::StorageError;

/// The blob files of one data directory and its upload area. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BlobStore {
    blobs_dir: PathBuf,
    uploads_dir: PathBuf,
}

/// A blob file found on disk by [`BlobStore::list_blocking`].
pub struct BlobFile {
    /// The digest its name says (its content was verified when installed).
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, for the garbage collector's grace period.
    pub modified: std::time::SystemTime,
}

impl BlobStore {
    /// The blob store of `data_dir`, creating `blobs/` and `uploads/` when
    /// needed. Blocking.
    pub fn open(data_dir: &Path) -> Result<BlobStore, StorageError> {
        let store = BlobStore {
            blobs_dir: data_dir.join("blobs"),
            uploads_dir: data_dir.join("uploads"),
        };
        for dir in [&store.blobs_dir, &store.uploads_dir] {
            fs::create_dir_all(dir).map_err(StorageError::io("create directory", dir))?;
        }
        Ok(store)
    }

    /// Where upload sessions keep their temp files.
    pub fn uploads_dir(&self) -> PathBuf {
        self.uploads_dir.clone()
    }

    /// Where the blob `digest` is (or would be) stored.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir
            .join(digest.algorithm().as_str())
            .join(&digest.hex()[..2])
            .join(digest.hex())
    }

    /// Moves a complete, verified, already fsynced file into place under
    /// `digest`. Installing content that is already there is harmless: the
    /// bytes are identical by construction. Blocking.
    pub fn install_blocking(&self, temp: &Path, digest: &Digest) -> Result<(), StorageError> {
        let target = self.path(digest);
        let dir = target.parent().expect("blob paths have a parent directory");
        fs::create_dir_all(dir).map_err(StorageError::io("create directory", dir))?;
        fs::rename(temp, &target).map_err(StorageError::io("move an upload into", &target))?;
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(StorageError::io("sync directory", dir))?;
        Ok(())
    }

    /// Removes a blob file; a file already gone is not an error. Blocking.
    pub fn remove_blocking(&self, digest: &Digest) -> Result<(), StorageError> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StorageError::io("remove blob file", path)(e))
            }
            _ => Ok(()),
        }
    }

    /// Every well-named blob file on disk. Blocking.
    pub fn list_blocking(&self) -> Result<Vec<BlobFile>, StorageError> {
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
                    let modified = meta.modified().map_err(StorageError::io(
                        "read the modification time of",
                        entry.path(),
                    ))?;
                    found.push(BlobFile {
                        digest,
                        size: meta.len(),
                        modified,
                    });
                }
            }
        }
        Ok(found)
    }
}

/// The entries of `dir`, or none when it does not exist.
fn read_dir_or_empty(dir: &Path) -> Result<Vec<fs::DirEntry>, StorageError> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .collect::<Result<_, _>>()
            .map_err(StorageError::io("list directory", dir)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StorageError::io("list directory", dir)(e)),
    }
}
