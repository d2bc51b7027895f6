//! Advisory feeds. One module per format, each a pure parser from bytes to
//! [`Advisory`]s: [`tracker`](parse_tracker) (Debian Security Tracker JSON),
//! [`osv`](parse_osv) (OSV records and zips), [`secdb`](parse_secdb)
//! (Alpine). This module is the I/O edge for imports: it reads files and
//! directories (bounded), tells their kind, names the feeds they hold and
//! records where and when they came from ([`LoadedFeed`]); [`fetch`]
//! downloads the online feeds. It never writes to the store.
//!
//! [`security_repo`] is the one feed computed per image at scan time rather
//! than stored: advisories from a release's own security pocket.
//!
//! Adding a stored feed: a
//! `feeds/<name>.rs` with a pure parser producing [`Advisory`]s, a
//! [`FeedKind`] variant, a feed name, and a [`LoadedFeed`] handed to
//! [`crate::Store::replace_feeds`]; the store and the model stay as they are.

pub mod fetch;
mod osv;
mod secdb;
pub mod security_repo;
mod tracker;
mod vendor;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde::de::IgnoredAny;
use sha2::{Digest as _, Sha256};

pub use osv::{MAX_RECORD_BYTES, MAX_ZIP_BYTES, MAX_ZIP_ENTRIES, parse_osv, parse_osv_zip};
pub use secdb::parse_secdb;
pub use tracker::parse_tracker;

use crate::error::{Error, ParseError, Result};
use crate::model::{Advisory, Family, FeedKind, FeedSource};

/// The largest JSON document accepted (the tracker's is ~100 MB).
pub const MAX_JSON_BYTES: u64 = 1024 * 1024 * 1024;

/// The feed name of the Debian Security Tracker.
pub const TRACKER_FEED: &str = "debian-tracker";

/// What a parser made of one input for one feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    /// The feed's name (`debian-tracker`, `osv-ubuntu`, `secdb-3.20-main`).
    pub name: String,
    /// Its format.
    pub kind: FeedKind,
    /// What it says.
    pub advisories: Vec<Advisory>,
}

/// The feed name of OSV advisories of `family` (`osv-debian`, …).
pub fn osv_feed_name(family: Family) -> String {
    format!("osv-{family}")
}

/// Splits OSV advisories into one feed per family, in [`Family::ALL`] order.
pub fn osv_feeds(advisories: Vec<Advisory>) -> Vec<Feed> {
    let mut feeds: Vec<Feed> = Family::ALL
        .into_iter()
        .map(|family| Feed {
            name: osv_feed_name(family),
            kind: FeedKind::Osv,
            advisories: Vec::new(),
        })
        .collect();
    for advisory in advisories {
        // `Family::ALL` lists the families in declaration order.
        feeds[advisory.distro.family as usize]
            .advisories
            .push(advisory);
    }
    feeds.retain(|feed| !feed.advisories.is_empty());
    feeds
}

/// A feed ready for the store: its provenance and its advisories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedFeed {
    /// Where and when it came from.
    pub source: FeedSource,
    /// What it says.
    pub advisories: Vec<Advisory>,
}

/// Reads every input (files: tracker JSON, secdb JSON, OSV zip or record;
/// directories: OSV records), telling each file's kind from its content
/// unless `kind` is given. Fails, naming the input, on the first bad one, so
/// nothing is stored from a partly bad import; also when two inputs hold the
/// same feed (an import replaces whole feeds).
pub fn load(inputs: &[PathBuf], kind: Option<FeedKind>) -> Result<Vec<LoadedFeed>> {
    let mut loaded: Vec<LoadedFeed> = Vec::new();
    for input in inputs {
        for feed in load_one(input, kind)? {
            if let Some(earlier) = loaded.iter().find(|l| l.source.name == feed.source.name) {
                return Err(Error::SameFeedTwice {
                    feed: feed.source.name,
                    first: earlier.source.location.clone(),
                    second: feed.source.location,
                });
            }
            loaded.push(feed);
        }
    }
    Ok(loaded)
}

