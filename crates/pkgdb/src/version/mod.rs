//! Version ordering for the three package managers drydock reads: dpkg
//! (Debian, Ubuntu), apk (Alpine, Wolfi) and rpm (RHEL family, Fedora, SUSE).
//!
//! Owns parsing version strings (with errors that say what is wrong) and
//! ordering them exactly as the package manager itself does. Each scheme
//! offers a total, infallible `compare(a, b)` on raw strings (as
//! `dpkg --compare-versions`, `apk version -t` and `rpmvercmp` do, they order
//! even malformed input rather than fail) and a `Version` type whose `parse`
//! refuses what the package manager would refuse. Pure: no I/O.

pub mod apk;
pub mod dpkg;
pub mod rpm;

use std::cmp::Ordering;

/// Which package manager's rules order a version string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VersionScheme {
    /// Debian and Ubuntu (`dpkg --compare-versions`).
    Dpkg,
    /// Alpine and Wolfi (`apk version -t`).
    Apk,
    /// The RHEL family, Fedora, SUSE (`rpmvercmp`).
    Rpm,
}

impl VersionScheme {
    /// Orders two version strings by this scheme's rules.
    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            VersionScheme::Dpkg => dpkg::compare(a, b),
            VersionScheme::Apk => apk::compare(a, b),
            VersionScheme::Rpm => rpm::compare(a, b),
        }
    }

    /// Checks that `version` is one this scheme's package manager accepts.
    pub fn validate(self, version: &str) -> Result<(), VersionError> {
        match self {
            VersionScheme::Dpkg => dpkg::Version::parse(version).map(drop),
            VersionScheme::Apk => apk::Version::parse(version).map(drop),
            VersionScheme::Rpm => rpm::Version::parse(version).map(drop),
        }
    }
}

/// A version string a package manager would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {scheme} version {version:?}: {reason}")]
pub struct VersionError {
    /// The package manager whose rules refused it (`dpkg`, `apk`, `rpm`).
    pub scheme: &'static str,
    /// The refused string.
    pub version: String,
    /// What is wrong with it.
    pub reason: String,
}

impl VersionError {
    fn new(scheme: &'static str, version: &str, reason: impl Into<String>) -> VersionError {
        VersionError {
            scheme,
            version: version.to_string(),
            reason: reason.into(),
        }
    }
}
