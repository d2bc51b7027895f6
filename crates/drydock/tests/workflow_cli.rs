//! `drydock workflow` and `drydock task` end to end, as real processes: a
//! `drydock serve` on a temporary data directory holding the real Debian 12
//! image testkit builds from Debian's archive (imported as `debian:12`), the
//! CLI talking to it over HTTP, and the API and dashboard beside it. The
//! scans and patches reach Debian's security repository, so what is fixable
//! is whatever Debian has published; the assertions hold for any of it:
//! the first run patches to `12-1` and leaves nothing fixable, the next one
//! skips. Needs root and the tools of scripts/install-test-deps.sh (for the
//! image).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use registry_support::Server;
use server::api::{ErrorBody, RunView, WorkflowChange, WorkflowView};
use server::status::ImageStatus;
use workflow::{RunStatus, TaskKind};

mod registry_support;

const SKIPPED: &str = "no fixable OS vulnerabilities found";

/// `drydock ARGS` against `server` (`DRYDOCK_URL`) and its data directory
/// (`DRYDOCK_DATA_DIR`, so scans share its caches), stdin closed.
fn drydock(server: &Server, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drydock"))
        .args(args)
        .env("DRYDOCK_URL", &server.base)
        .env("DRYDOCK_DATA_DIR", &server.data_dir)
        .env("DRYDOCK_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run drydock")
}

fn succeeds(server: &Server, args: &[&str]) -> String {
    let output = drydock(server, args);
    assert!(
        output.status.success(),
        "drydock {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Runs a command that must fail and returns its stderr.
fn fails(server: &Server, args: &[&str]) -> String {
    let output = drydock(server, args);
    assert!(
        !output.status.success(),
        "drydock {args:?} succeeded:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr).expect("UTF-8 output")
}

fn json<T: serde::de::DeserializeOwned>(server: &Server, args: &[&str]) -> T {
    let mut args = args.to_vec();
    args.extend(["--output", "json"]);
    let stdout = succeeds(server, &args);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}:\n{stdout}"))
}

/// One HTTP request to the server: (status, body).
fn http(method: reqwest::Method, url: &str, body: Option<&str>) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut request = registry_support::client().request(method, url);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("HTTP request");
        let status = response.status().as_u16();
        (status, response.text().await.expect("response body"))
    })
}

fn api_error(body: &str) -> String {
    serde_json::from_str::<ErrorBody>(body)
        .unwrap_or_else(|e| panic!("not an API error body ({e}): {body}"))
        .error
}

fn import_debian(server: &Server) {
    let layout = testkit::debian_layout();
    succeeds(
        server,
        &[
            "import",
            &format!("oci:{}:{}", layout.display(), testkit::DEBIAN_TAG),
            &format!("{}/debian:12", server.address),
        ],
    );
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// debian:12 (present) and nginx:1.25 (missing).
const CONFIG: &str = r#"{
  "version": "v1",
  "tag-convention": "incremental",
  "repositories": [
    { "repository": "debian", "tags": ["12"], "enabled": true },
    { "repository": "nginx", "tags": ["1.25"] }
  ]
}
"#;

