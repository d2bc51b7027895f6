//! apt's pinning: which versions the image's `/etc/apt/preferences` lets
//! a patch install.
//!
//! Owns reading preference files (apt_preferences(5): records of
//! `Package`, `Pin` and `Pin-Priority`; pins by `release` fields
//! (`a= n= v= c= o= l= b=`), by `origin` host or by `version`; names and
//! values as words, globs or `/regex/`), the priority apt gives each
//! version (the first package-specific record whose pin matches it; else
//! the highest of its indexes' priorities, an index taking the first
//! general `Package: *` record that matches it or 500; 100 for an
//! installed version no index offers), and apt's candidate: the version of
//! the highest positive priority (ties to the newer), the installed
//! version staying when it outranks every newer one. Downgrades
//! (priorities of 1000 and more on older versions) are not made. Pure.

use std::collections::HashMap;
use std::sync::Arc;

use crate::candidates::IndexOrigin;
use crate::error::PatchError;
use crate::plan::{Candidate, Facts};

/// The priority of a configured suite without a pin.
const DEFAULT_PRIORITY: i32 = 500;
/// The priority of the installed version (dpkg's status file).
const INSTALLED_PRIORITY: i32 = 100;

/// The records of the image's preference files, in apt's reading order.
#[derive(Debug, Default)]
pub struct Preferences {
    records: Vec<Record>,
}

#[derive(Debug)]
struct Record {
    /// `None`: `Package: *`, a general record that applies to indexes.
    packages: Option<Vec<Pattern>>,
    pin: Pin,
    priority: i32,
}

#[derive(Debug)]
enum Pin {
    /// `release a=…, o=…`: every field must match.
    Release(Vec<(char, Pattern)>),
    /// `origin "host"`: the host the index is fetched from.
    Origin(String),
    Version(Pattern),
}

#[derive(Debug)]
enum Pattern {
    Exact(String),
    Glob(glob::Pattern),
    Regex(regex::Regex),
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, String> {
        if text.len() > 1 && text.starts_with('/') && text.ends_with('/') {
            let inner = &text[1..text.len() - 1];
            return regex::Regex::new(inner)
                .map(Pattern::Regex)
                .map_err(|e| format!("bad regular expression {text}: {e}"));
        }
        if text.contains(['*', '?', '[']) {
            return glob::Pattern::new(text)
                .map(Pattern::Glob)
                .map_err(|e| format!("bad pattern {text}: {e}"));
        }
        Ok(Pattern::Exact(text.to_string()))
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Pattern::Exact(exact) => exact == value,
            Pattern::Glob(glob) => glob.matches(value),
            Pattern::Regex(regex) => regex.is_match(value),
        }
    }
}

