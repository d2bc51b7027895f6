//! The local advisory store: one SQLite file (WAL) holding every feed's
//! advisories and where and when each feed came from. Owns the schema, its
//! version and the migration from older versions; never parses feeds or
//! touches the network.
//!
//! Schema version 2 (`PRAGMA user_version`, kept by `rusqlite_migration`:
//! each migration below is one version; a newer database is refused):
//! - `feeds(id, name UNIQUE, kind, location, fetched_at, modified_at, sha256, advisories)`:
//!   provenance, one row per feed;
//! - `packages(id, family, package, feed_id, texts)`, unique on
//!   `(family, package, feed_id)`, indexed by `feed_id` for replacement: one
//!   row per source package and feed, with the long texts (description,
//!   aliases) of that feed's records for it, once per record ([`packed`]);
//! - `releases(id, package_id, release, advisories)`, unique on
//!   `(package_id, release)`: that package's advisories in one release,
//!   ordered by id, packed into one blob with everything matching reads and
//!   reports (status, range, severity, title, URLs). The scanner's lookup of
//!   a package is one small row per feed ([`Store::packed_advisories_for_many`]);
//!   the full model adds the package's texts ([`Store::advisories_for`]).
//!
//! Version 1 kept one row per advisory (`advisories`, joined to `details`);
//! opening such a store rewrites it into version 2 in one transaction, the
//! data unchanged. A fresh file goes through both migrations (creating
//! version 1's empty tables, then rewriting them), so every database took
//! the same path to the current schema.
//!
//! Replacing a feed is one transaction: readers (other processes too) see
//! the old feed or the new one, never a mix, and a failed import leaves the
//! old one in place.

mod packed;

pub use packed::PackedAdvisories;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, Row, Transaction, TransactionBehavior, params};
use rusqlite_migration::{HookError, HookResult, M, Migrations};

use crate::error::{CorruptRow, Error, Result};
use crate::feeds::LoadedFeed;
use crate::model::{
    Advisory, Details, Distro, Family, FeedAdvisory, FeedSource, FeedStatus, Status,
};

/// The schema version this build reads and writes: the number of migrations.
pub const SCHEMA_VERSION: i64 = 2;

/// Version 1: the feeds, and one row per advisory joined to its record's texts.
const SCHEMA_1: &str = "
CREATE TABLE feeds (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    location TEXT NOT NULL,
    fetched_at INTEGER NOT NULL,
    modified_at INTEGER,
    sha256 TEXT NOT NULL,
    advisories INTEGER NOT NULL
);
CREATE TABLE details (
    id INTEGER PRIMARY KEY,
    feed_id INTEGER NOT NULL,
    title TEXT,
    description TEXT,
    aliases TEXT NOT NULL,
    urls TEXT NOT NULL
);
CREATE INDEX details_by_feed ON details(feed_id);
CREATE TABLE advisories (
    feed_id INTEGER NOT NULL,
    family TEXT NOT NULL,
    release TEXT NOT NULL,
    package TEXT NOT NULL,
    vulnerability TEXT NOT NULL,
    status TEXT NOT NULL,
    fixed_version TEXT,
    introduced TEXT,
    last_affected TEXT,
    severity TEXT NOT NULL,
    severity_source TEXT,
    details_id INTEGER NOT NULL
);
CREATE INDEX advisories_by_package ON advisories(family, release, package);
CREATE INDEX advisories_by_feed ON advisories(feed_id);
";

/// Version 2's tables (its migration then moves version 1's rows into them
/// and drops version 1's). Rowid tables with separate key indexes, not `WITHOUT ROWID`: blobs run
/// to tens of KiB, and in a `WITHOUT ROWID` table whole rows sit in the
/// b-tree's interior cells, so every lookup would read other rows'
/// overflowing blobs while it descends (measured: 8× the bytes).
const PACKAGES_TABLES: &str = "
CREATE TABLE packages (
    id INTEGER PRIMARY KEY,
    family TEXT NOT NULL,
    package TEXT NOT NULL,
    feed_id INTEGER NOT NULL,
    texts BLOB NOT NULL
);
CREATE UNIQUE INDEX packages_by_package ON packages(family, package, feed_id);
CREATE INDEX packages_by_feed ON packages(feed_id);
CREATE TABLE releases (
    id INTEGER PRIMARY KEY,
    package_id INTEGER NOT NULL,
    release TEXT NOT NULL,
    advisories BLOB NOT NULL
);
CREATE UNIQUE INDEX releases_by_package ON releases(package_id, release);
";

