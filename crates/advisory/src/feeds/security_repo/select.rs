//! The pure core of the security-repository feed: which suite serves a
//! release, which installed sources the suite's index has newer versions
//! of, which changelog entries an upgrade brings in, and the advisories
//! they make. No network, no disk, no clock.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use pkgdb::version::dpkg::compare;
use repo::apt::packages::IndexPackage;
use serde::{Deserialize, Serialize};

use crate::error::NoSecuritySuite;
use crate::model::{Advisory, Details, Distro, Family, Severity, Status};

/// What the feed keeps of one changelog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The version the entry uploaded.
    pub version: String,
    /// Its `urgency=`, lowercased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgency: Option<String>,
    /// The CVE ids its changes name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cves: Vec<String>,
}

impl From<&repo::changelog::ChangelogEntry> for Entry {
    fn from(entry: &repo::changelog::ChangelogEntry) -> Entry {
        Entry {
            version: entry.version.clone(),
            urgency: entry.urgency.clone(),
            cves: entry.cves.clone(),
        }
    }
}

/// Ubuntu releases by version (the way [`Distro`] names them) and codename.
pub const UBUNTU_RELEASES: &[(&str, &str)] = &[
    ("14.04", "trusty"),
    ("16.04", "xenial"),
    ("18.04", "bionic"),
    ("20.04", "focal"),
    ("22.04", "jammy"),
    ("24.04", "noble"),
    ("24.10", "oracular"),
    ("25.04", "plucky"),
    ("25.10", "questing"),
    ("26.04", "resolute"),
];

/// Architectures Ubuntu serves from `ports.ubuntu.com` rather than `security.ubuntu.com`.
pub fn ubuntu_is_ports(architecture: &str) -> bool {
    !matches!(architecture, "amd64" | "i386")
}

/// The name of the security suite of `distro` (`bookworm-security`,
/// `noble-security`), or why there is none.
pub fn suite_name(distro: &Distro) -> Result<String, NoSecuritySuite> {
    let release = distro.release.as_str();
    let codename_like =
        !release.is_empty() && release.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
    match distro.family {
        Family::Debian if matches!(release, "sid" | "unstable" | "experimental") => {
            Err(NoSecuritySuite::Unstable)
        }
        Family::Debian if codename_like => Ok(format!("{release}-security")),
        Family::Debian => Err(NoSecuritySuite::NotACodename(release.to_string())),
        Family::Ubuntu => UBUNTU_RELEASES
            .iter()
            .find(|(version, codename)| *version == release || *codename == release)
            .map(|(_, codename)| format!("{codename}-security"))
            .ok_or_else(|| {
                let known: Vec<&str> = UBUNTU_RELEASES.iter().map(|(v, _)| *v).collect();
                NoSecuritySuite::UnknownUbuntu {
                    release: release.to_string(),
                    known: known.join(", "),
                }
            }),
        Family::Alpine => Err(NoSecuritySuite::Alpine),
    }
}

/// The severity an upload's `urgency=` stands for.
pub fn severity_of_urgency(urgency: Option<&str>) -> Severity {
    match urgency.map(str::to_ascii_lowercase).as_deref() {
        Some("low") => Severity::Low,
        Some("medium") => Severity::Medium,
        Some("high") => Severity::High,
        Some("emergency" | "critical") => Severity::Critical,
        _ => Severity::Unknown,
    }
}

/// The changelog entries an upgrade from `installed` to `fixed` brings in:
/// version > `installed` and ≤ `fixed`, in dpkg order (a binNMU `+b1` of
/// `fixed` is after it, so excluded; an installed `+b1` is after its source upload).
pub fn entries_between<'a>(entries: &'a [Entry], installed: &str, fixed: &str) -> Vec<&'a Entry> {
    entries
        .iter()
        .filter(|e| {
            compare(&e.version, installed) == Ordering::Greater
                && compare(&e.version, fixed) != Ordering::Greater
        })
        .collect()
}

