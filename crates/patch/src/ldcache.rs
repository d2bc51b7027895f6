//! The dynamic linker's cache, `etc/ld.so.cache`, kept in step with a patch.
//!
//! Owns reading and writing glibc's cache format (`glibc-ld.so.cache1.1`,
//! the only one Debian 12 and Ubuntu 24.04 write; the pre-2.32 `ld.so-1.7.0`
//! format is refused) and the update a patch needs: entries for libraries
//! the new layer adds under a directory the cache already covers, and no
//! entries for files the layer deletes. This is what `ldconfig`, run by
//! `libc-bin`'s trigger, would have changed; security updates that keep their
//! sonames change nothing and leave the cache untouched. Written here: no
//! crate reads or writes this format.
//!
//! A library is recognised by name, as `ldconfig` finds the links it makes:
//! `lib<name>.so.<major>` (or `ld-<name>.so.<major>`), a file or a symlink.
//! Its flags (ELF class and machine) are those of the entries already in its
//! directory. Entries stay sorted by glibc's `_dl_cache_libcmp` in
//! descending order, which the linker's binary search requires.

use std::cmp::Ordering;

const MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const HEADER_LEN: usize = 48;
const ENTRY_LEN: usize = 24;
const EXTENSION_MAGIC: u32 = 0xeaa4_2174;
const EXTENSION_GENERATOR: u32 = 0;
/// `flags` byte: little-endian.
const LITTLE_ENDIAN: u8 = 2;
/// Where the cache is, relative to the root.
pub const PATH: &str = "etc/ld.so.cache";

/// Why bytes are not a cache this module reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdCacheError {
    /// The bytes do not start with `glibc-ld.so.cache1.1`.
    #[error("not a glibc-ld.so.cache1.1 file (older formats are not supported)")]
    Format,
    /// The cache was written for a big-endian machine.
    #[error("only little-endian caches are supported")]
    BigEndian,
    /// The header counts more entries than the file could hold.
    #[error("claims {0} entries, more than the file holds")]
    TooManyEntries(usize),
    /// An entry of the table runs past the end of the file.
    #[error("entry {0} is truncated")]
    TruncatedEntry(usize),
    /// A header field runs past the end of the file (at this byte).
    #[error("truncated at byte {0}")]
    Truncated(usize),
    /// A name's offset is past the end of the file.
    #[error("string offset {0} is outside the file")]
    StringOutside(usize),
    /// A name has no terminating NUL.
    #[error("unterminated string")]
    UnterminatedString,
    /// A name is not UTF-8.
    #[error("a name is not UTF-8")]
    NotUtf8,
    /// The extension's generator text runs past the end of the file.
    #[error("generator outside the file")]
    GeneratorOutside,
}

/// One entry: a soname and the path the linker opens for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// ELF class and machine (and `ldconfig`'s type bits).
    pub flags: i32,
    /// The soname (`libssl.so.3`).
    pub key: String,
    /// The path the linker opens (`/lib/x86_64-linux-gnu/libssl.so.3`).
    pub value: String,
    /// The minimum kernel version (0: any).
    pub os_version: u32,
    /// The hardware capabilities the library needs (0: none).
    pub hwcap: u64,
}

/// A parsed `ld.so.cache`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    /// Sorted as the linker needs.
    pub entries: Vec<Entry>,
    /// The extension's generator text, when it has one.
    pub generator: Option<String>,
}

fn u32_at(bytes: &[u8], offset: usize) -> Result<u32, LdCacheError> {
    bytes
        .get(offset..offset + 4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("four bytes")))
        .ok_or(LdCacheError::Truncated(offset))
}

fn string_at(bytes: &[u8], offset: usize) -> Result<String, LdCacheError> {
    let rest = bytes
        .get(offset..)
        .ok_or(LdCacheError::StringOutside(offset))?;
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(LdCacheError::UnterminatedString)?;
    String::from_utf8(rest[..end].to_vec()).map_err(|_| LdCacheError::NotUtf8)
}

