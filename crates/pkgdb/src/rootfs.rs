//! A read-only view of an image's root filesystem, built from its layers
//! without unpacking them.
//!
//! Owns two steps. [`scan_layer`] streams one layer tar (plain, gzip or
//! zstd, sniffed from its first bytes) once and keeps only what a package
//! inventory needs: the files in [`WANTED_FILES`] and [`WANTED_DIRS`], the
//! symlinks and directories on the way to them, and the whiteouts and opaque
//! markers that can delete them. The result, [`LayerFiles`], is small and
//! has a compact binary form ([`LayerFiles::encode`]) so it can be cached by
//! layer digest. [`Rootfs::from_layers`] then merges the layers in order as
//! an overlay filesystem does (OCI image-spec "Representing Changes":
//! `.wh.NAME` deletes NAME from lower layers, `.wh..wh..opq` hides a
//! directory's lower contents, whiteouts apply before the layer's own
//! entries) and resolves symlinks inside the view, never outside it.
//!
//! Never writes anything, never follows a path out of the image: tar entry
//! names are cleaned lexically and clamped at the root (as container
//! runtimes do), and symlink targets resolve against the view's root.
//! Every size read from a layer is bounded by [`ScanLimits`].

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::Path;

use oci::Digest;

use crate::error::{Error, Result};

/// Files an inventory reads, relative to the root.
pub const WANTED_FILES: &[&str] = &[
    "etc/os-release",
    "usr/lib/os-release",
    "etc/debian_version",
    "etc/alpine-release",
    "etc/redhat-release",
    "var/lib/dpkg/status",
    "lib/apk/db/installed",
    "usr/lib/apk/db/installed",
    "var/lib/rpm/rpmdb.sqlite",
    "var/lib/rpm/Packages",
    "var/lib/rpm/Packages.db",
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
    "usr/lib/sysimage/rpm/Packages",
    "usr/lib/sysimage/rpm/Packages.db",
    "usr/share/rpm/rpmdb.sqlite",
];

/// Directories whose direct children an inventory reads.
pub const WANTED_DIRS: &[&str] = &["var/lib/dpkg/status.d"];

static INVENTORY: std::sync::LazyLock<Selection> = std::sync::LazyLock::new(Selection::inventory);

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const MAX_SYMLINK_HOPS: usize = 40;

/// Bounds on what one layer may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanLimits {
    /// Decompressed size of the whole tar.
    pub max_layer_bytes: u64,
    /// Size of one kept file.
    pub max_file_bytes: u64,
    /// Total size of the files kept from one layer.
    pub max_kept_bytes: u64,
}

impl Default for ScanLimits {
    fn default() -> ScanLimits {
        ScanLimits {
            max_layer_bytes: 64 << 30,
            max_file_bytes: 256 << 20,
            max_kept_bytes: 512 << 20,
        }
    }
}

/// What one layer holds at the paths an inventory cares about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LayerFiles {
    /// In the layer's tar order.
    pub entries: Vec<LayerEntry>,
    /// The layer has Windows container paths (`Files/Windows/…`).
    pub windows: bool,
}

/// One path a layer holds, and what is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    /// Clean, relative, `/`-separated; for a whiteout the path it deletes,
    /// for an opaque marker the directory it makes opaque.
    pub path: String,
    /// What the layer puts at the path.
    pub kind: EntryKind,
}

/// What a layer puts at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file, with its content when the selection keeps it.
    File(Vec<u8>),
    /// A symbolic link and its target as written.
    Symlink(String),
    /// A directory.
    Dir,
    /// Anything else that occupies the path (device, fifo, a file at a
    /// directory's path, a hard link to a file not kept).
    Other,
    /// A whiteout (`.wh.NAME`): the path is deleted from lower layers.
    Whiteout,
    /// An opaque marker (`.wh..wh..opq`): the directory hides lower layers' contents.
    Opaque,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relevance {
    None,
    /// On the way to a wanted path: its kind matters, its content does not.
    Ancestor,
    Wanted,
}

