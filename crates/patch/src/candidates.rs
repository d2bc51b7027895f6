//! What the configured suites offer, looked up by package name.
//!
//! Owns a disk cache of parsed `Packages` indexes (SQLite, one row per
//! package and per name it provides), keyed by the index file's signed
//! SHA256: a Debian `main` index is ~60 MB decompressed and 60,000
//! packages, and a patch needs a few hundred of them, so an index is
//! decompressed and parsed once and afterwards only the names a plan can
//! reach are read. The cache only ever holds what was verified against a
//! signed `InRelease`; a damaged cache is rebuilt.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use repo::apt::packages::{self, IndexPackage};

use crate::error::PatchError;
use crate::plan::Candidate;
use crate::relation;

pub struct IndexCache {
    db: Mutex<rusqlite::Connection>,
}

fn sql_error(path: &Path) -> impl Fn(rusqlite::Error) -> PatchError {
    let path = path.to_path_buf();
    move |e| PatchError::Io {
        path: path.clone(),
        source: std::io::Error::other(e),
    }
}

/// One index of one suite, as the plan reads it.
#[derive(Debug, Clone)]
pub struct IndexId {
    /// The signed SHA256 of the index file fetched.
    pub sha256: String,
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
    pub component: String,
    pub architecture: String,
    /// The suite's `Release` fields: `Origin`, `Label`, `Suite`, `Codename`, `Version`.
    pub origin: Option<String>,
    pub label: Option<String>,
    pub archive: Option<String>,
    pub codename: Option<String>,
    pub version: Option<String>,
    /// `NotAutomatic: yes` (experimental, backports): apt's priority 1, or
    /// 100 with `ButAutomaticUpgrades: yes`.
    pub not_automatic: bool,
    pub but_automatic_upgrades: bool,
}

impl IndexCache {
    pub fn open(path: &Path) -> Result<IndexCache, PatchError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| PatchError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let db = rusqlite::Connection::open(path).map_err(sql_error(path))?;
        db.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS indexes (sha256 TEXT PRIMARY KEY);
             CREATE TABLE IF NOT EXISTS packages (
                 sha256 TEXT NOT NULL, name TEXT NOT NULL, entry TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS packages_by_name ON packages (sha256, name);",
        )
        .map_err(sql_error(path))?;
        Ok(IndexCache { db: Mutex::new(db) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn has(&self, sha256: &str) -> bool {
        self.lock()
            .query_row("SELECT 1 FROM indexes WHERE sha256 = ?1", [sha256], |_| {
                Ok(())
            })
            .is_ok()
    }

    /// Parses a verified, decompressed index and stores it under `sha256`.
    pub fn insert(&self, sha256: &str, file: &str, bytes: &[u8]) -> Result<(), PatchError> {
        let mut db = self.lock();
        let error = sql_error(Path::new("index cache"));
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

    fn lookup(&self, sha256: &str, names: &[&str]) -> Result<Vec<IndexPackage>, PatchError> {
        let db = self.lock();
        let error = sql_error(Path::new("index cache"));
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
                    serde_json::from_str(&json).map_err(|e| PatchError::Io {
                        path: "index cache".into(),
                        source: std::io::Error::other(e),
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
    ) -> Result<Vec<Candidate>, PatchError> {
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
}
