//! Sandbox mode: the upgraded packages' own maintainer scripts and
//! triggers, run by the image's own apt and dpkg, and what they leave
//! captured into the patch layer.
//!
//! Owns three steps, all in a private directory under the patch cache that
//! is removed whatever happens:
//! - [`unpack_layer`] applies the original image's layers one by one as an
//!   overlay does (whiteouts and opaque directories honoured, owners, modes
//!   and times kept). Entry names are cleaned and clamped at the root;
//!   parent directories resolve their symlinks inside the root only
//!   (absolute targets from the root, as container runtimes do); device
//!   nodes and FIFOs are never created; each blob's digest is checked and
//!   its decompressed size bounded;
//! - [`run_dpkg`] installs the verified `.deb` files the way apt would:
//!   with the image's apt from a local repository of them ([`apt_script`]:
//!   apt's order, hooks and auto marks), or, in an image without apt, with
//!   dpkg alone ([`dpkg_script`]: debconf's hook, `--unpack` in rounds that
//!   configure pre-dependencies first, `--configure --pending` with the
//!   triggers). It runs under bubblewrap, in new user, mount, PID,
//!   network, IPC and UTS namespaces: the image's root as `/`, a private
//!   `/proc`, a minimal `/dev`, the staging directory, no network and
//!   nothing else of the host; an environment of `PATH`, `HOME`, `LC_ALL=C`
//!   and `DEBIAN_FRONTEND=noninteractive` only (no `SOURCE_DATE_EPOCH`:
//!   Python would then compile hash-checked bytecode where apt leaves
//!   timestamped); stopped after [`SANDBOX_DEADLINE`]. The user namespace
//!   maps every ID to itself, so owners inside are the image's own, while
//!   the scripts hold no capability outside it. Writing such a map takes
//!   root, so sandbox mode does;
//! - [`capture`] compares the tree with what was unpacked (each path's
//!   kind, mode, owner, inode and change time) and writes the difference as
//!   one layer: new and changed entries (hard links, and the
//!   `security.capability` xattr, kept; times clamped to the packages'
//!   newest), whiteouts for what was deleted. What dpkg changes by running
//!   at all (its log, backups and locks, ldconfig's auxiliary cache) is
//!   left out.
//!
//! The archive work (tar entries, decompression) is the `tar` crate's and
//! pkgdb's, the sandbox bubblewrap's; what is ours is the overlay semantics
//! and the symlink resolution inside the root, for which no crate fits a
//! tar stream.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oci::Digest;
use sha2::{Digest as _, Sha256};

use crate::error::PatchError;
use crate::layer::{ChunkSender, Compressed, layer_tar};
use crate::plan::Facts;
use crate::relation::Group;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const MAX_SYMLINK_HOPS: usize = 40;
/// Where the `.deb` files are mounted inside the sandbox (removed after).
const DEBS_MOUNT: &str = ".drydock-debs";
const SANDBOX_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// dpkg's options: apt's conffile policy in the fidelity oracle's
/// configuration (keep a modified conffile, take the new default otherwise),
/// and no `fsync` of each file: the tree is read back once dpkg is done, a
/// crash fails the run, and without it dpkg spends most of its time waiting.
const DPKG: &str = "dpkg --force-confdef --force-confold --force-unsafe-io";
/// debconf's pre-install hook, which apt runs before dpkg.
const PRECONFIGURE: &str = "/usr/sbin/dpkg-preconfigure";
const CAPABILITY_XATTR: &str = "security.capability";
/// How long the packages' scripts may run before the sandbox is stopped.
const SANDBOX_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// The last lines of dpkg's output an error shows.
const LOG_TAIL_LINES: usize = 40;

/// What dpkg changes by running at all: left out of the layer.
fn run_artifact(path: &str) -> bool {
    const FILES: &[&str] = &[
        "var/log/dpkg.log",
        "var/log/alternatives.log",
        "var/cache/ldconfig/aux-cache",
        "var/lib/dpkg/lock",
        "var/lib/dpkg/lock-frontend",
        "var/lib/dpkg/triggers/Lock",
    ];
    FILES.contains(&path)
        || ((path.starts_with("var/lib/dpkg/") || path.starts_with("var/cache/debconf/"))
            && path.ends_with("-old"))
}

/// One image's run.
pub struct Request {
    /// The original image's layer blobs, lowest first, with their digests.
    pub layers: Vec<(PathBuf, Digest)>,
    /// The verified `.deb` files, in plan order.
    pub packages: Vec<Package>,
    /// apt's `extended_states` after the upgrade, written after dpkg when
    /// the image has no apt to write it.
    pub extended_states: Option<String>,
    /// The packages' newest timestamp: the latest time a captured entry may
    /// carry, so that the layer does not depend on when it was made.
    pub epoch: u64,
    /// Where the private directory is made.
    pub work_dir: PathBuf,
    pub max_layer_bytes: u64,
}

/// One package to install.
pub struct Package {
    /// The verified `.deb` file.
    pub deb: PathBuf,
    /// Its size and SHA256, as the signed index gave them and the download was checked against.
    pub size: u64,
    pub sha256: String,
    pub facts: Facts,
    /// Its `control` file.
    pub control: String,
    /// It upgrades an installed package (a new one is pulled in as a dependency).
    pub upgrade: bool,
}

/// What a run left, as one layer.
pub struct Captured {
    pub(crate) layer: Compressed,
    /// Paths deleted from the image.
    pub whiteouts: Vec<String>,
    /// Paths the layer writes.
    pub written: Vec<String>,
    /// What dpkg and the scripts printed.
    pub log: String,
}

fn io_error(path: &Path) -> impl Fn(io::Error) -> PatchError + '_ {
    move |source| PatchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Why sandbox mode cannot patch `image`, of dpkg architecture
