//! Debian changelogs, as packages ship them in `usr/share/doc/<pkg>/`.
//!
//! Owns parsing `changelog.Debian` text into entries (source, version,
//! distributions, urgency, the CVE ids named in the changes) and finding
//! the changelog inside a `.deb`, whose doc directory may be a symlink to a
//! sibling package's. The security-repository feed reads these to learn
//! which CVEs an upload fixed. Parsing is pure; finding reads the `.deb`.

use std::io::Read;

use crate::deb::{DebError, DebFile};

/// A changelog larger than this, decompressed, is refused.
pub const MAX_CHANGELOG_BYTES: u64 = 64 * 1024 * 1024;

/// Changelog text that does not follow the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("changelog line {line}: {message}")]
pub struct ChangelogError {
    /// The 1-based line.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

/// One entry of a Debian changelog: one upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogEntry {
    /// The source package it was uploaded as.
    pub source: String,
    /// The version uploaded.
    pub version: String,
    /// The distributions it was uploaded to (`bookworm-security`).
    pub distributions: Vec<String>,
    /// `urgency=` as written (`high`, `medium`, `low`, `emergency`, `critical`), lowercased.
    pub urgency: Option<String>,
    /// CVE ids named in the entry's changes, sorted, without duplicates.
    pub cves: Vec<String>,
    /// The change lines, as written.
    pub changes: String,
}

/// Parses `source (version) dist1 dist2; urgency=high` into its parts.
fn parse_header(line: &str) -> Option<(String, String, Vec<String>, Option<String>)> {
    let (name, rest) = line.split_once(" (")?;
    let valid_name = !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.')
        });
    if !valid_name {
        return None;
    }
    let (version, rest) = rest.split_once(')')?;
    if version.is_empty() || version.contains(char::is_whitespace) {
        return None;
    }
    let (distributions, keyvalues) = rest.split_once(';').unwrap_or((rest, ""));
    let distributions: Vec<String> = distributions
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if distributions.is_empty() {
        return None;
    }
    let urgency = keyvalues.split(',').find_map(|kv| {
        let (key, value) = kv.trim().split_once('=')?;
        key.eq_ignore_ascii_case("urgency").then(|| {
            value
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        })
    });
    Some((
        name.to_string(),
        version.to_string(),
        distributions,
        urgency,
    ))
}

/// Every `CVE-YYYY-NNNN…` in `text`, sorted and unique.
pub fn cve_ids(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut start = 0;
    while let Some(position) = text[start..].find("CVE-") {
        let at = start + position;
        let year = &bytes[at + 4..(at + 8).min(bytes.len())];
        let digits_from = at + 9;
        if year.len() == 4
            && year.iter().all(u8::is_ascii_digit)
            && bytes.get(at + 8) == Some(&b'-')
        {
            let digits = bytes[digits_from.min(bytes.len())..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let boundary_before = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
            if (4..=7).contains(&digits) && boundary_before {
                found.push(text[at..digits_from + digits].to_string());
            }
        }
        start = at + 4;
    }
    found.sort();
    found.dedup();
    found
}

/// Parses a changelog, newest entry first. Text before the first header
/// and unparseable trailer lines (old changelogs end with Emacs settings)
/// are ignored; a change line outside any entry is an error.
pub fn parse(text: &str) -> Result<Vec<ChangelogEntry>, ChangelogError> {
    let mut entries: Vec<ChangelogEntry> = Vec::new();
    let mut open = false;
    for (index, line) in text.lines().enumerate() {
        if let Some((source, version, distributions, urgency)) = parse_header(line) {
            entries.push(ChangelogEntry {
                source,
                version,
                distributions,
                urgency,
                cves: Vec::new(),
                changes: String::new(),
            });
            open = true;
            continue;
        }
        if line.starts_with(" -- ") {
            if !open {
                return Err(ChangelogError {
                    line: index + 1,
                    message: "trailer line without an entry".to_string(),
                });
            }
            open = false;
            continue;
        }
        if open && let Some(entry) = entries.last_mut() {
            entry.changes.push_str(line);
            entry.changes.push('\n');
        } else if line.starts_with("  ") && entries.is_empty() {
            return Err(ChangelogError {
                line: index + 1,
                message: "change line before the first `source (version) dist; urgency=…` header"
                    .to_string(),
            });
        }
    }
    for entry in &mut entries {
        entry.cves = cve_ids(&entry.changes);
    }
    Ok(entries)
}

/// Where a binary package keeps its changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangelogLocation {
    /// The decompressed changelog text.
    Found(String),
    /// The changelog is in this doc directory (a sibling package's):
    /// `usr/share/doc/<binary>` is a symlink to it, or the changelog file
    /// itself is a symlink into it (`changelog.Debian.gz ->
    /// ../libpython3-stdlib/changelog.Debian.gz` gives `libpython3-stdlib`).
    Elsewhere(String),
    /// The package has no changelog.
    Missing,
}

