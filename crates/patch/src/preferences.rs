//! apt's pinning: which versions the image's `/etc/apt/preferences` lets
//! a patch install.
//!
//! Owns reading preference files (apt_preferences(5): records of
//! `Package`, `Pin` and `Pin-Priority`; names as words, `name:arch`,
//! `src:name`, globs or `/regex/`; pins by `release` fields (`a= n= v= c=
//! o= l= b=`, or a bare archive or codename), by `origin` host, by
//! `version` or `source-version`; values matched without regard to case),
//! the priority apt gives each version (the first package-specific record
//! whose pin matches it; else the highest of its indexes' priorities, an
//! index taking the first general `Package: *` record that matches it, or
//! its default: 500, 1 for a `NotAutomatic` suite, 100 with
//! `ButAutomaticUpgrades`; 100 for an installed version no index offers),
//! and apt's candidate: the version of the highest positive priority (ties
//! to the newer), the installed version staying when it outranks every
//! newer one. Records apt skips with a warning (no `Pin`, an unknown pin
//! type, a version pin for `Package: *`) are skipped the same way.
//! `APT::Default-Release` is not read, and downgrades (priorities of 1000
//! and more on older versions) are not made. Pure.

use std::collections::HashMap;
use std::sync::Arc;

use crate::candidates::{Candidate, IndexOrigin};
use crate::plan::Facts;

/// A preference file apt would refuse; each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum PreferencesError {
    /// A line of a record is neither `Field: value` nor a continuation.
    #[error("{file}: not a field: {line:?}")]
    NotAField {
        /// The preference file.
        file: String,
        /// The line as written.
        line: String,
    },
    /// A record has no `Package` field.
    #[error("{file}: a record without Package")]
    NoPackage {
        /// The preference file.
        file: String,
    },
    /// A record's `Pin-Priority` is missing, zero or not a number.
    #[error("{file}: {packages}: no priority (or zero) for the pin")]
    NoPriority {
        /// The preference file.
        file: String,
        /// The record's `Package` field.
        packages: String,
    },
    /// A `/regex/` of a `Package` or `Pin` does not compile.
    #[error("{file}: bad regular expression {pattern}")]
    Regex {
        /// The preference file.
        file: String,
        /// The expression as written, slashes included.
        pattern: String,
        /// The regex compiler's error.
        #[source]
        source: regex::Error,
    },
    /// A glob of a `Package` or `Pin` is not valid.
    #[error("{file}: bad pattern {pattern}")]
    Glob {
        /// The preference file.
        file: String,
        /// The pattern as written.
        pattern: String,
        /// Why it is not a glob.
        #[source]
        source: glob::PatternError,
    },
}

/// The priority of the installed version (dpkg's status file).
const INSTALLED_PRIORITY: i32 = 100;
/// `Pin-Priority: never`.
const NEVER: i32 = -32768;

/// The records of the image's preference files, in apt's reading order.
#[derive(Debug, Default)]
pub struct Preferences {
    records: Vec<Record>,
}

#[derive(Debug)]
struct Record {
    /// `None`: `Package: *`, a general record that applies to indexes.
    packages: Option<Vec<PackagePattern>>,
    pin: Pin,
    priority: i32,
}

/// One word of a `Package` field.
#[derive(Debug)]
enum PackagePattern {
    /// `name` (the native architecture and `all`) or `name:arch`.
    Binary {
        name: Pattern,
        architecture: Option<Pattern>,
    },
    /// `src:name`: the binaries of a source package.
    Source(Pattern),
}

#[derive(Debug)]
enum Pin {
    /// `release a=…, o=…`: every field must match; none: every index.
    Release(Vec<(ReleaseField, Pattern)>),
    /// `origin "host"`: the host the index is fetched from.
    Origin(Pattern),
    Version(Pattern),
    SourceVersion(Pattern),
}

#[derive(Debug, Clone, Copy)]
enum ReleaseField {
    Archive,
    Codename,
    /// A bare `release bookworm`: the archive or the codename.
    ArchiveOrCodename,
    Version,
    Component,
    Origin,
    Label,
    Architecture,
}

#[derive(Debug)]
enum Pattern {
    Exact(String),
    Glob(glob::Pattern),
    Regex(regex::Regex),
}