/// One row per feed, in key order (by feed id): callers order by feed name
/// (an `ORDER BY` here would copy every blob through a sorter).
const SELECT_PACKED: &str = "
SELECT f.name, r.advisories
FROM packages p
JOIN feeds f ON f.id = p.feed_id
JOIN releases r ON r.package_id = p.id AND r.release = ?3
WHERE p.family = ?1 AND p.package = ?2";

/// [`SELECT_PACKED`] with the package's texts.
const SELECT_FULL: &str = "
SELECT f.name, r.advisories, p.texts
FROM packages p
JOIN feeds f ON f.id = p.feed_id
JOIN releases r ON r.package_id = p.id AND r.release = ?3
WHERE p.family = ?1 AND p.package = ?2";

/// The advisory database, open.
pub struct Store {
    conn: Connection,
    path: Arc<Path>,
}

impl Store {
    /// Opens the store at `path`, creating it (and its directory) if missing.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        }
        let sqlite = sqlite_error(path);
        let mut conn = Connection::open(path).map_err(sqlite)?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sqlite_error(path))?;
        // Several processes may open (and create) the same file at once:
        // switching a fresh file to WAL and the first migration can answer
        // SQLITE_BUSY at once, without waiting out the busy timeout.
        while_busy(|| conn.pragma_update(None, "journal_mode", "WAL"))
            .map_err(sqlite_error(path))?;
        // The data can always be fetched again: consistency matters, the last
        // transaction's durability after a power cut does not.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite_error(path))?;
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            let migrated = migrate(&mut conn, path);
            let busy = match &migrated {
                Err(Error::Sqlite { source, .. }) => is_busy(source),
                Err(Error::Migration { source, .. }) => matches!(
                    source,
                    rusqlite_migration::Error::RusqliteError { err, .. } if is_busy(err)
                ),
                _ => false,
            };
            if !busy || std::time::Instant::now() >= deadline {
                break migrated?;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Store {
            conn,
            path: Arc::from(path),
        })
    }

    /// Opens an existing store; a missing one is an error that says how to make it.
    pub fn open_existing(path: &Path) -> Result<Store> {
        if !path.exists() {
            return Err(Error::NoDatabase {
                path: path.to_path_buf(),
            });
        }
        Store::open(path)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces each feed's advisories and provenance, all feeds in one
    /// transaction. Returns the stored feeds' status.
    pub fn replace_feeds(&mut self, feeds: &[LoadedFeed]) -> Result<Vec<FeedStatus>> {
        let sqlite = sqlite_error(&self.path);
        let tx = self.conn.transaction().map_err(&sqlite)?;
        for feed in feeds {
            replace_feed(&tx, feed).map_err(&sqlite)?;
        }
        tx.commit().map_err(&sqlite)?;
        Ok(feeds
            .iter()
            .map(|feed| FeedStatus {
                source: feed.source.clone(),
                advisories: feed.advisories.len() as u64,
            })
            .collect())
    }

    /// Every stored advisory for source package `package` of `distro`, from
    /// every feed, ordered by vulnerability id then feed.
    pub fn advisories_for(&self, distro: &Distro, package: &str) -> Result<Vec<FeedAdvisory>> {
        let mut statement = self.prepare(SELECT_FULL)?;
        self.read_package(&mut statement, distro, package)
    }

    /// [`Store::advisories_for`] for many packages, read from one snapshot.
    /// Packages without advisories are absent from the map.
    pub fn advisories_for_many(
        &self,
        distro: &Distro,
        packages: &[&str],
    ) -> Result<BTreeMap<String, Vec<FeedAdvisory>>> {
        let snapshot = self
            .conn
            .unchecked_transaction()
            .map_err(sqlite_error(&self.path))?;
        let mut statement = self.prepare(SELECT_FULL)?;
        let mut found = BTreeMap::new();
        for package in packages {
            let advisories = self.read_package(&mut statement, distro, package)?;
            if !advisories.is_empty() {
                found.insert(package.to_string(), advisories);
            }
        }
        drop(statement);
        snapshot.finish().map_err(sqlite_error(&self.path))?;
        Ok(found)
    }

    /// What [`Store::advisories_for_many`] reads, left packed and without the
    /// long texts: per package with advisories for `distro`, one
    /// [`PackedAdvisories`] per feed, by feed name. For readers that look at
    /// many advisories briefly (the scanner matches thousands and reports a
    /// few): nothing is decoded here.
    pub fn packed_advisories_for_many(
        &self,
        distro: &Distro,
        packages: &[&str],
    ) -> Result<BTreeMap<String, Vec<PackedAdvisories>>> {
        let sqlite = sqlite_error(&self.path);
        let snapshot = self.conn.unchecked_transaction().map_err(&sqlite)?;
        let mut statement = self.prepare(SELECT_PACKED)?;
        let mut found = BTreeMap::new();
        for package in packages {
            let mut rows = statement
                .query(params![distro.family.as_str(), package, distro.release])
                .map_err(&sqlite)?;
            let mut feeds = Vec::new();
            while let Some(row) = rows.next().map_err(&sqlite)? {
                feeds.push(PackedAdvisories::new(
                    row.get(0).map_err(&sqlite)?,
                    row.get(1).map_err(&sqlite)?,
                    Arc::clone(&self.path),
                ));
            }
            if !feeds.is_empty() {
                feeds.sort_by(|a, b| a.feed().cmp(b.feed()));
                found.insert(package.to_string(), feeds);
            }
        }
        drop(statement);
        snapshot.finish().map_err(&sqlite)?;
        Ok(found)
    }

    /// `sql`, prepared. Deliberately not from rusqlite's statement cache:
    /// returning a statement there clears its bindings, which makes SQLite
    /// compile it again on its next use (~30 µs a lookup).
    fn prepare(&self, sql: &str) -> Result<rusqlite::Statement<'_>> {
        self.conn.prepare(sql).map_err(sqlite_error(&self.path))
    }

    /// One package's advisories through a prepared [`SELECT_FULL`].
    fn read_package(
        &self,
        statement: &mut rusqlite::Statement,
        distro: &Distro,
        package: &str,
    ) -> Result<Vec<FeedAdvisory>> {
        let mut rows = statement
            .query(params![distro.family.as_str(), package, distro.release])
            .map_err(sqlite_error(&self.path))?;
        // (feed name, that feed's advisories in id order), one per feed.
        let mut feeds: Vec<(String, Vec<FeedAdvisory>)> = Vec::new();
        while let Some(row) = rows.next().map_err(sqlite_error(&self.path))? {
            // Read in place: the blobs are decoded without being copied out first.
            let (feed, found) = (|| {
                let feed = row.get_ref(0)?.as_str()?;
                let advisories = row.get_ref(1)?.as_blob()?;
                let texts = row.get_ref(2)?.as_blob()?;
                let found = packed::decode(advisories, texts, distro, package, feed);
                Ok((feed.to_string(), found))
            })()
            .map_err(sqlite_error(&self.path))?;
            let found = found.map_err(|source| Error::Corrupt {
                path: self.path.to_path_buf(),
                row: format!("{package} ({distro}), feed {feed}"),
                source: Box::new(source),
            })?;
            feeds.push((feed, found));
        }
        if feeds.len() == 1 {
            return Ok(feeds.pop().map(|(_, found)| found).unwrap_or_default());
        }
        // Feeds by name, then a stable sort by id: (id, feed, the feed's own order).
        feeds.sort_by(|a, b| a.0.cmp(&b.0));
        let mut advisories: Vec<FeedAdvisory> =
            feeds.into_iter().flat_map(|(_, found)| found).collect();
        advisories.sort_by(|a, b| a.advisory.id.cmp(&b.advisory.id));
        Ok(advisories)
    }

    /// The stored feeds, by name.
    pub fn feeds(&self) -> Result<Vec<FeedStatus>> {
        let sqlite = sqlite_error(&self.path);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT name, kind, location, fetched_at, modified_at, sha256, advisories
                 FROM feeds ORDER BY name",
            )
            .map_err(&sqlite)?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, i64>(6)?,
                ))
            })
            .map_err(&sqlite)?;
        let mut feeds = Vec::new();
        for row in rows {
            let (name, kind, location, fetched_at, modified_at, sha256, advisories) =
                row.map_err(&sqlite)?;
            let kind = kind.parse().map_err(|e| Error::Corrupt {
                path: self.path.to_path_buf(),
                row: format!("feed {name}"),
                source: Box::new(CorruptRow::Name(e)),
            })?;
            feeds.push(FeedStatus {
                source: FeedSource {
                    name,
                    kind,
                    location,
                    fetched_at,
                    modified_at,
                    sha256,
                },
                advisories: advisories.max(0) as u64,
            });
        }
        Ok(feeds)
    }
}

fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |source| Error::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// Brings the schema to [`SCHEMA_VERSION`]: creates it in a fresh file,
/// rewrites a version 1 store; refuses a newer one.
/// How long opening the store waits for other processes' locks.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether SQLite answered that another connection holds the lock.
fn is_busy(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
}

/// Runs `work` again while SQLite answers busy without waiting (a fresh
/// file's journal mode switch), up to [`BUSY_TIMEOUT`].
fn while_busy<T>(mut work: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match work() {
            Err(error) if is_busy(&error) && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            done => return done,
        }
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    // The version 1 → 2 rewrite's own error: the migration library carries a
    // hook's error as text only, so the typed one is kept here.
    let failure: Arc<Mutex<Option<Error>>> = Arc::default();
    let rewrite = {
        let (failure, path) = (Arc::clone(&failure), path.to_path_buf());
        move |tx: &Transaction| -> HookResult {
            migrate_from_1(tx, &path).map_err(|error| {
                let message = error.to_string();
                *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
                HookError::Hook(message)
            })
        }
    };
    let migrations = Migrations::new(vec![
        M::up(SCHEMA_1).comment("version 1: a row per advisory"),
        M::up_with_hook(PACKAGES_TABLES, rewrite)
            .comment("version 2: advisories packed per source package and release"),
    ]);
    // IMMEDIATE: two processes opening a fresh file do not both create it
    // (the second waits, then finds the tables made; see below).
    conn.set_transaction_behavior(TransactionBehavior::Immediate);
    let migrated = migrations.to_latest(conn);
    conn.set_transaction_behavior(TransactionBehavior::Deferred);
    let version = |conn: &Connection| -> Result<i64> {
        conn.pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sqlite_error(path))
    };
    match migrated {
        Ok(()) => Ok(()),
        Err(rusqlite_migration::Error::MigrationDefinition(
            rusqlite_migration::MigrationDefinitionError::DatabaseTooFarAhead,
        )) => Err(Error::NewerSchema {
            path: path.to_path_buf(),
            found: version(conn)?,
            supported: SCHEMA_VERSION,
        }),
        // Another process brought the file to this version between our
        // reading its version and our write transaction.
        Err(_) if version(conn)? == SCHEMA_VERSION => Ok(()),
        Err(source) => Err(failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| Error::Migration {
                path: path.to_path_buf(),
                source,
            })),
    }
}

