//! The dashboard: one server-rendered HTML page at `/` (and `/dashboard`)
//! that refreshes itself every 10 seconds.
//!
//! Owns presenting workflows (schedule, last and next run), the per-image
//! status of each ([`crate::status`]) and the recent runs with links to
//! their logs (`/api/v1/runs/{id}/log`). Read-only: no forms, no scripts.
//! Every value that comes from a user, a registry or a run is HTML-escaped
//! ([`escape`]) before it is written into the page.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use workflow::RunStatus;

use crate::runner::Runner;
use crate::scheduler;
use crate::status::image_statuses;
use crate::store::{Result, RunFilter, Store};

/// Runs listed under "Recent runs".
const RECENT_RUNS: usize = 50;

/// The page refreshes itself after this many seconds.
const REFRESH_SECONDS: u32 = 10;

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

async fn page(State(state): State<DashboardState>) -> Response {
    match render(state.runner.store(), &state.registry, Utc::now()) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!("dashboard: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(format!(
                    "<!doctype html><title>drydock</title><p>The dashboard cannot be shown: {}</p>",
                    escape(&e.to_string())
                )),
            )
                .into_response()
        }
    }
}

/// `text` safe inside HTML elements and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn optional(text: Option<&str>) -> String {
    text.map_or_else(|| "—".to_string(), escape)
}

fn status(status: Option<RunStatus>) -> String {
    match status {
        Some(status) => format!(
            "<span class=\"status {}\">{}</span>",
            status.as_str().to_ascii_lowercase(),
            status
        ),
        None => "—".to_string(),
    }
}

fn log_link(id: &str) -> String {
    let id = escape(id);
    format!("<a href=\"/api/v1/runs/{id}/log\">{id}</a>")
}

fn duration(started: Option<DateTime<Utc>>, finished: Option<DateTime<Utc>>) -> String {
    match (started, finished) {
        (Some(started), Some(finished)) => {
            format!(
                "{:.1} s",
                (finished - started).num_milliseconds() as f64 / 1000.0
            )
        }
        (Some(_), None) => "running".to_string(),
        _ => "—".to_string(),
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin-bottom:2em}\
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}pre{margin:0}.muted{color:#777}\
.status{font-weight:600}.succeeded{color:#17692b}.failed{color:#b00020}\
.skipped{color:#6b5b00}.canceled{color:#777}.running,.queued{color:#0b57d0}";

/// The whole page as of `now`.
fn render(store: &Store, registry: &str, now: DateTime<Utc>) -> Result<String> {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <title>drydock</title><style>{STYLE}</style></head><body>\n\
         <h1>drydock</h1>\n<p class=\"muted\">Registry {} · as of {} · refreshes every {REFRESH_SECONDS} s · \
         <a href=\"/api/v1/workflows\">API</a></p>\n",
        escape(registry),
        time(now),
    );

    let workflows = store.workflows()?;
    html.push_str("<h2>Workflows</h2>\n");
    if workflows.is_empty() {
        html.push_str(
            "<p>No workflows yet. Create one with <code>drydock workflow create --config FILE --schedule 7d</code>.</p>\n",
        );
    } else {
        html.push_str(
            "<table><tr><th>Workflow</th><th>Registry</th><th>Schedule</th><th>Created</th>\
             <th>Last trigger</th><th>Next run</th></tr>\n",
        );
        for record in &workflows {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{} (<code>{}</code>)</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&record.name),
                escape(&record.registry),
                escape(&record.schedule.to_string()),
                escape(&record.schedule.cron(record.created_at)),
                time(record.created_at),
                record
                    .last_trigger_at
                    .map_or_else(|| "never".to_string(), time),
                time(scheduler::next_run(record, now)),
            );
        }
        html.push_str("</table>\n");
    }

    for record in &workflows {
        let _ = writeln!(html, "<h2>Images of {}</h2>", escape(&record.name));
        let rows = image_statuses(store, record, None)?;
        if rows.is_empty() {
            html.push_str("<p class=\"muted\">No image scanned yet.</p>\n");
            continue;
        }
        html.push_str(
            "<table><tr><th>Image</th><th>Status</th><th>Scan</th><th>Scanned</th><th>Scan run</th>\
             <th>Patch</th><th>Patched</th><th>Patch run</th><th>Last patched image</th><th>Reason</th></tr>\n",
        );
        for row in rows {
            let _ = writeln!(
                html,
                "<tr><td>{}:{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&row.repository),
                escape(&row.tag),
                status(Some(row.status)),
                status(Some(row.scan_status)),
                time(row.scan_date),
                log_link(&row.scan_run_id),
                status(row.patch_status),
                row.patch_date.map_or_else(|| "—".to_string(), time),
                row.patch_run_id
                    .as_deref()
                    .map_or_else(|| "—".to_string(), log_link),
                optional(row.last_patched_image.as_deref()),
                optional(row.reason.as_deref()),
            );
        }
        html.push_str("</table>\n");
    }

    let runs = store.runs(&RunFilter {
        limit: Some(RECENT_RUNS),
        ..RunFilter::default()
    })?;
    html.push_str("<h2>Recent runs</h2>\n");
    if runs.is_empty() {
        html.push_str("<p class=\"muted\">No runs yet.</p>\n");
    } else {
        html.push_str(
            "<table><tr><th>Run (log)</th><th>Task</th><th>Workflow</th><th>Status</th><th>Image</th>\
             <th>Queued</th><th>Duration</th><th>Result</th></tr>\n",
        );
        for run in runs {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                log_link(&run.id),
                run.kind,
                escape(&run.workflow),
                status(Some(run.status)),
                optional(run.patched_image.as_deref().or(run.image.as_deref())),
                time(run.queued_at),
                duration(run.started_at, run.finished_at),
                optional(run.reason.as_deref()),
            );
        }
        html.push_str("</table>\n");
    }
    html.push_str("</body></html>\n");
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewRun, WorkflowRecord};
    use workflow::{Schedule, TaskKind};

    #[test]
    fn escapes_everything_it_shows() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
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
            .unwrap();
        store
            .finish_run(
                &scan.id,
                RunStatus::Failed,
                Some("<img src=x onerror=alert(1)>"),
            )
            .unwrap();
        let html = render(&store, "<i>me</i>", Utc::now()).unwrap();
        assert!(html.contains("http-equiv=\"refresh\" content=\"10\""));
        assert!(html.contains(&format!("href=\"/api/v1/runs/{}/log\"", scan.id)));
        for raw in ["<script>", "<b>", "<img", "<i>"] {
            assert!(!html.contains(raw), "{raw} reached the page unescaped");
        }
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    }
}
