//! The dpkg database: `var/lib/dpkg/status` and distroless `status.d/` files
//! (Debian control format: paragraphs of `Field: value` lines separated by
//! blank lines, continuation lines starting with a space or tab).
//!
//! Owns turning those bytes into installed packages: name, version,
//! architecture and source (`Source: name (version)`; without the
//! parenthesis the source version is the binary version; without the field
//! the source is the binary package itself). Never reads files itself and
//! never guesses: a structurally broken file is an error naming the line.
//!
//! Text encoding: the fields drydock uses (`Package`, `Version`,
//! `Architecture`, `Source`, `Status`) must be UTF-8 and single-line, or the
//! file is refused with an error naming the line. Every other field
//! (descriptions, maintainer names, conffiles) is never decoded, so invalid
//! UTF-8 there (old Latin-1 descriptions) is accepted silently.
//!
//! Installed means: the third word of `Status` is one of `installed`,
//! `half-installed`, `unpacked`, `half-configured`, `triggers-awaited`,
//! `triggers-pending` (the package's files are on disk whatever the first
//! two words say, so `hold ok installed` and `deinstall ok installed` count);
//! `config-files` and `not-installed` do not. In `status.d` a paragraph
//! without `Status` counts as installed, as Google's distroless images write
//! them; in `status` it is an error.

use crate::error::{EntryError, Error, Result};
use crate::package::{Package, PackageKind};
use crate::version::dpkg::Version;

/// Longest value accepted for a field drydock reads.
pub const MAX_FIELD_LEN: usize = 4096;

/// Which kind of dpkg database file is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFile {
    /// `var/lib/dpkg/status`: every paragraph has a `Status` field.
    Status,
    /// A file of `var/lib/dpkg/status.d/`: `Status` is optional.
    StatusD,
}

/// The installed packages of one dpkg database file. `file` names it in errors.
pub fn parse_status(file: &str, bytes: &[u8], kind: StatusFile) -> Result<Vec<Package>> {
    let mut packages = Vec::new();
    for paragraph in paragraphs(file, bytes)? {
        if let Some(package) = package(file, &paragraph, kind)? {
            packages.push(package);
        }
    }
    Ok(packages)
}

/// One field of a paragraph: `value` spans the first line's value and any
/// continuation lines.
#[derive(Debug)]
pub struct Field<'a> {
    /// The field's name as written (matched case-insensitively).
    pub name: &'a [u8],
    /// The raw value, untrimmed, continuation lines included.
    pub value: &'a [u8],
    /// The 1-based line the field starts on.
    pub line: usize,
    /// Offset of `value` in the file's bytes.
    start: usize,
}

/// A paragraph and the line it starts on (1-based).
#[derive(Debug)]
pub struct Paragraph<'a> {
    /// The 1-based line of its first field.
    pub line: usize,
    /// Its fields in file order.
    pub fields: Vec<Field<'a>>,
}

impl<'a> Paragraph<'a> {
    fn get(&self, name: &str) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// A single-line UTF-8 field, trimmed, of at most [`MAX_FIELD_LEN`] bytes; `None` when absent.
    pub fn text(&self, file: &str, name: &str) -> Result<Option<&'a str>> {
        self.text_within(file, name, MAX_FIELD_LEN)
    }

    /// Like [`Paragraph::text`] with another length limit (repository
    /// indexes carry longer relationship fields than a status file's names).
    pub fn text_within(&self, file: &str, name: &str, max_len: usize) -> Result<Option<&'a str>> {
        let Some(field) = self.get(name) else {
            return Ok(None);
        };
        let value = field.value.trim_ascii();
        if value.len() > max_len {
            return Err(Error::format(
                file,
                field.line,
                format!(
                    "field {name} is {} bytes, more than the {max_len} allowed; the file is corrupt",
                    value.len()
                ),
            ));
        }
        if value.contains(&b'\n') {
            return Err(Error::format(
                file,
                field.line,
                format!("field {name} must be a single line"),
            ));
        }
        std::str::from_utf8(value).map(Some).map_err(|e| {
            Error::format(
                file,
                field.line,
                format!("field {name} is not valid UTF-8 ({e}); the database is corrupt"),
            )
        })
    }
}

