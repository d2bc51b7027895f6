//! Vulnerability advisories for drydock: feed parsers ([`feeds`]: Debian
//! Security Tracker JSON, OSV for Debian/Ubuntu/Alpine, Alpine secdb), the
//! downloads of the online feeds ([`feeds::fetch`]), the local SQLite
//! [`Store`] the scanner reads, and the security-repository feed
//! ([`SecurityRepo`]) the scanner asks per image.
//!
//! The model ([`Advisory`]) says, per distro release and SOURCE package,
//! what the vendor says about a vulnerability: fixed in a version, affected,
//! will not fix, fix deferred, end of life, or not affected. This crate
//! never matches installed packages to advisories; that is the scanner's
//! (with `pkgdb`'s version ordering). The one exception to "never compares
//! versions" is the security-repository feed, which must tell which
//! installed sources its pocket has newer uploads of (with `pkgdb`'s dpkg order).

pub mod error;
pub mod feeds;
pub mod model;
pub mod store;

pub use error::{CorruptRow, Error, KeyringProblem, NoSecuritySuite, ParseError, Result};
pub use feeds::fetch::{Fetcher, Source};
pub use feeds::security_repo::{InstalledSource, SecurityRepo, SecurityRepoOptions};
pub use feeds::{Feed, LoadedFeed};
pub use model::{
    Advisory, AdvisoryView, Details, Distro, Family, FeedAdvisory, FeedKind, FeedSource,
    FeedStatus, Severity, Status, StatusRef, UnknownName,
};
pub use store::{PackedAdvisories, Store};