/// Which paths a layer scan keeps: whole files, the direct children of
/// directories, and every file under a tree. Symlinks and directories on
/// the way to them are kept too, and the whiteouts that can delete them.
/// With `all_paths`, every other path is kept as well, without content: what
/// is where (directory, symlink and its target, other), so that a patch knows
/// which directories exist and what is in them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Files kept whole, relative to the root.
    pub files: Vec<String>,
    /// Directories whose direct children are kept.
    pub dirs: Vec<String>,
    /// Directories under which every file is kept.
    pub trees: Vec<String>,
    /// Whether every other path is kept too, without content.
    pub all_paths: bool,
}

impl Selection {
    /// What a package inventory reads: [`WANTED_FILES`] and [`WANTED_DIRS`].
    pub fn inventory() -> Selection {
        Selection {
            files: WANTED_FILES.iter().map(|f| f.to_string()).collect(),
            dirs: WANTED_DIRS.iter().map(|d| d.to_string()).collect(),
            trees: Vec::new(),
            all_paths: false,
        }
    }

    fn relevance(&self, path: &str) -> Relevance {
        let under = |dir: &str| {
            path.strip_prefix(dir)
                .and_then(|rest| rest.strip_prefix('/'))
        };
        let wanted = self
            .files
            .iter()
            .chain(&self.dirs)
            .chain(&self.trees)
            .any(|w| w == path)
            || self
                .dirs
                .iter()
                .any(|d| under(d).is_some_and(|name| !name.contains('/')))
            || self.trees.iter().any(|t| under(t).is_some());
        if wanted {
            return Relevance::Wanted;
        }
        let ancestor = self
            .files
            .iter()
            .chain(&self.dirs)
            .chain(&self.trees)
            .any(|w| {
                w.strip_prefix(path)
                    .is_some_and(|rest| rest.starts_with('/'))
            });
        if ancestor || self.all_paths {
            Relevance::Ancestor
        } else {
            Relevance::None
        }
    }
}

/// Cleans a path lexically: drops empty and `.` components and resolves
/// `..` without ever going above the root.
pub fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// Reads one layer (an uncompressed, gzip or zstd tar) and keeps what an
/// inventory needs. `layer` names it in errors. Stops at the tar's end; a
/// caller that verifies the blob's digest drains the rest of `reader`.
pub fn scan_layer(layer: &str, reader: &mut dyn Read, limits: &ScanLimits) -> Result<LayerFiles> {
    scan_layer_selecting(layer, reader, limits, &INVENTORY)
}

/// [`scan_layer`], keeping what `selection` names instead of what an inventory needs.
pub fn scan_layer_selecting(
    layer: &str,
    reader: &mut dyn Read,
    limits: &ScanLimits,
    selection: &Selection,
) -> Result<LayerFiles> {
    let layer_error = |message: String| Error::Layer {
        layer: layer.to_string(),
        message,
    };
    let bounded = decompressed(layer, reader, limits.max_layer_bytes)?;
    let mut archive = tar::Archive::new(bounded);
    let tar_error = |source: io::Error| Error::LayerRead {
        layer: layer.to_string(),
        what: "is not a readable tar archive",
        source,
    };
    let mut files = LayerFiles::default();
    let mut kept: u64 = 0;
    for entry in archive.entries().map_err(tar_error)? {
        let mut entry = entry.map_err(tar_error)?;
        let Ok(raw_path) = std::str::from_utf8(&entry.path_bytes()).map(str::to_string) else {
            continue; // no wanted path is non-UTF-8
        };
        if raw_path.starts_with("Files/Windows/") || raw_path.starts_with("Windows/") {
            files.windows = true;
        }
        let path = clean_path(&raw_path);
        let (parent, name) = match path.rsplit_once('/') {
            Some((parent, name)) => (parent, name),
            None => ("", path.as_str()),
        };
        if name == OPAQUE_MARKER {
            if selection.relevance(parent) != Relevance::None {
                files.entries.push(LayerEntry {
                    path: parent.to_string(),
                    kind: EntryKind::Opaque,
                });
            }
            continue;
        }
        if let Some(deleted) = name.strip_prefix(WHITEOUT_PREFIX) {
            let target = if parent.is_empty() {
                deleted.to_string()
            } else {
                format!("{parent}/{deleted}")
            };
            if !deleted.starts_with(WHITEOUT_PREFIX)
                && selection.relevance(&target) != Relevance::None
            {
                files.entries.push(LayerEntry {
                    path: target,
                    kind: EntryKind::Whiteout,
                });
            }
            continue;
        }
        let relevance = selection.relevance(&path);
        if relevance == Relevance::None {
            continue;
        }
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => match entry.link_name_bytes() {
                Some(target) => EntryKind::Symlink(String::from_utf8_lossy(&target).into_owned()),
                None => EntryKind::Other,
            },
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| clean_path(&String::from_utf8_lossy(&t)));
                let earlier = files
                    .entries
                    .iter()
                    .rev()
                    .find(|e| Some(&e.path) == target.as_ref());
                match earlier {
                    Some(LayerEntry {
                        kind: EntryKind::File(content),
                        ..
                    }) if relevance == Relevance::Wanted => {
                        kept += content.len() as u64;
                        EntryKind::File(content.clone())
                    }
                    _ => EntryKind::Other,
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous
                if relevance == Relevance::Wanted =>
            {
                let size = entry.size();
                if size > limits.max_file_bytes {
                    return Err(layer_error(format!(
                        "{path} is {size} bytes, more than the {}-byte limit for a package database",
                        limits.max_file_bytes
                    )));
                }
                kept += size;
                if kept > limits.max_kept_bytes {
                    return Err(layer_error(format!(
                        "the files kept from it exceed {} bytes",
                        limits.max_kept_bytes
                    )));
                }
                let mut content = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut content).map_err(tar_error)?;
                EntryKind::File(content)
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            _ => EntryKind::Other,
        };
        files.entries.push(LayerEntry { path, kind });
    }
    Ok(files)
}

