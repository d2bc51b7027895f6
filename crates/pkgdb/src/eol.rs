//! End-of-life dates per release, so a scan can say an OS is past its end
//! of service life (EOSL).
//!
//! Debian and Ubuntu come from Debian's `distro-info-data` CSVs, embedded at
//! build time (`data/`, see `data/README.md` for source and version). Alpine
//! and the RHEL family come from the hand-maintained [`ALPINE`] and
//! [`RHEL_FAMILY`] tables below. A release missing from the tables (newer
//! than them, or a distribution they do not cover) has no lifecycle: it is
//! never reported as end-of-life, since a stale table must not flag a
//! current release. Pure: "today" is a parameter, never the clock.

use std::fmt;
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::os::OsInfo;

const DEBIAN_CSV: &str = include_str!("../data/debian.csv");
const UBUNTU_CSV: &str = include_str!("../data/ubuntu.csv");

/// Alpine releases and the end of their security support, from
/// <https://alpinelinux.org/releases/>, as published up to 2025 (written
/// down without network access: re-check against that page when updating).
pub const ALPINE: &[(&str, &str)] = &[
    ("3.10", "2021-05-01"),
    ("3.11", "2021-11-01"),
    ("3.12", "2022-05-01"),
    ("3.13", "2022-11-01"),
    ("3.14", "2023-05-01"),
    ("3.15", "2023-11-01"),
    ("3.16", "2024-05-23"),
    ("3.17", "2024-11-22"),
    ("3.18", "2025-05-09"),
    ("3.19", "2025-11-01"),
    ("3.20", "2026-04-01"),
    ("3.21", "2026-11-01"),
    ("3.22", "2027-05-01"),
];

/// RHEL-family major releases (os-release `ID`, major version) and the end
/// of their maintenance support, from the vendors' lifecycle pages
/// (access.redhat.com/support/policy/updates/errata, wiki.rockylinux.org,
/// wiki.almalinux.org, centos.org, oracle.com/a/ocom/docs/elsp-lifetime-069338.pdf,
/// aws.amazon.com/amazon-linux-2/faqs), as published up to 2025 (written
/// down without network access: re-check against those pages when updating).
pub const RHEL_FAMILY: &[(&str, &str, &str)] = &[
    ("rhel", "7", "2024-06-30"),
    ("rhel", "8", "2029-05-31"),
    ("rhel", "9", "2032-05-31"),
    ("centos", "7", "2024-06-30"),
    ("centos", "8", "2024-05-31"),
    ("rocky", "8", "2029-05-31"),
    ("rocky", "9", "2032-05-31"),
    ("almalinux", "8", "2029-03-01"),
    ("almalinux", "9", "2032-05-31"),
    ("ol", "7", "2024-12-31"),
    ("ol", "8", "2029-07-31"),
    ("ol", "9", "2032-06-30"),
    ("amzn", "2", "2026-06-30"),
    ("amzn", "2023", "2029-06-30"),
];

/// A calendar date (no time zone: the tables have day precision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// The year (`2026`).
    pub year: u16,
    /// The month, 1 to 12.
    pub month: u8,
    /// The day of the month, 1 to 31.
    pub day: u8,
}

impl Date {
    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Date> {
        let mut parts = text.split('-');
        let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        let date = Date {
            year: y.parse().ok()?,
            month: m.parse().ok()?,
            day: d.parse().ok()?,
        };
        ((1..=12).contains(&date.month) && (1..=31).contains(&date.day)).then_some(date)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// The support dates of one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    /// The os-release `ID` it applies to (`debian`, `ubuntu`, `alpine`, `rhel`).
    pub distribution: String,
    /// `12`, `24.04`, `3.20`, `9`.
    pub version: String,
    /// The release's codename (`bookworm`, `noble`), where it has one.
    pub codename: Option<String>,
    /// When it was released, where the table says.
    pub released: Option<Date>,
    /// End of standard (free) security support.
    pub eol: Option<Date>,
    /// End of long-term support still published in the public archive
    /// (Debian LTS in `<codename>-security`; Ubuntu `eol-server`).
    pub eol_lts: Option<Date>,
    /// End of paid extended support (Debian ELTS, Ubuntu ESM), for reference.
    pub eol_extended: Option<Date>,
}

impl Lifecycle {
    /// The last day security updates reach the public archive: LTS when the
    /// release has it, else standard support. `None` means no date is set yet.
    pub fn end_of_service(&self) -> Option<Date> {
        self.eol_lts.or(self.eol)
    }