/// Reads the changelog of `binary` from its `.deb`: `changelog.Debian.gz`,
/// else `changelog.gz` (native packages), following nothing outside the package.
pub fn read_from_deb(deb: &DebFile, binary: &str) -> Result<ChangelogLocation, DebError> {
    let doc_dir = format!("usr/share/doc/{binary}");
    let debian = format!("{doc_dir}/changelog.Debian.gz");
    let native = format!("{doc_dir}/changelog.gz");
    let mut debian_text = None;
    let mut native_text = None;
    let mut symlink = None;
    let read_gz = |entry: &mut dyn Read, path: &str| -> Result<String, DebError> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(entry)
            .take(MAX_CHANGELOG_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|source| DebError::Read {
                path: deb.path().to_path_buf(),
                what: path.to_string(),
                source,
            })?;
        if text.len() as u64 > MAX_CHANGELOG_BYTES {
            return Err(DebError::Format {
                path: deb.path().to_path_buf(),
                message: format!("{path} is larger than {MAX_CHANGELOG_BYTES} bytes"),
            });
        }
        Ok(text)
    };
    deb.walk_data(|path, entry| {
        let kind = entry.header().entry_type();
        if path == doc_dir && kind.is_symlink() {
            let target = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned());
            symlink = target;
        } else if path == debian && kind.is_file() {
            debian_text = Some(read_gz(entry, path)?);
        } else if path == native && kind.is_file() {
            native_text = Some(read_gz(entry, path)?);
        } else if (path == debian || path == native) && kind.is_symlink() {
            let target = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned());
            symlink = symlink.take().or(target.and_then(|t| linked_doc_dir(&t)));
        }
        Ok(debian_text.is_none())
    })?;
    Ok(match (debian_text.or(native_text), symlink) {
        (Some(text), _) => ChangelogLocation::Found(text),
        (None, Some(target)) => ChangelogLocation::Elsewhere(target),
        (None, None) => ChangelogLocation::Missing,
    })
}

/// The doc directory a symlinked changelog points into: `../<dir>/changelog…`
/// or `/usr/share/doc/<dir>/changelog…`; anything else is not followed.
fn linked_doc_dir(target: &str) -> Option<String> {
    let dir = target
        .strip_prefix("../")
        .or_else(|| target.strip_prefix("/usr/share/doc/"))?
        .split_once('/')?
        .0;
    (!dir.is_empty() && dir != ".." && dir != ".").then(|| dir.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
openssl (3.0.17-1~deb12u3) bookworm-security; urgency=medium

  * CVE-2025-9230: Fix incorrect check in OpenSSL's CMS (closes: #1116378).
  * Fix CVE-2025-9232, out-of-bounds read in HTTP client no_proxy handling.
    Also CVE-2025-9230 again.

 -- Sebastian Andrzej Siewior <sebastian@breakpoint.cc>  Tue, 30 Sep 2025 21:39:53 +0200

openssl (3.0.17-1~deb12u2) bookworm; urgency=HIGH, binary-only=yes

  * Rebuild.

 -- Someone <a@b.c>  Mon, 01 Sep 2025 00:00:00 +0000

Local variables:
mode: debian-changelog
End:
";

    #[test]
    fn parses_entries_urgencies_and_cves() {
        let entries = parse(SAMPLE).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].source, "openssl");
        assert_eq!(entries[0].version, "3.0.17-1~deb12u3");
        assert_eq!(entries[0].distributions, ["bookworm-security"]);
        assert_eq!(entries[0].urgency.as_deref(), Some("medium"));
        assert_eq!(entries[0].cves, ["CVE-2025-9230", "CVE-2025-9232"]);
        assert_eq!(entries[1].urgency.as_deref(), Some("high"));
        assert!(entries[1].cves.is_empty());
    }

    #[test]
    fn finds_only_well_formed_cve_ids() {
        assert_eq!(
            cve_ids("CVE-2024-1 XCVE-2024-12345 (CVE-2023-1234567) CVE-2022-12345678"),
            ["CVE-2023-1234567"]
        );
        assert_eq!(cve_ids("CVE-"), Vec::<String>::new());
        assert_eq!(cve_ids("trailing CVE-2024-"), Vec::<String>::new());
    }

    #[test]
    fn symlinked_changelogs_name_the_sibling_doc_dir() {
        let dir = |t: &str| linked_doc_dir(t);
        assert_eq!(
            dir("../libpython3-stdlib/changelog.Debian.gz").as_deref(),
            Some("libpython3-stdlib")
        );
        assert_eq!(
            dir("/usr/share/doc/libfoo1/changelog.gz").as_deref(),
            Some("libfoo1")
        );
        assert_eq!(dir("changelog.gz"), None);
        assert_eq!(dir("../../etc/passwd"), None);
        assert_eq!(dir("/etc/foo/changelog.gz"), None);
    }

    #[test]
    fn rejects_changes_without_a_header_and_odd_headers() {
        assert!(parse("  * orphan change\n").is_err());
        assert!(parse(" -- Trailer <x>  date\n").is_err());
        assert_eq!(
            parse("Not A Header (1.0) x; urgency=low\n").unwrap(),
            Vec::new()
        );
        assert_eq!(parse("").unwrap(), Vec::new());
    }
}
