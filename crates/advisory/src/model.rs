//! The advisory model every feed is parsed into and the store hands back:
//! which distro release's source package a vulnerability touches, with what
//! status, severity and fixed version; and the provenance of each stored feed.
//! Plain data (serde-friendly); it never compares versions (that is
//! `pkgdb`'s) and never does I/O.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A distribution whose advisories drydock understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Debian,
    Ubuntu,
    Alpine,
}

impl Family {
    pub const ALL: [Family; 3] = [Family::Debian, Family::Ubuntu, Family::Alpine];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Debian => "debian",
            Family::Ubuntu => "ubuntu",
            Family::Alpine => "alpine",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Family {
    type Err = String;

    fn from_str(text: &str) -> Result<Family, String> {
        Family::ALL
            .into_iter()
            .find(|family| family.as_str() == text)
            .ok_or_else(|| format!("unknown distribution family {text:?}"))
    }
}

/// A release of a distribution, named the way its advisories name it:
/// Debian by codename (`bookworm`, `sid`), Ubuntu by version (`24.04`),
/// Alpine by branch without the `v` (`3.20`, `edge`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Distro {
    pub family: Family,
    pub release: String,
}

impl Distro {
    pub fn new(family: Family, release: impl Into<String>) -> Distro {
        Distro {
            family,
            release: release.into(),
        }
    }
}

impl fmt::Display for Distro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.family, self.release)
    }
}

/// What the vendor says about one source package in one release.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Fixed in `fixed_version`; older versions (from `introduced`) are affected.
    Fixed { fixed_version: String },
    /// Affected and no fix yet.
    Affected,
    /// Affected; the vendor decided not to fix it in this release (Debian `<ignored>`).
    WillNotFix,
    /// Affected; the fix is postponed (Debian `<postponed>`).
    FixDeferred,
    /// Affected; the release or the package is no longer supported.
    EndOfLife,
    /// The vendor says this release was never affected. Kept so the scanner
    /// can suppress other sources' claims; never reported as a finding.
    NotAffected,
}

impl Status {
    /// The status's stable name (`fixed`, `affected`, `will_not_fix`, …).
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Fixed { .. } => "fixed",
            Status::Affected => "affected",
            Status::WillNotFix => "will_not_fix",
            Status::FixDeferred => "fix_deferred",
            Status::EndOfLife => "end_of_life",
            Status::NotAffected => "not_affected",
        }
    }

    pub fn fixed_version(&self) -> Option<&str> {
        match self {
            Status::Fixed { fixed_version } => Some(fixed_version),
            _ => None,
        }
    }

    /// The same status, borrowed.
    pub fn borrowed(&self) -> StatusRef<'_> {
        match self {
            Status::Fixed { fixed_version } => StatusRef::Fixed { fixed_version },
            Status::Affected => StatusRef::Affected,
            Status::WillNotFix => StatusRef::WillNotFix,
            Status::FixDeferred => StatusRef::FixDeferred,
            Status::EndOfLife => StatusRef::EndOfLife,
            Status::NotAffected => StatusRef::NotAffected,
        }
    }

    /// The inverse of [`Status::as_str`] plus [`Status::fixed_version`].
    pub fn from_parts(name: &str, fixed_version: Option<String>) -> Option<Status> {
        Some(match (name, fixed_version) {
            ("fixed", Some(fixed_version)) => Status::Fixed { fixed_version },
            ("affected", None) => Status::Affected,
            ("will_not_fix", None) => Status::WillNotFix,
            ("fix_deferred", None) => Status::FixDeferred,
            ("end_of_life", None) => Status::EndOfLife,
            ("not_affected", None) => Status::NotAffected,
            _ => return None,
        })
    }
}

/// A [`Status`] whose fixed version is borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusRef<'a> {
    Fixed { fixed_version: &'a str },
    Affected,
    WillNotFix,
    FixDeferred,
    EndOfLife,
    NotAffected,
}

