//! The registry's rules, between the HTTP routes and storage. Each service
//! is a struct that owns the storage handles it needs: upload sessions and
//! blob finalisation ([`UploadService`]), blob reads, deletes and mounts
//! ([`BlobService`]), manifest validation and the reference graph, with
//! referrers, tags and the catalog ([`ManifestService`]), and garbage
//! collection ([`GcService`]).
//!
//! Routes call services; services never call routes. Services speak in
//! repositories, digests and byte streams and fail with the request error's
//! domain variants; they never see HTTP headers or status codes.

pub mod blobs;
pub mod gc;
pub mod manifests;
pub mod uploads;

use std::sync::Arc;
use std::time::Duration;

pub use blobs::BlobService;
pub use gc::GcService;
pub use manifests::ManifestService;
pub use uploads::UploadService;

use crate::storage::{BlobStore, DataLock, Metadata};

/// The limits and ages the services apply, from the registry's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Manifests up to this many bytes are accepted.
    pub max_manifest_bytes: u64,
    /// Garbage collection never removes a blob touched more recently than this.
    pub gc_grace: Duration,
    /// Upload sessions untouched for this long are expired by garbage collection.
    pub upload_expiry: Duration,
}

/// Every service of one registry, sharing one data directory's storage.
pub struct Services {
    /// Blob reads, deletes and mounts.
    pub blobs: BlobService,
    /// Upload sessions.
    pub uploads: Arc<UploadService>,
    /// Manifests, tags, the catalog and referrers.
    pub manifests: ManifestService,
    /// Garbage collection.
    pub gc: Arc<GcService>,
}

impl Services {
    /// The services over one data directory's storage handles.
    pub fn new(
        blobs: BlobStore,
        metadata: Metadata,
        lock: DataLock,
        settings: Settings,
    ) -> Services {
        let uploads = Arc::new(UploadService::new(
            blobs.clone(),
            metadata.clone(),
            lock.clone(),
        ));
        Services {
            blobs: BlobService::new(
                blobs.clone(),
                metadata.clone(),
                lock.clone(),
                settings.gc_grace,
            ),
            manifests: ManifestService::new(
                metadata.clone(),
                lock.clone(),
                settings.max_manifest_bytes,
            ),
            gc: Arc::new(GcService::new(
                blobs,
                metadata,
                lock,
                uploads.clone(),
                settings,
            )),
            uploads,
        }
    }
}
