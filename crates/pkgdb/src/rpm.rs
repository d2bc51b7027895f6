//! The rpm database in its sqlite form (`rpmdb.sqlite`, rpm ≥ 4.16: RHEL 9
//! and its rebuilds, Fedora ≥ 33, Amazon Linux 2023, Azure Linux 3).
//!
//! Owns reading the `Packages` table and parsing each row's header blob.
//! The header parser is our own: the crates on crates.io that read rpm
//! headers either parse whole `.rpm` files (lead + signature + header) or are
//! unmaintained, and the part needed here (the index of tag entries and
//! NUL-terminated strings in the data store) is small. Every offset and
//! count read from a blob is bounds-checked, so a corrupt blob is an error
//! naming the row, never a panic or an out-of-bounds read.
//!
//! The BerkeleyDB (`Packages`) and NDB (`Packages.db`) formats are not read:
//! [`unsupported_format`] names them in a clear error. Never touches the
//! filesystem: the database is loaded from bytes into an in-memory sqlite.

use std::io::Read;

use crate::error::{Error, HeaderError, Result, RpmError};
use crate::package::{Package, PackageKind};

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

/// rpm's own limits (`HEADER_TAGS_MAX`, `HEADER_DATA_MAX`).
const MAX_TAGS: u32 = 0xffff;
const MAX_DATA: u32 = 0x0fff_ffff;

const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

/// The fields of one header drydock uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// `NAME` (`openssl-libs`).
    pub name: String,
    /// `EPOCH`, when the package has one.
    pub epoch: Option<u32>,
    /// `VERSION` (`3.0.7`).
    pub version: String,
    /// `RELEASE` (`24.el9`).
    pub release: String,
    /// `ARCH` (`x86_64`, `noarch`).
    pub arch: Option<String>,
    /// `SOURCERPM` (`openssl-3.0.7-24.el9.src.rpm`).
    pub source_rpm: Option<String>,
}

/// Parses an rpm header blob as stored in the database (no lead, no magic):
/// index length, data length, index entries, data store.
pub fn parse_header(blob: &[u8]) -> Result<Header, HeaderError> {
    let be32 = |at: usize| -> Result<u32, HeaderError> {
        blob.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(HeaderError::Truncated {
                at,
                len: blob.len(),
            })
    };
    let tags = be32(0)?;
    let data_len = be32(4)?;
    if tags == 0 || tags > MAX_TAGS || data_len > MAX_DATA {
        return Err(HeaderError::BeyondLimits { tags, data_len });
    }
    let index_end = 8 + tags as usize * 16;
    let data = blob
        .get(index_end..index_end + data_len as usize)
        .ok_or(HeaderError::Short {
            claimed: index_end + data_len as usize,
            len: blob.len(),
        })?;
    let mut header = Header::default();
    for entry in 0..tags as usize {
        let at = 8 + entry * 16;
        let (tag, kind, offset, count) = (be32(at)?, be32(at + 4)?, be32(at + 8)?, be32(at + 12)?);
        let offset = offset as usize;
        let value = data
            .get(offset..)
            .filter(|_| count > 0)
            .ok_or(HeaderError::OutsideData { tag, offset })?;
        let string = || -> Result<String, HeaderError> {
            if kind != TYPE_STRING && kind != TYPE_I18NSTRING {
                return Err(HeaderError::NotString { tag, kind });
            }
            let end = value
                .iter()
                .position(|&b| b == 0)
                .ok_or(HeaderError::Unterminated { tag })?;
            String::from_utf8(value[..end].to_vec()).map_err(|_| HeaderError::NotUtf8 { tag })
        };
        match tag {
            TAG_NAME => header.name = string()?,
            TAG_VERSION => header.version = string()?,
            TAG_RELEASE => header.release = string()?,
            TAG_ARCH => header.arch = Some(string()?),
            TAG_SOURCERPM => header.source_rpm = Some(string()?),
            TAG_EPOCH => {
                if kind != TYPE_INT32 || value.len() < 4 {
                    return Err(HeaderError::Epoch { tag });
                }
                header.epoch = Some(u32::from_be_bytes([value[0], value[1], value[2], value[3]]));
            }
            _ => {}
        }
    }
    if header.name.is_empty() || header.version.is_empty() {
        return Err(HeaderError::NoNameOrVersion);
    }
    Ok(header)
}

