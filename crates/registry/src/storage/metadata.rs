//! The reference graph in SQLite (`registry.db`): which blobs exist and which
//! repositories link them, manifests (their bytes included, so a manifest put
//! is one atomic transaction), what each manifest references, tags, and the
//! subject/artifact type that the referrers API answers from.
//!
//! The database runs in WAL mode with `synchronous=FULL`: a committed
//! transaction survives `kill -9` and power loss, an uncommitted one leaves
//! no trace. Every multi-row change is a single transaction. The schema is
//! versioned by SQLite's `user_version` ([`MIGRATIONS`]). Every statement
//! runs on the blocking thread pool ([`Metadata::call`]) or in code that
//! already is there ([`Metadata::call_blocking`]). Never touches blob files
//! and never decides what a missing row means to a client.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use rusqlite_migration::{M, Migrations};

use super::StorageError;

/// The schema's versions, in order; SQLite's `user_version` says how many
/// are applied. The first one creates the tables `IF NOT EXISTS`, so a
/// database made before the schema was versioned (`user_version` 0 with
/// every table present) takes it as a no-op. Append, never edit.
const MIGRATIONS: Migrations<'static> = Migrations::from_slice(SCHEMA_VERSIONS);

/// The steps of [`MIGRATIONS`].
const SCHEMA_VERSIONS: &[M<'static>] = &[M::up(
    "
CREATE TABLE IF NOT EXISTS blobs (
    digest    TEXT PRIMARY KEY,
    size      INTEGER NOT NULL,
    last_used INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS repo_blobs (
    repo   TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (repo, digest)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS repo_blobs_by_digest ON repo_blobs (digest);
CREATE TABLE IF NOT EXISTS manifests (
    repo          TEXT NOT NULL,
    digest        TEXT NOT NULL,
    media_type    TEXT NOT NULL,
    content       BLOB NOT NULL,
    subject       TEXT,
    artifact_type TEXT,
    annotations   TEXT,
    PRIMARY KEY (repo, digest)
);
CREATE INDEX IF NOT EXISTS manifests_by_subject ON manifests (repo, subject);
CREATE TABLE IF NOT EXISTS manifest_refs (
    repo     TEXT NOT NULL,
    manifest TEXT NOT NULL,
    digest   TEXT NOT NULL,
    PRIMARY KEY (repo, manifest, digest)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS manifest_refs_by_digest ON manifest_refs (digest);
CREATE TABLE IF NOT EXISTS tags (
    repo   TEXT NOT NULL,
    tag    TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (repo, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_by_digest ON tags (repo, digest);
",
)];

/// Handle on the metadata store. Cheap to clone; calls are serialised on one
/// connection and run on the blocking thread pool.
#[derive(Clone)]
pub struct Metadata {
    connection: Arc<Mutex<Connection>>,
}

/// A manifest as stored.
pub struct StoredManifest {
    /// The digest its bytes hash to.
    pub digest: String,
    /// The media type it was pushed with.
    pub media_type: String,
    /// Its bytes, exactly as pushed.
    pub content: Vec<u8>,
}

/// Everything a manifest put records, in one transaction.
pub struct NewManifest {
    /// The repository it is pushed to.
    pub repo: String,
    /// The digest its bytes hash to.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its bytes, exactly as pushed.
    pub content: Vec<u8>,
    /// The digest of the manifest it refers to (its `subject`), if any.
    pub subject: Option<String>,
    /// Its artifact type, as the referrers API lists it.
    pub artifact_type: Option<String>,
    /// Its annotations as a JSON object, when it has any.
    pub annotations: Option<String>,
    /// Blobs that must be linked in the repository (config and layers).
    pub required_blobs: Vec<String>,
    /// Manifests that must exist in the repository (an index's children).
    pub required_manifests: Vec<String>,
    /// The tag it is pushed under; `None` when pushed by digest.
    pub tag: Option<String>,
}

/// How a manifest put ended.
#[derive(Debug, PartialEq, Eq)]
pub enum PutManifest {
    /// Recorded, with its references and tag.
    Stored,
    /// Nothing was recorded: the repository lacks this blob or child manifest.
    Missing(String),
}

/// One row of a referrers answer.
pub struct Referrer {
    /// The referring manifest's digest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its artifact type.
    pub artifact_type: Option<String>,
    /// Its annotations as a JSON object.
    pub annotations: Option<String>,
}

/// A blob row that garbage collection removes (or would, in a dry run).
pub struct SweptBlob {
    /// The blob's digest.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
}

impl Metadata {
    /// Opens (creating when needed) the database at `path` and brings its
    /// schema up to date. Blocking: call it off the async runtime.
    pub fn open(path: &Path) -> Result<Metadata, StorageError> {
        let mut connection = Connection::open(path)?;
        connection.busy_timeout(std::time::Duration::from_secs(30))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        MIGRATIONS.to_latest(&mut connection)?;
        Ok(Metadata {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `work` on the connection, off the async runtime. `work` speaks
    /// its caller's error type, into which storage failures convert.
    pub async fn call<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let metadata = self.clone();
        tokio::task::spawn_blocking(move || metadata.call_blocking(work))
            .await
            .map_err(|e| E::from(StorageError::from(e)))?
    }

    /// Runs `work` on the connection from blocking code.
    pub fn call_blocking<T, E>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        work(&mut connection)
    }
}

fn write_transaction(connection: &mut Connection) -> Result<Transaction<'_>, StorageError> {
    Ok(connection.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

/// Records a verified blob file and links it into `repo`, refreshing its
/// last-used time.
pub fn link_blob(
    connection: &mut Connection,
    repo: &str,
    digest: &str,
    size: u64,
    now: i64,
) -> Result<(), StorageError> {
    let tx = write_transaction(connection)?;
    tx.execute(
        "INSERT INTO blobs (digest, size, last_used) VALUES (?1, ?2, ?3)
         ON CONFLICT (digest) DO UPDATE SET last_used = excluded.last_used",
        params![digest, size as i64, now],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO repo_blobs (repo, digest) VALUES (?1, ?2)",
        params![repo, digest],
    )?;
    tx.commit()?;
    Ok(())
}

/// The size of `digest` when it is linked into `repo`.
pub fn linked_blob_size(
    connection: &Connection,
    repo: &str,
    digest: &str,
) -> Result<Option<u64>, StorageError> {
    Ok(connection
        .query_row(
            "SELECT b.size FROM repo_blobs r JOIN blobs b ON b.digest = r.digest
             WHERE r.repo = ?1 AND r.digest = ?2",
            params![repo, digest],
            |row| row.get::<_, i64>(0),
        )
        .optional()?
        .map(|size| size as u64))
}

/// Pushes back garbage collection of a blob a client just saw, unless it was
/// refreshed recently anyway (`stale_before`), so reads rarely write.
pub fn touch_blob(
    connection: &Connection,
    digest: &str,
    now: i64,
    stale_before: i64,
) -> Result<(), StorageError> {
    connection.execute(
        "UPDATE blobs SET last_used = ?2 WHERE digest = ?1 AND last_used < ?3",
        params![digest, now, stale_before],
    )?;
    Ok(())
}

/// Links `digest` into `to` when `from` has it; returns its size then.
pub fn mount_blob(
    connection: &mut Connection,
    from: &str,
    to: &str,
    digest: &str,
    now: i64,
) -> Result<Option<u64>, StorageError> {
    let tx = write_transaction(connection)?;
    let Some(size) = linked_blob_size(&tx, from, digest)? else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE blobs SET last_used = ?2 WHERE digest = ?1",
        params![digest, now],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO repo_blobs (repo, digest) VALUES (?1, ?2)",
        params![to, digest],
    )?;
    tx.commit()?;
    Ok(Some(size))
}

/// Removes `digest` from `repo`; false when it was not linked.
pub fn unlink_blob(
    connection: &Connection,
    repo: &str,
    digest: &str,
) -> Result<bool, StorageError> {
    Ok(connection.execute(
        "DELETE FROM repo_blobs WHERE repo = ?1 AND digest = ?2",
        params![repo, digest],
    )? > 0)
}

/// Stores a manifest, its references and its tag atomically, after checking
/// that everything it needs is present in the repository.
pub fn put_manifest(
    connection: &mut Connection,
    manifest: &NewManifest,
) -> Result<PutManifest, StorageError> {
    let tx = write_transaction(connection)?;
    for digest in &manifest.required_blobs {
        if linked_blob_size(&tx, &manifest.repo, digest)?.is_none() {
            return Ok(PutManifest::Missing(digest.clone()));
        }
    }
    for digest in &manifest.required_manifests {
        let exists = tx
            .query_row(
                "SELECT 1 FROM manifests WHERE repo = ?1 AND digest = ?2",
                params![manifest.repo, digest],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !exists {
            return Ok(PutManifest::Missing(digest.clone()));
        }
    }
    tx.execute(
        "INSERT INTO manifests (repo, digest, media_type, content, subject, artifact_type, annotations)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (repo, digest) DO UPDATE SET media_type = excluded.media_type",
        params![
            manifest.repo,
            manifest.digest,
            manifest.media_type,
            manifest.content,
            manifest.subject,
            manifest.artifact_type,
            manifest.annotations
        ],
    )?;
    for digest in manifest
        .required_blobs
        .iter()
        .chain(&manifest.required_manifests)
    {
        tx.execute(
            "INSERT OR IGNORE INTO manifest_refs (repo, manifest, digest) VALUES (?1, ?2, ?3)",
            params![manifest.repo, manifest.digest, digest],
        )?;
    }
    if let Some(tag) = &manifest.tag {
        tx.execute(
            "INSERT INTO tags (repo, tag, digest) VALUES (?1, ?2, ?3)
             ON CONFLICT (repo, tag) DO UPDATE SET digest = excluded.digest",
            params![manifest.repo, tag, manifest.digest],
        )?;
    }
    tx.commit()?;
    Ok(PutManifest::Stored)
}

/// The digest a tag points at.
pub fn resolve_tag(
    connection: &Connection,
    repo: &str,
    tag: &str,
) -> Result<Option<String>, StorageError> {
    Ok(connection
        .query_row(
            "SELECT digest FROM tags WHERE repo = ?1 AND tag = ?2",
            params![repo, tag],
            |row| row.get(0),
        )
        .optional()?)
}

/// The manifest `digest` of `repo`, when stored there.
pub fn get_manifest(
    connection: &Connection,
    repo: &str,
    digest: &str,
) -> Result<Option<StoredManifest>, StorageError> {
    Ok(connection
        .query_row(
            "SELECT digest, media_type, content FROM manifests WHERE repo = ?1 AND digest = ?2",
            params![repo, digest],
            |row| {
                Ok(StoredManifest {
                    digest: row.get(0)?,
                    media_type: row.get(1)?,
                    content: row.get(2)?,
                })
            },
        )
        .optional()?)
}

/// Deletes a manifest with its references and every tag pointing at it.
pub fn delete_manifest(
    connection: &mut Connection,
    repo: &str,
    digest: &str,
) -> Result<bool, StorageError> {
    let tx = write_transaction(connection)?;
    let deleted = tx.execute(
        "DELETE FROM manifests WHERE repo = ?1 AND digest = ?2",
        params![repo, digest],
    )?;
    tx.execute(
        "DELETE FROM manifest_refs WHERE repo = ?1 AND manifest = ?2",
        params![repo, digest],
    )?;
    tx.execute(
        "DELETE FROM tags WHERE repo = ?1 AND digest = ?2",
        params![repo, digest],
    )?;
    tx.commit()?;
    Ok(deleted > 0)
}

/// Removes a tag (not the manifest it points at); false when there was none.
pub fn delete_tag(connection: &Connection, repo: &str, tag: &str) -> Result<bool, StorageError> {
    Ok(connection.execute(
        "DELETE FROM tags WHERE repo = ?1 AND tag = ?2",
        params![repo, tag],
    )? > 0)
}

/// Whether anything (a manifest or a blob link) lives in `repo`.
pub fn repository_exists(connection: &Connection, repo: &str) -> Result<bool, StorageError> {
    Ok(connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM manifests WHERE repo = ?1)
                 OR EXISTS (SELECT 1 FROM repo_blobs WHERE repo = ?1)",
        params![repo],
        |row| row.get(0),
    )?)
}

/// Up to `limit` tags of `repo` after `last`, in lexical order.
pub fn list_tags(
    connection: &Connection,
    repo: &str,
    last: &str,
    limit: u64,
) -> Result<Vec<String>, StorageError> {
    let mut statement = connection.prepare_cached(
        "SELECT tag FROM tags WHERE repo = ?1 AND tag > ?2 ORDER BY tag LIMIT ?3",
    )?;
    let rows = statement.query_map(
        params![repo, last, limit.min(i64::MAX as u64) as i64],
        |row| row.get(0),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Up to `limit` repository names after `last`, in lexical order.
pub fn list_repositories(
    connection: &Connection,
    last: &str,
    limit: u64,
) -> Result<Vec<String>, StorageError> {
    let mut statement = connection.prepare_cached(
        "SELECT repo FROM (SELECT repo FROM manifests UNION SELECT repo FROM repo_blobs)
         WHERE repo > ?1 ORDER BY repo LIMIT ?2",
    )?;
    let rows = statement.query_map(params![last, limit.min(i64::MAX as u64) as i64], |row| {
        row.get(0)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Manifests of `repo` whose subject is `subject`, optionally only those of one artifact type.
pub fn referrers(
    connection: &Connection,
    repo: &str,
    subject: &str,
    artifact_type: Option<&str>,
) -> Result<Vec<Referrer>, StorageError> {
    let mut statement = connection.prepare_cached(
        "SELECT digest, media_type, length(content), artifact_type, annotations FROM manifests
         WHERE repo = ?1 AND subject = ?2 AND (?3 IS NULL OR artifact_type = ?3) ORDER BY digest",
    )?;
    let rows = statement.query_map(params![repo, subject, artifact_type], |row| {
        Ok(Referrer {
            digest: row.get(0)?,
            media_type: row.get(1)?,
            size: row.get::<_, i64>(2)? as u64,
            artifact_type: row.get(3)?,
            annotations: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Blob rows no manifest references and nobody used since `cutoff`; removes
/// them and their repository links unless `dry_run`.
pub fn sweep_blobs(
    connection: &mut Connection,
    cutoff: i64,
    dry_run: bool,
) -> Result<Vec<SweptBlob>, StorageError> {
    let tx = write_transaction(connection)?;
    let swept = {
        let mut statement = tx.prepare(
            "SELECT digest, size FROM blobs WHERE last_used < ?1
             AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.digest = blobs.digest)",
        )?;
        let rows = statement.query_map(params![cutoff], |row| {
            Ok(SweptBlob {
                digest: row.get(0)?,
                size: row.get::<_, i64>(1)? as u64,
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    if !dry_run {
        for blob in &swept {
            tx.execute(
                "DELETE FROM repo_blobs WHERE digest = ?1",
                params![blob.digest],
            )?;
            tx.execute("DELETE FROM blobs WHERE digest = ?1", params![blob.digest])?;
        }
        tx.commit()?;
    }
    Ok(swept)
}

/// Every recorded blob digest.
pub fn all_blob_digests(
    connection: &Connection,
) -> Result<std::collections::HashSet<String>, StorageError> {
    let mut statement = connection.prepare("SELECT digest FROM blobs")?;
    let rows = statement.query_map([], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_version(connection: &Connection) -> i64 {
        connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn migrations_are_valid() {
        MIGRATIONS.validate().unwrap();
    }

    #[test]
    fn a_new_database_gets_the_latest_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        let metadata = Metadata::open(&path).unwrap();
        metadata
            .call_blocking(|c| link_blob(c, "r", "sha256:aa", 3, 10))
            .unwrap();
        let connection = Connection::open(&path).unwrap();
        assert_eq!(user_version(&connection), SCHEMA_VERSIONS.len() as i64);
    }

    /// A data directory made before the schema was versioned: the tables as
    /// that code created them, `user_version` 0, and rows in them.
    #[test]
    fn an_unversioned_database_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        {
            let connection = Connection::open(&path).unwrap();
            connection
                .execute_batch(
                    "
                    CREATE TABLE IF NOT EXISTS blobs (digest TEXT PRIMARY KEY, size INTEGER NOT NULL, last_used INTEGER NOT NULL) WITHOUT ROWID;
                    CREATE TABLE IF NOT EXISTS repo_blobs (repo TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (repo, digest)) WITHOUT ROWID;
                    CREATE INDEX IF NOT EXISTS repo_blobs_by_digest ON repo_blobs (digest);
                    CREATE TABLE IF NOT EXISTS manifests (repo TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL, content BLOB NOT NULL, subject TEXT, artifact_type TEXT, annotations TEXT, PRIMARY KEY (repo, digest));
                    CREATE INDEX IF NOT EXISTS manifests_by_subject ON manifests (repo, subject);
                    CREATE TABLE IF NOT EXISTS manifest_refs (repo TEXT NOT NULL, manifest TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (repo, manifest, digest)) WITHOUT ROWID;
                    CREATE INDEX IF NOT EXISTS manifest_refs_by_digest ON manifest_refs (digest);
                    CREATE TABLE IF NOT EXISTS tags (repo TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (repo, tag)) WITHOUT ROWID;
                    CREATE INDEX IF NOT EXISTS tags_by_digest ON tags (repo, digest);
                    INSERT INTO blobs VALUES ('sha256:aa', 3, 10);
                    INSERT INTO repo_blobs VALUES ('r', 'sha256:aa');
                    INSERT INTO manifests VALUES ('r', 'sha256:bb', 'application/vnd.oci.image.manifest.v1+json', x'7b7d', NULL, NULL, NULL);
                    INSERT INTO tags VALUES ('r', 'latest', 'sha256:bb');
                    ",
                )
                .unwrap();
            assert_eq!(user_version(&connection), 0);
        }
        let metadata = Metadata::open(&path).unwrap();
        metadata
            .call_blocking(|c| {
                assert_eq!(linked_blob_size(c, "r", "sha256:aa")?, Some(3));
                assert_eq!(resolve_tag(c, "r", "latest")?.as_deref(), Some("sha256:bb"));
                assert_eq!(get_manifest(c, "r", "sha256:bb")?.unwrap().content, b"{}");
                assert_eq!(user_version(c), SCHEMA_VERSIONS.len() as i64);
                Ok::<_, StorageError>(())
            })
            .unwrap();
        drop(metadata);
        // Opening again (another process, a restart) changes nothing.
        let metadata = Metadata::open(&path).unwrap();
        metadata
            .call_blocking(|c| list_tags(c, "r", "", 10))
            .map(|tags| assert_eq!(tags, ["latest"]))
            .unwrap();
    }
}
