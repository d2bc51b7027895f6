//! The advisory model every feed is parsed into and the store hands back:
//! which distro release's source package a vulnerability touches, with what
//! status, severity and fixed version; and the provenance of each stored feed.
//! Plain data (serde-friendly); it never compares versions (that is
//! `pkgdb`'s) and never does I/O.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A name that none of a vocabulary's values has: a distribution family,
/// a severity, a feed kind or an online feed's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {vocabulary} {name:?} (expected {expected})")]
pub struct UnknownName {
    /// What was being named (`severity`, `feed kind`).
    pub vocabulary: &'static str,
    /// The name given.
    pub name: String,
    /// The names accepted.
    pub expected: &'static str,
}

/// A distribution whose advisories drydock understands.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(
    serialize_all = "lowercase",
    parse_err_ty = UnknownName,
    parse_err_fn = unknown_family
)]
pub enum Family {
    /// Debian.
    Debian,
    /// Ubuntu.
    Ubuntu,
    /// Alpine Linux.
    Alpine,
}

fn unknown_family(name: &str) -> UnknownName {
    UnknownName {
        vocabulary: "distribution family",
        name: name.to_string(),
        expected: "debian, ubuntu or alpine",
    }
}

impl Family {
    /// Every family, in declaration order.
    pub const ALL: [Family; 3] = [Family::Debian, Family::Ubuntu, Family::Alpine];

    /// The stable lowercase name (`debian`), as os-release `ID` spells it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A release of a distribution, named the way its advisories name it:
/// Debian by codename (`bookworm`, `sid`), Ubuntu by version (`24.04`),
/// Alpine by branch without the `v` (`3.20`, `edge`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Distro {
    /// The distribution.
    pub family: Family,
    /// The release, as the family's advisories name it.
    pub release: String,
}

impl Distro {
    /// The release `release` of `family`.
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
    Fixed {
        /// The first version with the fix.
        fixed_version: String,
    },
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

    /// The version with the fix, for [`Status::Fixed`].
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
    /// [`Status::Fixed`].
    Fixed {
        /// The first version with the fix.
        fixed_version: &'a str,
    },
    /// [`Status::Affected`].
    Affected,
    /// [`Status::WillNotFix`].
    WillNotFix,
    /// [`Status::FixDeferred`].
    FixDeferred,
    /// [`Status::EndOfLife`].
    EndOfLife,
    /// [`Status::NotAffected`].
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
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "UPPERCASE")]
#[strum(
    serialize_all = "UPPERCASE",
    ascii_case_insensitive,
    parse_err_ty = UnknownName,
    parse_err_fn = unknown_severity
)]
pub enum Severity {
    /// Nobody rated it, or the rating is not on this scale.
    #[default]
    Unknown,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

fn unknown_severity(name: &str) -> UnknownName {
    UnknownName {
        vocabulary: "severity",
        name: name.to_string(),
        expected: "UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL",
    }
}

impl Severity {
    /// Every severity, least severe first.
    pub const ALL: [Severity; 5] = [
        Severity::Unknown,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The stable uppercase name (`HIGH`), as Trivy writes it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The text of a vulnerability as one feed record gives it. Shared (behind an
/// `Arc`) by every advisory parsed from that record, and stored once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    /// A one-line summary, when the feed gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Short: feeds' long texts are cut to [`Details::MAX_DESCRIPTION`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Other names of the vulnerability (CVE ids of a DSA, the feed's own record id, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Where to read more, most specific first (at most [`Details::MAX_URLS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

impl Details {
    /// The longest title kept, in characters.
    pub const MAX_TITLE: usize = 200;
    /// The longest description kept, in characters.
    pub const MAX_DESCRIPTION: usize = 1000;
    /// The most URLs kept.
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
    /// The release it is about.
    pub distro: Distro,
    /// The source package (Debian, Ubuntu) or origin (Alpine).
    pub package: String,
    /// What the vendor says.
    #[serde(flatten)]
    pub status: Status,
    /// The first affected version, when the feed bounds the range below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introduced: Option<String>,
    /// The last affected version, when the feed bounds an unfixed range above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_affected: Option<String>,
    /// The vendor's severity.
    pub severity: Severity,
    /// Who rated `severity` (`debian`, `ubuntu`); `None` when nobody did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity_source: Option<String>,
    /// The record's texts, shared with the other advisories of the same record.
    pub details: Arc<Details>,
}

/// The format a feed comes in.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(
    serialize_all = "lowercase",
    parse_err_ty = UnknownName,
    parse_err_fn = unknown_feed_kind
)]
pub enum FeedKind {
    /// The Debian Security Tracker JSON.
    Tracker,
    /// OSV records (a zip, a directory or single files).
    Osv,
    /// Alpine secdb JSON.
    Secdb,
}

fn unknown_feed_kind(name: &str) -> UnknownName {
    UnknownName {
        vocabulary: "feed kind",
        name: name.to_string(),
        expected: "tracker, osv or secdb",
    }
}

impl FeedKind {
    /// Every kind, in declaration order.
    pub const ALL: [FeedKind; 3] = [FeedKind::Tracker, FeedKind::Osv, FeedKind::Secdb];