/// `architecture`, on this host, if it cannot: checked before anything is
/// downloaded or unpacked.
pub fn unavailable(architecture: &str, image: &pkgdb::Rootfs) -> Option<String> {
    if !["usr/bin/dpkg", "bin/dpkg"].iter().any(|p| image.exists(p)) {
        return Some(
            "the image has no dpkg (a distroless image?); sandbox mode runs the image's own \
             dpkg, native mode patches such images"
                .to_string(),
        );
    }
    let root = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        return Some(
            "sandbox mode needs root: the image's owners are mapped one to one into the \
             sandbox's user namespace, which only root may set up (the scripts themselves \
             run without host privileges)"
                .to_string(),
        );
    }
    for (tool, package) in [("bwrap", "bubblewrap"), ("nsenter", "util-linux")] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Some(format!(
                "sandbox mode needs {tool} (Debian package {package})"
            ));
        }
    }
    if !host_runs(architecture) {
        return Some(format!(
            "this {} host cannot run {architecture} programs (no binfmt_misc emulator is \
             registered); sandbox mode runs the image's own dpkg",
            std::env::consts::ARCH
        ));
    }
    None
}

/// Whether the host executes programs of the dpkg `architecture`, natively
/// or through a registered qemu-user emulator.
fn host_runs(architecture: &str) -> bool {
    let native: &[&str] = match std::env::consts::ARCH {
        "x86_64" => &["amd64", "i386"],
        "x86" => &["i386"],
        "aarch64" => &["arm64"],
        "arm" => &["armhf", "armel"],
        "powerpc64" => &["ppc64el"],
        "s390x" => &["s390x"],
        "riscv64" => &["riscv64"],
        _ => &[],
    };
    if native.contains(&architecture) {
        return true;
    }
    let qemu = match architecture {
        "amd64" => "x86_64",
        "i386" => "i386",
        "arm64" => "aarch64",
        "armhf" | "armel" => "arm",
        "ppc64el" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        _ => return false,
    };
    fs::read_to_string(format!("/proc/sys/fs/binfmt_misc/qemu-{qemu}"))
        .is_ok_and(|entry| entry.starts_with("enabled"))
}

/// Unpacks the image, runs dpkg on the `.deb` files in the sandbox and
/// captures what changed, once [`unavailable`] found nothing in the way.
/// Blocking: call it off the async runtime.
pub fn run(request: &Request) -> Result<Captured, PatchError> {
    fs::create_dir_all(&request.work_dir).map_err(io_error(&request.work_dir))?;
    let private = tempfile::Builder::new()
        .prefix("sandbox-")
        .tempdir_in(&request.work_dir)
        .map_err(io_error(&request.work_dir))?;
    let root = private.path().join("root");
    fs::create_dir(&root).map_err(io_error(&root))?;
    set_mode(&root, 0o755)?;
    let started = Instant::now();
    for (blob, digest) in &request.layers {
        unpack_layer(&root, blob, digest, request.max_layer_bytes)?;
    }
    tracing::debug!("sandbox: image unpacked in {:.2?}", started.elapsed());
    let debs = private.path().join("debs");
    let has_apt = is_file_in(&root, "usr/bin/apt-get");
    stage(&debs, &request.packages, has_apt)?;
    let script = if has_apt {
        apt_script(&request.packages)?
    } else {
        let facts: Vec<&Facts> = request.packages.iter().map(|p| &p.facts).collect();
        dpkg_script(&facts)?
    };
    let before = survey(&root)?;
    let started = Instant::now();
    let log = run_dpkg(&root, &debs, &script)?;
    tracing::debug!("sandbox: packages installed in {:.2?}", started.elapsed());
    let started = Instant::now();
    if let Some(states) = request.extended_states.as_ref().filter(|_| !has_apt) {
        let path = resolve_in_root(&root, crate::dpkgdb::EXTENDED_STATES)?;
        let path = root.join(path);
        fs::write(&path, states).map_err(io_error(&path))?;
    }
    let after = survey(&root)?;
    let (mut tar, compressor) = layer_tar();
    let changes = capture(&mut tar, &root, &before, &after, request.epoch);
    let layer = compressor.finish(tar);
    let (whiteouts, written) = changes?;
    tracing::debug!(
        "sandbox: {} paths written, {} whited out, in {:.2?}",
        written.len(),
        whiteouts.len(),
        started.elapsed()
    );
    Ok(Captured {
        layer: layer?,
        whiteouts,
        written,
        log,
    })
}

/// Whether `rel` is a file in the image at `root`, symlinks resolved inside it.
fn is_file_in(root: &Path, rel: &str) -> bool {
    resolve_in_root(root, rel).is_ok_and(|r| root.join(r).is_file())
}

/// Fills the directory mounted at [`DEBS_MOUNT`]: the `.deb` files and,
/// for apt, a local repository of them with apt's directories.
fn stage(debs: &Path, packages: &[Package], for_apt: bool) -> Result<(), PatchError> {
    fs::create_dir(debs).map_err(io_error(debs))?;
    for (i, package) in packages.iter().enumerate() {
        let staged = debs.join(staged_name(i));
        if fs::hard_link(&package.deb, &staged).is_err() {
            fs::copy(&package.deb, &staged).map_err(io_error(&package.deb))?;
        }
    }
    if !for_apt {
        return Ok(());
    }
    for dir in [
        "lists/partial",
        "cache/archives/partial",
        "log",
        "sources.list.d",
    ] {
        let path = debs.join(dir);
        fs::create_dir_all(&path).map_err(io_error(&path))?;
    }
    let index = debs.join("Packages");
    fs::write(&index, local_index(packages)).map_err(io_error(&index))?;
    let list = debs.join("sources.list");
    let entry = format!("deb [trusted=yes] file:/{DEBS_MOUNT}/ ./\n");
    fs::write(&list, entry).map_err(io_error(&list))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), PatchError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_error(path))
}

