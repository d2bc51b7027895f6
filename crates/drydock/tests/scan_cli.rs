//! `drydock scan` end to end on a real debootstrap bookworm image, with an
//! advisory feed in the Debian Security Tracker's format written at test
//! time from what `dpkg-query` says the image holds: one source fixed in a
//! newer version, one already fixed, one open, one not affected. Every
//! expectation comes from dpkg's view of the image, never from drydock's.

mod registry_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use registry_support::Server;
use serde_json::{Value, json};

/// Runs drydock; scans use only the test's own feed (the live security
/// repository feed has its own oracle test in the advisory crate).
fn drydock(data: &Path, args: &[&str]) -> Output {
    let isolated: &[&str] = if args.first() == Some(&"scan") {
        &["--no-security-repo"]
    } else {
        &[]
    };
    Command::new(env!("CARGO_BIN_EXE_drydock"))
        .args(args)
        .args(isolated)
        .env("DRYDOCK_DATA_DIR", data)
        .env("DRYDOCK_LOG", "warn")
        .output()
        .expect("run drydock")
}

fn stdout_of(data: &Path, args: &[&str]) -> String {
    let out = drydock(data, args);
    assert!(
        out.status.success(),
        "drydock {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Installed binary packages by source: source → (source version, binaries).
fn installed_sources(rootfs: &Path) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let admindir = rootfs.join("var/lib/dpkg");
    let listing = testkit::run(
        Command::new("dpkg-query")
            .arg(format!("--admindir={}", admindir.display()))
            .args([
                "-W",
                "-f",
                "${db:Status-Status} ${Package} ${source:Package} ${source:Version}\\n",
            ]),
    );
    let mut sources: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for line in listing.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let ["installed", package, source, version] = fields[..] {
            let entry = sources
                .entry(source.to_string())
                .or_insert_with(|| (version.to_string(), BTreeSet::new()));
            entry.1.insert(package.to_string());
        }
    }
    sources
}