impl Pattern {
    /// Parses a pattern of the preference file `file`.
    fn parse(file: &str, text: &str) -> Result<Pattern, PreferencesError> {
        if text.len() > 1 && text.starts_with('/') && text.ends_with('/') {
            let inner = &text[1..text.len() - 1];
            return regex::RegexBuilder::new(inner)
                .case_insensitive(true)
                .build()
                .map(Pattern::Regex)
                .map_err(|source| PreferencesError::Regex {
                    file: file.to_string(),
                    pattern: text.to_string(),
                    source,
                });
        }
        if text.contains(['*', '?', '[']) {
            return glob::Pattern::new(text)
                .map(Pattern::Glob)
                .map_err(|source| PreferencesError::Glob {
                    file: file.to_string(),
                    pattern: text.to_string(),
                    source,
                });
        }
        Ok(Pattern::Exact(text.to_string()))
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Pattern::Exact(exact) => exact.eq_ignore_ascii_case(value),
            Pattern::Glob(glob) => glob.matches_with(
                value,
                glob::MatchOptions {
                    case_sensitive: false,
                    ..glob::MatchOptions::new()
                },
            ),
            Pattern::Regex(regex) => regex.is_match(value),
        }
    }
}

impl PackagePattern {
    fn parse(file: &str, word: &str) -> Result<PackagePattern, PreferencesError> {
        if let Some(source) = word.strip_prefix("src:") {
            return Pattern::parse(file, source).map(PackagePattern::Source);
        }
        let (name, architecture) = match word.rsplit_once(':') {
            Some((name, arch)) if !word.starts_with('/') => {
                (name, Some(Pattern::parse(file, arch)?))
            }
            _ => (word, None),
        };
        Ok(PackagePattern::Binary {
            name: Pattern::parse(file, name)?,
            architecture,
        })
    }

    fn matches(&self, version: &Offered, native: &str) -> bool {
        match self {
            PackagePattern::Source(source) => source.matches(version.source_name),
            PackagePattern::Binary { name, architecture } => {
                name.matches(version.name)
                    && match architecture {
                        Some(arch) => arch.matches(version.architecture),
                        None => {
                            matches!(version.architecture, "all") || version.architecture == native
                        }
                    }
            }
        }
    }
}

/// A version whose priority is asked.
struct Offered<'a> {
    name: &'a str,
    architecture: &'a str,
    source_name: &'a str,
    version: &'a str,
    source_version: &'a str,
    /// The indexes offering it; none for an installed version no index has.
    indexes: &'a [Arc<IndexOrigin>],
}

impl<'a> Offered<'a> {
    fn of(candidate: &'a Candidate) -> Offered<'a> {
        Offered {
            name: &candidate.package.name,
            architecture: &candidate.package.architecture,
            source_name: &candidate.package.source_name,
            version: &candidate.package.version,
            source_version: &candidate.package.source_version,
            indexes: &candidate.offered_by,
        }
    }
}

impl Preferences {
    /// Reads preference files, `(path, text)` in apt's reading order (the
    /// main file, then `preferences.d` by name). A record without
    /// `Package` or without a non-zero priority is an error naming its
    /// file, as apt refuses it; records apt skips are skipped with a
    /// warning.
    pub fn parse<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Preferences, PreferencesError> {
        let mut records = Vec::new();
        for (path, text) in files {
            let skip =
                |why: String| tracing::warn!("{path}: record skipped, as apt skips it: {why}");
            let text: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n");
            for paragraph in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
                let mut fields: HashMap<String, String> = HashMap::new();
                let mut last: Option<String> = None;
                for line in paragraph.lines().filter(|l| !l.trim().is_empty()) {
                    if line.starts_with(char::is_whitespace) {
                        if let Some(field) = &last {
                            let value = fields.entry(field.clone()).or_default();
                            value.push(' ');
                            value.push_str(line.trim());
                        }
                        continue;
                    }
                    let (name, value) =
                        line.split_once(':')
                            .ok_or_else(|| PreferencesError::NotAField {
                                file: path.to_string(),
                                line: line.to_string(),
                            })?;
                    let name = name.trim().to_ascii_lowercase();
                    fields.insert(name.clone(), value.trim().to_string());
                    last = Some(name);
                }
                let field = |name: &str| {
                    fields
                        .get(name)
                        .map(String::as_str)
                        .filter(|v| !v.is_empty())
                };
                let packages = field("package").ok_or_else(|| PreferencesError::NoPackage {
                    file: path.to_string(),
                })?;
                let Some(pin) = field("pin") else {
                    skip(format!("{packages}: no Pin"));
                    continue;
                };
                let priority: i32 = match field("pin-priority") {
                    Some(p) if p.eq_ignore_ascii_case("never") => NEVER,
                    Some(p) => p.parse().unwrap_or(0),
                    None => 0,
                };
                if priority == 0 {
                    return Err(PreferencesError::NoPriority {
                        file: path.to_string(),
                        packages: packages.to_string(),
                    });
                }
                let packages = if packages == "*" {
                    None
                } else {
                    Some(
                        packages
                            .split_whitespace()
                            .map(|word| PackagePattern::parse(path, word))
                            .collect::<Result<Vec<_>, _>>()?,
                    )
                };
                let Some(pin) = parse_pin(path, pin)? else {
                    skip(format!("unknown pin type in {pin:?}"));
                    continue;
                };
                if packages.is_none() && matches!(pin, Pin::Version(_) | Pin::SourceVersion(_)) {
                    skip("a version pin for Package: *".to_string());
                    continue;
                }
                records.push(Record {
                    packages,
                    pin,
                    priority,
                });
            }
        }
        Ok(Preferences { records })
    }

