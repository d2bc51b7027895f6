//! Workflows and runs, stored durably.
//!
//! Owns the SQLite database `<data dir>/workflows.db`: each workflow's
//! config (as the user's bytes), schedule, registry and last trigger time,
//! and every task run (trigger, scan, patch) with its status, times, image,
//! patched image, reason and log. Every write is one statement or one
//! transaction, so a crash leaves each run either as it was or as it became;
//! [`Store::fail_interrupted`] turns runs a crash caught mid-way into failures
//! with a reason when the daemon starts. Decides nothing.
//!
//! The schema is versioned by SQLite's `user_version` ([`rusqlite_migration`]):
//! opening a database applies the migrations it lacks, in one transaction
//! each, and refuses a database from a newer drydock. Databases from before
//! the schema was versioned (`user_version` 0) already hold the first
//! migration's tables, with or without the scan policy column, and are
//! adopted as they are.
//!
//! Every query runs on the blocking thread pool ([`tokio::task::spawn_blocking`])
//! on the one connection, so the API, the scheduler and the runner never
//! block the async runtime on SQLite.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, SecondsFormat, Utc};
use patch::patcher::ScriptMode;
use rusqlite::{Connection, OptionalExtension, Transaction};
use rusqlite_migration::{HookResult, M, Migrations};
use serde::Serialize;
use workflow::{RunStatus, Schedule, TaskKind};

/// Why the workflow database could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or set up (permissions, a
    /// directory that does not exist, not a SQLite file).
    #[error("opening the workflow database {}", .path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The database's schema could not be brought up to date, or it was
    /// written by a newer drydock.
    #[error("updating the schema of the workflow database {}", .path.display())]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// Which migration failed and why.
        #[source]
        source: rusqlite_migration::Error,
    },
    /// A query or a write failed.
    #[error("querying the workflow database")]
    Sql(#[from] rusqlite::Error),
    /// A stored value cannot be read back as what it should be.
    #[error("the workflow database holds an invalid {what}: {value:?}")]
    Corrupt {
        /// What the value should be, e.g. "run status".
        what: &'static str,
        /// The value as stored (empty when it is missing).
        value: String,
    },
    /// The blocking task running a query panicked or was cancelled at
    /// shutdown.
    #[error("a workflow database task ended abnormally")]
    Task(#[from] tokio::task::JoinError),
}

/// The result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A workflow as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkflowRecord {
    /// The workflow's name (`continuouspatch` unless given), unique.
    pub name: String,
    /// Where the images live: `host[:port]` of the registry.
    pub registry: String,
    /// The registry speaks plain HTTP.
    pub plain_http: bool,
    /// The config file's bytes, as given.
    pub config: String,
    /// How often it runs.
    pub schedule: Schedule,
    /// When it was created; its runs fall at this time of day.
    pub created_at: DateTime<Utc>,
    /// When its config, schedule or policy last changed.
    pub updated_at: DateTime<Utc>,
    /// When a trigger last ran (scheduled or immediate).
    pub last_trigger_at: Option<DateTime<Utc>>,
    /// drydock's additions to ACR's workflow: when a scan leads to a patch,
    /// and how the patch handles maintainer scripts.
    pub policy: ScanPolicy,
}

/// When a scan's findings call for a patch. ACR patches on any fixable
/// OS-package vulnerability; a workflow may also ignore some
/// vulnerabilities by id and count only those at or above a severity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ScanPolicy {
    /// Count only findings of this severity or higher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<advisory::Severity>,
    /// Vulnerability ids never counted (`CVE-2024-1234`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    /// How patches handle the upgraded packages' maintainer scripts.
    #[serde(default, skip_serializing_if = "ScriptMode::is_native")]
    pub maintainer_scripts: ScriptMode,
}