/// The tar inside one layer blob (plain, gzip or zstd, sniffed from its
/// first bytes), failing once more than `limit` bytes come out of it.
pub fn decompressed<'r>(
    layer: &str,
    reader: &'r mut dyn Read,
    limit: u64,
) -> Result<Box<dyn Read + 'r>> {
    let layer_error = |message: String| Error::Layer {
        layer: layer.to_string(),
        message,
    };
    let mut magic = [0u8; 6];
    let mut have = 0;
    while have < magic.len() {
        match reader.read(&mut magic[have..]) {
            Ok(0) => break,
            Ok(n) => have += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::LayerRead {
                    layer: layer.to_string(),
                    what: "cannot be read",
                    source,
                });
            }
        }
    }
    let head = io::Cursor::new(magic[..have].to_vec()).chain(reader);
    let decoded: Box<dyn Read + 'r> = match &magic[..have] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(head)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            Box::new(zstd::Decoder::new(head).map_err(|source| Error::LayerRead {
                layer: layer.to_string(),
                what: "is not a readable zstd stream",
                source,
            })?)
        }
        [0xfd, b'7', b'z', b'X', b'Z', 0] | [b'B', b'Z', b'h', ..] => {
            return Err(layer_error(
                "is xz or bzip2 compressed; OCI layers are plain, gzip or zstd tars".to_string(),
            ));
        }
        _ => Box::new(head),
    };
    Ok(Box::new(Bounded {
        inner: decoded,
        read: 0,
        limit,
    }))
}

/// A reader that fails once more than `limit` bytes came through it.
struct Bounded<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::other(format!(
                "decompressed layer is larger than the {}-byte limit",
                self.limit
            )));
        }
        Ok(n)
    }
}

const CODEC_MAGIC: &[u8; 5] = b"DDLF1";

impl LayerFiles {
    /// Reads the wanted paths of an unpacked root filesystem on disk, as one
    /// layer. Paths are probed from the root down with `lstat`; a symlink is
    /// recorded, never followed by the OS, so nothing outside `root` is read.
    pub fn from_dir(root: &Path, limits: &ScanLimits) -> Result<LayerFiles> {
        let mut probe: BTreeSet<String> = BTreeSet::new();
        for wanted in WANTED_FILES.iter().chain(WANTED_DIRS) {
            let mut prefix = String::new();
            for part in wanted.split('/') {
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(part);
                probe.insert(prefix.clone());
            }
        }
        let mut probe: Vec<String> = probe.into_iter().collect();
        probe.sort_by_key(|p| p.matches('/').count());
        let mut dirs: BTreeSet<String> = BTreeSet::new();
        let mut files = LayerFiles::default();
        for path in probe {
            let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
            if !parent.is_empty() && !dirs.contains(parent) {
                continue;
            }
            let Some(kind) = probe_path(root, &path, limits)? else {
                continue;
            };
            let is_dir = kind == EntryKind::Dir;
            files.entries.push(LayerEntry {
                path: path.clone(),
                kind,
            });
            if is_dir {
                dirs.insert(path.clone());
                if WANTED_DIRS.contains(&path.as_str()) {
                    let dir = root.join(&path);
                    let mut names: Vec<String> = std::fs::read_dir(&dir)
                        .map_err(Error::io(&dir))?
                        .filter_map(|e| e.ok()?.file_name().into_string().ok())
                        .collect();
                    names.sort();
                    for name in names {
                        let child = format!("{path}/{name}");
                        if let Some(kind) = probe_path(root, &child, limits)? {
                            files.entries.push(LayerEntry { path: child, kind });
                        }
                    }
                }
            }
        }
        Ok(files)
    }

