//! The dashboard: one server-rendered HTML page at `/` (and `/dashboard`)
//! that refreshes itself every 10 seconds.
//!
//! Owns presenting workflows (schedule, last and next run), the per-image
//! status of each ([`crate::status`]) and the recent runs with links to
//! their logs (`/api/v1/runs/{id}/log`). Read-only: no forms, no scripts.
//! The page is the askama template `templates/dashboard.html`; this module
//! gathers plain values into it and askama HTML-escapes every one of them
//! (so nothing here escapes, and nothing is escaped twice).

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use workflow::{RunStatus, TaskKind};

use crate::api::error_chain;
use crate::runner::Runner;
use crate::scheduler;
use crate::status::{ImageStatus, image_statuses};
use crate::store::{Run, RunFilter, Store, StoreError, WorkflowRecord};

/// Runs listed under "Recent runs".
const RECENT_RUNS: usize = 50;

/// The page refreshes itself this often.
const REFRESH: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct DashboardState {
    runner: Arc<Runner>,
    /// `host:port` of the embedded registry, named in the page's header.
    registry: Arc<str>,
}

/// `GET /` and `GET /dashboard`; `registry` is named in the page's header.
pub fn router(runner: Arc<Runner>, registry: String) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/dashboard", get(page))
        .with_state(DashboardState {
            runner,
            registry: registry.into(),
        })
}

/// Why the page could not be shown.
#[derive(Debug, thiserror::Error)]
enum DashboardError {
    /// The workflow database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The template failed to render.
    #[error("rendering the dashboard")]
    Render(#[from] askama::Error),
}

/// The page shown instead when the dashboard fails.
#[derive(Template)]
#[template(
    source = "<!doctype html><title>drydock</title><p>The dashboard cannot be shown: {{ error }}</p>",
    ext = "html"
)]
struct ErrorPage {
    error: String,
}

async fn page(State(state): State<DashboardState>) -> Response {
    match render(state.runner.store(), &state.registry, Utc::now()).await {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            let error = error_chain(&e);
            tracing::error!("dashboard: {error}");
            let html = ErrorPage { error }
                .render()
                .unwrap_or_else(|_| "The dashboard cannot be shown.".to_string());
            (StatusCode::INTERNAL_SERVER_ERROR, Html(html)).into_response()
        }
    }
}

/// The whole page.
#[derive(Template)]
#[template(path = "dashboard.html")]
struct Page<'a> {
    registry: &'a str,
    now: String,
    refresh_seconds: u64,
    refresh: String,
    workflows: Vec<WorkflowRow>,
    images: Vec<WorkflowImages>,
    runs: Vec<RunRow>,
}

/// A run status as the page shows it: its name, styled by its class.
#[derive(Clone, Copy)]
struct Status(RunStatus);

impl Status {
    fn name(&self) -> &'static str {
        self.0.as_str()
    }

    fn class(&self) -> String {
        self.0.as_str().to_ascii_lowercase()
    }
}

struct WorkflowRow {
    name: String,
    registry: String,
    schedule: String,
    cron: String,
    created: String,
    last_trigger: String,
    next_run: String,
}

struct WorkflowImages {
    name: String,
    rows: Vec<ImageRow>,
}

struct ImageRow {
    repository: String,
    tag: String,
    status: Option<Status>,
    scan_status: Option<Status>,
    scanned: String,
    scan_run: String,
    patch_status: Option<Status>,
    patched: Option<String>,
    patch_run: Option<String>,
    last_patched_image: Option<String>,
    reason: Option<String>,
}

