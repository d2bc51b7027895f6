//! The image's dpkg database as the patcher needs it, and its update.
//!
//! Owns reading `var/lib/dpkg/status` (or, for distroless images, the
//! `status.d/` files) into [`Facts`] for planning while keeping each
//! paragraph's text, the file lists of `var/lib/dpkg/info/`, and the
//! recorded conffile hashes; and writing the database back as dpkg would
//! after an upgrade: the status paragraphs of upgraded packages replaced
//! (`Status: install ok installed`, `Conffiles` with the new hashes and the
//! old ones that became obsolete), new packages added in name order, or one
//! `status.d/<name>` file (and `<name>.md5sums`) per package for distroless
//! images.

use std::collections::{BTreeMap, BTreeSet};

use pkgdb::Rootfs;
use pkgdb::dpkg::{Paragraph, StatusFile, paragraphs, parse_status};

use crate::error::PatchError;
use crate::plan::{Facts, Fields};

pub const STATUS: &str = "var/lib/dpkg/status";
pub const STATUS_D: &str = "var/lib/dpkg/status.d";
pub const INFO: &str = "var/lib/dpkg/info";
/// `dpkg-divert`'s record of diverted paths.
pub const DIVERSIONS: &str = "var/lib/dpkg/diversions";
/// apt's record of which packages were installed only as dependencies.
pub const EXTENDED_STATES: &str = "var/lib/apt/extended_states";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// `var/lib/dpkg/status` with `info/` beside it.
    Status,
    /// Only `status.d/` (distroless).
    StatusD,
}

/// A conffile as the status file records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conffile {
    /// Absolute, as dpkg writes it (`/etc/ssl/openssl.cnf`).
    pub path: String,
    pub md5: String,
    pub obsolete: bool,
}

/// One paragraph of the database.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `None` for a paragraph that is not an installed package (`config-files`).
    pub facts: Option<Facts>,
    /// The paragraph as it was, without the trailing blank line.
    pub text: String,
    /// For `status.d`, the file name it came from.
    pub file: Option<String>,
    pub conffiles: Vec<Conffile>,
}

#[derive(Debug, Clone)]
pub struct InstalledDb {
    pub kind: DbKind,
    pub entries: Vec<Entry>,
    /// `info/<name>.list` contents (`/usr/bin/x` lines), by info name.
    pub lists: BTreeMap<String, Vec<String>>,
    /// Every file name in `info/`.
    pub info_files: BTreeSet<String>,
}

/// `name` or `name:arch` for `Multi-Arch: same` packages, as dpkg names info files.
pub fn info_name(facts: &Facts) -> String {
    if facts.multi_arch.as_deref() == Some("same") {
        format!("{}:{}", facts.name, facts.architecture)
    } else {
        facts.name.clone()
    }
}

fn field_text<'a>(paragraph: &Paragraph<'a>, name: &str) -> Option<String> {
    paragraph
        .fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| String::from_utf8_lossy(f.value).trim().to_string())
}

/// The paragraph's text rebuilt from its fields (values as written).
fn paragraph_text(paragraph: &Paragraph) -> String {
    let mut text = String::new();
    for field in &paragraph.fields {
        text.push_str(&String::from_utf8_lossy(field.name));
        text.push(':');
        text.push_str(&String::from_utf8_lossy(field.value));
        text.push('\n');
    }
    text
}

fn parse_conffiles(value: Option<String>) -> Vec<Conffile> {
    value
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (path, md5) = (words.next()?, words.next()?);
            Some(Conffile {
                path: path.to_string(),
                md5: md5.to_string(),
                obsolete: words.any(|w| w == "obsolete"),
            })
        })
        .collect()
}

