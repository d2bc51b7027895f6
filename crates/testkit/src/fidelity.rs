//! apt inside the image as the oracle for the files a patch leaves.
//!
//! [`apt_install`] runs the image's own apt and dpkg in a chroot of a copy
//! of its root filesystem (`/proc` and `/dev` mounted, maintainer scripts
//! and triggers run) to install given package versions; [`Tree::read`]
//! records a root filesystem path by path (type, mode with the
//! setuid/setgid/sticky bits, owner, group, size, SHA-256 of the content,
//! symlink target, the `security.capability` xattr); [`differences`] lists
//! every path where two trees disagree, skipping only what apt changes by
//! running at all ([`apt_run_artifact`]). Needs root.

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// One path of a root filesystem as the comparison sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `file`, `dir`, `symlink`, `char`, `block`, `fifo`, `socket`.
    pub kind: &'static str,
    /// Permission bits with setuid, setgid and sticky (`0o4755`).
    pub mode: u32,
    /// The owner's user id.
    pub uid: u32,
    /// The owner's group id.
    pub gid: u32,
    /// Regular files only.
    pub size: u64,
    /// SHA-256 of a regular file's content.
    pub sha256: Option<String>,
    /// A symlink's target, as written.
    pub target: Option<String>,
    /// The `security.capability` xattr, hex.
    pub capability: Option<String>,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:04o} {}:{}",
            self.kind, self.mode, self.uid, self.gid
        )?;
        if self.kind == "file" {
            let hash = self.sha256.as_deref().unwrap_or("");
            write!(
                f,
                " {} bytes sha256:{}",
                self.size,
                &hash[..hash.len().min(12)]
            )?;
        }
        if let Some(target) = &self.target {
            write!(f, " -> {target}")?;
        }
        if let Some(capability) = &self.capability {
            write!(f, " cap={capability}")?;
        }
        Ok(())
    }
}

/// A root filesystem, by path relative to its root (`usr/bin/ssh`).
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// Every path under the root, by its path relative to the root.
    pub nodes: BTreeMap<String, Node>,
}

/// The file capability set on `path` itself (never through a symlink), in hex.
fn capability(path: &Path) -> Option<String> {
    let value = xattr::get(path, "security.capability").ok()??;
    (!value.is_empty()).then(|| value.iter().map(|b| format!("{b:02x}")).collect())
}

impl Tree {
    /// Records every path under `root` (never following a symlink).
    pub fn read(root: &Path) -> Tree {
        let mut tree = Tree::default();
        let mut pending = vec![PathBuf::new()];
        while let Some(relative) = pending.pop() {
            let dir = root.join(&relative);
            let entries =
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            for entry in entries {
                let entry = entry.unwrap();
                let path = relative.join(entry.file_name());
                let full = root.join(&path);
                let meta = std::fs::symlink_metadata(&full).unwrap();
                let file_type = meta.file_type();
                use std::os::unix::fs::FileTypeExt;
                let kind = if file_type.is_dir() {
                    "dir"
                } else if file_type.is_symlink() {
                    "symlink"
                } else if file_type.is_file() {
                    "file"
                } else if file_type.is_char_device() {
                    "char"
                } else if file_type.is_block_device() {
                    "block"
                } else if file_type.is_fifo() {
                    "fifo"
                } else {
                    "socket"
                };
                let sha256 = (kind == "file").then(|| {
                    Sha256::digest(std::fs::read(&full).unwrap())
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect()
                });
                let target = (kind == "symlink").then(|| {
                    std::fs::read_link(&full)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                });
                let node = Node {
                    kind,
                    mode: meta.mode() & 0o7777,
                    uid: meta.uid(),
                    gid: meta.gid(),
                    size: if kind == "file" { meta.len() } else { 0 },
                    sha256,
                    target,
                    capability: if kind == "file" {
                        capability(&full)
                    } else {
                        None
                    },
                };
                if kind == "dir" {
                    pending.push(path.clone());
                }
                tree.nodes.insert(path.to_string_lossy().into_owned(), node);
            }
        }
        tree
    }
}

/// What apt changes by running at all, whatever it installs: its logs,
/// caches and lists, backups (`*-old`), the resolver configuration the
/// chroot needed, dpkg's locks and journal, ldconfig's auxiliary cache.
pub fn apt_run_artifact(path: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "var/log",
        "var/cache/apt",
        "var/lib/apt/lists",
        "var/cache/ldconfig",
        "var/lib/dpkg/updates",
    ];
    const FILES: &[&str] = &[
        "etc/resolv.conf",
        "var/lib/dpkg/lock",
        "var/lib/dpkg/lock-frontend",
        "var/lib/dpkg/triggers/Lock",
        "var/cache/debconf/passwords.dat",
        "var/lib/apt/daily_lock",
    ];
    PREFIXES
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
        || FILES.contains(&path)
        || path.ends_with("-old")
}