/// Version 1 → 2: packs the `advisories` rows (with their `details`) into
/// `packages` and `releases`, one (family, package, feed) at a time, then
/// drops the old tables.
fn migrate_from_1(tx: &Transaction, path: &Path) -> Result<()> {
    let sqlite = sqlite_error(path);
    let mut select = tx
        .prepare(
            "SELECT a.feed_id, a.family, a.package, a.release, a.vulnerability, a.status,
                    a.fixed_version, a.introduced, a.last_affected, a.severity,
                    a.severity_source, a.details_id, d.title, d.description, d.aliases, d.urls
             FROM advisories a JOIN details d ON d.id = a.details_id
             ORDER BY a.feed_id, a.family, a.package, a.rowid",
        )
        .map_err(&sqlite)?;
    let mut rows = select.query([]).map_err(&sqlite)?;
    // One group: (feed_id, family, package), its advisories and their shared details.
    let mut group: Option<(i64, Family, String)> = None;
    let mut advisories: Vec<Advisory> = Vec::new();
    let mut details: HashMap<i64, Arc<Details>> = HashMap::new();
    let flush = |group: &(i64, Family, String), advisories: &mut Vec<Advisory>| {
        let (feed_id, family, package) = group;
        let written = insert_package(
            tx,
            *feed_id,
            family.as_str(),
            package,
            &advisories.iter().collect::<Vec<_>>(),
        );
        advisories.clear();
        written
    };
    while let Some(row) = rows.next().map_err(&sqlite)? {
        let key: (i64, String, String) = (
            row.get(0).map_err(&sqlite)?,
            row.get(1).map_err(&sqlite)?,
            row.get(2).map_err(&sqlite)?,
        );
        let same = group.as_ref().is_some_and(|(feed, family, package)| {
            (*feed, family.as_str(), package.as_str()) == (key.0, key.1.as_str(), key.2.as_str())
        });
        if !same {
            if let Some(done) = &group {
                flush(done, &mut advisories).map_err(&sqlite)?;
            }
            details.clear();
            let family = key.1.parse().map_err(|e| Error::Corrupt {
                path: path.to_path_buf(),
                row: format!("{} (version 1)", key.2),
                source: Box::new(CorruptRow::Name(e)),
            })?;
            group = Some((key.0, family, key.2));
        }
        let Some((_, family, package)) = &group else {
            continue;
        };
        let advisory =
            read_v1_row(row, *family, package, &mut details).map_err(|source| Error::Corrupt {
                path: path.to_path_buf(),
                row: format!("{package} ({family}, version 1)"),
                source: Box::new(source),
            })?;
        advisories.push(advisory);
    }
    if let Some(done) = &group {
        flush(done, &mut advisories).map_err(&sqlite)?;
    }
    drop(rows);
    drop(select);
    tx.execute_batch("DROP TABLE advisories; DROP TABLE details;")
        .map_err(&sqlite)
}