    /// A compact binary form for caching by layer digest.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = CODEC_MAGIC.to_vec();
        out.push(u8::from(self.windows));
        out.extend((self.entries.len() as u32).to_le_bytes());
        for entry in &self.entries {
            let (tag, payload): (u8, &[u8]) = match &entry.kind {
                EntryKind::File(content) => (0, content),
                EntryKind::Symlink(target) => (1, target.as_bytes()),
                EntryKind::Dir => (2, &[]),
                EntryKind::Other => (3, &[]),
                EntryKind::Whiteout => (4, &[]),
                EntryKind::Opaque => (5, &[]),
            };
            out.push(tag);
            for field in [entry.path.as_bytes(), payload] {
                out.extend((field.len() as u32).to_le_bytes());
                out.extend(field);
            }
        }
        out
    }

    /// Decodes [`LayerFiles::encode`]'s output; a damaged entry is an error.
    pub fn decode(bytes: &[u8]) -> Result<LayerFiles> {
        let rest = bytes.strip_prefix(CODEC_MAGIC).ok_or_else(|| {
            Error::Cache("not a drydock layer scan (bad magic or version)".to_string())
        })?;
        let mut cursor = Cursor { rest };
        let windows = cursor.take(1)?[0] != 0;
        let count = cursor.u32()?;
        let mut entries = Vec::new();
        for _ in 0..count {
            let tag = cursor.take(1)?[0];
            let path = cursor.string()?;
            let payload = cursor.field()?;
            let kind = match tag {
                0 => EntryKind::File(payload.to_vec()),
                1 => EntryKind::Symlink(
                    String::from_utf8(payload.to_vec())
                        .map_err(|_| Error::Cache("symlink target is not UTF-8".to_string()))?,
                ),
                2 => EntryKind::Dir,
                3 => EntryKind::Other,
                4 => EntryKind::Whiteout,
                5 => EntryKind::Opaque,
                other => return Err(Error::Cache(format!("unknown entry kind {other}"))),
            };
            entries.push(LayerEntry { path, kind });
        }
        if !cursor.rest.is_empty() {
            return Err(Error::Cache(
                "trailing bytes after the last entry".to_string(),
            ));
        }
        Ok(LayerFiles { entries, windows })
    }
}

fn probe_path(root: &Path, path: &str, limits: &ScanLimits) -> Result<Option<EntryKind>> {
    let full = root.join(path);
    let meta = match std::fs::symlink_metadata(&full) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&full)(e)),
    };
    let kind = if meta.is_symlink() {
        let target = std::fs::read_link(&full).map_err(Error::io(&full))?;
        EntryKind::Symlink(target.to_string_lossy().into_owned())
    } else if meta.is_dir() {
        EntryKind::Dir
    } else if meta.is_file() && INVENTORY.relevance(path) == Relevance::Wanted {
        if meta.len() > limits.max_file_bytes {
            return Err(Error::Layer {
                layer: root.display().to_string(),
                message: format!(
                    "{path} is {} bytes, more than the {}-byte limit",
                    meta.len(),
                    limits.max_file_bytes
                ),
            });
        }
        EntryKind::File(std::fs::read(&full).map_err(Error::io(&full))?)
    } else {
        EntryKind::Other
    };
    Ok(Some(kind))
}

struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(Error::Cache("truncated".to_string()));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn field(&mut self) -> Result<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn string(&mut self) -> Result<String> {
        String::from_utf8(self.field()?.to_vec())
            .map_err(|_| Error::Cache("path is not UTF-8".to_string()))
    }
}