/// The id of an update whose changelog names no CVE:
/// `DRYDOCK-<FAMILY>-<source>-<fixed version>`, e.g.
/// `DRYDOCK-DEBIAN-tzdata-2025b-0+deb12u1`.
pub fn stable_id(family: Family, source: &str, fixed_version: &str) -> String {
    format!(
        "DRYDOCK-{}-{source}-{fixed_version}",
        family.as_str().to_ascii_uppercase()
    )
}

/// Where a user reads about `cve` in the vendor's tracker.
pub fn tracker_url(family: Family, cve: &str) -> String {
    match family {
        Family::Ubuntu => format!("https://ubuntu.com/security/{cve}"),
        _ => format!("https://security-tracker.debian.org/tracker/{cve}"),
    }
}

/// Where a user reads about an upload without CVE ids.
fn upload_url(family: Family, source: &str, version: &str) -> String {
    match family {
        Family::Ubuntu => format!("https://launchpad.net/ubuntu/+source/{source}/{version}"),
        _ => format!("https://security-tracker.debian.org/tracker/source-package/{source}"),
    }
}

/// The newest upload of each source of a suite's indexes, by source name.
pub type Uploads = BTreeMap<String, SourceUpload>;

/// The newest version of each source in a suite's index and the binaries
/// built from it (smallest first, one per file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceUpload {
    pub version: String,
    pub binaries: Vec<IndexPackage>,
}

/// Groups index entries (of every component, for one architecture plus
/// `all`) by source, keeping the newest source version of each.
pub fn newest_uploads(packages: Vec<IndexPackage>) -> BTreeMap<String, SourceUpload> {
    let mut uploads: BTreeMap<String, SourceUpload> = BTreeMap::new();
    for package in packages {
        match uploads.get_mut(&package.source_name) {
            None => {
                uploads.insert(
                    package.source_name.clone(),
                    SourceUpload {
                        version: package.source_version.clone(),
                        binaries: vec![package],
                    },
                );
            }
            Some(upload) => match compare(&package.source_version, &upload.version) {
                Ordering::Greater => {
                    upload.version = package.source_version.clone();
                    upload.binaries = vec![package];
                }
                Ordering::Equal => upload.binaries.push(package),
                Ordering::Less => {}
            },
        }
    }
    for upload in uploads.values_mut() {
        upload
            .binaries
            .sort_by(|a, b| a.size.cmp(&b.size).then_with(|| a.name.cmp(&b.name)));
        upload.binaries.dedup_by(|a, b| a.filename == b.filename);
    }
    uploads
}

/// The newest source version of each source in a suite's indexes: all a
/// scan needs to know which installed sources the suite fixes.
pub type SourceVersions = BTreeMap<String, String>;

/// The version of each upload.
pub fn source_versions(uploads: &Uploads) -> SourceVersions {
    uploads
        .iter()
        .map(|(source, upload)| (source.clone(), upload.version.clone()))
        .collect()
}

/// Installed sources (name → the oldest installed version, so an image
/// holding two versions of a source gets every entry either lacks) that the
/// suite has a newer upload of: (source, installed version, the suite's version).
pub fn outdated<'a>(
    installed: impl IntoIterator<Item = (&'a str, &'a str)>,
    versions: &'a SourceVersions,
) -> Vec<(&'a str, &'a str, &'a str)> {
    let mut oldest: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, version) in installed {
        let slot = oldest.entry(name).or_insert(version);
        if compare(version, slot) == Ordering::Less {
            *slot = version;
        }
    }
    oldest
        .into_iter()
        .filter_map(|(name, version)| {
            let fixed = versions.get(name)?;
            (compare(version, fixed) == Ordering::Less).then_some((name, version, fixed.as_str()))
        })
        .collect()
}

