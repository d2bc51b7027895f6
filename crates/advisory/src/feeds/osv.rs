//! OSV records (ossf/osv-schema) for the distro ecosystems `Debian:<number>`,
//! `Ubuntu:<version>[:LTS]` and `Alpine:v<branch>`, one JSON record at a time
//! or a whole `all.zip` as osv.dev publishes it.
//!
//! Pure: bytes (or a seekable reader of a zip) in, advisories out. Each
//! `affected[]` entry of a supported ecosystem yields one advisory per
//! interval of its `ECOSYSTEM` ranges (`introduced` → `fixed` is fixed,
//! `introduced` → `last_affected` or an open end is affected), or one
//! affected advisory when it has no ranges (how Debian's `DEBIAN-CVE-…`
//! records say "unfixed"). Events are taken in the order given (osv.dev
//! writes them sorted; this crate does not compare versions). `versions[]`
//! is not used: for these ecosystems it enumerates what the ranges say.
//! Withdrawn records, other ecosystems, `Ubuntu:Pro:…` (ESM) and `GIT`/
//! `SEMVER` ranges are skipped.
//!
//! Severity is the vendor's: Debian `urgency`, Ubuntu priority (from
//! `ecosystem_specific`/`database_specific` `ubuntu_priority`/`priority`, or
//! a `severity[]` entry of type `Ubuntu`, the affected entry's first).

use std::io::{Read, Seek};
use std::sync::Arc;

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

use super::vendor::{Urgency, debian_codename, debian_urgency, ubuntu_priority};
use crate::error::ParseError;
use crate::model::{Advisory, Details, Distro, Family, Severity, Status};

/// The largest single OSV record accepted (real ones are a few hundred KiB at most).
pub const MAX_RECORD_BYTES: u64 = 32 * 1024 * 1024;
/// The most a zip may decompress to in all (osv.dev's largest distro zips are ~2 GiB).
pub const MAX_ZIP_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// The most entries a zip may hold.
pub const MAX_ZIP_ENTRIES: usize = 2_000_000;

/// `null` where a list is expected reads as an empty list.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Deserialize)]
struct Record<'a> {
    id: String,
    #[serde(default, deserialize_with = "nullable")]
    aliases: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    upstream: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    related: Vec<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    severity: Vec<SeverityEntry>,
    #[serde(default, deserialize_with = "nullable", borrow)]
    affected: Vec<&'a RawValue>,
    #[serde(default, deserialize_with = "nullable")]
    references: Vec<Reference>,
    #[serde(default)]
    database_specific: Option<Value>,
}

#[derive(Deserialize)]
struct SeverityEntry {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct Reference {
    url: String,
}

#[derive(Deserialize)]
struct Affected {
    package: Package,
    #[serde(default, deserialize_with = "nullable")]
    severity: Vec<SeverityEntry>,
    #[serde(default, deserialize_with = "nullable")]
    ranges: Vec<Range>,
    #[serde(default)]
    ecosystem_specific: Option<Value>,
    #[serde(default)]
    database_specific: Option<Value>,
}

#[derive(Deserialize)]
struct Package {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct Range {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, deserialize_with = "nullable")]
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    introduced: Option<String>,
    #[serde(default)]
    fixed: Option<String>,
    #[serde(default)]
    last_affected: Option<String>,
}

