//! `Packages` indexes: what a suite offers, per binary package.
//!
//! Owns turning a verified, decompressed index into entries carrying what
//! planning and downloading need: name, version, architecture, source
//! (`Source: name (version)`, defaulting to the binary's own name and
//! version), the pool file with its SHA256 and size, and the relationship
//! fields as written. Paragraph splitting is `pkgdb`'s (one parser for the
//! Debian control format); relationship fields are not interpreted here.

use pkgdb::dpkg::{Paragraph, paragraphs};

/// Relationship fields of metapackages can be long; the file is still refused past this.
const MAX_INDEX_FIELD_LEN: usize = 256 * 1024;

/// One binary package as an index lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndexPackage {
    /// `Package`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Architecture` (`amd64`, `all`).
    pub architecture: String,
    /// The source package's name (`Source`, else the binary's own).
    pub source_name: String,
    /// The source package's version (`Source: name (version)`, else the binary's).
    pub source_version: String,
    /// `Filename`: the pool path, relative to the archive's base URL.
    pub filename: String,
    /// `Size` of the pool file in bytes.
    pub size: u64,
    /// `SHA256` of the pool file, lowercase hex.
    pub sha256: String,
    /// `Multi-Arch` as written.
    pub multi_arch: Option<String>,
    /// `Depends` as written.
    pub depends: Option<String>,
    /// `Pre-Depends` as written.
    pub pre_depends: Option<String>,
    /// `Provides` as written.
    pub provides: Option<String>,
    /// `Conflicts` as written.
    pub conflicts: Option<String>,
    /// `Breaks` as written.
    pub breaks: Option<String>,
    /// `Replaces` as written.
    pub replaces: Option<String>,
}

fn field(file: &str, paragraph: &Paragraph, name: &str) -> Result<Option<String>, pkgdb::Error> {
    Ok(paragraph
        .text_within(file, name, MAX_INDEX_FIELD_LEN)?
        .map(str::to_string))
}

fn required(file: &str, paragraph: &Paragraph, name: &str) -> Result<String, pkgdb::Error> {
    field(file, paragraph, name)?.ok_or_else(|| {
        pkgdb::Error::format(
            file,
            paragraph.line,
            format!("index entry has no {name} field"),
        )
    })
}

/// Parses an index. `file` names it in errors (e.g. `bookworm-security main/binary-amd64/Packages`).
pub fn parse(file: &str, bytes: &[u8]) -> Result<Vec<IndexPackage>, pkgdb::Error> {
    paragraphs(file, bytes)?
        .iter()
        .map(|paragraph| entry(file, paragraph))
        .collect()
}

fn entry(file: &str, paragraph: &Paragraph) -> Result<IndexPackage, pkgdb::Error> {
    let name = required(file, paragraph, "Package")?;
    let version = required(file, paragraph, "Version")?;
    let (source_name, source_version) = match field(file, paragraph, "Source")? {
        None => (name.clone(), version.clone()),
        Some(source) => match source.split_once('(') {
            Some((source_name, rest)) => (
                source_name.trim().to_string(),
                rest.trim_end_matches(')').trim().to_string(),
            ),
            None => (source.trim().to_string(), version.clone()),
        },
    };
    let filename = required(file, paragraph, "Filename")?;
    if filename.split('/').any(|c| c == ".." || c.is_empty()) {
        return Err(pkgdb::Error::format(
            file,
            paragraph.line,
            format!("Filename {filename:?} leaves the archive"),
        ));
    }
    let size = required(file, paragraph, "Size")?;
    let size = size.parse().map_err(|_| {
        pkgdb::Error::format(
            file,
            paragraph.line,
            format!("Size {size:?} is not a number"),
        )
    })?;
    let sha256 = required(file, paragraph, "SHA256")?;
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(pkgdb::Error::format(
            file,
            paragraph.line,
            format!("SHA256 {sha256:?} of {name} is not 64 hex digits"),
        ));
    }
    Ok(IndexPackage {
        architecture: required(file, paragraph, "Architecture")?,
        multi_arch: field(file, paragraph, "Multi-Arch")?,
        depends: field(file, paragraph, "Depends")?,
        pre_depends: field(file, paragraph, "Pre-Depends")?,
        provides: field(file, paragraph, "Provides")?,
        conflicts: field(file, paragraph, "Conflicts")?,
        breaks: field(file, paragraph, "Breaks")?,
        replaces: field(file, paragraph, "Replaces")?,
        name,
        version,
        source_name,
        source_version,
        filename,
        size,
        sha256: sha256.to_ascii_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn index(extra: &str) -> String {
        format!(
            "Package: libssl3\nSource: openssl (3.0.17-1~deb12u3)\nVersion: 3.0.17-1~deb12u3+b1\n\
Architecture: amd64\nMulti-Arch: same\nDepends: libc6 (>= 2.34)\nFilename: pool/updates/main/o/openssl/libssl3.deb\n\
Size: 2000\nSHA256: {HASH}\n{extra}\nPackage: openssl\nVersion: 3.0.17-1~deb12u3\nArchitecture: amd64\n\
Filename: pool/updates/main/o/openssl/openssl.deb\nSize: 10\nSHA256: {HASH}\n"
        )
    }

    #[test]
    fn parses_entries_and_sources() {
        let entries = parse("t", index("").as_bytes()).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].source_name, "openssl");
        assert_eq!(entries[0].source_version, "3.0.17-1~deb12u3");
        assert_eq!(entries[0].version, "3.0.17-1~deb12u3+b1");
        assert_eq!(entries[0].multi_arch.as_deref(), Some("same"));
        assert_eq!(entries[1].source_name, "openssl");
        assert_eq!(entries[1].source_version, entries[1].version);
    }

    #[test]
    fn refuses_bad_entries() {
        let escaping =
            index("").replace("pool/updates/main/o/openssl/openssl.deb", "../etc/passwd");
        assert!(parse("t", escaping.as_bytes()).is_err());
        let bad_hash = index("").replacen(HASH, "xyz", 1);
        assert!(
            parse("t", bad_hash.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("SHA256")
        );
        let no_size = index("").replacen("Size: 2000\n", "", 1);
        assert!(
            parse("t", no_size.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("Size")
        );
        assert!(parse("t", b"Package: x\n orphan\nbroken line\n").is_err());
    }
}