fn read_entries(
    file: &str,
    bytes: &[u8],
    kind: StatusFile,
    status_d_file: Option<&str>,
) -> Result<Vec<Entry>, PatchError> {
    let mut entries = Vec::new();
    for paragraph in paragraphs(file, bytes)? {
        let text = paragraph_text(&paragraph);
        let installed = parse_status(file, text.as_bytes(), kind)?;
        let facts = match installed.first() {
            Some(package) => {
                let get = |name| field_text(&paragraph, name);
                let (pre_depends, depends, provides, breaks, conflicts) = (
                    get("Pre-Depends"),
                    get("Depends"),
                    get("Provides"),
                    get("Breaks"),
                    get("Conflicts"),
                );
                Some(Facts::new(
                    [
                        &package.name,
                        &package.architecture,
                        &package.version,
                        &package.source_name,
                        &package.source_version,
                    ],
                    get("Multi-Arch").as_deref(),
                    Fields {
                        pre_depends: pre_depends.as_deref(),
                        depends: depends.as_deref(),
                        provides: provides.as_deref(),
                        breaks: breaks.as_deref(),
                        conflicts: conflicts.as_deref(),
                    },
                )?)
            }
            None => None,
        };
        entries.push(Entry {
            facts,
            text,
            file: status_d_file.map(str::to_string),
            conffiles: parse_conffiles(field_text(&paragraph, "Conffiles")),
        });
    }
    Ok(entries)
}

impl InstalledDb {
    /// Reads the database of a view; `None` when the image has none.
    pub fn read(rootfs: &Rootfs) -> Result<Option<InstalledDb>, PatchError> {
        let (kind, entries) = if let Some(status) = rootfs.read(STATUS) {
            (
                DbKind::Status,
                read_entries(STATUS, status.content, StatusFile::Status, None)?,
            )
        } else {
            let mut entries = Vec::new();
            for path in rootfs.list_files(STATUS_D) {
                let name = path.rsplit('/').next().unwrap_or(&path).to_string();
                if name.ends_with(".md5sums") || name.starts_with('.') {
                    continue;
                }
                let content = rootfs.read(&path).map(|f| f.content).unwrap_or_default();
                entries.extend(read_entries(
                    &path,
                    content,
                    StatusFile::StatusD,
                    Some(&name),
                )?);
            }
            if entries.is_empty() {
                return Ok(None);
            }
            (DbKind::StatusD, entries)
        };
        let mut lists = BTreeMap::new();
        let mut info_files = BTreeSet::new();
        for path in rootfs.list_files(INFO) {
            let name = path.rsplit('/').next().unwrap_or(&path).to_string();
            if let Some(package) = name.strip_suffix(".list")
                && let Some(file) = rootfs.read(&path)
            {
                let lines = String::from_utf8_lossy(file.content)
                    .lines()
                    .map(str::to_string)
                    .collect();
                lists.insert(package.to_string(), lines);
            }
            info_files.insert(name);
        }
        Ok(Some(InstalledDb {
            kind,
            entries,
            lists,
            info_files,
        }))
    }

    /// The installed packages, for planning.
    pub fn installed(&self) -> Vec<Facts> {
        self.entries
            .iter()
            .filter_map(|e| e.facts.clone())
            .collect()
    }

    /// The packages whose selection is `hold` (`apt-mark hold`).
    pub fn held(&self) -> BTreeSet<String> {
        self.entries
            .iter()
            .filter(|e| want_of(&e.text) == "hold")
            .filter_map(|e| e.facts.as_ref().map(|f| f.name.clone()))
            .collect()
    }

    /// The record of `name` for `architecture`.
    #[cfg(test)]
    pub fn entry(&self, name: &str, architecture: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| {
            e.facts
                .as_ref()
                .is_some_and(|f| f.name == name && f.architecture == architecture)
        })
    }

    /// What a removed package left (`deinstall ok config-files`: its
    /// conffiles and their recorded hashes), for installing it again.
    pub fn leftover(&self, name: &str, architecture: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.facts.is_none() && is_leftover_of(e, name, architecture))
    }
}

/// Whether a paragraph that is not an installed package is `name`'s, for `architecture`.
fn is_leftover_of(entry: &Entry, name: &str, architecture: &str) -> bool {
    let recorded = first_value(&entry.text, "Architecture");
    first_value(&entry.text, "Package") == name
        && (recorded.is_empty()
            || recorded == architecture
            || recorded == "all"
            || architecture == "all")
}

/// A package's new database record, built while unpacking it.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub facts: Facts,
    /// The `control` file of the new version.
    pub control: String,
    /// New conffiles with the hashes of their distributed contents.
    pub conffiles: Vec<Conffile>,
    /// Replaced when upgrading; `None` for a new package.
    pub replaces: Option<(String, String)>,
    /// The selection the old version had (`install`, `hold`), kept as dpkg keeps it.
    pub want: String,
}

