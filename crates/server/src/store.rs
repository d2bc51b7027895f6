//! Workflows and runs, stored durably.
//!
//! Owns the SQLite database `<data dir>/workflows.db`: each workflow's
//! config (as the user's bytes), schedule, registry and last trigger time,
//! and every task run (trigger, scan, patch) with its status, times, image,
//! patched image, reason and log. Every write is one statement or one
//! transaction, so a crash leaves each run either as it was or as it became;
//! [`Store::fail_interrupted`] turns runs a crash caught mid-way into failures
//! with a reason when the daemon starts.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, SecondsFormat, Utc};
use patch::patcher::ScriptMode;
use serde::Serialize;
use workflow::{RunStatus, Schedule, TaskKind};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the workflow database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the workflow database holds an invalid {what}: {value:?}")]
    Corrupt { what: &'static str, value: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A workflow as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkflowRecord {
    pub name: String,
    /// Where the images live: `host[:port]` of the registry.
    pub registry: String,
    /// The registry speaks plain HTTP.
    pub plain_http: bool,
    /// The config file's bytes, as given.
    pub config: String,
    pub schedule: Schedule,
    pub created_at: DateTime<Utc>,
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
    pub id: String,
    pub workflow: String,
    pub kind: TaskKind,
    pub status: RunStatus,
    /// The trigger run that queued it (none for a trigger).
    pub parent: Option<String>,
    /// The image scanned or patched (`registry/repo:tag`).
    pub image: Option<String>,
    /// The repository and original tag the run is about.
    pub repository: Option<String>,
    pub tag: Option<String>,
    /// The patched image a patch run pushed.
    pub patched_image: Option<String>,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A run to create.
#[derive(Debug, Clone, Default)]
pub struct NewRun<'a> {
    pub parent: Option<&'a str>,
    pub image: Option<&'a str>,
    pub repository: Option<&'a str>,
    pub tag: Option<&'a str>,
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter<'a> {
    pub workflow: Option<&'a str>,
    pub kind: Option<TaskKind>,
    pub status: Option<RunStatus>,
    pub parent: Option<&'a str>,
    pub limit: Option<usize>,
}

pub struct Store {
    db: Mutex<rusqlite::Connection>,
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

const SCHEMA: &str = "
PRAGMA journal_mode=WAL;
PRAGMA synchronous=FULL;
CREATE TABLE IF NOT EXISTS workflows (
    name TEXT PRIMARY KEY,
    registry TEXT NOT NULL,
    plain_http INTEGER NOT NULL,
    config TEXT NOT NULL,
    schedule TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_trigger_at TEXT,
    policy TEXT NOT NULL DEFAULT '{}'
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

const RUN_COLUMNS: &str = "id, workflow, kind, status, parent, image, repository, tag, patched_image, reason, queued_at, started_at, finished_at";

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

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let db = rusqlite::Connection::open(path)?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        db.execute_batch(SCHEMA)?;
        // Databases created before workflows had a scan policy gain the column.
        let has_policy = db
            .prepare("SELECT 1 FROM pragma_table_info('workflows') WHERE name = 'policy'")?
            .exists([])?;
        if !has_policy {
            db.execute_batch("ALTER TABLE workflows ADD COLUMN policy TEXT NOT NULL DEFAULT '{}'")?;
        }
        Ok(Store { db: Mutex::new(db) })
    }