impl ScanPolicy {
    /// Whether a finding counts towards a patch.
    pub fn counts(&self, id: &str, severity: advisory::Severity) -> bool {
        self.min_severity.is_none_or(|min| severity >= min) && !self.ignore.iter().any(|i| i == id)
    }
}

/// One task run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// Short and increasing: `dd1`, `dd2`, ….
    pub id: String,
    /// The workflow it belongs to (which may since have been deleted).
    pub workflow: String,
    /// Trigger, scan or patch.
    pub kind: TaskKind,
    /// Where it stands.
    pub status: RunStatus,
    /// The trigger run that queued it (none for a trigger).
    pub parent: Option<String>,
    /// The image scanned or patched (`registry/repo:tag`).
    pub image: Option<String>,
    /// The repository the run is about.
    pub repository: Option<String>,
    /// The original tag the run is about.
    pub tag: Option<String>,
    /// The patched image a patch run pushed.
    pub patched_image: Option<String>,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When it started running.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended, whatever the outcome.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A run to create.
#[derive(Debug, Clone, Default)]
pub struct NewRun<'a> {
    /// The trigger run that queues it (none for a trigger).
    pub parent: Option<&'a str>,
    /// The image it scans or patches (`registry/repo:tag`).
    pub image: Option<&'a str>,
    /// The repository it is about.
    pub repository: Option<&'a str>,
    /// The original tag it is about.
    pub tag: Option<&'a str>,
}

/// Which runs to list; every field left `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct RunFilter<'a> {
    /// Only the runs of this workflow.
    pub workflow: Option<&'a str>,
    /// Only runs of this task.
    pub kind: Option<TaskKind>,
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// Only runs queued by this trigger run.
    pub parent: Option<&'a str>,
    /// At most this many (the newest).
    pub limit: Option<usize>,
}

/// The workflow database: one connection, used from the blocking thread
/// pool. Shared as `Arc<Store>` by the API, the scheduler and the runner.
pub struct Store {
    db: Arc<Mutex<Connection>>,
}

fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(text: String) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt {
            what: "time",
            value: text,
        })
}

fn policy_text(policy: &ScanPolicy) -> String {
    serde_json::to_string(policy).expect("a scan policy serialises")
}

fn optional_time(text: Option<String>) -> Result<Option<DateTime<Utc>>> {
    text.map(parse_time).transpose()
}

/// Version 1: workflows and runs. `IF NOT EXISTS` because databases from
/// before the schema was versioned hold these tables already.
const WORKFLOWS_AND_RUNS: &str = "
CREATE TABLE IF NOT EXISTS workflows (
    name TEXT PRIMARY KEY,
    registry TEXT NOT NULL,
    plain_http INTEGER NOT NULL,
    config TEXT NOT NULL,
    schedule TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_trigger_at TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    workflow TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    parent TEXT,
    image TEXT,
    repository TEXT,
    tag TEXT,
    patched_image TEXT,
    reason TEXT,
    queued_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    log TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs (workflow, seq);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
";

/// Version 2: each workflow's scan policy (JSON), `{}` for older ones. A
/// database from before versioning may have the column already.
fn add_scan_policy(transaction: &Transaction) -> HookResult {
    let has_policy = transaction
        .prepare("SELECT 1 FROM pragma_table_info('workflows') WHERE name = 'policy'")?
        .exists([])?;
    if !has_policy {
        transaction
            .execute_batch("ALTER TABLE workflows ADD COLUMN policy TEXT NOT NULL DEFAULT '{}'")?;
    }
    Ok(())
}

/// The schema's history, oldest first; a database's `user_version` counts
/// the ones it has. Append only.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(WORKFLOWS_AND_RUNS),
        M::up_with_hook("", add_scan_policy),
    ])
}

const RUN_COLUMNS: &str = "id, workflow, kind, status, parent, image, repository, tag, patched_image, reason, queued_at, started_at, finished_at";

const WORKFLOW_COLUMNS: &str =
    "name, registry, plain_http, config, schedule, created_at, updated_at, last_trigger_at, policy";