    /// Whether the release is past its end of service life on `today`.
    pub fn is_end_of_life(&self, today: Date) -> bool {
        self.end_of_service().is_some_and(|end| today > end)
    }
}

/// The lifecycle of an identified OS, when the tables know its release.
pub fn lookup(os: &OsInfo) -> Option<Lifecycle> {
    let major = os.major_release();
    match os.id.as_str() {
        "debian" => find_distro_info(debian(), major.as_deref(), os.codename.as_deref()),
        "ubuntu" => find_distro_info(ubuntu(), major.as_deref(), os.codename.as_deref()),
        "alpine" => {
            let major = major?;
            let (_, eol) = ALPINE.iter().find(|(v, _)| *v == major)?;
            Some(table_entry("alpine", &major, eol))
        }
        id => {
            let major = major?;
            let (_, _, eol) = RHEL_FAMILY
                .iter()
                .find(|(d, v, _)| *d == id && *v == major)?;
            Some(table_entry(id, &major, eol))
        }
    }
}

fn table_entry(distribution: &str, version: &str, eol: &str) -> Lifecycle {
    Lifecycle {
        distribution: distribution.to_string(),
        version: version.to_string(),
        codename: None,
        released: None,
        eol: Date::parse(eol),
        eol_lts: None,
        eol_extended: None,
    }
}

fn find_distro_info(
    releases: &[Lifecycle],
    version: Option<&str>,
    codename: Option<&str>,
) -> Option<Lifecycle> {
    releases
        .iter()
        .find(|r| {
            version.is_some_and(|v| r.version == v)
                || codename.is_some_and(|c| r.codename.as_deref() == Some(c))
        })
        .cloned()
}

fn debian() -> &'static [Lifecycle] {
    static PARSED: OnceLock<Vec<Lifecycle>> = OnceLock::new();
    PARSED.get_or_init(|| parse_distro_info("debian", "debian.csv", DEBIAN_CSV).unwrap_or_default())
}

fn ubuntu() -> &'static [Lifecycle] {
    static PARSED: OnceLock<Vec<Lifecycle>> = OnceLock::new();
    PARSED.get_or_init(|| parse_distro_info("ubuntu", "ubuntu.csv", UBUNTU_CSV).unwrap_or_default())
}

