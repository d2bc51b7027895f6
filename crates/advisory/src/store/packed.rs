//! The packed form in which the store keeps advisories, so that a lookup
//! reads one small row per (source package, feed, release) instead of one row
//! (and one details row) per advisory. Owns the byte layout, decoding it into
//! the model, and [`PackedAdvisories`], which hands out borrowed
//! [`AdvisoryView`]s without decoding (or allocating) anything else; never
//! touches SQLite.
//!
//! Two kinds of blob. A varint is unsigned LEB128; a string is a varint
//! length and that many UTF-8 bytes; an optional string is the varint 0 for
//! none, else its length + 1 and its bytes; a list is a varint count and its
//! strings.
//!
//! ```text
//! release blob: one feed's advisories for one source package in one release
//!   FORMAT                     one byte
//!   count                      varint, then per advisory, ordered by id (the
//!                              feed's order kept among equal ids):
//!     id                       string
//!     status                   one byte (0 fixed, then the fixed version (string);
//!                              1 affected, 2 will_not_fix, 3 fix_deferred,
//!                              4 end_of_life, 5 not_affected)
//!     introduced, last_affected, optional strings
//!     severity                 one byte (index in Severity::ALL)
//!     severity_source, title   optional strings
//!     urls                     list
//!     text                     varint index into the package's texts blob
//!
//! texts blob: the long texts of one feed's records for one source package,
//! stored once however many advisories (releases) share a record
//!   FORMAT                     one byte
//!   count                      varint, then per record:
//!     description              optional string
//!     aliases                  list
//! ```
//!
//! What matching reads (and shows) is all in the release blob; the texts
//! blob is only read to hand out the full model.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::error::{CorruptRow, Error, Result};
use crate::model::{
    Advisory, AdvisoryView, Details, Distro, FeedAdvisory, Severity, Status, StatusRef,
};

/// The layout's version, first byte of every blob.
const FORMAT: u8 = 1;

/// A status's byte; [`entries`] reads it back.
fn status_code(status: &Status) -> u8 {
    match status {
        Status::Fixed { .. } => 0,
        Status::Affected => 1,
        Status::WillNotFix => 2,
        Status::FixDeferred => 3,
        Status::EndOfLife => 4,
        Status::NotAffected => 5,
    }
}

/// One source package's advisories from one feed, packed.
pub(super) struct Packed<'a> {
    /// The texts blob.
    pub texts: Vec<u8>,
    /// Per release (in the feed's order of first appearance), its blob.
    pub releases: Vec<(&'a str, Vec<u8>)>,
}

/// Packs `advisories` (all of one family and source package, in feed order).
pub(super) fn encode<'a>(advisories: &[&'a Advisory]) -> Packed<'a> {
    // Texts shared by several advisories (one feed record, several releases) are stored once.
    let mut texts: Vec<&Details> = Vec::new();
    let mut text_index: HashMap<*const Details, usize> = HashMap::new();
    let mut releases: Vec<(&str, Vec<(&Advisory, usize)>)> = Vec::new();
    for advisory in advisories {
        let index = *text_index
            .entry(Arc::as_ptr(&advisory.details))
            .or_insert_with(|| {
                texts.push(&advisory.details);
                texts.len() - 1
            });
        let release = advisory.distro.release.as_str();
        match releases.iter_mut().find(|(name, _)| *name == release) {
            Some((_, list)) => list.push((advisory, index)),
            None => releases.push((release, vec![(advisory, index)])),
        }
    }
    let mut texts_blob = vec![FORMAT];
    put_varint(&mut texts_blob, texts.len());
    for details in texts {
        put_opt_str(&mut texts_blob, details.description.as_deref());
        put_list(&mut texts_blob, &details.aliases);
    }
    let releases = releases
        .into_iter()
        .map(|(release, mut list)| {
            // Stable: advisories with the same id keep the feed's order.
            list.sort_by(|a, b| a.0.id.cmp(&b.0.id));
            let mut out = vec![FORMAT];
            put_varint(&mut out, list.len());
            for (advisory, text) in list {
                put_str(&mut out, &advisory.id);
                out.push(status_code(&advisory.status));
                if let Some(fixed) = advisory.status.fixed_version() {
                    put_str(&mut out, fixed);
                }
                put_opt_str(&mut out, advisory.introduced.as_deref());
                put_opt_str(&mut out, advisory.last_affected.as_deref());
                out.push(advisory.severity as u8);
                put_opt_str(&mut out, advisory.severity_source.as_deref());
                put_opt_str(&mut out, advisory.details.title.as_deref());
                put_list(&mut out, &advisory.details.urls);
                put_varint(&mut out, text);
            }
            (release, out)
        })
        .collect();
    Packed {
        texts: texts_blob,
        releases,
    }
}