/// The advisories for upgrading `source` from `installed` to `fixed` (the
/// suite's version) in `suite`, from the upload's changelog `entries`
/// (`None`: not read). Each CVE named by an entry the upgrade brings in is
/// one advisory, fixed in the newest of those entries that names it (the
/// upload that completes its fix, as the distributions' trackers and Trivy
/// report it) and rated by that entry's urgency. An upgrade whose entries
/// name no CVE (or whose changelog was not read) is one advisory under the
/// [`stable_id`], fixed in `fixed`, rated by the highest urgency among them.
pub fn advisories(
    distro: &Distro,
    suite: &str,
    source: &str,
    installed: &str,
    fixed: &str,
    entries: Option<&[Entry]>,
) -> Vec<Advisory> {
    let between = entries.map_or_else(Vec::new, |e| entries_between(e, installed, fixed));
    // CVE → the newest entry naming it.
    let mut fixes: BTreeMap<&str, &Entry> = BTreeMap::new();
    for entry in &between {
        for cve in &entry.cves {
            let newest = fixes.entry(cve.as_str()).or_insert(entry);
            if compare(&entry.version, &newest.version) == Ordering::Greater {
                *newest = entry;
            }
        }
    }
    let family = distro.family;
    let advisory =
        |id: String, fixed_version: &str, severity: Severity, details: Details| Advisory {
            id,
            distro: distro.clone(),
            package: source.to_string(),
            status: Status::Fixed {
                fixed_version: fixed_version.to_string(),
            },
            introduced: None,
            last_affected: None,
            severity,
            severity_source: (severity != Severity::Unknown).then(|| family.as_str().to_string()),
            details: Arc::new(details),
        };
    if fixes.is_empty() {
        let severity = between
            .iter()
            .map(|e| severity_of_urgency(e.urgency.as_deref()))
            .max()
            .unwrap_or_default();
        let description = match entries {
            None => format!(
                "{suite} has {source} {fixed}, newer than the installed {installed}; its changelog \
                 could not be read, so which vulnerabilities it fixes is unknown"
            ),
            Some(_) => format!(
                "{suite} has {source} {fixed}, newer than the installed {installed}; its changelog \
                 entries name no CVE"
            ),
        };
        let details = Details::new(
            Some(&format!("fixed in {source} {fixed} ({suite})")),
            Some(&description),
            Vec::new(),
            [upload_url(family, source, fixed)],
        );
        return vec![advisory(
            stable_id(family, source, fixed),
            fixed,
            severity,
            details,
        )];
    }
    let alias = stable_id(family, source, fixed);
    fixes
        .into_iter()
        .map(|(cve, entry)| {
            let details = Details::new(
                Some(&format!("fixed in {source} {} ({suite})", entry.version)),
                None,
                vec![alias.clone()],
                [tracker_url(family, cve)],
            );
            let severity = severity_of_urgency(entry.urgency.as_deref());
            advisory(cve.to_string(), &entry.version, severity, details)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: &str, urgency: Option<&str>, cves: &[&str]) -> Entry {
        Entry {
            version: version.into(),
            urgency: urgency.map(str::to_string),
            cves: cves.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn index(name: &str, source: &str, version: &str, size: u64) -> IndexPackage {
        IndexPackage {
            name: name.into(),
            version: version.into(),
            architecture: "amd64".into(),
            source_name: source.into(),
            source_version: version.into(),
            filename: format!("pool/updates/main/x/{name}_{version}_amd64.deb"),
            size,
            sha256: "0".repeat(64),
            multi_arch: None,
            depends: None,
            pre_depends: None,
            provides: None,
            conflicts: None,
            breaks: None,
            replaces: None,
        }
    }

    #[test]
    fn urgencies_map_to_severities() {
        let cases = [
            (Some("low"), Severity::Low),
            (Some("medium"), Severity::Medium),
            (Some("MEDIUM"), Severity::Medium),
            (Some("high"), Severity::High),
            (Some("emergency"), Severity::Critical),
            (Some("critical"), Severity::Critical),
            (Some("bogus"), Severity::Unknown),
            (None, Severity::Unknown),
        ];
        for (urgency, severity) in cases {
            assert_eq!(severity_of_urgency(urgency), severity, "{urgency:?}");
        }
    }

    #[test]
    fn entries_between_follow_dpkg_order_with_epochs_and_binnmus() {
        let entries = [
            entry("1:2.0-1+deb12u2+b1", Some("low"), &[]),
            entry("1:2.0-1+deb12u2", Some("high"), &["CVE-2025-2"]),
            entry("1:2.0-1+deb12u1", Some("medium"), &["CVE-2025-1"]),
            entry("1:2.0-1", Some("low"), &["CVE-2024-9"]),
            entry("1:2.0~rc1-1", Some("low"), &["CVE-2024-8"]),
            entry("3.0-1", Some("emergency"), &["CVE-2000-1"]),
        ];
        let versions = |installed: &str, fixed: &str| -> Vec<&str> {
            entries_between(&entries, installed, fixed)
                .iter()
                .map(|e| e.version.as_str())
                .collect()
        };
        // The epoch puts 3.0-1 (epoch 0) before everything else.
        assert_eq!(
            versions("1:2.0-1", "1:2.0-1+deb12u2"),
            ["1:2.0-1+deb12u2", "1:2.0-1+deb12u1"]
        );
        // An installed binNMU is after its source upload, before the next.
        assert_eq!(
            versions("1:2.0-1+b1", "1:2.0-1+deb12u2"),
            ["1:2.0-1+deb12u2", "1:2.0-1+deb12u1"]
        );
        assert_eq!(
            versions("1:2.0-1+deb12u1+b3", "1:2.0-1+deb12u2"),
            ["1:2.0-1+deb12u2"]
        );
        // `~` sorts first: the rc is older than the release.
        assert_eq!(versions("1:2.0~rc1-1", "1:2.0-1"), ["1:2.0-1"]);
        assert!(versions("1:2.0-1+deb12u2", "1:2.0-1+deb12u2").is_empty());
        // Without an epoch, 3.0-1 is between 2.0-1 and anything of epoch 1.
        assert_eq!(versions("2.0-1", "1:2.0~rc1-1"), ["1:2.0~rc1-1", "3.0-1"]);
    }

    #[test]
    fn stable_ids_name_family_source_and_version() {
        assert_eq!(
            stable_id(Family::Debian, "tzdata", "2025b-0+deb12u1"),
            "DRYDOCK-DEBIAN-tzdata-2025b-0+deb12u1"
        );
        assert_eq!(
            stable_id(Family::Ubuntu, "zlib", "1:1.3.dfsg-3.1ubuntu2.1"),
            "DRYDOCK-UBUNTU-zlib-1:1.3.dfsg-3.1ubuntu2.1"
        );
    }

    #[test]
    fn suites_per_release() {
        let suite = |family, release: &str| suite_name(&Distro::new(family, release));
        assert_eq!(
            suite(Family::Debian, "bookworm").unwrap(),
            "bookworm-security"
        );
        assert_eq!(suite(Family::Ubuntu, "24.04").unwrap(), "noble-security");
        assert_eq!(suite(Family::Ubuntu, "jammy").unwrap(), "jammy-security");
        assert!(
            suite(Family::Ubuntu, "7.04")
                .unwrap_err()
                .to_string()
                .contains("24.04")
        );
        assert!(suite(Family::Debian, "12").is_err());
        assert!(suite(Family::Debian, "../x").is_err());
        assert!(suite(Family::Debian, "sid").is_err());
        assert!(suite(Family::Alpine, "3.20").is_err());
    }

    #[test]
    fn newest_upload_per_source_with_smallest_binary_first() {
        let uploads = newest_uploads(vec![
            index("libfoo1", "foo", "1.0-1+deb12u1", 500),
            index("foo-doc", "foo", "1.0-1+deb12u2", 900),
            index("libfoo1", "foo", "1.0-1+deb12u2", 300),
            index("foo-bin", "foo", "1.0-1+deb12u2", 100),
            index("bar", "bar", "2.0-1", 10),
        ]);
        let foo = &uploads["foo"];
        assert_eq!(foo.version, "1.0-1+deb12u2");
        let names: Vec<&str> = foo.binaries.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["foo-bin", "libfoo1", "foo-doc"]);

        let installed = [
            ("foo", "1.0-1+deb12u2"),
            ("foo", "1.0-1"),
            ("bar", "2.0-1"),
            ("baz", "1"),
        ];
        let versions = source_versions(&uploads);
        assert_eq!(versions["bar"], "2.0-1");
        let outdated = outdated(installed, &versions);
        assert_eq!(outdated, [("foo", "1.0-1", "1.0-1+deb12u2")]);
    }

    #[test]
    fn one_advisory_per_cve_or_one_under_the_stable_id() {
        let distro = Distro::new(Family::Debian, "bookworm");
        let entries = [
            entry(
                "1.0-1+deb12u2",
                Some("medium"),
                &["CVE-2025-2", "CVE-2025-1"],
            ),
            entry("1.0-1+deb12u1", Some("high"), &["CVE-2025-1"]),
            entry("1.0-1", Some("low"), &["CVE-2020-1"]),
        ];
        let found = advisories(
            &distro,
            "bookworm-security",
            "foo",
            "1.0-1",
            "1.0-1+deb12u2",
            Some(&entries),
        );
        let ids: Vec<&str> = found.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["CVE-2025-1", "CVE-2025-2"]);
        // CVE-2025-1 is named by both uploads: the newer completes its fix.
        let expected = [
            ("1.0-1+deb12u2", Severity::Medium),
            ("1.0-1+deb12u2", Severity::Medium),
        ];
        for (advisory, (fixed, severity)) in found.iter().zip(expected) {
            assert_eq!(advisory.severity, severity, "{}", advisory.id);
            assert_eq!(advisory.severity_source.as_deref(), Some("debian"));
            assert_eq!(advisory.status.fixed_version(), Some(fixed));
            assert_eq!(advisory.package, "foo");
            assert_eq!(
                advisory.details.aliases,
                ["DRYDOCK-DEBIAN-foo-1.0-1+deb12u2"]
            );
            assert_eq!(
                advisory.details.title.as_deref(),
                Some(format!("fixed in foo {fixed} (bookworm-security)").as_str())
            );
        }
        // A CVE fixed by an older upload than the suite's is fixed in that upload, rated by it.
        let older = advisories(
            &distro,
            "bookworm-security",
            "foo",
            "1.0-1",
            "1.0-1+deb12u2",
            Some(&[
                entry("1.0-1+deb12u2", Some("low"), &["CVE-2025-2"]),
                entry("1.0-1+deb12u1", Some("high"), &["CVE-2025-1"]),
            ]),
        );
        let fixes: Vec<_> = older
            .iter()
            .map(|a| (a.id.as_str(), a.status.fixed_version().unwrap(), a.severity))
            .collect();
        assert_eq!(
            fixes,
            [
                ("CVE-2025-1", "1.0-1+deb12u1", Severity::High),
                ("CVE-2025-2", "1.0-1+deb12u2", Severity::Low)
            ]
        );
        assert_eq!(
            found[0].details.urls,
            ["https://security-tracker.debian.org/tracker/CVE-2025-1"]
        );

        let no_cve = [entry("1.0-1+deb12u1", Some("low"), &[])];
        let found = advisories(
            &distro,
            "bookworm-security",
            "foo",
            "1.0-1",
            "1.0-1+deb12u1",
            Some(&no_cve),
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, "DRYDOCK-DEBIAN-foo-1.0-1+deb12u1");
        assert_eq!(found[0].severity, Severity::Low);

        let unread = advisories(&distro, "s", "foo", "1.0-1", "1.0-2", None);
        assert_eq!(unread[0].id, "DRYDOCK-DEBIAN-foo-1.0-2");
        assert_eq!(unread[0].severity, Severity::Unknown);
        assert_eq!(unread[0].severity_source, None);
    }
}