fn run_from_row(row: &rusqlite::Row) -> rusqlite::Result<[Option<String>; 13]> {
    let mut values: [Option<String>; 13] = Default::default();
    for (index, value) in values.iter_mut().enumerate() {
        *value = row.get(index)?;
    }
    Ok(values)
}

fn run_from_values(values: [Option<String>; 13]) -> Result<Run> {
    let [
        id,
        workflow,
        kind,
        status,
        parent,
        image,
        repository,
        tag,
        patched_image,
        reason,
        queued_at,
        started_at,
        finished_at,
    ] = values;
    let required = |value: Option<String>, what| {
        value.ok_or(StoreError::Corrupt {
            what,
            value: String::new(),
        })
    };
    let kind_text = required(kind, "task kind")?;
    let status_text = required(status, "run status")?;
    Ok(Run {
        id: required(id, "run id")?,
        workflow: required(workflow, "workflow name")?,
        kind: kind_text.parse().map_err(|_| StoreError::Corrupt {
            what: "task kind",
            value: kind_text.clone(),
        })?,
        status: status_text.parse().map_err(|_| StoreError::Corrupt {
            what: "run status",
            value: status_text.clone(),
        })?,
        parent,
        image,
        repository,
        tag,
        patched_image,
        reason,
        queued_at: parse_time(required(queued_at, "time")?)?,
        started_at: optional_time(started_at)?,
        finished_at: optional_time(finished_at)?,
    })
}

/// A workflow row as stored, before its values are checked.
type WorkflowRow = (
    String,
    String,
    bool,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
);

fn workflow_from_row(row: &rusqlite::Row) -> rusqlite::Result<WorkflowRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
    ))
}

fn workflow_from_values(values: WorkflowRow) -> Result<WorkflowRecord> {
    let (name, registry, plain_http, config, schedule, created_at, updated_at, last, policy) =
        values;
    Ok(WorkflowRecord {
        name,
        registry,
        plain_http,
        config,
        schedule: Schedule::parse(&schedule).map_err(|_| StoreError::Corrupt {
            what: "schedule",
            value: schedule.clone(),
        })?,
        created_at: parse_time(created_at)?,
        updated_at: parse_time(updated_at)?,
        last_trigger_at: optional_time(last)?,
        policy: serde_json::from_str(&policy).map_err(|_| StoreError::Corrupt {
            what: "scan policy",
            value: policy.clone(),
        })?,
    })
}

/// The run `id`, from blocking code.
fn run_by_id(db: &Connection, id: &str) -> Result<Option<Run>> {
    db.query_row(
        &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
        [id],
        run_from_row,
    )
    .optional()?
    .map(run_from_values)
    .transpose()
}

impl Store {
    /// Opens (creating it if needed) the database at `path` and brings its
    /// schema up to date. Blocking: call it at start-up.
    pub fn open(path: &Path) -> Result<Store> {
        let open_error = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut db = Connection::open(path).map_err(open_error)?;
        db.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_error)?;
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        db.pragma_update(None, "synchronous", "FULL")
            .map_err(open_error)?;
        migrations()
            .to_latest(&mut db)
            .map_err(|source| StoreError::Migrate {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Store {
            db: Arc::new(Mutex::new(db)),
        })
    }