/// Stores one source package's advisories from one feed: its texts row and
/// a row per release.
fn insert_package(
    tx: &Transaction,
    feed_id: i64,
    family: &str,
    package: &str,
    advisories: &[&Advisory],
) -> rusqlite::Result<()> {
    let packed = packed::encode(advisories);
    let package_id: i64 = tx
        .prepare_cached(
            "INSERT INTO packages (family, package, feed_id, texts) VALUES (?1, ?2, ?3, ?4)
             RETURNING id",
        )?
        .query_row(params![family, package, feed_id, packed.texts], |row| {
            row.get(0)
        })?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO releases (package_id, release, advisories) VALUES (?1, ?2, ?3)",
    )?;
    for (release, advisories) in packed.releases {
        insert.execute(params![package_id, release, advisories])?;
    }
    Ok(())
}

fn replace_feed(tx: &Transaction, feed: &LoadedFeed) -> rusqlite::Result<()> {
    let source = &feed.source;
    let feed_id: i64 = tx.query_row(
        "INSERT INTO feeds (name, kind, location, fetched_at, modified_at, sha256, advisories)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, location = excluded.location,
             fetched_at = excluded.fetched_at, modified_at = excluded.modified_at,
             sha256 = excluded.sha256, advisories = excluded.advisories
         RETURNING id",
        params![
            source.name,
            source.kind.as_str(),
            source.location,
            source.fetched_at,
            source.modified_at,
            source.sha256,
            feed.advisories.len() as i64,
        ],
        |row| row.get(0),
    )?;
    tx.execute(
        "DELETE FROM releases WHERE package_id IN (SELECT id FROM packages WHERE feed_id = ?1)",
        [feed_id],
    )?;
    tx.execute("DELETE FROM packages WHERE feed_id = ?1", [feed_id])?;
    // Grouped by (family, package), in the feed's order within a group;
    // inserted in key order, which is the table's.
    let mut packages: BTreeMap<(&str, &str), Vec<&Advisory>> = BTreeMap::new();
    for advisory in &feed.advisories {
        packages
            .entry((advisory.distro.family.as_str(), &advisory.package))
            .or_default()
            .push(advisory);
    }
    for ((family, package), advisories) in packages {
        insert_package(tx, feed_id, family, package, &advisories)?;
    }
    Ok(())
}

