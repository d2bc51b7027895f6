//! The one error type of `pkgdb`. Every variant names what it concerns (the
//! layer, the file inside the image, the line, the package) and its message
//! says what to do about it. The reasons a reader gives ([`EntryError`],
//! [`RpmError`], [`ImageError`]) are the `source` of the variant that names
//! the file or image: print errors with their chain (e.g. anyhow's `{:#}`).
//!
//! A leaf: it depends only on the version rules' error and on leaf types of
//! other crates, never on the readers that return it.

use std::path::PathBuf;

pub use crate::version::VersionError;

/// `Result` with [`Error`] as its default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading what an image has installed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A package database or identity file that does not follow its format.
    #[error("{file}: line {line}: {message}")]
    Format {
        /// The file inside the image (`var/lib/dpkg/status`, `os-release`).
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },
    /// A package entry that is well-formed text but not a usable package.
    #[error("{file}: package {package}")]
    Package {
        /// The database file inside the image.
        file: String,
        /// The package's name.
        package: String,
        /// What is wrong with it.
        #[source]
        source: EntryError,
    },
    /// A version string its package manager would refuse.
    #[error(transparent)]
    Version(#[from] VersionError),
    /// A layer that cannot be read: bad compression, not a tar, too large.
    #[error("layer {layer}: {message}")]
    Layer {
        /// The layer's digest, or the directory read as one.
        layer: String,
        /// What is wrong with it.
        message: String,
    },
    /// A layer whose bytes stopped being readable part way (corrupt
    /// compression, a truncated tar, a failed read); the cause is the `source`.
    #[error("layer {layer}: {what}")]
    LayerRead {
        /// The layer's digest.
        layer: String,
        /// What was being done (`is not a readable tar archive`).
        what: &'static str,
        /// The reader's error.
        #[source]
        source: std::io::Error,
    },
    /// An rpm database that cannot be read.
    #[error("rpm database {file}")]
    Rpm {
        /// The database file inside the image.
        file: String,
        /// What is wrong with it.
        #[source]
        source: Box<RpmError>,
    },
    /// A cached per-layer scan result that does not decode.
    #[error("cached layer scan: {0}; discard the cache entry and scan the layer again")]
    Cache(String),
    /// An embedded or supplied end-of-life table that does not parse.
    #[error("end-of-life table {file}: line {line}: {message}")]
    Feed {
        /// The table's name (`debian.csv`).
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },
    /// An image in an OCI layout whose manifest or config is not usable.
    #[error("image {image}")]
    Image {
        /// The image, as `oci:DIR:TAG`.
        image: String,
        /// What is wrong with it.
        #[source]
        source: ImageError,
    },
    /// Reading the OCI layout failed (a missing tag, blob or a bad digest).
    #[error(transparent)]
    Oci(#[from] oci::Error),
    /// A file of an unpacked root filesystem that cannot be read.
    #[error("reading {}", path.display())]
    Io {
        /// The file on disk.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Why a well-formed dpkg or apk entry is not a usable package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// A paragraph of dpkg's `status` (not `status.d/`) without `Status`.
    #[error("has no Status field; the status file is corrupt")]
    NoStatus,
    /// An entry without its version field (`Version` for dpkg, `V:` for apk).
    #[error("has no {field}")]
    NoVersion {
        /// The missing field, as the format names it (`Version field`).
        field: &'static str,
    },
    /// A version its package manager would refuse.
    #[error(transparent)]
    Version(Box<VersionError>),
    /// A `Status` value that is not `want flag status`.
    #[error("Status {0:?} does not have the three words \"want flag status\"")]
    StatusWords(String),
    /// A `Status` whose third word is not a state dpkg writes.
    #[error("Status has unknown state {0:?}")]
    UnknownState(String),
    /// A `Source` value that is not `name` or `name (version)`.
    #[error("Source {0:?} is not \"name\" or \"name (version)\"")]
    SourceSyntax(String),
    /// The version in `Source: name (version)` is not a valid dpkg version.
    #[error("Source: {0}")]
    SourceVersion(Box<VersionError>),
}

/// Why an rpm database cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RpmError {
    /// The bytes do not start with SQLite's header.
    #[error("is not a SQLite database")]
    NotSqlite,
    /// SQLite refused the file or it has no usable `Packages` table.
    #[error("the database is corrupt or not an rpm database")]
    Sqlite(#[source] rusqlite::Error),
    /// A row of `Packages` whose header blob is malformed.
    #[error("row {row}")]
    Header {
        /// The row's `hnum`.
        row: i64,
        /// What is wrong with the header.
        #[source]
        source: HeaderError,
    },
    /// A BerkeleyDB (`Packages`) or NDB (`Packages.db`) database.
    #[error(
        "is a BerkeleyDB or NDB rpm database (RHEL/CentOS ≤ 8, Amazon Linux 2, SUSE), \
         which drydock does not read yet; only rpmdb.sqlite (rpm ≥ 4.16) is supported"
    )]
    UnsupportedFormat,
}

