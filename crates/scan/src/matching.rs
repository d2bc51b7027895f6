//! Matching installed packages to advisories: the decision "is this package
//! vulnerable to that advisory".
//!
//! Owns the rules users judge a scanner by. Debian and Ubuntu advisories
//! name *source* packages, so a binary package is looked up by its source
//! name and compared by its source version (a binNMU's `+b1` or a binary
//! versioned apart from its source cannot cause false positives); Alpine
//! advisories name the origin package. A vendor's "not affected" for an id
//! suppresses every other feed's claim about it; otherwise the first feed in
//! priority order speaks for an id. Pure: advisories come in as values, or
//! as views of the store's packed form (only what deciding and reporting read).

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet};

use advisory::{AdvisoryView, Distro, Family, FeedAdvisory, Severity, StatusRef};
use pkgdb::{OsInfo, Package, PackageKind, VersionScheme};

use crate::report::{Finding, OsFamily, PackageEntry};

/// The advisory distro and report family of an identified OS, when drydock supports it.
pub fn distro_of(os: &OsInfo) -> Option<(Distro, OsFamily)> {
    let id_like = |name: &str| os.id == name || os.id_like.iter().any(|i| i == name);
    if os.id == "ubuntu" {
        let release = os.major_release()?;
        return Some((Distro::new(Family::Ubuntu, release), OsFamily::Ubuntu));
    }
    if os.id == "debian" || (id_like("debian") && os.codename.is_some()) {
        let codename = os.codename.clone()?;
        return Some((Distro::new(Family::Debian, codename), OsFamily::Debian));
    }
    if os.id == "alpine" {
        let release = os.major_release()?;
        return Some((Distro::new(Family::Alpine, release), OsFamily::Alpine));
    }
    None
}

/// Which findings to keep.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Keep only findings with a fixed version.
    pub ignore_unfixed: bool,
    /// Keep only these severities (all when empty).
    pub severities: Vec<Severity>,
}

impl Filters {
    fn keeps(&self, finding: &Finding) -> bool {
        (!self.ignore_unfixed || finding.fixed_version().is_some())
            && (self.severities.is_empty() || self.severities.contains(&finding.severity))
    }
}

/// Whether `installed` falls in the advisory's affected range.
fn affects(advisory: &AdvisoryView, installed: &str, scheme: VersionScheme) -> bool {
    let below = |bound: &str| scheme.compare(installed, bound).is_lt();
    if advisory.introduced.is_some_and(below) {
        return false;
    }
    if let Some(last) = advisory.last_affected
        && scheme.compare(installed, last).is_gt()
    {
        return false;
    }
    match advisory.status {
        StatusRef::Fixed { fixed_version } => below(fixed_version),
        StatusRef::NotAffected => false,
        StatusRef::Affected
        | StatusRef::WillNotFix
        | StatusRef::FixDeferred
        | StatusRef::EndOfLife => true,
    }
}

/// The advisory that speaks for each id: none when any feed says "not
/// affected", else the first in `advisories` (callers order feeds by trust).
fn deciding<'v, 'a>(advisories: &'v [AdvisoryView<'a>]) -> Vec<&'v AdvisoryView<'a>> {
    // The store hands lists ordered by id: each id's advisories are then
    // adjacent and a single pass decides, without hashing ids.
    if advisories.windows(2).all(|pair| pair[0].id <= pair[1].id) {
        return advisories
            .chunk_by(|a, b| a.id == b.id)
            .filter(|same_id| same_id.iter().all(|a| a.status != StatusRef::NotAffected))
            .map(|same_id| &same_id[0])
            .collect();
    }
    let not_affected: HashSet<&str> = advisories
        .iter()
        .filter(|a| a.status == StatusRef::NotAffected)
        .map(|a| a.id)
        .collect();
    let mut seen = HashSet::new();
    advisories
        .iter()
        .filter(|a| !not_affected.contains(a.id) && seen.insert(a.id))
        .collect()
}

fn tracker_url(family: OsFamily, id: &str) -> Option<String> {
    if !id.starts_with("CVE-") {
        return None;
    }
    Some(match family {
        OsFamily::Debian => format!("https://security-tracker.debian.org/tracker/{id}"),
        OsFamily::Ubuntu => format!("https://ubuntu.com/security/{id}"),
        OsFamily::Alpine => format!("https://security.alpinelinux.org/vuln/{id}"),
        OsFamily::Redhat => format!("https://access.redhat.com/security/cve/{id}"),
    })
}

/// An installed package as the reports list it.
pub fn entry(package: &Package) -> PackageEntry {
    PackageEntry {
        name: package.name.clone(),
        version: package.version.clone(),
        architecture: package.architecture.clone(),
        source_name: package.source_name.clone(),
        source_version: package.source_version.clone(),
        layer_diff_id: package.layer.as_ref().map(|d| d.to_string()),
    }
}