impl StatusRef<'_> {
    /// The same status, owned.
    pub fn to_status(self) -> Status {
        match self {
            StatusRef::Fixed { fixed_version } => Status::Fixed {
                fixed_version: fixed_version.to_string(),
            },
            StatusRef::Affected => Status::Affected,
            StatusRef::WillNotFix => Status::WillNotFix,
            StatusRef::FixDeferred => Status::FixDeferred,
            StatusRef::EndOfLife => Status::EndOfLife,
            StatusRef::NotAffected => Status::NotAffected,
        }
    }
}

/// Severity on Trivy's scale; ordered from least to most severe.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    #[default]
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Unknown,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(text: &str) -> Result<Severity, String> {
        Severity::ALL
            .into_iter()
            .find(|severity| severity.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| format!("unknown severity {text:?}"))
    }
}

/// The text of a vulnerability as one feed record gives it. Shared (behind an
/// `Arc`) by every advisory parsed from that record, and stored once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Short: feeds' long texts are cut to [`Details::MAX_DESCRIPTION`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Other names of the vulnerability (CVE ids of a DSA, the feed's own record id, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

impl Details {
    pub const MAX_TITLE: usize = 200;
    pub const MAX_DESCRIPTION: usize = 1000;
    pub const MAX_URLS: usize = 10;

    /// Builds details from a feed's texts, cutting them to the limits above
    /// (so a hostile or bloated feed cannot balloon the store).
    pub fn new(
        title: Option<&str>,
        description: Option<&str>,
        aliases: Vec<String>,
        urls: impl IntoIterator<Item = String>,
    ) -> Details {
        Details {
            title: title.and_then(|text| shorten(text, Details::MAX_TITLE)),
            description: description.and_then(|text| shorten(text, Details::MAX_DESCRIPTION)),
            aliases,
            urls: urls.into_iter().take(Details::MAX_URLS).collect(),
        }
    }
}

/// Trims `text`, cuts it to `max` characters (marking the cut with `…`);
/// `None` when nothing is left.
fn shorten(text: &str, max: usize) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
        None => text.to_string(),
    })
}

/// One vendor statement: vulnerability `id` in source package `package` of
/// `distro` has `status`.
///
/// `package` is the SOURCE package for Debian and Ubuntu and the origin for
/// Alpine: the scanner looks advisories up by an installed package's source
/// name and compares its source version. The affected range is
/// `[introduced, fixed_version)` for [`Status::Fixed`], and
/// `[introduced, last_affected]` when a feed bounds an unfixed range;
/// `None` means unbounded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advisory {
    /// `CVE-…` when the vulnerability has one, else the feed's id (`DSA-…`, `TEMP-…`).
    pub id: String,
    pub distro: Distro,
    pub package: String,
    #[serde(flatten)]
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introduced: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_affected: Option<String>,
    pub severity: Severity,
    /// Who rated `severity` (`debian`, `ubuntu`); `None` when nobody did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity_source: Option<String>,
    pub details: Arc<Details>,
}

/// The format a feed comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedKind {
    /// The Debian Security Tracker JSON.
    Tracker,
    /// OSV records (a zip, a directory or single files).
    Osv,
    /// Alpine secdb JSON.
    Secdb,
}

impl FeedKind {
    pub const ALL: [FeedKind; 3] = [FeedKind::Tracker, FeedKind::Osv, FeedKind::Secdb];

    /// The stable name stored and shown (`tracker`, `osv`, `secdb`).
    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::Tracker => "tracker",
            FeedKind::Osv => "osv",
            FeedKind::Secdb => "secdb",
        }
    }
}

impl fmt::Display for FeedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FeedKind::Tracker => "Debian Security Tracker JSON",
            FeedKind::Osv => "OSV",
            FeedKind::Secdb => "Alpine secdb JSON",
        })
    }
}

impl FromStr for FeedKind {
    type Err = String;

    fn from_str(text: &str) -> Result<FeedKind, String> {
        FeedKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| format!("unknown feed kind {text:?} (expected tracker, osv or secdb)"))
    }
}

