//! `.deb` package files: the `ar` container, its `control.tar` and `data.tar`.
//!
//! Owns reading a package file that was already verified against its
//! index: the control files (`control`, `conffiles`, `md5sums`, maintainer
//! scripts) and the data archive, whichever of gzip, xz, zstd or no
//! compression each member uses. Every decompressed stream is bounded, and a
//! stream that exceeds its bound fails instead of being cut short. Entry
//! paths are reported normalised (`./usr/bin/x` → `usr/bin/x`); deciding
//! which entries are safe to install is the caller's job.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// The control archive is small; this bound only stops abuse.
pub const MAX_CONTROL_BYTES: u64 = 64 * 1024 * 1024;
/// The largest data archive accepted, decompressed.
pub const MAX_DATA_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// The largest single file read into memory from a data archive.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Why a `.deb` cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    /// A package file that is not the `.deb` format, or whose content breaks a rule.
    #[error("{}: {message}", path.display())]
    Format {
        /// The package file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A member or entry of the package that cannot be read to its end
    /// (corrupt compression, a truncated archive, past its size bound).
    #[error("{}: {what}", path.display())]
    Read {
        /// The package file.
        path: PathBuf,
        /// What was being read (`data archive`, an entry's path).
        what: String,
        /// The reader's error.
        #[source]
        source: std::io::Error,
    },
    /// The package file cannot be opened.
    #[error("{}", path.display())]
    Io {
        /// The package file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// A control file or maintainer script, by name (`control`, `postinst`, …).
pub type ControlFiles = BTreeMap<String, Vec<u8>>;

/// One entry of a data archive as read into memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataEntry {
    /// A regular file and its content.
    File(Vec<u8>),
    /// A symbolic link and its target as written.
    Symlink(String),
    /// A directory.
    Directory,
    /// Anything else (hard link, device, fifo).
    Other,
}

/// A `.deb` package file on disk (already verified against its index).
#[derive(Debug, Clone)]
pub struct DebFile {
    path: PathBuf,
}

/// A reader that fails once more than `limit` bytes came through.
struct Bounded<R> {
    inner: R,
    remaining: u64,
    what: &'static str,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.remaining = self.remaining.checked_sub(n as u64).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is larger than drydock accepts", self.what),
            )
        })?;
        Ok(n)
    }
}

/// The decompressing reader for member `name` (`data.tar.xz`); `None` for
/// a compression a `.deb` may not use.
fn decompressor<'a>(
    name: &str,
    reader: impl Read + 'a,
) -> Option<std::io::Result<Box<dyn Read + 'a>>> {
    let compression = name.rsplit_once(".tar").map(|(_, ext)| ext).unwrap_or("?");
    Some(Ok(match compression {
        "" => Box::new(reader),
        ".gz" => Box::new(flate2::read::GzDecoder::new(reader)),
        ".xz" => Box::new(liblzma::read::XzDecoder::new(reader)),
        ".zst" => match zstd::stream::read::Decoder::new(reader) {
            Ok(decoder) => Box::new(decoder),
            Err(e) => return Some(Err(e)),
        },
        _ => return None,
    }))
}

/// `./usr/bin/x` and `/usr/bin/x` → `usr/bin/x`; `.` and `./` → empty.
pub fn normalize_path(raw: &str) -> String {
    raw.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string()
}

impl DebFile {
    /// The package file at `path` (nothing is read yet).
    pub fn new(path: impl Into<PathBuf>) -> DebFile {
        DebFile { path: path.into() }
    }

