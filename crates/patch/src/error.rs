//! The patcher's error: each module's own error rolled up, and the
//! refusals of the patch itself.
//!
//! It depends only on the modules whose errors it rolls up, and none of
//! them (nor anything they use) depends on it: the modules that return a
//! `PatchError` (`patcher`, `layer`, `dpkgdb`, `sandbox`) sit above it, so
//! the crate's module graph has no circle.

use std::path::PathBuf;

use crate::admin::AdminError;
use crate::candidates::IndexCacheError;
use crate::plan::PlanError;
use crate::preferences::PreferencesError;
use crate::relation::RelationError;
use crate::sources::{Distribution, SourcesError};

/// Why a patch failed or was refused.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// No plan both fixes what was asked and keeps the image's packages working.
    #[error(transparent)]
    Plan(#[from] Box<PlanError>),
    /// The image's layers or package database cannot be read.
    #[error(transparent)]
    Database(#[from] pkgdb::Error),
    /// A suite, index or package cannot be fetched or verified.
    #[error(transparent)]
    Repository(#[from] repo::Error),
    /// The image's layout or blobs cannot be read or written.
    #[error(transparent)]
    Oci(#[from] oci::Error),
    /// The scan that chooses the packages to upgrade failed.
    #[error(transparent)]
    Scan(#[from] Box<scan::ScanError>),
    /// The image's APT sources cannot be read.
    #[error(transparent)]
    Sources(#[from] SourcesError),
    /// The image's APT preferences cannot be read.
    #[error(transparent)]
    Preferences(#[from] PreferencesError),
    /// The image's dpkg settings (path filters, stat overrides) cannot be read.
    #[error(transparent)]
    DpkgSettings(#[from] AdminError),
    /// The cache of parsed indexes failed.
    #[error(transparent)]
    IndexCache(#[from] IndexCacheError),
    /// Reading or writing a file failed.
    #[error("{}", path.display())]
    Io {
        /// The file (or, for the layer being built, what was being written).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A package holds an entry the patch refuses to unpack (a `..`
    /// component, a device, a link out of the image, ...).
    #[error("{package}: {message}")]
    UnsafePackage {
        /// `name version` of the package.
        package: String,
        /// What is wrong with it.
        message: String,
    },
    /// A downloaded `.deb` cannot be read.
    #[error("{package}")]
    Deb {
        /// `name version` of the package.
        package: String,
        /// Why it cannot be read.
        #[source]
        source: repo::DebError,
    },
    /// A new package's `Replaces` field does not parse.
    #[error("{package}: malformed Replaces field")]
    BadReplaces {
        /// The package's name.
        package: String,
        /// What is wrong with the field.
        #[source]
        source: RelationError,
    },
    /// A new package ships a file another installed package owns, without
    /// declaring `Replaces` on it.
    #[error(
        "{package} {version} ships {path}, which the installed {owner} {owner_version} owns, and \
         does not declare Replaces: {owner}; dpkg refuses to overwrite another package's file, \
         and so does drydock"
    )]
    Takeover {
        /// The new package.
        package: String,
        /// Its version.
        version: String,
        /// The file both ship.
        path: String,
        /// The installed package that owns it.
        owner: String,
        /// The owner's installed version.
        owner_version: String,
    },
    /// The archive keyring for a distribution's suites cannot be used.
    #[error("cannot verify {distribution:?} repositories: the keyring is unusable")]
    Keyring {
        /// The distribution.
        distribution: Distribution,
        /// Why the keyring cannot be used.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A suite's `InRelease` is unsigned or its signature does not verify,
    /// and unsigned suites are not allowed (the image does not mark the
    /// entry `[trusted=yes]`; `PatcherOptions::allow_unsigned` is off).
    #[error(
        "{suite}: drydock refuses unsigned or badly signed suites unless the image marks the \
         entry [trusted=yes]"
    )]
    Unsigned {
        /// The suite (base URL and name).
        suite: String,
        /// The verification's error.
        #[source]
        source: repo::Error,
    },
    /// An image manifest is not JSON.
    #[error("{image}: the manifest is not JSON")]
    ManifestNotJson {
        /// The image, as the user named it.
        image: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// An entry of an image index has a malformed digest.
    #[error("{image}: index entry")]
    IndexEntryDigest {
        /// The image, as the user named it.
        image: String,
        /// What is wrong with the digest.
        #[source]
        source: oci::DigestError,
    },
    /// An image index has no linux platform to patch, or none of those
    /// asked for (`PatcherOptions::platforms`).
    #[error("{image}: the index has no linux platform to patch")]
    NoPlatform {
        /// The image, as the user named it.
        image: String,
    },
    /// The image is a Windows image.
    #[error("{image} is a Windows image; drydock patches Linux images only")]
    Windows {
        /// The image (and platform).
        image: String,
    },
    /// The image has no `os-release`, so its operating system is unknown.
    #[error("{image}: no known operating system (no os-release); nothing to patch")]
    NoOs {
        /// The image (and platform).
        image: String,
    },
    /// The image's operating system is neither Debian nor Ubuntu.
    #[error("{image}: {os} is not supported yet; drydock patches Debian and Ubuntu images")]
    UnsupportedOs {
        /// The image (and platform).
        image: String,
        /// The operating system's name (`PRETTY_NAME`, else `ID`).
        os: String,
    },
    /// The image's `os-release` has no codename, so its suites are unknown.
    #[error("{image}: the release has no codename in os-release, so its suites are unknown")]
    NoCodename {
        /// The image (and platform).
        image: String,
    },
    /// The image's release is past its end of life and patching such
    /// releases is not allowed (`PatcherOptions::allow_eol` is off).
    #[error(
        "{image}: {release} reached its end of life{}; its suites get no more fixes",
        .ended.as_ref().map(|date| format!(" on {date}")).unwrap_or_default()
    )]
    EndOfLife {
        /// The image (and platform).
        image: String,
        /// The release (`PRETTY_NAME`, else the codename).
        release: String,
        /// When its support ended, when known.
        ended: Option<String>,
    },
    /// The image has no dpkg database.
    #[error(
        "{image} has no dpkg database (var/lib/dpkg/status or status.d); nothing can be patched"
    )]
    NoDpkgDatabase {
        /// The image (and platform).
        image: String,
    },
    /// Sandbox mode was asked for and cannot run this image on this host.
    #[error("{image}: {reason}")]
    SandboxUnavailable {
        /// The image (and platform).
        image: String,
        /// Why, in words.
        reason: String,
    },
    /// A task the patch ran on a blocking thread panicked or was cancelled.
    #[error("the {task} task failed")]
    Task {
        /// `layer`, `sandbox`, `candidates` or `index cache`.
        task: &'static str,
        /// The task's failure.
        #[source]
        source: tokio::task::JoinError,
    },
    /// A check of sandbox mode refused a package or the image (the reason
    /// in words).
    #[error("{0}")]
    Refused(String),
    /// Sandbox mode could not run the image's dpkg, or dpkg failed there
    /// (the reason in words, with dpkg's last lines when it ran).
    #[error("maintainer scripts in the sandbox: {0}")]
    Sandbox(String),
    /// Setting up the sandbox's user namespace failed on this host.
    #[error("maintainer scripts in the sandbox: {step}")]
    SandboxSetup {
        /// What was being done.
        step: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl From<PlanError> for PatchError {
    fn from(error: PlanError) -> PatchError {
        PatchError::Plan(Box::new(error))
    }
}

impl From<scan::ScanError> for PatchError {
    fn from(error: scan::ScanError) -> PatchError {
        PatchError::Scan(Box::new(error))
    }
}
