//! The Debian Security Tracker JSON (`security-tracker.debian.org/tracker/data/json`):
//! `{source package: {CVE or TEMP id: {description, debianbug, scope,
//! releases: {codename: {status, repositories, fixed_version, urgency,
//! nodsa, nodsa_reason}}}}}`, as `bin/tracker_service.py` writes it (absent
//! fields are left out, never `null`, but `null` is accepted too).
//!
//! Pure: bytes in, advisories out. One advisory per (package, issue,
//! release). Status mapping:
//! - `resolved` with a `fixed_version` → fixed; `fixed_version` `0` (or none) → not affected;
//! - `open`/`undetermined` with urgency `end-of-life` → end of life;
//! - `open`/`undetermined` with `nodsa_reason` `ignored` → will not fix,
//!   `postponed` → fix deferred, plain `<no-dsa>` (reason `""`) → affected
//!   (a point release may still fix it);
//! - otherwise `open` → affected; `undetermined` (nobody checked yet) → affected too.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::vendor::{Urgency, debian_urgency};
use crate::error::ParseError;
use crate::model::{Advisory, Details, Distro, Family, Severity, Status};

#[derive(Deserialize)]
struct Issue {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    debianbug: Option<u64>,
    #[serde(default)]
    releases: Option<BTreeMap<String, Release>>,
}

#[derive(Deserialize)]
struct Release {
    status: String,
    #[serde(default)]
    fixed_version: Option<String>,
    #[serde(default)]
    urgency: Option<String>,
    #[serde(default)]
    nodsa_reason: Option<String>,
}

/// Parses a whole tracker document.
pub fn parse_tracker(bytes: &[u8]) -> Result<Vec<Advisory>, ParseError> {
    let packages: BTreeMap<String, &RawValue> = serde_json::from_slice(bytes).map_err(|e| {
        ParseError::new(
            "",
            format!("expected an object of source packages ({{\"zlib\": {{\"CVE-…\": …}}}}): {e}"),
        )
    })?;
    let mut advisories = Vec::new();
    for (package, issues) in packages {
        let location = format!("package {package:?}");
        if package.trim().is_empty() {
            return Err(ParseError::new(location, "empty package name"));
        }
        let issues: BTreeMap<String, &RawValue> =
            serde_json::from_str(issues.get()).map_err(|e| {
                ParseError::new(&location, format!("expected an object of issues: {e}"))
            })?;
        for (id, issue) in issues {
            let location = format!("{location}, {id}");
            let issue: Issue = serde_json::from_str(issue.get())
                .map_err(|e| ParseError::new(&location, e.to_string()))?;
            push_issue(&mut advisories, &package, id, issue).map_err(|e| e.within(&location))?;
        }
    }
    Ok(advisories)
}

fn push_issue(
    advisories: &mut Vec<Advisory>,
    package: &str,
    id: String,
    issue: Issue,
) -> Result<(), ParseError> {
    let urls = std::iter::once(format!("https://security-tracker.debian.org/tracker/{id}")).chain(
        issue
            .debianbug
            .map(|bug| format!("https://bugs.debian.org/{bug}")),
    );
    let details = Arc::new(Details::new(
        None,
        issue.description.as_deref(),
        vec![],
        urls,
    ));
    for (codename, release) in issue.releases.unwrap_or_default() {
        let status = status_of(&release).map_err(|e| e.within(&format!("release {codename}")))?;
        let (severity, severity_source) = match release.urgency.as_deref().map(debian_urgency) {
            Some(Urgency::Rated(severity)) if severity != Severity::Unknown => {
                (severity, Some("debian".to_string()))
            }
            _ => (Severity::Unknown, None),
        };
        advisories.push(Advisory {
            id: id.clone(),
            distro: Distro::new(Family::Debian, codename),
            package: package.to_string(),
            status,
            introduced: None,
            last_affected: None,
            severity,
            severity_source,
            details: Arc::clone(&details),
        });
    }
    Ok(())
}

/// The status a release entry gives.
fn status_of(release: &Release) -> Result<Status, ParseError> {
    match release.status.as_str() {
        "resolved" => Ok(
            match release
                .fixed_version
                .as_deref()
                .map(str::trim)
                .unwrap_or("")
            {
                "" | "0" => Status::NotAffected,
                version => Status::Fixed {
                    fixed_version: version.to_string(),
                },
            },
        ),
        "open" | "undetermined" => Ok(
            if release.urgency.as_deref().map(debian_urgency) == Some(Urgency::EndOfLife) {
                Status::EndOfLife
            } else {
                match release.nodsa_reason.as_deref() {
                    Some("ignored") => Status::WillNotFix,
                    Some("postponed") => Status::FixDeferred,
                    _ => Status::Affected,
                }
            },
        ),
        other => Err(ParseError::new(
            "",
            format!("unknown status {other:?} (expected resolved, open or undetermined)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_with_a_location() {
        let error = parse_tracker(b"[1, 2]").unwrap_err();
        assert!(error.message.contains("expected an object"), "{error}");
        let error = parse_tracker(br#"{"zlib": []}"#).unwrap_err();
        assert_eq!(error.location, "package \"zlib\"");
        let error = parse_tracker(
            br#"{"zlib": {"CVE-1": {"releases": {"bookworm": {"status": "gone"}}}}}"#,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "package \"zlib\", CVE-1, release bookworm: unknown status \"gone\" (expected resolved, open or undetermined)"
        );
        let error =
            parse_tracker(br#"{"zlib": {"CVE-1": {"releases": {"bookworm": {}}}}}"#).unwrap_err();
        assert!(error.message.contains("missing field `status`"), "{error}");
        assert!(parse_tracker(b"").is_err());
        assert!(parse_tracker(b"{\"a\": {\"CVE-1\": 5}}").is_err());
    }

    #[test]
    fn an_issue_without_releases_yields_nothing() {
        let advisories =
            parse_tracker(br#"{"zlib": {"TEMP-0000000-1": {"description": "x"}}}"#).unwrap();
        assert!(advisories.is_empty());
    }
}