/// Splits control-format bytes into paragraphs. Accepts CRLF line ends;
/// `#` lines between fields are comments.
pub fn paragraphs<'a>(file: &str, bytes: &'a [u8]) -> Result<Vec<Paragraph<'a>>> {
    let mut paragraphs = Vec::new();
    let mut current: Option<Paragraph<'a>> = None;
    let mut offset = 0;
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = index + 1;
        let start = offset;
        offset += raw.len() + 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.trim_ascii().is_empty() {
            paragraphs.extend(current.take());
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            let field = current
                .as_mut()
                .and_then(|p| p.fields.last_mut())
                .ok_or_else(|| {
                    Error::format(
                        file,
                        line_no,
                        "continuation line (starting with a space) outside a field",
                    )
                })?;
            field.value = &bytes[field.start..start + line.len()];
            continue;
        }
        if line[0] == b'#' {
            continue;
        }
        let colon = line.iter().position(|&b| b == b':').ok_or_else(|| {
            Error::format(
                file,
                line_no,
                format!(
                    "expected \"Field: value\", found {:?}",
                    String::from_utf8_lossy(&line[..line.len().min(80)])
                ),
            )
        })?;
        let name = &line[..colon];
        if name.is_empty() || name.iter().any(|b| b.is_ascii_whitespace()) {
            return Err(Error::format(
                file,
                line_no,
                "field name is empty or contains whitespace",
            ));
        }
        let paragraph = current.get_or_insert_with(|| Paragraph {
            line: line_no,
            fields: Vec::new(),
        });
        if paragraph
            .fields
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case(name))
        {
            return Err(Error::format(
                file,
                line_no,
                format!(
                    "field {} appears twice in one paragraph",
                    String::from_utf8_lossy(name)
                ),
            ));
        }
        let value_start = start + colon + 1;
        paragraph.fields.push(Field {
            name,
            value: &bytes[value_start..start + line.len()],
            line: line_no,
            start: value_start,
        });
    }
    paragraphs.extend(current);
    Ok(paragraphs)
}

fn package(file: &str, paragraph: &Paragraph, kind: StatusFile) -> Result<Option<Package>> {
    let name = paragraph.text(file, "Package")?.ok_or_else(|| {
        Error::format(
            file,
            paragraph.line,
            "paragraph has no Package field; the database is corrupt",
        )
    })?;
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(Error::format(
            file,
            paragraph.line,
            format!("invalid package name {name:?}"),
        ));
    }
    let package_error = |source: EntryError| Error::Package {
        file: file.to_string(),
        package: name.to_string(),
        source,
    };
    match (paragraph.text(file, "Status")?, kind) {
        (Some(status), _) => {
            if !files_on_disk(status).map_err(package_error)? {
                return Ok(None);
            }
        }
        (None, StatusFile::StatusD) => {}
        (None, StatusFile::Status) => {
            return Err(package_error(EntryError::NoStatus));
        }
    }
    let version = paragraph.text(file, "Version")?.ok_or_else(|| {
        package_error(EntryError::NoVersion {
            field: "Version field",
        })
    })?;
    Version::parse(version).map_err(|e| package_error(EntryError::Version(Box::new(e))))?;
    let architecture = paragraph.text(file, "Architecture")?.unwrap_or("");
    let (source_name, source_version) = match paragraph.text(file, "Source")? {
        Some(source) => parse_source(source, version).map_err(package_error)?,
        None => (name, version),
    };
    Ok(Some(Package {
        name: name.to_string(),
        version: version.to_string(),
        architecture: architecture.to_string(),
        source_name: source_name.to_string(),
        source_version: source_version.to_string(),
        kind: PackageKind::Deb,
        layer: None,
    }))
}

/// Whether a `Status: want flag status` value means the package's files are on disk.
fn files_on_disk(status: &str) -> Result<bool, EntryError> {
    let words: Vec<&str> = status.split_ascii_whitespace().collect();
    let [_want, _flag, state] = words[..] else {
        return Err(EntryError::StatusWords(status.to_string()));
    };
    match state {
        "installed" | "half-installed" | "unpacked" | "half-configured" | "triggers-awaited"
        | "triggers-pending" => Ok(true),
        "config-files" | "not-installed" => Ok(false),
        other => Err(EntryError::UnknownState(other.to_string())),
    }
}

/// `Source: name` or `Source: name (version)`.
fn parse_source<'a>(source: &'a str, version: &'a str) -> Result<(&'a str, &'a str), EntryError> {
    let (name, rest) = source
        .split_once(char::is_whitespace)
        .map_or((source, ""), |(n, r)| (n, r.trim()));
    if rest.is_empty() {
        return Ok((name, version));
    }
    let source_version = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .map(str::trim)
        .ok_or_else(|| EntryError::SourceSyntax(source.to_string()))?;
    Version::parse(source_version).map_err(|e| EntryError::SourceVersion(Box::new(e)))?;
    Ok((name, source_version))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: libssl3\r\nStatus: install ok installed\r\nPriority: optional\r\nArchitecture: amd64\r\nSource: openssl (3.0.11-1~deb12u2)\r\nVersion: 3.0.11-1~deb12u2+b1\r\nDescription: Secure Sockets Layer toolkit\r\n shared libraries\r\n .\r\n more\r\n\r\n\