/// The fields dpkg writes in this order (`fieldinfos` in dpkg's
/// `lib/dpkg/parse.c`); any other field follows in the control file's order.
const DPKG_FIELD_ORDER: &[&str] = &[
    "Package",
    "Essential",
    "Protected",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Origin",
    "Maintainer",
    "Bugs",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Config-Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Filename",
    "Size",
    "MD5sum",
    "MSDOS-Filename",
    "Description",
    "Triggers-Pending",
    "Triggers-Awaited",
];

/// A control file's fields: (name, the rest of the first line and its continuation lines).
fn control_fields(control: &str) -> Vec<(&str, String)> {
    let mut fields: Vec<(&str, String)> = Vec::new();
    for line in control.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push('\n');
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name, value.to_string()));
        }
    }
    fields
}

/// The status paragraph dpkg writes for a newly installed version: the
/// control fields with `Status` (when `with_status`) and `Conffiles`, in
/// dpkg's field order.
pub fn status_paragraph(record: &NewRecord, with_status: bool) -> String {
    let mut fields = control_fields(&record.control);
    fields.retain(|(name, _)| !name.eq_ignore_ascii_case("Status"));
    if with_status {
        fields.push(("Status", format!(" {} ok installed", record.want)));
    }
    if !record.conffiles.is_empty() {
        let mut value = String::new();
        for conffile in &record.conffiles {
            value.push_str(&format!("\n {} {}", conffile.path, conffile.md5));
            if conffile.obsolete {
                value.push_str(" obsolete");
            }
        }
        fields.push(("Conffiles", value));
    }
    let rank = |name: &str| {
        DPKG_FIELD_ORDER
            .iter()
            .position(|known| known.eq_ignore_ascii_case(name))
            .unwrap_or(DPKG_FIELD_ORDER.len())
    };
    // A stable sort keeps the control file's order among the other fields.
    fields.sort_by_key(|(name, _)| rank(name));
    let mut text = String::new();
    for (name, value) in fields {
        text.push_str(name);
        text.push(':');
        text.push_str(&value);
        text.push('\n');
    }
    text
}

/// A field of a control paragraph, continuation lines joined (`None` when absent).
pub fn control_field(control: &str, name: &str) -> Option<String> {
    control_fields(control)
        .into_iter()
        .find(|(field, _)| field.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.replace('\n', " ").trim().to_string())
}

/// The selection (`install`, `hold`, …) of a status paragraph; `install` when it has none.
pub fn want_of(paragraph: &str) -> String {
    first_value(paragraph, "Status")
        .split_whitespace()
        .next()
        .unwrap_or("install")
        .to_string()
}

/// The new `var/lib/dpkg/status`: upgraded paragraphs replaced in place,
/// new ones added, sorted by name as dpkg keeps it.
pub fn updated_status(db: &InstalledDb, records: &[NewRecord]) -> String {
    let mut paragraphs: Vec<(String, String, String)> = Vec::new();
    for entry in &db.entries {
        // dpkg installs a package over what its removal left, in one paragraph.
        let reinstalled = entry.facts.is_none()
            && records.iter().any(|r| {
                r.replaces.is_none() && is_leftover_of(entry, &r.facts.name, &r.facts.architecture)
            });
        if reinstalled {
            continue;
        }
        let replaced = entry.facts.as_ref().and_then(|f| {
            records
                .iter()
                .find(|r| r.replaces.as_ref() == Some(&(f.name.clone(), f.architecture.clone())))
        });
        let (name, arch) = entry
            .facts
            .as_ref()
            .map(|f| (f.name.clone(), f.architecture.clone()))
            .unwrap_or_else(|| (first_value(&entry.text, "Package"), String::new()));
        match replaced {
            Some(record) => paragraphs.push((name, arch, status_paragraph(record, true))),
            None => paragraphs.push((name, arch, entry.text.clone())),
        }
    }
    for record in records.iter().filter(|r| r.replaces.is_none()) {
        paragraphs.push((
            record.facts.name.clone(),
            record.facts.architecture.clone(),
            status_paragraph(record, true),
        ));
    }
    paragraphs.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    paragraphs
        .into_iter()
        .map(|(_, _, text)| text + "\n")
        .collect()
}

