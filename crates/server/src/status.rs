//! The per-image status of a workflow, ACR's `workflow list`: for each image
//! the latest scan, the patch that scan queued, the last patched image and
//! why it was skipped or failed.
//!
//! Owns deriving [`ImageStatus`] rows from stored runs. Reads the store,
//! never writes it; the API and the dashboard present the rows.
//!
//! As ACR (Azure/azure-cli-extensions `src/acrcssc/azext_acrcssc/helper/
//! _workflow_status.py`): one row per image (repository and original tag),
//! from its latest scan; the patch shown is the one that scan queued, if
//! any; an image whose scan ended without queuing a patch has patch status
//! `Skipped`; the row's status is the patch's when there is one, else the
//! scan's, and `--run-status` filters on it. Where ACR parses task logs with
//! regular expressions to find images, patch runs and reasons, drydock
//! reads them from the runs' own fields; and a skip is the scan's own
//! status (`Skipped`), so filtering on `Skipped` needs no special case.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use workflow::{RunStatus, TaskKind};

use crate::store::{Result, Run, Store, WorkflowRecord};

/// One image of a workflow and how its latest run went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageStatus {
    /// The image's repository.
    pub repository: String,
    /// The original tag.
    pub tag: String,
    /// The patch's status when the latest scan queued one, else the scan's.
    pub status: RunStatus,
    /// The latest scan's status.
    pub scan_status: RunStatus,
    /// When the latest scan was queued.
    pub scan_date: DateTime<Utc>,
    /// The latest scan's run id.
    pub scan_run_id: String,
    /// The image the scan looked at (the latest patch, or the original).
    pub scanned_image: Option<String>,
    /// The patch's status; `Skipped` when the scan ended without queuing
    /// one; `None` while the scan has not ended.
    pub patch_status: Option<RunStatus>,
    /// When the scan's patch was queued.
    pub patch_date: Option<DateTime<Utc>>,
    /// The scan's patch run id.
    pub patch_run_id: Option<String>,
    /// The newest patch drydock pushed for this image, by any run.
    pub last_patched_image: Option<String>,
    /// Why the scan or the patch was skipped, failed or canceled.
    pub reason: Option<String>,
}

/// The rows of `record`, newest scan first; with `status`, only the rows
/// in that status. Runs from before the workflow was created (a deleted
/// workflow of the same name) are left out.
pub async fn image_statuses(
    store: &Store,
    record: &WorkflowRecord,
    status: Option<RunStatus>,
) -> Result<Vec<ImageStatus>> {
    let current = |run: &Run| run.queued_at >= record.created_at;
    let by_image = |runs: Vec<Run>| -> BTreeMap<(String, String), Run> {
        runs.into_iter()
            .filter(current)
            .filter_map(|run| Some(((run.repository.clone()?, run.tag.clone()?), run)))
            .collect()
    };
    let patches = by_image(
        store
            .latest_runs_by_image(&record.name, TaskKind::Patch, None)
            .await?,
    );
    let pushed = by_image(
        store
            .latest_runs_by_image(&record.name, TaskKind::Patch, Some(RunStatus::Succeeded))
            .await?,
    );
    let scans = store
        .latest_runs_by_image(&record.name, TaskKind::Scan, None)
        .await?;
    let rows = scans.into_iter().filter(current).filter_map(|scan| {
        let key = (scan.repository.clone()?, scan.tag.clone()?);
        // The runner queues a scan's patch under the scan's trigger.
        let patch = patches
            .get(&key)
            .filter(|patch| patch.parent.is_some() && patch.parent == scan.parent);
        let pushed = pushed.get(&key);
        Some(row(key, scan, patch, pushed))
    });
    Ok(rows
        .filter(|row| status.is_none_or(|status| row.status == status))
        .collect())
}