    /// The priority of a version (`offered.indexes` empty: installed only).
    fn priority(&self, offered: &Offered, native: &str) -> i32 {
        let specific = self.records.iter().find(|r| {
            r.packages
                .as_ref()
                .is_some_and(|names| names.iter().any(|n| n.matches(offered, native)))
                && match &r.pin {
                    Pin::Version(pattern) => pattern.matches(offered.version),
                    Pin::SourceVersion(pattern) => pattern.matches(offered.source_version),
                    pin => offered.indexes.iter().any(|index| pin_matches(pin, index)),
                }
        });
        if let Some(record) = specific {
            return record.priority;
        }
        offered
            .indexes
            .iter()
            .map(|index| {
                self.records
                    .iter()
                    .find(|r| r.packages.is_none() && pin_matches(&r.pin, index))
                    .map_or_else(|| default_priority(index), |r| r.priority)
            })
            .max()
            .unwrap_or(INSTALLED_PRIORITY)
    }

    /// Whether choosing by priority can differ from taking the newest
    /// version: there are pins, or suites apt ranks below the others.
    pub fn matter(&self, available: &[Candidate]) -> bool {
        !self.records.is_empty()
            || available
                .iter()
                .flat_map(|c| &c.offered_by)
                .any(|index| index.not_automatic)
    }

    /// Keeps of `available` only apt's candidate of each package and
    /// architecture; none where the installed version stays.
    pub fn candidates(
        &self,
        available: Vec<Candidate>,
        installed: &[Facts],
        native: &str,
    ) -> Vec<Candidate> {
        let architecture = |arch: &str| {
            if arch == "all" {
                native.to_string()
            } else {
                arch.to_string()
            }
        };
        let mut by_package: HashMap<(String, String), Vec<Candidate>> = HashMap::new();
        for candidate in available {
            let key = (
                candidate.package.name.clone(),
                architecture(&candidate.package.architecture),
            );
            by_package.entry(key).or_default().push(candidate);
        }
        let mut kept = Vec::new();
        for ((name, arch), mut versions) in by_package {
            versions.sort_by(|a, b| {
                pkgdb::version::dpkg::compare(&b.package.version, &a.package.version)
            });
            let current = installed
                .iter()
                .find(|f| f.name == name && architecture(&f.architecture) == arch);
            let mut best: Option<(i32, usize)> = None;
            for (i, candidate) in versions.iter().enumerate() {
                if let Some(current) = current
                    && pkgdb::version::dpkg::compare(&candidate.package.version, &current.version)
                        .is_le()
                {
                    break;
                }
                let priority = self.priority(&Offered::of(candidate), native);
                if priority > 0 && best.is_none_or(|(max, _)| priority > max) {
                    best = Some((priority, i));
                }
            }
            if let Some(current) = current {
                let indexes: Vec<Arc<IndexOrigin>> = versions
                    .iter()
                    .filter(|c| c.package.version == current.version)
                    .flat_map(|c| c.offered_by.iter().cloned())
                    .collect();
                let stays = self.priority(
                    &Offered {
                        name: &current.name,
                        architecture: &current.architecture,
                        source_name: &current.source_name,
                        version: &current.version,
                        source_version: &current.source_version,
                        indexes: &indexes,
                    },
                    native,
                );
                if best.is_some_and(|(max, _)| stays > max) {
                    best = None;
                }
            }
            if let Some((_, i)) = best {
                kept.push(versions.swap_remove(i));
            }
        }
        kept.sort_by(|a, b| {
            (&a.package.name, &a.package.architecture)
                .cmp(&(&b.package.name, &b.package.architecture))
        });
        kept
    }
}