impl Preferences {
    /// Reads preference files, `(path, text)` in apt's order (the main
    /// file, then `preferences.d` by name). A record apt would reject is
    /// an error naming its file.
    pub fn parse<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Preferences, PatchError> {
        let mut records = Vec::new();
        for (path, text) in files {
            let bad = |why: String| PatchError::Refused(format!("{path}: {why}"));
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
                    let (name, value) = line
                        .split_once(':')
                        .ok_or_else(|| bad(format!("not a field: {line:?}")))?;
                    let name = name.trim().to_ascii_lowercase();
                    fields.insert(name.clone(), value.trim().to_string());
                    last = Some(name);
                }
                if fields.is_empty() {
                    continue;
                }
                let field = |name: &str| {
                    fields
                        .get(name)
                        .map(String::as_str)
                        .filter(|v| !v.is_empty())
                };
                let packages =
                    field("package").ok_or_else(|| bad("a record without Package".to_string()))?;
                let pin = field("pin").ok_or_else(|| bad(format!("{packages}: no Pin")))?;
                let priority: i32 = field("pin-priority")
                    .and_then(|p| p.parse().ok())
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad(format!("{packages}: no priority (or zero) for the pin")))?;
                let packages = if packages == "*" {
                    None
                } else {
                    Some(
                        packages
                            .split_whitespace()
                            .map(Pattern::parse)
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(bad)?,
                    )
                };
                let pin = parse_pin(pin).map_err(bad)?;
                if packages.is_none() && matches!(pin, Pin::Version(_)) {
                    return Err(bad(
                        "a version pin needs package names, not Package: *".to_string()
                    ));
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

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The priority of `version` of package `name`, offered by `indexes`
    /// (none: only installed).
    fn priority(&self, name: &str, version: &str, indexes: &[Arc<IndexOrigin>]) -> i32 {
        let specific = self.records.iter().find(|r| {
            r.packages
                .as_ref()
                .is_some_and(|names| names.iter().any(|n| n.matches(name)))
                && match &r.pin {
                    Pin::Version(pattern) => pattern.matches(version),
                    pin => indexes.iter().any(|index| pin_matches(pin, index)),
                }
        });
        if let Some(record) = specific {
            return record.priority;
        }
        indexes
            .iter()
            .map(|index| {
                self.records
                    .iter()
                    .find(|r| r.packages.is_none() && pin_matches(&r.pin, index))
                    .map_or(DEFAULT_PRIORITY, |r| r.priority)
            })
            .max()
            .unwrap_or(INSTALLED_PRIORITY)
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
                let priority =
                    self.priority(&name, &candidate.package.version, &candidate.offered_by);
                if priority > 0 && best.is_none_or(|(max, _)| priority > max) {
                    best = Some((priority, i));
                }
            }
            if let Some(current) = current {
                let offered: Vec<Arc<IndexOrigin>> = versions
                    .iter()
                    .filter(|c| c.package.version == current.version)
                    .flat_map(|c| c.offered_by.iter().cloned())
                    .collect();
                let stays = self
                    .priority(&name, &current.version, &offered)
                    .max(INSTALLED_PRIORITY);
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

fn parse_pin(pin: &str) -> Result<Pin, String> {
    let (kind, rest) = pin.split_once(char::is_whitespace).unwrap_or((pin, ""));
    let rest = rest.trim();
    match kind {
        "version" => Pattern::parse(rest).map(Pin::Version),
        "origin" => Ok(Pin::Origin(rest.trim_matches('"').to_string())),
        "release" if !rest.contains('=') => Ok(Pin::Release(vec![('v', Pattern::parse(rest)?)])),
        "release" => rest
            .split(',')
            .map(|term| {
                let (key, value) = term
                    .trim()
                    .split_once('=')
                    .ok_or_else(|| format!("bad release pin term {term:?}"))?;
                let key = match key.trim() {
                    k @ ("a" | "n" | "v" | "c" | "o" | "l" | "b") => {
                        k.chars().next().unwrap_or('a')
                    }
                    "archive" => 'a',
                    "codename" => 'n',
                    "version" => 'v',
                    "component" => 'c',
                    "origin" => 'o',
                    "label" => 'l',
                    other => return Err(format!("unknown release pin field {other:?}")),
                };
                Ok((key, Pattern::parse(value.trim().trim_matches('"'))?))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Pin::Release),
        other => Err(format!("unknown pin type {other:?}")),
    }
}

fn pin_matches(pin: &Pin, index: &IndexOrigin) -> bool {
    match pin {
        Pin::Version(_) => false,
        Pin::Origin(host) => index_host(&index.base_url) == host.as_str(),
        Pin::Release(terms) => terms.iter().all(|(key, pattern)| {
            let value = match key {
                'a' => index.archive.as_deref(),
                'n' => index.codename.as_deref(),
                'v' => index.version.as_deref(),
                'c' => Some(index.component.as_str()),
                'o' => index.origin.as_deref(),
                'l' => index.label.as_deref(),
                _ => Some(index.architecture.as_str()),
            };
            value.is_some_and(|v| pattern.matches(v))
        }),
    }
}

/// The host of an index's URL (empty for `file:` repositories).
fn index_host(base_url: &str) -> &str {
    base_url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', ':']).next().unwrap_or(""))
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use repo::apt::packages::IndexPackage;

    fn origin(host: &str, archive: &str, origin: &str) -> Arc<IndexOrigin> {
        Arc::new(IndexOrigin {
            base_url: format!("http://{host}/repo"),
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
    fn records_apt_rejects_are_errors() {
        for bad in [
            "Package: curl\nPin: version 1\n",
            "Package: curl\nPin-Priority: 10\n",
            "Pin: release a=x\nPin-Priority: 10\n",
            "Package: *\nPin: version 1*\nPin-Priority: 10\n",
            "Package: curl\nPin: release q=1\nPin-Priority: 10\n",
            "Package: curl\nPin: sideways x\nPin-Priority: 10\n",
        ] {
            let error = Preferences::parse([("etc/apt/preferences.d/x", bad)]).unwrap_err();
            assert!(
                error.to_string().contains("etc/apt/preferences.d/x"),
                "{error}"
            );
        }
    }
}
