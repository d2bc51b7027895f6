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
use std::time::{Duration, SystemTime};

use oci::Digest;

use crate::Registry;
use crate::error::Error;
use crate::storage::{metadata, unix_now};

/// What one collection removed (or would remove, in a dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub dry_run: bool,
    pub blobs_removed: u64,
    pub blob_bytes: u64,
    pub orphan_files_removed: u64,
    pub orphan_bytes: u64,
    pub uploads_expired: u64,
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

pub async fn collect(registry: &Registry, dry_run: bool) -> Result<GcReport, Error> {
    let worker = registry.clone();
    let (report, expired) =
        tokio::task::spawn_blocking(move || collect_blocking(&worker, dry_run)).await??;
    registry.inner.uploads.forget(&expired);
    Ok(report)
}

fn collect_blocking(
    registry: &Registry,
    dry_run: bool,
) -> Result<(GcReport, Vec<uuid::Uuid>), Error> {
    let inner = &registry.inner;
    let mut report = GcReport {
        dry_run,
        ..GcReport::default()
    };
    let cutoff = SystemTime::now() - inner.config.gc_grace;
    {
        let _guard = inner.lock.exclusive_blocking()?;
        let cutoff_secs = unix_now() - inner.config.gc_grace.as_secs() as i64;
        let swept = inner
            .metadata
            .call_blocking(|c| metadata::sweep_blobs(c, cutoff_secs, dry_run))?;
        for blob in &swept {
            report.blobs_removed += 1;
            report.blob_bytes += blob.size;
            if !dry_run && let Ok(digest) = blob.digest.parse::<Digest>() {
                inner.blobs.remove_blocking(&digest)?;
            }
        }
        let recorded = inner
            .metadata
            .call_blocking(|c| metadata::all_blob_digests(c))?;
        for file in inner.blobs.list_blocking()? {
            if recorded.contains(&file.digest.to_string()) || file.modified > cutoff {
                continue;
            }
            report.orphan_files_removed += 1;
            report.orphan_bytes += file.size;
            if !dry_run {
                inner.blobs.remove_blocking(&file.digest)?;
            }
        }
    }
    let expired = expire_uploads(registry, dry_run, &mut report)?;
    Ok((report, expired))
}

fn expire_uploads(
    registry: &Registry,
    dry_run: bool,
    report: &mut GcReport,
) -> Result<Vec<uuid::Uuid>, Error> {
    let expiry = registry.inner.config.upload_expiry;
    let mut expired = Vec::new();
    for entry in std::fs::read_dir(registry.inner.uploads.dir())? {
        let entry = entry?;
        let Ok(meta) = entry.metadata() else { continue };
        let age = meta.modified()?.elapsed().unwrap_or(Duration::ZERO);
        if age <= expiry {
            continue;
        }
        report.uploads_expired += 1;
        report.upload_bytes += meta.len();
        if !dry_run {
            match std::fs::remove_file(entry.path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
            if let Ok(id) = entry.file_name().to_string_lossy().parse() {
                expired.push(id);
            }
        }
    }
    Ok(expired)
}
