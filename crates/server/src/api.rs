//! The HTTP API under `/api/v1`: workflows and their runs, what the
//! `drydock workflow` and `drydock task` commands talk to.
//!
//! Owns the routes, the request and response bodies (the wire types the CLI
//! reads too) and the mapping of every failure to a status and a JSON body
//! `{"error": "…"}`: 400 for invalid input, 404 for a missing workflow or
//! run, 409 for a workflow that exists, 502 when the workflow's registry
//! cannot be listed. Handlers validate and translate; matching, running and
//! storing belong to [`workflow`], the [`Runner`] and the [`Store`].
//!
//! | route | what |
//! |---|---|
//! | `POST /api/v1/workflows` | create ([`CreateWorkflow`]); with `dry_run` only the listing |
//! | `GET /api/v1/workflows` | every workflow ([`WorkflowView`]) |
//! | `GET /api/v1/workflows/{name}` | show |
//! | `PATCH /api/v1/workflows/{name}` | update ([`UpdateWorkflow`]) |
//! | `DELETE /api/v1/workflows/{name}` | cancel its active runs and remove it (patched images stay) |
//! | `POST /api/v1/workflows/{name}/cancel` | cancel its queued and running runs |
//! | `GET /api/v1/workflows/{name}/images?run_status=S` | per-image status ([`ImageStatus`]) |
//! | `GET /api/v1/runs?kind=&workflow=&status=&limit=` | runs, newest first ([`RunView`]) |
//! | `GET /api/v1/runs/{id}` | one run |
//! | `GET /api/v1/runs/{id}/log` | its log, `text/plain` |
//!
//! Validation follows ACR's `az acr supply-chain workflow` in order and
//! words (Azure/azure-cli-extensions `src/acrcssc/azext_acrcssc/`:
//! `_validators.py`, `helper/_constants.py`): the schedule, the config, then
//! `dry_run` against `run_immediately`; the dry run is always computed
//! and a config matching more than 100 images is refused; "already exists"
//! and "does not exist" say which command to use instead. Messages name
//! the request's fields, never the CLI's options (the CLI words its own).
//!
//! Handlers never block the runtime: the store runs its queries on the
//! blocking thread pool.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use patch::patcher::ScriptMode;
use serde::{Deserialize, Serialize};
use workflow::{
    Config, ConfigError, DryRun, RunStatus, Schedule, ScheduleError, TaskKind, UnknownName,
};

use crate::runner::{Runner, RunnerError};
use crate::scheduler;
use crate::status::{self, ImageStatus};
use crate::store::{Run, RunFilter, ScanPolicy, Store, StoreError, WorkflowRecord};

/// The workflow name when none is given (ACR's only workflow).
pub const DEFAULT_WORKFLOW: &str = "continuouspatch";

/// Runs listed when `limit` is not given.
pub const DEFAULT_RUN_LIMIT: usize = 100;

