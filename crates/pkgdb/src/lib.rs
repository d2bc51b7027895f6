//! What is installed in a container image: a read-only view of the image's
//! root filesystem built from its layers ([`rootfs`]), the operating system's
//! identity ([`os`]), the installed packages from the dpkg, apk and rpm
//! databases ([`dpkg`], [`apk`], [`rpm`]), version ordering for the three
//! package managers ([`version`]), and end-of-life dates per release
//! ([`eol`]). The readers all produce one model, [`Package`]; [`inventory`]
//! ties them together.
//!
//! Everything is a pure function over bytes except two edges: reading a
//! layer tar from a `std::io::Read` ([`rootfs::scan_layer`]) and the
//! convenience readers of an OCI layout or a directory in [`inventory`].

pub mod apk;
pub mod dpkg;
pub mod eol;
pub mod error;
pub mod inventory;
pub mod os;
mod package;
pub mod rootfs;
pub mod rpm;
pub mod version;

pub use eol::{Date, Lifecycle};
pub use error::{EntryError, Error, HeaderError, ImageError, Result, RpmError};
pub use inventory::{Inventory, PackageDbKind};
pub use os::OsInfo;
pub use package::{Package, PackageKind};
pub use rootfs::{LayerFiles, Rootfs, ScanLimits, Selection};
pub use version::{VersionError, VersionScheme};