    fn lock(&self) -> MutexGuard<'_, rusqlite::Connection> {
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores a new workflow; `false` when one of that name exists.
    pub fn create_workflow(&self, record: &WorkflowRecord) -> Result<bool> {
        let inserted = self.lock().execute(
            "INSERT OR IGNORE INTO workflows (name, registry, plain_http, config, schedule, created_at, updated_at, last_trigger_at, policy)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
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
    }

    /// Replaces a workflow's config and schedule; `false` when it does not exist.
    pub fn update_workflow(&self, record: &WorkflowRecord) -> Result<bool> {
        let updated = self.lock().execute(
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
    }

    pub fn set_last_trigger(&self, name: &str, at: DateTime<Utc>) -> Result<()> {
        self.lock().execute(
            "UPDATE workflows SET last_trigger_at = ?2 WHERE name = ?1",
            (name, time_text(at)),
        )?;
        Ok(())
    }

    pub fn workflow(&self, name: &str) -> Result<Option<WorkflowRecord>> {
        Ok(self.workflows()?.into_iter().find(|w| w.name == name))
    }

    pub fn workflows(&self) -> Result<Vec<WorkflowRecord>> {
        let db = self.lock();
        let mut query = db.prepare(
            "SELECT name, registry, plain_http, config, schedule, created_at, updated_at, last_trigger_at, policy FROM workflows ORDER BY name",
        )?;
        let rows = query.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, bool>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, String>(6)?,
                row.get::<_, Option<String>>(7)?,
                row.get::<_, String>(8)?,
            ))
        })?;
        let mut workflows = Vec::new();
        for row in rows {
            let (
                name,
                registry,
                plain_http,
                config,
                schedule,
                created_at,
                updated_at,
                last,
                policy,
            ) = row?;
            workflows.push(WorkflowRecord {
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
            });
        }
        Ok(workflows)
    }

    /// Removes a workflow (its runs stay, for their logs); `false` when it did not exist.
    pub fn delete_workflow(&self, name: &str) -> Result<bool> {
        Ok(self
            .lock()
            .execute("DELETE FROM workflows WHERE name = ?1", [name])?
            == 1)
    }

    /// Queues a run and returns it. Ids are short and increasing (`dd1`, `dd2`, …).
    pub fn queue_run(&self, workflow: &str, kind: TaskKind, new: NewRun) -> Result<Run> {
        let mut db = self.lock();
        let transaction = db.transaction()?;
        let next: i64 =
            transaction.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM runs", [], |row| {
                row.get(0)
            })?;
        let id = format!("dd{next}");
        let now = Utc::now();
        transaction.execute(
            "INSERT INTO runs (seq, id, workflow, kind, status, parent, image, repository, tag, queued_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            (
                next,
                &id,
                workflow,
                kind.as_str(),
                RunStatus::Queued.as_str(),
                new.parent,
                new.image,
                new.repository,
                new.tag,
                time_text(now),
            ),
        )?;
        transaction.commit()?;
        drop(db);
        self.run(&id)?.ok_or(StoreError::Corrupt {
            what: "run id",
            value: id,
        })
    }

    /// Moves a queued run to Running; `false` if it is no longer queued (canceled).
    pub fn start_run(&self, id: &str) -> Result<bool> {
        Ok(self.lock().execute(
            "UPDATE runs SET status = ?2, started_at = ?3 WHERE id = ?1 AND status = ?4",
            (
                id,
                RunStatus::Running.as_str(),
                time_text(Utc::now()),
                RunStatus::Queued.as_str(),
            ),
        )? == 1)
    }

    /// Ends an active run with `status` (and a reason); `false` if it had already ended.
    pub fn finish_run(&self, id: &str, status: RunStatus, reason: Option<&str>) -> Result<bool> {
        Ok(self.lock().execute(
            "UPDATE runs SET status = ?2, reason = COALESCE(?3, reason), finished_at = ?4
             WHERE id = ?1 AND status IN ('Queued', 'Running')",
            (id, status.as_str(), reason, time_text(Utc::now())),
        )? == 1)
    }

    pub fn set_patched_image(&self, id: &str, image: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE runs SET patched_image = ?2 WHERE id = ?1",
            (id, image),
        )?;
        Ok(())
    }

    /// Appends one line, timestamped, to a run's log.
    pub fn log(&self, id: &str, line: &str) -> Result<()> {
        let stamped = format!(
            "{} {line}\n",
            Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        self.lock().execute(
            "UPDATE runs SET log = log || ?2 WHERE id = ?1",
            (id, stamped),
        )?;
        Ok(())
    }

    pub fn run_log(&self, id: &str) -> Result<Option<String>> {
        let db = self.lock();
        let mut query = db.prepare("SELECT log FROM runs WHERE id = ?1")?;
        let mut rows = query.query([id])?;
        Ok(match rows.next()? {
            Some(row) => Some(row.get(0)?),
            None => None,
        })
    }

    pub fn run(&self, id: &str) -> Result<Option<Run>> {
        let db = self.lock();
        let mut query = db.prepare(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))?;
        let mut rows = query.query_map([id], run_from_row)?;
        match rows.next() {
            Some(values) => Ok(Some(run_from_values(values?)?)),
            None => Ok(None),
        }
    }

    /// Runs matching `filter`, newest first.
    pub fn runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        let db = self.lock();
        let mut query = db.prepare(&format!(
            "SELECT {RUN_COLUMNS} FROM runs
             WHERE (?1 IS NULL OR workflow = ?1) AND (?2 IS NULL OR kind = ?2)
               AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR parent = ?4)
             ORDER BY seq DESC LIMIT ?5"
        ))?;
        let limit = filter.limit.map_or(-1, |l| l as i64);
        let rows = query.query_map(
            (
                filter.workflow,
                filter.kind.map(TaskKind::as_str),
                filter.status.map(RunStatus::as_str),
                filter.parent,
                limit,
            ),
            run_from_row,
        )?;
        rows.map(|values| run_from_values(values?)).collect()
    }

    /// Marks every queued or running run failed, with `reason`: at start-up,
    /// these are runs a crash or restart interrupted. Returns how many.
    pub fn fail_interrupted(&self, reason: &str) -> Result<usize> {
        Ok(self.lock().execute(
            "UPDATE runs SET status = 'Failed', reason = ?1, finished_at = ?2
             WHERE status IN ('Queued', 'Running')",
            (reason, time_text(Utc::now())),
        )?)
    }

    /// Cancels a workflow's queued and running runs; returns their ids.
    pub fn cancel_active(&self, workflow: &str) -> Result<Vec<String>> {
        let active: Vec<String> = self
            .runs(&RunFilter {
                workflow: Some(workflow),
                ..RunFilter::default()
            })?
            .into_iter()
            .filter(|r| r.status.is_active())
            .map(|r| r.id)
            .collect();
        for id in &active {
            self.finish_run(id, RunStatus::Canceled, Some("canceled by the user"))?;
        }
        Ok(active)
    }
}