/// Why a request failed; the response is its status and `{"error": message}`,
/// the message followed by its causes.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or holds an invalid value (400).
    #[error("{0}")]
    BadRequest(String),
    /// The schedule is not `Nd` with 1 ≤ N ≤ 30 (400).
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// The config was refused (400).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A run status or task in the query is not one of its spellings (400).
    #[error(transparent)]
    UnknownName(#[from] UnknownName),
    /// The workflow, run or route does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// A workflow of that name exists already (409).
    #[error("{0}")]
    Conflict(String),
    /// The runner could not list, match or trigger: 400 for the config or
    /// a repository name, 404 for a missing workflow, 502 when the registry
    /// cannot be listed, else 500.
    #[error(transparent)]
    Runner(Box<RunnerError>),
    /// The workflow database failed (500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<RunnerError> for ApiError {
    fn from(error: RunnerError) -> ApiError {
        ApiError::Runner(Box::new(error))
    }
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_)
            | ApiError::Schedule(_)
            | ApiError::Config(_)
            | ApiError::UnknownName(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Runner(error) => match **error {
                RunnerError::Config(_)
                | RunnerError::TooManyImages(_)
                | RunnerError::Repository { .. } => StatusCode::BAD_REQUEST,
                RunnerError::NoWorkflow(_) => StatusCode::NOT_FOUND,
                RunnerError::Registry { .. } => StatusCode::BAD_GATEWAY,
                RunnerError::Store(_) | RunnerError::Environment(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, then its causes, separated by `: `.
    pub error: String,
}

pub(crate) use oci::error_chain;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let error = error_chain(&self);
        if status.is_server_error() {
            tracing::error!("API request failed: {error}");
        }
        (status, Json(ErrorBody { error })).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn default_name() -> String {
    DEFAULT_WORKFLOW.to_string()
}

/// `POST /api/v1/workflows`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateWorkflow {
    /// The workflow's name; `continuouspatch` when absent.
    #[serde(default = "default_name")]
    pub name: String,
    /// The config file's text (`continuouspatching.json`).
    pub config: String,
    /// `Nd`, 1 ≤ N ≤ 30.
    pub schedule: String,
    /// Only compute and return the dry run; store nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Trigger a run now, then follow the schedule.
    #[serde(default)]
    pub run_immediately: bool,
    /// `host[:port]` of the registry holding the images; default: this
    /// server's embedded registry.
    #[serde(default)]
    pub registry: Option<String>,
    /// Speak plain HTTP to the registry; default: for loopback hosts only.
    #[serde(default)]
    pub plain_http: Option<bool>,
    /// drydock's addition: patch only for findings of this severity or
    /// higher (`LOW`, `MEDIUM`, `HIGH`, `CRITICAL`).
    #[serde(default)]
    pub min_severity: Option<String>,
    /// drydock's addition: vulnerability ids that never call for a patch.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// drydock's addition: `native` (the default) or `sandbox` (the
    /// image's own dpkg runs the maintainer scripts under bubblewrap).
    #[serde(default)]
    pub maintainer_scripts: Option<String>,
}

/// `PATCH /api/v1/workflows/{name}`: at least one of `config` and `schedule`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateWorkflow {
    /// A new config file's text.
    #[serde(default)]
    pub config: Option<String>,
    /// A new schedule, `Nd`.
    #[serde(default)]
    pub schedule: Option<String>,
    /// Replaces the severity threshold (`NONE` removes it).
    #[serde(default)]
    pub min_severity: Option<String>,
    /// Replaces the ignore list.
    #[serde(default)]
    pub ignore: Option<Vec<String>>,
    /// Replaces how maintainer scripts are handled (`native`, `sandbox`).
    #[serde(default)]
    pub maintainer_scripts: Option<String>,
    /// Only compute and return the dry run of the change; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Trigger a run now, then follow the schedule.
    #[serde(default)]
    pub run_immediately: bool,
}

/// The answer to a create or an update.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkflowChange {
    /// The workflow's name.
    pub workflow: String,
    /// The dry run, exactly as [`workflow::render_dry_run`] writes it.
    pub dry_run: String,
    /// Images the config matches now.
    pub matches: usize,
    /// False for a dry run: nothing was stored.
    pub saved: bool,
    /// The trigger run queued by `run_immediately`.
    pub run_id: Option<String>,
    /// The workflow's schedule (the new one after an update).
    pub schedule: Schedule,
    /// When the schedule runs the workflow next (none for a dry run).
    pub next_run: Option<DateTime<Utc>>,
}

/// One of a workflow's three tasks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskView {
    /// The task.
    pub name: TaskKind,
    /// What it does.
    pub description: String,
}

/// A workflow as `show` presents it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkflowView {
    /// The workflow's name.
    pub name: String,
    /// `host[:port]` of the registry holding its images.
    pub registry: String,
    /// The registry is reached over plain HTTP.
    pub plain_http: bool,
    /// The config file's text.
    pub config: String,
    /// How often it runs (`Nd`).
    pub schedule: Schedule,
    /// The schedule as ACR's cron expression (`M H */N * *`, UTC).
    pub cron: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its config, schedule or policy last changed.
    pub updated_at: DateTime<Utc>,
    /// When a trigger last ran.
    pub last_trigger_at: Option<DateTime<Utc>>,
    /// drydock's additions to when a scan leads to a patch.
    #[serde(default)]
    pub policy: ScanPolicy,
    /// When the scheduler triggers it next.
    pub next_run: DateTime<Utc>,
    /// Its three tasks, in order.
    pub tasks: Vec<TaskView>,
}

