//! What the configured suites offer, looked up by package name.
//!
//! Owns a disk cache of parsed `Packages` indexes (SQLite, one row per
//! package and per name it provides), keyed by the index file's signed
//! SHA256: a Debian `main` index is ~60 MB decompressed and 60,000
//! packages, and a patch needs a few hundred of them, so an index is
//! decompressed and parsed once and afterwards only the names a plan can
//! reach are read. The cache only ever holds what was verified against a
//! signed `InRelease`. Its schema is versioned (SQLite's `user_version`,
//! through `rusqlite_migration`); a damaged cache, or one a newer drydock
//! wrote, is deleted and built again, since everything in it comes back
//! from the signed indexes.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use repo::apt::packages::{self, IndexPackage};
use rusqlite_migration::{M, Migrations};

use crate::relation;

/// The cache's schema, one migration per version. The first creates what
/// caches written before versioning already have (`IF NOT EXISTS`), so
/// they are kept as they are.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(
        "CREATE TABLE IF NOT EXISTS indexes (sha256 TEXT PRIMARY KEY);
         CREATE TABLE IF NOT EXISTS packages (
             sha256 TEXT NOT NULL, name TEXT NOT NULL, entry TEXT NOT NULL);
         CREATE INDEX IF NOT EXISTS packages_by_name ON packages (sha256, name);",
    )])
}

