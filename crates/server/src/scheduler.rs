//! When workflows run: the daemon's clock.
//!
//! Owns deciding that a workflow is due ([`due_at`], [`next_run`]) and the
//! loop that triggers due workflows ([`start`]). Never runs a pipeline
//! itself (the [`Runner`] does) and never changes a workflow beyond what a
//! trigger records.
//!
//! A workflow is due at the first occurrence of its schedule
//! ([`workflow::Schedule::next_after`], at the time of day it was created)
//! strictly after the later of its last trigger and its last change (an
//! update never makes occurrences before it due). The loop looks every
//! [`TICK`] and once at start, and triggers each workflow due at or before
//! now; the trigger records its time, which moves the workflow's next
//! occurrence on. So a daemon that was down at one or more scheduled times
//! runs each such workflow once when it comes back, not once per missed
//! occurrence, and then follows the schedule again.
//!
//! At start, runs that were queued or running when the daemon stopped are
//! marked failed ([`INTERRUPTED`]): their work died with the process. A tag
//! only moves once everything it points to is in the registry, so they left
//! no partial patch; the next trigger scans and patches those images again.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::runner::{Runner, RunnerError};
use crate::store::{StoreError, WorkflowRecord};

/// How often the loop looks for due workflows.
pub const TICK: Duration = Duration::from_secs(15);

/// The reason given to runs a stop interrupted.
pub const INTERRUPTED: &str =
    "drydock stopped while this run was active; the next trigger retries it";

/// When the scheduler triggers `record`: the first occurrence of its
/// schedule after its last trigger or last change, whichever is later. In
/// the past when the daemon was down at that time.
pub fn due_at(record: &WorkflowRecord) -> DateTime<Utc> {
    let since = record
        .last_trigger_at
        .map_or(record.updated_at, |last| last.max(record.updated_at));
    record.schedule.next_after(record.created_at, since)
}

/// When `record` runs next as seen at `now`: [`due_at`], or `now` when it
/// is overdue (the loop triggers it within one [`TICK`]).
pub fn next_run(record: &WorkflowRecord, now: DateTime<Utc>) -> DateTime<Utc> {
    due_at(record).max(now)
}

/// Fails the runs a stop interrupted, then spawns the loop: at once and
/// every [`TICK`], every due workflow is triggered. Returns the loop's task.
pub async fn start(runner: Arc<Runner>) -> Result<tokio::task::JoinHandle<()>, StoreError> {
    let failed = runner.store().fail_interrupted(INTERRUPTED).await?;
    if failed > 0 {
        tracing::warn!("{failed} run(s) were active when drydock stopped; marked failed");
    }
    Ok(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            trigger_due(&runner, Utc::now()).await;
            crate::runner::release_freed_memory();
        }
    }))
}