impl WorkflowView {
    fn new(record: WorkflowRecord, now: DateTime<Utc>) -> WorkflowView {
        WorkflowView {
            next_run: scheduler::next_run(&record, now),
            cron: record.schedule.cron(record.created_at),
            tasks: TaskKind::ALL
                .iter()
                .map(|&kind| TaskView {
                    name: kind,
                    description: kind.description().to_string(),
                })
                .collect(),
            name: record.name,
            registry: record.registry,
            plain_http: record.plain_http,
            config: record.config,
            schedule: record.schedule,
            created_at: record.created_at,
            updated_at: record.updated_at,
            last_trigger_at: record.last_trigger_at,
            policy: record.policy,
        }
    }
}

/// A task run as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunView {
    /// The run's id (`dd1`, …).
    pub id: String,
    /// The workflow it belongs to.
    pub workflow: String,
    /// Trigger, scan or patch.
    pub kind: TaskKind,
    /// Where it stands.
    pub status: RunStatus,
    /// The trigger run that queued it (none for a trigger).
    pub parent: Option<String>,
    /// The image scanned or patched (`registry/repository:tag`).
    pub image: Option<String>,
    /// The repository the run is about.
    pub repository: Option<String>,
    /// The original tag the run is about.
    pub tag: Option<String>,
    /// The image a patch run pushed.
    pub patched_image: Option<String>,
    /// Why it was skipped or failed, or what it did.
    pub reason: Option<String>,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When it started running.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<Run> for RunView {
    fn from(run: Run) -> RunView {
        RunView {
            id: run.id,
            workflow: run.workflow,
            kind: run.kind,
            status: run.status,
            parent: run.parent,
            image: run.image,
            repository: run.repository,
            tag: run.tag,
            patched_image: run.patched_image,
            reason: run.reason,
            queued_at: run.queued_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
        }
    }
}

/// The answer to a cancel or a delete: the runs that were canceled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CanceledRuns {
    /// The workflow's name.
    pub workflow: String,
    /// The ids of the runs canceled, newest first.
    pub canceled: Vec<String>,
}

#[derive(Clone)]
struct ApiState {
    runner: Arc<Runner>,
    /// `host:port` of the embedded registry, the default for new workflows.
    registry: String,
}

impl ApiState {
    fn store(&self) -> &Store {
        self.runner.store()
    }

    async fn workflow(&self, name: &str) -> ApiResult<WorkflowRecord> {
        self.store()
            .workflow(name)
            .await?
            .ok_or_else(|| missing_workflow(name))
    }
}

fn missing_workflow(name: &str) -> ApiError {
    ApiError::NotFound(format!(
        "{name} workflow does not exist. Run 'drydock workflow create' command to create it."
    ))
}

/// The API's routes; `registry` (`host:port`) is the embedded registry that
/// new workflows use unless they name another.
pub fn router(runner: Arc<Runner>, registry: String) -> Router {
    let api = Router::new()
        .route("/workflows", get(list_workflows).post(create))
        .route("/workflows/{name}", get(show).patch(update).delete(delete))
        .route("/workflows/{name}/cancel", post(cancel))
        .route("/workflows/{name}/images", get(images))
        .route("/runs", get(runs))
        .route("/runs/{id}", get(run))
        .route("/runs/{id}/log", get(run_log))
        .fallback(unknown_route)
        .with_state(ApiState { runner, registry });
    Router::new().nest("/api/v1", api)
}

/// Inside the nest, `uri` has lost its `/api/v1` prefix.
async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no API route {method} /api/v1{}", uri.path()))
}

fn body<T>(body: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    body.map(|Json(body)| body)
        .map_err(|e| ApiError::BadRequest(format!("invalid request body: {}", e.body_text())))
}

/// Workflow names go into URLs and logs: 1 to 64 ASCII letters, digits,
/// `.`, `_` or `-`, starting with a letter or digit.
fn check_name(name: &str) -> ApiResult<()> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "workflow name {name:?} is invalid: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )))
    }
}

fn parse_schedule(text: &str) -> ApiResult<Schedule> {
    Ok(Schedule::parse(text)?)
}

fn check_config(text: &str) -> ApiResult<()> {
    Config::parse(text.as_bytes())?;
    Ok(())
}

fn check_run_type(dry_run: bool, run_immediately: bool) -> ApiResult<()> {
    if dry_run && run_immediately {
        return Err(ApiError::BadRequest(
            "dry_run and run_immediately cannot be used together. Use one or the other."
                .to_string(),
        ));
    }
    Ok(())
}

/// The dry run of `record`, refused beyond the image limit.
async fn dry_run(state: &ApiState, record: &WorkflowRecord) -> ApiResult<DryRun> {
    let dry_run = state.runner.dry_run(record).await?;
    dry_run.check_image_limit().map_err(RunnerError::from)?;
    Ok(dry_run)
}