/// Why the index cache failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexCacheError {
    /// The cache's directory cannot be created.
    #[error("creating the index cache's directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A damaged cache cannot be deleted to be built again.
    #[error("removing the damaged index cache {}", path.display())]
    Remove {
        /// The cache's file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed to open, read or write the cache.
    #[error("index cache {}", path.display())]
    Sqlite {
        /// The cache's file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The cache's schema cannot be brought to this version's.
    #[error("index cache {}: updating its schema", path.display())]
    Schema {
        /// The cache's file.
        path: PathBuf,
        /// The migration's error.
        #[source]
        source: rusqlite_migration::Error,
    },
    /// An entry read back from the cache is not what was stored.
    #[error("index cache {}: a stored entry does not parse", path.display())]
    Entry {
        /// The cache's file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A verified index being stored does not parse as a `Packages` file.
    #[error(transparent)]
    Index(#[from] pkgdb::Error),
}

impl IndexCacheError {
    /// Whether the cache file is damaged, or written by a newer drydock:
    /// what building it again mends (a busy or unreadable file is not).
    fn is_damage(&self) -> bool {
        fn corrupt(error: &rusqlite::Error) -> bool {
            matches!(
                error.sqlite_error_code(),
                Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
            )
        }
        match self {
            IndexCacheError::Sqlite { source, .. } => corrupt(source),
            IndexCacheError::Schema { source, .. } => match source {
                rusqlite_migration::Error::RusqliteError { err, .. } => corrupt(err),
                rusqlite_migration::Error::InvalidUserVersion
                | rusqlite_migration::Error::MigrationDefinition(
                    rusqlite_migration::MigrationDefinitionError::DatabaseTooFarAhead,
                ) => true,
                _ => false,
            },
            _ => false,
        }
    }
}

/// The disk cache of parsed `Packages` indexes, keyed by their signed SHA256.
pub struct IndexCache {
    path: PathBuf,
    db: Mutex<rusqlite::Connection>,
}

/// A package a suite offers.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The package as the index lists it.
    pub package: IndexPackage,
    /// The suite's name (`bookworm-security`).
    pub suite: String,
    /// The archive's base URL, to download from.
    pub base_url: String,
    /// Every index that offers this version (for apt's pins).
    pub offered_by: Vec<Arc<IndexOrigin>>,
}

/// One index of one suite, as the plan reads it.
#[derive(Debug, Clone)]
pub struct IndexId {
    /// The signed SHA256 of the index file fetched.
    pub sha256: String,
    /// The suite, component and architecture it belongs to.
    pub origin: Arc<IndexOrigin>,
}

/// Where an index comes from, as apt's pins see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexOrigin {
    /// The archive's base URL, to download from.
    pub base_url: String,
    /// The host of the URL the image configures (before `--mirror`), which
    /// `Pin: origin` matches.
    pub host: String,
    /// The suite as configured (`dists/<suite>`).
    pub suite: String,
    /// The component (`main`).
    pub component: String,
    /// The dpkg architecture of the index (`amd64`).
    pub architecture: String,
    /// The suite's `Release` field `Origin`.
    pub origin: Option<String>,
    /// The suite's `Release` field `Label`.
    pub label: Option<String>,
    /// The suite's `Release` field `Suite` (apt's archive, `bookworm-security`).
    pub archive: Option<String>,
    /// The suite's `Release` field `Codename`.
    pub codename: Option<String>,
    /// The suite's `Release` field `Version`.
    pub version: Option<String>,
    /// `NotAutomatic: yes` (experimental, backports): apt's priority 1, or
    /// 100 with `ButAutomaticUpgrades: yes`.
    pub not_automatic: bool,
    /// `ButAutomaticUpgrades: yes`, beside `NotAutomatic`.
    pub but_automatic_upgrades: bool,
}

impl IndexCache {
    /// Opens the cache at `path`, creating it (and its directory) when
    /// absent and building it again when it cannot be used as it is.
    pub fn open(path: &Path) -> Result<IndexCache, IndexCacheError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| IndexCacheError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let db = match Self::connect(path) {
            Ok(db) => db,
            Err(error) if error.is_damage() => {
                tracing::warn!(
                    "{}; building the index cache again",
                    oci::error_chain(&error)
                );
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.as_os_str().to_owned();
                    file.push(suffix);
                    let file = PathBuf::from(file);
                    match std::fs::remove_file(&file) {
                        Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
                            return Err(IndexCacheError::Remove { path: file, source });
                        }
                        _ => {}
                    }
                }
                Self::connect(path)?
            }
            Err(error) => return Err(error),
        };
        Ok(IndexCache {
            path: path.to_path_buf(),
            db: Mutex::new(db),
        })
    }

    /// Opens `path` and brings its schema up to date.
    fn connect(path: &Path) -> Result<rusqlite::Connection, IndexCacheError> {
        let sqlite = |source| IndexCacheError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let mut db = rusqlite::Connection::open(path).map_err(sqlite)?;
        db.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            .map_err(sqlite)?;
        migrations()
            .to_latest(&mut db)
            .map_err(|source| IndexCacheError::Schema {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(db)
    }

    fn sqlite(&self) -> impl Fn(rusqlite::Error) -> IndexCacheError + '_ {
        |source| IndexCacheError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the index with this signed SHA256 is in the cache.
    pub fn has(&self, sha256: &str) -> bool {
        self.lock()
            .query_row("SELECT 1 FROM indexes WHERE sha256 = ?1", [sha256], |_| {
                Ok(())
            })
            .is_ok()
    }

    /// Parses a verified, decompressed index and stores it under `sha256`.
    pub fn insert(&self, sha256: &str, file: &str, bytes: &[u8]) -> Result<(), IndexCacheError> {
        let error = self.sqlite();
        let mut db = self.lock();
        let transaction = db.transaction().map_err(&error)?;
        {
            let mut insert = transaction
                .prepare("INSERT INTO packages (sha256, name, entry) VALUES (?1, ?2, ?3)")
                .map_err(&error)?;
            // Paragraph by paragraph: the parsed index never exists whole in
            // memory (60,000 entries of Debian main would be ~100 MiB).
            for chunk in paragraphs_of(bytes) {
                let parsed = packages::parse(file, chunk)?;
                let Some(entry) = parsed.first() else {
                    continue;
                };
                let json = serde_json::to_string(entry).expect("an index entry serialises");
                let mut names = vec![entry.name.clone()];
                if let Some(provides) = &entry.provides
                    && let Ok(groups) = relation::parse(provides)
                {
                    names.extend(groups.into_iter().flatten().map(|r| r.name));
                }
                names.sort();
                names.dedup();
                for name in names {
                    insert.execute((sha256, &name, &json)).map_err(&error)?;
                }
            }
        }
        transaction
            .execute(
                "INSERT OR REPLACE INTO indexes (sha256) VALUES (?1)",
                [sha256],
            )
            .map_err(&error)?;
        transaction.commit().map_err(&error)
    }

    fn lookup(&self, sha256: &str, names: &[&str]) -> Result<Vec<IndexPackage>, IndexCacheError> {
        let error = self.sqlite();
        let db = self.lock();
        let mut query = db
            .prepare_cached("SELECT entry FROM packages WHERE sha256 = ?1 AND name = ?2")
            .map_err(&error)?;
        let mut found = Vec::new();
        for name in names {
            let rows = query
                .query_map((sha256, name), |row| row.get::<_, String>(0))
                .map_err(&error)?;
            for row in rows {
                let json = row.map_err(&error)?;
                let entry: IndexPackage =
                    serde_json::from_str(&json).map_err(|source| IndexCacheError::Entry {
                        path: self.path.clone(),
                        source,
                    })?;
                found.push(entry);
            }
        }
        Ok(found)
    }

    /// The candidates of `indexes` for `names` and every name their
    /// dependencies reach, in the order the indexes are configured; a
    /// version several indexes offer is one candidate, downloaded from the
    /// first and offered by all.
    pub fn closure(
        &self,
        indexes: &[IndexId],
        names: impl IntoIterator<Item = String>,
    ) -> Result<Vec<Candidate>, IndexCacheError> {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut pending: Vec<String> = names.into_iter().collect();
        let mut found = Vec::new();
        let mut positions: HashMap<(String, String, String), usize> = HashMap::new();
        while !pending.is_empty() {
            let batch: Vec<String> = pending
                .drain(..)
                .filter(|n| seen.insert(n.clone()))
                .collect();
            let batch: Vec<&str> = batch.iter().map(String::as_str).collect();
            for index in indexes {
                for package in self.lookup(&index.sha256, &batch)? {
                    for field in [&package.depends, &package.pre_depends]
                        .into_iter()
                        .flatten()
                    {
                        if let Ok(groups) = relation::parse(field) {
                            pending.extend(
                                groups
                                    .into_iter()
                                    .flatten()
                                    .map(|r| r.name)
                                    .filter(|n| !seen.contains(n)),
                            );
                        }
                    }
                    let key = (
                        package.name.clone(),
                        package.version.clone(),
                        package.architecture.clone(),
                    );
                    match positions.get(&key) {
                        Some(&at) => {
                            let candidate: &mut Candidate = &mut found[at];
                            candidate.offered_by.push(index.origin.clone());
                        }
                        None => {
                            positions.insert(key, found.len());
                            found.push(Candidate {
                                package,
                                suite: index.origin.suite.clone(),
                                base_url: index.origin.base_url.clone(),
                                offered_by: vec![index.origin.clone()],
                            });
                        }
                    }
                }
            }
        }
        Ok(found)
    }
}

/// The paragraphs of a control-format file, each with its trailing blank line.
fn paragraphs_of(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        while rest.first() == Some(&b'\n') {
            rest = &rest[1..];
        }
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .windows(2)
            .position(|w| w == b"\n\n")
            .map_or(rest.len(), |i| i + 2);
        let (paragraph, after) = rest.split_at(end);
        rest = after;
        Some(paragraph)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn entry(name: &str, version: &str, extra: &str) -> String {
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\n{extra}Filename: pool/{name}.deb\nSize: 1\nSHA256: {HASH}\n\n"
        )
    }

    #[test]
    fn follows_dependencies_and_provides() {
        let dir = tempfile::tempdir().unwrap();
        let cache = IndexCache::open(&dir.path().join("indexes.db")).unwrap();
        let index = [
            entry("a", "2", "Depends: b (>= 1), mta | c\n"),
            entry("b", "1", "Pre-Depends: d\n"),
            entry("d", "1", ""),
            entry("exim", "4", "Provides: mta\n"),
            entry("unrelated", "1", ""),
        ]
        .concat();
        assert!(!cache.has("s1"));
        cache.insert("s1", "t", index.as_bytes()).unwrap();
        assert!(cache.has("s1"));
        let indexes = [IndexId {
            sha256: "s1".into(),
            origin: Arc::new(IndexOrigin {
                suite: "bookworm".into(),
                base_url: "http://x".into(),
                ..IndexOrigin::default()
            }),
        }];
        let found = cache.closure(&indexes, ["a".to_string()]).unwrap();
        let mut names: Vec<&str> = found.iter().map(|c| c.package.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["a", "b", "d", "exim"]);
        assert!(cache.insert("s2", "t", b"Package: x\n").is_err());
    }

    #[test]
    fn keeps_a_cache_written_before_versioning_and_rebuilds_a_damaged_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("indexes.db");
        {
            // The schema as drydock created it before it was versioned.
            let db = rusqlite::Connection::open(&path).unwrap();
            db.execute_batch(
                "CREATE TABLE indexes (sha256 TEXT PRIMARY KEY);
                 CREATE TABLE packages (sha256 TEXT NOT NULL, name TEXT NOT NULL, entry TEXT NOT NULL);
                 CREATE INDEX packages_by_name ON packages (sha256, name);
                 INSERT INTO indexes (sha256) VALUES ('old');",
            )
            .unwrap();
        }
        let cache = IndexCache::open(&path).unwrap();
        assert!(cache.has("old"));
        drop(cache);
        let version: i64 = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, 1);

        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.path().join(format!("indexes.db{suffix}")));
        }
        let cache = IndexCache::open(&path).unwrap();
        assert!(!cache.has("old"));
        cache
            .insert("s1", "t", entry("a", "1", "").as_bytes())
            .unwrap();
        assert!(cache.has("s1"));
        drop(cache);

        // A newer drydock's cache: built again for this version.
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99;")
            .unwrap();
        let cache = IndexCache::open(&path).unwrap();
        assert!(!cache.has("s1"));
    }
}
