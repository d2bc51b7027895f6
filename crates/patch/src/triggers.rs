//! The dpkg triggers an upgrade activates.
//!
//! Owns reading the image's trigger interests (`var/lib/dpkg/triggers/File`:
//! `PATH PACKAGE[/noawait]` file triggers; `var/lib/dpkg/triggers/NAME`:
//! the packages interested in the explicit trigger NAME) and working out,
//! from the upgraded packages' files, their `triggers` control files
//! (`activate NAME`) and `dpkg-trigger NAME` calls in their scripts, which
//! interested packages' trigger processing dpkg would run. The caller
//! reports those it does not reproduce. Pure.

use std::collections::{BTreeMap, BTreeSet};

/// Where dpkg records trigger interests.
pub const DIR: &str = "var/lib/dpkg/triggers";
/// The file triggers' interests.
pub const FILE_INTERESTS: &str = "var/lib/dpkg/triggers/File";

/// The interests dpkg recorded for the installed packages.
#[derive(Debug, Default)]
pub struct Interests {
    /// (path, interested package).
    files: Vec<(String, String)>,
    /// Explicit trigger → interested packages.
    named: BTreeMap<String, Vec<String>>,
}

impl Interests {
    /// Reads `triggers/File` and the named interest files (`(NAME, text)`;
    /// dpkg's own `Lock`, `Unincorp` and `File` are not triggers).
    pub fn parse<'a>(
        file_triggers: &str,
        named: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Interests {
        let package = |word: &str| word.split('/').next().unwrap_or(word).to_string();
        let files = file_triggers
            .lines()
            .filter_map(|line| {
                let (path, interested) = line.split_once(' ')?;
                Some((
                    path.trim_end_matches('/').to_string(),
                    package(interested.trim()),
                ))
            })
            .collect();
        let named = named
            .into_iter()
            .filter(|(name, _)| !matches!(*name, "File" | "Lock" | "Unincorp"))
            .map(|(name, text)| {
                (
                    name.to_string(),
                    text.split_whitespace().map(package).collect(),
                )
            })
            .collect();
        Interests { files, named }
    }
}

/// What an upgraded package brings that can activate triggers.
pub struct Activator<'a> {
    pub package: &'a str,
    /// Its files, absolute (`/usr/share/man/man1/x.1.gz`).
    pub paths: &'a [String],
    /// Its `triggers` control file.
    pub triggers: Option<&'a str>,
    /// Its maintainer scripts.
    pub scripts: Vec<&'a str>,
}

/// (interested package, trigger) → the packages that activate it. A file
/// trigger is named by its path.
pub fn activated(
    interests: &Interests,
    activators: &[Activator],
) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut found: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for activator in activators {
        for (interest, interested) in &interests.files {
            let hit = activator.paths.iter().any(|path| {
                path.strip_prefix(interest.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            });
            if hit {
                found
                    .entry((interested.clone(), interest.clone()))
                    .or_default()
                    .insert(activator.package.to_string());
            }
        }
        let mut names: BTreeSet<&str> = BTreeSet::new();
        if let Some(text) = activator.triggers {
            for line in text.lines() {
                let mut words = line.split_whitespace();
                if let (Some(directive), Some(name)) = (words.next(), words.next())
                    && directive.starts_with("activate")
                {
                    names.insert(name);
                }
            }
        }
        for script in &activator.scripts {
            for call in script.split("dpkg-trigger").skip(1) {
                let name = call
                    .split_whitespace()
                    .find(|w| !w.starts_with('-'))
                    .unwrap_or("");
                if !name.is_empty() && !name.contains(['$', '"', '\'', ';', '|', '&']) {
                    names.insert(name);
                }
            }
        }
        for name in names {
            for interested in interests.named.get(name).into_iter().flatten() {
                found
                    .entry((interested.clone(), name.to_string()))
                    .or_default()
                    .insert(activator.package.to_string());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_names_activate_the_interested_packages() {
        let interests = Interests::parse(
            "/usr/share/man man-db\n/usr/lib/x86_64-linux-gnu/gdk-pixbuf-2.0/2.10.0/loaders libgdk-pixbuf-2.0-0:amd64/noawait\n",
            [
                ("ldconfig", "libc-bin\n"),
                ("update-ca-certificates", "ca-certificates/noawait\n"),
                ("Unincorp", "junk\n"),
            ],
        );
        let man = vec![
            "/usr/share/man/man1/curl.1.gz".to_string(),
            "/usr/bin/curl".to_string(),
        ];
        let manual = vec!["/usr/share/manual/x".to_string()];
        let activators = [
            Activator {
                package: "curl",
                paths: &man,
                triggers: None,
                scripts: vec![],
            },
            Activator {
                package: "libssl3",
                paths: &manual,
                triggers: Some("activate-noawait ldconfig\n"),
                scripts: vec!["#!/bin/sh\ndpkg-trigger --no-await update-ca-certificates\n"],
            },
        ];
        let found = activated(&interests, &activators);
        let keys: Vec<(&str, &str)> = found
            .keys()
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("ca-certificates", "update-ca-certificates"),
                ("libc-bin", "ldconfig"),
                ("man-db", "/usr/share/man"),
            ]
        );
        assert!(found[&("man-db".into(), "/usr/share/man".into())].contains("curl"));
    }
}
