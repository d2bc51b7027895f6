//! The local advisory store: one SQLite file (WAL) holding every feed's
//! advisories and where and when each feed came from. Owns the schema and
//! its version; never parses feeds or touches the network.
//!
//! Schema version 1 (`PRAGMA user_version`; a newer one is refused):
//! - `feeds(id, name UNIQUE, kind, location, fetched_at, modified_at, sha256, advisories)`:
//!   provenance, one row per feed;
//! - `details(id, feed_id, title, description, aliases JSON, urls JSON)`:
//!   vulnerability texts, stored once per feed record;
//! - `advisories(feed_id, family, release, package, vulnerability, status,
//!   fixed_version, introduced, last_affected, severity, severity_source,
//!   details_id)`, indexed by `(family, release, package)` for the scanner
//!   and by `feed_id` for replacement.
//!
//! Replacing a feed is one transaction: readers (other processes too) see
//! the old feed or the new one, never a mix, and a failed import leaves the
//! old one in place.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, Row, params};

use crate::error::{Error, Result};
use crate::feeds::LoadedFeed;
use crate::model::{Advisory, Details, Distro, FeedAdvisory, FeedSource, FeedStatus, Status};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
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

const SELECT_FOR_PACKAGE: &str = "
SELECT f.name, a.vulnerability, a.status, a.fixed_version, a.introduced, a.last_affected,
       a.severity, a.severity_source, d.title, d.description, d.aliases, d.urls
FROM advisories a
JOIN details d ON d.id = a.details_id
JOIN feeds f ON f.id = a.feed_id
WHERE a.family = ?1 AND a.release = ?2 AND a.package = ?3
ORDER BY a.vulnerability, f.name, a.rowid";

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens the store at `path`, creating it (and its directory) if missing.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        }
        let sqlite = sqlite_error(path);
        let mut conn = Connection::open(path).map_err(sqlite)?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(sqlite_error(path))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite_error(path))?;
        // The data can always be fetched again: consistency matters, the last
        // transaction's durability after a power cut does not.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite_error(path))?;
        migrate(&mut conn, path)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
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
        let mut statement = self
            .conn
            .prepare_cached(SELECT_FOR_PACKAGE)
            .map_err(sqlite_error(&self.path))?;
        let rows = statement
            .query_map(
                params![distro.family.as_str(), distro.release, package],
                |row| Ok(read_row(row, distro, package)),
            )
            .map_err(sqlite_error(&self.path))?;
        let mut advisories = Vec::new();
        for row in rows {
            let row = row.map_err(sqlite_error(&self.path))?;
            advisories.push(row.map_err(|message| Error::Corrupt {
                path: self.path.clone(),
                message,
            })?);
        }
        Ok(advisories)
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
        let mut found = BTreeMap::new();
        for package in packages {
            let advisories = self.advisories_for(distro, package)?;
            if !advisories.is_empty() {
                found.insert(package.to_string(), advisories);
            }
        }
        snapshot.finish().map_err(sqlite_error(&self.path))?;
        Ok(found)
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
            let kind = kind.parse().map_err(|message| Error::Corrupt {
                path: self.path.clone(),
                message,
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
    move |error| Error::Sqlite {
        path: path.to_path_buf(),
        error,
    }
}

/// Creates the schema in a fresh file; refuses a newer one.
fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let sqlite = sqlite_error(path);
    let version = |conn: &Connection| -> Result<i64> {
        conn.pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sqlite_error(path))
    };
    if version(conn)? == SCHEMA_VERSION {
        return Ok(());
    }
    // IMMEDIATE: two processes opening a fresh file do not both create it.
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(&sqlite)?;
    match version(&tx)? {
        0 => {
            tx.execute_batch(SCHEMA).map_err(&sqlite)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(&sqlite)?;
        }
        SCHEMA_VERSION => {}
        found => {
            return Err(Error::NewerSchema {
                path: path.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
    }
    tx.commit().map_err(&sqlite)
}

fn replace_feed(tx: &rusqlite::Transaction, feed: &LoadedFeed) -> rusqlite::Result<()> {
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
    tx.execute("DELETE FROM advisories WHERE feed_id = ?1", [feed_id])?;
    tx.execute("DELETE FROM details WHERE feed_id = ?1", [feed_id])?;
    let mut insert_details = tx.prepare_cached(
        "INSERT INTO details (feed_id, title, description, aliases, urls) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut insert_advisory = tx.prepare_cached(
        "INSERT INTO advisories (feed_id, family, release, package, vulnerability, status,
         fixed_version, introduced, last_affected, severity, severity_source, details_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    // Advisories of one record share their details (one `Arc`): store them once.
    let mut details_ids: HashMap<*const Details, i64> = HashMap::new();
    for advisory in &feed.advisories {
        let details_id = match details_ids.get(&Arc::as_ptr(&advisory.details)) {
            Some(id) => *id,
            None => {
                let details = &advisory.details;
                insert_details.execute(params![
                    feed_id,
                    details.title,
                    details.description,
                    json_list(&details.aliases),
                    json_list(&details.urls),
                ])?;
                let id = tx.last_insert_rowid();
                details_ids.insert(Arc::as_ptr(details), id);
                id
            }
        };
        insert_advisory.execute(params![
            feed_id,
            advisory.distro.family.as_str(),
            advisory.distro.release,
            advisory.package,
            advisory.id,
            advisory.status.as_str(),
            advisory.status.fixed_version(),
            advisory.introduced,
            advisory.last_affected,
            advisory.severity.as_str(),
            advisory.severity_source,
            details_id,
        ])?;
    }
    Ok(())
}

fn json_list(items: &[String]) -> String {
    serde_json::Value::from(items).to_string()
}

/// One row of [`SELECT_FOR_PACKAGE`]; `Err` names what could not be read back.
fn read_row(
    row: &Row,
    distro: &Distro,
    package: &str,
) -> std::result::Result<FeedAdvisory, String> {
    let text = |index: usize| -> std::result::Result<Option<String>, String> {
        row.get(index).map_err(|e| e.to_string())
    };
    let required = |index: usize| -> std::result::Result<String, String> {
        text(index)?.ok_or_else(|| format!("column {index} is NULL"))
    };
    let list = |index: usize| -> std::result::Result<Vec<String>, String> {
        serde_json::from_str(&required(index)?).map_err(|e| format!("column {index}: {e}"))
    };
    let id = required(1)?;
    let status_name = required(2)?;
    let status = Status::from_parts(&status_name, text(3)?)
        .ok_or_else(|| format!("{id}: unknown status {status_name:?}"))?;
    Ok(FeedAdvisory {
        feed: required(0)?,
        advisory: Advisory {
            status,
            introduced: text(4)?,
            last_affected: text(5)?,
            severity: required(6)?.parse()?,
            severity_source: text(7)?,
            details: Arc::new(Details {
                title: text(8)?,
                description: text(9)?,
                aliases: list(10)?,
                urls: list(11)?,
            }),
            id,
            distro: distro.clone(),
            package: package.to_string(),
        },
    })
}