Package: base-files\nStatus: hold ok installed\nArchitecture: amd64\nVersion: 12.4+deb12u5\n\n\n\
Package: removed\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
Package: tzdata\nStatus: install ok installed\nArchitecture: all\nSource: tzdata-legacy\nVersion: 2024a-0+deb12u1\n";

    #[test]
    fn reads_installed_packages_and_sources() {
        let packages = parse_status("status", STATUS.as_bytes(), StatusFile::Status).unwrap();
        let summary: Vec<_> = packages
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.version.as_str(),
                    p.architecture.as_str(),
                    p.source_name.as_str(),
                    p.source_version.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "libssl3",
                    "3.0.11-1~deb12u2+b1",
                    "amd64",
                    "openssl",
                    "3.0.11-1~deb12u2"
                ),
                (
                    "base-files",
                    "12.4+deb12u5",
                    "amd64",
                    "base-files",
                    "12.4+deb12u5"
                ),
                (
                    "tzdata",
                    "2024a-0+deb12u1",
                    "all",
                    "tzdata-legacy",
                    "2024a-0+deb12u1"
                ),
            ]
        );
    }

    #[test]
    fn status_d_entries_without_status_are_installed() {
        let entry =
            b"Package: libc6\nVersion: 2.36-9+deb12u7\nArchitecture: amd64\nSource: glibc\n";
        let packages = parse_status("status.d/libc6", entry, StatusFile::StatusD).unwrap();
        assert_eq!(packages[0].source_name, "glibc");
        assert_eq!(packages[0].source_version, "2.36-9+deb12u7");
        let err = parse_status("status", entry, StatusFile::Status).unwrap_err();
        assert!(
            crate::error::chain(&err).contains("libc6: has no Status"),
            "{err}"
        );
    }

    #[test]
    fn ignores_invalid_utf8_outside_the_fields_it_reads() {
        let entry = b"Package: old\nStatus: install ok installed\nMaintainer: J\xe9r\xf4me\nVersion: 1.0\nDescription: caf\xe9\n";
        assert_eq!(
            parse_status("status", entry, StatusFile::Status)
                .unwrap()
                .len(),
            1
        );
        let bad = b"Package: old\nStatus: install ok installed\nVersion: 1.0\xff\n";
        let err = parse_status("status", bad, StatusFile::Status).unwrap_err();
        assert!(
            crate::error::chain(&err).contains("line 3: field Version is not valid UTF-8"),
            "{err}"
        );
    }

    #[test]
    fn refuses_broken_files_with_the_line() {
        let cases: &[(&[u8], &str)] = &[
            (b" continuation first\n", "line 1: continuation line"),
            (
                b"Package: a\nno colon here\n",
                "line 2: expected \"Field: value\"",
            ),
            (
                b"Package: a\nPackage: b\n",
                "line 2: field Package appears twice",
            ),
            (
                b"Version: 1.0\nStatus: install ok installed\n",
                "line 1: paragraph has no Package",
            ),
            (
                b"Package: a\nStatus: install ok\nVersion: 1\n",
                "does not have the three words",
            ),
            (
                b"Package: a\nStatus: install ok weird\nVersion: 1\n",
                "unknown state",
            ),
            (
                b"Package: a\nStatus: install ok installed\n",
                "a: has no Version",
            ),
            (
                b"Package: a\nStatus: install ok installed\nVersion: x1\n",
                "must start with a digit",
            ),
            (
                b"Package: a\nStatus: install ok installed\nVersion: 1\nSource: b (1\n",
                "is not \"name\"",
            ),
            (
                b"Package: a\nStatus: install ok installed\nVersion: 1\n more\n",
                "single line",
            ),
            (b": empty\n", "line 1: field name is empty"),
        ];
        for (bytes, expected) in cases {
            let err = parse_status("status", bytes, StatusFile::Status).unwrap_err();
            assert!(
                crate::error::chain(&err).contains(expected),
                "{expected}: {err}"
            );
        }
        let huge = format!(
            "Package: a\nStatus: install ok installed\nVersion: 1{}\n",
            "0".repeat(MAX_FIELD_LEN)
        );
        let err = parse_status("status", huge.as_bytes(), StatusFile::Status).unwrap_err();
        assert!(
            crate::error::chain(&err).contains("more than the 4096 allowed"),
            "{err}"
        );
    }

    #[test]
    fn truncated_files_never_panic() {
        for end in 0..STATUS.len() {
            let _ = parse_status("status", &STATUS.as_bytes()[..end], StatusFile::Status);
        }
    }
}