/// `rel` resolved inside `root` as the image sees it: every symlink on the
/// way is followed, absolute targets from `root`, `..` never climbs above
/// it. Missing components are kept as they are. A clean relative path.
fn resolve_in_root(root: &Path, rel: &str) -> Result<String, PatchError> {
    let mut resolved: Vec<String> = Vec::new();
    let mut pending: VecDeque<String> = rel.split('/').map(str::to_string).collect();
    let mut hops = 0;
    while let Some(part) = pending.pop_front() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = root.join(resolved.join("/")).join(&part);
        let is_link = fs::symlink_metadata(&candidate).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            resolved.push(part);
            continue;
        }
        hops += 1;
        if hops > MAX_SYMLINK_HOPS {
            return Err(PatchError::Refused(format!(
                "{rel}: more than {MAX_SYMLINK_HOPS} symlinks on the way"
            )));
        }
        let target = fs::read_link(&candidate).map_err(io_error(&candidate))?;
        let target = target.to_string_lossy();
        if target.starts_with('/') {
            resolved.clear();
        }
        let mut next: VecDeque<String> = target.split('/').map(str::to_string).collect();
        next.extend(pending.drain(..));
        pending = next;
    }
    Ok(resolved.join("/"))
}

/// Removes what is at `rel` (a tree, a file or a link), if anything.
fn remove_path(root: &Path, rel: &str) -> Result<(), PatchError> {
    let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    let path = root.join(resolve_in_root(root, parent)?).join(name);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(&path).map_err(io_error(&path)),
        Ok(_) => fs::remove_file(&path).map_err(io_error(&path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(&path)(e)),
    }
}

/// A reader that hashes what passes through.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Applies one layer blob over `root`, as an overlay filesystem shows it.
fn unpack_layer(
    root: &Path,
    blob: &Path,
    digest: &Digest,
    max_layer_bytes: u64,
) -> Result<(), PatchError> {
    let file = File::open(blob).map_err(io_error(blob))?;
    let mut hashing = Hashing {
        inner: BufReader::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
    };
    let layer = digest.to_string();
    let layer_error = |message: String| {
        PatchError::Database(pkgdb::Error::Layer {
            layer: layer.clone(),
            message,
        })
    };
    {
        let tar = pkgdb::rootfs::decompressed(&layer, &mut hashing, max_layer_bytes)?;
        let mut archive = tar::Archive::new(tar);
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(true);
        archive.set_preserve_mtime(true);
        archive.set_overwrite(true);
        let mut this_layer: HashSet<String> = HashSet::new();
        let tar_error = |e: io::Error| layer_error(format!("is not a readable tar archive: {e}"));
        for entry in archive.entries().map_err(tar_error)? {
            let mut entry = entry.map_err(tar_error)?;
            let raw = entry.path_bytes();
            let Ok(raw) = std::str::from_utf8(&raw).map(str::to_string) else {
                tracing::warn!("layer {layer}: a path that is not UTF-8 is left out");
                continue;
            };
            let path = pkgdb::rootfs::clean_path(&raw);
            if path.is_empty() {
                continue; // the root itself
            }
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", &path));
            // Where the entry lands: what this layer wrote is tracked there,
            // as its whiteouts and opaque markers hide lower layers only.
            let parent = resolve_in_root(root, parent)?;
            if name == OPAQUE_MARKER {
                let dir = root.join(&parent);
                if let Ok(children) = fs::read_dir(&dir) {
                    for child in children {
                        let child = child.map_err(io_error(&dir))?;
                        let rel = join(&parent, &child.file_name().to_string_lossy());
                        if !this_layer.contains(&rel) {
                            remove_path(root, &rel)?;
                        }
                    }
                }
                continue;
            }
            if let Some(deleted) = name.strip_prefix(WHITEOUT_PREFIX) {
                let target = join(&parent, deleted);
                if !this_layer.contains(&target) {
                    remove_path(root, &target)?;
                }
                continue;
            }
            let kind = entry.header().entry_type();
            if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
                continue; // never created: the sandbox has its own /dev
            }
            if matches!(
                kind,
                tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
            ) {
                continue;
            }
            let parent_dir = root.join(&parent);
            fs::create_dir_all(&parent_dir).map_err(io_error(&parent_dir))?;
            let target = parent_dir.join(name);
            // An entry replaces what is there, except that a directory
            // over a directory keeps the lower one's contents.
            match fs::symlink_metadata(&target) {
                Ok(meta) if meta.is_dir() && kind.is_dir() => {}
                Ok(meta) if meta.is_dir() => {
                    fs::remove_dir_all(&target).map_err(io_error(&target))?
                }
                Ok(_) => fs::remove_file(&target).map_err(io_error(&target))?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&target)(e)),
            }
            if kind.is_hard_link() {
                let linked = entry
                    .link_name_bytes()
                    .map(|t| pkgdb::rootfs::clean_path(&String::from_utf8_lossy(&t)))
                    .unwrap_or_default();
                let (link_parent, link_name) = linked.rsplit_once('/').unwrap_or(("", &linked));
                let source = root
                    .join(resolve_in_root(root, link_parent)?)
                    .join(link_name);
                if !fs::symlink_metadata(&source).is_ok_and(|m| m.is_file()) {
                    return Err(layer_error(format!(
                        "{path} is a hard link to {linked}, which is not a file of the image"
                    )));
                }
                fs::hard_link(&source, &target).map_err(io_error(&target))?;
            } else {
                entry
                    .unpack(&target)
                    .map_err(|e| layer_error(format!("{path}: {e}")))?;
            }
            this_layer.insert(join(&parent, name));
        }
    }
    io::copy(&mut hashing, &mut io::sink()).map_err(io_error(blob))?;
    let actual = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
    if actual != layer {
        return Err(layer_error(format!("the blob's digest is {actual}")));
    }
    Ok(())
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
    /// A FIFO, socket or device: never written to a layer.
    Other,
}

/// What [`survey`] records of one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Node {
    kind: Kind,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    /// Any change to the content or the metadata moves it.
    ctime: (i64, i64),
    inode: (u64, u64),
    links: u64,
    size: u64,
}

