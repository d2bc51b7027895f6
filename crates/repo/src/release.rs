//! The `Release` file of an APT suite, read from its verified `InRelease`.
//!
//! Owns the suite's metadata (suite, codename, dates, `Acquire-By-Hash`) and
//! the list of index files with their SHA256 and size, which is what every
//! later download is checked against. Pure: parses text that the keyring
//! already verified.

use std::collections::BTreeMap;

/// Why a verified `Release` text is not usable.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// Text that is not in control-file syntax.
    #[error("Release file of {suite} is not a control file")]
    Syntax {
        /// The suite it was fetched for.
        suite: String,
        /// The syntax error, with its line.
        #[source]
        source: Box<pkgdb::Error>,
    },
    /// A Release without the SHA256 list every index is verified against.
    #[error(
        "Release file of {suite} has no SHA256 file list; drydock needs SHA256 to verify indexes"
    )]
    NoSha256 {
        /// The suite it was fetched for.
        suite: String,
    },
    /// A SHA256 line that is malformed or names a path outside `dists/`.
    #[error("Release file of {suite}: SHA256 entry {entry:?} is not `<64 hex> <size> <path>`")]
    BadEntry {
        /// The suite it was fetched for.
        suite: String,
        /// The line as written.
        entry: String,
    },
    /// A `Date` or `Valid-Until` that is not an RFC 2822 date.
    #[error("Release file of {suite}: {field} {value:?} is not an RFC 2822 date")]
    BadDate {
        /// The suite it was fetched for.
        suite: String,
        /// `Date` or `Valid-Until`.
        field: &'static str,
        /// The value as written.
        value: String,
    },
}

/// One index file a Release lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// Its SHA256, lowercase hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What a suite's verified `Release` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// `Origin` (`Debian`), `Label`, `Suite` (the archive, `stable`),
    /// `Codename` and `Version`: what apt's pins match (`o=`, `l=`, `a=`, `n=`, `v=`).
    pub origin: Option<String>,
    /// `Label`.
    pub label: Option<String>,
    /// `Suite` (the archive name, `stable-security`).
    pub suite: Option<String>,
    /// `Codename` (`bookworm-security`).
    pub codename: Option<String>,
    /// `Version` (`12`).
    pub version: Option<String>,
    /// `NotAutomatic: yes`, `ButAutomaticUpgrades: yes`: apt's default priority of the suite.
    pub not_automatic: bool,
    /// `ButAutomaticUpgrades: yes` (see `not_automatic`).
    pub but_automatic_upgrades: bool,
    /// Seconds since the epoch.
    pub date: Option<i64>,
    /// Seconds since the epoch; after this the index must not be trusted (replay protection).
    pub valid_until: Option<i64>,
    /// `Acquire-By-Hash: yes`: indexes can be fetched by checksum (`by-hash/SHA256/…`).
    pub acquire_by_hash: bool,
    /// `Architectures`, split on spaces.
    pub architectures: Vec<String>,
    /// `Components` (`main`, `updates/main`), split on spaces.
    pub components: Vec<String>,
    /// Path relative to `dists/<suite>/` → checksum and size.
    pub files: BTreeMap<String, IndexFile>,
}