struct RunRow {
    id: String,
    kind: TaskKind,
    workflow: String,
    status: Option<Status>,
    image: Option<String>,
    queued: String,
    duration: String,
    reason: Option<String>,
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// How long a run took, to a tenth of a second.
fn duration(started: Option<DateTime<Utc>>, finished: Option<DateTime<Utc>>) -> String {
    match (started, finished) {
        (Some(started), Some(finished)) => {
            let tenths = (finished - started).num_milliseconds().max(0) / 100;
            let took = Duration::from_millis(u64::try_from(tenths * 100).unwrap_or(0));
            humantime::format_duration(took).to_string()
        }
        (Some(_), None) => "running".to_string(),
        _ => "—".to_string(),
    }
}

fn workflow_row(record: &WorkflowRecord, now: DateTime<Utc>) -> WorkflowRow {
    WorkflowRow {
        name: record.name.clone(),
        registry: record.registry.clone(),
        schedule: record.schedule.to_string(),
        cron: record.schedule.cron(record.created_at),
        created: time(record.created_at),
        last_trigger: record
            .last_trigger_at
            .map_or_else(|| "never".to_string(), time),
        next_run: time(scheduler::next_run(record, now)),
    }
}

fn image_row(row: ImageStatus) -> ImageRow {
    ImageRow {
        repository: row.repository,
        tag: row.tag,
        status: Some(Status(row.status)),
        scan_status: Some(Status(row.scan_status)),
        scanned: time(row.scan_date),
        scan_run: row.scan_run_id,
        patch_status: row.patch_status.map(Status),
        patched: row.patch_date.map(time),
        patch_run: row.patch_run_id,
        last_patched_image: row.last_patched_image,
        reason: row.reason,
    }
}

fn run_row(run: Run) -> RunRow {
    RunRow {
        duration: duration(run.started_at, run.finished_at),
        id: run.id,
        kind: run.kind,
        workflow: run.workflow,
        status: Some(Status(run.status)),
        image: run.patched_image.or(run.image),
        queued: time(run.queued_at),
        reason: run.reason,
    }
}

/// The whole page as of `now`.
async fn render(
    store: &Store,
    registry: &str,
    now: DateTime<Utc>,
) -> Result<String, DashboardError> {
    let workflows = store.workflows().await?;
    let mut images = Vec::with_capacity(workflows.len());
    for record in &workflows {
        images.push(WorkflowImages {
            name: record.name.clone(),
            rows: image_statuses(store, record, None)
                .await?
                .into_iter()
                .map(image_row)
                .collect(),
        });
    }
    let runs = store
        .runs(&RunFilter {
            limit: Some(RECENT_RUNS),
            ..RunFilter::default()
        })
        .await?;
    let page = Page {
        registry,
        now: time(now),
        refresh_seconds: REFRESH.as_secs(),
        refresh: humantime::format_duration(REFRESH).to_string(),
        workflows: workflows
            .iter()
            .map(|record| workflow_row(record, now))
            .collect(),
        images,
        runs: runs.into_iter().map(run_row).collect(),
    };
    Ok(page.render()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewRun;
    use workflow::Schedule;

    #[tokio::test]
    async fn escapes_everything_it_shows_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("w.db")).unwrap();
        let now = Utc::now() - chrono::Duration::seconds(1);
        store
            .create_workflow(&WorkflowRecord {
                name: "w".to_string(),
                registry: "<script>registry</script>".to_string(),
                plain_http: true,
                config: String::new(),
                schedule: Schedule::parse("7d").unwrap(),
                created_at: now,
                updated_at: now,
                last_trigger_at: None,
                policy: Default::default(),
            })
            .await
            .unwrap();
        let scan = store
            .queue_run(
                "w",
                TaskKind::Scan,
                NewRun {
                    parent: Some("dd0"),
                    image: Some("r/app:<b>"),
                    repository: Some("app"),
                    tag: Some("<b>"),
                },
            )
            .await
            .unwrap();
        store.start_run(&scan.id).await.unwrap();
        store
            .finish_run(
                &scan.id,
                RunStatus::Failed,
                Some("<img src=x onerror=alert(1)> & 'more'"),
            )
            .await
            .unwrap();
        let html = render(&store, "<i>me</i>", Utc::now()).await.unwrap();
        assert!(html.starts_with("<!doctype html>\n"), "{html}");
        assert!(html.contains("http-equiv=\"refresh\" content=\"10\""));
        assert!(html.contains("refreshes every 10s"));
        assert!(html.contains(&format!(
            "<a href=\"/api/v1/runs/{0}/log\">{0}</a>",
            scan.id
        )));
        assert!(html.contains("<span class=\"status failed\">Failed</span>"));
        assert!(html.contains("<h2>Images of w</h2>"));
        assert!(html.contains("<td>app:&#60;b&#62;</td>"), "{html}");
        for raw in ["<script>", "<b>", "<img", "<i>"] {
            assert!(!html.contains(raw), "{raw} reached the page unescaped");
        }
        assert!(html.contains("&#60;img src=x onerror=alert(1)&#62; &#38; &#39;more&#39;"));
        assert!(html.contains("Registry &#60;i&#62;me&#60;/i&#62;"));
        assert!(!html.contains("&#38;#"), "escaped twice");
    }

    #[tokio::test]
    async fn says_when_there_is_nothing_yet() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("w.db")).unwrap();
        let html = render(&store, "127.0.0.1:5000", Utc::now()).await.unwrap();
        assert!(html.contains("<p>No workflows yet."));
        assert!(html.contains("<p class=\"muted\">No runs yet.</p>"));
        assert!(html.ends_with("</body></html>\n") || html.ends_with("</body></html>"));
    }

    #[test]
    fn durations_to_a_tenth_of_a_second() {
        let start = Utc::now();
        let after = |ms| Some(start + chrono::Duration::milliseconds(ms));
        assert_eq!(duration(Some(start), after(1_234)), "1s 200ms");
        assert_eq!(duration(Some(start), after(61_000)), "1m 1s");
        assert_eq!(duration(Some(start), after(40)), "0s");
        assert_eq!(duration(Some(start), None), "running");
        assert_eq!(duration(None, None), "—");
    }

    #[test]
    fn the_error_page_escapes_the_error() {
        let html = ErrorPage {
            error: "<b>broken</b>".to_string(),
        }
        .render()
        .unwrap();
        assert!(
            html.ends_with("cannot be shown: &#60;b&#62;broken&#60;/b&#62;</p>"),
            "{html}"
        );
    }
}