struct Fixture {
    _work: tempfile::TempDir,
    data: std::path::PathBuf,
    image: String,
    /// (CVE, binary package) pairs the scan must report, with fixed version (None: unfixed) and severity.
    expected: BTreeMap<(String, String), (Option<String>, &'static str)>,
    package_count: usize,
}

fn fixture() -> Fixture {
    let layout = testkit::debian_layout();
    let rootfs = testkit::debian_rootfs(&layout);
    let sources = installed_sources(&rootfs);
    let package_count = sources.values().map(|(_, b)| b.len()).sum();
    // Four sources, the ones with the most binaries first, so "every binary is reported" is tested.
    let mut by_size: Vec<(&String, &(String, BTreeSet<String>))> = sources.iter().collect();
    by_size
        .sort_by_key(|(name, (_, binaries))| (std::cmp::Reverse(binaries.len()), (*name).clone()));
    let [fixed, already, open, not_affected] = [by_size[0], by_size[1], by_size[2], by_size[3]];

    let release = |status: &str, fixed_version: Option<String>, urgency: &str, installed: &str| {
        let mut r =
            json!({"status": status, "repositories": {"bookworm": installed}, "urgency": urgency});
        if let Some(v) = fixed_version {
            r["fixed_version"] = Value::String(v);
        }
        json!({"description": "test advisory", "scope": "remote", "releases": {"bookworm": r}})
    };
    let newer = format!("{}+drydock1", fixed.1.0);
    let tracker = json!({
        fixed.0: {"CVE-2099-0001": release("resolved", Some(newer.clone()), "high", &fixed.1.0)},
        already.0: {"CVE-2099-0002": release("resolved", Some(already.1.0.clone()), "high", &already.1.0)},
        open.0: {"CVE-2099-0003": release("open", None, "medium", &open.1.0)},
        not_affected.0: {"CVE-2099-0004": release("resolved", Some("0".into()), "low", &not_affected.1.0)},
    });
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let feed = work.path().join("tracker.json");
    std::fs::write(&feed, serde_json::to_vec(&tracker).unwrap()).unwrap();
    stdout_of(&data, &["db", "import", feed.to_str().unwrap()]);

    let mut expected = BTreeMap::new();
    for binary in &fixed.1.1 {
        expected.insert(
            ("CVE-2099-0001".to_string(), binary.clone()),
            (Some(newer.clone()), "HIGH"),
        );
    }
    for binary in &open.1.1 {
        expected.insert(
            ("CVE-2099-0003".to_string(), binary.clone()),
            (None, "MEDIUM"),
        );
    }
    Fixture {
        image: format!("oci:{}:{}", layout.display(), testkit::DEBIAN_TAG),
        _work: work,
        data,
        expected,
        package_count,
    }
}

fn reported(json_text: &str) -> BTreeMap<(String, String), (Option<String>, String)> {
    let report: Value = serde_json::from_str(json_text).unwrap();
    let mut found = BTreeMap::new();
    for result in report["Results"].as_array().unwrap() {
        assert_eq!(result["Class"], "os-pkgs");
        assert_eq!(result["Type"], "debian");
        for v in result["Vulnerabilities"].as_array().into_iter().flatten() {
            assert!(
                v["PkgIdentifier"]["PURL"]
                    .as_str()
                    .unwrap()
                    .starts_with("pkg:deb/debian/")
            );
            assert!(
                v["Layer"]["DiffID"]
                    .as_str()
                    .unwrap()
                    .starts_with("sha256:")
            );
            let key = (
                v["VulnerabilityID"].as_str().unwrap().to_string(),
                v["PkgName"].as_str().unwrap().to_string(),
            );
            let fixed = v["FixedVersion"].as_str().map(str::to_string);
            let status = v["Status"].as_str().unwrap();
            assert_eq!(status, if fixed.is_some() { "fixed" } else { "affected" });
            found.insert(key, (fixed, v["Severity"].as_str().unwrap().to_string()));
        }
    }
    found
}

fn as_owned(
    expected: &BTreeMap<(String, String), (Option<String>, &'static str)>,
) -> BTreeMap<(String, String), (Option<String>, String)> {
    expected
        .iter()
        .map(|(k, (f, s))| (k.clone(), (f.clone(), s.to_string())))
        .collect()
}

#[test]
fn reports_exactly_the_vulnerable_binaries_in_every_format() {
    let f = fixture();
    let data = &f.data;
    let json_text = stdout_of(data, &["scan", &f.image, "--format", "json"]);
    let report: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(report["Metadata"]["OS"]["Family"], "debian");
    assert!(
        report["Metadata"]["OS"]["Name"]
            .as_str()
            .unwrap()
            .starts_with("12.")
    );
    assert_eq!(report["Metadata"]["ImageConfig"]["architecture"], "amd64");
    assert_eq!(reported(&json_text), as_owned(&f.expected));

    // Filters.
    let fixable = reported(&stdout_of(
        data,
        &["scan", &f.image, "--format", "json", "--ignore-unfixed"],
    ));
    assert!(!fixable.is_empty() && fixable.values().all(|(fixed, _)| fixed.is_some()));
    let medium = reported(&stdout_of(
        data,
        &["scan", &f.image, "--format", "json", "--severity", "MEDIUM"],
    ));
    assert!(!medium.is_empty() && medium.values().all(|(_, s)| s == "MEDIUM"));

    // Table: the Total line ends the target and counts what JSON reported.
    let table = stdout_of(data, &["scan", &f.image]);
    let high = f.expected.values().filter(|(_, s)| *s == "HIGH").count();
    let medium_count = f.expected.len() - high;
    let total = format!(
        "Total: {} (UNKNOWN: 0, LOW: 0, MEDIUM: {medium_count}, HIGH: {high}, CRITICAL: 0)",
        f.expected.len()
    );
    assert_eq!(table.lines().last(), Some(total.as_str()), "{table}");

    // SARIF and CycloneDX carry the same findings; CycloneDX lists every installed package.
    let sarif: Value =
        serde_json::from_str(&stdout_of(data, &["scan", &f.image, "--format", "sarif"])).unwrap();
    assert_eq!(
        sarif["runs"][0]["results"].as_array().unwrap().len(),
        f.expected.len()
    );
    let out = f._work.path().join("bom.json");
    stdout_of(
        data,
        &[
            "scan",
            &f.image,
            "--format",
            "cyclonedx",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    let bom: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let libraries = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "library")
        .count();
    assert_eq!(libraries, f.package_count);
    assert_eq!(bom["vulnerabilities"].as_array().unwrap().len(), 2);
}

#[test]
fn exit_codes_follow_trivy() {
    let f = fixture();
    let code = |args: &[&str]| drydock(&f.data, args).status.code();
    assert_eq!(code(&["scan", &f.image, "--exit-code", "7"]), Some(7));
    assert_eq!(
        code(&[
            "scan",
            &f.image,
            "--exit-code",
            "7",
            "--severity",
            "CRITICAL"
        ]),
        Some(0)
    );
    assert_eq!(
        code(&["scan", &f.image, "--exit-on-eol", "9"]),
        Some(0),
        "bookworm is supported"
    );
}

#[test]
fn scans_images_in_the_registry_like_layouts() {
    let f = fixture();
    let server = Server::start(&[]);
    let destination = format!("{}/debian:12", server.address);
    stdout_of(&f.data, &["import", &f.image, &destination]);
    let from_registry = reported(&stdout_of(
        &f.data,
        &["scan", &destination, "--format", "json"],
    ));
    assert_eq!(from_registry, as_owned(&f.expected));
}

#[test]
fn refuses_what_it_cannot_judge() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let refuse = |image: &str| {
        let out = drydock(&data, &["scan", image]);
        assert!(!out.status.success(), "{image} was scanned");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let empty = work.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(refuse(&format!("dir:{}", empty.display())).contains("no known operating system"));

    let static_like = work.path().join("static");
    std::fs::create_dir_all(static_like.join("etc")).unwrap();
    std::fs::write(
        static_like.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    )
    .unwrap();
    assert!(refuse(&format!("dir:{}", static_like.display())).contains("no package database"));

    // A Windows container layer (Files/Windows/…), packed by umoci into a real layout.
    let layout = work.path().join("windows");
    let image = format!("{}:ltsc", layout.display());
    testkit::run(
        Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout),
    );
    testkit::run(Command::new("umoci").args(["new", "--image", &image]));
    let bundle = work.path().join("bundle");
    testkit::run(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image", &image])
            .arg(&bundle),
    );
    let system32 = bundle.join("rootfs/Files/Windows/System32");
    std::fs::create_dir_all(&system32).unwrap();
    std::fs::write(system32.join("ntdll.dll"), b"MZ").unwrap();
    testkit::run(
        Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle),
    );
    assert!(refuse(&format!("oci:{image}")).contains("Windows image"));

    assert!(refuse("oci:/nonexistent/layout").contains("not an OCI image layout"));
    assert!(refuse("Bad Name").contains("is not an image reference"));
    let out = drydock(&data, &["scan", "dir:/", "--pkg-types", "library"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not supported yet"));
}

#[test]
fn the_security_repository_feed_works_live_and_then_offline() {
    let layout = testkit::debian_layout();
    let image = format!("oci:{}:{}", layout.display(), testkit::DEBIAN_TAG);
    let work = tempfile::tempdir().unwrap();
    let scan = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_drydock"))
            .args(["scan", &image, "--format", "json", "--data-dir"])
            .arg(work.path())
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        reported(&String::from_utf8(out.stdout).unwrap())
    };
    // The image is Debian's release as published, so the security pocket has newer uploads for it.
    let online = scan(&[]);
    assert!(
        !online.is_empty(),
        "a published bookworm has security updates since"
    );
    assert!(
        online.values().all(|(fixed, _)| fixed.is_some()),
        "the pocket only knows fixes"
    );
    assert_eq!(
        scan(&["--offline"]),
        online,
        "offline uses what the first scan cached"
    );
}

#[test]
fn scans_docker_save_archives_of_both_shapes() {
    let f = fixture();
    let layout = testkit::debian_layout();
    let work = f._work.path();

    // The legacy shape, as skopeo (and docker save before 25) writes it.
    let legacy = work.join("legacy.tar");
    testkit::run(
        Command::new("skopeo")
            .args(["copy", "-q"])
            .arg(&f.image)
            .arg(format!("docker-archive:{}:debian:12", legacy.display())),
    );
    let scanned = stdout_of(
        &f.data,
        &[
            "scan",
            &format!("docker-archive:{}", legacy.display()),
            "--format",
            "json",
        ],
    );
    assert_eq!(reported(&scanned), as_owned(&f.expected));

    // The newer shape: an OCI layout's blobs plus a manifest.json naming them by path.
    let manifest = testkit::run(
        Command::new("skopeo")
            .arg("inspect")
            .arg("--raw")
            .arg(&f.image),
    );
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    let blob_path = |descriptor: &Value| {
        format!(
            "blobs/sha256/{}",
            descriptor["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
        )
    };
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(blob_path)
        .collect();
    let docker_manifest = json!([{"Config": blob_path(&manifest["config"]), "RepoTags": ["debian:12"], "Layers": layers}]);
    let staging = work.join("newer");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(
        staging.join("manifest.json"),
        serde_json::to_vec(&docker_manifest).unwrap(),
    )
    .unwrap();
    let newer = work.join("newer.tar");
    testkit::run(
        Command::new("tar")
            .arg("-cf")
            .arg(&newer)
            .arg("-C")
            .arg(&layout)
            .args(["oci-layout", "index.json", "blobs"])
            .arg("-C")
            .arg(&staging)
            .arg("manifest.json"),
    );
    let scanned = stdout_of(
        &f.data,
        &["scan", newer.to_str().unwrap(), "--format", "json"],
    );
    assert_eq!(reported(&scanned), as_owned(&f.expected));

    // A tar that is not a docker save archive says so.
    let plain = work.join("plain.tar");
    std::fs::write(work.join("notes.txt"), "not an image").unwrap();
    testkit::run(
        Command::new("tar")
            .arg("-cf")
            .arg(&plain)
            .arg("-C")
            .arg(work)
            .arg("notes.txt"),
    );
    let out = drydock(
        &f.data,
        &["scan", &format!("docker-archive:{}", plain.display())],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no manifest.json"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