/// A suite's priority without a pin.
fn default_priority(index: &IndexOrigin) -> i32 {
    match (index.not_automatic, index.but_automatic_upgrades) {
        (false, _) => 500,
        (true, true) => 100,
        (true, false) => 1,
    }
}

/// A `Pin:` value; `None` for a pin type apt does not know.
fn parse_pin(file: &str, pin: &str) -> Result<Option<Pin>, PreferencesError> {
    let (kind, rest) = pin.split_once(char::is_whitespace).unwrap_or((pin, ""));
    let rest = rest.trim();
    let unquoted = rest.trim_matches('"');
    Ok(Some(match kind.to_ascii_lowercase().as_str() {
        "version" => Pin::Version(Pattern::parse(file, unquoted)?),
        "source-version" => Pin::SourceVersion(Pattern::parse(file, unquoted)?),
        "origin" => Pin::Origin(Pattern::parse(file, unquoted)?),
        "release" if unquoted == "*" => Pin::Release(Vec::new()),
        "release" if !rest.contains('=') => {
            let field = if unquoted.starts_with(|c: char| c.is_ascii_digit()) {
                ReleaseField::Version
            } else {
                ReleaseField::ArchiveOrCodename
            };
            Pin::Release(vec![(field, Pattern::parse(file, unquoted)?)])
        }
        "release" => {
            let mut terms = Vec::new();
            for term in rest.split(',') {
                let Some((key, value)) = term.trim().split_once('=') else {
                    continue;
                };
                let field = match key.trim() {
                    "a" | "archive" => ReleaseField::Archive,
                    "n" | "codename" => ReleaseField::Codename,
                    "v" | "version" => ReleaseField::Version,
                    "c" | "component" => ReleaseField::Component,
                    "o" | "origin" => ReleaseField::Origin,
                    "l" | "label" => ReleaseField::Label,
                    "b" | "architecture" => ReleaseField::Architecture,
                    _ => continue, // apt ignores fields it does not know
                };
                terms.push((field, Pattern::parse(file, value.trim().trim_matches('"'))?));
            }
            Pin::Release(terms)
        }
        _ => return Ok(None),
    }))
}