/// One version of a file in the merged view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRef<'a> {
    /// The file's bytes.
    pub content: &'a [u8],
    /// The layer the file came from; `None` for a directory root.
    pub layer: Option<&'a Digest>,
}

#[derive(Debug)]
enum Node {
    /// Every version since the path last came into being, oldest first.
    File(Vec<(usize, Vec<u8>)>),
    Symlink(String),
    Dir,
    Other,
}

/// The merged view of an image's layers at the wanted paths.
#[derive(Debug, Default)]
pub struct Rootfs {
    layers: Vec<Option<Digest>>,
    nodes: BTreeMap<String, Node>,
    windows: bool,
}

impl Rootfs {
    /// Merges layers, lowest first; each is named by its digest (the diff
    /// ID, which packages report as their layer).
    pub fn from_layers(layers: impl IntoIterator<Item = (Digest, LayerFiles)>) -> Rootfs {
        let mut rootfs = Rootfs::default();
        for (digest, files) in layers {
            rootfs.apply(Some(digest), files);
        }
        rootfs
    }

    /// A view of one unpacked root filesystem ([`LayerFiles::from_dir`]), with no layer digests.
    pub fn from_dir_files(files: LayerFiles) -> Rootfs {
        let mut rootfs = Rootfs::default();
        rootfs.apply(None, files);
        rootfs
    }

    fn apply(&mut self, digest: Option<Digest>, files: LayerFiles) {
        let layer = self.layers.len();
        self.layers.push(digest);
        self.windows |= files.windows;
        let (deletions, additions): (Vec<_>, Vec<_>) = files
            .entries
            .into_iter()
            .partition(|e| matches!(e.kind, EntryKind::Whiteout | EntryKind::Opaque));
        for entry in deletions {
            let remove_self = entry.kind == EntryKind::Whiteout;
            self.remove_tree(&entry.path, remove_self);
        }
        for LayerEntry { path, kind } in additions {
            match (self.nodes.get_mut(&path), kind) {
                (Some(Node::File(versions)), EntryKind::File(content)) => {
                    versions.push((layer, content))
                }
                (Some(Node::Dir), EntryKind::Dir) => {}
                (None, EntryKind::Dir) => {
                    self.nodes.insert(path, Node::Dir);
                }
                (_, kind) => {
                    self.remove_tree(&path, true);
                    let node = match kind {
                        EntryKind::File(content) => Node::File(vec![(layer, content)]),
                        EntryKind::Symlink(target) => Node::Symlink(target),
                        EntryKind::Dir => Node::Dir,
                        EntryKind::Other | EntryKind::Whiteout | EntryKind::Opaque => Node::Other,
                    };
                    self.nodes.insert(path, node);
                }
            }
        }
    }

    fn remove_tree(&mut self, path: &str, remove_self: bool) {
        if remove_self {
            self.nodes.remove(path);
        }
        // The keys under `path/` are one range of the sorted map.
        let children = format!("{path}/");
        let doomed: Vec<String> = self
            .nodes
            .range(children.clone()..)
            .take_while(|(k, _)| k.starts_with(&children))
            .map(|(k, _)| k.clone())
            .collect();
        for key in doomed {
            self.nodes.remove(&key);
        }
    }