impl Header {
    /// `[epoch:]version-release`, the form rpm and advisories use.
    pub fn evr(&self) -> String {
        let mut evr = match self.epoch {
            Some(epoch) => format!("{epoch}:{}", self.version),
            None => self.version.clone(),
        };
        if !self.release.is_empty() {
            evr.push('-');
            evr.push_str(&self.release);
        }
        evr
    }

    /// The source package name and its `[epoch:]version-release`, from
    /// `SOURCERPM` (`openssl-3.0.7-24.el9.src.rpm`); the binary's own when absent.
    pub fn source(&self) -> (String, String) {
        let parsed = self.source_rpm.as_deref().and_then(|s| {
            let stem = s
                .strip_suffix(".src.rpm")
                .or_else(|| s.strip_suffix(".nosrc.rpm"))?;
            let (rest, release) = stem.rsplit_once('-')?;
            let (name, version) = rest.rsplit_once('-')?;
            let source = Header {
                name: name.to_string(),
                epoch: self.epoch,
                version: version.to_string(),
                release: release.to_string(),
                ..Header::default()
            };
            Some((source.name.clone(), source.evr()))
        });
        parsed.unwrap_or_else(|| (self.name.clone(), self.evr()))
    }
}

/// The installed packages of an `rpmdb.sqlite`. `file` names it in errors.
/// `gpg-pubkey` pseudo-packages (imported signing keys) are left out.
pub fn parse_sqlite(file: &str, bytes: &[u8]) -> Result<Vec<Package>> {
    let err = |source: RpmError| Error::Rpm {
        file: file.to_string(),
        source: Box::new(source),
    };
    if bytes.len() < 100 || !bytes.starts_with(SQLITE_MAGIC) {
        return Err(err(RpmError::NotSqlite));
    }
    // Bytes 18 and 19 say "WAL mode" (2) in a database rpm left in WAL
    // mode; an in-memory database must be read in rollback mode (1).
    let reader = (&bytes[..18]).chain(&[1u8, 1][..]).chain(&bytes[20..]);
    let sql = |e: rusqlite::Error| err(RpmError::Sqlite(e));
    let mut db = rusqlite::Connection::open_in_memory().map_err(sql)?;
    db.deserialize_read_exact(rusqlite::MAIN_DB, reader, bytes.len(), true)
        .map_err(sql)?;
    let mut statement = db
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .map_err(sql)?;
    let mut rows = statement.query([]).map_err(sql)?;
    let mut packages = Vec::new();
    while let Some(row) = rows.next().map_err(sql)? {
        let hnum: i64 = row.get(0).map_err(sql)?;
        let blob: Vec<u8> = row.get(1).map_err(sql)?;
        let header =
            parse_header(&blob).map_err(|source| err(RpmError::Header { row: hnum, source }))?;
        if header.name == "gpg-pubkey" {
            continue;
        }
        let (source_name, source_version) = header.source();
        packages.push(Package {
            version: header.evr(),
            architecture: header.arch.clone().unwrap_or_default(),
            name: header.name,
            source_name,
            source_version,
            kind: PackageKind::Rpm,
            layer: None,
        });
    }
    Ok(packages)
}