fn row(
    (repository, tag): (String, String),
    scan: Run,
    patch: Option<&Run>,
    pushed: Option<&Run>,
) -> ImageStatus {
    let patch_status = match patch {
        Some(patch) => Some(patch.status),
        None if scan.status.is_active() => None,
        None => Some(RunStatus::Skipped),
    };
    let ended_badly = |run: &Run| {
        matches!(
            run.status,
            RunStatus::Skipped | RunStatus::Failed | RunStatus::Canceled
        )
    };
    let reason = patch
        .filter(|patch| ended_badly(patch))
        .and_then(|patch| patch.reason.clone())
        .or_else(|| scan.reason.clone().filter(|_| ended_badly(&scan)));
    ImageStatus {
        repository,
        tag,
        status: patch.map_or(scan.status, |patch| patch.status),
        scan_status: scan.status,
        scan_date: scan.queued_at,
        scan_run_id: scan.id,
        scanned_image: scan.image,
        patch_status,
        patch_date: patch.map(|patch| patch.queued_at),
        patch_run_id: patch.map(|patch| patch.id.clone()),
        last_patched_image: pushed.and_then(|run| run.patched_image.clone()),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewRun;
    use workflow::Schedule;

    async fn scan_and_patch(
        store: &Store,
        trigger: &str,
        tag: &str,
        scan_end: (RunStatus, &str),
    ) -> String {
        let new = NewRun {
            parent: Some(trigger),
            image: Some("r/debian:12"),
            repository: Some("debian"),
            tag: Some(tag),
        };
        let scan = store
            .queue_run("w", TaskKind::Scan, new.clone())
            .await
            .unwrap();
        store.start_run(&scan.id).await.unwrap();
        store
            .finish_run(&scan.id, scan_end.0, Some(scan_end.1))
            .await
            .unwrap();
        if scan_end.0 != RunStatus::Succeeded {
            return scan.id;
        }
        let patch = store.queue_run("w", TaskKind::Patch, new).await.unwrap();
        store.start_run(&patch.id).await.unwrap();
        store
            .set_patched_image(&patch.id, &format!("r/debian:{tag}-1"))
            .await
            .unwrap();
        store
            .finish_run(&patch.id, RunStatus::Succeeded, None)
            .await
            .unwrap();
        patch.id
    }

    #[tokio::test]
    async fn one_row_per_image_from_its_latest_scan() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("w.db")).unwrap();
        let record = WorkflowRecord {
            name: "w".to_string(),
            registry: "r".to_string(),
            plain_http: true,
            config: String::new(),
            schedule: Schedule::parse("1d").unwrap(),
            created_at: Utc::now() - chrono::Duration::seconds(1),
            updated_at: Utc::now(),
            last_trigger_at: None,
            policy: Default::default(),
        };
        let first = store
            .queue_run("w", TaskKind::Trigger, NewRun::default())
            .await
            .unwrap();
        let patch =
            scan_and_patch(&store, &first.id, "12", (RunStatus::Succeeded, "1 fixable")).await;
        let rows = image_statuses(&store, &record, None).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status, RunStatus::Succeeded);
        assert_eq!(rows[0].patch_run_id.as_deref(), Some(patch.as_str()));
        assert_eq!(rows[0].reason, None);

        // The next run finds nothing: the patch of the earlier run is not this run's.
        let second = store
            .queue_run("w", TaskKind::Trigger, NewRun::default())
            .await
            .unwrap();
        let skip = "no fixable OS vulnerabilities found";
        let scan = scan_and_patch(&store, &second.id, "12", (RunStatus::Skipped, skip)).await;
        let rows = image_statuses(&store, &record, None).await.unwrap();
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.scan_run_id, scan);
        assert_eq!(
            (row.status, row.patch_status, row.patch_run_id.as_deref()),
            (RunStatus::Skipped, Some(RunStatus::Skipped), None)
        );
        assert_eq!(row.reason.as_deref(), Some(skip));
        assert_eq!(row.last_patched_image.as_deref(), Some("r/debian:12-1"));

        assert_eq!(
            image_statuses(&store, &record, Some(RunStatus::Skipped))
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            image_statuses(&store, &record, Some(RunStatus::Succeeded))
                .await
                .unwrap()
                .is_empty()
        );
    }
}