/// glibc's `_dl_cache_libcmp`: runs of digits compare as numbers.
pub fn libcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() {
        if a[i].is_ascii_digit() {
            if j < b.len() && b[j].is_ascii_digit() {
                let number = |s: &[u8], k: &mut usize| {
                    let mut value: u64 = 0;
                    while *k < s.len() && s[*k].is_ascii_digit() {
                        value = value
                            .saturating_mul(10)
                            .saturating_add(u64::from(s[*k] - b'0'));
                        *k += 1;
                    }
                    value
                };
                let (x, y) = (number(a, &mut i), number(b, &mut j));
                if x != y {
                    return x.cmp(&y);
                }
            } else {
                return Ordering::Greater;
            }
        } else if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        } else if j >= b.len() || a[i] != b[j] {
            return a[i].cmp(b.get(j).unwrap_or(&0));
        } else {
            i += 1;
            j += 1;
        }
    }
    if j < b.len() {
        Ordering::Less
    } else {
        Ordering::Equal
    }
}

impl Cache {
    /// Reads a cache's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Cache, LdCacheError> {
        if !bytes.starts_with(MAGIC) {
            return Err(LdCacheError::Format);
        }
        if bytes.get(28) != Some(&LITTLE_ENDIAN) {
            return Err(LdCacheError::BigEndian);
        }
        let count = u32_at(bytes, 20)? as usize;
        if count > bytes.len() / ENTRY_LEN {
            return Err(LdCacheError::TooManyEntries(count));
        }
        let mut entries = Vec::with_capacity(count);
        for index in 0..count {
            let at = HEADER_LEN + index * ENTRY_LEN;
            let entry = bytes
                .get(at..at + ENTRY_LEN)
                .ok_or(LdCacheError::TruncatedEntry(index))?;
            let word =
                |o: usize| u32::from_le_bytes(entry[o..o + 4].try_into().expect("four bytes"));
            entries.push(Entry {
                flags: word(0) as i32,
                key: string_at(bytes, word(4) as usize)?,
                value: string_at(bytes, word(8) as usize)?,
                os_version: word(12),
                hwcap: u64::from_le_bytes(entry[16..24].try_into().expect("eight bytes")),
            });
        }
        let mut generator = None;
        let extension = u32_at(bytes, 32)? as usize;
        if extension != 0 && u32_at(bytes, extension)? == EXTENSION_MAGIC {
            let sections = u32_at(bytes, extension + 4)? as usize;
            for section in 0..sections.min(64) {
                let at = extension + 8 + section * 16;
                if u32_at(bytes, at)? == EXTENSION_GENERATOR {
                    let (offset, size) = (
                        u32_at(bytes, at + 8)? as usize,
                        u32_at(bytes, at + 12)? as usize,
                    );
                    let text = bytes
                        .get(offset..offset + size)
                        .ok_or(LdCacheError::GeneratorOutside)?;
                    generator = Some(String::from_utf8_lossy(text).into_owned());
                }
            }
        }
        Ok(Cache { entries, generator })
    }

    /// The cache's bytes, as `ldconfig` writes them.
    pub fn write(&self) -> Vec<u8> {
        let strings_start = HEADER_LEN + self.entries.len() * ENTRY_LEN;
        let (strings, offsets) = string_table(
            self.entries
                .iter()
                .flat_map(|e| [e.key.as_str(), e.value.as_str()]),
        );
        let offset_of = |text: &str| (strings_start as u32) + offsets[text];
        let mut table = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for entry in &self.entries {
            let key = offset_of(&entry.key);
            let value = offset_of(&entry.value);
            table.extend_from_slice(&entry.flags.to_le_bytes());
            table.extend_from_slice(&key.to_le_bytes());
            table.extend_from_slice(&value.to_le_bytes());
            table.extend_from_slice(&entry.os_version.to_le_bytes());
            table.extend_from_slice(&entry.hwcap.to_le_bytes());
        }
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        out.push(LITTLE_ENDIAN);
        out.extend_from_slice(&[0; 3]);
        let extension_at = (strings_start + strings.len()).next_multiple_of(4);
        let extension = if self.generator.is_some() {
            extension_at as u32
        } else {
            0
        };
        out.extend_from_slice(&extension.to_le_bytes());
        out.extend_from_slice(&[0; 12]);
        out.extend_from_slice(&table);
        out.extend_from_slice(&strings);
        if let Some(generator) = &self.generator {
            out.resize(extension_at, 0);
            out.extend_from_slice(&EXTENSION_MAGIC.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
            let data_at = (extension_at + 8 + 16) as u32;
            out.extend_from_slice(&EXTENSION_GENERATOR.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&data_at.to_le_bytes());
            out.extend_from_slice(&(generator.len() as u32).to_le_bytes());
            out.extend_from_slice(generator.as_bytes());
        }
        out
    }

    fn sort(&mut self) {
        self.entries.sort_by(|a, b| {
            libcmp(&b.key, &a.key)
                .then_with(|| b.flags.cmp(&a.flags))
                .then_with(|| b.hwcap.cmp(&a.hwcap))
        });
    }

    /// Drops the entries whose path is in `removed` and adds `(soname, path)`
    /// entries the cache lacks, each with the flags of the entries already
    /// in its directory (a directory the cache does not cover is not added:
    /// the linker's configuration does not name it). Whether anything changed.
    pub fn update(&mut self, added: &[(String, String)], removed: &[String]) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| !removed.contains(&e.value));
        let mut changed = self.entries.len() != before;
        for (soname, path) in added {
            let Some((dir, _)) = path.rsplit_once('/') else {
                continue;
            };
            if self.entries.iter().any(|e| e.value == *path) {
                continue;
            }
            let Some(flags) = self
                .entries
                .iter()
                .find(|e| e.value.rsplit_once('/').is_some_and(|(d, _)| d == dir))
                .map(|e| e.flags)
            else {
                continue;
            };
            self.entries.push(Entry {
                flags,
                key: soname.clone(),
                value: path.clone(),
                os_version: 0,
                hwcap: 0,
            });
            changed = true;
        }
        if changed {
            self.sort();
        }
        changed
    }

    /// Says the cache was written by the `ldconfig` of `libc-bin` version
    /// `version`: the generator text names the version it was built from
    /// (`ldconfig (Debian GLIBC 2.36-9+deb12u4) stable release version 2.36`).
    /// Whether the text changed.
    pub fn set_generator_version(&mut self, version: &str) -> bool {
        let Some(text) = &self.generator else {
            return false;
        };
        let Some(start) = text.find(" GLIBC ").map(|i| i + " GLIBC ".len()) else {
            return false;
        };
        let Some(end) = text[start..].find(')').map(|i| start + i) else {
            return false;
        };
        let updated = format!("{}{version}{}", &text[..start], &text[end..]);
        let changed = updated != *text;
        self.generator = Some(updated);
        changed
    }
}