    /// Resolves symlinks along `path` inside the view; `None` on a loop.
    fn resolve(&self, path: &str) -> Option<String> {
        let mut pending: Vec<String> = path.split('/').rev().map(str::to_string).collect();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => done.push(part),
            }
            if let Some(Node::Symlink(target)) = self.nodes.get(&done.join("/")) {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return None;
                }
                done.pop();
                if target.starts_with('/') {
                    done.clear();
                }
                pending.extend(target.split('/').rev().map(str::to_string));
            }
        }
        Some(done.join("/"))
    }

    /// The file at `path` as the image sees it (symlinks followed).
    pub fn read(&self, path: &str) -> Option<FileRef<'_>> {
        self.versions(path).pop()
    }

    /// The file at `path` as text (invalid UTF-8 replaced), for
    /// configuration files read line by line.
    pub fn text(&self, path: &str) -> Option<String> {
        self.read(path)
            .map(|f| String::from_utf8_lossy(f.content).into_owned())
    }

    /// Every version of the file at `path` in the layers since it last came
    /// into being, oldest first; the last is what the image sees.
    pub fn versions(&self, path: &str) -> Vec<FileRef<'_>> {
        let Some(Node::File(versions)) = self.resolve(path).and_then(|p| self.nodes.get(&p)) else {
            return Vec::new();
        };
        versions
            .iter()
            .map(|(layer, content)| FileRef {
                content,
                layer: self.layers.get(*layer).and_then(Option::as_ref),
            })
            .collect()
    }

    /// `path` with the symlinks of its parent directories resolved inside
    /// the view (the last component is not followed); `None` on a loop.
    pub fn resolve_parent(&self, path: &str) -> Option<String> {
        match path.rsplit_once('/') {
            Some((parent, name)) => {
                let parent = self.resolve(parent)?;
                Some(if parent.is_empty() {
                    name.to_string()
                } else {
                    format!("{parent}/{name}")
                })
            }
            None => Some(path.to_string()),
        }
    }

    /// Whether the view has a symlink at exactly `path` (not followed).
    pub fn is_symlink(&self, path: &str) -> bool {
        matches!(self.nodes.get(path), Some(Node::Symlink(_)))
    }

    /// Whether anything (file, directory, other) is at `path`.
    pub fn exists(&self, path: &str) -> bool {
        self.resolve(path)
            .is_some_and(|p| self.nodes.contains_key(&p))
    }

    /// The paths of the files directly inside directory `dir` (as the image
    /// sees them, symlinks followed), sorted.
    pub fn list_files(&self, dir: &str) -> Vec<String> {
        self.children(dir)
            .into_iter()
            .filter(|k| self.read(k).is_some())
            .collect()
    }

    /// The target of the symlink at exactly `path` (not followed).
    pub fn link_target(&self, path: &str) -> Option<&str> {
        match self.nodes.get(path) {
            Some(Node::Symlink(target)) => Some(target),
            _ => None,
        }
    }

    /// Every file under directory `dir` (as the image sees it), by path
    /// relative to `dir`, with its content; symlinks are not followed.
    pub fn files_under(&self, dir: &str) -> BTreeMap<String, &[u8]> {
        self.under(dir)
            .into_iter()
            .filter_map(|(name, node)| match node {
                Node::File(versions) => Some((
                    name.to_string(),
                    versions.last().map(|(_, c)| c.as_slice())?,
                )),
                _ => None,
            })
            .collect()
    }

    /// Every node below directory `dir` (symlinks followed), by path relative to it.
    fn under(&self, dir: &str) -> Vec<(&str, &Node)> {
        let Some(resolved) = self.resolve(dir) else {
            return Vec::new();
        };
        let prefix = format!("{resolved}/");
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, node)| (&k[prefix.len()..], node))
            .collect()
    }

    /// Whether the view has a directory at `path` (symlinks followed).
    pub fn is_dir(&self, path: &str) -> bool {
        self.resolve(path)
            .is_some_and(|p| matches!(self.nodes.get(&p), Some(Node::Dir)))
    }

    /// The paths directly inside directory `dir` (as the image sees it,
    /// symlinks followed), whatever they are, sorted. Complete only for a
    /// view scanned with [`Selection::all_paths`].
    pub fn children(&self, dir: &str) -> Vec<String> {
        let resolved = self.resolve(dir).unwrap_or_default();
        self.under(dir)
            .into_iter()
            .filter(|(name, _)| !name.contains('/'))
            .map(|(name, _)| format!("{resolved}/{name}"))
            .collect()
    }

    /// Whether any layer looked like a Windows container layer.
    pub fn is_windows(&self) -> bool {
        self.windows
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a tar from (path, kind) entries; whiteouts are given by name.
    pub(crate) fn tar(entries: &[(&str, EntryKind)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            let data: &[u8] = match kind {
                EntryKind::File(content) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    content
                }
                EntryKind::Symlink(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_link_name(target).unwrap();
                    &[]
                }
                EntryKind::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    &[]
                }
                _ => {
                    header.set_entry_type(tar::EntryType::Fifo);
                    &[]
                }
            };
            header.set_size(data.len() as u64);
            builder.append_data(&mut header, path, data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn file(content: &str) -> EntryKind {
        EntryKind::File(content.as_bytes().to_vec())
    }

    fn scan(bytes: &[u8]) -> Result<LayerFiles> {
        scan_layer("test", &mut &bytes[..], &ScanLimits::default())
    }

    fn digest(n: u8) -> Digest {
        Digest::sha256_of(&[n])
    }

    #[test]
    fn keeps_only_wanted_paths_in_every_compression() {
        let layer = tar(&[
            ("etc/", EntryKind::Dir),
            (
                "etc/os-release",
                EntryKind::Symlink("../usr/lib/os-release".into()),
            ),
            ("etc/passwd", file("root:x:0:0")),
            ("usr/lib/os-release", file("ID=debian\n")),
            ("var/lib/dpkg/status.d/libc6", file("Package: libc6\n")),
            ("var/lib/dpkg/status.d/libc6/deeper", file("x")),
            ("usr/bin/.wh.ls", EntryKind::Other),
        ]);
        let plain = scan(&layer).unwrap();
        let paths: Vec<_> = plain.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "etc",
                "etc/os-release",
                "usr/lib/os-release",
                "var/lib/dpkg/status.d/libc6"
            ]
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &layer).unwrap();
        assert_eq!(scan(&gz.finish().unwrap()).unwrap(), plain);
        let zst = zstd::encode_all(&layer[..], 1).unwrap();
        assert_eq!(scan(&zst).unwrap(), plain);
        assert_eq!(LayerFiles::decode(&plain.encode()).unwrap(), plain);
    }

    #[test]
    fn merges_whiteouts_opaque_dirs_and_symlinks() {
        let base = scan(&tar(&[
            ("var/lib/dpkg/status.d/", EntryKind::Dir),
            ("usr/lib/os-release", file("ID=debian\n")),
            (
                "etc/os-release",
                EntryKind::Symlink("../usr/lib/os-release".into()),
            ),
            ("var/lib/dpkg/status", file("v1")),
            ("var/lib/dpkg/status.d/a", file("a")),
            ("var/lib/dpkg/status.d/b", file("b")),
        ]))
        .unwrap();
        let update = scan(&tar(&[
            ("var/lib/dpkg/status", file("v2")),
            ("var/lib/dpkg/status.d/.wh.a", EntryKind::Other),
        ]))
        .unwrap();
        let rootfs = Rootfs::from_layers([(digest(1), base.clone()), (digest(2), update.clone())]);
        let status = rootfs.read("var/lib/dpkg/status").unwrap();
        assert_eq!(
            (status.content, status.layer),
            (&b"v2"[..], Some(&digest(2)))
        );
        assert_eq!(rootfs.versions("var/lib/dpkg/status").len(), 2);
        assert_eq!(
            rootfs.read("etc/os-release").unwrap().content,
            b"ID=debian\n"
        );
        assert_eq!(
            rootfs.list_files("var/lib/dpkg/status.d"),
            ["var/lib/dpkg/status.d/b"]
        );

        let delete = scan(&tar(&[
            ("var/lib/dpkg/.wh.status", EntryKind::Other),
            ("var/lib/dpkg/status.d/.wh..wh..opq", EntryKind::Other),
        ]))
        .unwrap();
        let rootfs = Rootfs::from_layers([(digest(1), base.clone()), (digest(3), delete.clone())]);
        assert!(rootfs.read("var/lib/dpkg/status").is_none());
        assert!(rootfs.list_files("var/lib/dpkg/status.d").is_empty());
        assert!(rootfs.exists("var/lib/dpkg/status.d"));
        // Re-added above the deletion: a fresh history.
        let rootfs = Rootfs::from_layers([
            (digest(1), base.clone()),
            (digest(3), delete),
            (digest(2), update),
        ]);
        assert_eq!(rootfs.versions("var/lib/dpkg/status").len(), 1);
        // A whiteout deletes only lower layers' files, not its own layer's.
        let same_layer = scan(&tar(&[
            ("var/lib/dpkg/status", file("v3")),
            ("var/lib/dpkg/.wh.status", EntryKind::Other),
        ]))
        .unwrap();
        let rootfs = Rootfs::from_layers([(digest(1), base), (digest(4), same_layer)]);
        assert_eq!(rootfs.read("var/lib/dpkg/status").unwrap().content, b"v3");
    }

    #[test]
    fn symlinks_never_escape_and_loops_end() {
        let layer = scan(&tar(&[
            (
                "etc/os-release",
                EntryKind::Symlink("../../../../usr/lib/os-release".into()),
            ),
            ("usr/lib/os-release", file("ID=alpine\n")),
            (
                "var/lib/dpkg/status",
                EntryKind::Symlink("/var/lib/dpkg/status".into()),
            ),
            (
                "lib/apk/db/installed",
                EntryKind::Symlink("/lib/apk/db/../db/installed".into()),
            ),
        ]))
        .unwrap();
        let rootfs = Rootfs::from_layers([(digest(1), layer)]);
        assert_eq!(
            rootfs.read("etc/os-release").unwrap().content,
            b"ID=alpine\n"
        );
        assert!(rootfs.read("var/lib/dpkg/status").is_none());
        assert!(rootfs.read("lib/apk/db/installed").is_none());
    }

    #[test]
    fn cleans_dot_dot_paths_at_the_root() {
        assert_eq!(clean_path("../../etc/./os-release"), "etc/os-release");
        assert_eq!(clean_path("/a/b/../../../c/"), "c");
        let mut raw = tar(&[("xx/os-release", file("ID=evil\n"))]);
        // Rewrite the name in the header to one with `..` (the builder refuses them).
        raw[..14].copy_from_slice(b"../etc/os-rele");
        raw[14..22].copy_from_slice(b"ase\0\0\0\0\0");
        let mut header = tar::Header::from_byte_slice(&raw[..512]).clone();
        header.set_cksum();
        raw[..512].copy_from_slice(header.as_bytes());
        let files = scan(&raw).unwrap();
        assert_eq!(files.entries[0].path, "etc/os-release");
    }

    #[test]
    fn bad_layers_are_errors_not_panics() {
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        assert!(scan(&garbage).is_err());
        assert!(
            scan(&[0x1f, 0x8b, 1, 2, 3])
                .unwrap_err()
                .to_string()
                .contains("layer test")
        );
        assert!(scan(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0]).is_err());
        assert!(
            scan(b"BZh91AY&SY")
                .unwrap_err()
                .to_string()
                .contains("xz or bzip2")
        );
        let layer = tar(&[("var/lib/dpkg/status", file(&"x".repeat(2000)))]);
        for end in (0..layer.len()).step_by(97) {
            let _ = scan(&layer[..end]);
        }
        let small = ScanLimits {
            max_layer_bytes: 1 << 20,
            max_file_bytes: 1000,
            max_kept_bytes: 1 << 20,
        };
        let err = scan_layer("test", &mut &layer[..], &small).unwrap_err();
        assert!(
            err.to_string().contains("more than the 1000-byte limit"),
            "{err}"
        );
        let tiny = ScanLimits {
            max_layer_bytes: 1024,
            max_file_bytes: 1 << 20,
            ..small
        };
        let err = scan_layer("test", &mut &layer[..], &tiny).unwrap_err();
        assert!(
            crate::error::chain(&err).contains("larger than the 1024-byte limit"),
            "{err}"
        );
        assert!(scan(&[]).unwrap().entries.is_empty());
        let encoded = scan(&layer).unwrap().encode();
        for end in 0..encoded.len().min(64) {
            assert!(LayerFiles::decode(&encoded[..end]).is_err());
        }
    }

    #[test]
    fn reads_a_directory_without_leaving_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::create_dir_all(root.join("var/lib/dpkg/status.d")).unwrap();
        std::fs::write(root.join("usr/lib/os-release"), "ID=debian\n").unwrap();
        std::fs::write(
            root.join("var/lib/dpkg/status.d/tzdata"),
            "Package: tzdata\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        let rootfs =
            Rootfs::from_dir_files(LayerFiles::from_dir(root, &ScanLimits::default()).unwrap());
        assert!(
            rootfs.read("etc/os-release").is_none(),
            "the host's /etc must not be read"
        );
        assert_eq!(rootfs.read("usr/lib/os-release").unwrap().layer, None);
        assert_eq!(
            rootfs.list_files("var/lib/dpkg/status.d"),
            ["var/lib/dpkg/status.d/tzdata"]
        );
    }
}