    /// The stable name stored and shown (`tracker`, `osv`, `secdb`).
    pub fn as_str(self) -> &'static str {
        self.into()
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

/// Where and when a stored feed came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedSource {
    /// The feed's name; an import or update replaces the feed of the same
    /// name: `debian-tracker`, `osv-debian`, `osv-ubuntu`, `osv-alpine`,
    /// `secdb-<branch>-<repo>` (`secdb-3.20-main`).
    pub name: String,
    /// Its format.
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
    /// Where and when it came from.
    #[serde(flatten)]
    pub source: FeedSource,
    /// How many advisories it holds.
    pub advisories: u64,
}

/// An advisory as the store hands it back, with the feed that said it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedAdvisory {
    /// The feed's name (`debian-tracker`, `osv-ubuntu`).
    pub feed: String,
    /// What it says.
    #[serde(flatten)]
    pub advisory: Advisory,
}

/// What deciding whether an advisory applies, and reporting it, reads of
/// it, borrowed: from a [`FeedAdvisory`] or straight from the store's packed
/// form (`PackedAdvisories::views`) without decoding the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvisoryView<'a> {
    /// [`FeedAdvisory::feed`].
    pub feed: &'a str,
    /// [`Advisory::id`].
    pub id: &'a str,
    /// [`Advisory::status`].
    pub status: StatusRef<'a>,
    /// [`Advisory::introduced`].
    pub introduced: Option<&'a str>,
    /// [`Advisory::last_affected`].
    pub last_affected: Option<&'a str>,
    /// [`Advisory::severity`].
    pub severity: Severity,
    /// [`Advisory::severity_source`].
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
            assert_eq!(severity.to_string(), severity.as_str());
        }
        assert_eq!("high".parse(), Ok(Severity::High));
        assert_eq!(
            "urgent".parse::<Severity>().unwrap_err().to_string(),
            "unknown severity \"urgent\" (expected UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL)"
        );
        assert!(Severity::Critical > Severity::Unknown);
    }

    #[test]
    fn the_name_tables_are_complete_and_round_trip() {
        use strum::VariantArray;
        assert_eq!(Family::ALL, Family::VARIANTS);
        assert_eq!(Severity::ALL, Severity::VARIANTS);
        assert_eq!(FeedKind::ALL, FeedKind::VARIANTS);
        for family in Family::ALL {
            assert_eq!(family.as_str().parse(), Ok(family));
            assert_eq!(family.to_string(), family.as_str());
            assert_eq!(
                serde_json::to_value(family).unwrap(),
                serde_json::Value::from(family.as_str())
            );
        }
        assert!("Debian".parse::<Family>().is_err());
        for kind in FeedKind::ALL {
            assert_eq!(kind.as_str().parse(), Ok(kind));
        }
        assert_eq!(FeedKind::Osv.to_string(), "OSV");
        assert_eq!(
            "nvd".parse::<FeedKind>().unwrap_err().to_string(),
            "unknown feed kind \"nvd\" (expected tracker, osv or secdb)"
        );
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
