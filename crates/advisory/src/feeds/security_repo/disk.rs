//! What the security-repository feed keeps on disk under
//! `<cache dir>/security-repo/` besides the download cache: the changelog
//! entries of each upload, read once per (family, source, version)
//! (`changelogs/<family>/<source>/<version>.json`), and the uploads
//! selected from each set of indexes (`uploads/<key>.json`, with their
//! binaries, read only when a changelog must be fetched) beside the compact
//! list of their versions a warm scan reads (`uploads/<key>.versions`: one
//! `<source> <version>` line each under a header carrying the body's
//! SHA256, so it is read without a JSON parser); the verified `InRelease`
//! of each suite is the APT client's (`repo::ReleaseReuse`). Every write is atomic (temp file, fsync, rename), so
//! concurrent scans in other processes see a whole file or none. An entry
//! that fails to parse, does not match its key or its checksum is reported
//! as absent (and removed), so it is read again from the archive.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::select::{Entry, SourceVersions, Uploads};
use crate::error::{Error, Result};
use crate::model::Family;

const FORMAT: u32 = 1;
/// The first word of a `.versions` file; the format number follows it.
const VERSIONS_MAGIC: &str = "drydock-security-versions 1";

/// The changelog knowledge of one upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedChangelog {
    pub format: u32,
    pub family: Family,
    pub source: String,
    pub version: String,
    /// The binary whose `.deb` gave the changelog, and that `.deb`'s SHA256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<(String, String)>,
    /// `None`: no binary of the upload carried a changelog drydock could read.
    pub entries: Option<Vec<Entry>>,
    /// SHA256 (hex) of this record serialized with an empty `checksum`.
    #[serde(default)]
    pub checksum: String,
}

impl CachedChangelog {
    pub fn new(
        family: Family,
        source: &str,
        version: &str,
        from: Option<(String, String)>,
        entries: Option<Vec<Entry>>,
    ) -> CachedChangelog {
        let mut record = CachedChangelog {
            format: FORMAT,
            family,
            source: source.to_string(),
            version: version.to_string(),
            from,
            entries,
            checksum: String::new(),
        };
        record.checksum = record.compute_checksum();
        record
    }

    fn compute_checksum(&self) -> String {
        let mut unsummed = self.clone();
        unsummed.checksum.clear();
        let bytes = serde_json::to_vec(&unsummed).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }

    /// Whether the record is whole and is the one for this key.
    fn is_for(&self, family: Family, source: &str, version: &str) -> bool {
        self.format == FORMAT
            && self.family == family
            && self.source == source
            && self.version == version
            && self.checksum == self.compute_checksum()
    }
}

/// The feed's files under one cache directory.
#[derive(Debug, Clone)]
pub struct Disk {
    root: PathBuf,
}

/// Source names and versions as Debian allows them (no `/`, no leading `.`),
/// so they are safe as path components.
fn safe_component(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('.')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-' | b'~' | b':'))
}

impl Disk {
    pub fn new(cache_dir: &Path) -> Disk {
        Disk {
            root: cache_dir.join("security-repo"),
        }
    }

    fn changelog_path(&self, family: Family, source: &str, version: &str) -> Option<PathBuf> {
        (safe_component(source) && safe_component(version)).then(|| {
            // `:` (epochs) is valid on Linux but not everywhere; `%` never occurs in versions.
            let version = version.replace(':', "%3a");
            self.root
                .join("changelogs")
                .join(family.as_str())
                .join(source)
                .join(format!("{version}.json"))
        })
    }