/// One advisory of a release blob, its strings borrowed from the blob.
struct Entry<'a> {
    id: &'a str,
    status: StatusRef<'a>,
    introduced: Option<&'a str>,
    last_affected: Option<&'a str>,
    severity: Severity,
    severity_source: Option<&'a str>,
    title: Option<&'a str>,
    /// Where the URL list starts, for the full decode.
    urls_at: usize,
    first_url: Option<&'a str>,
    text: usize,
}

/// The advisories of a release blob, in order.
fn entries(bytes: &[u8]) -> Result<Vec<Entry<'_>>, CorruptRow> {
    let mut reader = Reader::new(bytes)?;
    let count = reader.varint()?;
    let mut entries = Vec::with_capacity(count.min(bytes.len()));
    for _ in 0..count {
        let id = reader.str()?;
        let status = match reader.byte()? {
            0 => StatusRef::Fixed {
                fixed_version: reader.str()?,
            },
            1 => StatusRef::Affected,
            2 => StatusRef::WillNotFix,
            3 => StatusRef::FixDeferred,
            4 => StatusRef::EndOfLife,
            5 => StatusRef::NotAffected,
            code => {
                return Err(CorruptRow::Status {
                    id: id.to_string(),
                    status: code.to_string(),
                });
            }
        };
        let introduced = reader.opt_str()?;
        let last_affected = reader.opt_str()?;
        let severity = reader.byte()?;
        let severity =
            *Severity::ALL
                .get(usize::from(severity))
                .ok_or_else(|| CorruptRow::Severity {
                    id: id.to_string(),
                    code: severity,
                })?;
        let severity_source = reader.opt_str()?;
        let title = reader.opt_str()?;
        let urls_at = reader.at;
        let mut first_url = None;
        for n in 0..reader.varint()? {
            let url = reader.str()?;
            if n == 0 {
                first_url = Some(url);
            }
        }
        entries.push(Entry {
            id,
            status,
            introduced,
            last_affected,
            severity,
            severity_source,
            title,
            urls_at,
            first_url,
            text: reader.varint()?,
        });
    }
    reader.end()?;
    Ok(entries)
}

/// A release blob of `package`'s advisories for `distro` from `feed`, with
/// the package's texts blob, decoded; ordered by id. `Err` says what is damaged.
pub(super) fn decode(
    release: &[u8],
    texts: &[u8],
    distro: &Distro,
    package: &str,
    feed: &str,
) -> Result<Vec<FeedAdvisory>, CorruptRow> {
    let entries = entries(release)?;
    // Where each record's texts start.
    let mut reader = Reader::new(texts)?;
    let count = reader.varint()?;
    let mut text_at = Vec::with_capacity(count.min(texts.len()));
    for _ in 0..count {
        text_at.push(reader.at);
        let description = reader.varint()?;
        reader.take(description.saturating_sub(1))?;
        reader.skip_list()?;
    }
    reader.end()?;
    // Advisories of one record share its details, as the feed had them.
    let mut shared: Vec<Option<Arc<Details>>> = vec![None; text_at.len()];
    let mut found = Vec::with_capacity(entries.len());
    for entry in entries {
        let slot = shared
            .get_mut(entry.text)
            .ok_or_else(|| CorruptRow::Texts {
                id: entry.id.to_string(),
                index: entry.text,
                count: text_at.len(),
            })?;
        let details = match slot {
            Some(details) => Arc::clone(details),
            None => {
                let mut text = Reader {
                    bytes: texts,
                    at: text_at[entry.text],
                };
                let mut urls = Reader {
                    bytes: release,
                    at: entry.urls_at,
                };
                let details = Details {
                    title: entry.title.map(str::to_string),
                    description: text.opt_str()?.map(str::to_string),
                    aliases: text.list()?,
                    urls: urls.list()?,
                };
                Arc::clone(slot.insert(Arc::new(details)))
            }
        };
        found.push(FeedAdvisory {
            feed: feed.to_string(),
            advisory: Advisory {
                id: entry.id.to_string(),
                distro: distro.clone(),
                package: package.to_string(),
                status: entry.status.to_status(),
                introduced: entry.introduced.map(str::to_string),
                last_affected: entry.last_affected.map(str::to_string),
                severity: entry.severity,
                severity_source: entry.severity_source.map(str::to_string),
                details,
            },
        });
    }
    Ok(found)
}