/// What is wrong with one rpm header blob. Every offset and count is
/// checked, so corruption is one of these, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The blob ends before a 32-bit field it must hold.
    #[error("header is truncated at byte {at} of {len}")]
    Truncated {
        /// Where the field starts.
        at: usize,
        /// The blob's length.
        len: usize,
    },
    /// The counts in the preamble exceed rpm's own limits.
    #[error("header claims {tags} tags and {data_len} data bytes, beyond rpm's limits")]
    BeyondLimits {
        /// Number of index entries claimed.
        tags: u32,
        /// Size of the data store claimed.
        data_len: u32,
    },
    /// The index and data store claimed are longer than the blob.
    #[error("header claims {claimed} bytes but the blob has {len}")]
    Short {
        /// Bytes the preamble says the header has.
        claimed: usize,
        /// The blob's length.
        len: usize,
    },
    /// An index entry pointing past the data store (or with no values).
    #[error("tag {tag} points outside the data store ({offset})")]
    OutsideData {
        /// The rpm tag number.
        tag: u32,
        /// The offset it gives.
        offset: usize,
    },
    /// A string tag stored with another type.
    #[error("tag {tag} has type {kind}, expected a string")]
    NotString {
        /// The rpm tag number.
        tag: u32,
        /// The type it has.
        kind: u32,
    },
    /// A string running to the end of the data store.
    #[error("tag {tag} is a string without its terminating NUL")]
    Unterminated {
        /// The rpm tag number.
        tag: u32,
    },
    /// A string tag that is not UTF-8.
    #[error("tag {tag} is not valid UTF-8")]
    NotUtf8 {
        /// The rpm tag number.
        tag: u32,
    },
    /// The epoch tag is not one 32-bit integer.
    #[error("tag {tag} (epoch) is not a 32-bit integer")]
    Epoch {
        /// The rpm tag number.
        tag: u32,
    },
    /// A header without a name or a version.
    #[error("header has no name or no version")]
    NoNameOrVersion,
}

/// Why an image's manifest or config cannot be inventoried.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// An index whose entry for this platform is itself an index.
    #[error("the index points at another index")]
    NestedIndex,
    /// A manifest that references no config blob.
    #[error("the manifest has no config")]
    NoConfig,
    /// A config blob that is not JSON.
    #[error("the config is not JSON")]
    ConfigNotJson(#[source] serde_json::Error),
    /// A config without `rootfs.diff_ids`.
    #[error("the config has no rootfs.diff_ids")]
    NoDiffIds,
    /// A `rootfs.diff_ids` entry that is not a string.
    #[error("a diff ID is not a string")]
    DiffIdNotString,
    /// A `rootfs.diff_ids` entry that is not a digest.
    #[error("diff ID")]
    DiffId(#[source] oci::DigestError),
    /// A manifest and config that disagree on the number of layers.
    #[error("the manifest has {layers} layers but the config lists {diff_ids} diff IDs")]
    LayerCount {
        /// Layers in the manifest.
        layers: usize,
        /// Diff IDs in the config.
        diff_ids: usize,
    },
    /// An index without an image for this machine.
    #[error("the index has no {platform} image")]
    NoPlatform {
        /// `linux/ARCH` of this machine.
        platform: String,
    },
    /// An index entry whose digest does not parse.
    #[error("index entry digest")]
    IndexDigest(#[source] oci::DigestError),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    /// A [`Error::Format`] for `file` at `line`.
    pub fn format(file: &str, line: usize, message: impl Into<String>) -> Error {
        Error::Format {
            file: file.to_string(),
            line,
            message: message.into(),
        }
    }
}

#[cfg(test)]
pub(crate) use oci::error_chain as chain;