    /// The cached changelog of an upload; `None` when absent or unusable
    /// (an unusable file is removed so the next read fetches it again).
    pub fn changelog(
        &self,
        family: Family,
        source: &str,
        version: &str,
    ) -> Option<CachedChangelog> {
        let path = self.changelog_path(family, source, version)?;
        let bytes = std::fs::read(&path).ok()?;
        match serde_json::from_slice::<CachedChangelog>(&bytes) {
            Ok(record) if record.is_for(family, source, version) => Some(record),
            _ => {
                tracing::warn!(
                    path = %path.display(),
                    "cached changelog record is damaged or does not match its name; reading it again"
                );
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    pub fn put_changelog(&self, record: &CachedChangelog) -> Result<()> {
        let Some(path) = self.changelog_path(record.family, &record.source, &record.version) else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(record).map_err(|source| Error::Serialize {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &bytes)
    }

    fn uploads_path(&self, key: &str, extension: &str) -> PathBuf {
        let key = hex::encode(Sha256::digest(key.as_bytes()));
        self.root.join("uploads").join(format!("{key}.{extension}"))
    }

    /// The uploads selected from the indexes `key` names (their checksums and
    /// the architecture), so a new process need not decompress and parse them
    /// again. A damaged file reads as absent.
    pub fn uploads(&self, key: &str) -> Option<Uploads> {
        let bytes = std::fs::read(self.uploads_path(key, "json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Stores the uploads of `key` and the compact list of their versions.
    pub fn put_uploads(
        &self,
        key: &str,
        uploads: &Uploads,
        versions: &SourceVersions,
    ) -> Result<()> {
        let path = self.uploads_path(key, "json");
        let bytes = serde_json::to_vec(uploads).map_err(|source| Error::Serialize {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &bytes)?;
        write_atomic(
            &self.uploads_path(key, "versions"),
            &encode_versions(versions),
        )
    }

    /// The versions of the uploads of `key`; `None` when absent or damaged.
    pub fn versions(&self, key: &str) -> Option<SourceVersions> {
        let bytes = std::fs::read(self.uploads_path(key, "versions")).ok()?;
        decode_versions(&bytes)
    }
}

fn encode_versions(versions: &SourceVersions) -> Vec<u8> {
    let mut body = String::new();
    for (source, version) in versions {
        body.push_str(source);
        body.push(' ');
        body.push_str(version);
        body.push('\n');
    }
    let checksum = hex::encode(Sha256::digest(body.as_bytes()));
    format!("{VERSIONS_MAGIC} {checksum}\n{body}").into_bytes()
}

fn decode_versions(bytes: &[u8]) -> Option<SourceVersions> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (header, body) = text.split_once('\n')?;
    let checksum = header.strip_prefix(VERSIONS_MAGIC)?.strip_prefix(' ')?;
    if hex::encode(Sha256::digest(body.as_bytes())) != checksum {
        return None;
    }
    body.lines()
        .map(|line| {
            let (source, version) = line.split_once(' ')?;
            (safe_component(source) && safe_component(version))
                .then(|| (source.to_string(), version.to_string()))
        })
        .collect()
}

/// Writes `bytes` to `path` atomically ([`oci::atomic::write_atomic`]).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    oci::atomic::write_atomic(path, bytes, oci::atomic::Durability::Synced).map_err(Error::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> CachedChangelog {
        CachedChangelog::new(
            Family::Debian,
            "openssl",
            "1:3.0.17-1~deb12u3",
            Some(("openssl".into(), "ab".repeat(32))),
            Some(vec![Entry {
                version: "1:3.0.17-1~deb12u3".into(),
                urgency: Some("medium".into()),
                cves: vec!["CVE-2025-9230".into()],
            }]),
        )
    }

    #[test]
    fn changelogs_round_trip_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::new(dir.path());
        let key = (Family::Debian, "openssl", "1:3.0.17-1~deb12u3");
        assert_eq!(disk.changelog(key.0, key.1, key.2), None);
        disk.put_changelog(&record()).unwrap();
        assert_eq!(disk.changelog(key.0, key.1, key.2), Some(record()));
        // Another key never reads this record.
        assert_eq!(disk.changelog(Family::Ubuntu, key.1, key.2), None);

        // Edited content (a CVE dropped) fails the checksum; the file is removed.
        let path = disk.changelog_path(key.0, key.1, key.2).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("\"CVE-2025-9230\"", "")).unwrap();
        assert_eq!(disk.changelog(key.0, key.1, key.2), None);
        assert!(!path.exists());

        // A record copied under another version's name does not match its key.
        disk.put_changelog(&record()).unwrap();
        let other = disk
            .changelog_path(key.0, key.1, "1:3.0.17-1~deb12u2")
            .unwrap();
        std::fs::copy(&path, &other).unwrap();
        assert_eq!(disk.changelog(key.0, key.1, "1:3.0.17-1~deb12u2"), None);

        // Truncated JSON.
        std::fs::write(&path, b"{\"format\":1,").unwrap();
        assert_eq!(disk.changelog(key.0, key.1, key.2), None);

        // Names that are not Debian source names or versions never touch the disk.
        assert_eq!(disk.changelog_path(key.0, "../x", "1"), None);
        assert_eq!(disk.changelog_path(key.0, "x", "1/2"), None);
    }

    #[test]
    fn versions_round_trip_and_damage_reads_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::new(dir.path());
        let versions: SourceVersions = [
            ("openssl".to_string(), "3.0.17-1~deb12u3".to_string()),
            ("zlib".to_string(), "1:1.2.13.dfsg-1+deb12u1".to_string()),
        ]
        .into();
        assert_eq!(disk.versions("k"), None);
        disk.put_uploads("k", &Uploads::new(), &versions).unwrap();
        assert_eq!(disk.versions("k"), Some(versions.clone()));
        assert_eq!(disk.versions("other key"), None);

        let path = disk.uploads_path("k", "versions");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("deb12u3", "deb12u4")).unwrap();
        assert_eq!(
            disk.versions("k"),
            None,
            "an edited body fails its checksum"
        );
        std::fs::write(&path, &text[..text.len() - 5]).unwrap();
        assert_eq!(disk.versions("k"), None, "a truncated file");
        std::fs::write(
            &path,
            text.replace(VERSIONS_MAGIC, "drydock-security-versions 9"),
        )
        .unwrap();
        assert_eq!(disk.versions("k"), None, "another format");
    }
}
