//! `drydock db import|update|status` end to end: the real binary on the
//! advisory crate's fixtures (true feed formats), a local HTTP server (axum
//! on 127.0.0.1) standing in for the feed hosts via `--mirror`, and bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri};

fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../advisory/tests/fixtures")
        .join(relative)
}

fn drydock(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drydock"))
        .arg("db")
        .args(args)
        .arg("--db")
        .arg(db)
        .env("DRYDOCK_LOG", "warn")
        .env_remove("DRYDOCK_DATA_DIR")
        .output()
        .expect("run drydock")
}

fn succeed(db: &Path, args: &[&str]) -> String {
    let out = drydock(db, args);
    assert!(
        out.status.success(),
        "drydock db {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn fail(db: &Path, args: &[&str]) -> String {
    let out = drydock(db, args);
    assert!(!out.status.success(), "drydock db {args:?} succeeded");
    String::from_utf8(out.stderr).expect("utf-8 output")
}

fn read_status(db: &Path) -> serde_json::Value {
    serde_json::from_str(&succeed(db, &["status", "--output", "json"])).expect("status JSON")
}

fn feed_counts(status: &serde_json::Value) -> Vec<(String, u64)> {
    status["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["advisories"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn import_then_status() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data/advisories.db");
    let tracker = fixture("tracker.json");
    let out = succeed(
        &db,
        &[
            "import",
            tracker.to_str().unwrap(),
            fixture("osv/debian").to_str().unwrap(),
            fixture("osv/ubuntu").to_str().unwrap(),
            fixture("secdb/v3.20-main.json").to_str().unwrap(),
        ],
    );
    assert!(
        out.contains(&format!(
            "debian-tracker: 14 advisories from {}",
            tracker.display()
        )),
        "{out}"
    );

    let status = read_status(&db);
    assert_eq!(status["schema_version"], 2);
    assert_eq!(status["database"], db.display().to_string());
    assert_eq!(
        feed_counts(&status),
        [
            ("debian-tracker".to_string(), 14),
            ("osv-debian".to_string(), 6),
            ("osv-ubuntu".to_string(), 4),
            ("secdb-3.20-main".to_string(), 11),
        ]
    );
    let first = &status["feeds"][0];
    assert_eq!(first["kind"], "tracker");
    assert_eq!(first["location"], tracker.display().to_string());
    assert_eq!(first["sha256"].as_str().unwrap().len(), 64);
    assert!(first["fetched"].as_str().unwrap().ends_with('Z'));
    assert!(first["age_seconds"].as_i64().unwrap() >= 0);

    let table = succeed(&db, &["status"]);
    let heading = table.lines().next().unwrap();
    assert!(heading.starts_with("FEED"), "{table}");
    assert!(
        heading.contains("ADVISORIES") && heading.contains("AGE"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 5, "{table}");

    // Importing again replaces the feed rather than adding to it.
    succeed(
        &db,
        &["import", "--kind", "tracker", tracker.to_str().unwrap()],
    );
    assert_eq!(
        feed_counts(&read_status(&db))[0],
        ("debian-tracker".to_string(), 14)
    );
}

#[test]
fn bad_input_is_refused_clearly_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("advisories.db");

    let error = fail(&db, &["status"]);
    assert!(error.contains("no advisory database at"), "{error}");
    assert!(error.contains("drydock db update"), "{error}");

    succeed(&db, &["import", fixture("tracker.json").to_str().unwrap()]);
    let before = read_status(&db);

    let truncated = dir.path().join("tracker.json");
    std::fs::write(
        &truncated,
        &std::fs::read(fixture("tracker.json")).unwrap()[..500],
    )
    .unwrap();
    let error = fail(&db, &["import", truncated.to_str().unwrap()]);
    assert!(
        error.starts_with(&format!(
            "error: nothing was imported: {} is not valid JSON (EOF while parsing",
            truncated.display()
        )),
        "{error}"
    );
    assert!(error.contains("is the file complete?"), "{error}");
    let error = fail(
        &db,
        &["import", "--kind", "tracker", truncated.to_str().unwrap()],
    );
    assert!(
        error.contains(&format!(
            "{} is not a valid Debian Security Tracker JSON feed: ",
            truncated.display()
        )),
        "{error}"
    );

    let bad_status = dir.path().join("status.json");
    std::fs::write(
        &bad_status,
        br#"{"zlib": {"CVE-2024-1": {"releases": {"sid": {"status": "fixed-ish"}}}}}"#,
    )
    .unwrap();
    let error = fail(&db, &["import", bad_status.to_str().unwrap()]);
    assert!(
        error.contains("package \"zlib\", CVE-2024-1, release sid: unknown status \"fixed-ish\""),
        "{error}"
    );

    let zip = dir.path().join("all.zip");
    std::fs::write(&zip, b"PK\x03\x04 not really a zip").unwrap();
    let error = fail(&db, &["import", zip.to_str().unwrap()]);
    assert!(error.contains("not a zip archive"), "{error}");

    let error = fail(
        &db,
        &[
            "import",
            "--kind",
            "secdb",
            fixture("osv/debian").to_str().unwrap(),
        ],
    );
    assert!(error.contains("directories hold OSV records"), "{error}");

    let error = fail(
        &db,
        &["import", dir.path().join("missing.json").to_str().unwrap()],
    );
    assert!(error.contains("missing.json: No such file"), "{error}");

    // What is stored must not change; a feed's age grows with the clock.
    let stored = |status: &serde_json::Value| {
        let mut feeds = status["feeds"].clone();
        for feed in feeds.as_array_mut().into_iter().flatten() {
            feed.as_object_mut().map(|feed| feed.remove("age_seconds"));
        }
        feeds
    };
    let after = read_status(&db);
    assert_eq!(stored(&before), stored(&after));
}

type Files = Arc<Vec<(String, Vec<u8>)>>;

async fn serve_file(State(files): State<Files>, uri: Uri) -> Result<Vec<u8>, StatusCode> {
    files
        .iter()
        .find(|(path, _)| path == uri.path())
        .map(|(_, bytes)| bytes.clone())
        .ok_or(StatusCode::NOT_FOUND)
}

/// Serves `files` (URL path, fixture) on 127.0.0.1 from a thread of its own.
fn serve(files: &[(&str, &str)]) -> String {
    let files: Files = Arc::new(
        files
            .iter()
            .map(|(path, relative)| (path.to_string(), std::fs::read(fixture(relative)).unwrap()))
            .collect(),
    );
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            address_tx.send(listener.local_addr().unwrap()).unwrap();
            let app = axum::Router::new().fallback(serve_file).with_state(files);
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}", address_rx.recv().unwrap())
}