/// Parses one OSV record (a `.json` file of an OSV database).
pub fn parse_osv(bytes: &[u8]) -> Result<Vec<Advisory>, ParseError> {
    let record: Record = serde_json::from_slice(bytes)
        .map_err(|e| ParseError::new("", format!("not an OSV record: {e}")))?;
    let location = format!("record {}", record.id);
    if record.id.trim().is_empty() {
        return Err(ParseError::new("", "empty `id`"));
    }
    if record.withdrawn.is_some() {
        return Ok(Vec::new());
    }
    let (id, aliases) = identity(&record);
    let details = Arc::new(Details::new(
        record.summary.as_deref(),
        record.details.as_deref(),
        aliases,
        record.references.iter().map(|r| r.url.clone()),
    ));
    let mut advisories = Vec::new();
    for (index, raw) in record.affected.iter().enumerate() {
        let location = format!("{location}, affected[{index}]");
        let affected: Affected = serde_json::from_str(raw.get())
            .map_err(|e| ParseError::new(&location, e.to_string()))?;
        let Some(distro) = distro_of(&affected.package.ecosystem) else {
            continue;
        };
        if affected.package.name.trim().is_empty() {
            return Err(ParseError::new(location, "empty package.name"));
        }
        let (severity, end_of_life) = rating(&distro, &affected, &record);
        let severity_source =
            (severity != Severity::Unknown).then(|| distro.family.as_str().to_string());
        let template = Advisory {
            id: id.clone(),
            distro,
            package: affected.package.name.clone(),
            status: Status::Affected,
            introduced: None,
            last_affected: None,
            severity,
            severity_source,
            details: Arc::clone(&details),
        };
        let unfixed = if end_of_life {
            Status::EndOfLife
        } else {
            Status::Affected
        };
        let intervals = intervals(&affected.ranges).map_err(|e| e.within(&location))?;
        match intervals {
            None => advisories.push(Advisory {
                status: unfixed,
                ..template
            }),
            Some(intervals) => advisories.extend(intervals.into_iter().map(|interval| {
                let (status, last_affected) = match interval.end {
                    End::Fixed(fixed_version) => (Status::Fixed { fixed_version }, None),
                    End::LastAffected(last) => (unfixed.clone(), Some(last)),
                    End::Open => (unfixed.clone(), None),
                };
                Advisory {
                    status,
                    introduced: interval.introduced,
                    last_affected,
                    ..template.clone()
                }
            })),
        }
    }
    Ok(advisories)
}

/// Parses every `.json` entry of an OSV zip (`<Ecosystem>/all.zip`).
pub fn parse_osv_zip<R: Read + Seek>(reader: R) -> Result<Vec<Advisory>, ParseError> {
    let mut archive = zip::ZipArchive::new(reader)
        .map_err(|e| ParseError::new("", format!("not a zip archive: {e}")))?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(ParseError::new(
            "",
            format!(
                "{} entries, more than the {MAX_ZIP_ENTRIES} accepted",
                archive.len()
            ),
        ));
    }
    let mut advisories = Vec::new();
    let mut total = 0u64;
    let mut buffer = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| ParseError::new(format!("entry #{index}"), e.to_string()))?;
        let name = entry
            .name()
            .map_err(|e| ParseError::new(format!("entry #{index}"), e.to_string()))?
            .into_owned();
        let location = format!("entry {name:?}");
        if entry.is_dir() || !name.ends_with(".json") {
            continue;
        }
        if entry.size() > MAX_RECORD_BYTES {
            return Err(too_large(location, MAX_RECORD_BYTES));
        }
        buffer.clear();
        // The header's size may lie (a zip bomb): read one byte past the limit to tell.
        (&mut entry)
            .take(MAX_RECORD_BYTES + 1)
            .read_to_end(&mut buffer)
            .map_err(|e| ParseError::new(&location, format!("cannot decompress: {e}")))?;
        if buffer.len() as u64 > MAX_RECORD_BYTES {
            return Err(too_large(location, MAX_RECORD_BYTES));
        }
        total += buffer.len() as u64;
        if total > MAX_ZIP_BYTES {
            return Err(ParseError::new(
                location,
                format!("the archive decompresses to more than {MAX_ZIP_BYTES} bytes; refusing it"),
            ));
        }
        advisories.extend(parse_osv(&buffer).map_err(|e| e.within(&location))?);
    }
    Ok(advisories)
}

