//! The registry's rules, between the HTTP routes and storage: upload sessions
//! and blob finalisation (`uploads`), blob reads, deletes and mounts
//! (`blobs`), manifest validation and the reference graph (`manifests`,
//! including referrers, tags and the catalog), and garbage collection (`gc`).
//!
//! Services speak in repositories, digests and byte streams; they never see
//! HTTP headers or status codes.

pub mod blobs;
pub mod gc;
pub mod manifests;
pub mod uploads;
