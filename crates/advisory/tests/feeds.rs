//! The feed parsers on fixtures in their true formats: tracker JSON, OSV
//! records and zips (Debian, Ubuntu, Alpine), Alpine secdb; and loading
//! files and directories with kind detection and clear errors.

mod support;

use std::sync::Arc;

use advisory::feeds::{self, osv_feeds, parse_osv, parse_osv_zip, parse_secdb, parse_tracker};
use advisory::{Advisory, Error, Family, FeedKind, Severity, Status};
use support::{fixture, osv_zip, read_fixture, zip_of};

fn find<'a>(advisories: &'a [Advisory], package: &str, id: &str, release: &str) -> &'a Advisory {
    let found: Vec<&Advisory> = advisories
        .iter()
        .filter(|a| a.package == package && a.id == id && a.distro.release == release)
        .collect();
    assert_eq!(found.len(), 1, "{package} {id} {release}: {found:#?}");
    found[0]
}

fn fixed(version: &str) -> Status {
    Status::Fixed {
        fixed_version: version.to_string(),
    }
}

#[test]
fn tracker_statuses_severities_and_versions() {
    let advisories = parse_tracker(&read_fixture("tracker.json")).unwrap();
    assert_eq!(advisories.len(), 14);
    assert!(advisories.iter().all(|a| a.distro.family == Family::Debian));

    // resolved, fixed_version "0": never affected; `unimportant` is LOW.
    let apparmor = find(&advisories, "apparmor", "CVE-2014-1424", "bookworm");
    assert_eq!(apparmor.status, Status::NotAffected);
    assert_eq!(apparmor.severity, Severity::Low);
    assert_eq!(apparmor.severity_source.as_deref(), Some("debian"));

    // open without any no-dsa note: affected (unfixed).
    let glob = find(&advisories, "glibc", "CVE-2010-4756", "bookworm");
    assert_eq!(glob.status, Status::Affected);
    assert_eq!(glob.severity, Severity::Low);

    // resolved with a version; `high**` (from NVD) is HIGH; end-of-life release.
    let iconv = find(&advisories, "glibc", "CVE-2024-2961", "bookworm");
    assert_eq!(iconv.status, fixed("2.36-9+deb12u7"));
    assert_eq!(iconv.severity, Severity::High);
    assert_eq!(
        iconv.details.urls,
        [
            "https://security-tracker.debian.org/tracker/CVE-2024-2961",
            "https://bugs.debian.org/1069191"
        ]
    );
    assert!(
        iconv
            .details
            .description
            .as_ref()
            .unwrap()
            .starts_with("The iconv()")
    );
    let buster = find(&advisories, "glibc", "CVE-2024-2961", "buster");
    assert_eq!(buster.status, Status::EndOfLife);
    assert_eq!(
        (buster.severity, buster.severity_source.as_deref()),
        (Severity::Unknown, None)
    );
    assert_eq!(
        find(&advisories, "glibc", "CVE-2024-2961", "sid").status,
        fixed("2.37-18")
    );
    // One record's text is shared by its releases.
    assert!(Arc::ptr_eq(&iconv.details, &buster.details));

    // binNMU and epoch versions are carried verbatim; `medium*` is MEDIUM.
    let binnmu = find(
        &advisories,
        "golang-golang-x-net",
        "CVE-2023-39325",
        "bookworm",
    );
    assert_eq!(binnmu.status, fixed("1:0.7.0+dfsg-1+b1"));
    assert_eq!(binnmu.severity, Severity::Medium);

    // <no-dsa> (reason ""): still affected; <ignored>: will not fix; <postponed>: deferred.
    assert_eq!(
        find(&advisories, "openssl", "CVE-2023-5678", "bullseye").status,
        Status::Affected
    );
    assert_eq!(
        find(&advisories, "zlib", "CVE-2023-45853", "bookworm").status,
        Status::WillNotFix
    );
    assert_eq!(
        find(&advisories, "zlib", "CVE-2023-45853", "bullseye").status,
        Status::FixDeferred
    );
    assert_eq!(
        find(&advisories, "zlib", "CVE-2023-45853", "trixie").status,
        fixed("1:1.3.dfsg-3.1")
    );

    // undetermined: nobody checked yet, so affected; `not yet assigned` is UNKNOWN.
    let temp = find(&advisories, "openssl", "TEMP-0000000-F7A20F", "bookworm");
    assert_eq!(temp.status, Status::Affected);
    assert_eq!(
        (temp.severity, temp.severity_source.as_deref()),
        (Severity::Unknown, None)
    );
    assert_eq!(temp.details.description, None);
}

