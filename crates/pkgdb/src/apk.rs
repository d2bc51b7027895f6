//! The apk database: `lib/apk/db/installed` (Alpine, Wolfi, Chainguard).
//!
//! Owns turning that file into installed packages. The format is paragraphs
//! of `X:value` lines (one letter per field) separated by blank lines; drydock
//! reads `P` (name), `V` (version), `A` (architecture) and `o` (origin, the
//! source package; its version is the binary's). Every paragraph of the file
//! is an installed package. The letters drydock reads must be UTF-8; other
//! lines (file lists, checksums) are never decoded. Never reads files itself.

use crate::dpkg::MAX_FIELD_LEN;
use crate::error::{EntryError, Error, Result};
use crate::package::{Package, PackageKind};
use crate::version::apk::Version;

/// The installed packages of an apk `installed` file. `file` names it in errors.
pub fn parse_installed(file: &str, bytes: &[u8]) -> Result<Vec<Package>> {
    let mut packages = Vec::new();
    let mut entry = Entry::default();
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = index + 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            if let Some(package) = entry.finish(file)? {
                packages.push(package);
            }
            continue;
        }
        let (key, value) = match line {
            [key, b':', value @ ..] => (*key, value),
            _ => {
                return Err(Error::format(
                    file,
                    line_no,
                    format!(
                        "expected \"X:value\", found {:?}; the apk database is corrupt",
                        String::from_utf8_lossy(&line[..line.len().min(80)])
                    ),
                ));
            }
        };
        let slot = match key {
            b'P' => &mut entry.name,
            b'V' => &mut entry.version,
            b'A' => &mut entry.architecture,
            b'o' => &mut entry.origin,
            _ => continue,
        };
        if value.len() > MAX_FIELD_LEN {
            return Err(Error::format(
                file,
                line_no,
                format!(
                    "field {} is {} bytes, more than the {MAX_FIELD_LEN} allowed",
                    char::from(key),
                    value.len()
                ),
            ));
        }
        let text = std::str::from_utf8(value).map_err(|e| {
            Error::format(
                file,
                line_no,
                format!("field {} is not valid UTF-8 ({e})", char::from(key)),
            )
        })?;
        if slot.is_some() {
            return Err(Error::format(
                file,
                line_no,
                format!("field {} appears twice in one entry", char::from(key)),
            ));
        }
        *slot = Some((text.to_string(), line_no));
        entry.line.get_or_insert(line_no);
    }
    packages.extend(entry.finish(file)?);
    Ok(packages)
}

#[derive(Default)]
struct Entry {
    line: Option<usize>,
    name: Option<(String, usize)>,
    version: Option<(String, usize)>,
    architecture: Option<(String, usize)>,
    origin: Option<(String, usize)>,
}

impl Entry {
    /// The package of the paragraph just read, and a fresh entry.
    fn finish(&mut self, file: &str) -> Result<Option<Package>> {
        let entry = std::mem::take(self);
        let Some(line) = entry.line else {
            return Ok(None);
        };
        let (name, _) = entry
            .name
            .ok_or_else(|| Error::format(file, line, "entry has no P: (package name) line"))?;
        let (version, _) = entry.version.ok_or_else(|| Error::Package {
            file: file.to_string(),
            package: name.clone(),
            source: EntryError::NoVersion {
                field: "V: (version) line",
            },
        })?;
        Version::parse(&version).map_err(|e| Error::Package {
            file: file.to_string(),
            package: name.clone(),
            source: EntryError::Version(Box::new(e)),
        })?;
        let source_name = entry.origin.map_or_else(|| name.clone(), |(o, _)| o);
        Ok(Some(Package {
            source_version: version.clone(),
            architecture: entry.architecture.map(|(a, _)| a).unwrap_or_default(),
            name,
            version,
            source_name,
            kind: PackageKind::Apk,
            layer: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTALLED: &str = "C:Q1abc=\nP:musl\nV:1.2.5-r0\nA:x86_64\nS:383152\nI:622592\nT:the musl c library\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\n\nC:Q1def=\nP:libcrypto3\nV:3.3.2-r1\nA:x86_64\no:openssl\n\nP:alpine-baselayout-data\nV:3.6.5-r0\nA:x86_64\n";

    #[test]
    fn reads_packages_and_origins() {
        let packages = parse_installed("installed", INSTALLED.as_bytes()).unwrap();
        let summary: Vec<_> = packages
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.version.as_str(),
                    p.architecture.as_str(),
                    p.source_name.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("musl", "1.2.5-r0", "x86_64", "musl"),
                ("libcrypto3", "3.3.2-r1", "x86_64", "openssl"),
                (
                    "alpine-baselayout-data",
                    "3.6.5-r0",
                    "x86_64",
                    "alpine-baselayout-data"
                ),
            ]
        );
        assert_eq!(packages[1].source_version, "3.3.2-r1");
    }

    #[test]
    fn refuses_broken_entries() {
        let cases: &[(&[u8], &str)] = &[
            (b"P:a\nV:1.0\ngarbage\n", "line 3: expected \"X:value\""),
            (b"V:1.0\n", "line 1: entry has no P:"),
            (b"P:a\n", "package a: has no V:"),
            (b"P:a\nV:1.0-x\n", "invalid apk version"),
            (b"P:a\nP:b\nV:1\n", "line 2: field P appears twice"),
            (b"P:\xff\nV:1\n", "line 1: field P is not valid UTF-8"),
        ];
        for (bytes, expected) in cases {
            let err = parse_installed("installed", bytes).unwrap_err();
            assert!(
                crate::error::chain(&err).contains(expected),
                "{expected}: {err}"
            );
        }
        for end in 0..INSTALLED.len() {
            let _ = parse_installed("installed", &INSTALLED.as_bytes()[..end]);
        }
    }
}