/// Where and when a stored feed came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedSource {
    /// The feed's name; an import or update replaces the feed of the same
    /// name: `debian-tracker`, `osv-debian`, `osv-ubuntu`, `osv-alpine`,
    /// `secdb-<branch>-<repo>` (`secdb-3.20-main`).
    pub name: String,
    pub kind: FeedKind,
    /// The URL or file path it was read from.
    pub location: String,
    /// When drydock read it (Unix seconds).
    pub fetched_at: i64,
    /// When the data itself was last changed, where known (a file's mtime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<i64>,
    /// SHA-256 of the bytes read (hex).
    pub sha256: String,
}

/// A stored feed: its provenance and how many advisories it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedStatus {
    #[serde(flatten)]
    pub source: FeedSource,
    pub advisories: u64,
}

/// An advisory as the store hands it back, with the feed that said it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedAdvisory {
    pub feed: String,
    #[serde(flatten)]
    pub advisory: Advisory,
}

/// What deciding whether an advisory applies, and reporting it, reads of
/// it, borrowed: from a [`FeedAdvisory`] or straight from the store's packed
/// form ([`crate::store::PackedAdvisories::views`]) without decoding the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvisoryView<'a> {
    pub feed: &'a str,
    pub id: &'a str,
    pub status: StatusRef<'a>,
    pub introduced: Option<&'a str>,
    pub last_affected: Option<&'a str>,
    pub severity: Severity,
    pub severity_source: Option<&'a str>,
    /// [`Details::title`].
    pub title: Option<&'a str>,
    /// The first of [`Details::urls`].
    pub first_url: Option<&'a str>,
}

impl<'a> From<&'a FeedAdvisory> for AdvisoryView<'a> {
    fn from(stored: &'a FeedAdvisory) -> AdvisoryView<'a> {
        let advisory = &stored.advisory;
        AdvisoryView {
            feed: &stored.feed,
            id: &advisory.id,
            status: advisory.status.borrowed(),
            introduced: advisory.introduced.as_deref(),
            last_affected: advisory.last_affected.as_deref(),
            severity: advisory.severity,
            severity_source: advisory.severity_source.as_deref(),
            title: advisory.details.title.as_deref(),
            first_url: advisory.details.urls.first().map(String::as_str),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        let long = "é".repeat(Details::MAX_DESCRIPTION + 5);
        let details = Details::new(Some("  title "), Some(&long), vec![], vec![]);
        assert_eq!(details.title.as_deref(), Some("title"));
        let description = details.description.unwrap();
        assert_eq!(description.chars().count(), Details::MAX_DESCRIPTION + 1);
        assert!(description.ends_with('…'));
        assert_eq!(Details::new(Some("  "), None, vec![], vec![]).title, None);
    }

    #[test]
    fn statuses_and_severities_round_trip_through_their_names() {
        for status in [
            Status::Fixed {
                fixed_version: "1.2-3+b1".into(),
            },
            Status::Affected,
            Status::WillNotFix,
            Status::FixDeferred,
            Status::EndOfLife,
            Status::NotAffected,
        ] {
            let fixed = status.fixed_version().map(str::to_string);
            assert_eq!(status.borrowed().to_status(), status);
            assert_eq!(Status::from_parts(status.as_str(), fixed), Some(status));
        }
        assert_eq!(Status::from_parts("fixed", None), None);
        for severity in Severity::ALL {
            assert_eq!(severity.as_str().parse(), Ok(severity));
        }
        assert!(Severity::Critical > Severity::Unknown);
    }

    #[test]
    fn an_advisory_serializes_flat() {
        let advisory = Advisory {
            id: "CVE-2024-1".into(),
            distro: Distro::new(Family::Debian, "bookworm"),
            package: "zlib".into(),
            status: Status::Fixed {
                fixed_version: "1:1.2.13.dfsg-1+deb12u1".into(),
            },
            introduced: None,
            last_affected: None,
            severity: Severity::High,
            severity_source: Some("debian".into()),
            details: Arc::new(Details::default()),
        };
        let json = serde_json::to_value(&advisory).unwrap();
        assert_eq!(json["status"], "fixed");
        assert_eq!(json["fixed_version"], "1:1.2.13.dfsg-1+deb12u1");
        assert_eq!(json["distro"]["family"], "debian");
        assert_eq!(json["severity"], "HIGH");
        let back: Advisory = serde_json::from_value(json).unwrap();
        assert_eq!(back, advisory);
    }
}