fn too_large(location: String, limit: u64) -> ParseError {
    ParseError::new(location, format!("larger than {limit} bytes; refusing it"))
}

/// The advisory id and its aliases. A record named after one CVE (`CVE-…`,
/// `DEBIAN-CVE-…`, `UBUNTU-CVE-…`, `ALPINE-CVE-…`) is that CVE, with the
/// record id as an alias; other records (`DSA-…`, `USN-…`) keep their id and
/// list their CVEs (`aliases`, `upstream`, and the CVEs of `related`).
fn identity(record: &Record) -> (String, Vec<String>) {
    let id = if record.id.starts_with("CVE-") {
        record.id.clone()
    } else {
        match record.id.find("-CVE-") {
            Some(at) => record.id[at + 1..].to_string(),
            None => record.id.clone(),
        }
    };
    let mut aliases: Vec<String> = Vec::new();
    let candidates = std::iter::once(&record.id)
        .chain(&record.aliases)
        .chain(&record.upstream)
        .chain(record.related.iter().filter(|r| r.starts_with("CVE-")));
    for alias in candidates {
        if *alias != id && !aliases.contains(alias) {
            aliases.push(alias.clone());
        }
    }
    (id, aliases)
}

/// The release an ecosystem names, or `None` for ecosystems this crate skips.
fn distro_of(ecosystem: &str) -> Option<Distro> {
    let parts: Vec<&str> = ecosystem.split(':').collect();
    match parts.as_slice() {
        ["Debian", number] => Some(Distro::new(
            Family::Debian,
            debian_codename(number).unwrap_or(number),
        )),
        ["Ubuntu", version] | ["Ubuntu", version, "LTS"]
            if version.contains('.') && version.chars().all(|c| c.is_ascii_digit() || c == '.') =>
        {
            Some(Distro::new(Family::Ubuntu, *version))
        }
        ["Alpine", branch] => Some(Distro::new(
            Family::Alpine,
            branch.strip_prefix('v').unwrap_or(branch),
        )),
        _ => None,
    }
}

/// The vendor's severity for one affected entry and whether it says end of life.
fn rating(distro: &Distro, affected: &Affected, record: &Record) -> (Severity, bool) {
    let specific = [
        affected.ecosystem_specific.as_ref(),
        affected.database_specific.as_ref(),
    ];
    match distro.family {
        Family::Debian => match text_at(&specific, &["urgency"]).map(debian_urgency) {
            Some(Urgency::EndOfLife) => (Severity::Unknown, true),
            Some(Urgency::Rated(severity)) => (severity, false),
            None => (Severity::Unknown, false),
        },
        Family::Ubuntu => {
            let priority = text_at(&specific, &["ubuntu_priority", "priority"])
                .or_else(|| ubuntu_score(&affected.severity))
                .or_else(|| ubuntu_score(&record.severity))
                .or_else(|| {
                    text_at(
                        &[record.database_specific.as_ref()],
                        &["ubuntu_priority", "priority"],
                    )
                });
            (priority.map(ubuntu_priority).unwrap_or_default(), false)
        }
        Family::Alpine => (Severity::Unknown, false),
    }
}

fn text_at<'a>(objects: &[Option<&'a Value>], keys: &[&str]) -> Option<&'a str> {
    objects
        .iter()
        .flatten()
        .flat_map(|object| keys.iter().filter_map(move |key| object.get(key)))
        .find_map(Value::as_str)
}

fn ubuntu_score(entries: &[SeverityEntry]) -> Option<&str> {
    entries
        .iter()
        .find(|entry| entry.kind == "Ubuntu")
        .map(|entry| entry.score.as_str())
}

struct Interval {
    introduced: Option<String>,
    end: End,
}

enum End {
    Fixed(String),
    LastAffected(String),
    Open,
}

