//! drydock's embedded OCI Distribution v1.1 registry.
//!
//! Owns the HTTP surface of the distribution spec (`routes`), the rules behind
//! it (`service`: upload sessions, manifest validation, referrers, garbage
//! collection) and where content lives (`storage`: content-addressed blob
//! files plus an SQLite reference graph). Never listens on a socket itself:
//! callers get an [`axum::Router`] from [`Registry::router`] and serve it
//! wherever they like, so other routes can share the listener.
//!
//! Modules depend on each other in one direction only. The crate root
//! assembles `routes` (thin handlers, the trace and auth layers) →
//! `service` (structs owning their storage handles) → `storage` (files,
//! SQLite, the lock). `error` holds the start-up error and the per-request
//! error with its one mapping to the spec's codes; it uses only `auth`'s and
//! `storage`'s error types, and `auth` and `storage` use no other module.

mod auth;
mod error;
mod routes;
mod service;
mod storage;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use auth::HtpasswdError;
pub use error::OpenError;
pub use service::gc::GcReport;
pub use storage::StorageError;

use auth::Authenticator;
use service::{Services, Settings};
use storage::{BlobStore, DataLock, Metadata};

/// The largest manifest accepted by default (inclusive), as the spec's
/// "at least 4 MiB" asks.
pub const DEFAULT_MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// How a registry stores content and who may use it. Independent of where it listens.
#[derive(Debug, Clone)]
pub struct Config {
    /// Root of all state: `blobs/`, `uploads/`, `registry.db`, `gc.lock`.
    pub data_dir: PathBuf,
    /// Manifests up to this many bytes are accepted; larger ones get 413.
    pub max_manifest_bytes: u64,
    /// An htpasswd file of bcrypt entries; `None` disables authentication.
    pub htpasswd: Option<PathBuf>,
    /// With `htpasswd`, let requests without credentials read (GET/HEAD).
    pub anonymous_pull: bool,
    /// Garbage collection never removes a blob touched more recently than this.
    pub gc_grace: Duration,
    /// How often [`Registry::spawn_maintenance`] collects garbage; `None` never.
    pub gc_interval: Option<Duration>,
    /// Upload sessions untouched for this long are removed by garbage collection.
    pub upload_expiry: Duration,
}

impl Config {
    /// A configuration with the defaults: 4 MiB manifests, no authentication,
    /// 1h grace, GC every hour, uploads expiring after 24h.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            max_manifest_bytes: DEFAULT_MAX_MANIFEST_BYTES,
            htpasswd: None,
            anonymous_pull: false,
            gc_grace: Duration::from_secs(3600),
            gc_interval: Some(Duration::from_secs(3600)),
            upload_expiry: Duration::from_secs(24 * 3600),
        }
    }
}

/// An open registry over one data directory. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    services: Arc<Services>,
    authenticator: Option<Arc<Authenticator>>,
}

impl Registry {
    /// Opens (creating when needed) the data directory and its metadata store,
    /// and loads the htpasswd file when one is configured. The files and the
    /// database are opened on the blocking thread pool.
    pub async fn open(config: Config) -> Result<Registry, OpenError> {
        tokio::task::spawn_blocking(move || Registry::open_blocking(config)).await?
    }

    fn open_blocking(config: Config) -> Result<Registry, OpenError> {
        let data_dir = &config.data_dir;
        std::fs::create_dir_all(data_dir).map_err(|source| OpenError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let blobs = BlobStore::open(data_dir).map_err(OpenError::Blobs)?;
        let database = data_dir.join("registry.db");
        let metadata = Metadata::open(&database).map_err(|source| OpenError::Metadata {
            path: database,
            source,
        })?;
        let lock = DataLock::new(data_dir.join("gc.lock"));
        let authenticator = match &config.htpasswd {
            Some(path) => Some(Arc::new(Authenticator::load(path, config.anonymous_pull)?)),
            None => None,
        };
        let settings = Settings {
            max_manifest_bytes: config.max_manifest_bytes,
            gc_grace: config.gc_grace,
            upload_expiry: config.upload_expiry,
        };
        Ok(Registry {
            inner: Arc::new(Inner {
                services: Arc::new(Services::new(blobs, metadata, lock, settings)),
                authenticator,
                config,
            }),
        })
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The distribution API (`/v2/…`), with authentication applied and every
    /// request traced (a span with method and path, an INFO event with status
    /// and latency).
    pub fn router(&self) -> axum::Router {
        routes::router(
            self.inner.services.clone(),
            self.inner.authenticator.clone(),
        )
    }

    /// Puts `router` (other routes served on the registry's listener, such
    /// as drydock's API and dashboard) behind the registry's own
    /// authentication: with an htpasswd file, reads (GET/HEAD) need
    /// credentials unless anonymous pulls are allowed, everything else
    /// always does; without one, every request passes.
    pub fn protect(&self, router: axum::Router) -> axum::Router {
        routes::protect(router, self.inner.authenticator.clone())
    }

    /// Collects garbage once: unreferenced blobs older than the grace period,
    /// orphaned blob files and expired uploads. `dry_run` only reports.
    pub async fn gc(&self, dry_run: bool) -> Result<GcReport, StorageError> {
        self.inner.services.gc.collect(dry_run).await
    }

    /// Runs [`Registry::gc`] every `gc_interval` in the background, logging
    /// each report; `None` when the configuration has no interval.
    pub fn spawn_maintenance(&self) -> Option<tokio::task::JoinHandle<()>> {
        let interval = self.inner.config.gc_interval?;
        let registry = self.clone();
        Some(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                match registry.gc(false).await {
                    Ok(report) => tracing::info!("garbage collection: {report}"),
                    Err(e) => tracing::error!("garbage collection failed: {}", error::chain(&e)),
                }
            }
        }))
    }
}
