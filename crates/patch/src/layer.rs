//! The patch layer: new package versions unpacked into one tar.
//!
//! Owns turning verified `.deb` files into an OCI layer as `dpkg --unpack`
//! followed by `--configure` would leave the filesystem, without running
//! anything:
//! - each `data.tar` entry is copied (mode, owner, times as packaged) to
//!   its path as the image resolves it: a path under `lib/` lands under
//!   `usr/lib/` when the image's `lib` is a symlink, and a directory entry
//!   never replaces a symlink the image has there (dpkg keeps it too);
//! - entries are refused when unsafe: a `..` component, a device node or
//!   FIFO, a symlink whose target leaves the root, a hard link to a path
//!   outside the package, or a name that is an overlay whiteout;
//! - conffiles follow dpkg's default: an unmodified one is replaced, one the
//!   image changed is kept and the new version written beside it as
//!   `.dpkg-dist`, one the image deleted stays deleted;
//! - files the old version owned and the new one does not (from
//!   `info/<pkg>.list`, unless another package owns them or they are
//!   conffiles) become whiteouts, as do the old version's info files that
//!   the new one lacks;
//! - the package database is updated ([`crate::dpkgdb`]), and the dynamic
//!   linker's cache when libraries were added or removed ([`crate::ldcache`]).
//!
//! The tar is deterministic: entries in plan order, generated files dated
//! with the newest packaged timestamp, gzip (level 1) without a name or time.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{Read, Write};

use md5::{Digest as _, Md5};
use oci::Digest;
use pkgdb::Rootfs;
use repo::DebFile;
use sha2::Sha256;

use crate::admin::{self, PathFilters, StatOverride};
use crate::debconf;
use crate::dpkgdb::{self, Conffile, DbKind, INFO, InstalledDb, NewRecord, STATUS, STATUS_D};
use crate::effects::{Handling, ScriptEffect};
use crate::error::PatchError;
use crate::ldcache;
use crate::plan::{Facts, Step};
use crate::postinst;
use crate::triggers;
use crate::truststore::{self, CertsEntry};

/// The largest new library read into memory for its soname.
const MAX_LIBRARY_BYTES: u64 = 256 * 1024 * 1024;
/// The largest conffile read into memory to hash it.
const MAX_CONFFILE_BYTES: u64 = 16 * 1024 * 1024;
const SCRIPTS: &[&str] = &["preinst", "postinst", "prerm", "postrm"];

/// The mode dpkg gives a control file it installs in `info/`: maintainer
/// scripts (and debconf's `config`) are executable, the rest is data.
fn info_file_mode(member: &str) -> u32 {
    if SCRIPTS.contains(&member) || member == "config" {
        0o755
    } else {
        0o644
    }
}

/// Whether `file` in `info/` belongs to the package whose info name is
/// `info_name`: `<info name>.<member>`, where a member never has a dot
/// (so `python3.` does not claim `python3.11.list`).
fn is_info_file_of(file: &str, info_name: &str) -> bool {
    file.strip_prefix(info_name)
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|member| !member.is_empty() && !member.contains('.'))
}

/// A package to unpack: its plan step and its verified file.
pub struct PackageInput<'a> {
    pub step: &'a Step,
    pub deb: DebFile,
}

/// The new layer a patch built, and what building it found and did.
#[derive(Debug, Clone)]
pub struct BuiltLayer {
    /// The gzip-compressed tar.
    pub blob: Vec<u8>,
    /// The blob's digest.
    pub digest: Digest,
    /// The uncompressed tar's digest (the config's `rootfs.diff_ids` entry).
    pub diff_id: Digest,
    /// The uncompressed tar's size in bytes.
    pub uncompressed_size: u64,
    /// Paths deleted from the lower layers.
    pub whiteouts: Vec<String>,
    /// Conffiles the image had modified, kept (the new version is beside them as `.dpkg-dist`).
    pub conffiles_kept: Vec<String>,
    /// `etc/ld.so.cache` was rewritten for libraries added or removed.
    pub linker_cache_updated: bool,
    /// What the upgraded packages' maintainer scripts and triggers do, and how each was handled.
    pub script_effects: Vec<ScriptEffect>,
    /// The new database records, in plan order.
    pub(crate) records: Vec<NewRecord>,
    /// The newest packaged timestamp: what generated entries are dated with.
    pub(crate) newest_mtime: u64,
}

/// A writer that hashes and counts what passes through.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn sha256_digest(hasher: Sha256) -> Digest {
    format!("sha256:{}", hex(&hasher.finalize()))
        .parse()
        .expect("a sha256 digest is valid")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn md5_hex(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

/// Whether a symlink at `path` pointing at `target` stays inside the root.
fn link_stays_inside(path: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return true; // absolute targets resolve against the image's own root
    }
    let mut depth: i64 = path.matches('/').count() as i64;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

struct Writer<'a> {
    tar: tar::Builder<ChunkSender>,
    rootfs: &'a Rootfs,
    written: HashSet<String>,
    newest_mtime: u64,
    linker_cache_updated: bool,
    /// The image's `path-exclude`/`path-include` filters.
    filters: PathFilters,
    /// The image's stat overrides by absolute path.
    overrides: BTreeMap<String, StatOverride>,
    /// What the package being unpacked has its postinst set, by resolved path.
    script_settings: BTreeMap<String, postinst::Setting>,
    /// Libraries the layer adds (resolved path → content), for their sonames.
    libraries: BTreeMap<String, Vec<u8>>,
    /// Symlinks with library names the layer writes (resolved path → target).
    library_links: BTreeMap<String, String>,
    /// The certificates the layer writes (resolved path → content), for the trust store.
    certificates: BTreeMap<String, Vec<u8>>,
    effects: Vec<ScriptEffect>,
}

impl Writer<'_> {
    fn io(&self, what: &str) -> impl Fn(std::io::Error) -> PatchError {
        let what = what.to_string();
        move |source| PatchError::Io {
            path: what.clone().into(),
            source,
        }
    }

    /// `path` as the image resolves its parent directories.
    fn resolve(&self, path: &str) -> String {
        self.rootfs
            .resolve_parent(path)
            .unwrap_or_else(|| path.to_string())
    }

    fn generated(&mut self, path: &str, content: &[u8]) -> Result<(), PatchError> {
        self.generated_with_mode(path, content, 0o644)
    }

    fn generated_with_mode(
        &mut self,
        path: &str,
        content: &[u8],
        mode: u32,
    ) -> Result<(), PatchError> {
        let mut header = self.generated_header(tar::EntryType::Regular, mode, content.len());
        let path = self.resolve(path);
        self.tar
            .append_data(&mut header, &path, content)
            .map_err(self.io(&path))?;
        self.written.insert(path);
        Ok(())
    }

    fn symlink(&mut self, path: &str, target: &str) -> Result<(), PatchError> {
        let mut header = self.generated_header(tar::EntryType::Symlink, 0o777, 0);
        let path = self.resolve(path);
        self.tar
            .append_link(&mut header, &path, target)
            .map_err(self.io(&path))?;
        self.written.insert(path);
        Ok(())
    }

    /// The header of an entry drydock makes: root's, dated like the packages.
    fn generated_header(&self, kind: tar::EntryType, mode: u32, size: usize) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(self.newest_mtime);
        header.set_size(size as u64);
        header
    }

    fn whiteout(&mut self, path: &str) -> Result<(), PatchError> {
        let path = self.resolve(path);
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", &path));
        let marker = if parent.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{parent}/.wh.{name}")
        };
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_mtime(self.newest_mtime);
        header.set_size(0);
        self.tar
            .append_data(&mut header, &marker, std::io::empty())
            .map_err(self.io(&marker))
    }
}