/// The runs of the server once none is queued or running (5 minutes at most).
fn settled_runs(server: &Server) -> Vec<RunView> {
    let started = Instant::now();
    loop {
        let runs: Vec<RunView> = json(server, &["task", "list-runs", "--top", "100"]);
        if !runs.is_empty() && runs.iter().all(|run| !run.status.is_active()) {
            return runs;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "runs still active after 5 minutes: {runs:#?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn tags(server: &Server) -> Vec<String> {
    serde_json::from_str(&succeeds(server, &["repo", "tags", "debian"])).unwrap()
}

#[test]
fn validates_and_dry_runs_like_acr() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(&[]);
    import_debian(&server);
    let config = write(work.path(), "continuouspatching.json", CONFIG);

    // The dry run: what acr-cli prints, nothing stored.
    let dry_run = succeeds(
        &server,
        &[
            "workflow",
            "create",
            "--config",
            &config,
            "--schedule",
            "7d",
            "--dry-run",
        ],
    );
    assert_eq!(
        dry_run,
        "Configured Tag Convention: incremental\n\
         Artifacts specified in the filter that do not exist:\n\
         Repo,Tag\n\
         nginx,1.25\n\
         Not found: 1\n\
         Listing repositories and tags matching the filter with corresponding latest patch tag (if present):\n\
         Repo,Tag,LatestPatchTag\n\
         debian,12,N/A\n\
         Matches found: 1\n"
    );
    let missing = fails(&server, &["workflow", "show"]);
    assert!(
        missing.contains("continuouspatch workflow does not exist. Run 'drydock workflow create'"),
        "{missing}"
    );

    // ACR's checks of the file, the config and the flags, with ACR's words.
    let absent = work.path().join("absent.json");
    let empty = write(work.path(), "empty.json", "");
    let reserved = write(
        work.path(),
        "reserved.json",
        r#"{"version":"v1","repositories":[{"repository":"debian","tags":["12-1"]}]}"#,
    );
    for (file, acr_words) in [
        (
            absent.display().to_string(),
            "does not exist in the path specified",
        ),
        (empty.clone(), "is empty"),
        (
            reserved.clone(),
            "Configuration error: Repository 'debian' with tag '12-1' is not allowed.",
        ),
    ] {
        let expected = workflow::Config::from_file(&file).unwrap_err().to_string();
        assert!(expected.contains(acr_words), "{expected}");
        let stderr = fails(
            &server,
            &["workflow", "create", "--config", &file, "--schedule", "7d"],
        );
        assert!(stderr.contains(&expected), "{file}: {stderr}");
    }
    let schedule = fails(
        &server,
        &[
            "workflow",
            "create",
            "--config",
            &config,
            "--schedule",
            "31d",
        ],
    );
    assert!(
        schedule.contains(
            "Schedule value is invalid. Schedule must be in the format of <number><unit>"
        ),
        "{schedule}"
    );
    let both = fails(
        &server,
        &[
            "workflow",
            "create",
            "--config",
            &config,
            "--schedule",
            "7d",
            "--dry-run",
            "--run-immediately",
        ],
    );
    assert!(
        both.contains("options cannot be used together. Use one or the other."),
        "{both}"
    );

    // The server checks what it is sent too: JSON errors with their status.
    let workflows = server.url("/api/v1/workflows");
    let (status, body) = http(
        reqwest::Method::POST,
        &workflows,
        Some(r#"{"config":"{\"version\":\"v2\",\"repositories\":[]}","schedule":"7d"}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        api_error(&body).starts_with("Config is not a valid config JSON file."),
        "{body}"
    );
    let (status, body) = http(
        reqwest::Method::GET,
        &server.url("/api/v1/workflows/continuouspatch"),
        None,
    );
    assert_eq!(
        (status, api_error(&body).contains("does not exist")),
        (404, true)
    );

    // Created: stored and scheduled, not run.
    let created: WorkflowChange = json(
        &server,
        &[
            "workflow",
            "create",
            "--config",
            &config,
            "--schedule",
            "7d",
        ],
    );
    assert!(created.saved && created.run_id.is_none() && created.matches == 1);
    let next = created.next_run.expect("a stored workflow has a next run");
    assert!(next > chrono::Utc::now(), "{next}");
    let shown: WorkflowView = json(&server, &["workflow", "show"]);
    assert_eq!(
        (
            shown.config.as_str(),
            shown.registry.as_str(),
            shown.next_run
        ),
        (CONFIG, server.address.as_str(), next)
    );
    let tasks: Vec<TaskKind> = shown.tasks.iter().map(|task| task.name).collect();
    assert_eq!(tasks, TaskKind::ALL);
    let text = succeeds(&server, &["workflow", "show"]);
    assert!(
        text.contains("Schedule:      7d") && text.contains("Next run:"),
        "{text}"
    );
    let again = fails(
        &server,
        &[
            "workflow",
            "create",
            "--config",
            &config,
            "--schedule",
            "7d",
        ],
    );
    assert!(
        again.contains("continuouspatch workflow already exists. Use 'drydock workflow update'"),
        "{again}"
    );
    let (status, _) = http(
        reqwest::Method::POST,
        &workflows,
        Some(&serde_json::json!({"config": CONFIG, "schedule": "7d"}).to_string()),
    );
    assert_eq!(status, 409);
    let nothing = fails(&server, &["workflow", "update"]);
    assert!(
        nothing.contains("Provide at least one parameter to update: --schedule or --config"),
        "{nothing}"
    );
    // drydock's setting for maintainer scripts: native by default, sandbox on request.
    assert!(text.contains("Maintainer scripts: native"), "{text}");
    let bad = fails(
        &server,
        &["workflow", "update", "--maintainer-scripts", "chroot"],
    );
    assert!(bad.contains("neither \"native\" nor \"sandbox\""), "{bad}");
    succeeds(
        &server,
        &["workflow", "update", "--maintainer-scripts", "sandbox"],
    );
    let shown: WorkflowView = json(&server, &["workflow", "show"]);
    assert_eq!(
        shown.policy.maintainer_scripts,
        patch::patcher::ScriptMode::Sandbox
    );
    assert!(
        succeeds(&server, &["workflow", "show"]).contains("Maintainer scripts: sandbox"),
        "the text view says so"
    );
    let runs: Vec<RunView> = json(&server, &["task", "list-runs"]);
    assert!(runs.is_empty(), "nothing ran: {runs:#?}");
    let canceled = succeeds(&server, &["workflow", "cancel-run"]);
    assert!(
        canceled.contains("no run was queued or running"),
        "{canceled}"
    );
    let no_run = fails(&server, &["task", "logs", "dd404"]);
    assert!(no_run.contains("no run dd404"), "{no_run}");

    // Deleting asks first, and without a terminal refuses.
    let unconfirmed = fails(&server, &["workflow", "delete"]);
    assert!(unconfirmed.contains("pass --yes"), "{unconfirmed}");
    succeeds(&server, &["workflow", "delete", "--yes"]);
    fails(&server, &["workflow", "show"]);
}

#[test]
fn patches_once_then_skips_and_survives_a_restart() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let mut server = Server::start_in(&data, &[]);
    import_debian(&server);
    let config = write(work.path(), "continuouspatching.json", CONFIG);
    let host = server.address.clone();
    let patched = format!("{host}/debian:12-1");

    // Killed while the first run is active: the restart fails that run with
    // the reason, and the next trigger does the work.
    let created: WorkflowChange = json(
        &server,
        &[
            "workflow",
            "create",
            "--config",
            &config,
            "--schedule",
            "1d",
            "--run-immediately",
        ],
    );
    let first = created.run_id.expect("--run-immediately queues a run");
    server.kill9();
    drop(server);
    let server = Server::start_listening(&data, &host, &[]);
    let interrupted = settled_runs(&server);
    assert!(
        interrupted
            .iter()
            .any(|run| run.id == first || run.parent.as_deref() == Some(first.as_str())),
        "{interrupted:#?}"
    );
    for run in interrupted
        .iter()
        .filter(|run| run.status != RunStatus::Succeeded)
    {
        assert_eq!(
            (run.status, run.reason.as_deref()),
            (RunStatus::Failed, Some(server::scheduler::INTERRUPTED)),
            "{run:#?}"
        );
    }
    assert!(
        interrupted
            .iter()
            .any(|run| run.status == RunStatus::Failed),
        "nothing was active when drydock was killed: {interrupted:#?}"
    );

    // The first full run patches debian:12 into debian:12-1, which has nothing fixable left.
    let update = succeeds(
        &server,
        &[
            "workflow",
            "update",
            "--schedule",
            "1d",
            "--run-immediately",
        ],
    );
    assert!(update.contains("Matches found: 1"), "{update}");
    assert!(update.contains("Next scheduled run: "), "{update}");
    let runs = settled_runs(&server);
    let patch = runs
        .iter()
        .find(|run| run.kind == TaskKind::Patch)
        .unwrap_or_else(|| panic!("no patch run: {runs:#?}"));
    assert_eq!(
        (patch.status, patch.patched_image.as_deref()),
        (RunStatus::Succeeded, Some(patched.as_str())),
        "{patch:#?}"
    );
    assert_eq!(tags(&server), ["12", "12-1"]);
    let report: serde_json::Value = serde_json::from_str(&succeeds(
        &server,
        &["scan", &patched, "--ignore-unfixed", "--format", "json"],
    ))
    .unwrap();
    let left: usize = report["Results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| result["Vulnerabilities"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(left, 0, "{patched} still has fixable vulnerabilities");
    let log = succeeds(&server, &["task", "logs", &patch.id]);
    assert!(
        log.contains(&format!("patched image pushed to {patched}")),
        "{log}"
    );
    let images: Vec<ImageStatus> = json(&server, &["workflow", "list"]);
    assert_eq!(images.len(), 1, "{images:#?}");
    assert_eq!(
        (
            images[0].status,
            images[0].patch_run_id.as_deref(),
            images[0].last_patched_image.as_deref()
        ),
        (
            RunStatus::Succeeded,
            Some(patch.id.as_str()),
            Some(patched.as_str())
        )
    );

    // The next run scans 12-1, finds nothing and skips: no 12-2.
    succeeds(
        &server,
        &[
            "workflow",
            "update",
            "--schedule",
            "1d",
            "--run-immediately",
        ],
    );
    settled_runs(&server);
    let scans: Vec<RunView> = json(&server, &["task", "list-runs", "--name", "scan"]);
    let latest = &scans[0];
    assert_eq!(
        (
            latest.status,
            latest.reason.as_deref(),
            latest.image.as_deref()
        ),
        (RunStatus::Skipped, Some(SKIPPED), Some(patched.as_str())),
        "{latest:#?}"
    );
    let patches: Vec<RunView> = json(&server, &["task", "list-runs", "--name", "patch"]);
    assert_eq!(patches.len(), 1, "{patches:#?}");
    assert_eq!(tags(&server), ["12", "12-1"]);
    let skipped: Vec<ImageStatus> = json(&server, &["workflow", "list", "--run-status", "skipped"]);
    assert_eq!(
        (skipped.len(), skipped[0].reason.as_deref()),
        (1, Some(SKIPPED)),
        "{skipped:#?}"
    );
    assert_eq!(
        skipped[0].last_patched_image.as_deref(),
        Some(patched.as_str())
    );
    let succeeded: Vec<ImageStatus> =
        json(&server, &["workflow", "list", "--run-status", "Succeeded"]);
    assert!(succeeded.is_empty(), "{succeeded:#?}");
    let table = succeeds(&server, &["workflow", "list"]);
    assert!(
        table.starts_with("IMAGE ") && table.contains("debian:12") && table.contains(SKIPPED),
        "{table}"
    );
    let table = succeeds(
        &server,
        &["task", "list-runs", "--workflow", "continuouspatch"],
    );
    assert!(
        table.starts_with("RUN ID ") && table.contains("Skipped"),
        "{table}"
    );

    // The dashboard shows the image and links each run to its log.
    let (status, page) = http(reqwest::Method::GET, &server.url("/"), None);
    assert_eq!(status, 200);
    assert!(page.contains(&patched), "{page}");
    assert!(
        page.contains(&format!("href=\"/api/v1/runs/{}/log\"", latest.id)),
        "{page}"
    );

    // Deleting the workflow keeps what it patched.
    let deleted = succeeds(&server, &["workflow", "delete", "--yes"]);
    assert!(deleted.contains("Patched images stay"), "{deleted}");
    assert_eq!(tags(&server), ["12", "12-1"]);
    let gone = fails(&server, &["workflow", "list"]);
    assert!(gone.contains("does not exist"), "{gone}");
}

#[test]
fn the_api_and_the_dashboard_sit_behind_the_registrys_authentication() {
    let work = tempfile::tempdir().unwrap();
    let htpasswd = write(
        work.path(),
        "htpasswd",
        &format!("alice:{}\n", bcrypt::hash("wonderland", 4).unwrap()),
    );
    let server = Server::start(&["--htpasswd", &htpasswd, "--anonymous-pull"]);
    let config = write(work.path(), "continuouspatching.json", CONFIG);

    // Reads are anonymous pulls; anything that changes a workflow is not.
    for path in ["/", "/api/v1/workflows"] {
        let (status, _) = http(reqwest::Method::GET, &server.url(path), None);
        assert_eq!(status, 200, "{path}");
    }
    let (status, _) = http(
        reqwest::Method::POST,
        &server.url("/api/v1/workflows"),
        Some(&serde_json::json!({"config": CONFIG, "schedule": "7d"}).to_string()),
    );
    assert_eq!(status, 401);
    let create = [
        "workflow",
        "create",
        "--config",
        &config,
        "--schedule",
        "7d",
    ];
    let refused = fails(&server, &create);
    assert!(refused.contains("needs the credentials"), "{refused}");

    let with_password = format!("http://alice:wonderland@{}", server.address);
    let mut create = create.to_vec();
    create.extend(["--server", &with_password]);
    let created = succeeds(&server, &create);
    assert!(
        created.contains("Workflow continuouspatch created"),
        "{created}"
    );
}