/// One feed's advisories for one source package and release, still packed
/// as the store keeps them. [`PackedAdvisories::views`] reads what matching
/// needs in place; nothing else is decoded, and the long texts are not even
/// read from the store. For reading many packages often (a scanner);
/// [`crate::Store::advisories_for`] hands out the full model.
#[derive(Debug, Clone)]
pub struct PackedAdvisories {
    feed: String,
    bytes: Vec<u8>,
    /// The store's path, for errors.
    store: Arc<Path>,
}

impl PackedAdvisories {
    pub(super) fn new(feed: String, bytes: Vec<u8>, store: Arc<Path>) -> PackedAdvisories {
        PackedAdvisories { feed, bytes, store }
    }

    /// The feed these advisories come from.
    pub fn feed(&self) -> &str {
        &self.feed
    }

    /// The size of the packed form held, in bytes.
    pub fn packed_len(&self) -> usize {
        self.bytes.len()
    }

    /// The advisories, ordered by id (the feed's order among equal ids), as
    /// views borrowing from `self`.
    pub fn views(&self) -> Result<Vec<AdvisoryView<'_>>> {
        let entries = entries(&self.bytes).map_err(|source| Error::Corrupt {
            path: self.store.to_path_buf(),
            row: format!("feed {}", self.feed),
            source: Box::new(source),
        })?;
        Ok(entries
            .into_iter()
            .map(|entry| AdvisoryView {
                feed: &self.feed,
                id: entry.id,
                status: entry.status,
                introduced: entry.introduced,
                last_affected: entry.last_affected,
                severity: entry.severity,
                severity_source: entry.severity_source,
                title: entry.title,
                first_url: entry.first_url,
            })
            .collect())
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: usize) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_varint(out, text.len());
    out.extend_from_slice(text.as_bytes());
}

fn put_list(out: &mut Vec<u8>, items: &[String]) {
    put_varint(out, items.len());
    for item in items {
        put_str(out, item);
    }
}