    /// Where the package file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn format_error(&self, message: impl Into<String>) -> DebError {
        DebError::Format {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    fn read_error(&self, what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DebError {
        let (path, what) = (self.path.clone(), what.into());
        move |source| DebError::Read { path, what, source }
    }

    /// Runs `f` on the decompressed member whose name starts with `prefix`
    /// (`control.tar`, `data.tar`), bounded to `limit` bytes.
    fn with_member<T>(
        &self,
        prefix: &str,
        limit: u64,
        what: &'static str,
        f: impl FnOnce(&mut dyn Read) -> Result<T, DebError>,
    ) -> Result<T, DebError> {
        let file = File::open(&self.path).map_err(|source| DebError::Io {
            path: self.path.clone(),
            source,
        })?;
        let mut archive = ar::Archive::new(BufReader::new(file));
        let mut saw_version = false;
        while let Some(entry) = archive.next_entry() {
            let mut entry = entry.map_err(self.read_error("not a valid ar archive"))?;
            let name = String::from_utf8_lossy(entry.header().identifier())
                .trim_end_matches('/')
                .to_string();
            if name == "debian-binary" {
                let mut version = String::new();
                (&mut entry)
                    .take(16)
                    .read_to_string(&mut version)
                    .map_err(self.read_error("unreadable debian-binary"))?;
                if !version.starts_with("2.") {
                    return Err(self.format_error(format!(
                        "unsupported .deb format version {:?}",
                        version.trim()
                    )));
                }
                saw_version = true;
                continue;
            }
            if !name.starts_with(prefix) {
                continue;
            }
            if !saw_version {
                return Err(self.format_error("not a .deb: debian-binary is not the first member"));
            }
            let decompressed = decompressor(&name, entry)
                .ok_or_else(|| {
                    self.format_error(format!("member {name} uses an unsupported compression"))
                })?
                .map_err(self.read_error(format!("member {name}")))?;
            let mut bounded = Bounded {
                inner: decompressed,
                remaining: limit,
                what,
            };
            return f(&mut bounded);
        }
        Err(self.format_error(format!("has no {prefix} member")))
    }

    /// The control archive's files, by name.
    pub fn control_files(&self) -> Result<ControlFiles, DebError> {
        self.with_member(
            "control.tar",
            MAX_CONTROL_BYTES,
            "the control archive",
            |reader| {
                let mut files = ControlFiles::new();
                let mut archive = tar::Archive::new(reader);
                let entries = archive
                    .entries()
                    .map_err(self.read_error("control archive"))?;
                for entry in entries {
                    let mut entry = entry.map_err(self.read_error("control archive"))?;
                    if !entry.header().entry_type().is_file() {
                        continue;
                    }
                    let name = normalize_path(&String::from_utf8_lossy(&entry.path_bytes()));
                    let mut content = Vec::new();
                    entry
                        .read_to_end(&mut content)
                        .map_err(self.read_error(format!("control archive entry {name}")))?;
                    files.insert(name, content);
                }
                if !files.contains_key("control") {
                    return Err(self.format_error("the control archive has no control file"));
                }
                Ok(files)
            },
        )
    }

    /// Walks the data archive, calling `visit` with each entry; `visit`
    /// returns `false` to stop early.
    pub fn walk_data(
        &self,
        mut visit: impl FnMut(&str, &mut tar::Entry<'_, &mut dyn Read>) -> Result<bool, DebError>,
    ) -> Result<(), DebError> {
        self.with_member("data.tar", MAX_DATA_BYTES, "the data archive", |reader| {
            let mut archive = tar::Archive::new(reader);
            let entries = archive.entries().map_err(self.read_error("data archive"))?;
            for entry in entries {
                let mut entry = entry.map_err(self.read_error("data archive"))?;
                let path = normalize_path(&String::from_utf8_lossy(&entry.path_bytes()));
                if !visit(&path, &mut entry)? {
                    break;
                }
            }
            Ok(())
        })
    }

    /// Reads one entry of the data archive (`usr/share/doc/x/changelog.Debian.gz`).
    pub fn data_entry(&self, wanted: &str) -> Result<Option<DataEntry>, DebError> {
        let wanted = normalize_path(wanted);
        let mut found = None;
        self.walk_data(|path, entry| {
            if path != wanted {
                return Ok(true);
            }
            let kind = entry.header().entry_type();
            found = Some(if kind.is_file() {
                if entry.header().size().unwrap_or(u64::MAX) > MAX_FILE_BYTES {
                    return Err(
                        self.format_error(format!("{path} is larger than {MAX_FILE_BYTES} bytes"))
                    );
                }
                let mut content = Vec::new();
                entry
                    .read_to_end(&mut content)
                    .map_err(self.read_error(path))?;
                DataEntry::File(content)
            } else if kind.is_symlink() {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                DataEntry::Symlink(target)
            } else if kind.is_dir() {
                DataEntry::Directory
            } else {
                DataEntry::Other
            });
            Ok(false)
        })?;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize_path("./usr/bin/x"), "usr/bin/x");
        assert_eq!(normalize_path("/etc/"), "etc");
        assert_eq!(normalize_path("./"), "");
    }

    #[test]
    fn refuses_non_debs() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.deb");
        std::fs::write(&garbage, b"not an ar archive at all").unwrap();
        assert!(matches!(
            DebFile::new(&garbage).control_files(),
            Err(DebError::Read { .. })
        ));
        assert!(matches!(
            DebFile::new(dir.path().join("missing.deb")).control_files(),
            Err(DebError::Io { .. })
        ));
    }

    #[test]
    fn bounded_reader_fails_past_its_limit() {
        let mut reader = Bounded {
            inner: &[0u8; 100][..],
            remaining: 10,
            what: "test data",
        };
        let mut out = Vec::new();
        let error = reader.read_to_end(&mut out).unwrap_err();
        assert!(error.to_string().contains("larger than drydock accepts"));
    }
}