/// The answer to a create or update that stored `name`: its next run read
/// back after any immediate trigger.
async fn change(
    state: &ApiState,
    name: &str,
    dry_run: &DryRun,
    run_id: Option<String>,
) -> ApiResult<WorkflowChange> {
    let record = state.workflow(name).await?;
    Ok(WorkflowChange {
        workflow: record.name.clone(),
        dry_run: workflow::render_dry_run(dry_run),
        matches: dry_run.matched.len(),
        saved: true,
        run_id,
        schedule: record.schedule,
        next_run: Some(scheduler::next_run(&record, Utc::now())),
    })
}

fn unsaved(name: &str, schedule: Schedule, dry_run: &DryRun) -> WorkflowChange {
    WorkflowChange {
        workflow: name.to_string(),
        dry_run: workflow::render_dry_run(dry_run),
        matches: dry_run.matched.len(),
        saved: false,
        run_id: None,
        schedule,
        next_run: None,
    }
}

async fn create(
    State(state): State<ApiState>,
    request: Result<Json<CreateWorkflow>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<WorkflowChange>)> {
    let request = body(request)?;
    check_name(&request.name)?;
    let schedule = parse_schedule(&request.schedule)?;
    check_config(&request.config)?;
    check_run_type(request.dry_run, request.run_immediately)?;
    let registry = request.registry.unwrap_or_else(|| state.registry.clone());
    oci::ImageReference::new(&registry, "drydock", None, None).map_err(|_| {
        ApiError::BadRequest(format!(
            "registry {registry:?} is not a registry host: use host[:port], e.g. 127.0.0.1:5000 or ghcr.io"
        ))
    })?;
    let now = Utc::now();
    let record = WorkflowRecord {
        name: request.name,
        plain_http: request
            .plain_http
            .unwrap_or_else(|| oci::reference::is_loopback_host(&registry)),
        registry,
        config: request.config,
        schedule,
        created_at: now,
        updated_at: now,
        last_trigger_at: None,
        policy: ScanPolicy {
            min_severity: parse_min_severity(request.min_severity.as_deref())?,
            ignore: request.ignore,
            maintainer_scripts: parse_script_mode(request.maintainer_scripts.as_deref())?
                .unwrap_or_default(),
        },
    };
    let dry_run = dry_run(&state, &record).await?;
    if request.dry_run {
        return Ok((
            StatusCode::OK,
            Json(unsaved(&record.name, schedule, &dry_run)),
        ));
    }
    if !state.store().create_workflow(&record).await? {
        return Err(ApiError::Conflict(format!(
            "{} workflow already exists. Use 'drydock workflow update' command to perform updates.",
            record.name
        )));
    }
    let run_id = if request.run_immediately {
        Some(state.runner.trigger(&record.name).await?.id)
    } else {
        None
    };
    let change = change(&state, &record.name, &dry_run, run_id).await?;
    Ok((StatusCode::CREATED, Json(change)))
}

async fn update(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    request: Result<Json<UpdateWorkflow>, JsonRejection>,
) -> ApiResult<Json<WorkflowChange>> {
    let request = body(request)?;
    if request.config.is_none()
        && request.schedule.is_none()
        && request.min_severity.is_none()
        && request.ignore.is_none()
        && request.maintainer_scripts.is_none()
    {
        return Err(ApiError::BadRequest(
            "Provide at least one parameter to update: schedule, config, min_severity, ignore or maintainer_scripts"
                .to_string(),
        ));
    }
    let schedule = request
        .schedule
        .as_deref()
        .map(parse_schedule)
        .transpose()?;
    if let Some(config) = &request.config {
        check_config(config)?;
    }
    check_run_type(request.dry_run, request.run_immediately)?;
    let current = state.workflow(&name).await?;
    let policy = ScanPolicy {
        min_severity: match request.min_severity.as_deref() {
            Some(text) => parse_min_severity(Some(text))?,
            None => current.policy.min_severity,
        },
        ignore: request.ignore.unwrap_or(current.policy.ignore.clone()),
        maintainer_scripts: parse_script_mode(request.maintainer_scripts.as_deref())?
            .unwrap_or(current.policy.maintainer_scripts),
    };
    let record = WorkflowRecord {
        config: request.config.unwrap_or(current.config),
        schedule: schedule.unwrap_or(current.schedule),
        updated_at: Utc::now(),
        policy,
        ..current
    };
    let dry_run = dry_run(&state, &record).await?;
    if request.dry_run {
        return Ok(Json(unsaved(&name, record.schedule, &dry_run)));
    }
    if !state.store().update_workflow(&record).await? {
        return Err(missing_workflow(&name));
    }
    let run_id = if request.run_immediately {
        Some(state.runner.trigger(&name).await?.id)
    } else {
        None
    };
    Ok(Json(change(&state, &name, &dry_run, run_id).await?))
}