fn put_opt_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => put_varint(out, 0),
        Some(text) => {
            put_varint(out, text.len() + 1);
            out.extend_from_slice(text.as_bytes());
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader past a blob's format byte.
    fn new(bytes: &'a [u8]) -> Result<Reader<'a>, CorruptRow> {
        let mut reader = Reader { bytes, at: 0 };
        let format = reader.byte()?;
        if format != FORMAT {
            return Err(CorruptRow::Format {
                found: format,
                expected: FORMAT,
            });
        }
        Ok(reader)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CorruptRow> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(CorruptRow::Truncated { at: self.at })?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, CorruptRow> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<usize, CorruptRow> {
        let mut value = 0usize;
        let mut shift = 0;
        loop {
            let Some(&byte) = self.bytes.get(self.at) else {
                return Err(CorruptRow::Truncated { at: self.at });
            };
            self.at += 1;
            let part = usize::from(byte & 0x7f);
            if shift >= usize::BITS || (part << shift) >> shift != part {
                return Err(CorruptRow::VarintTooLarge { at: self.at });
            }
            value |= part << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    fn utf8(&mut self, length: usize) -> Result<&'a str, CorruptRow> {
        let at = self.at;
        std::str::from_utf8(self.take(length)?).map_err(|_| CorruptRow::NotUtf8 { at })
    }

    fn str(&mut self) -> Result<&'a str, CorruptRow> {
        let length = self.varint()?;
        self.utf8(length)
    }

    fn opt_str(&mut self) -> Result<Option<&'a str>, CorruptRow> {
        match self.varint()? {
            0 => Ok(None),
            length => self.utf8(length - 1).map(Some),
        }
    }

    fn list(&mut self) -> Result<Vec<String>, CorruptRow> {
        let count = self.varint()?;
        let mut list = Vec::with_capacity(count.min(self.bytes.len() - self.at));
        for _ in 0..count {
            list.push(self.str()?.to_string());
        }
        Ok(list)
    }

    fn skip_list(&mut self) -> Result<(), CorruptRow> {
        for _ in 0..self.varint()? {
            let length = self.varint()?;
            self.take(length)?;
        }
        Ok(())
    }

    fn end(&self) -> Result<(), CorruptRow> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(CorruptRow::Trailing {
                count: self.bytes.len() - self.at,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Family;

    fn advisory(id: &str, release: &str, status: Status, details: &Arc<Details>) -> Advisory {
        Advisory {
            id: id.into(),
            distro: Distro::new(Family::Debian, release),
            package: "zlib".into(),
            status,
            introduced: None,
            last_affected: Some("1:1.2.13.dfsg-1".into()),
            severity: Severity::High,
            severity_source: Some("debian".into()),
            details: Arc::clone(details),
        }
    }

    fn release<'a>(packed: &'a Packed, name: &str) -> &'a [u8] {
        &packed.releases.iter().find(|(r, _)| *r == name).unwrap().1
    }

    fn store() -> Arc<Path> {
        Arc::from(Path::new("advisories.db"))
    }

    #[test]
    fn round_trips_per_release_in_id_order() {
        let shared = Arc::new(Details::new(
            Some("zlib: overflow"),
            Some("A long text. é"),
            vec!["DSA-1".into()],
            vec![
                "https://example.com/1".into(),
                "https://example.com/2".into(),
            ],
        ));
        let other = Arc::new(Details::default());
        let fixed = Status::Fixed {
            fixed_version: "1:1.3-1".into(),
        };
        let all = [
            advisory("CVE-2", "bookworm", fixed.clone(), &shared),
            advisory("CVE-2", "sid", Status::NotAffected, &shared),
            advisory("CVE-1", "bookworm", Status::WillNotFix, &other),
            // Same id twice in one release (two ranges): feed order is kept.
            advisory("CVE-2", "bookworm", Status::Affected, &other),
        ];
        let packed = encode(&all.iter().collect::<Vec<_>>());
        let names: Vec<&str> = packed.releases.iter().map(|(r, _)| *r).collect();
        assert_eq!(names, ["bookworm", "sid"]);
        let bookworm = Distro::new(Family::Debian, "bookworm");
        let found = decode(
            release(&packed, "bookworm"),
            &packed.texts,
            &bookworm,
            "zlib",
            "tracker",
        )
        .unwrap();
        let back: Vec<&Advisory> = found.iter().map(|f| &f.advisory).collect();
        assert_eq!(back, [&all[2], &all[0], &all[3]]);
        assert!(found.iter().all(|f| f.feed == "tracker"));
        assert!(
            Arc::ptr_eq(&found[0].advisory.details, &found[2].advisory.details),
            "one record's advisories share its details"
        );
        let sid = Distro::new(Family::Debian, "sid");
        let sid = decode(release(&packed, "sid"), &packed.texts, &sid, "zlib", "t").unwrap();
        assert_eq!(sid.len(), 1);
        assert_eq!(sid[0].advisory, all[1]);
    }

    #[test]
    fn views_read_what_the_decoded_advisories_hold() {
        let shared = Arc::new(Details::new(
            Some("zlib: overflow"),
            Some("A long text."),
            vec!["DSA-1".into()],
            vec![
                "https://example.com/1".into(),
                "https://example.com/2".into(),
            ],
        ));
        let bare = Arc::new(Details::default());
        let all = [
            advisory(
                "CVE-2",
                "bookworm",
                Status::Fixed {
                    fixed_version: "1:1.3-1".into(),
                },
                &shared,
            ),
            advisory("CVE-1", "bookworm", Status::NotAffected, &bare),
        ];
        let packed = encode(&all.iter().collect::<Vec<_>>());
        let bookworm = Distro::new(Family::Debian, "bookworm");
        let bytes = release(&packed, "bookworm");
        let decoded = decode(bytes, &packed.texts, &bookworm, "zlib", "tracker").unwrap();
        let packed = PackedAdvisories::new("tracker".into(), bytes.to_vec(), store());
        assert_eq!(packed.feed(), "tracker");
        assert_eq!(packed.packed_len(), bytes.len());
        let views = packed.views().unwrap();
        let expected: Vec<AdvisoryView> = decoded.iter().map(AdvisoryView::from).collect();
        assert_eq!(views, expected);
        assert_eq!(views[1].first_url, Some("https://example.com/1"));
        assert_eq!(views[1].title, Some("zlib: overflow"));
    }

    #[test]
    fn damaged_blobs_are_errors_not_panics() {
        let details = Arc::new(Details::new(Some("t"), Some("d"), vec![], vec![]));
        let one = [advisory("CVE-1", "bookworm", Status::Affected, &details)];
        let packed = encode(&one.iter().collect::<Vec<_>>());
        let bookworm = Distro::new(Family::Debian, "bookworm");
        let bytes = release(&packed, "bookworm");
        for cut in 0..bytes.len() {
            let cut = &bytes[..cut];
            assert!(decode(cut, &packed.texts, &bookworm, "zlib", "t").is_err());
            let view = PackedAdvisories::new("t".into(), cut.to_vec(), store());
            assert!(view.views().is_err());
        }
        for cut in 0..packed.texts.len() {
            let texts = &packed.texts[..cut];
            assert!(
                decode(bytes, texts, &bookworm, "zlib", "t").is_err(),
                "{cut}"
            );
        }
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        assert!(decode(&trailing, &packed.texts, &bookworm, "zlib", "t").is_err());
        let mut format = bytes.to_vec();
        format[0] = 9;
        assert!(decode(&format, &packed.texts, &bookworm, "zlib", "t").is_err());
    }
}
