//! Vendor vocabularies shared by several feeds: Debian urgencies, Ubuntu
//! priorities, Debian release numbers. Pure lookups; never fails on an
//! unknown word (an unknown rating is UNKNOWN, not a broken feed).

use crate::model::Severity;

/// What a Debian urgency (tracker `urgency`, OSV `ecosystem_specific.urgency`) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    Rated(Severity),
    /// `end-of-life`: the package is no longer supported in that release.
    EndOfLife,
}

/// `unimportant`/`low` → LOW, `medium` → MEDIUM, `high` → HIGH; the `*`/`**`
/// marks (urgency taken from NVD) are dropped; `not yet assigned` and
/// anything unknown → UNKNOWN.
pub fn debian_urgency(text: &str) -> Urgency {
    match text.trim().trim_end_matches('*').trim() {
        "end-of-life" => Urgency::EndOfLife,
        "unimportant" | "low" => Urgency::Rated(Severity::Low),
        "medium" => Urgency::Rated(Severity::Medium),
        "high" => Urgency::Rated(Severity::High),
        _ => Urgency::Rated(Severity::Unknown),
    }
}

/// Ubuntu priorities: `negligible`/`low` → LOW … `critical` → CRITICAL;
/// `untriaged` and anything unknown → UNKNOWN.
pub fn ubuntu_priority(text: &str) -> Severity {
    match text.trim().to_ascii_lowercase().as_str() {
        "negligible" | "low" => Severity::Low,
        "medium" => Severity::Medium,
        "high" => Severity::High,
        "critical" => Severity::Critical,
        _ => Severity::Unknown,
    }
}

/// Debian release numbers as OSV writes them (`Debian:12`) and their
/// codenames, after distro-info-data's `debian.csv`.
const DEBIAN_RELEASES: [(&str, &str); 20] = [
    ("1.1", "buzz"),
    ("1.2", "rex"),
    ("1.3", "bo"),
    ("2.0", "hamm"),
    ("2.1", "slink"),
    ("2.2", "potato"),
    ("3.0", "woody"),
    ("3.1", "sarge"),
    ("4.0", "etch"),
    ("5.0", "lenny"),
    ("6.0", "squeeze"),
    ("7", "wheezy"),
    ("8", "jessie"),
    ("9", "stretch"),
    ("10", "buster"),
    ("11", "bullseye"),
    ("12", "bookworm"),
    ("13", "trixie"),
    ("14", "forky"),
    ("15", "duke"),
];

/// The codename of Debian release `number` (`12` → `bookworm`), if known.
pub fn debian_codename(number: &str) -> Option<&'static str> {
    DEBIAN_RELEASES
        .iter()
        .find(|(known, _)| *known == number)
        .map(|(_, codename)| *codename)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_urgencies() {
        assert_eq!(debian_urgency("unimportant"), Urgency::Rated(Severity::Low));
        assert_eq!(debian_urgency("medium**"), Urgency::Rated(Severity::Medium));
        assert_eq!(debian_urgency("high*"), Urgency::Rated(Severity::High));
        assert_eq!(
            debian_urgency("not yet assigned"),
            Urgency::Rated(Severity::Unknown)
        );
        assert_eq!(debian_urgency("end-of-life"), Urgency::EndOfLife);
        assert_eq!(debian_urgency("bogus"), Urgency::Rated(Severity::Unknown));
    }

    #[test]
    fn ubuntu_priorities() {
        assert_eq!(ubuntu_priority("negligible"), Severity::Low);
        assert_eq!(ubuntu_priority("Critical"), Severity::Critical);
        assert_eq!(ubuntu_priority("untriaged"), Severity::Unknown);
    }

    #[test]
    fn debian_numbers_to_codenames() {
        assert_eq!(debian_codename("12"), Some("bookworm"));
        assert_eq!(debian_codename("13"), Some("trixie"));
        assert_eq!(debian_codename("3.1"), Some("sarge"));
        assert_eq!(debian_codename("99"), None);
    }
}
