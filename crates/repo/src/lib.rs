//! Package repository clients for drydock.
//!
//! Today: APT ([`apt`]), with signature-verified suites, checksum-verified
//! indexes and pool files, and a download [`cache`] keyed by SHA256. Never
//! hands out content whose chain of trust back to a keyring did not verify.

pub mod apt;
pub mod cache;
pub mod changelog;
pub mod deb;
pub mod distributions;
pub mod error;
mod keyring;
mod release;

pub use apt::{AptClient, ReleaseReuse, Suite, VerifiedSuite};
pub use cache::Cache;
pub use deb::{DataEntry, DebError, DebFile};
pub use error::{Error, Result};
pub use keyring::{KeyError, Keyring, KeyringError};
pub use release::{IndexFile, Release, ReleaseError};