/// `HIGH` → a threshold; `NONE` (or nothing) → none.
fn parse_min_severity(text: Option<&str>) -> ApiResult<Option<advisory::Severity>> {
    match text {
        None => Ok(None),
        Some(text) if text.eq_ignore_ascii_case("none") => Ok(None),
        Some(text) => text
            .parse::<advisory::Severity>()
            .map(Some)
            .map_err(|e| ApiError::BadRequest(format!("min_severity {text:?}: {e}"))),
    }
}

fn parse_script_mode(text: Option<&str>) -> ApiResult<Option<ScriptMode>> {
    text.map(|text| {
        text.parse::<ScriptMode>()
            .map_err(|e| ApiError::BadRequest(e.to_string()))
    })
    .transpose()
}

async fn show(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Json<WorkflowView>> {
    Ok(Json(WorkflowView::new(
        state.workflow(&name).await?,
        Utc::now(),
    )))
}

async fn list_workflows(State(state): State<ApiState>) -> ApiResult<Json<Vec<WorkflowView>>> {
    let now = Utc::now();
    Ok(Json(
        state
            .store()
            .workflows()
            .await?
            .into_iter()
            .map(|record| WorkflowView::new(record, now))
            .collect(),
    ))
}

async fn delete(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Json<CanceledRuns>> {
    state.workflow(&name).await?;
    // Removed first, so no new trigger can start; then what is active stops.
    state.store().delete_workflow(&name).await?;
    let canceled = state.runner.cancel(&name).await?;
    Ok(Json(CanceledRuns {
        workflow: name,
        canceled,
    }))
}

async fn cancel(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Json<CanceledRuns>> {
    state.workflow(&name).await?;
    let canceled = state.runner.cancel(&name).await?;
    Ok(Json(CanceledRuns {
        workflow: name,
        canceled,
    }))
}

#[derive(Debug, Deserialize)]
struct ImagesQuery {
    run_status: Option<String>,
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    query
        .map(|Query(query)| query)
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))
}

fn parse<T: std::str::FromStr<Err = UnknownName>>(text: Option<&str>) -> ApiResult<Option<T>> {
    Ok(text
        .filter(|text| !text.is_empty())
        .map(str::parse)
        .transpose()?)
}

async fn images(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    request: Result<Query<ImagesQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<ImageStatus>>> {
    let request = query(request)?;
    let run_status = parse::<RunStatus>(request.run_status.as_deref())?;
    let record = state.workflow(&name).await?;
    Ok(Json(
        status::image_statuses(state.store(), &record, run_status).await?,
    ))
}

#[derive(Debug, Deserialize)]
struct RunsQuery {
    kind: Option<String>,
    workflow: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
}

async fn runs(
    State(state): State<ApiState>,
    request: Result<Query<RunsQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<RunView>>> {
    let request = query(request)?;
    let filter = RunFilter {
        workflow: request.workflow.as_deref().filter(|w| !w.is_empty()),
        kind: parse::<TaskKind>(request.kind.as_deref())?,
        status: parse::<RunStatus>(request.status.as_deref())?,
        parent: None,
        limit: Some(request.limit.unwrap_or(DEFAULT_RUN_LIMIT)),
    };
    Ok(Json(
        state
            .store()
            .runs(&filter)
            .await?
            .into_iter()
            .map(RunView::from)
            .collect(),
    ))
}

fn no_run(id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no run {id}; `drydock task list-runs` lists the runs"
    ))
}

async fn run(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Json<RunView>> {
    let run = state.store().run(&id).await?.ok_or_else(|| no_run(&id))?;
    Ok(Json(run.into()))
}

async fn run_log(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let log = state
        .store()
        .run_log(&id)
        .await?
        .ok_or_else(|| no_run(&id))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], log).into_response())
}
