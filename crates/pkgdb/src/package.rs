//! The installed-package model every database reader produces: [`Package`]
//! and the format it came from ([`PackageKind`]).
//!
//! Owns only the model: the dpkg, apk and rpm readers fill it and the
//! inventory gathers it. Never reads or parses anything itself.

use oci::Digest;

use crate::version::VersionScheme;

/// The package format a package came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PackageKind {
    /// A Debian package (dpkg: Debian, Ubuntu, distroless).
    Deb,
    /// An Alpine package (apk: Alpine, Wolfi, Chainguard).
    Apk,
    /// An rpm package (RHEL and its rebuilds, Fedora, Amazon Linux, Azure Linux).
    Rpm,
}

impl PackageKind {
    /// The rules its versions are ordered by.
    pub fn version_scheme(self) -> VersionScheme {
        match self {
            PackageKind::Deb => VersionScheme::Dpkg,
            PackageKind::Apk => VersionScheme::Apk,
            PackageKind::Rpm => VersionScheme::Rpm,
        }
    }
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Package {
    /// The binary package's name (`libssl3`, `musl`, `openssl-libs`).
    pub name: String,
    /// The installed version, in the format's own syntax
    /// (`3.0.11-1~deb12u2+b1`, `1.2.5-r0`, `1:3.0.7-24.el9`).
    pub version: String,
    /// As the database records it (`amd64`, `all`, `x86_64`, `noarch`);
    /// empty when it records none.
    pub architecture: String,
    /// The source package advisories are keyed by.
    pub source_name: String,
    /// The source package's version (differs from `version` for binNMUs and
    /// for binaries built by another source version).
    pub source_version: String,
    /// The database format it was read from, which fixes its version order.
    pub kind: PackageKind,
    /// The diff ID of the layer the package came from; `None` for a directory root.
    pub layer: Option<Digest>,
}

impl Package {
    /// What tells two copies of a database apart: name, version, architecture.
    pub(crate) fn identity(&self) -> (&str, &str, &str) {
        (&self.name, &self.version, &self.architecture)
    }
}