/// One row of version 1's `advisories` joined to `details`, as
/// [`migrate_from_1`] selects it; advisories with the same `details_id`
/// share one [`Details`]. `Err` says what could not be read back.
fn read_v1_row(
    row: &Row,
    family: Family,
    package: &str,
    details: &mut HashMap<i64, Arc<Details>>,
) -> std::result::Result<Advisory, CorruptRow> {
    let text = |column: usize| -> std::result::Result<Option<String>, CorruptRow> {
        row.get(column)
            .map_err(|source| CorruptRow::Column { column, source })
    };
    let required = |column: usize| -> std::result::Result<String, CorruptRow> {
        text(column)?.ok_or(CorruptRow::Null { column })
    };
    let list = |column: usize| -> std::result::Result<Vec<String>, CorruptRow> {
        serde_json::from_str(&required(column)?)
            .map_err(|source| CorruptRow::List { column, source })
    };
    let id = required(4)?;
    let status_name = required(5)?;
    let status = Status::from_parts(&status_name, text(6)?).ok_or_else(|| CorruptRow::Status {
        id: id.clone(),
        status: format!("{status_name:?}"),
    })?;
    let details_id: i64 = row
        .get(11)
        .map_err(|source| CorruptRow::Column { column: 11, source })?;
    let details = match details.get(&details_id) {
        Some(shared) => Arc::clone(shared),
        None => {
            let read = Arc::new(Details {
                title: text(12)?,
                description: text(13)?,
                aliases: list(14)?,
                urls: list(15)?,
            });
            details.insert(details_id, Arc::clone(&read));
            read
        }
    };
    Ok(Advisory {
        distro: Distro::new(family, required(3)?),
        status,
        introduced: text(7)?,
        last_affected: text(8)?,
        severity: required(9)?.parse()?,
        severity_source: text(10)?,
        details,
        id,
        package: package.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Version 2's schema exactly as drydock wrote it before its versions
    /// were kept by `rusqlite_migration`.
    const WRITTEN_BEFORE: &str = "
        CREATE TABLE feeds (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL, location TEXT NOT NULL, fetched_at INTEGER NOT NULL,
            modified_at INTEGER, sha256 TEXT NOT NULL, advisories INTEGER NOT NULL);
        CREATE TABLE packages (id INTEGER PRIMARY KEY, family TEXT NOT NULL,
            package TEXT NOT NULL, feed_id INTEGER NOT NULL, texts BLOB NOT NULL);
        CREATE UNIQUE INDEX packages_by_package ON packages(family, package, feed_id);
        CREATE INDEX packages_by_feed ON packages(feed_id);
        CREATE TABLE releases (id INTEGER PRIMARY KEY, package_id INTEGER NOT NULL,
            release TEXT NOT NULL, advisories BLOB NOT NULL);
        CREATE UNIQUE INDEX releases_by_package ON releases(package_id, release);
        INSERT INTO feeds VALUES (7, 'debian-tracker', 'tracker', 'x', 1, NULL, 'ab', 0);
        PRAGMA user_version = 2;";

    fn schema(path: &Path) -> Vec<(String, String)> {
        let conn = Connection::open(path).unwrap();
        let mut statement = conn
            .prepare("SELECT type, name FROM sqlite_schema ORDER BY type, name")
            .unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn a_version_2_database_opens_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("advisories.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(WRITTEN_BEFORE)
            .unwrap();
        let before = schema(&path);
        let store = Store::open(&path).unwrap();
        let feeds = store.feeds().unwrap();
        assert_eq!(feeds.len(), 1);
        assert_eq!(feeds[0].source.name, "debian-tracker");
        drop(store);
        assert_eq!(schema(&path), before);
    }

    #[test]
    fn a_fresh_database_gets_version_2s_tables_only() {
        let dir = tempfile::tempdir().unwrap();
        let written_before = dir.path().join("before.db");
        Connection::open(&written_before)
            .unwrap()
            .execute_batch(WRITTEN_BEFORE)
            .unwrap();
        let fresh = dir.path().join("fresh.db");
        drop(Store::open(&fresh).unwrap());
        assert_eq!(schema(&fresh), schema(&written_before));
        let version: i64 = Connection::open(&fresh)
            .unwrap()
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        // Opening again changes nothing.
        drop(Store::open(&fresh).unwrap());
        assert_eq!(schema(&fresh), schema(&written_before));
    }

    #[test]
    fn processes_opening_a_fresh_file_at_once_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..5 {
            let path = dir.path().join(format!("advisories-{round}.db"));
            std::thread::scope(|scope| {
                let opening: Vec<_> = (0..4).map(|_| scope.spawn(|| Store::open(&path))).collect();
                for open in opening {
                    open.join().unwrap().unwrap();
                }
            });
        }
    }

    #[test]
    fn a_newer_database_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("advisories.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE future (x); PRAGMA user_version = 3;")
            .unwrap();
        let error = Store::open(&path).err().unwrap();
        assert!(
            matches!(
                error,
                Error::NewerSchema {
                    found: 3,
                    supported: 2,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(schema(&path), [("table".into(), "future".into())]);
    }
}