impl Store {
    /// The newest run of `kind` of each image (repository and original tag)
    /// of `workflow`, newest first; with `status`, the newest run in that
    /// status. What the per-image status of `workflow list` is built from.
    pub fn latest_runs_by_image(
        &self,
        workflow: &str,
        kind: TaskKind,
        status: Option<RunStatus>,
    ) -> Result<Vec<Run>> {
        let db = self.lock();
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

    #[test]
    fn keeps_workflows_and_runs_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("workflows.db");
        let store = Store::open(&path).unwrap();
        assert!(store.create_workflow(&record("w")).unwrap());
        assert!(
            !store.create_workflow(&record("w")).unwrap(),
            "names are unique"
        );
        let trigger = store
            .queue_run("w", TaskKind::Trigger, NewRun::default())
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
            .unwrap();
        assert_eq!((trigger.id.as_str(), scan.id.as_str()), ("dd1", "dd2"));
        assert!(store.start_run(&trigger.id).unwrap());
        store.log(&trigger.id, "listing tags").unwrap();
        assert!(
            store
                .finish_run(&trigger.id, RunStatus::Succeeded, None)
                .unwrap()
        );
        assert!(
            !store
                .finish_run(&trigger.id, RunStatus::Failed, Some("late"))
                .unwrap(),
            "an ended run stays ended"
        );
        assert!(store.start_run(&scan.id).unwrap());
        drop(store);

        let store = Store::open(&path).unwrap();
        assert_eq!(store.fail_interrupted("drydock restarted").unwrap(), 1);
        let scan = store.run("dd2").unwrap().unwrap();
        assert_eq!(scan.status, RunStatus::Failed);
        assert_eq!(scan.reason.as_deref(), Some("drydock restarted"));
        assert!(
            store
                .run_log("dd1")
                .unwrap()
                .unwrap()
                .contains("listing tags")
        );
        let scans = store
            .runs(&RunFilter {
                kind: Some(TaskKind::Scan),
                ..RunFilter::default()
            })
            .unwrap();
        assert_eq!(scans.len(), 1);
        assert_eq!(
            store.workflow("w").unwrap().unwrap().schedule.every_days(),
            7
        );
        assert!(store.delete_workflow("w").unwrap());
        assert!(store.workflow("w").unwrap().is_none());
    }

    #[test]
    fn adds_the_policy_column_to_older_databases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE workflows (name TEXT PRIMARY KEY, registry TEXT NOT NULL, plain_http INTEGER NOT NULL,
                 config TEXT NOT NULL, schedule TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
                 last_trigger_at TEXT);
             INSERT INTO workflows VALUES ('w', 'r:5000', 1, '{}', '7d', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', NULL);",
        )
        .unwrap();
        drop(old);
        let store = Store::open(&path).unwrap();
        let mut record = store.workflow("w").unwrap().unwrap();
        assert_eq!(record.policy, ScanPolicy::default());
        record.policy.min_severity = Some(advisory::Severity::High);
        record.policy.ignore = vec!["CVE-2024-1".to_string()];
        assert!(store.update_workflow(&record).unwrap());
        let policy = store.workflow("w").unwrap().unwrap().policy;
        assert!(policy.counts("CVE-2024-2", advisory::Severity::Critical));
        assert!(!policy.counts("CVE-2024-2", advisory::Severity::Medium));
        assert!(!policy.counts("CVE-2024-1", advisory::Severity::Critical));
    }

    #[test]
    fn cancels_only_active_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("w.db")).unwrap();
        let done = store
            .queue_run("w", TaskKind::Scan, NewRun::default())
            .unwrap();
        store
            .finish_run(
                &done.id,
                RunStatus::Skipped,
                Some("no fixable OS vulnerabilities found"),
            )
            .unwrap();
        let queued = store
            .queue_run("w", TaskKind::Scan, NewRun::default())
            .unwrap();
        assert_eq!(store.cancel_active("w").unwrap(), vec![queued.id.clone()]);
        assert!(
            !store.start_run(&queued.id).unwrap(),
            "a canceled run never starts"
        );
        assert_eq!(
            store.run(&done.id).unwrap().unwrap().status,
            RunStatus::Skipped
        );
    }
}