/// Every path under `root`, never following a symlink.
fn survey(root: &Path) -> Result<BTreeMap<String, Node>, PatchError> {
    let mut nodes = BTreeMap::new();
    let mut pending = vec![String::new()];
    while let Some(dir) = pending.pop() {
        let path = root.join(&dir);
        for child in fs::read_dir(&path).map_err(io_error(&path))? {
            let child = child.map_err(io_error(&path))?;
            let rel = join(&dir, &child.file_name().to_string_lossy());
            let meta = child.metadata().map_err(io_error(&child.path()))?;
            let file_type = meta.file_type();
            let kind = if file_type.is_dir() {
                pending.push(rel.clone());
                Kind::Dir
            } else if file_type.is_symlink() {
                Kind::Symlink
            } else if file_type.is_file() {
                Kind::File
            } else {
                Kind::Other
            };
            nodes.insert(
                rel,
                Node {
                    kind,
                    mode: meta.mode() & 0o7777,
                    uid: meta.uid(),
                    gid: meta.gid(),
                    mtime: meta.mtime(),
                    ctime: (meta.ctime(), meta.ctime_nsec()),
                    inode: (meta.dev(), meta.ino()),
                    links: meta.nlink(),
                    size: meta.len(),
                },
            );
        }
    }
    Ok(nodes)
}

/// Writes into `tar` how `after` differs from `before`; returns the
/// whiteouts and the paths written.
fn capture(
    tar: &mut tar::Builder<ChunkSender>,
    root: &Path,
    before: &BTreeMap<String, Node>,
    after: &BTreeMap<String, Node>,
    epoch: u64,
) -> Result<(Vec<String>, Vec<String>), PatchError> {
    let paths: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let mut whiteouts = Vec::new();
    let mut written = Vec::new();
    let mut first_link: HashMap<(u64, u64), String> = HashMap::new();
    // A deleted path is whited out where its parent stayed the directory it was.
    let parent_kept = |path: &str| match path.rsplit_once('/') {
        None => true,
        Some((parent, _)) => {
            before.get(parent).map(|n| n.kind) == Some(Kind::Dir)
                && after.get(parent).map(|n| n.kind) == Some(Kind::Dir)
        }
    };
    for path in paths {
        if run_artifact(path) {
            continue;
        }
        let (old, new) = (before.get(path), after.get(path));
        let (whiteout, write) = match (old, new) {
            (Some(_), None) => (parent_kept(path), false),
            (None, Some(_)) => (false, true),
            (Some(old), Some(new)) if old.kind != new.kind => (true, true),
            (Some(old), Some(new)) if new.kind == Kind::Dir => (
                false,
                (old.mode, old.uid, old.gid) != (new.mode, new.uid, new.gid),
            ),
            (Some(old), Some(new)) => (
                false,
                old.ctime != new.ctime || old.inode != new.inode || old.size != new.size,
            ),
            (None, None) => (false, false),
        };
        if whiteout {
            append_whiteout(tar, path, epoch)?;
            whiteouts.push(path.clone());
        }
        if let Some(node) = new.filter(|_| write)
            && append(tar, root, path, node, epoch, &mut first_link)?
        {
            written.push(path.clone());
        }
    }
    Ok((whiteouts, written))
}

fn append_whiteout(
    tar: &mut tar::Builder<ChunkSender>,
    path: &str,
    epoch: u64,
) -> Result<(), PatchError> {
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    let marker = join(parent, &format!("{WHITEOUT_PREFIX}{name}"));
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_mtime(epoch);
    header.set_size(0);
    tar.append_data(&mut header, &marker, io::empty())
        .map_err(io_error(Path::new(&marker)))
}

/// Appends one path as it is on disk; `false` for what a layer never holds.
fn append(
    tar: &mut tar::Builder<ChunkSender>,
    root: &Path,
    path: &str,
    node: &Node,
    epoch: u64,
    first_link: &mut HashMap<(u64, u64), String>,
) -> Result<bool, PatchError> {
    let full = root.join(path);
    let io = io_error(&full);
    let mut header = tar::Header::new_gnu();
    header.set_mode(node.mode);
    header.set_uid(u64::from(node.uid));
    header.set_gid(u64::from(node.gid));
    let mtime = u64::try_from(node.mtime).unwrap_or(0);
    header.set_mtime(if epoch > 0 { mtime.min(epoch) } else { mtime });
    header.set_size(0);
    match node.kind {
        Kind::Dir => {
            header.set_entry_type(tar::EntryType::Directory);
            tar.append_data(&mut header, path, io::empty())
                .map_err(io)?;
        }
        Kind::Symlink => {
            header.set_entry_type(tar::EntryType::Symlink);
            let target = fs::read_link(&full).map_err(&io)?;
            tar.append_link(&mut header, path, target).map_err(io)?;
        }
        Kind::File => {
            if node.links > 1 {
                if let Some(first) = first_link.get(&node.inode) {
                    header.set_entry_type(tar::EntryType::Link);
                    tar.append_link(&mut header, path, first).map_err(io)?;
                    return Ok(true);
                }
                first_link.insert(node.inode, path.to_string());
            }
            if let Some(capability) = xattr::get(&full, CAPABILITY_XATTR).map_err(&io)? {
                let capability = capability_v2(capability);
                tar.append_pax_extensions([(
                    "SCHILY.xattr.security.capability",
                    capability.as_slice(),
                )])
                .map_err(&io)?;
            }
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(node.size);
            let file = File::open(&full).map_err(&io)?;
            tar.append_data(&mut header, path, file.take(node.size))
                .map_err(io)?;
        }
        Kind::Other => {
            tracing::warn!("{path}: a FIFO, socket or device made by a script is left out");
            return Ok(false);
        }
    }
    Ok(true)
}