fn load_one(path: &Path, kind: Option<FeedKind>) -> Result<Vec<LoadedFeed>> {
    let input = path.display().to_string();
    let metadata = std::fs::metadata(path).map_err(Error::io(path))?;
    if metadata.is_dir() {
        if let Some(kind @ (FeedKind::Tracker | FeedKind::Secdb)) = kind {
            return Err(Error::UnknownKind {
                input,
                reason: format!("a directory cannot be {kind}; directories hold OSV records"),
            });
        }
        return load_osv_dir(path);
    }
    let mut file = File::open(path).map_err(Error::io(path))?;
    let sha256 = sha256_of(&mut file).map_err(Error::io(path))?;
    let feeds = parse_file(file, &input, kind)?;
    let source = |name: String, kind: FeedKind| FeedSource {
        name,
        kind,
        location: input.clone(),
        fetched_at: unix_now(),
        modified_at: metadata.modified().ok().map(unix_seconds),
        sha256: sha256.clone(),
    };
    Ok(feeds
        .into_iter()
        .map(|feed| LoadedFeed {
            source: source(feed.name, feed.kind),
            advisories: feed.advisories,
        })
        .collect())
}

/// Every `*.json` file under `dir` (recursively, in path order) as one OSV record.
fn load_osv_dir(dir: &Path) -> Result<Vec<LoadedFeed>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).map_err(Error::io(&next))? {
            let entry = entry.map_err(Error::io(&next))?;
            let path = entry.path();
            let file_type = entry.file_type().map_err(Error::io(&path))?;
            if file_type.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hasher = Sha256::new();
    let mut advisories = Vec::new();
    let mut modified_at = None;
    for path in &files {
        let bytes = read_bounded(path, MAX_RECORD_BYTES)?;
        let relative = path.strip_prefix(dir).unwrap_or(path);
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(&bytes);
        let mtime = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .map(unix_seconds);
        modified_at = modified_at.max(mtime);
        advisories.extend(parse_osv(&bytes).map_err(|error| Error::Parse {
            input: path.display().to_string(),
            kind: FeedKind::Osv,
            error,
        })?);
    }
    let input = dir.display().to_string();
    let feeds = non_empty(osv_feeds(advisories), &input)?;
    let sha256 = hex::encode(hasher.finalize());
    Ok(feeds
        .into_iter()
        .map(|feed| LoadedFeed {
            source: FeedSource {
                name: feed.name,
                kind: FeedKind::Osv,
                location: input.clone(),
                fetched_at: unix_now(),
                modified_at,
                sha256: sha256.clone(),
            },
            advisories: feed.advisories,
        })
        .collect())
}

/// Parses one feed file (positioned at its start) of `kind`, or of the kind
/// its content shows. `input` names it in errors.
pub(crate) fn parse_file(mut file: File, input: &str, kind: Option<FeedKind>) -> Result<Vec<Feed>> {
    let mut magic = [0u8; 4];
    let read = read_prefix(&mut file, &mut magic).map_err(Error::io(input))?;
    if &magic[..read] == b"PK\x03\x04" {
        if let Some(kind @ (FeedKind::Tracker | FeedKind::Secdb)) = kind {
            return Err(Error::UnknownKind {
                input: input.to_string(),
                reason: format!("it is a zip archive, which cannot be {kind}"),
            });
        }
        let size = file.metadata().map_err(Error::io(input))?.len();
        if size > MAX_ZIP_BYTES {
            return Err(Error::TooLarge {
                input: input.to_string(),
                limit: MAX_ZIP_BYTES,
            });
        }
        let advisories =
            parse_osv_zip(std::io::BufReader::new(file)).map_err(|error| Error::Parse {
                input: input.to_string(),
                kind: FeedKind::Osv,
                error,
            })?;
        return non_empty(osv_feeds(advisories), input);
    }
    let bytes = read_to_limit(file, input, MAX_JSON_BYTES)?;
    let kind = match kind {
        Some(kind) => kind,
        None => detect_json(&bytes, input)?,
    };
    let parse_error = |error: ParseError| Error::Parse {
        input: input.to_string(),
        kind,
        error,
    };
    match kind {
        FeedKind::Tracker => {
            let advisories = parse_tracker(&bytes).map_err(parse_error)?;
            non_empty(
                vec![Feed {
                    name: TRACKER_FEED.to_string(),
                    kind,
                    advisories,
                }],
                input,
            )
        }
        FeedKind::Osv => {
            if bytes.len() as u64 > MAX_RECORD_BYTES {
                return Err(Error::TooLarge {
                    input: input.to_string(),
                    limit: MAX_RECORD_BYTES,
                });
            }
            non_empty(osv_feeds(parse_osv(&bytes).map_err(parse_error)?), input)
        }
        FeedKind::Secdb => Ok(vec![parse_secdb(&bytes).map_err(parse_error)?]),
    }
}