/// One path where the patched tree differs from apt's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The path, relative to the root.
    pub path: String,
    /// apt's result; `None` when apt left nothing there.
    pub apt: Option<Node>,
    /// The patch's result; `None` when the patch left nothing there.
    pub patched: Option<Node>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |n: &Option<Node>| n.as_ref().map_or("absent".to_string(), Node::to_string);
        write!(
            f,
            "{}: apt {} | patch {}",
            self.path,
            show(&self.apt),
            show(&self.patched)
        )
    }
}

/// Every path where `patched` differs from `apt`'s result, except apt's run artifacts.
pub fn differences(apt: &Tree, patched: &Tree) -> Vec<Difference> {
    let mut paths: Vec<&String> = apt.nodes.keys().chain(patched.nodes.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter(|p| !apt_run_artifact(p))
        .filter_map(|path| {
            let (a, b) = (apt.nodes.get(path), patched.nodes.get(path));
            (a != b).then(|| Difference {
                path: path.clone(),
                apt: a.cloned(),
                patched: b.cloned(),
            })
        })
        .collect()
}

/// Mounts that are undone when dropped, in reverse order.
struct Mounts(Vec<PathBuf>);

impl Drop for Mounts {
    fn drop(&mut self) {
        for target in self.0.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(target).status();
        }
    }
}

/// Runs `apt-get install --no-install-recommends NAME=VERSION…` with the
/// image's own apt in a chroot of `root` (a copy: it is changed), after
/// adding `sources` (one-line sources.list text) to its configuration and
/// `apt-get update`; removes those sources, the resolver configuration and
/// apt's lists again afterwards. Returns apt's output; panics when apt fails.
pub fn apt_install(root: &Path, sources: &str, packages: &[(String, String)]) -> String {
    let requested: Vec<String> = packages.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let mut args = vec![
        "apt-get",
        "install",
        "-y",
        "--no-install-recommends",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
    ];
    args.extend(requested.iter().map(String::as_str));
    in_chroot(root, sources, &args)
}

/// What the image's own apt, in a chroot of `root`, with its own sources,
/// keys and preferences plus `sources`, would upgrade
/// (`apt-get -s --with-new-pkgs upgrade`): package name → version, from
/// the `Inst` lines. Leaves `root` as it was.
pub fn apt_simulated_upgrade(root: &Path, sources: &str) -> BTreeMap<String, String> {
    crate::oracle::inst_lines(&in_chroot(
        root,
        sources,
        &["apt-get", "-s", "--with-new-pkgs", "upgrade"],
    ))
}

/// `apt-get update` then `args`, in a chroot of `root` with `/proc` and
/// `/dev` mounted, `sources` added and the host's resolver; all of which,
/// and apt's lists, are removed afterwards. Returns what apt said; panics
/// when it fails.
fn in_chroot(root: &Path, sources: &str, args: &[&str]) -> String {
    let extra = root.join("etc/apt/sources.list.d/drydock-oracle.list");
    std::fs::write(&extra, sources).unwrap();
    let resolv = root.join("etc/resolv.conf");
    let had_resolv = std::fs::symlink_metadata(&resolv).is_ok();
    if !had_resolv {
        std::fs::copy("/etc/resolv.conf", &resolv).unwrap();
    }
    let mut mounts = Mounts(Vec::new());
    for (target, mount) in [
        ("proc", ["-t", "proc", "proc"].as_slice()),
        ("dev", ["--bind", "/dev"].as_slice()),
    ] {
        let target = root.join(target);
        std::fs::create_dir_all(&target).unwrap();
        crate::run(Command::new("mount").args(mount).arg(&target));
        mounts.0.push(target);
    }
    let chroot = |args: &[&str]| {
        let output = Command::new("chroot")
            .arg(root)
            .args(args)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "chroot apt {args:?} failed:\n{said}"
        );
        said
    };
    let mut log = chroot(&["apt-get", "update"]);
    log.push_str(&chroot(args));
    drop(mounts);
    std::fs::remove_file(&extra).unwrap();
    if !had_resolv {
        std::fs::remove_file(&resolv).unwrap();
    }
    let lists = root.join("var/lib/apt/lists");
    if lists.exists() {
        std::fs::remove_dir_all(&lists).unwrap();
    }
    log
}