/// glibc's string table (`elf/stringtable.c`): each distinct string once,
/// ordered by comparing from the end, and a string that ends another one
/// stored inside it (tail merging). The bytes, and each string's offset.
fn string_table<'a>(
    texts: impl Iterator<Item = &'a str>,
) -> (Vec<u8>, std::collections::HashMap<&'a str, u32>) {
    let mut unique: Vec<&str> = texts.collect();
    unique.sort_unstable();
    unique.dedup();
    // From the last byte, larger bytes first; the shorter of two strings
    // where one ends the other comes after it.
    unique.sort_by(|l, r| {
        l.bytes()
            .rev()
            .zip(r.bytes().rev())
            .map(|(a, b)| b.cmp(&a))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| r.len().cmp(&l.len()))
    });
    let mut bytes = Vec::new();
    let mut offsets = std::collections::HashMap::new();
    let mut previous: Option<(&str, u32)> = None;
    for text in unique {
        let offset = match previous {
            Some((before, at)) if before.ends_with(text) => at + (before.len() - text.len()) as u32,
            _ => {
                let at = bytes.len() as u32;
                bytes.extend_from_slice(text.as_bytes());
                bytes.push(0);
                at
            }
        };
        offsets.insert(text, offset);
        previous = Some((text, offset));
    }
    (bytes, offsets)
}

/// Whether `ldconfig` looks at a file name at all (glibc's `_dl_is_dso`):
/// `lib*` or `ld-*` with `.so` in it.
pub fn is_library_name(name: &str) -> bool {
    (name.starts_with("lib") || name.starts_with("ld-")) && name.contains(".so")
}