/// Parses a `distro-info-data` CSV (`version,codename,series,created,
/// release,eol,…`): Debian's extra columns are `eol-lts,eol-elts`, Ubuntu's
/// `eol-server,eol-esm,eol-legacy`. Columns are found by their header name.
pub fn parse_distro_info(distribution: &str, file: &str, csv: &str) -> Result<Vec<Lifecycle>> {
    let mut lines = csv.lines().enumerate();
    let (_, header) = lines.next().ok_or_else(|| Error::Feed {
        file: file.to_string(),
        line: 1,
        message: "is empty".to_string(),
    })?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let column = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(version_at), Some(series_at)) = (column("version"), column("series")) else {
        return Err(Error::Feed {
            file: file.to_string(),
            line: 1,
            message: format!("header {header:?} lacks the version and series columns"),
        });
    };
    let lts_at = column("eol-lts").or(column("eol-server"));
    let extended_at = column("eol-elts").or(column("eol-esm"));
    let mut releases = Vec::new();
    for (index, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let date = |at: Option<usize>| -> Result<Option<Date>> {
            match at.and_then(|i| fields.get(i)).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(text) => Date::parse(text).map(Some).ok_or_else(|| Error::Feed {
                    file: file.to_string(),
                    line: index + 1,
                    message: format!("{text:?} is not a YYYY-MM-DD date"),
                }),
            }
        };
        let series = fields.get(series_at).copied().unwrap_or_default();
        if series.is_empty() {
            return Err(Error::Feed {
                file: file.to_string(),
                line: index + 1,
                message: "has no series (codename)".to_string(),
            });
        }
        releases.push(Lifecycle {
            distribution: distribution.to_string(),
            // Ubuntu writes "24.04 LTS".
            version: fields
                .get(version_at)
                .and_then(|v| v.split_whitespace().next())
                .unwrap_or_default()
                .to_string(),
            codename: Some(series.to_string()),
            released: date(column("release"))?,
            eol: date(column("eol"))?,
            eol_lts: date(lts_at)?,
            eol_extended: date(extended_at)?,
        });
    }
    Ok(releases)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(id: &str, version: Option<&str>, codename: Option<&str>) -> OsInfo {
        OsInfo {
            id: id.to_string(),
            id_like: Vec::new(),
            version_id: version.map(str::to_string),
            release: None,
            codename: codename.map(str::to_string),
            pretty_name: None,
        }
    }

    #[test]
    fn embedded_tables_parse() {
        parse_distro_info("debian", "debian.csv", DEBIAN_CSV).unwrap();
        parse_distro_info("ubuntu", "ubuntu.csv", UBUNTU_CSV).unwrap();
        for (_, eol) in ALPINE {
            assert!(Date::parse(eol).is_some(), "{eol}");
        }
        for (_, _, eol) in RHEL_FAMILY {
            assert!(Date::parse(eol).is_some(), "{eol}");
        }
    }

    #[test]
    fn debian_and_ubuntu_lifecycles() {
        let stretch = lookup(&os("debian", Some("9"), None)).unwrap();
        assert_eq!(stretch.codename.as_deref(), Some("stretch"));
        assert!(stretch.is_end_of_life(Date::parse("2025-01-01").unwrap()));
        let bookworm = lookup(&os("debian", None, Some("bookworm"))).unwrap();
        assert_eq!(bookworm.version, "12");
        assert!(!bookworm.is_end_of_life(Date::parse("2024-06-01").unwrap()));
        assert!(bookworm.eol_lts > bookworm.eol);
        let bionic = lookup(&os("ubuntu", Some("18.04"), Some("bionic"))).unwrap();
        assert!(bionic.is_end_of_life(Date::parse("2024-01-01").unwrap()));
        assert!(bionic.eol_extended.is_some());
    }

    #[test]
    fn table_lifecycles_and_unknown_releases() {
        let alpine = lookup(&os("alpine", Some("3.14.2"), None)).unwrap();
        assert!(alpine.is_end_of_life(Date::parse("2024-01-01").unwrap()));
        let rhel = lookup(&os("rhel", Some("9.4"), None)).unwrap();
        assert!(!rhel.is_end_of_life(Date::parse("2026-01-01").unwrap()));
        assert_eq!(lookup(&os("alpine", Some("9.99"), None)), None);
        assert_eq!(lookup(&os("plan9", Some("4"), None)), None);
        assert_eq!(lookup(&os("debian", Some("99"), None)), None);
    }

    #[test]
    fn refuses_malformed_tables() {
        let cases = [
            ("", "is empty"),
            ("a,b\n", "lacks the version and series"),
            (
                "version,codename,series,created,release,eol\n12,Bookworm,bookworm,2021-01-01,June\n",
                "\"June\" is not a YYYY-MM-DD",
            ),
            (
                "version,codename,series,created\n12,Bookworm,,2021-01-01\n",
                "line 2: has no series",
            ),
        ];
        for (csv, expected) in cases {
            let err = parse_distro_info("debian", "x.csv", csv).unwrap_err();
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
        assert_eq!(Date::parse("2024-13-01"), None);
        assert_eq!(Date::parse("2024-1-01"), None);
    }
}