/// The error for an rpm database in a format drydock does not read.
pub fn unsupported_format(file: &str) -> Error {
    Error::Rpm {
        file: file.to_string(),
        source: Box::new(RpmError::UnsupportedFormat),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a header blob from (tag, type, data) entries.
    pub(crate) fn header_blob(entries: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, kind, value) in entries {
            if *kind == TYPE_INT32 {
                while data.len() % 4 != 0 {
                    data.push(0);
                }
            }
            index.extend(tag.to_be_bytes());
            index.extend(kind.to_be_bytes());
            index.extend((data.len() as u32).to_be_bytes());
            index.extend(1u32.to_be_bytes());
            data.extend(value);
        }
        let mut blob = (entries.len() as u32).to_be_bytes().to_vec();
        blob.extend((data.len() as u32).to_be_bytes());
        blob.extend(index);
        blob.extend(data);
        blob
    }

    fn s(text: &str) -> Vec<u8> {
        let mut v = text.as_bytes().to_vec();
        v.push(0);
        v
    }

    pub(crate) fn openssl_blob() -> Vec<u8> {
        header_blob(&[
            (TAG_NAME, TYPE_STRING, s("openssl-libs")),
            (TAG_VERSION, TYPE_STRING, s("3.0.7")),
            (TAG_RELEASE, TYPE_STRING, s("24.el9")),
            (TAG_EPOCH, TYPE_INT32, 1u32.to_be_bytes().to_vec()),
            (TAG_ARCH, TYPE_STRING, s("x86_64")),
            (
                TAG_SOURCERPM,
                TYPE_STRING,
                s("openssl-3.0.7-24.el9.src.rpm"),
            ),
        ])
    }

    #[test]
    fn parses_a_header() {
        let header = parse_header(&openssl_blob()).unwrap();
        assert_eq!(header.evr(), "1:3.0.7-24.el9");
        assert_eq!(
            header.source(),
            ("openssl".to_string(), "1:3.0.7-24.el9".to_string())
        );
        assert_eq!(header.arch.as_deref(), Some("x86_64"));
    }

    #[test]
    fn refuses_corrupt_headers_without_panicking() {
        let blob = openssl_blob();
        for end in 0..blob.len() {
            assert!(parse_header(&blob[..end]).is_err(), "truncated at {end}");
        }
        let mut bad_offset = blob.clone();
        bad_offset[16..20].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        assert!(matches!(
            parse_header(&bad_offset),
            Err(HeaderError::OutsideData { .. })
        ));
        let mut huge = blob.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            parse_header(&huge),
            Err(HeaderError::BeyondLimits { .. })
        ));
        let unterminated = header_blob(&[(TAG_NAME, TYPE_STRING, b"abc".to_vec())]);
        assert_eq!(
            parse_header(&unterminated),
            Err(HeaderError::Unterminated { tag: TAG_NAME })
        );
        for flip in 0..blob.len() {
            let mut corrupt = blob.clone();
            corrupt[flip] ^= 0xff;
            let _ = parse_header(&corrupt);
        }
    }

    #[test]
    fn reads_an_sqlite_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rpmdb.sqlite");
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);").unwrap();
        let key = header_blob(&[
            (TAG_NAME, TYPE_STRING, s("gpg-pubkey")),
            (TAG_VERSION, TYPE_STRING, s("fd431d51")),
        ]);
        for blob in [openssl_blob(), key] {
            db.execute("INSERT INTO Packages (blob) VALUES (?1)", [blob])
                .unwrap();
        }
        db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes[18], 2, "the test database is in WAL mode");
        let packages = parse_sqlite("rpmdb.sqlite", &bytes).unwrap();
        assert_eq!(packages.len(), 1);
        assert_eq!(packages[0].name, "openssl-libs");
        assert_eq!(packages[0].source_name, "openssl");
        assert!(
            crate::error::chain(&parse_sqlite("rpmdb.sqlite", b"not a database").unwrap_err())
                .contains("not a SQLite")
        );
        let mut truncated = bytes[..bytes.len() / 2].to_vec();
        truncated[50] ^= 0x55;
        let _ = parse_sqlite("rpmdb.sqlite", &truncated);
    }
}