/// Triggers every workflow due at `now`.
async fn trigger_due(runner: &Arc<Runner>, now: DateTime<Utc>) {
    let workflows = match runner.store().workflows().await {
        Ok(workflows) => workflows,
        Err(e) => {
            tracing::error!("scheduler: cannot read the workflows: {e}");
            return;
        }
    };
    for record in workflows.iter().filter(|record| due_at(record) <= now) {
        match runner.trigger(&record.name).await {
            Ok(run) => tracing::info!(
                "scheduler: workflow {} is due ({}); trigger run {}",
                record.name,
                due_at(record),
                run.id
            ),
            // Deleted since it was listed.
            Err(RunnerError::NoWorkflow(_)) => {}
            Err(e) => tracing::error!("scheduler: cannot trigger workflow {}: {e}", record.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use workflow::Schedule;

    fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, hour, minute, 0).unwrap()
    }

    fn record(created_at: DateTime<Utc>) -> WorkflowRecord {
        WorkflowRecord {
            name: "continuouspatch".to_string(),
            registry: "127.0.0.1:5000".to_string(),
            plain_http: true,
            config: String::new(),
            schedule: Schedule::parse("7d").unwrap(),
            created_at,
            updated_at: created_at,
            last_trigger_at: None,
            policy: Default::default(),
        }
    }

    #[test]
    fn due_at_the_first_occurrence_after_creation() {
        // 7d: the 1st, 8th, 15th, 22nd, 29th at the creation's time of day.
        let created = record(at(3, 10, 30));
        assert_eq!(due_at(&created), at(8, 10, 30));
        assert_eq!(next_run(&created, at(4, 0, 0)), at(8, 10, 30));
    }

    #[test]
    fn a_daemon_down_at_scheduled_times_runs_once_when_back() {
        let mut workflow = record(at(3, 10, 30));
        // Down from the 5th to the 20th: the 8th and the 15th were missed.
        let back = at(20, 9, 0);
        assert!(due_at(&workflow) <= back, "overdue when the daemon is back");
        assert_eq!(next_run(&workflow, back), back);
        // The one trigger it gets moves it to the next occurrence.
        workflow.last_trigger_at = Some(back);
        assert_eq!(due_at(&workflow), at(22, 10, 30));
        assert!(due_at(&workflow) > back);
    }

    #[test]
    fn an_immediate_run_does_not_replace_the_schedule() {
        let mut workflow = record(at(3, 10, 30));
        workflow.last_trigger_at = Some(at(3, 10, 31));
        assert_eq!(due_at(&workflow), at(8, 10, 30));
    }

    #[tokio::test]
    async fn start_fails_interrupted_runs_then_triggers_an_overdue_workflow_once() {
        use crate::runner::RunnerOptions;
        use crate::store::{NewRun, RunFilter, Store};
        use workflow::{RunStatus, TaskKind};

        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("workflows.db")).unwrap());
        // Created ten days ago, runs daily, never triggered: the daemon was down.
        let mut overdue = record(Utc::now() - chrono::Duration::days(10));
        overdue.schedule = Schedule::parse("1d").unwrap();
        // Nothing listens there: the trigger itself fails at once.
        overdue.registry = "127.0.0.1:9".to_string();
        store.create_workflow(&overdue).await.unwrap();
        let stale = store
            .queue_run(&overdue.name, TaskKind::Scan, NewRun::default())
            .await
            .unwrap();
        let environment = environment::Environment::new(environment::Config {
            offline: true,
            ..environment::Config::new(dir.path())
        })
        .unwrap();
        let runner = Runner::new(
            store.clone(),
            Arc::new(environment),
            RunnerOptions {
                parallelism: 1,
                advisory_max_age: std::time::Duration::from_secs(86400),
            },
        )
        .unwrap();
        let triggers = || async {
            store
                .runs(&RunFilter {
                    kind: Some(TaskKind::Trigger),
                    ..RunFilter::default()
                })
                .await
                .unwrap()
        };

        let scheduler = start(runner.clone()).await.unwrap();
        let stale = store.run(&stale.id).await.unwrap().unwrap();
        assert_eq!(
            (stale.status, stale.reason.as_deref()),
            (RunStatus::Failed, Some(INTERRUPTED))
        );
        let waited = std::time::Instant::now();
        while triggers().await.is_empty() {
            assert!(
                waited.elapsed() < Duration::from_secs(10),
                "never triggered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let record = store.workflow(&overdue.name).await.unwrap().unwrap();
        assert!(due_at(&record) > Utc::now(), "the trigger moved it on");
        trigger_due(&runner, Utc::now()).await;
        assert_eq!(
            triggers().await.len(),
            1,
            "one run for all missed occurrences"
        );
        scheduler.abort();
    }

    #[test]
    fn an_update_never_makes_earlier_occurrences_due() {
        let mut workflow = record(at(3, 10, 30));
        workflow.schedule = Schedule::parse("1d").unwrap();
        workflow.updated_at = at(12, 8, 0);
        assert_eq!(due_at(&workflow), at(12, 10, 30));
    }
}