#[test]
fn debian_osv_records() {
    let iconv = parse_osv(&read_fixture("osv/debian/DEBIAN-CVE-2024-2961.json")).unwrap();
    assert_eq!(iconv.len(), 3);
    assert!(iconv.iter().all(|a| a.id == "CVE-2024-2961"));
    assert_eq!(iconv[0].details.aliases, ["DEBIAN-CVE-2024-2961"]);
    // Debian:10 without ranges and urgency end-of-life.
    let buster = find(&iconv, "glibc", "CVE-2024-2961", "buster");
    assert_eq!(buster.status, Status::EndOfLife);
    let bookworm = find(&iconv, "glibc", "CVE-2024-2961", "bookworm");
    assert_eq!(bookworm.status, fixed("2.36-9+deb12u7"));
    assert_eq!(bookworm.introduced, None);
    assert_eq!(
        (bookworm.severity, bookworm.severity_source.as_deref()),
        (Severity::High, Some("debian"))
    );

    // No ranges: unfixed.
    let glob = parse_osv(&read_fixture("osv/debian/DEBIAN-CVE-2010-4756.json")).unwrap();
    assert_eq!(glob.len(), 1);
    assert_eq!(
        (&glob[0].status, glob[0].severity),
        (&Status::Affected, Severity::Low)
    );

    // A DSA keeps its id and lists its CVEs; it has no urgency.
    let dsa = parse_osv(&read_fixture("osv/debian/DSA-5768-1.json")).unwrap();
    assert_eq!(dsa.len(), 1);
    assert_eq!(dsa[0].id, "DSA-5768-1");
    assert_eq!(
        dsa[0].details.aliases,
        ["CVE-2024-7969", "CVE-2024-8193", "CVE-2024-8194"]
    );
    assert_eq!(
        dsa[0].details.title.as_deref(),
        Some("chromium - security update")
    );
    assert_eq!(dsa[0].status, fixed("128.0.6613.113-1~deb12u1"));
    assert_eq!(
        (dsa[0].severity, dsa[0].severity_source.as_deref()),
        (Severity::Unknown, None)
    );

    let dla = parse_osv(&read_fixture("osv/debian/DLA-3813-1.json")).unwrap();
    assert_eq!(dla[0].distro.release, "bullseye");
    assert_eq!(
        dla[0].status,
        fixed("1:0.0+git20210119.5f4716e+dfsg-4+deb11u1+b1")
    );

    // Withdrawn records say nothing.
    assert!(
        parse_osv(&read_fixture("osv/debian/DEBIAN-CVE-2023-99999.json"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn ubuntu_osv_records() {
    let iconv = parse_osv(&read_fixture("osv/ubuntu/UBUNTU-CVE-2024-2961.json")).unwrap();
    // Ubuntu:Pro:18.04:LTS (ESM) is skipped.
    let releases: Vec<&str> = iconv.iter().map(|a| a.distro.release.as_str()).collect();
    assert_eq!(releases, ["22.04", "24.04"]);
    let noble = find(&iconv, "glibc", "CVE-2024-2961", "24.04");
    assert_eq!(noble.distro.family, Family::Ubuntu);
    assert_eq!(noble.status, fixed("2.39-0ubuntu8.1"));
    // The record's `severity` of type Ubuntu.
    assert_eq!(
        (noble.severity, noble.severity_source.as_deref()),
        (Severity::High, Some("ubuntu"))
    );
    assert_eq!(noble.details.aliases, ["UBUNTU-CVE-2024-2961"]);

    // The older form: the CVE only in `related`, priority in ecosystem_specific.
    let coreutils = parse_osv(&read_fixture("osv/ubuntu/UBUNTU-CVE-2016-2781.json")).unwrap();
    let noble = find(&coreutils, "coreutils", "CVE-2016-2781", "24.04");
    assert_eq!(
        (&noble.status, noble.severity),
        (&Status::Affected, Severity::Low)
    );
    let oracular = find(&coreutils, "coreutils", "CVE-2016-2781", "24.10");
    assert_eq!(oracular.severity, Severity::Low, "negligible is LOW");
}

#[test]
fn alpine_osv_records_with_several_ranges() {
    let advisories = parse_osv(&read_fixture("osv/alpine/ALPINE-CVE-2024-6119.json")).unwrap();
    let summary: Vec<(&str, &Status, Option<&str>, Option<&str>)> = advisories
        .iter()
        .map(|a| {
            (
                a.distro.release.as_str(),
                &a.status,
                a.introduced.as_deref(),
                a.last_affected.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("3.20", &fixed("3.3.2-r0"), None, None),
            // Two intervals; the GIT range is ignored.
            ("3.19", &fixed("3.1.7-r0"), None, None),
            ("3.19", &fixed("3.1.8-r1"), Some("3.1.8-r0"), None),
            // last_affected: an unfixed but bounded range.
            (
                "3.18",
                &Status::Affected,
                Some("3.1.0-r0"),
                Some("3.1.6-r0")
            ),
        ]
    );
    assert!(advisories.iter().all(|a| a.id == "CVE-2024-6119"
        && a.package == "openssl"
        && a.severity == Severity::Unknown));
}

#[test]
fn osv_zips_hold_every_record_and_split_into_feeds_by_family() {
    let zip = osv_zip(&["osv/debian", "osv/ubuntu", "osv/alpine"]);
    let advisories = parse_osv_zip(std::io::Cursor::new(zip)).unwrap();
    let mut one_by_one = Vec::new();
    for dir in ["osv/debian", "osv/ubuntu", "osv/alpine"] {
        let mut files: Vec<_> = std::fs::read_dir(fixture(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            one_by_one.extend(parse_osv(&std::fs::read(file).unwrap()).unwrap());
        }
    }
    assert_eq!(advisories, one_by_one);
    let feeds = osv_feeds(advisories);
    let names: Vec<(&str, usize)> = feeds
        .iter()
        .map(|f| (f.name.as_str(), f.advisories.len()))
        .collect();
    assert_eq!(
        names,
        [("osv-debian", 6), ("osv-ubuntu", 4), ("osv-alpine", 4)]
    );
}

#[test]
fn zip_bombs_and_bad_entries_are_refused_clearly() {
    let bomb = zip_of(&[(
        "BOMB-1.json".to_string(),
        vec![b' '; feeds::MAX_RECORD_BYTES as usize + 1],
    )]);
    assert!(bomb.len() < 1024 * 1024, "deflates well: {}", bomb.len());
    let error = parse_osv_zip(std::io::Cursor::new(bomb)).unwrap_err();
    assert_eq!(error.location, "entry \"BOMB-1.json\"");
    assert!(error.message.contains("larger than"), "{error}");

    let bad = zip_of(&[
        (
            "DSA-1-1.json".to_string(),
            read_fixture("osv/debian/DSA-5768-1.json"),
        ),
        (
            "DSA-2-1.json".to_string(),
            b"{\"id\": \"DSA-2-1\", \"affected\": [".to_vec(),
        ),
        ("README.txt".to_string(), b"not a record".to_vec()),
    ]);
    let error = parse_osv_zip(std::io::Cursor::new(bad)).unwrap_err();
    assert_eq!(error.location, "entry \"DSA-2-1.json\"");
    assert!(
        error.message.starts_with("not an OSV record: EOF"),
        "{error}"
    );

    let error = parse_osv_zip(std::io::Cursor::new(b"PK\x03\x04 truncated".to_vec())).unwrap_err();
    assert!(error.message.starts_with("not a zip archive"), "{error}");
}

#[test]
fn secdb_fixed_and_not_affected() {
    let feed = parse_secdb(&read_fixture("secdb/v3.20-main.json")).unwrap();
    assert_eq!(
        (feed.name.as_str(), feed.kind),
        ("secdb-3.20-main", FeedKind::Secdb)
    );
    assert_eq!(feed.advisories.len(), 11);
    let busybox = find(&feed.advisories, "busybox", "CVE-2023-42364", "3.20");
    assert_eq!(busybox.status, fixed("1.36.1-r29"));
    assert_eq!(busybox.distro.family, Family::Alpine);
    assert_eq!(
        find(&feed.advisories, "busybox", "CVE-2021-42373", "3.20").status,
        Status::NotAffected
    );
    // Two ids on one line are two advisories.
    assert_eq!(
        find(&feed.advisories, "xen", "XSA-453", "3.20").status,
        fixed("4.18.2-r0")
    );
    assert_eq!(
        find(&feed.advisories, "xen", "CVE-2023-46842", "3.20")
            .details
            .urls,
        ["https://security.alpinelinux.org/vuln/CVE-2023-46842"]
    );
}

#[test]
fn loading_files_tells_their_kind() {
    let loaded = feeds::load(
        &[
            fixture("tracker.json"),
            fixture("secdb/v3.20-main.json"),
            fixture("secdb/v3.20-community.json"),
            fixture("osv/ubuntu/UBUNTU-CVE-2024-2961.json"),
            fixture("osv/debian"),
        ],
        None,
    )
    .unwrap();
    let names: Vec<(&str, FeedKind, usize)> = loaded
        .iter()
        .map(|l| (l.source.name.as_str(), l.source.kind, l.advisories.len()))
        .collect();
    assert_eq!(
        names,
        [
            ("debian-tracker", FeedKind::Tracker, 14),
            ("secdb-3.20-main", FeedKind::Secdb, 11),
            ("secdb-3.20-community", FeedKind::Secdb, 1),
            ("osv-ubuntu", FeedKind::Osv, 2),
            ("osv-debian", FeedKind::Osv, 6),
        ]
    );
    let tracker = &loaded[0].source;
    assert_eq!(
        tracker.location,
        fixture("tracker.json").display().to_string()
    );
    assert_eq!(tracker.sha256.len(), 64);
    assert!(tracker.modified_at.is_some() && tracker.fetched_at > 0);

    // A zip file by its magic.
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("all.zip");
    std::fs::write(&zip, osv_zip(&["osv/alpine"])).unwrap();
    let loaded = feeds::load(std::slice::from_ref(&zip), None).unwrap();
    assert_eq!(loaded[0].source.name, "osv-alpine");
}

#[test]
fn bad_inputs_say_which_file_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    // As the CLI prints it: the error and its causes.
    let message = |error: Error| {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
        text
    };

    let truncated = write("tracker.json", &read_fixture("tracker.json")[..300]);
    let error = message(
        feeds::load(std::slice::from_ref(&truncated), Some(FeedKind::Tracker)).unwrap_err(),
    );
    assert!(
        error.starts_with(&format!(
            "{} is not a valid Debian Security Tracker JSON feed: ",
            truncated.display()
        )),
        "{error}"
    );

    let error = message(feeds::load(&[write("x.json", b"[1]")], None).unwrap_err());
    assert!(
        error.contains("cannot tell which kind of feed") && error.contains("x.json"),
        "{error}"
    );

    let pypi = write(
        "pypi.json",
        br#"{"id": "PYSEC-1", "modified": "2024-01-01T00:00:00Z",
             "affected": [{"package": {"ecosystem": "PyPI", "name": "x"}}]}"#,
    );
    let error = message(feeds::load(&[pypi], None).unwrap_err());
    assert!(
        error.contains("holds no Debian, Ubuntu or Alpine advisories"),
        "{error}"
    );

    let error = message(
        feeds::load(
            &[
                fixture("osv/debian/DSA-5768-1.json"),
                fixture("osv/debian/DLA-3813-1.json"),
            ],
            None,
        )
        .unwrap_err(),
    );
    assert!(error.contains("both hold feed osv-debian"), "{error}");

    let error = message(feeds::load(&[dir.path().join("missing.json")], None).unwrap_err());
    assert!(error.contains("missing.json: No such file"), "{error}");

    let error = message(feeds::load(&[fixture("osv/debian")], Some(FeedKind::Secdb)).unwrap_err());
    assert!(error.contains("directories hold OSV records"), "{error}");

    let bad_record_dir = tempfile::tempdir().unwrap();
    std::fs::write(bad_record_dir.path().join("DSA-9-1.json"), b"{\"id\": 1}").unwrap();
    let error = message(feeds::load(&[bad_record_dir.path().to_path_buf()], None).unwrap_err());
    assert!(
        error.contains("DSA-9-1.json is not a valid OSV feed: not an OSV record"),
        "{error}"
    );
}