    /// Runs `work` on the connection on the blocking thread pool.
    async fn call<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let mut db = db.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut db)
        })
        .await?
    }

    /// Stores a new workflow; `false` when one of that name exists.
    pub async fn create_workflow(&self, record: &WorkflowRecord) -> Result<bool> {
        let record = record.clone();
        self.call(move |db| {
            let inserted = db.execute(
                &format!(
                    "INSERT OR IGNORE INTO workflows ({WORKFLOW_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                (
                    &record.name,
                    &record.registry,
                    record.plain_http,
                    &record.config,
                    record.schedule.to_string(),
                    time_text(record.created_at),
                    time_text(record.updated_at),
                    record.last_trigger_at.map(time_text),
                    policy_text(&record.policy),
                ),
            )?;
            Ok(inserted == 1)
        })
        .await
    }

    /// Replaces a workflow's config, schedule and policy; `false` when it
    /// does not exist.
    pub async fn update_workflow(&self, record: &WorkflowRecord) -> Result<bool> {
        let record = record.clone();
        self.call(move |db| {
            let updated = db.execute(
                "UPDATE workflows SET config = ?2, schedule = ?3, updated_at = ?4, policy = ?5 WHERE name = ?1",
                (
                    &record.name,
                    &record.config,
                    record.schedule.to_string(),
                    time_text(record.updated_at),
                    policy_text(&record.policy),
                ),
            )?;
            Ok(updated == 1)
        })
        .await
    }

    /// Records that a trigger of workflow `name` ran at `at`.
    pub async fn set_last_trigger(&self, name: &str, at: DateTime<Utc>) -> Result<()> {
        let name = name.to_string();
        self.call(move |db| {
            db.execute(
                "UPDATE workflows SET last_trigger_at = ?2 WHERE name = ?1",
                (name, time_text(at)),
            )?;
            Ok(())
        })
        .await
    }

    /// The workflow called `name`, if there is one.
    pub async fn workflow(&self, name: &str) -> Result<Option<WorkflowRecord>> {
        let name = name.to_string();
        self.call(move |db| {
            db.query_row(
                &format!("SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE name = ?1"),
                [name],
                workflow_from_row,
            )
            .optional()?
            .map(workflow_from_values)
            .transpose()
        })
        .await
    }

    /// Every workflow, by name.
    pub async fn workflows(&self) -> Result<Vec<WorkflowRecord>> {
        self.call(|db| {
            let mut query = db.prepare(&format!(
                "SELECT {WORKFLOW_COLUMNS} FROM workflows ORDER BY name"
            ))?;
            let rows = query.query_map([], workflow_from_row)?;
            rows.map(|row| workflow_from_values(row?)).collect()
        })
        .await
    }

    /// Removes a workflow (its runs stay, for their logs); `false` when it did not exist.
    pub async fn delete_workflow(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.call(move |db| Ok(db.execute("DELETE FROM workflows WHERE name = ?1", [name])? == 1))
            .await
    }

    /// Queues a run and returns it. Ids are short and increasing (`dd1`, `dd2`, …).
    pub async fn queue_run(&self, workflow: &str, kind: TaskKind, new: NewRun<'_>) -> Result<Run> {
        let workflow = workflow.to_string();
        let [parent, image, repository, tag] =
            [new.parent, new.image, new.repository, new.tag].map(|v| v.map(str::to_string));
        let now = Utc::now();
        self.call(move |db| {
            let transaction = db.transaction()?;
            let next: i64 =
                transaction.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM runs", [], |row| {
                    row.get(0)
                })?;
            let id = format!("dd{next}");
            transaction.execute(
                "INSERT INTO runs (seq, id, workflow, kind, status, parent, image, repository, tag, queued_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                (
                    next,
                    &id,
                    workflow,
                    kind.as_str(),
                    RunStatus::Queued.as_str(),
                    parent,
                    image,
                    repository,
                    tag,
                    time_text(now),
                ),
            )?;
            let run = run_by_id(&transaction, &id)?;
            transaction.commit()?;
            run.ok_or(StoreError::Corrupt {
                what: "run id",
                value: id,
            })
        })
        .await
    }

    /// Moves a queued run to Running; `false` if it is no longer queued (canceled).
    pub async fn start_run(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        let now = Utc::now();
        self.call(move |db| {
            Ok(db.execute(
                "UPDATE runs SET status = ?2, started_at = ?3 WHERE id = ?1 AND status = ?4",
                (
                    id,
                    RunStatus::Running.as_str(),
                    time_text(now),
                    RunStatus::Queued.as_str(),
                ),
            )? == 1)
        })
        .await
    }

    /// Ends an active run with `status` (and a reason); `false` if it had already ended.
    pub async fn finish_run(
        &self,
        id: &str,
        status: RunStatus,
        reason: Option<&str>,
    ) -> Result<bool> {
        let id = id.to_string();
        let reason = reason.map(str::to_string);
        let now = Utc::now();
        self.call(move |db| {
            Ok(db.execute(
                "UPDATE runs SET status = ?2, reason = COALESCE(?3, reason), finished_at = ?4
                 WHERE id = ?1 AND status IN ('Queued', 'Running')",
                (id, status.as_str(), reason, time_text(now)),
            )? == 1)
        })
        .await
    }

    /// Records the image a patch run pushed.
    pub async fn set_patched_image(&self, id: &str, image: &str) -> Result<()> {
        let (id, image) = (id.to_string(), image.to_string());
        self.call(move |db| {
            db.execute(
                "UPDATE runs SET patched_image = ?2 WHERE id = ?1",
                (id, image),
            )?;
            Ok(())
        })
        .await
    }

    /// Appends one line, timestamped, to a run's log.
    pub async fn log(&self, id: &str, line: &str) -> Result<()> {
        let id = id.to_string();
        let stamped = format!(
            "{} {line}\n",
            Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        self.call(move |db| {
            db.execute(
                "UPDATE runs SET log = log || ?2 WHERE id = ?1",
                (id, stamped),
            )?;
            Ok(())
        })
        .await
    }

    /// The log of run `id`; `None` when there is no such run.
    pub async fn run_log(&self, id: &str) -> Result<Option<String>> {
        let id = id.to_string();
        self.call(move |db| {
            Ok(db
                .query_row("SELECT log FROM runs WHERE id = ?1", [id], |row| row.get(0))
                .optional()?)
        })
        .await
    }

    /// The run `id`, if there is one.
    pub async fn run(&self, id: &str) -> Result<Option<Run>> {
        let id = id.to_string();
        self.call(move |db| run_by_id(db, &id)).await
    }

    /// Runs matching `filter`, newest first.
    pub async fn runs(&self, filter: &RunFilter<'_>) -> Result<Vec<Run>> {
        let workflow = filter.workflow.map(str::to_string);
        let parent = filter.parent.map(str::to_string);
        let (kind, status) = (filter.kind, filter.status);
        let limit = filter
            .limit
            .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        self.call(move |db| {
            let mut query = db.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs
                 WHERE (?1 IS NULL OR workflow = ?1) AND (?2 IS NULL OR kind = ?2)
                   AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR parent = ?4)
                 ORDER BY seq DESC LIMIT ?5"
            ))?;
            let rows = query.query_map(
                (
                    workflow,
                    kind.map(TaskKind::as_str),
                    status.map(RunStatus::as_str),
                    parent,
                    limit,
                ),
                run_from_row,
            )?;
            rows.map(|values| run_from_values(values?)).collect()
        })
        .await
    }

    /// Marks every queued or running run failed, with `reason`: at start-up,
    /// these are runs a crash or restart interrupted. Returns how many.
    pub async fn fail_interrupted(&self, reason: &str) -> Result<usize> {
        let reason = reason.to_string();
        let now = Utc::now();
        self.call(move |db| {
            Ok(db.execute(
                "UPDATE runs SET status = 'Failed', reason = ?1, finished_at = ?2
                 WHERE status IN ('Queued', 'Running')",
                (reason, time_text(now)),
            )?)
        })
        .await
    }

    /// Cancels a workflow's queued and running runs, in one transaction;
    /// returns their ids, newest first.
    pub async fn cancel_active(&self, workflow: &str) -> Result<Vec<String>> {
        let workflow = workflow.to_string();
        let now = Utc::now();
        self.call(move |db| {
            let transaction = db.transaction()?;
            let active = transaction
                .prepare(
                    "SELECT id FROM runs WHERE workflow = ?1 AND status IN ('Queued', 'Running')
                     ORDER BY seq DESC",
                )?
                .query_map([&workflow], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            transaction.execute(
                "UPDATE runs SET status = ?2, reason = 'canceled by the user', finished_at = ?3
                 WHERE workflow = ?1 AND status IN ('Queued', 'Running')",
                (&workflow, RunStatus::Canceled.as_str(), time_text(now)),
            )?;
            transaction.commit()?;
            Ok(active)
        })
        .await
    }

    /// The newest run of `kind` of each image (repository and original tag)
    /// of `workflow`, newest first; with `status`, the newest run in that
    /// status. What the per-image status of `workflow list` is built from.
    pub async fn latest_runs_by_image(
        &self,
        workflow: &str,
        kind: TaskKind,
        status: Option<RunStatus>,
    ) -> Result<Vec<Run>> {
        let workflow = workflow.to_string();
        self.call(move |db| {
            let mut query = db.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE seq IN (
                     SELECT MAX(seq) FROM runs
                     WHERE workflow = ?1 AND kind = ?2 AND (?3 IS NULL OR status = ?3)
                       AND repository IS NOT NULL AND tag IS NOT NULL
                     GROUP BY repository, tag)
                 ORDER BY seq DESC"
            ))?;
            let rows = query.query_map(
                (workflow, kind.as_str(), status.map(RunStatus::as_str)),
                run_from_row,
            )?;
            rows.map(|values| run_from_values(values?)).collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> WorkflowRecord {
        let now = Utc::now();
        WorkflowRecord {
            name: name.to_string(),
            registry: "127.0.0.1:5000".to_string(),
            plain_http: true,
            config: "{}".to_string(),
            schedule: Schedule::parse("7d").unwrap(),
            created_at: now,
            updated_at: now,
            last_trigger_at: None,
            policy: Default::default(),
        }
    }

    fn user_version(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[tokio::test]
    async fn keeps_workflows_and_runs_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("workflows.db");
        let store = Store::open(&path).unwrap();
        assert!(store.create_workflow(&record("w")).await.unwrap());
        assert!(
            !store.create_workflow(&record("w")).await.unwrap(),
            "names are unique"
        );
        let trigger = store
            .queue_run("w", TaskKind::Trigger, NewRun::default())
            .await
            .unwrap();
        let scan = store
            .queue_run(
                "w",
                TaskKind::Scan,
                NewRun {
                    parent: Some(&trigger.id),
                    image: Some("r/a:1"),
                    ..NewRun::default()
                },
            )
            .await
            .unwrap();
        assert_eq!((trigger.id.as_str(), scan.id.as_str()), ("dd1", "dd2"));
        assert_eq!(
            (scan.status, scan.parent.as_deref(), scan.image.as_deref()),
            (RunStatus::Queued, Some("dd1"), Some("r/a:1"))
        );
        assert!(store.start_run(&trigger.id).await.unwrap());
        store.log(&trigger.id, "listing tags").await.unwrap();
        assert!(
            store
                .finish_run(&trigger.id, RunStatus::Succeeded, None)
                .await
                .unwrap()
        );
        assert!(
            !store
                .finish_run(&trigger.id, RunStatus::Failed, Some("late"))
                .await
                .unwrap(),
            "an ended run stays ended"
        );
        assert!(store.start_run(&scan.id).await.unwrap());
        drop(store);

        let store = Store::open(&path).unwrap();
        assert_eq!(user_version(&path), 2);
        assert_eq!(
            store.fail_interrupted("drydock restarted").await.unwrap(),
            1
        );
        let scan = store.run("dd2").await.unwrap().unwrap();
        assert_eq!(scan.status, RunStatus::Failed);
        assert_eq!(scan.reason.as_deref(), Some("drydock restarted"));
        assert!(
            store
                .run_log("dd1")
                .await
                .unwrap()
                .unwrap()
                .contains("listing tags")
        );
        assert_eq!(store.run_log("dd9").await.unwrap(), None);
        assert_eq!(store.run("dd9").await.unwrap(), None);
        let scans = store
            .runs(&RunFilter {
                kind: Some(TaskKind::Scan),
                ..RunFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(scans.len(), 1);
        assert_eq!(
            store
                .workflow("w")
                .await
                .unwrap()
                .unwrap()
                .schedule
                .every_days(),
            7
        );
        assert!(store.delete_workflow("w").await.unwrap());
        assert!(store.workflow("w").await.unwrap().is_none());
    }

    /// The schema as drydock created it before it was versioned
    /// (`user_version` 0), scan policy column included.
    const UNVERSIONED_SCHEMA: &str = "
        PRAGMA journal_mode=WAL;
        CREATE TABLE IF NOT EXISTS workflows (
            name TEXT PRIMARY KEY, registry TEXT NOT NULL, plain_http INTEGER NOT NULL,
            config TEXT NOT NULL, schedule TEXT NOT NULL, created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL, last_trigger_at TEXT, policy TEXT NOT NULL DEFAULT '{}');
        CREATE TABLE IF NOT EXISTS runs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
            workflow TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, parent TEXT,
            image TEXT, repository TEXT, tag TEXT, patched_image TEXT, reason TEXT,
            queued_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,
            log TEXT NOT NULL DEFAULT '');
        CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs (workflow, seq);
        CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
    ";

    #[tokio::test]
    async fn opens_a_database_from_before_the_schema_was_versioned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("workflows.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(UNVERSIONED_SCHEMA).unwrap();
        old.execute_batch(
            r#"INSERT INTO workflows VALUES ('cp', '127.0.0.1:5000', 1, '{"version":"v1"}', '14d',
                   '2026-01-01T08:30:00.000Z', '2026-01-02T08:30:00.000Z', '2026-01-15T08:30:00.000Z',
                   '{"min_severity":"HIGH","ignore":["CVE-2024-1"]}');
               INSERT INTO runs (id, workflow, kind, status, parent, image, repository, tag,
                   patched_image, reason, queued_at, started_at, finished_at, log)
               VALUES ('dd1', 'cp', 'trigger', 'Succeeded', NULL, NULL, NULL, NULL, NULL,
                   '1 image(s) queued for scanning', '2026-01-15T08:30:00.000Z',
                   '2026-01-15T08:30:01.000Z', '2026-01-15T08:30:02.000Z', 'listed' || char(10)),
                      ('dd2', 'cp', 'patch', 'Succeeded', 'dd1', '127.0.0.1:5000/debian:12', 'debian', '12',
                   '127.0.0.1:5000/debian:12-1', NULL, '2026-01-15T08:30:03.000Z',
                   '2026-01-15T08:30:04.000Z', '2026-01-15T08:31:00.000Z', 'patched' || char(10));"#,
        )
        .unwrap();
        drop(old);
        assert_eq!(user_version(&path), 0);

        let store = Store::open(&path).unwrap();
        assert_eq!(user_version(&path), 2);
        let workflow = store.workflow("cp").await.unwrap().unwrap();
        assert_eq!(
            (
                workflow.registry.as_str(),
                workflow.plain_http,
                workflow.config.as_str(),
                workflow.schedule.every_days()
            ),
            ("127.0.0.1:5000", true, r#"{"version":"v1"}"#, 14)
        );
        assert_eq!(
            workflow.last_trigger_at.map(time_text).as_deref(),
            Some("2026-01-15T08:30:00.000Z")
        );
        assert_eq!(workflow.policy.min_severity, Some(advisory::Severity::High));
        assert_eq!(workflow.policy.ignore, ["CVE-2024-1"]);
        let runs = store.runs(&RunFilter::default()).await.unwrap();
        let ids: Vec<_> = runs.iter().map(|run| run.id.as_str()).collect();
        assert_eq!(ids, ["dd2", "dd1"]);
        assert_eq!(
            (
                runs[0].kind,
                runs[0].status,
                runs[0].patched_image.as_deref()
            ),
            (
                TaskKind::Patch,
                RunStatus::Succeeded,
                Some("127.0.0.1:5000/debian:12-1")
            )
        );
        assert_eq!(
            store.run_log("dd2").await.unwrap().as_deref(),
            Some("patched\n")
        );
        // New runs continue the numbering.
        let next = store
            .queue_run("cp", TaskKind::Trigger, NewRun::default())
            .await
            .unwrap();
        assert_eq!(next.id, "dd3");
        drop(store);
        // Opening again changes nothing.
        let store = Store::open(&path).unwrap();
        assert_eq!(user_version(&path), 2);
        assert_eq!(store.runs(&RunFilter::default()).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn adds_the_policy_column_to_older_databases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE workflows (name TEXT PRIMARY KEY, registry TEXT NOT NULL, plain_http INTEGER NOT NULL,
                 config TEXT NOT NULL, schedule TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
                 last_trigger_at TEXT);
             INSERT INTO workflows VALUES ('w', 'r:5000', 1, '{}', '7d', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', NULL);",
        )
        .unwrap();
        drop(old);
        let store = Store::open(&path).unwrap();
        let mut record = store.workflow("w").await.unwrap().unwrap();
        assert_eq!(record.policy, ScanPolicy::default());
        record.policy.min_severity = Some(advisory::Severity::High);
        record.policy.ignore = vec!["CVE-2024-1".to_string()];
        assert!(store.update_workflow(&record).await.unwrap());
        let policy = store.workflow("w").await.unwrap().unwrap().policy;
        assert!(policy.counts("CVE-2024-2", advisory::Severity::Critical));
        assert!(!policy.counts("CVE-2024-2", advisory::Severity::Medium));
        assert!(!policy.counts("CVE-2024-1", advisory::Severity::Critical));
    }

    #[test]
    fn refuses_a_database_from_a_newer_drydock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("workflows.db");
        drop(Store::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        let error = Store::open(&path).err().unwrap();
        assert!(matches!(error, StoreError::Migrate { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!(
                "updating the schema of the workflow database {}",
                path.display()
            )
        );
    }

    #[tokio::test]
    async fn cancels_only_active_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("w.db")).unwrap();
        let done = store
            .queue_run("w", TaskKind::Scan, NewRun::default())
            .await
            .unwrap();
        store
            .finish_run(
                &done.id,
                RunStatus::Skipped,
                Some("no fixable OS vulnerabilities found"),
            )
            .await
            .unwrap();
        let queued = store
            .queue_run("w", TaskKind::Scan, NewRun::default())
            .await
            .unwrap();
        let other = store
            .queue_run("other", TaskKind::Scan, NewRun::default())
            .await
            .unwrap();
        assert_eq!(
            store.cancel_active("w").await.unwrap(),
            vec![queued.id.clone()]
        );
        let canceled = store.run(&queued.id).await.unwrap().unwrap();
        assert_eq!(
            (canceled.status, canceled.reason.as_deref()),
            (RunStatus::Canceled, Some("canceled by the user"))
        );
        assert!(canceled.finished_at.is_some());
        assert!(
            !store.start_run(&queued.id).await.unwrap(),
            "a canceled run never starts"
        );
        assert_eq!(
            store.run(&done.id).await.unwrap().unwrap().status,
            RunStatus::Skipped
        );
        assert_eq!(
            store.run(&other.id).await.unwrap().unwrap().status,
            RunStatus::Queued
        );
    }
}