fn pin_matches(pin: &Pin, index: &IndexOrigin) -> bool {
    match pin {
        Pin::Version(_) | Pin::SourceVersion(_) => false,
        Pin::Origin(host) => host.matches(&index.host),
        Pin::Release(terms) => terms.iter().all(|(field, pattern)| {
            let value = |v: &Option<String>| v.as_deref().is_some_and(|v| pattern.matches(v));
            match field {
                ReleaseField::Archive => value(&index.archive),
                ReleaseField::Codename => value(&index.codename),
                ReleaseField::ArchiveOrCodename => value(&index.archive) || value(&index.codename),
                ReleaseField::Version => value(&index.version),
                ReleaseField::Component => pattern.matches(&index.component),
                ReleaseField::Origin => value(&index.origin),
                ReleaseField::Label => value(&index.label),
                ReleaseField::Architecture => pattern.matches(&index.architecture),
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use repo::apt::packages::IndexPackage;

    fn origin(host: &str, archive: &str, origin: &str) -> Arc<IndexOrigin> {
        Arc::new(IndexOrigin {
            base_url: format!("http://{host}/repo"),
            host: host.to_string(),
            suite: archive.to_string(),
            component: "main".to_string(),
            architecture: "amd64".to_string(),
            origin: Some(origin.to_string()),
            archive: Some(archive.to_string()),
            ..IndexOrigin::default()
        })
    }

    fn offer(name: &str, version: &str, from: &Arc<IndexOrigin>) -> Candidate {
        let package: IndexPackage = serde_json::from_value(serde_json::json!({
            "name": name, "version": version, "architecture": "amd64",
            "source_name": name, "source_version": version,
            "filename": format!("pool/{name}_{version}.deb"), "size": 1, "sha256": "00",
        }))
        .unwrap();
        Candidate {
            package,
            suite: from.suite.clone(),
            base_url: from.base_url.clone(),
            offered_by: vec![from.clone()],
        }
    }

    fn installed(name: &str, version: &str) -> Facts {
        Facts {
            name: name.to_string(),
            version: version.to_string(),
            architecture: "amd64".to_string(),
            source_name: name.to_string(),
            source_version: version.to_string(),
            multi_arch: None,
            pre_depends: Vec::new(),
            depends: Vec::new(),
            provides: Vec::new(),
            breaks: Vec::new(),
            conflicts: Vec::new(),
        }
    }

    fn chosen(preferences: &str, available: Vec<Candidate>, current: &[Facts]) -> Vec<String> {
        Preferences::parse([("etc/apt/preferences", preferences)])
            .unwrap()
            .candidates(available, current, "amd64")
            .iter()
            .map(|c| format!("{}={}", c.package.name, c.package.version))
            .collect()
    }

    #[test]
    fn the_newest_version_wins_without_pins() {
        let debian = origin("deb.debian.org", "bookworm-security", "Debian");
        let pgdg = origin("apt.postgresql.org", "bookworm-pgdg", "apt.postgresql.org");
        let available = vec![
            offer("libpq5", "15.8-0+deb12u1", &debian),
            offer("libpq5", "17.2-1.pgdg120+1", &pgdg),
        ];
        let current = [installed("libpq5", "15.6-0+deb12u1")];
        assert_eq!(
            chosen("# nothing pinned\n", available, &current),
            ["libpq5=17.2-1.pgdg120+1"]
        );
    }

    #[test]
    fn pins_choose_between_suites_and_hold_packages() {
        let debian = origin("deb.debian.org", "bookworm-security", "Debian");
        let pgdg = origin("apt.postgresql.org", "bookworm-pgdg", "apt.postgresql.org");
        let available = || {
            vec![
                offer("libpq5", "15.8-0+deb12u1", &debian),
                offer("libpq5", "17.2-1.pgdg120+1", &pgdg),
                offer("curl", "7.88.1-10+deb12u8", &debian),
            ]
        };
        let current = [
            installed("libpq5", "15.6-0+deb12u1"),
            installed("curl", "7.88.1-10+deb12u5"),
        ];
        // The third-party suite below the distribution's.
        assert_eq!(
            chosen(
                "Package: *\nPin: release o=apt.postgresql.org\nPin-Priority: 400\n",
                available(),
                &current
            ),
            ["curl=7.88.1-10+deb12u8", "libpq5=15.8-0+deb12u1"]
        );
        // By origin host, for one package only, as a regex.
        assert_eq!(
            chosen(
                "Explanation: keep postgres from Debian\nPackage: /^libpq/\nPin: origin \"apt.postgresql.org\"\nPin-Priority: -1\n",
                available(),
                &current
            ),
            ["curl=7.88.1-10+deb12u8", "libpq5=15.8-0+deb12u1"]
        );
        // A version pin holds curl at what is installed.
        assert_eq!(
            chosen(
                "Package: curl\nPin: version 7.88.1-10+deb12u5\nPin-Priority: 1001\n\nPackage: curl\nPin: release a=bookworm-security\nPin-Priority: 50\n",
                available(),
                &current
            ),
            ["libpq5=17.2-1.pgdg120+1"]
        );
        // Below the installed version's 100, an upgrade is not taken.
        assert_eq!(
            chosen(
                "Package: *\nPin: release a=bookworm-security\nPin-Priority: 90\n\nPackage: *\nPin: origin apt.postgresql.org\nPin-Priority: 90\n",
                available(),
                &current
            ),
            Vec::<String>::new()
        );
        // An older version is never a candidate, whatever its priority.
        assert_eq!(
            chosen(
                "Package: libpq5\nPin: version 13*\nPin-Priority: 1001\n",
                vec![offer("libpq5", "13.1-1", &debian)],
                &current
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn apt_s_other_forms_of_names_and_pins() {
        let debian = origin("deb.debian.org", "bookworm-security", "Debian");
        let backports = Arc::new(IndexOrigin {
            not_automatic: true,
            but_automatic_upgrades: true,
            codename: Some("bookworm-backports".to_string()),
            ..(*origin("deb.debian.org", "stable-backports", "Debian")).clone()
        });
        let experimental = Arc::new(IndexOrigin {
            not_automatic: true,
            ..(*origin("deb.debian.org", "experimental", "Debian")).clone()
        });
        let current = [
            installed("curl", "7.88.1-10+deb12u5"),
            installed("libcurl4", "7.88.1-10+deb12u5"),
        ];
        let available = || {
            vec![
                offer("curl", "7.88.1-10+deb12u8", &debian),
                offer("curl", "8.14.1-2~bpo12+1", &backports),
                offer("curl", "8.15.0-1", &experimental),
            ]
        };
        // Backports (100) and experimental (1) lose to the security suite.
        assert_eq!(
            chosen("", available(), &current),
            ["curl=7.88.1-10+deb12u8"]
        );
        // A bare `release` names the archive or the codename; case does not matter.
        assert_eq!(
            chosen(
                "Package: CURL\nPin: release Bookworm-Backports\nPin-Priority: 600\n",
                available(),
                &current
            ),
            ["curl=8.14.1-2~bpo12+1"]
        );
        // `src:` names the source package, `name:arch` the architecture.
        let pin = |package: &str| {
            format!("Package: {package}\nPin: release n=bookworm-backports\nPin-Priority: 600\n")
        };
        assert_eq!(
            chosen(&pin("src:curl"), available(), &current),
            ["curl=8.14.1-2~bpo12+1"]
        );
        assert_eq!(
            chosen(&pin("curl:amd64"), available(), &current),
            ["curl=8.14.1-2~bpo12+1"]
        );
        assert_eq!(
            chosen(&pin("curl:i386"), available(), &current),
            ["curl=7.88.1-10+deb12u8"]
        );
        // A pin on the installed version is its priority, below 100 too.
        assert_eq!(
            chosen(
                "Package: curl\nPin: version 7.88.1-10+deb12u5\nPin-Priority: 50\n\nPackage: curl\nPin: release n=bookworm-backports\nPin-Priority: 90\n",
                vec![offer("curl", "8.14.1-2~bpo12+1", &backports)],
                &current
            ),
            ["curl=8.14.1-2~bpo12+1"]
        );
        // `never`, and `release *` for every suite.
        assert_eq!(
            chosen(
                "Package: curl\nPin: release *\nPin-Priority: never\n",
                available(),
                &current
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn records_apt_refuses_are_errors_and_those_it_skips_are_skipped() {
        for bad in [
            "Pin: release a=x\nPin-Priority: 10\n",
            "Package: curl\nPin: version 1\n",
            "Package: curl\nPin: version 1\nPin-Priority: 0\n",
            "Package: /(/\nPin: version 1\nPin-Priority: 10\n",
        ] {
            let error = Preferences::parse([("etc/apt/preferences.d/x", bad)]).unwrap_err();
            assert!(
                error.to_string().contains("etc/apt/preferences.d/x"),
                "{error}"
            );
        }
        for skipped in [
            "Package: curl\nPin-Priority: 10\n",
            "Package: *\nPin: version 1*\nPin-Priority: 10\n",
            "Package: curl\nPin: sideways x\nPin-Priority: 10\n",
        ] {
            let preferences = Preferences::parse([("etc/apt/preferences.d/x", skipped)]).unwrap();
            assert!(preferences.records.is_empty(), "{skipped}");
        }
        // An unknown release field is ignored, the others still apply.
        let preferences = Preferences::parse([(
            "p",
            "Package: curl\nPin: release q=1, a=stable\nPin-Priority: 10\n",
        )])
        .unwrap();
        assert!(matches!(&preferences.records[0].pin, Pin::Release(terms) if terms.len() == 1));
    }
}