/// The conffile paths a `conffiles` control file names (absolute).
fn conffile_paths(control: Option<&Vec<u8>>) -> BTreeSet<String> {
    String::from_utf8_lossy(control.map(Vec::as_slice).unwrap_or_default())
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            // `remove-on-upgrade /path` and similar flags precede the path.
            match words.as_slice() {
                [path] => Some(path.to_string()),
                _ => None,
            }
        })
        .collect()
}

/// Unpacks `packages` over the image `rootfs` with database `db`.
pub fn build(
    db: &InstalledDb,
    rootfs: &Rootfs,
    packages: &[PackageInput],
) -> Result<BuiltLayer, PatchError> {
    let filters = PathFilters::read(rootfs)?;
    let overrides = admin::stat_overrides(rootfs)?;
    // Unpacking (xz, mostly) runs here while a second thread hashes and
    // gzips the tar: the two halves cost about the same.
    let (tar, compressor) = layer_tar();
    let mut writer = Writer {
        tar,
        rootfs,
        written: HashSet::new(),
        newest_mtime: 0,
        linker_cache_updated: false,
        filters,
        overrides,
        script_settings: BTreeMap::new(),
        libraries: BTreeMap::new(),
        library_links: BTreeMap::new(),
        certificates: BTreeMap::new(),
        effects: Vec::new(),
    };
    let built = build_into(&mut writer, db, packages);
    // Ends the tar whatever happened, so the compressor finishes.
    let compressed = compressor.finish(writer.tar);
    let (unpacked, whiteouts, conffiles_kept) = built?;
    let compressed = compressed?;
    Ok(BuiltLayer {
        digest: compressed.digest,
        blob: compressed.blob,
        diff_id: compressed.diff_id,
        uncompressed_size: compressed.uncompressed_size,
        whiteouts,
        conffiles_kept,
        linker_cache_updated: writer.linker_cache_updated,
        script_effects: writer.effects,
        records: unpacked.into_iter().map(|u| u.record).collect(),
        newest_mtime: writer.newest_mtime,
    })
}

type Built = (Vec<Unpacked>, Vec<String>, Vec<String>);

fn build_into(
    writer: &mut Writer,
    db: &InstalledDb,
    packages: &[PackageInput],
) -> Result<Built, PatchError> {
    let mut unpacked = Vec::new();
    let mut conffiles_kept = Vec::new();
    for input in packages {
        let package = unpack(writer, db, input, &mut conffiles_kept)?;
        writer
            .effects
            .extend(unrun_scripts(&input.step.name, &package.control_files));
        unpacked.push(package);
    }
    let whiteouts = write_database(writer, db, &unpacked)?;
    Ok((unpacked, whiteouts, conffiles_kept))
}

/// How much tar is handed to the compressor at a time.
const CHUNK: usize = 1 << 20;

/// The tar's bytes, passed on in chunks to [`compress`].
pub(crate) struct ChunkSender {
    buffer: Vec<u8>,
    chunks: std::sync::mpsc::SyncSender<Vec<u8>>,
}

impl ChunkSender {
    fn send(&mut self) -> std::io::Result<()> {
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.chunks
            .send(chunk)
            .map_err(|_| std::io::Error::other("the compressing thread stopped"))
    }

    fn finish(mut self) -> std::io::Result<()> {
        if !self.buffer.is_empty() {
            self.send()?;
        }
        Ok(())
    }
}

impl Write for ChunkSender {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) struct Compressed {
    pub(crate) blob: Vec<u8>,
    pub(crate) digest: Digest,
    pub(crate) diff_id: Digest,
    pub(crate) uncompressed_size: u64,
}

/// The thread that hashes and compresses what a layer tar writes.
pub(crate) struct Compressor(std::thread::JoinHandle<std::io::Result<Compressed>>);

/// A layer tar whose bytes a second thread hashes (the diff ID) and gzips
/// (level 1: a fifth of the time of the default level for a layer ~10%
/// larger), hashing the result; [`Compressor::finish`] ends it.
pub(crate) fn layer_tar() -> (tar::Builder<ChunkSender>, Compressor) {
    let (chunks, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
    let compressor = std::thread::spawn(move || compress(received));
    let mut tar = tar::Builder::new(ChunkSender {
        buffer: Vec::with_capacity(CHUNK),
        chunks,
    });
    tar.mode(tar::HeaderMode::Complete);
    (tar, Compressor(compressor))
}

impl Compressor {
    /// Ends `tar` and waits for the compressed layer.
    pub(crate) fn finish(self, tar: tar::Builder<ChunkSender>) -> Result<Compressed, PatchError> {
        let layer_error = |source| PatchError::Io {
            path: "layer".into(),
            source,
        };
        // Closing the channel, whatever happened, lets the compressor finish.
        let finished = tar.into_inner().and_then(ChunkSender::finish);
        let compressed = self
            .0
            .join()
            .map_err(|_| layer_error(std::io::Error::other("the compressing thread panicked")))?;
        finished.map_err(layer_error)?;
        compressed.map_err(layer_error)
    }
}

fn compress(chunks: std::sync::mpsc::Receiver<Vec<u8>>) -> std::io::Result<Compressed> {
    let mut diff_id = Sha256::new();
    let mut uncompressed_size = 0u64;
    let mut gzip = flate2::GzBuilder::new().write(
        Hashing {
            inner: Vec::new(),
            hasher: Sha256::new(),
            bytes: 0,
        },
        flate2::Compression::fast(),
    );
    for chunk in chunks {
        diff_id.update(&chunk);
        uncompressed_size += chunk.len() as u64;
        gzip.write_all(&chunk)?;
    }
    let compressed = gzip.finish()?;
    Ok(Compressed {
        digest: sha256_digest(compressed.hasher),
        blob: compressed.inner,
        diff_id: sha256_digest(diff_id),
        uncompressed_size,
    })
}

struct Unpacked {
    record: NewRecord,
    /// The `.list` lines (`/.`, `/usr`, `/usr/bin/x`, …).
    list: Vec<String>,
    /// The lines of `list` that are directories.
    directories: HashSet<String>,
    control_files: BTreeMap<String, Vec<u8>>,
    /// Which status.d file the old record was in, if any.
    status_d_file: Option<String>,
    old_info_name: Option<String>,
}

fn unpack(
    writer: &mut Writer,
    db: &InstalledDb,
    input: &PackageInput,
    conffiles_kept: &mut Vec<String>,
) -> Result<Unpacked, PatchError> {
    let step = input.step;
    let package = format!("{} {}", step.name, step.to_version());
    let deb_error = |source| PatchError::Deb {
        package: package.clone(),
        source,
    };
    let unsafe_entry = |message: String| PatchError::UnsafePackage {
        package: package.clone(),
        message,
    };
    let control_files = input.deb.control_files().map_err(deb_error)?;
    let control = String::from_utf8_lossy(&control_files["control"]).into_owned();
    let facts = Facts::from_index(&step.to.package)?;
    let old = step.from.as_ref().and_then(|_| {
        db.entries.iter().find(|e| {
            e.facts.as_ref().is_some_and(|f| {
                f.name == step.name
                    && (f.architecture == step.architecture
                        || f.architecture == "all"
                        || step.architecture == "all")
            })
        })
    });
    // A package removed earlier left its conffiles and their hashes: dpkg
    // judges them as an upgrade's.
    let leftover = old
        .is_none()
        .then(|| db.leftover(&step.name, &step.architecture))
        .flatten();
    let old_conffiles: BTreeMap<String, String> = old
        .or(leftover)
        .map(|e| {
            e.conffiles
                .iter()
                .map(|c| (c.path.clone(), c.md5.clone()))
                .collect()
        })
        .unwrap_or_default();
    let conffile_list = conffile_paths(control_files.get("conffiles"));
    writer.script_settings = script_settings(writer, &step.name, &control_files);
    let mut list = vec!["/.".to_string()];
    // Each path of the package, and whether it is a directory.
    let mut own_paths: HashMap<String, bool> = HashMap::new();
    let mut conffiles = ConffileState {
        declared: &conffile_list,
        recorded: &old_conffiles,
        found: Vec::new(),
        kept: conffiles_kept,
    };
    input
        .deb
        .walk_data(|path, entry| {
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            if raw.split('/').any(|c| c == "..") {
                return Err(repo::DebError::Format {
                    path: input.deb.path().to_path_buf(),
                    message: format!("data entry {raw:?} has a '..' component"),
                });
            }
            visit(
                writer,
                path,
                entry,
                &mut list,
                &mut own_paths,
                &mut conffiles,
            )
        })
        .map_err(|e| match e {
            repo::DebError::Format { message, .. } if message.starts_with("data entry") => {
                unsafe_entry(message)
            }
            other => deb_error(other),
        })?;
    let mut conffiles = conffiles.found;
    for conffile in old.map(|e| e.conffiles.as_slice()).unwrap_or_default() {
        if !conffile_list.contains(&conffile.path) {
            conffiles.push(Conffile {
                obsolete: true,
                ..conffile.clone()
            });
        }
    }
    Ok(Unpacked {
        record: NewRecord {
            facts,
            control,
            conffiles,
            replaces: old
                .and_then(|e| e.facts.as_ref())
                .map(|f| (f.name.clone(), f.architecture.clone())),
            want: old.map_or_else(|| "install".to_string(), |e| dpkgdb::want_of(&e.text)),
        },
        list,
        directories: own_paths
            .into_iter()
            .filter(|(_, is_dir)| *is_dir)
            .map(|(path, _)| format!("/{path}"))
            .collect(),
        control_files,
        status_d_file: old.and_then(|e| e.file.clone()),
        old_info_name: old.and_then(|e| e.facts.as_ref()).map(dpkgdb::info_name),
    })
}

/// The conffiles of the package being unpacked.
struct ConffileState<'a> {
    /// Absolute paths the new version declares.
    declared: &'a BTreeSet<String>,
    /// Path → md5 the status file recorded for the old version.
    recorded: &'a BTreeMap<String, String>,
    /// The new version's conffiles with their distributed hashes.
    found: Vec<Conffile>,
    kept: &'a mut Vec<String>,
}