fn first_value(text: &str, field: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS_TEXT: &str = "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\n\
Multi-Arch: same\nSource: openssl\nVersion: 3.0.1-1\nDepends: libc6 (>= 2.34)\nDescription: ssl\n long\n\n\
Package: gone\nStatus: deinstall ok config-files\nVersion: 1\nConffiles:\n /etc/gone.conf 0123\n\n\
Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.0.1-1\n\
Conffiles:\n /etc/ssl/openssl.cnf 6b4f\n /etc/old.cnf 99 obsolete\nDescription: tool\n";

    fn db() -> InstalledDb {
        InstalledDb {
            kind: DbKind::Status,
            entries: read_entries(STATUS, STATUS_TEXT.as_bytes(), StatusFile::Status, None)
                .unwrap(),
            lists: BTreeMap::new(),
            info_files: BTreeSet::new(),
        }
    }

    #[test]
    fn reads_installed_packages_with_conffiles() {
        let db = db();
        let installed = db.installed();
        let names: Vec<&str> = installed.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["libssl3", "openssl"]);
        assert_eq!(info_name(&installed[0]), "libssl3:amd64");
        assert_eq!(info_name(&installed[1]), "openssl");
        let openssl = db.entry("openssl", "amd64").unwrap();
        assert_eq!(openssl.conffiles.len(), 2);
        assert!(openssl.conffiles[1].obsolete);
    }

    #[test]
    fn rewrites_status_as_dpkg_does() {
        let db = db();
        let control =
            "Package: openssl\nVersion: 3.0.2-1\nArchitecture: amd64\nDescription: tool\n more\n";
        let record = NewRecord {
            facts: Facts::new(
                ["openssl", "amd64", "3.0.2-1", "openssl", "3.0.2-1"],
                None,
                Fields::default(),
            )
            .unwrap(),
            control: control.to_string(),
            conffiles: vec![Conffile {
                path: "/etc/ssl/openssl.cnf".into(),
                md5: "aaaa".into(),
                obsolete: false,
            }],
            replaces: Some(("openssl".into(), "amd64".into())),
            want: "hold".into(),
        };
        let added = NewRecord {
            facts: Facts::new(
                ["libzstd1", "amd64", "1.5", "libzstd", "1.5"],
                None,
                Fields::default(),
            )
            .unwrap(),
            control: "Package: libzstd1\nVersion: 1.5\nArchitecture: amd64\n".to_string(),
            conffiles: vec![],
            replaces: None,
            want: "install".into(),
        };
        let status = updated_status(&db, &[record, added]);
        let names: Vec<String> = status
            .split("\n\n")
            .filter(|p| !p.is_empty())
            .map(|p| first_value(p, "Package"))
            .collect();
        assert_eq!(names, ["gone", "libssl3", "libzstd1", "openssl"]);
        assert!(status.contains(
            "Package: openssl\nStatus: hold ok installed\nArchitecture: amd64\nVersion: 3.0.2-1\nConffiles:\n /etc/ssl/openssl.cnf aaaa\nDescription: tool\n more\n"
        ), "{status}");
        assert!(status.contains("Package: libzstd1\nStatus: install ok installed\n"));
        let reread = parse_status("s", status.as_bytes(), StatusFile::Status).unwrap();
        assert_eq!(reread.len(), 3);
    }

    #[test]
    fn a_removed_package_installed_again_keeps_one_paragraph() {
        let db = db();
        let leftover = db
            .leftover("gone", "amd64")
            .expect("the config-files paragraph");
        assert_eq!(leftover.conffiles[0].path, "/etc/gone.conf");
        assert!(
            db.leftover("libssl3", "amd64").is_none(),
            "installed, not left over"
        );
        let again = NewRecord {
            facts: Facts::new(["gone", "amd64", "2", "gone", "2"], None, Fields::default())
                .unwrap(),
            control: "Package: gone\nVersion: 2\nArchitecture: amd64\n".to_string(),
            conffiles: vec![],
            replaces: None,
            want: "install".into(),
        };
        let status = updated_status(&db, &[again]);
        assert_eq!(status.matches("Package: gone\n").count(), 1, "{status}");
        assert!(status.contains("Package: gone\nStatus: install ok installed\n"));
    }
}
