//! Online garbage collection with a grace period.
//!
//! Mark: every blob a stored manifest references (in any repository) is
//! live. Sweep, under the exclusive data lock so no blob is being installed,
//! mounted or referenced meanwhile: blob rows neither referenced nor used
//! within the grace period are deleted in one transaction, then their files;
//! blob files with no row and older than the grace period are deleted too.
//! Upload temp files untouched for longer than the upload expiry are removed.
//! Never deletes anything younger than its grace period or expiry, and
//! deletes nothing at all in a dry run.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use oci::Digest;

use super::{Settings, UploadService};
use crate::storage::{BlobStore, DataLock, Metadata, StorageError, metadata, unix_now};

/// What one collection removed (or would remove, in a dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Nothing was removed; the counts say what would have been.
    pub dry_run: bool,
    /// Blobs no manifest references, unused for the grace period.
    pub blobs_removed: u64,
    /// Their bytes.
    pub blob_bytes: u64,
    /// Blob files with no metadata row (left by a crash), older than the grace period.
    pub orphan_files_removed: u64,
    /// Their bytes.
    pub orphan_bytes: u64,
    /// Upload sessions untouched for longer than the upload expiry.
    pub uploads_expired: u64,
    /// Their bytes.
    pub upload_bytes: u64,
}

impl fmt::Display for GcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        write!(
            f,
            "{verb} {} unreferenced blobs ({} bytes), {} orphaned blob files ({} bytes), {} expired uploads ({} bytes)",
            self.blobs_removed,
            self.blob_bytes,
            self.orphan_files_removed,
            self.orphan_bytes,
            self.uploads_expired,
            self.upload_bytes
        )
    }
}

/// Garbage collection over one data directory.
pub struct GcService {
    blobs: BlobStore,
    metadata: Metadata,
    lock: DataLock,
    uploads: Arc<UploadService>,
    grace: Duration,
    upload_expiry: Duration,
}

impl GcService {
    /// The collector over these storage handles; it forgets the sessions of
    /// `uploads` whose files it expires.
    pub fn new(
        blobs: BlobStore,
        metadata: Metadata,
        lock: DataLock,
        uploads: Arc<UploadService>,
        settings: Settings,
    ) -> GcService {
        GcService {
            blobs,
            metadata,
            lock,
            uploads,
            grace: settings.gc_grace,
            upload_expiry: settings.upload_expiry,
        }
    }

    /// Collects once, on the blocking thread pool; `dry_run` only reports.
    pub async fn collect(self: &Arc<Self>, dry_run: bool) -> Result<GcReport, StorageError> {
        let worker = self.clone();
        let (report, expired) =
            tokio::task::spawn_blocking(move || worker.collect_blocking(dry_run)).await??;
        self.uploads.forget(&expired);
        Ok(report)
    }

    fn collect_blocking(&self, dry_run: bool) -> Result<(GcReport, Vec<uuid::Uuid>), StorageError> {
        let mut report = GcReport {
            dry_run,
            ..GcReport::default()
        };
        let cutoff = SystemTime::now() - self.grace;
        {
            let _guard = self.lock.exclusive_blocking()?;
            let cutoff_secs = unix_now() - self.grace.as_secs() as i64;
            let swept = self
                .metadata
                .call_blocking(|c| metadata::sweep_blobs(c, cutoff_secs, dry_run))?;
            for blob in &swept {
                report.blobs_removed += 1;
                report.blob_bytes += blob.size;
                if !dry_run && let Ok(digest) = blob.digest.parse::<Digest>() {
                    self.blobs.remove_blocking(&digest)?;
                }
            }
            let recorded = self
                .metadata
                .call_blocking(|c| metadata::all_blob_digests(c))?;
            for file in self.blobs.list_blocking()? {
                if recorded.contains(&file.digest.to_string()) || file.modified > cutoff {
                    continue;
                }
                report.orphan_files_removed += 1;
                report.orphan_bytes += file.size;
                if !dry_run {
                    self.blobs.remove_blocking(&file.digest)?;
                }
            }
        }
        let expired = expire_uploads(self.uploads.dir(), self.upload_expiry, dry_run, &mut report)?;
        Ok((report, expired))
    }
}

/// Removes (unless `dry_run`) upload files in `dir` untouched for longer
/// than `expiry`; returns their session ids.
fn expire_uploads(
    dir: &std::path::Path,
    expiry: Duration,
    dry_run: bool,
    report: &mut GcReport,
) -> Result<Vec<uuid::Uuid>, StorageError> {
    let mut expired = Vec::new();
    let list = StorageError::io("list directory", dir);
    let entries = std::fs::read_dir(dir)
        .and_then(|entries| entries.collect::<Result<Vec<_>, _>>())
        .map_err(list)?;
    for entry in entries {
        let Ok(meta) = entry.metadata() else { continue };
        let age = meta
            .modified()
            .map_err(StorageError::io(
                "read the modification time of",
                entry.path(),
            ))?
            .elapsed()
            .unwrap_or(Duration::ZERO);
        if age <= expiry {
            continue;
        }
        report.uploads_expired += 1;
        report.upload_bytes += meta.len();
        if !dry_run {
            match std::fs::remove_file(entry.path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(StorageError::io("remove upload file", entry.path())(e));
                }
                _ => {}
            }
            if let Ok(id) = entry.file_name().to_string_lossy().parse() {
                expired.push(id);
            }
        }
    }
    Ok(expired)
}