/// A file capability as an image carries it: revision 2, for the root of
/// whatever user namespace runs it. A script's `setcap` inside a user
/// namespace may have written revision 3, which names that namespace's root.
fn capability_v2(mut value: Vec<u8>) -> Vec<u8> {
    const REVISION_MASK: u32 = 0xff00_0000;
    const REVISION_2: u32 = 0x0200_0000;
    const REVISION_3: u32 = 0x0300_0000;
    const V2_SIZE: usize = 20;
    let Some(magic) = value
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    else {
        return value;
    };
    if magic & REVISION_MASK == REVISION_3 && value.len() > V2_SIZE {
        let magic = (magic & !REVISION_MASK) | REVISION_2;
        value[..4].copy_from_slice(&magic.to_le_bytes());
        value.truncate(V2_SIZE);
    }
    value
}

/// A user namespace that maps every ID to itself, held open by a sleeping
/// process (killed on drop) so that bubblewrap can be started inside it.
struct IdentityNamespace(Child);

impl IdentityNamespace {
    fn create() -> Result<IdentityNamespace, PatchError> {
        let sandbox = |message: String| PatchError::Sandbox(message);
        let setup = |step: String| move |source| PatchError::SandboxSetup { step, source };
        let own = fs::read_link("/proc/self/ns/user").map_err(setup(
            "cannot read this process's user namespace".to_string(),
        ))?;
        let child = Command::new("unshare")
            .args(["--user", "--", "sleep", "infinity"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(setup("cannot start unshare (util-linux)".to_string()))?;
        let mut holder = IdentityNamespace(child);
        let pid = holder.0.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let namespace = fs::read_link(format!("/proc/{pid}/ns/user"));
            if namespace.is_ok_and(|n| n != own) {
                break;
            }
            if let Ok(Some(status)) = holder.0.try_wait() {
                return Err(sandbox(format!(
                    "unshare --user exited ({status}): user namespaces are not available"
                )));
            }
            if Instant::now() > deadline {
                return Err(sandbox("the user namespace was not created in time".into()));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        for map in ["uid_map", "gid_map"] {
            fs::write(format!("/proc/{pid}/{map}"), "0 0 4294967295\n")
                .map_err(setup(format!("cannot write the namespace's {map}")))?;
        }
        Ok(holder)
    }
}

impl Drop for IdentityNamespace {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn staged_name(index: usize) -> String {
    format!("{index:03}.deb")
}

/// One dpkg call of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DpkgStep {
    /// `--unpack` these packages (indexes into the plan).
    Unpack(Vec<usize>),
    /// `--configure` these, which later packages pre-depend on.
    Configure(Vec<usize>),
}

/// dpkg's calls for `packages` (plan order), ordered as apt orders them: a
/// package is unpacked only once what it pre-depends on among them is
/// configured, and configuring that needs its own dependencies among them
/// unpacked first. Everything else is configured at the end
/// (`--configure --pending`, with the triggers). `None` when
/// pre-dependencies form a cycle.
fn install_steps(packages: &[&Facts]) -> Option<Vec<DpkgStep>> {
    let count = packages.len();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, facts) in packages.iter().enumerate() {
        index.entry(facts.name.as_str()).or_insert(i);
    }
    let among = |groups: &[Group]| -> Vec<usize> {
        groups
            .iter()
            .flatten()
            .filter_map(|r| index.get(r.name.as_str()).copied())
            .collect()
    };
    let pre: Vec<Vec<usize>> = packages.iter().map(|f| among(&f.pre_depends)).collect();
    let deps: Vec<Vec<usize>> = packages
        .iter()
        .map(|f| [among(&f.pre_depends), among(&f.depends)].concat())
        .collect();
    // What configuring `j` needs unpacked: `j` and its dependencies among the packages.
    let closure = |j: usize| -> BTreeSet<usize> {
        let mut seen = BTreeSet::from([j]);
        let mut pending = vec![j];
        while let Some(k) = pending.pop() {
            for &d in &deps[k] {
                if seen.insert(d) {
                    pending.push(d);
                }
            }
        }
        seen
    };
    // Before `i` is unpacked, every package in the closure of what it pre-depends on is configured.
    let before: Vec<BTreeSet<usize>> = pre
        .iter()
        .map(|js| js.iter().flat_map(|&j| closure(j)).collect())
        .collect();
    if before.iter().enumerate().any(|(i, set)| set.contains(&i)) {
        return None;
    }
    let mut round = vec![0usize; count];
    for _ in 0..=count {
        let mut changed = false;
        for i in 0..count {
            let needed = before[i].iter().map(|&d| round[d] + 1).max().unwrap_or(0);
            if needed > round[i] {
                round[i] = needed;
                changed = true;
            }
        }
        if !changed {
            let mut steps = Vec::new();
            let mut configured = BTreeSet::new();
            for r in 0..=round.iter().copied().max().unwrap_or(0) {
                let members: Vec<usize> = (0..count).filter(|&i| round[i] == r).collect();
                let configure: Vec<usize> = members
                    .iter()
                    .flat_map(|&i| before[i].iter().copied())
                    .collect::<BTreeSet<usize>>()
                    .difference(&configured)
                    .copied()
                    .collect();
                if !configure.is_empty() {
                    configured.extend(configure.iter().copied());
                    steps.push(DpkgStep::Configure(configure));
                }
                if !members.is_empty() {
                    steps.push(DpkgStep::Unpack(members));
                }
            }
            return Some(steps);
        }
    }
    None
}

/// The `Packages` index of the sandbox's local repository: each package's
/// `control` file with where it is and what it weighs.
fn local_index(packages: &[Package]) -> String {
    let mut text = String::new();
    for (i, package) in packages.iter().enumerate() {
        text.push_str(package.control.trim_end());
        text.push_str(&format!(
            "\nFilename: ./{}\nSize: {}\nSHA256: {}\n\n",
            staged_name(i),
            package.size,
            package.sha256
        ));
    }
    text
}

/// `name:arch`, refused unless it is a plain package name (it goes into a script).
fn package_spec(facts: &Facts) -> Result<String, PatchError> {
    let name = format!("{}:{}", facts.name, facts.architecture);
    let safe = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+-.:".contains(c));
    if !safe {
        return Err(PatchError::Refused(format!(
            "{name:?} is not a valid package name"
        )));
    }
    Ok(name)
}

/// The shell script that has the image's own apt install the upgrades from
/// the sandbox's local repository, as `apt-get install` would from the
/// archive: apt orders dpkg's calls, runs its hooks (debconf's
/// preconfiguration) and marks the new dependencies automatic. apt's own
/// lists, caches and logs stay in the staging directory.
fn apt_script(packages: &[Package]) -> Result<String, PatchError> {
    let staging = format!("/{DEBS_MOUNT}");
    let options = [
        format!("Dir::Etc::SourceList={staging}/sources.list"),
        format!("Dir::Etc::SourceParts={staging}/sources.list.d"),
        format!("Dir::State::Lists={staging}/lists"),
        format!("Dir::Cache={staging}/cache"),
        format!("Dir::Log={staging}/log"),
        "APT::Sandbox::User=root".to_string(),
        "Acquire::Languages=none".to_string(),
        "Dpkg::Options::=--force-confdef".to_string(),
        "Dpkg::Options::=--force-confold".to_string(),
        "Dpkg::Options::=--force-unsafe-io".to_string(),
    ]
    .map(|o| format!("-o {o}"))
    .join(" ");
    let mut requested = Vec::new();
    for package in packages.iter().filter(|p| p.upgrade) {
        requested.push(format!(
            "{}={}",
            package_spec(&package.facts)?,
            package.facts.version
        ));
    }
    let version_safe = requested.iter().all(|r| {
        r.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.:=~".contains(c))
    });
    if !version_safe {
        return Err(PatchError::Refused(
            "a package version has characters no Debian version has".to_string(),
        ));
    }
    Ok(format!(
        "set -e\napt-get {options} -q update\n\
         apt-get {options} -q -y install --no-install-recommends {}",
        requested.join(" ")
    ))
}

/// The shell script that runs dpkg's calls in the sandbox, for images without apt.
fn dpkg_script(packages: &[&Facts]) -> Result<String, PatchError> {
    let steps = install_steps(packages).ok_or_else(|| {
        PatchError::Sandbox(
            "the packages' pre-dependencies form a cycle; dpkg cannot install them".into(),
        )
    })?;
    let all: Vec<String> = (0..packages.len())
        .map(|i| format!("/{DEBS_MOUNT}/{}", staged_name(i)))
        .collect();
    let mut lines = vec![
        "set -e".to_string(),
        // apt's hook from debconf's own apt.conf.d/70debconf: templates of
        // every package to install are loaded before dpkg runs.
        format!(
            "if [ -x {PRECONFIGURE} ]; then printf '%s\\n' {} | {PRECONFIGURE} --apt || true; fi",
            all.join(" ")
        ),
    ];
    for step in steps {
        match step {
            DpkgStep::Unpack(members) => {
                let debs: Vec<String> = members
                    .iter()
                    .map(|&i| format!("/{DEBS_MOUNT}/{}", staged_name(i)))
                    .collect();
                lines.push(format!("{DPKG} --unpack {}", debs.join(" ")));
            }
            DpkgStep::Configure(members) => {
                let names = members
                    .iter()
                    .map(|&i| package_spec(packages[i]))
                    .collect::<Result<Vec<_>, _>>()?;
                lines.push(format!("{DPKG} --configure {}", names.join(" ")));
            }
        }
    }
    lines.push(format!("{DPKG} --configure --pending"));
    Ok(lines.join("\n"))
}

/// Runs `script` over `root` in the sandbox; returns what it printed.
fn run_dpkg(root: &Path, debs: &Path, script: &str) -> Result<String, PatchError> {
    if fs::symlink_metadata(root.join(DEBS_MOUNT)).is_ok() {
        return Err(PatchError::Refused(format!(
            "the image has /{DEBS_MOUNT}, where the sandbox mounts the packages"
        )));
    }
    for mount in ["proc", "dev"] {
        if fs::symlink_metadata(root.join(mount)).is_ok_and(|m| !m.is_dir()) {
            return Err(PatchError::Refused(format!(
                "the image's /{mount} is not a directory; the sandbox mounts its own there"
            )));
        }
    }
    // bubblewrap makes missing mount points in the root; they go again after.
    let made: Vec<&str> = ["proc", "dev", DEBS_MOUNT]
        .into_iter()
        .filter(|m| fs::symlink_metadata(root.join(m)).is_err())
        .collect();
    let namespace = IdentityNamespace::create()?;
    // dpkg's output goes to a file, so nothing blocks while it runs and
    // the run can be stopped at its deadline.
    let log_path = debs.with_extension("log");
    let log_file = File::create(&log_path).map_err(io_error(&log_path))?;
    let stderr = log_file.try_clone().map_err(io_error(&log_path))?;
    let child = Command::new("nsenter")
        .arg("--user")
        .arg(format!("--target={}", namespace.0.id()))
        .args(["--preserve-credentials", "--", "bwrap"])
        .args([
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
        ])
        .args(["--unshare-cgroup-try", "--die-with-parent", "--new-session"])
        .args(["--uid", "0", "--gid", "0"])
        .arg("--bind")
        .arg(root)
        .arg("/")
        .args(["--proc", "/proc", "--dev", "/dev"])
        .arg("--bind")
        .arg(debs)
        .arg(format!("/{DEBS_MOUNT}"))
        .args(["--clearenv", "--setenv", "PATH", SANDBOX_PATH])
        .args(["--setenv", "LC_ALL", "C", "--setenv", "HOME", "/root"])
        .args(["--setenv", "DEBIAN_FRONTEND", "noninteractive"])
        .args(["--chdir", "/", "--", "/bin/sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(stderr)
        .spawn();
    let status = child
        .map_err(RunFailure::Start)
        .and_then(wait_until_deadline);
    drop(namespace);
    for mount in made {
        let path = root.join(mount);
        fs::remove_dir(&path).map_err(io_error(&path))?;
    }
    let log =
        String::from_utf8_lossy(&fs::read(&log_path).map_err(io_error(&log_path))?).into_owned();
    let tail = || {
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    };
    match status {
        Ok(status) if status.success() => Ok(log),
        Ok(status) => Err(PatchError::Sandbox(format!(
            "dpkg failed ({status}); nothing was written. Its last words:\n{}",
            tail()
        ))),
        Err(e) => Err(PatchError::Sandbox(format!(
            "{}; nothing was written. dpkg's last words:\n{}",
            oci::error_chain(&e),
            tail()
        ))),
    }
}

/// Why the sandbox's run did not finish.
#[derive(Debug, thiserror::Error)]
enum RunFailure {
    /// nsenter (or bubblewrap under it) could not be started.
    #[error("cannot start nsenter and bwrap")]
    Start(#[source] io::Error),
    /// Waiting for bubblewrap failed.
    #[error("waiting for bwrap")]
    Wait(#[source] io::Error),
    /// The run went past [`SANDBOX_DEADLINE`] and was stopped.
    #[error("the maintainer scripts ran longer than {0} minutes and were stopped")]
    Deadline(u64),
}

/// Waits for the sandbox, killing it (bubblewrap dies with its parent, and
/// the PID namespace with it) once [`SANDBOX_DEADLINE`] has passed.
fn wait_until_deadline(mut child: Child) -> Result<std::process::ExitStatus, RunFailure> {
    let deadline = Instant::now() + SANDBOX_DEADLINE;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunFailure::Deadline(SANDBOX_DEADLINE.as_secs() / 60));
            }
            Err(e) => return Err(RunFailure::Wait(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_symlinks_inside_the_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        std::os::unix::fs::symlink("/usr", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../..", root.join("usr/up")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert_eq!(resolve_in_root(root, "lib/x").unwrap(), "usr/lib/x");
        assert_eq!(resolve_in_root(root, "abs/lib/y").unwrap(), "usr/lib/y");
        assert_eq!(resolve_in_root(root, "usr/up/etc").unwrap(), "etc");
        assert_eq!(resolve_in_root(root, "../../etc").unwrap(), "etc");
        assert!(resolve_in_root(root, "loop/x").is_err());
    }

    #[test]
    fn namespaced_capabilities_become_revision_2() {
        // cap_net_raw=ep written in a user namespace: revision 3 with a root ID.
        let mut v3 = vec![0x01, 0, 0, 0x03, 0, 0x20, 0, 0, 0, 0, 0, 0];
        v3.extend([0; 8]);
        v3.extend(1000u32.to_le_bytes());
        let v2 = capability_v2(v3);
        assert_eq!(v2.len(), 20);
        assert_eq!(&v2[..4], &[0x01, 0, 0, 0x02]);
        assert_eq!(&v2[4..8], &[0, 0x20, 0, 0]);
        let already = vec![0x01, 0, 0, 0x02, 0, 0x20, 0, 0];
        assert_eq!(capability_v2(already.clone()), already);
    }

    fn facts(name: &str, pre_depends: &str, depends: &str) -> Facts {
        Facts::new(
            [name, "amd64", "2", name, "2"],
            None,
            crate::plan::Fields {
                pre_depends: Some(pre_depends),
                depends: Some(depends),
                ..Default::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn pre_dependencies_are_configured_before_their_dependents_are_unpacked() {
        // libpam-modules pre-depends on libpam-modules-bin, which depends on
        // libpam0g; libc6 is needed by everything; zlib1g is unrelated.
        let packages = [
            facts("libpam-modules", "libpam-modules-bin (= 2)", "libc6"),
            facts("libpam-modules-bin", "", "libpam0g, libc6"),
            facts("libpam0g", "", "libc6"),
            facts("libc6", "", ""),
            facts("zlib1g", "", "libc6"),
        ];
        let refs: Vec<&Facts> = packages.iter().collect();
        assert_eq!(
            install_steps(&refs).unwrap(),
            [
                DpkgStep::Unpack(vec![1, 2, 3, 4]),
                DpkgStep::Configure(vec![1, 2, 3]),
                DpkgStep::Unpack(vec![0]),
            ]
        );
        let script = dpkg_script(&refs).unwrap();
        assert!(
            script.contains("--configure libpam-modules-bin:amd64 libpam0g:amd64 libc6:amd64\n")
        );
        assert!(script.ends_with("--configure --pending"));
        // Without pre-dependencies: one unpack, everything configured at the end.
        let plain = [facts("a", "", "b"), facts("b", "", "")];
        let refs: Vec<&Facts> = plain.iter().collect();
        assert_eq!(
            install_steps(&refs).unwrap(),
            [DpkgStep::Unpack(vec![0, 1])]
        );
        // A cycle through a pre-dependency cannot be installed.
        let cycle = [facts("a", "b", ""), facts("b", "", "a")];
        let refs: Vec<&Facts> = cycle.iter().collect();
        assert_eq!(install_steps(&refs), None);
        assert!(dpkg_script(&refs).is_err());
    }

    enum Item<'a> {
        Dir(&'a str),
        File(&'a str, &'a [u8]),
        Link(&'a str, &'a str),
        HardLink(&'a str, &'a str),
        Device(&'a str),
    }

    /// A gzip layer blob in `dir`, with its digest.
    fn layer(dir: &Path, name: &str, items: &[Item]) -> (PathBuf, Digest) {
        let (uid, gid) = fs::metadata("/proc/self")
            .map(|m| (m.uid(), m.gid()))
            .unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        for item in items {
            let mut header = tar::Header::new_gnu();
            header.set_uid(u64::from(uid));
            header.set_gid(u64::from(gid));
            header.set_mode(0o755);
            header.set_size(0);
            match item {
                Item::Dir(path) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    tar.append_data(&mut header, path, io::empty()).unwrap();
                }
                Item::File(path, content) => {
                    header.set_mode(0o644);
                    header.set_size(content.len() as u64);
                    // Written raw: the builder itself refuses `..`, a hostile layer need not.
                    let name = &mut header.as_old_mut().name;
                    name[..path.len()].copy_from_slice(path.as_bytes());
                    header.set_cksum();
                    tar.append(&header, *content).unwrap();
                }
                Item::Link(path, target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    tar.append_link(&mut header, path, target).unwrap();
                }
                Item::HardLink(path, target) => {
                    header.set_entry_type(tar::EntryType::Link);
                    tar.append_link(&mut header, path, target).unwrap();
                }
                Item::Device(path) => {
                    header.set_entry_type(tar::EntryType::Char);
                    header.set_device_major(1).unwrap();
                    header.set_device_minor(3).unwrap();
                    tar.append_data(&mut header, path, io::empty()).unwrap();
                }
            }
        }
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gzip, &tar.into_inner().unwrap()).unwrap();
        let bytes = gzip.finish().unwrap();
        let path = dir.join(name);
        fs::write(&path, &bytes).unwrap();
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        (path, digest.parse().unwrap())
    }

    #[test]
    fn layers_apply_as_an_overlay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        let base = layer(
            dir.path(),
            "base",
            &[
                Item::Dir("etc"),
                Item::File("etc/a", b"a"),
                Item::Dir("usr/lib"),
                Item::File("usr/lib/old", b"old"),
                Item::Link("lib", "usr/lib"),
                Item::Link("abs", "/"),
                Item::Dir("dev"),
                Item::Device("dev/null"),
            ],
        );
        let top = layer(
            dir.path(),
            "top",
            &[
                Item::File("lib/x", b"x"),
                Item::File("abs/etc/b", b"b"),
                Item::File("etc/.wh.a", b""),
                Item::File("usr/lib/.wh..wh..opq", b""),
                Item::File("usr/lib/new", b"new"),
                Item::HardLink("usr/lib/new2", "usr/lib/new"),
                Item::File("../../escape", b"e"),
            ],
        );
        for (blob, digest) in [&base, &top] {
            unpack_layer(&root, blob, digest, 1 << 20).unwrap();
        }
        // Parents resolve inside the root, absolute links from the root.
        assert_eq!(fs::read(root.join("usr/lib/x")).unwrap(), b"x");
        assert_eq!(fs::read(root.join("etc/b")).unwrap(), b"b");
        assert_eq!(fs::read(root.join("escape")).unwrap(), b"e");
        assert!(!dir.path().join("escape").exists());
        // Whiteouts, an opaque directory (the layer's own entries stay), hard links.
        assert!(!root.join("etc/a").exists());
        assert!(!root.join("usr/lib/old").exists());
        let (new, new2) = (
            fs::metadata(root.join("usr/lib/new")).unwrap(),
            fs::metadata(root.join("usr/lib/new2")).unwrap(),
        );
        assert_eq!(new.ino(), new2.ino());
        // Devices are never made.
        assert!(fs::symlink_metadata(root.join("dev/null")).is_err());
        // A blob that is not what its digest says is refused.
        let wrong: Digest = format!("sha256:{}", "0".repeat(64)).parse().unwrap();
        assert!(unpack_layer(&root, &base.0, &wrong, 1 << 20).is_err());
        // So is one that decompresses to more than the bound.
        assert!(unpack_layer(&root, &top.0, &top.1, 100).is_err());
    }

    #[test]
    fn changes_are_captured_as_one_layer() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["etc", "usr/lib", "var/log", "gone/deep"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in ["etc/kept", "etc/chmodded", "usr/lib/removed", "gone/deep/f"] {
            fs::write(root.join(f), f).unwrap();
        }
        let before = survey(root).unwrap();
        fs::write(root.join("etc/new"), "new").unwrap();
        set_mode(&root.join("etc/chmodded"), 0o600).unwrap();
        fs::remove_file(root.join("usr/lib/removed")).unwrap();
        fs::remove_dir_all(root.join("gone")).unwrap();
        fs::write(root.join("var/log/dpkg.log"), "log").unwrap();
        fs::hard_link(root.join("etc/new"), root.join("etc/new-link")).unwrap();
        let after = survey(root).unwrap();

        let (mut tar, compressor) = layer_tar();
        let (whiteouts, written) = capture(&mut tar, root, &before, &after, 1000).unwrap();
        let layer = compressor.finish(tar).unwrap();
        assert_eq!(whiteouts, ["gone", "usr/lib/removed"]);
        assert_eq!(written, ["etc/chmodded", "etc/new", "etc/new-link"]);
        let mut entries = Vec::new();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&layer.blob[..]));
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            entries.push((
                entry.path().unwrap().to_string_lossy().into_owned(),
                header.entry_type(),
                header.mode().unwrap(),
                header.mtime().unwrap(),
            ));
        }
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "etc/chmodded",
                "etc/new",
                "etc/new-link",
                ".wh.gone",
                "usr/lib/.wh.removed"
            ]
        );
        assert_eq!(entries[0].2, 0o600);
        assert_eq!(
            entries[1].3, 1000,
            "times are clamped to the packages' newest"
        );
        assert_eq!(entries[2].1, tar::EntryType::Link);
    }

    #[test]
    fn dpkg_run_artifacts_stay_out_of_the_layer() {
        assert!(run_artifact("var/log/dpkg.log"));
        assert!(run_artifact("var/lib/dpkg/status-old"));
        assert!(run_artifact("var/cache/debconf/config.dat-old"));
        assert!(!run_artifact("var/lib/dpkg/status"));
        assert!(!run_artifact("var/cache/debconf/config.dat"));
        assert!(!run_artifact("etc/ld.so.cache"));
    }
}