#[test]
fn update_from_mirrors() {
    let base = serve(&[
        ("/tracker/data/json", "tracker.json"),
        ("/secdb/v3.20/main.json", "secdb/v3.20-main.json"),
        ("/secdb/v3.20/community.json", "secdb/v3.20-community.json"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("advisories.db");
    let tracker_mirror = format!("tracker={base}/tracker");
    let secdb_mirror = format!("secdb={base}/secdb");
    let out = succeed(
        &db,
        &[
            "update",
            "--source",
            "tracker",
            "--source",
            "secdb",
            "--alpine-release",
            "3.20",
            "--mirror",
            &tracker_mirror,
            "--mirror",
            &secdb_mirror,
        ],
    );
    assert!(
        out.contains(&format!(
            "debian-tracker: 14 advisories from {base}/tracker/data/json"
        )),
        "{out}"
    );
    let status = read_status(&db);
    assert_eq!(
        feed_counts(&status),
        [
            ("debian-tracker".to_string(), 14),
            ("secdb-3.20-community".to_string(), 1),
            ("secdb-3.20-main".to_string(), 11),
        ]
    );
    assert_eq!(
        status["feeds"][2]["location"],
        format!("{base}/secdb/v3.20/main.json")
    );

    // One feed failing (no 3.21 on the mirror) does not stop the others,
    // and the command says which failed.
    let out = drydock(
        &db,
        &[
            "update",
            "--source",
            "secdb",
            "--source",
            "tracker",
            "--alpine-release",
            "3.21",
            "--mirror",
            &tracker_mirror,
            "--mirror",
            &secdb_mirror,
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error: secdb: {base}/secdb/v3.21/main.json answered HTTP 404"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 of 2 feeds could not be updated (secdb); the others were stored"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("debian-tracker: 14 advisories"));

    let error = fail(&db, &["update", "--mirror", "nvd=http://127.0.0.1:1"]);
    assert!(error.contains("unknown feed source \"nvd\""), "{error}");
}
