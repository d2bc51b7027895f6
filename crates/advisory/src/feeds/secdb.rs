//! Alpine secdb JSON (`secdb.alpinelinux.org/v3.20/main.json`, `community.json`):
//! `{distroversion, reponame, urlprefix, apkurl, archs, packages: [{pkg:
//! {name, secfixes: {"<fixed version>": ["CVE-…", …], "0": [not affected]}}}]}`.
//!
//! Pure: bytes in, one [`Feed`] out (named `secdb-<branch>-<repo>`). The
//! secdb lists fixes only: every advisory is fixed (or, under the version
//! `0`, not affected); unfixed vulnerabilities come from OSV. `name` is the
//! origin (source) package. An entry may list several ids separated by
//! spaces; each becomes its own advisory.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Feed, FeedKind};
use crate::error::ParseError;
use crate::model::{Advisory, Details, Distro, Family, Severity, Status};

#[derive(Deserialize)]
struct SecdbFile<'a> {
    distroversion: String,
    reponame: String,
    #[serde(borrow)]
    packages: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct Entry {
    pkg: Pkg,
}

#[derive(Deserialize)]
struct Pkg {
    name: String,
    #[serde(default)]
    secfixes: Option<BTreeMap<String, Option<Vec<String>>>>,
}

/// Parses one secdb file.
pub fn parse_secdb(bytes: &[u8]) -> Result<Feed, ParseError> {
    let file: SecdbFile = serde_json::from_slice(bytes)
        .map_err(|e| ParseError::new("", format!("not an Alpine secdb file: {e}")))?;
    let release = file.distroversion.trim();
    let release = release.strip_prefix('v').unwrap_or(release);
    let sane = |text: &str| {
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    if !sane(release) {
        return Err(ParseError::new(
            "distroversion",
            format!(
                "{:?} is not an Alpine branch (e.g. v3.20)",
                file.distroversion
            ),
        ));
    }
    if !sane(&file.reponame) {
        return Err(ParseError::new(
            "reponame",
            format!("{:?} is not a repository name (e.g. main)", file.reponame),
        ));
    }
    let distro = Distro::new(Family::Alpine, release);
    let mut advisories = Vec::new();
    for (index, raw) in file.packages.unwrap_or_default().into_iter().enumerate() {
        let location = format!("packages[{index}]");
        let entry: Entry = serde_json::from_str(raw.get())
            .map_err(|e| ParseError::new(&location, e.to_string()))?;
        let package = entry.pkg.name.trim();
        if package.is_empty() {
            return Err(ParseError::new(location, "empty pkg.name"));
        }
        for (version, ids) in entry.pkg.secfixes.unwrap_or_default() {
            let status = match version.trim() {
                "" => {
                    return Err(ParseError::new(
                        format!("{location} ({package})"),
                        "empty version in secfixes",
                    ));
                }
                "0" => Status::NotAffected,
                fixed => Status::Fixed {
                    fixed_version: fixed.to_string(),
                },
            };
            for id in ids.iter().flatten().flat_map(|ids| ids.split_whitespace()) {
                let urls = id
                    .starts_with("CVE-")
                    .then(|| format!("https://security.alpinelinux.org/vuln/{id}"));
                advisories.push(Advisory {
                    id: id.to_string(),
                    distro: distro.clone(),
                    package: package.to_string(),
                    status: status.clone(),
                    introduced: None,
                    last_affected: None,
                    severity: Severity::Unknown,
                    severity_source: None,
                    details: Arc::new(Details::new(None, None, vec![], urls)),
                });
            }
        }
    }
    Ok(Feed {
        name: format!("secdb-{release}-{}", file.reponame),
        kind: FeedKind::Secdb,
        advisories,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_files_say_where() {
        let error = parse_secdb(b"{}").unwrap_err();
        assert!(error.message.contains("missing field"), "{error}");
        let error =
            parse_secdb(br#"{"distroversion": "v3/../x", "reponame": "main"}"#).unwrap_err();
        assert_eq!(error.location, "distroversion");
        let error = parse_secdb(
            br#"{"distroversion": "v3.20", "reponame": "main", "packages": [{"pkg": {"name": "a"}}, {"pkg": {"secfixes": {}}}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "packages[1]: missing field `name` at line 1 column 24"
        );
        let error = parse_secdb(
            br#"{"distroversion": "v3.20", "reponame": "main", "packages": [{"pkg": {"name": "a", "secfixes": {" ": ["CVE-1"]}}}]}"#,
        )
        .unwrap_err();
        assert_eq!(error.location, "packages[0] (a)");
    }

    #[test]
    fn several_ids_on_one_line_and_null_lists() {
        let feed = parse_secdb(
            br#"{"distroversion": "edge", "reponame": "community", "packages": [
                {"pkg": {"name": "a", "secfixes": {"1.0-r1": ["CVE-2020-1 CVE-2020-2", "XSA-9"], "1.0-r2": null}}},
                {"pkg": {"name": "b", "secfixes": null}}]}"#,
        )
        .unwrap();
        assert_eq!(feed.name, "secdb-edge-community");
        let ids: Vec<&str> = feed.advisories.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["CVE-2020-1", "CVE-2020-2", "XSA-9"]);
        assert!(feed.advisories[2].details.urls.is_empty());
    }
}