/// Refuses an input that yielded no advisories at all (a wrong file, an OSV
/// zip of another ecosystem) rather than storing an empty feed over a full one.
fn non_empty(feeds: Vec<Feed>, input: &str) -> Result<Vec<Feed>> {
    if feeds.iter().all(|feed| feed.advisories.is_empty()) {
        return Err(Error::Empty {
            input: input.to_string(),
        });
    }
    Ok(feeds)
}

/// The kind of a JSON feed document, from its top-level keys.
fn detect_json(bytes: &[u8], input: &str) -> Result<FeedKind> {
    #[derive(Deserialize)]
    struct Probe {
        distroversion: Option<IgnoredAny>,
        packages: Option<IgnoredAny>,
        id: Option<IgnoredAny>,
        modified: Option<IgnoredAny>,
        affected: Option<IgnoredAny>,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|error| {
        if error.is_data() {
            Error::UnknownKind {
                input: input.to_string(),
                reason: format!("not a JSON object: {error}"),
            }
        } else {
            Error::InvalidJson {
                input: input.to_string(),
                error,
            }
        }
    })?;
    Ok(
        if probe.distroversion.is_some() && probe.packages.is_some() {
            FeedKind::Secdb
        } else if probe.id.is_some() && (probe.modified.is_some() || probe.affected.is_some()) {
            FeedKind::Osv
        } else {
            FeedKind::Tracker
        },
    )
}

fn read_prefix(file: &mut File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(filled)
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(Error::io(path))?;
    read_to_limit(file, &path.display().to_string(), limit)
}

fn read_to_limit(file: File, input: &str, limit: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(Error::io(input))?;
    if bytes.len() as u64 > limit {
        return Err(Error::TooLarge {
            input: input.to_string(),
            limit,
        });
    }
    Ok(bytes)
}

fn sha256_of(file: &mut File) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut buffer)? {
            0 => break,
            n => hasher.update(&buffer[..n]),
        }
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(hex::encode(hasher.finalize()))
}

fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn unix_now() -> i64 {
    unix_seconds(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_kinds_are_told_by_their_keys() {
        let detect = |bytes: &[u8]| detect_json(bytes, "x.json");
        let secdb = br#"{"distroversion": "v3.20", "reponame": "main", "packages": []}"#;
        assert!(matches!(detect(secdb), Ok(FeedKind::Secdb)));
        let osv = br#"{"id": "DSA-1", "modified": "2024-01-01T00:00:00Z"}"#;
        assert!(matches!(detect(osv), Ok(FeedKind::Osv)));
        assert!(matches!(detect(br#"{"zlib": {}}"#), Ok(FeedKind::Tracker)));
        assert!(matches!(detect(b"[]"), Err(Error::UnknownKind { .. })));
        assert!(matches!(
            detect(b"{\"zlib\": "),
            Err(Error::InvalidJson { .. })
        ));
        assert!(matches!(
            detect(b"not json"),
            Err(Error::InvalidJson { .. })
        ));
    }
}