/// The affected intervals of the `ECOSYSTEM` ranges; `None` when there are
/// no ranges at all (everything affected), an empty list when there are
/// ranges but none of type `ECOSYSTEM`.
fn intervals(ranges: &[Range]) -> Result<Option<Vec<Interval>>, ParseError> {
    if ranges.is_empty() {
        return Ok(None);
    }
    let mut intervals = Vec::new();
    for (range_index, range) in ranges.iter().enumerate() {
        if range.kind != "ECOSYSTEM" {
            continue;
        }
        let mut open: Option<Option<String>> = None;
        for (event_index, event) in range.events.iter().enumerate() {
            let at = || format!("ranges[{range_index}].events[{event_index}]");
            let version = |v: &String| {
                let v = v.trim();
                if v.is_empty() {
                    Err(ParseError::new(at(), "empty version"))
                } else {
                    Ok(v.to_string())
                }
            };
            if let Some(introduced) = &event.introduced {
                let introduced = version(introduced)?;
                // A second `introduced` while one is open changes nothing.
                open.get_or_insert((introduced != "0").then_some(introduced));
            } else if let Some(fixed) = &event.fixed {
                intervals.push(Interval {
                    introduced: open.take().flatten(),
                    end: End::Fixed(version(fixed)?),
                });
            } else if let Some(last) = &event.last_affected {
                intervals.push(Interval {
                    introduced: open.take().flatten(),
                    end: End::LastAffected(version(last)?),
                });
            }
        }
        if let Some(introduced) = open {
            intervals.push(Interval {
                introduced,
                end: End::Open,
            });
        }
    }
    Ok(Some(intervals))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecosystems() {
        let d = |e: &str| distro_of(e).map(|d| (d.family, d.release));
        assert_eq!(d("Debian:12"), Some((Family::Debian, "bookworm".into())));
        assert_eq!(d("Debian:16"), Some((Family::Debian, "16".into())));
        assert_eq!(
            d("Ubuntu:24.04:LTS"),
            Some((Family::Ubuntu, "24.04".into()))
        );
        assert_eq!(d("Ubuntu:24.10"), Some((Family::Ubuntu, "24.10".into())));
        assert_eq!(d("Ubuntu:Pro:18.04:LTS"), None);
        assert_eq!(d("Ubuntu:Pro:FIPS:22.04:LTS"), None);
        assert_eq!(d("Alpine:v3.20"), Some((Family::Alpine, "3.20".into())));
        assert_eq!(d("PyPI"), None);
        assert_eq!(d("Debian"), None);
    }

    #[test]
    fn malformed_records_say_where() {
        let error = parse_osv(b"{\"id\": 5}").unwrap_err();
        assert!(error.message.starts_with("not an OSV record"), "{error}");
        let error = parse_osv(
            br#"{"id": "DSA-1-1", "affected": [{"package": {"ecosystem": "Debian:12", "name": "a"}}, {"package": {}}]}"#,
        )
        .unwrap_err();
        assert_eq!(error.location, "record DSA-1-1, affected[1]");
        let error = parse_osv(
            br#"{"id": "DSA-1-1", "affected": [{"package": {"ecosystem": "Debian:12", "name": "a"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": " "}]}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "record DSA-1-1, affected[0], ranges[0].events[1]: empty version"
        );
        assert!(parse_osv_zip(std::io::Cursor::new(b"PK not really")).is_err());
    }

    #[test]
    fn nulls_read_as_empty_lists() {
        let advisories = parse_osv(
            br#"{"id": "ALPINE-CVE-2024-1", "aliases": null, "references": null,
                 "affected": [{"package": {"ecosystem": "Alpine:v3.20", "name": "musl"}, "ranges": null}]}"#,
        )
        .unwrap();
        assert_eq!(advisories.len(), 1);
        assert_eq!(advisories[0].id, "CVE-2024-1");
        assert_eq!(advisories[0].status, Status::Affected);
        assert_eq!(advisories[0].details.aliases, ["ALPINE-CVE-2024-1"]);
    }
}