/// The findings for `packages` given the advisories of their sources (keyed
/// by source package name), filtered and sorted by package, then severity
/// (most severe first), then id.
pub fn findings(
    family: OsFamily,
    packages: &[Package],
    advisories: &BTreeMap<String, Vec<FeedAdvisory>>,
    filters: &Filters,
) -> Vec<Finding> {
    let views: BTreeMap<&str, Vec<AdvisoryView>> = advisories
        .iter()
        .map(|(source, list)| {
            (
                source.as_str(),
                list.iter().map(AdvisoryView::from).collect(),
            )
        })
        .collect();
    findings_from_views(family, packages, &views, filters)
}

/// [`findings`] over advisory views (each source's list in trust order), as
/// the scanner reads them from the store without decoding them.
pub fn findings_from_views<K: Borrow<str> + Ord>(
    family: OsFamily,
    packages: &[Package],
    advisories: &BTreeMap<K, Vec<AdvisoryView>>,
    filters: &Filters,
) -> Vec<Finding> {
    // Binary packages of one source share its version: what affects that
    // source version is decided once, for all of them.
    let mut affecting: HashMap<(&str, &str, PackageKind), Vec<&AdvisoryView>> = HashMap::new();
    let mut found = Vec::new();
    for package in packages {
        let Some(candidates) = advisories.get(package.source_name.as_str()) else {
            continue;
        };
        let key = (
            package.source_name.as_str(),
            package.source_version.as_str(),
            package.kind,
        );
        let affected = affecting.entry(key).or_insert_with(|| {
            let scheme = package.kind.version_scheme();
            deciding(candidates)
                .into_iter()
                .filter(|advisory| affects(advisory, &package.source_version, scheme))
                .collect()
        });
        for advisory in affected.iter() {
            let finding = Finding {
                vulnerability_id: advisory.id.to_string(),
                package: entry(package),
                status: advisory.status.to_status(),
                severity: advisory.severity,
                severity_source: advisory.severity_source.unwrap_or_default().to_string(),
                primary_url: advisory
                    .first_url
                    .map(str::to_string)
                    .or_else(|| tracker_url(family, advisory.id)),
                title: advisory.title.map(str::to_string),
            };
            if filters.keeps(&finding) {
                found.push(finding);
            }
        }
    }
    found.sort_by(|a, b| {
        (&a.package.name, &a.package.architecture)
            .cmp(&(&b.package.name, &b.package.architecture))
            .then(b.severity.cmp(&a.severity))
            .then_with(|| a.vulnerability_id.cmp(&b.vulnerability_id))
    });
    found
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use advisory::{Advisory, Details, Status};

    use super::*;

    fn package(name: &str, version: &str, source: &str, source_version: &str) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            architecture: "amd64".into(),
            source_name: source.into(),
            source_version: source_version.into(),
            kind: PackageKind::Deb,
            layer: None,
        }
    }

    fn advisory(
        feed: &str,
        id: &str,
        source: &str,
        status: Status,
        severity: Severity,
    ) -> FeedAdvisory {
        FeedAdvisory {
            feed: feed.into(),
            advisory: Advisory {
                id: id.into(),
                distro: Distro::new(Family::Debian, "bookworm"),
                package: source.into(),
                status,
                introduced: None,
                last_affected: None,
                severity,
                severity_source: Some("debian".into()),
                details: Arc::new(Details::default()),
            },
        }
    }

    fn fixed(version: &str) -> Status {
        Status::Fixed {
            fixed_version: version.into(),
        }
    }

    fn by_source(list: Vec<FeedAdvisory>) -> BTreeMap<String, Vec<FeedAdvisory>> {
        let mut map: BTreeMap<String, Vec<FeedAdvisory>> = BTreeMap::new();
        for a in list {
            map.entry(a.advisory.package.clone()).or_default().push(a);
        }
        map
    }

    #[test]
    fn matches_by_source_version_not_binary_version() {
        // A binNMU: the binary is 1.0-1+b1, the source 1.0-1; fixed in 1.0-1 means not vulnerable.
        let binnmu = package("libfoo1", "1.0-1+b1", "foo", "1.0-1");
        // samba-style: the binary carries its own version, the source is older than the fix.
        let libldb = package(
            "libldb2",
            "2:2.6.2+samba4.17.12+dfsg-0+deb12u1",
            "samba",
            "2:4.17.12+dfsg-0+deb12u1",
        );
        let advisories = by_source(vec![
            advisory("t", "CVE-1", "foo", fixed("1.0-1"), Severity::High),
            advisory(
                "t",
                "CVE-2",
                "samba",
                fixed("2:4.17.12+dfsg-0+deb12u2"),
                Severity::Medium,
            ),
        ]);
        let found = findings(
            OsFamily::Debian,
            &[binnmu, libldb],
            &advisories,
            &Filters::default(),
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].package.name, "libldb2");
        assert_eq!(found[0].vulnerability_id, "CVE-2");
        assert_eq!(
            found[0].primary_url.as_deref(),
            Some("https://security-tracker.debian.org/tracker/CVE-2")
        );
    }

    #[test]
    fn statuses_filters_and_not_affected_suppression() {
        let pkg = package("openssl", "3.0.11-1~deb12u2", "openssl", "3.0.11-1~deb12u2");
        let advisories = by_source(vec![
            advisory(
                "tracker",
                "CVE-A",
                "openssl",
                fixed("3.0.13-1~deb12u1"),
                Severity::High,
            ),
            advisory("osv", "CVE-A", "openssl", fixed("3.0.99"), Severity::Low),
            advisory(
                "tracker",
                "CVE-B",
                "openssl",
                Status::WillNotFix,
                Severity::Low,
            ),
            advisory(
                "tracker",
                "CVE-C",
                "openssl",
                Status::NotAffected,
                Severity::Unknown,
            ),
            advisory(
                "osv",
                "CVE-C",
                "openssl",
                Status::Affected,
                Severity::Critical,
            ),
            advisory(
                "tracker",
                "CVE-D",
                "openssl",
                fixed("3.0.11-1~deb12u1"),
                Severity::Critical,
            ),
        ]);
        let all = findings(
            OsFamily::Debian,
            std::slice::from_ref(&pkg),
            &advisories,
            &Filters::default(),
        );
        let ids: Vec<&str> = all.iter().map(|f| f.vulnerability_id.as_str()).collect();
        assert_eq!(
            ids,
            ["CVE-A", "CVE-B"],
            "C is not affected per the vendor, D is fixed already"
        );
        assert_eq!(
            all[0].severity,
            Severity::High,
            "the first feed speaks for CVE-A"
        );
        assert_eq!(all[0].fixed_version(), Some("3.0.13-1~deb12u1"));

        let fixable = Filters {
            ignore_unfixed: true,
            ..Filters::default()
        };
        assert_eq!(
            findings(
                OsFamily::Debian,
                std::slice::from_ref(&pkg),
                &advisories,
                &fixable
            )
            .len(),
            1
        );
        let only_low = Filters {
            severities: vec![Severity::Low],
            ..Filters::default()
        };
        let low = findings(OsFamily::Debian, &[pkg], &advisories, &only_low);
        assert_eq!(
            low.iter()
                .map(|f| f.vulnerability_id.as_str())
                .collect::<Vec<_>>(),
            ["CVE-B"]
        );
    }

    #[test]
    fn trust_order_decides_whatever_the_list_order() {
        // The security pocket's advisories come first, out of id order: the
        // first advisory for an id still speaks for it, and a "not affected"
        // from any feed still suppresses it.
        let pkg = package("openssl", "3.0.11-1~deb12u2", "openssl", "3.0.11-1~deb12u2");
        let newer = || fixed("3.0.11-1~deb12u3");
        let advisories = by_source(vec![
            advisory("security-repo", "CVE-B", "openssl", newer(), Severity::High),
            advisory("security-repo", "CVE-A", "openssl", newer(), Severity::High),
            advisory(
                "tracker",
                "CVE-A",
                "openssl",
                fixed("3.0.99"),
                Severity::Low,
            ),
            advisory(
                "tracker",
                "CVE-B",
                "openssl",
                Status::NotAffected,
                Severity::Low,
            ),
            advisory(
                "tracker",
                "CVE-C",
                "openssl",
                Status::Affected,
                Severity::Medium,
            ),
        ]);
        let found = findings(OsFamily::Debian, &[pkg], &advisories, &Filters::default());
        let summary: Vec<(&str, Severity, Option<&str>)> = found
            .iter()
            .map(|f| (f.vulnerability_id.as_str(), f.severity, f.fixed_version()))
            .collect();
        assert_eq!(
            summary,
            [
                ("CVE-A", Severity::High, Some("3.0.11-1~deb12u3")),
                ("CVE-C", Severity::Medium, None)
            ]
        );
    }

    #[test]
    fn binaries_of_one_source_share_its_decision() {
        let advisories = by_source(vec![advisory(
            "t",
            "CVE-1",
            "openssl",
            fixed("3.0.13-1"),
            Severity::High,
        )]);
        let packages = [
            package("libssl3", "3.0.11-1", "openssl", "3.0.11-1"),
            package("openssl", "3.0.11-1", "openssl", "3.0.11-1"),
            // Another version of the same source (a partial upgrade) is decided on its own.
            package("openssl-provider-legacy", "3.0.14-1", "openssl", "3.0.14-1"),
        ];
        let found = findings(
            OsFamily::Debian,
            &packages,
            &advisories,
            &Filters::default(),
        );
        let names: Vec<&str> = found.iter().map(|f| f.package.name.as_str()).collect();
        assert_eq!(names, ["libssl3", "openssl"]);
    }

    #[test]
    fn ranges_bound_the_affected_versions() {
        let pkg = package("zlib1g", "1:1.2.13.dfsg-1", "zlib", "1:1.2.13.dfsg-1");
        let mut late = advisory("osv", "CVE-X", "zlib", fixed("1:1.3-1"), Severity::Medium);
        late.advisory.introduced = Some("1:1.2.14".into());
        let mut old = advisory("osv", "CVE-Y", "zlib", Status::Affected, Severity::Medium);
        old.advisory.last_affected = Some("1:1.2.11.dfsg-4".into());
        let found = findings(
            OsFamily::Debian,
            &[pkg],
            &by_source(vec![late, old]),
            &Filters::default(),
        );
        assert!(found.is_empty(), "{found:?}");
    }
}