/// Copies one data entry into the layer.
fn visit(
    writer: &mut Writer,
    path: &str,
    entry: &mut tar::Entry<'_, &mut dyn Read>,
    list: &mut Vec<String>,
    own_paths: &mut HashMap<String, bool>,
    conffiles: &mut ConffileState,
) -> Result<bool, repo::DebError> {
    let refuse = |message: String| repo::DebError::Format {
        path: Default::default(),
        message: format!("data entry {message}"),
    };
    if path.is_empty() {
        return Ok(true);
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.starts_with(".wh.") {
        return Err(refuse(format!("{path:?} is an overlay whiteout name")));
    }
    list.push(format!("/{path}"));
    own_paths.insert(path.to_string(), entry.header().entry_type().is_dir());
    let mut header = entry.header().clone();
    let kind = header.entry_type();
    let absolute = format!("/{path}");
    // dpkg lists a filtered path as the package's but writes nothing there.
    if writer
        .filters
        .skips(&absolute, kind.is_dir() || kind.is_symlink())
    {
        return Ok(true);
    }
    writer.newest_mtime = writer.newest_mtime.max(header.mtime().unwrap_or(0));
    let resolved = writer.resolve(path);
    let io = |e: std::io::Error| refuse(format!("{path:?}: {e}"));
    // Owner, mode and capability: a stat override decides, else what the
    // postinst sets (its own `dpkg-statoverride --list` checks say so).
    let mut capability = None;
    if !kind.is_symlink() {
        let owner = match writer.overrides.get(&absolute) {
            Some(o) => Some((Some(o.uid), Some(o.gid), o.mode)),
            None => match writer.script_settings.get(&resolved) {
                Some(setting) => {
                    capability = setting.capability.clone();
                    let mode = setting.apply_mode(header.mode().map_err(io)?);
                    Some((setting.uid, setting.gid, mode))
                }
                None => None,
            },
        };
        if let Some((uid, gid, mode)) = owner {
            // Runtimes apply the numeric ids; names would contradict them.
            if let Some(uid) = uid {
                header.set_uid(u64::from(uid));
                let _ = header.set_username("");
            }
            if let Some(gid) = gid {
                header.set_gid(u64::from(gid));
                let _ = header.set_groupname("");
            }
            header.set_mode(mode);
        }
    }
    let xattr = |writer: &mut Writer| -> std::io::Result<()> {
        match &capability {
            Some(value) => writer
                .tar
                .append_pax_extensions([("SCHILY.xattr.security.capability", value.as_slice())]),
            None => Ok(()),
        }
    };
    match header.entry_type() {
        tar::EntryType::Directory => {
            // dpkg never changes a directory that exists, and follows a
            // symlink the image has in its place.
            if writer.rootfs.exists(&resolved)
                || writer.rootfs.is_symlink(&resolved)
                || !writer.written.insert(resolved.clone())
            {
                return Ok(true);
            }
            writer
                .tar
                .append_data(&mut header, &resolved, std::io::empty())
                .map_err(io)?;
        }
        tar::EntryType::Regular | tar::EntryType::Continuous
            if conffiles.declared.contains(&format!("/{path}")) =>
        {
            if entry.size() > MAX_CONFFILE_BYTES {
                return Err(refuse(format!("{path:?} is too large for a conffile")));
            }
            let mut content = Vec::new();
            entry.read_to_end(&mut content).map_err(io)?;
            let absolute = format!("/{path}");
            let new_md5 = md5_hex(&content);
            conffiles.found.push(Conffile {
                path: absolute.clone(),
                md5: new_md5.clone(),
                obsolete: false,
            });
            // The layer scan keeps /etc, so only there can the image's copy be compared.
            let visible = path.starts_with("etc/");
            let current = writer.rootfs.read(&resolved).map(|f| md5_hex(f.content));
            let recorded = conffiles.recorded.get(&absolute);
            if visible && current.is_none() && recorded.is_some() {
                return Ok(true); // deleted by the image's author: stays deleted, as dpkg does
            }
            // dpkg: a file the user did not edit takes the new version; an
            // edited one stays, and the new version goes beside it only when
            // the package's own copy changed too.
            let user_edited = match (&current, recorded) {
                (Some(current), Some(old)) => current != old && *current != new_md5,
                _ => false,
            };
            let package_changed = recorded.is_none_or(|old| *old != new_md5);
            let target = match (user_edited, package_changed) {
                (false, _) => resolved,
                (true, false) => return Ok(true),
                (true, true) => {
                    conffiles.kept.push(absolute);
                    format!("{resolved}.dpkg-dist")
                }
            };
            writer.written.insert(target.clone());
            xattr(writer).map_err(io)?;
            writer
                .tar
                .append_data(&mut header, &target, &content[..])
                .map_err(io)?;
        }
        tar::EntryType::Regular | tar::EntryType::Continuous
            if is_certificate_path(&resolved)
                || (ldcache::is_library_name(name) && !writer.rootfs.exists(&resolved)) =>
        {
            // Read whole: certificates for the trust store, new libraries for their sonames.
            let certificate = is_certificate_path(&resolved);
            let limit = if certificate {
                MAX_CONFFILE_BYTES
            } else {
                MAX_LIBRARY_BYTES
            };
            if entry.size() > limit {
                return Err(refuse(format!(
                    "{path:?} is larger than the {limit} bytes drydock reads of such a file"
                )));
            }
            let mut content = Vec::new();
            entry.read_to_end(&mut content).map_err(io)?;
            writer.written.insert(resolved.clone());
            xattr(writer).map_err(io)?;
            writer
                .tar
                .append_data(&mut header, &resolved, &content[..])
                .map_err(io)?;
            if certificate {
                writer.certificates.insert(resolved, content);
            } else {
                writer.libraries.insert(resolved, content);
            }
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            writer.written.insert(resolved.clone());
            xattr(writer).map_err(io)?;
            writer
                .tar
                .append_data(&mut header, &resolved, entry)
                .map_err(io)?;
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_default();
            if !link_stays_inside(path, &target) {
                return Err(refuse(format!(
                    "{path:?} is a symlink to {target:?}, outside the root"
                )));
            }
            writer.written.insert(resolved.clone());
            writer
                .tar
                .append_link(&mut header, &resolved, &target)
                .map_err(io)?;
            if ldcache::is_library_name(name) {
                writer.library_links.insert(resolved, target);
            }
        }
        tar::EntryType::Link => {
            let target = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_default();
            let target = repo::deb::normalize_path(&target);
            if target.split('/').any(|c| c == "..") || !own_paths.contains_key(&target) {
                return Err(refuse(format!(
                    "{path:?} is a hard link to {target:?}, which the package does not contain"
                )));
            }
            let target = writer.resolve(&target);
            writer.written.insert(resolved.clone());
            writer
                .tar
                .append_link(&mut header, &resolved, &target)
                .map_err(io)?;
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            return Err(refuse(format!(
                "{path:?} is a device node or FIFO, which drydock never installs"
            )));
        }
        tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
        other => {
            return Err(refuse(format!(
                "{path:?} has an unsupported type {other:?}"
            )));
        }
    }
    Ok(true)
}

/// Writes the updated database and the whiteouts; returns the whiteouts.
fn write_database(
    writer: &mut Writer,
    db: &InstalledDb,
    unpacked: &[Unpacked],
) -> Result<Vec<String>, PatchError> {
    let mut whiteouts = Vec::new();
    match db.kind {
        DbKind::Status => {
            let records: Vec<NewRecord> = unpacked.iter().map(|u| u.record.clone()).collect();
            let status = dpkgdb::updated_status(db, &records);
            writer.generated(STATUS, status.as_bytes())?;
            for package in unpacked {
                let info = dpkgdb::info_name(&package.record.facts);
                let mut new_files = BTreeSet::new();
                let list = package.list.join("\n") + "\n";
                writer.generated(&format!("{INFO}/{info}.list"), list.as_bytes())?;
                new_files.insert(format!("{info}.list"));
                for (member, content) in &package.control_files {
                    if member == "control" || member.contains('/') {
                        continue;
                    }
                    writer.generated_with_mode(
                        &format!("{INFO}/{info}.{member}"),
                        content,
                        info_file_mode(member),
                    )?;
                    new_files.insert(format!("{info}.{member}"));
                }
                if let Some(old) = &package.old_info_name {
                    for name in db.info_files.iter().filter(|n| is_info_file_of(n, old)) {
                        if !new_files.contains(name) {
                            whiteouts.push(format!("{INFO}/{name}"));
                        }
                    }
                }
            }
            for (info, lines) in takeovers(db, unpacked, &diverted(writer.rootfs))? {
                let list = lines.join("\n") + "\n";
                writer.generated(&format!("{INFO}/{info}.list"), list.as_bytes())?;
            }
            whiteouts.extend(removed_files(writer, db, unpacked));
            whiteouts.extend(stale_bytecode(writer, unpacked));
            if let Some(states) = extended_states(writer.rootfs, unpacked.iter().map(|u| &u.record))
            {
                writer.generated(dpkgdb::EXTENDED_STATES, states.as_bytes())?;
            }
        }
        DbKind::StatusD => {
            for package in unpacked {
                let file = package
                    .status_d_file
                    .clone()
                    .unwrap_or_else(|| package.record.facts.name.clone());
                let paragraph = dpkgdb::status_paragraph(&package.record, false);
                writer.generated(&format!("{STATUS_D}/{file}"), paragraph.as_bytes())?;
                let md5sums = format!("{STATUS_D}/{file}.md5sums");
                match package.control_files.get("md5sums") {
                    Some(content) => writer.generated(&md5sums, content)?,
                    None if writer.rootfs.exists(&md5sums) => whiteouts.push(md5sums),
                    None => {}
                }
            }
        }
    }
    let shipped_certificates = rebuild_trust_store(writer, unpacked, &mut whiteouts)?;
    record_debconf(writer, unpacked, shipped_certificates.as_ref())?;
    report_triggers(writer, unpacked, shipped_certificates.is_some());
    whiteouts.sort();
    whiteouts.dedup();
    update_linker_cache(writer, unpacked, &whiteouts)?;
    for path in &whiteouts {
        writer.whiteout(path)?;
    }
    Ok(whiteouts)
}

/// What the patch does not run of a package's maintainer scripts: the
/// scripts themselves (their effects that drydock reproduces are listed
/// separately; debconf's by [`record_debconf`]).
fn unrun_scripts(package: &str, control: &BTreeMap<String, Vec<u8>>) -> Vec<ScriptEffect> {
    let scripts: Vec<&str> = SCRIPTS
        .iter()
        .copied()
        .filter(|s| control.contains_key(*s))
        .collect();
    let mut effects = Vec::new();
    if !scripts.is_empty() {
        effects.push(ScriptEffect {
            package: package.to_string(),
            effect: format!(
                "maintainer scripts ({}) beyond the effects listed as reproduced",
                scripts.join(", ")
            ),
            handling: Handling::NotRun,
            fix_depends_on_it: false,
        });
    }
    effects
}

/// The triggers the upgraded packages' new files, `triggers` files and
/// scripts activate, each reported on the interested package: `ldconfig`
/// as reproduced when the image has a linker cache drydock updated, the
/// trust store's when `ca-certificates` itself was rebuilt, any other as
/// not run. Packages the patch upgrades are left out: dpkg configures them
/// instead. Files a package no longer ships are not looked at.
fn report_triggers(writer: &mut Writer, unpacked: &[Unpacked], trust_store_rebuilt: bool) {
    let rootfs = writer.rootfs;
    let named: Vec<(String, String)> = rootfs
        .list_files(triggers::DIR)
        .into_iter()
        .filter_map(|path| {
            let name = path.rsplit('/').next()?.to_string();
            Some((name, rootfs.text(&path)?))
        })
        .collect();
    let interests = triggers::Interests::parse(
        &rootfs.text(triggers::FILE_INTERESTS).unwrap_or_default(),
        named.iter().map(|(n, t)| (n.as_str(), t.as_str())),
    );
    let control_text = |package: &Unpacked, member: &str| {
        package
            .control_files
            .get(member)
            .map(|c| String::from_utf8_lossy(c).into_owned())
    };
    let texts: Vec<(Option<String>, Vec<String>)> = unpacked
        .iter()
        .map(|p| {
            (
                control_text(p, "triggers"),
                SCRIPTS.iter().filter_map(|s| control_text(p, s)).collect(),
            )
        })
        .collect();
    let activators: Vec<triggers::Activator> = unpacked
        .iter()
        .zip(&texts)
        .map(|(package, (triggers, scripts))| triggers::Activator {
            package: &package.record.facts.name,
            paths: &package.list,
            triggers: triggers.as_deref(),
            scripts: scripts.iter().map(String::as_str).collect(),
        })
        .collect();
    let linker_cache = rootfs
        .read(ldcache::PATH)
        .is_some_and(|f| ldcache::Cache::parse(f.content).is_ok());
    let upgraded: HashSet<&str> = unpacked
        .iter()
        .map(|u| u.record.facts.name.as_str())
        .collect();
    for ((interested, trigger), by) in triggers::activated(&interests, &activators) {
        // dpkg drops the pending triggers of a package it configures
        // anyway: its postinst runs instead (reported with its scripts).
        if upgraded.contains(interested.split(':').next().unwrap_or(&interested)) {
            continue;
        }
        let reproduced = (trigger == "ldconfig" && linker_cache)
            || (interested == "ca-certificates"
                && trigger.starts_with("update-ca-certificates")
                && trust_store_rebuilt);
        let by: Vec<String> = by.into_iter().collect();
        writer.effects.push(ScriptEffect {
            package: interested,
            effect: format!("trigger {trigger} (activated by {})", by.join(", ")),
            handling: if reproduced {
                Handling::Reproduced
            } else {
                Handling::NotRun
            },
            fix_depends_on_it: false,
        });
    }
}

/// Under which names debconf registers a package's templates: the
/// package's name when apt's `dpkg-preconfigure` hook (with apt-utils) or the `preinst`
/// loads them (debconf reads it from the control file), the script's name
/// in `info/` when the `postinst` does (`libpam0g:amd64` for a Multi-Arch:
/// same package). None when no script uses debconf and apt has no hook.
fn debconf_owners(rootfs: &Rootfs, package: &Unpacked) -> Vec<String> {
    let uses_debconf = |script: &str| {
        package.control_files.get(script).is_some_and(|text| {
            DEBCONF_MODULES
                .iter()
                .any(|module| text.windows(module.len()).any(|w| w == module.as_bytes()))
        })
    };
    let mut owners = Vec::new();
    if rootfs.exists(APT_EXTRACTTEMPLATES) || uses_debconf("preinst") {
        owners.push(package.record.facts.name.clone());
    }
    if uses_debconf("postinst") {
        owners.push(dpkgdb::info_name(&package.record.facts));
    }
    owners.dedup();
    owners
}

/// The libraries through which maintainer scripts talk to debconf (shell, Perl).
const DEBCONF_MODULES: [&str; 2] = [
    "/usr/share/debconf/confmodule",
    "Debconf::Client::ConfModule",
];
/// What apt's `dpkg-preconfigure` hook needs to read templates before dpkg
/// unpacks (apt-utils); without it the hook does nothing.
const APT_EXTRACTTEMPLATES: &str = "usr/bin/apt-extracttemplates";

/// What debconf records when the upgraded packages' scripts run: their
/// templates registered in `templates.dat` and, for `ca-certificates`, the
/// answers its `config` script and `postinst` set in `config.dat` (from
/// the certificates the upgrade ships, `shipped`). Other `config` scripts'
/// answers are reported as not run. Both files are written, with debconf's
/// `-old` backups, only when they change.
fn record_debconf(
    writer: &mut Writer,
    unpacked: &[Unpacked],
    shipped: Option<&BTreeSet<String>>,
) -> Result<(), PatchError> {
    // A database that is not UTF-8 is left alone (and the templates reported
    // as not registered) rather than rewritten with replacement characters.
    let read = |path: &str| {
        writer
            .rootfs
            .read(path)
            .and_then(|f| String::from_utf8(f.content.to_vec()).ok())
    };
    let databases = read(debconf::CONFIG).zip(read(debconf::TEMPLATES));
    let mut config = None;
    let mut templates = None;
    if let Some((config_text, templates_text)) = &databases {
        config = Some(debconf::Database::parse(config_text));
        templates = Some(debconf::Database::parse(templates_text));
    }
    let mut effects = Vec::new();
    for package in unpacked {
        let name = &package.record.facts.name;
        let effect = |effect: &str, handling: Handling| ScriptEffect {
            package: name.clone(),
            effect: effect.to_string(),
            handling,
            fix_depends_on_it: false,
        };
        // Templates nothing of the package's has debconf read are not in
        // apt's result either.
        let owners = debconf_owners(writer.rootfs, package);
        if let Some(text) = package
            .control_files
            .get("templates")
            .filter(|_| !owners.is_empty())
        {
            let registered = match (&mut config, &mut templates) {
                (Some(config), Some(templates)) => {
                    debconf::parse_templates(&String::from_utf8_lossy(text)).is_some_and(|loaded| {
                        owners
                            .iter()
                            .all(|owner| debconf::register(config, templates, owner, &loaded))
                    })
                }
                _ => false,
            };
            effects.push(if registered {
                effect(
                    "debconf: templates registered (var/cache/debconf/templates.dat)",
                    Handling::Reproduced,
                )
            } else {
                effect(
                    "debconf templates and answers (var/cache/debconf)",
                    Handling::NotRun,
                )
            });
        }
        let Some(script) = package.control_files.get("config") else {
            continue;
        };
        let recorded = match (&mut config, shipped) {
            (Some(config), Some(shipped)) if name == "ca-certificates" => {
                debconf::record_ca_certificates(
                    config,
                    &String::from_utf8_lossy(script),
                    &read(truststore::CONF).unwrap_or_default(),
                    shipped,
                )
            }
            _ => false,
        };
        effects.push(if recorded {
            effect(
                "config script: ca-certificates/enable_crts answers (var/cache/debconf/config.dat)",
                Handling::Reproduced,
            )
        } else {
            effect(
                "debconf config script: the answers it records (var/cache/debconf/config.dat)",
                Handling::NotRun,
            )
        });
    }
    writer.effects.extend(effects);
    let Some((config_text, templates_text)) = databases else {
        return Ok(());
    };
    for (path, before, after) in [
        (debconf::CONFIG, config_text, config),
        (debconf::TEMPLATES, templates_text, templates),
    ] {
        let after = after.map(|d| d.render()).unwrap_or_default();
        if after != before {
            writer.generated(&format!("{path}-old"), before.as_bytes())?;
            writer.generated(path, after.as_bytes())?;
        }
    }
    Ok(())
}

/// The owners, modes and capabilities a package's postinst sets on its
/// files, by resolved path, recorded as reproduced effects.
fn script_settings(
    writer: &mut Writer,
    package: &str,
    control: &BTreeMap<String, Vec<u8>>,
) -> BTreeMap<String, postinst::Setting> {
    let Some(script) = control.get("postinst") else {
        return BTreeMap::new();
    };
    let table = |path: &str| writer.rootfs.text(path).unwrap_or_default();
    let found = postinst::settings(
        &String::from_utf8_lossy(script),
        &table("etc/passwd"),
        &table("etc/group"),
    );
    let mut resolved = BTreeMap::new();
    for (path, setting) in found {
        writer.effects.push(ScriptEffect {
            package: package.to_string(),
            effect: format!("postinst: {}", setting.commands.join("; ")),
            handling: Handling::Reproduced,
            fix_depends_on_it: false,
        });
        resolved.insert(writer.resolve(path.trim_start_matches('/')), setting);
    }
    resolved
}

/// Whether a resolved path is where the trust store's certificates are.
fn is_certificate_path(path: &str) -> bool {
    [truststore::SHARED_DIR, truststore::LOCAL_DIR]
        .iter()
        .any(|dir| path.strip_prefix(dir).is_some_and(|r| r.starts_with('/')))
}

/// What `ca-certificates`' postinst and `update-ca-certificates` change,
/// when the layer upgrades `ca-certificates`: the configuration, the links
/// and hash links in `etc/ssl/certs`, the bundle. Hooks are reported as not
/// run. Returns the certificates the package now ships (`mozilla/X.crt`).
fn rebuild_trust_store(
    writer: &mut Writer,
    unpacked: &[Unpacked],
    whiteouts: &mut Vec<String>,
) -> Result<Option<BTreeSet<String>>, PatchError> {
    const PACKAGE: &str = "ca-certificates";
    if !unpacked.iter().any(|u| u.record.facts.name == PACKAGE) {
        return Ok(None);
    }
    let rootfs = writer.rootfs;
    let deleted: BTreeSet<String> = whiteouts.iter().map(|w| writer.resolve(w)).collect();
    let collect = |dir: &str| -> BTreeMap<String, Vec<u8>> {
        let resolved = writer.resolve(dir);
        let mut files: BTreeMap<String, Vec<u8>> = rootfs
            .files_under(&resolved)
            .into_iter()
            .filter(|(name, _)| !deleted.contains(&format!("{resolved}/{name}")))
            .map(|(name, content)| (name, content.to_vec()))
            .collect();
        let prefix = format!("{resolved}/");
        for (path, content) in &writer.certificates {
            if let Some(name) = path.strip_prefix(&prefix) {
                files.insert(name.to_string(), content.clone());
            }
        }
        files
    };
    let shared = collect(truststore::SHARED_DIR);
    let local = collect(truststore::LOCAL_DIR);
    let certs_dir = writer.resolve(truststore::CERTS_DIR);
    let before: BTreeMap<String, CertsEntry> = rootfs
        .children(&certs_dir)
        .into_iter()
        .map(|path| {
            let entry = match (rootfs.link_target(&path), rootfs.read(&path)) {
                (Some(target), _) => CertsEntry::Symlink(target.to_string()),
                (None, Some(file)) => CertsEntry::File(file.content.to_vec()),
                (None, None) => CertsEntry::Other,
            };
            (path[certs_dir.len() + 1..].to_string(), entry)
        })
        .collect();
    let conf = rootfs.text(truststore::CONF);
    let update = truststore::rebuild(&truststore::Inputs {
        conf: conf.as_deref(),
        shared: &shared,
        local: &local,
        certs: &before,
        trust_new: rootfs
            .text(debconf::CONFIG)
            .map(|text| debconf::Database::parse(&text))
            .is_none_or(|d| d.value(debconf::TRUST_NEW).is_none_or(|v| v == "yes")),
    });
    if let Some(conf) = &update.conf {
        writer.generated(truststore::CONF, conf.as_bytes())?;
    }
    for (name, entry) in update.written(&before) {
        let path = format!("{certs_dir}/{name}");
        match entry {
            CertsEntry::Symlink(target) => writer.symlink(&path, target)?,
            CertsEntry::File(content) => writer.generated(&path, content)?,
            CertsEntry::Other => {}
        }
    }
    whiteouts.extend(
        update
            .removed(&before)
            .map(|name| format!("{certs_dir}/{name}")),
    );
    for warning in &update.warnings {
        tracing::warn!("trust store: {warning}");
    }
    writer.effects.push(ScriptEffect {
        package: PACKAGE.to_string(),
        effect: "update-ca-certificates: /etc/ca-certificates.conf, /etc/ssl/certs links, hash links and bundle".to_string(),
        handling: Handling::Reproduced,
        fix_depends_on_it: true,
    });
    // Hooks keep other trust stores (Java's cacerts, …) in step; a certificate
    // the update distrusts stays trusted there until they run.
    for hook in rootfs.children(truststore::HOOKS_DIR) {
        writer.effects.push(ScriptEffect {
            package: PACKAGE.to_string(),
            effect: format!("update-ca-certificates hook /{hook}"),
            handling: Handling::NotRun,
            fix_depends_on_it: true,
        });
    }
    Ok(Some(
        shared
            .into_keys()
            .filter(|name| name.ends_with(".crt"))
            .collect(),
    ))
}

/// Adds the libraries the layer brings to `etc/ld.so.cache` and drops the
/// ones it deletes, as `ldconfig` would; leaves a cache it cannot read (or
/// an image without one) alone, since the linker then searches its default
/// directories anyway.
fn update_linker_cache(
    writer: &mut Writer,
    unpacked: &[Unpacked],
    removed: &[String],
) -> Result<(), PatchError> {
    let Some(mut cache) = writer
        .rootfs
        .read(ldcache::PATH)
        .and_then(|f| ldcache::Cache::parse(f.content).ok())
    else {
        return Ok(());
    };
    // The cache names directories as the linker configuration does; match them after resolving symlinks.
    let mut directories: BTreeMap<String, String> = BTreeMap::new();
    for entry in &cache.entries {
        if let Some((dir, _)) = entry.value.rsplit_once('/') {
            directories
                .entry(writer.resolve(dir.trim_start_matches('/')))
                .or_insert_with(|| dir.to_string());
        }
    }
    let mut added: Vec<(String, String)> = Vec::new();
    for path in unpacked.iter().flat_map(|u| &u.list) {
        let resolved = writer.resolve(path.trim_start_matches('/'));
        let Some((dir, _)) = resolved.rsplit_once('/') else {
            continue;
        };
        let new = writer.libraries.contains_key(&resolved)
            || writer.library_links.contains_key(&resolved);
        if let (true, Some(cached), Some(key)) =
            (new, directories.get(dir), library_key(writer, &resolved))
        {
            added.push((key.clone(), format!("{cached}/{key}")));
        }
    }
    let as_cached = |path: &str| {
        let (dir, name) = path.trim_start_matches('/').rsplit_once('/')?;
        let cached = directories.get(&writer.resolve(dir))?;
        Some(format!("{cached}/{name}"))
    };
    let removed: Vec<String> = removed.iter().filter_map(|p| as_cached(p)).collect();
    let mut changed = cache.update(&added, &removed);
    // The new ldconfig rewrites the cache when libc-bin (which ships it) is upgraded.
    if let Some(libc_bin) = unpacked.iter().find(|u| u.record.facts.name == "libc-bin") {
        changed |= cache.set_generator_version(&libc_bin.record.facts.version);
    }
    if changed {
        writer.generated(ldcache::PATH, &cache.write())?;
        writer.linker_cache_updated = true;
    }
    Ok(())
}

/// The key `ldconfig` files a library under: the ELF soname of the file a
/// name leads to, or, for a symlink straight to its soname file (or a `.so`
/// link to it), the link's own name (glibc's `search_dir`). `None` when the
/// file is not one the layer brings.
fn library_key(writer: &Writer, path: &str) -> Option<String> {
    let mut current = path.to_string();
    let mut is_link = false;
    for _ in 0..MAX_LINK_HOPS {
        let target = writer
            .library_links
            .get(&current)
            .cloned()
            .or_else(|| writer.rootfs.link_target(&current).map(str::to_string));
        let Some(target) = target else {
            let content = writer.libraries.get(&current)?;
            let real = current.rsplit('/').next().unwrap_or(&current);
            let soname = ldcache::soname(content).unwrap_or_else(|| real.to_string());
            let name = path.rsplit('/').next().unwrap_or(path);
            let linked_to_soname =
                real == soname || (real.ends_with(".so") && soname.starts_with(real));
            return Some(if is_link && linked_to_soname {
                name.to_string()
            } else {
                soname
            });
        };
        is_link = true;
        let joined = if target.starts_with('/') {
            target
        } else {
            let dir = current.rsplit_once('/').map_or("", |(d, _)| d);
            format!("{dir}/{target}")
        };
        current = writer.resolve(&pkgdb::rootfs::clean_path(&joined));
    }
    None
}

/// How many symlinks [`library_key`] follows.
const MAX_LINK_HOPS: usize = 8;

/// Files the old versions listed that nothing lists any more and that the
/// image has; a directory only when nothing else is left in it, since dpkg
/// removes only empty directories.
fn removed_files(writer: &Writer, db: &InstalledDb, unpacked: &[Unpacked]) -> Vec<String> {
    let replaced: BTreeSet<&str> = unpacked
        .iter()
        .filter_map(|u| u.old_info_name.as_deref())
        .collect();
    let mut kept: HashSet<&str> = HashSet::new();
    for (name, lines) in &db.lists {
        if !replaced.contains(name.as_str()) {
            kept.extend(lines.iter().map(String::as_str));
        }
    }
    for package in unpacked {
        kept.extend(package.list.iter().map(String::as_str));
        kept.extend(package.record.conffiles.iter().map(|c| c.path.as_str()));
    }
    let mut candidates: BTreeSet<String> = BTreeSet::new();
    for package in unpacked {
        let Some(old) = package.old_info_name.as_ref().and_then(|n| db.lists.get(n)) else {
            continue;
        };
        for path in old {
            if path == "/." || kept.contains(path.as_str()) {
                continue;
            }
            let resolved = writer.resolve(path.trim_start_matches('/'));
            let present = writer.rootfs.is_symlink(&resolved) || writer.rootfs.exists(&resolved);
            if present && !writer.written.contains(&resolved) {
                candidates.insert(resolved);
            }
        }
    }
    // Deepest first, so a directory is judged after what was in it.
    let mut ordered: Vec<&String> = candidates.iter().collect();
    ordered.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    let mut removed: BTreeSet<String> = BTreeSet::new();
    for path in ordered {
        let is_directory = !writer.rootfs.is_symlink(path) && writer.rootfs.is_dir(path);
        if is_directory {
            let inside = format!("{path}/");
            let emptied = writer
                .rootfs
                .children(path)
                .iter()
                .all(|child| removed.contains(child))
                && !writer.written.iter().any(|w| w.starts_with(&inside));
            if !emptied {
                continue;
            }
        }
        removed.insert(path.clone());
    }
    // A whiteout of a directory already deletes what was in it.
    let whole: Vec<String> = removed
        .iter()
        .filter(|p| writer.rootfs.is_dir(p) && !writer.rootfs.is_symlink(p))
        .map(|p| format!("{p}/"))
        .collect();
    removed
        .into_iter()
        .filter(|p| !whole.iter().any(|dir| p.starts_with(dir.as_str())))
        .collect()
}

/// Files an upgraded package now ships that another installed package
/// owns: dpkg takes them over when the new package `Replaces` the owner,
/// and drops them from the owner's file list (returned: info name → its
/// new `.list` lines); without `Replaces` dpkg refuses to overwrite them,
/// and so does the patch. Copies of one `Multi-Arch: same` package share
/// files legitimately.
fn takeovers(
    db: &InstalledDb,
    unpacked: &[Unpacked],
    diverted: &HashSet<String>,
) -> Result<BTreeMap<String, Vec<String>>, PatchError> {
    let replaced: BTreeSet<&str> = unpacked
        .iter()
        .filter_map(|u| u.old_info_name.as_deref())
        .collect();
    let owners: BTreeMap<String, &crate::plan::Facts> = db
        .entries
        .iter()
        .filter_map(|e| e.facts.as_ref())
        .map(|f| (dpkgdb::info_name(f), f))
        .collect();
    let mut changed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in unpacked {
        let files: HashSet<&str> = package
            .list
            .iter()
            .map(String::as_str)
            .filter(|line| {
                *line != "/." && !package.directories.contains(*line) && !diverted.contains(*line)
            })
            .collect();
        let facts = &package.record.facts;
        let replaces = dpkgdb::control_field(&package.record.control, "Replaces")
            .map(|field| crate::relation::parse(&field))
            .transpose()
            .map_err(|source| PatchError::BadReplaces {
                package: facts.name.clone(),
                source,
            })?
            .unwrap_or_default();
        for (info, lines) in &db.lists {
            let Some(owner) = owners.get(info) else {
                continue;
            };
            if replaced.contains(info.as_str()) || owner.name == facts.name {
                continue;
            }
            let current = changed.get(info).unwrap_or(lines);
            let taken: Vec<&String> = current
                .iter()
                .filter(|l| files.contains(l.as_str()))
                .collect();
            let Some(first) = taken.first() else {
                continue;
            };
            let declared = replaces
                .iter()
                .flatten()
                .any(|r| r.name == owner.name && r.accepts(&owner.version));
            if !declared {
                return Err(PatchError::Takeover {
                    package: facts.name.clone(),
                    version: facts.version.clone(),
                    path: first.to_string(),
                    owner: owner.name.clone(),
                    owner_version: owner.version.clone(),
                });
            }
            let kept: Vec<String> = current
                .iter()
                .filter(|l| !files.contains(l.as_str()))
                .cloned()
                .collect();
            changed.insert(info.clone(), kept);
        }
    }
    Ok(changed)
}

/// The paths `dpkg-divert` moved aside, and where to (`var/lib/dpkg/diversions`:
/// lines of three, from, to, the package): two packages may name them.
fn diverted(rootfs: &Rootfs) -> HashSet<String> {
    let Some(file) = rootfs.read(dpkgdb::DIVERSIONS) else {
        return HashSet::new();
    };
    String::from_utf8_lossy(file.content)
        .lines()
        .collect::<Vec<_>>()
        .chunks(3)
        .flat_map(|triple| triple.iter().take(2).map(|p| p.to_string()))
        .collect()
}

/// Precompiled bytecode (`__pycache__/NAME.*.pyc`) of the Python modules
/// the layer replaces: stale once their source changed, so deleted, as
/// `py3clean` does before the postinst compiles them again.
fn stale_bytecode(writer: &Writer, unpacked: &[Unpacked]) -> Vec<String> {
    let mut stale = Vec::new();
    for path in unpacked.iter().flat_map(|u| &u.list) {
        let Some(module) = path.strip_suffix(".py") else {
            continue;
        };
        let Some((dir, stem)) = module.trim_start_matches('/').rsplit_once('/') else {
            continue;
        };
        let cache = writer.resolve(&format!("{dir}/__pycache__"));
        let prefix = format!("{cache}/{stem}.");
        stale.extend(
            writer
                .rootfs
                .children(&cache)
                .into_iter()
                .filter(|c| c.starts_with(&prefix) && c.ends_with(".pyc"))
                .filter(|c| c[prefix.len()..].matches('.').count() >= 1),
        );
    }
    stale
}

/// apt's `extended_states` with the packages the plan adds marked as
/// installed automatically, as apt marks the dependencies it pulls in; apt
/// writes the file (empty when nothing is marked) whenever it installs.
/// `None` for an image without apt's state directory.
pub(crate) fn extended_states<'a>(
    rootfs: &Rootfs,
    records: impl IntoIterator<Item = &'a NewRecord>,
) -> Option<String> {
    if !rootfs.is_dir("var/lib/apt") {
        return None;
    }
    let mut text = rootfs.text(dpkgdb::EXTENDED_STATES).unwrap_or_default();
    for record in records.into_iter().filter(|r| r.replaces.is_none()) {
        let facts = &record.facts;
        if !text.is_empty() && !text.ends_with("\n\n") {
            text.push('\n');
        }
        // apt ends every paragraph with a blank line.
        text.push_str(&format!(
            "Package: {}\nArchitecture: {}\nAuto-Installed: 1\n\n",
            facts.name, facts.architecture
        ));
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_targets_must_stay_inside_the_root() {
        assert!(link_stays_inside("usr/lib/x/libfoo.so", "libfoo.so.1"));
        assert!(link_stays_inside("usr/bin/x", "../../etc/alternatives/x"));
        assert!(link_stays_inside("usr/bin/x", "/etc/passwd"));
        assert!(!link_stays_inside("usr/bin/x", "../../../etc/passwd"));
        assert!(!link_stays_inside("x", "../y"));
    }

    /// A `.deb` whose data archive has one entry, written with raw header
    /// bytes so that names a careful tar writer refuses can be tested.
    fn deb_with(dir: &std::path::Path, name: &[u8], kind: tar::EntryType, link: &[u8]) -> DebFile {
        let tar_of = |entries: Vec<(tar::Header, Vec<u8>)>| {
            let mut builder = tar::Builder::new(Vec::new());
            for (header, data) in entries {
                builder.append(&header, &data[..]).unwrap();
            }
            builder.into_inner().unwrap()
        };
        let mut control = tar::Header::new_gnu();
        control.set_path("./control").unwrap();
        let control_text = b"Package: evil\nVersion: 1\nArchitecture: amd64\n".to_vec();
        control.set_size(control_text.len() as u64);
        control.set_mode(0o644);
        control.set_cksum();
        let mut entry = tar::Header::new_gnu();
        entry.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        entry.as_gnu_mut().unwrap().linkname[..link.len()].copy_from_slice(link);
        entry.set_entry_type(kind);
        entry.set_mode(0o644);
        entry.set_size(0);
        entry.set_cksum();
        let path = dir.join("evil.deb");
        let mut archive = ar::Builder::new(std::fs::File::create(&path).unwrap());
        for (member, data) in [
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar", tar_of(vec![(control, control_text)])),
            ("data.tar", tar_of(vec![(entry, Vec::new())])),
        ] {
            let header = ar::Header::new(member.as_bytes().to_vec(), data.len() as u64);
            archive.append(&header, &data[..]).unwrap();
        }
        DebFile::new(path)
    }

    #[test]
    fn refuses_unsafe_package_entries() {
        let step = crate::plan::test_step("evil", ("amd64", "1"), false, &[]);
        let db = InstalledDb {
            kind: DbKind::Status,
            entries: vec![],
            lists: BTreeMap::new(),
            info_files: BTreeSet::new(),
        };
        let cases: [(&[u8], tar::EntryType, &[u8], &str); 5] = [
            (b"./etc/../../evil", tar::EntryType::Regular, b"", "'..'"),
            (b"./dev/sda", tar::EntryType::Block, b"", "device node"),
            (
                b"./usr/bin/x",
                tar::EntryType::Symlink,
                b"../../../etc/shadow",
                "outside the root",
            ),
            (
                b"./usr/bin/y",
                tar::EntryType::Link,
                b"/etc/shadow",
                "hard link",
            ),
            (
                b"./usr/.wh.passwd",
                tar::EntryType::Regular,
                b"",
                "whiteout",
            ),
        ];
        for (name, kind, link, message) in cases {
            let dir = tempfile::tempdir().unwrap();
            let deb = deb_with(dir.path(), name, kind, link);
            let input = [PackageInput { step: &step, deb }];
            let error = build(&db, &Rootfs::default(), &input).unwrap_err();
            assert!(
                matches!(error, PatchError::UnsafePackage { .. })
                    && error.to_string().contains(message),
                "{}: {error}",
                String::from_utf8_lossy(name)
            );
        }
        // The same package with a harmless entry builds.
        let dir = tempfile::tempdir().unwrap();
        let deb = deb_with(dir.path(), b"./usr/bin/ok", tar::EntryType::Regular, b"");
        let built = build(
            &db,
            &Rootfs::default(),
            &[PackageInput { step: &step, deb }],
        )
        .unwrap();
        assert!(built.uncompressed_size > 0);
    }

    #[test]
    fn files_taken_over_leave_the_owners_list_only_with_replaces() {
        let facts = |name: &str, version: &str| {
            crate::plan::Facts::new(
                [name, "amd64", version, name, version],
                None,
                crate::plan::Fields::default(),
            )
            .unwrap()
        };
        let text = "Package: old\nStatus: install ok installed\nVersion: 1\n";
        let db = InstalledDb {
            kind: DbKind::Status,
            entries: vec![dpkgdb::Entry {
                facts: Some(facts("old", "1")),
                text: text.to_string(),
                file: None,
                conffiles: vec![],
            }],
            lists: [(
                "old".to_string(),
                vec![
                    "/.".into(),
                    "/usr".into(),
                    "/usr/bin".into(),
                    "/usr/bin/tool".into(),
                    "/usr/bin/other".into(),
                ],
            )]
            .into(),
            info_files: BTreeSet::new(),
        };
        let new = |control: &str| Unpacked {
            record: NewRecord {
                facts: facts("new", "2"),
                control: control.to_string(),
                conffiles: vec![],
                replaces: None,
                want: "install".into(),
            },
            list: vec![
                "/.".into(),
                "/usr".into(),
                "/usr/bin".into(),
                "/usr/bin/tool".into(),
            ],
            directories: ["/usr".to_string(), "/usr/bin".to_string()].into(),
            control_files: BTreeMap::new(),
            status_d_file: None,
            old_info_name: None,
        };
        let none = HashSet::new();
        let taken = takeovers(&db, &[new("Package: new\nReplaces: old (<< 2)\n")], &none).unwrap();
        // The shared directories stay the owner's; the file moves.
        assert_eq!(taken["old"], ["/.", "/usr", "/usr/bin", "/usr/bin/other"]);
        let error = takeovers(&db, &[new("Package: new\n")], &none).unwrap_err();
        assert!(error.to_string().contains("/usr/bin/tool"), "{error}");
        // A Replaces that does not cover the installed version is no Replaces.
        assert!(takeovers(&db, &[new("Package: new\nReplaces: old (<< 1)\n")], &none).is_err());
        // A diverted path may be shipped by both.
        let diverted: HashSet<String> = ["/usr/bin/tool".to_string()].into();
        assert!(
            takeovers(&db, &[new("Package: new\n")], &diverted)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn reads_conffile_paths_skipping_flagged_lines() {
        let control = b"/etc/a.conf\nremove-on-upgrade /etc/old.conf\n\n/etc/b.conf\n".to_vec();
        let paths: Vec<String> = conffile_paths(Some(&control)).into_iter().collect();
        assert_eq!(paths, ["/etc/a.conf", "/etc/b.conf"]);
    }
}