impl Release {
    /// Parses the signed text of an `InRelease`. `suite` names it in errors.
    pub fn parse(text: &str, suite: &str) -> Result<Release, ReleaseError> {
        let paragraphs = pkgdb::dpkg::paragraphs(&format!("Release of {suite}"), text.as_bytes())
            .map_err(|source| ReleaseError::Syntax {
            suite: suite.to_string(),
            source: Box::new(source),
        })?;
        let fields: Vec<(String, String)> = paragraphs
            .first()
            .map(|p| {
                p.fields
                    .iter()
                    .map(|f| {
                        let value = String::from_utf8_lossy(f.value).trim().to_string();
                        (String::from_utf8_lossy(f.name).into_owned(), value)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let date = |name: &'static str| {
            field(name)
                .map(|v| {
                    parse_rfc2822(v).ok_or_else(|| ReleaseError::BadDate {
                        suite: suite.to_string(),
                        field: name,
                        value: v.to_string(),
                    })
                })
                .transpose()
        };
        let words = |name: &str| {
            field(name)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let sha256 = field("SHA256").ok_or_else(|| ReleaseError::NoSha256 {
            suite: suite.to_string(),
        })?;
        let mut files = BTreeMap::new();
        for entry in sha256.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let bad = || ReleaseError::BadEntry {
                suite: suite.to_string(),
                entry: entry.to_string(),
            };
            let mut parts = entry.split_whitespace();
            let (Some(hash), Some(size), Some(path), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let hash_ok = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
            let size: u64 = size.parse().map_err(|_| bad())?;
            if !hash_ok || path.split('/').any(|c| c == ".." || c.is_empty()) {
                return Err(bad());
            }
            files.insert(
                path.to_string(),
                IndexFile {
                    sha256: hash.to_ascii_lowercase(),
                    size,
                },
            );
        }
        Ok(Release {
            origin: field("Origin").map(str::to_string),
            label: field("Label").map(str::to_string),
            suite: field("Suite").map(str::to_string),
            codename: field("Codename").map(str::to_string),
            version: field("Version").map(str::to_string),
            not_automatic: field("NotAutomatic").is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            but_automatic_upgrades: field("ButAutomaticUpgrades")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            date: date("Date")?,
            valid_until: date("Valid-Until")?,
            acquire_by_hash: field("Acquire-By-Hash")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            architectures: words("Architectures"),
            components: words("Components"),
            files,
        })
    }
}

/// Parses `Sat, 22 Nov 2026 08:38:34 UTC` (or `+0000`-style zones) into
/// seconds since the epoch.
pub fn parse_rfc2822(text: &str) -> Option<i64> {
    let rest = text.split_once(',').map_or(text, |(_, r)| r).trim();
    let mut parts = rest.split_whitespace();
    let day: i64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (
        clock.next()??,
        clock.next()??,
        clock.next().unwrap_or(Some(0))?,
    );
    let offset = match parts.next().unwrap_or("UTC") {
        "UTC" | "GMT" | "UT" | "Z" => 0,
        zone => {
            let sign = match zone.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: i64 = zone.get(1..5)?.parse().ok()?;
            sign * ((digits / 100) * 3600 + (digits % 100) * 60)
        }
    };
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Origin: Debian\nSuite: stable-security\nCodename: bookworm-security\n\
Date: Sat, 22 Nov 2026 08:38:34 UTC\nValid-Until: Sat, 29 Nov 2026 08:38:34 UTC\nAcquire-By-Hash: yes\n\
Architectures: amd64 arm64\nComponents: updates/main updates/contrib\nDescription: x\nSHA256:\n \
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef 1234 main/binary-amd64/Packages.xz\n \
fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210 99 main/binary-amd64/Release\n";

    #[test]
    fn parses_a_security_release() {
        let r = Release::parse(SAMPLE, "bookworm-security").unwrap();
        assert_eq!(r.codename.as_deref(), Some("bookworm-security"));
        assert!(r.acquire_by_hash);
        assert_eq!(r.architectures, ["amd64", "arm64"]);
        assert_eq!(r.files.len(), 2);
        assert_eq!(r.files["main/binary-amd64/Packages.xz"].size, 1234);
        assert_eq!(r.valid_until.unwrap() - r.date.unwrap(), 7 * 86_400);
    }

    #[test]
    fn dates() {
        assert_eq!(parse_rfc2822("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(
            parse_rfc2822("Sat, 22 Nov 2026 08:38:34 UTC"),
            Some(1_795_336_714)
        );
        assert_eq!(
            parse_rfc2822("Sat, 22 Nov 2026 09:38:34 +0100"),
            Some(1_795_336_714)
        );
        assert_eq!(
            parse_rfc2822("29 Feb 2024 00:00:00 UTC"),
            Some(1_709_164_800)
        );
        assert_eq!(parse_rfc2822("Sat, 22 Foo 2026 08:38:34 UTC"), None);
        assert_eq!(parse_rfc2822(""), None);
    }

    #[test]
    fn refuses_bad_releases() {
        assert!(matches!(
            Release::parse("Suite: x\n", "x"),
            Err(ReleaseError::NoSha256 { .. })
        ));
        assert!(matches!(
            Release::parse(" orphan\n", "x"),
            Err(ReleaseError::Syntax { .. })
        ));
        let traversal = SAMPLE.replace("main/binary-amd64/Release", "../../etc/passwd");
        assert!(matches!(
            Release::parse(&traversal, "x"),
            Err(ReleaseError::BadEntry { .. })
        ));
        let short_hash = SAMPLE.replace("fedcba98", "");
        assert!(Release::parse(&short_hash, "x").is_err());
        let bad_date = SAMPLE.replace("Sat, 22 Nov 2026 08:38:34 UTC", "yesterday");
        assert!(matches!(
            Release::parse(&bad_date, "x"),
            Err(ReleaseError::BadDate { .. })
        ));
    }
}