/// The `DT_SONAME` of an ELF shared object; `None` when the bytes are not
/// ELF or have none. Written here: one field of the dynamic section, for
/// which an ELF crate would be far larger than the need.
pub fn soname(elf: &[u8]) -> Option<String> {
    if elf.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = match elf.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let little = match elf.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let read = |offset: usize, size: usize| -> Option<u64> {
        let bytes = elf.get(offset..offset.checked_add(size)?)?;
        let mut value = 0u64;
        for i in 0..size {
            let byte = if little {
                bytes[size - 1 - i]
            } else {
                bytes[i]
            };
            value = (value << 8) | u64::from(byte);
        }
        Some(value)
    };
    let word = if wide { 8 } else { 4 };
    let (phoff, phentsize, phnum) = if wide {
        (read(0x20, 8)?, read(0x36, 2)?, read(0x38, 2)?)
    } else {
        (read(0x1c, 4)?, read(0x2a, 2)?, read(0x2c, 2)?)
    };
    // (type, offset, vaddr, filesz) of each program header.
    let mut segments = Vec::new();
    for i in 0..phnum {
        let at = usize::try_from(phoff.checked_add(i.checked_mul(phentsize)?)?).ok()?;
        let kind = read(at, 4)?;
        let (offset, vaddr, filesz) = if wide {
            (read(at + 8, 8)?, read(at + 16, 8)?, read(at + 32, 8)?)
        } else {
            (read(at + 4, 4)?, read(at + 8, 4)?, read(at + 16, 4)?)
        };
        segments.push((kind, offset, vaddr, filesz));
    }
    const PT_LOAD: u64 = 1;
    const PT_DYNAMIC: u64 = 2;
    const DT_NULL: u64 = 0;
    const DT_STRTAB: u64 = 5;
    const DT_SONAME: u64 = 14;
    let &(_, dynamic, _, size) = segments.iter().find(|s| s.0 == PT_DYNAMIC)?;
    let (mut strtab, mut name) = (None, None);
    let mut at = dynamic;
    while at + 2 * word as u64 <= dynamic + size {
        let offset = usize::try_from(at).ok()?;
        let (tag, value) = (read(offset, word)?, read(offset + word, word)?);
        match tag {
            DT_NULL => break,
            DT_STRTAB => strtab = Some(value),
            DT_SONAME => name = Some(value),
            _ => {}
        }
        at += 2 * word as u64;
    }
    let (strtab, name) = (strtab?, name?);
    // DT_STRTAB is an address: find the loaded segment that holds it.
    let &(_, offset, vaddr, _) = segments
        .iter()
        .find(|s| s.0 == PT_LOAD && s.2 <= strtab && strtab < s.2 + s.3)?;
    let start = usize::try_from(strtab - vaddr + offset + name).ok()?;
    let rest = elf.get(start..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    String::from_utf8(rest[..end].to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, dir: &str) -> Entry {
        Entry {
            flags: 0x303,
            key: key.to_string(),
            value: format!("{dir}/{key}"),
            os_version: 0,
            hwcap: 0,
        }
    }

    #[test]
    fn compares_like_glibc() {
        assert_eq!(libcmp("libc.so.10", "libc.so.9"), Ordering::Greater);
        assert_eq!(libcmp("libz.so.1", "libzstd.so.1"), Ordering::Less);
        assert_eq!(libcmp("lib1", "liba"), Ordering::Greater);
        assert_eq!(libcmp("libx.so", "libx.so.1"), Ordering::Less);
        assert_eq!(libcmp("same", "same"), Ordering::Equal);
    }

    #[test]
    fn round_trips_and_updates() {
        let mut cache = Cache {
            entries: vec![entry("libz.so.1", "/lib/x"), entry("libc.so.6", "/lib/x")],
            generator: Some("ldconfig (GNU libc) stable release version 2.36".to_string()),
        };
        cache.sort();
        let bytes = cache.write();
        assert_eq!(Cache::parse(&bytes).unwrap(), cache);
        let pair = |key: &str, path: &str| (key.to_string(), path.to_string());
        assert!(cache.update(
            &[
                pair("libnew.so.2", "/lib/x/libnew.so.2"),
                pair("libo.so.1", "/opt/libo.so.1")
            ],
            &["/lib/x/libc.so.6".into()],
        ));
        let keys: Vec<&str> = cache.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["libz.so.1", "libnew.so.2"]);
        assert!(!cache.update(&[pair("libz.so.1", "/lib/x/libz.so.1")], &[]));
        // A generator text without a vendor version is left alone.
        assert!(!cache.set_generator_version("2.36-9+deb12u13"));
        let mut debian = Cache {
            entries: vec![],
            generator: Some(
                "ldconfig (Debian GLIBC 2.36-9+deb12u4) stable release version 2.36".into(),
            ),
        };
        assert!(debian.set_generator_version("2.36-9+deb12u13"));
        assert!(!debian.set_generator_version("2.36-9+deb12u13"));
        assert_eq!(
            debian.generator.as_deref(),
            Some("ldconfig (Debian GLIBC 2.36-9+deb12u13) stable release version 2.36")
        );
        assert!(Cache::parse(b"ld.so-1.7.0").is_err());
        assert!(Cache::parse(&bytes[..60]).is_err());
    }
}
