//! The package managers as oracles for what a patcher must do and has done:
//! apt's plan to upgrade the packages of a root filesystem from given
//! sources, and dpkg's audit and verification of a root's package database.
//! apt runs on the host, never in a chroot of the root (so any
//! architecture works, and nothing of the image is executed), against a
//! copy of the root's dpkg status in a private apt directory tree that
//! shares nothing with the host's apt: not its sources, keys, preferences,
//! configuration, lists or lock.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::archive::{DEBIAN_KEYRING, ubuntu_keyring};

const STATUS: &str = "var/lib/dpkg/status";
const STATUS_D: &str = "var/lib/dpkg/status.d";

/// What `apt-get -s --with-new-pkgs upgrade` would install in `root` (a
/// root filesystem of `architecture`, e.g. `amd64` or `arm64`) given only
/// `sources`, sources.list lines in the one-line format
/// (`deb http://deb.debian.org/debian-security bookworm-security main`):
/// package name → new version, from its `Inst` lines. Upgrades and the new
/// packages they need; not what apt keeps back. Ubuntu's archives (any
/// `ubuntu.com` source) are trusted with [`ubuntu_keyring`], Debian's with
/// the host's keyring. Phased updates are always included (the plan is the
/// same on every machine). The root's dpkg database is `var/lib/dpkg/status`,
/// else, for a distroless image, the one [`dpkg_status`] makes of
/// `var/lib/dpkg/status.d`. Panics when apt fails, warns (an index that did
/// not download), or finds the installed packages' dependencies unmet,
/// which distroless images commonly are: [`apt_upgradable`] answers for
/// those.
pub fn apt_upgrades(root: &Path, architecture: &str, sources: &str) -> BTreeMap<String, String> {
    let apt = Apt::new(root, architecture, sources);
    let output = apt.run("apt-get", &["-s", "--with-new-pkgs", "upgrade"]);
    if !output.status.success() {
        panic!(
            "apt-get -s --with-new-pkgs upgrade for {} failed (unmet dependencies in a \
             distroless image? apt_upgradable ignores them):\n{}{}",
            root.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    inst_lines(&String::from_utf8(output.stdout).unwrap())
}

/// The installed packages of `root` for which `sources` have a newer
/// version, as `apt list --upgradable` says (name → that version), with the
/// same private apt tree as [`apt_upgrades`]. Unlike `apt-get upgrade`,
/// it does not mind unmet dependencies nor hold anything back: for each
/// installed package, its candidate if newer.
pub fn apt_upgradable(root: &Path, architecture: &str, sources: &str) -> BTreeMap<String, String> {
    let apt = Apt::new(root, architecture, sources);
    let output = apt.run("apt", &["list", "--upgradable"]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "apt list --upgradable for {} failed:\n{stdout}{}",
        root.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter(|l| l.contains("[upgradable from:"))
        .map(|line| {
            // name/suite[,suite] version architecture [upgradable from: old]
            let mut words = line.split_whitespace();
            let name = words.next().unwrap().split('/').next().unwrap();
            (name.to_string(), words.next().unwrap().to_string())
        })
        .collect()
}

/// Package name → new version of every `Inst` line of an apt simulation
/// (`Inst libc6 [2.36-9] (2.36-9+deb12u4 Debian-Security:12/stable-security [amd64])`,
/// or without the `[old]` for a new package).
pub fn inst_lines(simulation: &str) -> BTreeMap<String, String> {
    simulation
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("Inst ")?;
            let name = rest.split_whitespace().next()?;
            let version = rest.split_once('(')?.1.split_whitespace().next()?;
            Some((name.to_string(), version.to_string()))
        })
        .collect()
}

/// The dpkg status database of `root`: `var/lib/dpkg/status`, or, when the
/// root has only `var/lib/dpkg/status.d/` (a distroless image), its
/// paragraphs (not the `*.md5sums` files) each given
/// `Status: install ok installed`, in file-name order.
pub fn dpkg_status(root: &Path) -> String {
    let status = root.join(STATUS);
    if status.exists() {
        return std::fs::read_to_string(&status)
            .unwrap_or_else(|e| panic!("{}: {e}", status.display()));
    }
    let status_d = root.join(STATUS_D);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&status_d)
        .unwrap_or_else(|e| {
            panic!(
                "{} has neither {STATUS} nor {STATUS_D}/ ({e})",
                root.display()
            )
        })
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_none_or(|e| e != "md5sums"))
        .collect();
    files.sort();
    let mut synthesized = String::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for paragraph in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
            if paragraph.lines().any(|l| l.starts_with("Status:")) {
                writeln!(synthesized, "{paragraph}\n").unwrap();
                continue;
            }
            let (first, rest) = paragraph.split_once('\n').unwrap_or((paragraph, ""));
            writeln!(synthesized, "{first}\nStatus: install ok installed").unwrap();
            if !rest.is_empty() {
                writeln!(synthesized, "{rest}").unwrap();
            }
            synthesized.push('\n');
        }
    }
    assert!(
        !synthesized.is_empty(),
        "{} lists no package",
        status_d.display()
    );
    synthesized
}

/// `dpkg --root=ROOT --audit`: stdout and stderr, plus the exit status
/// when it failed; empty when the database is sound. Needs a dpkg database
/// (`var/lib/dpkg/status`); finds nothing to say about a distroless root.
pub fn dpkg_audit(root: &Path) -> String {
    dpkg(root, &["--audit"])
}

/// `dpkg --root=ROOT -V PACKAGE…` (every package when `packages` is empty):
/// stdout and stderr, plus the exit status when it failed; empty when each
/// package's files match its md5sums in `var/lib/dpkg/info`. Needs a dpkg
/// database. Note the debootstrap images lack `/var/lib/apt/lists/partial`
/// and `/var/log/apt`, which `apt` owns: verifying `apt` reports them.
pub fn dpkg_verify(root: &Path, packages: &[&str]) -> String {
    let mut args = vec!["-V"];
    args.extend_from_slice(packages);
    dpkg(root, &args)
}

fn dpkg(root: &Path, args: &[&str]) -> String {
    let mut command = Command::new("dpkg");
    command.arg(format!("--root={}", root.display())).args(args);
    command.env("LC_ALL", "C");
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let mut said = String::from_utf8_lossy(&output.stdout).into_owned();
    said.push_str(&String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        writeln!(said, "{command:?}: {}", output.status).unwrap();
    }
    said
}

/// A private apt directory tree for one root, its indexes updated.
struct Apt {
    dir: tempfile::TempDir,
}

impl Apt {
    fn new(root: &Path, architecture: &str, sources: &str) -> Apt {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in [
            "etc/apt.conf.d",
            "etc/preferences.d",
            "etc/sources.list.d",
            "etc/trusted.gpg.d",
            "state/lists/partial",
            "cache/archives/partial",
            "log",
        ] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("status"), dpkg_status(root)).unwrap();
        let sources: String = sources
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(
            sources
                .lines()
                .all(|l| l.starts_with("deb ") || l.starts_with('#')),
            "sources must be one-line sources.list lines (deb URI SUITE COMPONENT…):\n{sources}"
        );
        std::fs::write(d.join("etc/sources.list"), &sources).unwrap();
        let mut keyrings = vec![PathBuf::from(DEBIAN_KEYRING)];
        if sources.contains("ubuntu.com") {
            keyrings.push(ubuntu_keyring());
        }
        for keyring in keyrings {
            let name = keyring.file_name().unwrap();
            std::fs::copy(&keyring, d.join("etc/trusted.gpg.d").join(name))
                .unwrap_or_else(|e| panic!("{}: {e}", keyring.display()));
        }
        // Dir::Etc moves sources.list(.d), trusted.gpg(.d), preferences(.d)
        // and apt.conf(.d) into the tree: the host's are never read (this
        // file, read first through APT_CONFIG, says so before apt would).
        let config = format!(
            "Dir::Etc \"{d}/etc\";\n\
             Dir::Etc::sourcelist \"sources.list\";\n\
             Dir::Etc::sourceparts \"sources.list.d\";\n\
             Dir::Etc::trusted \"trusted.gpg\";\n\
             Dir::Etc::trustedparts \"trusted.gpg.d\";\n\
             Dir::State \"{d}/state\";\n\
             Dir::State::status \"{d}/status\";\n\
             Dir::Cache \"{d}/cache\";\n\
             Dir::Log \"{d}/log\";\n\
             APT::Architecture \"{architecture}\";\n\
             APT::Architectures {{ \"{architecture}\"; }};\n\
             APT::Get::Always-Include-Phased-Updates \"true\";\n\
             APT::Sandbox::User \"root\";\n\
             Acquire::Languages \"none\";\n\
             Debug::NoLocking \"true\";\n",
            d = d.display()
        );
        std::fs::write(d.join("apt.conf"), config).unwrap();
        let apt = Apt { dir };
        let output = apt.run("apt-get", &["-q", "update"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let warned = stderr
            .lines()
            .any(|l| l.starts_with("W:") || l.starts_with("E:"));
        assert!(
            output.status.success() && !warned,
            "apt-get update of\n{sources}failed:\n{}{stderr}",
            String::from_utf8_lossy(&output.stdout)
        );
        apt
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let mut command = Command::new(program);
        command
            .args(args)
            .env("APT_CONFIG", self.dir.path().join("apt.conf"))
            .env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive");
        command
            .output()
            .unwrap_or_else(|e| panic!("{command:?}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inst_lines_of_upgrades_and_new_packages() {
        let simulation = "NOTE: This is only a simulation!\n\
            Inst libc6 [2.36-9+deb12u3] (2.36-9+deb12u4 Debian-Security:12/stable-security [arm64]) []\n\
            Conf libc6 (2.36-9+deb12u4 Debian-Security:12/stable-security [arm64])\n\
            Inst openssl (3.0.22-1~deb12u2 Debian-Security:12/oldstable-security [amd64])\n";
        assert_eq!(
            inst_lines(simulation),
            BTreeMap::from([
                ("libc6".to_string(), "2.36-9+deb12u4".to_string()),
                ("openssl".to_string(), "3.0.22-1~deb12u2".to_string()),
            ])
        );
    }

    #[test]
    fn synthesizes_a_status_file_from_status_d() {
        let root = tempfile::tempdir().unwrap();
        let status_d = root.path().join(STATUS_D);
        std::fs::create_dir_all(&status_d).unwrap();
        std::fs::write(
            status_d.join("zlib1g"),
            "Package: zlib1g\nVersion: 1:1.2.13.dfsg-1\nDescription: compression\n more\n",
        )
        .unwrap();
        std::fs::write(status_d.join("zlib1g.md5sums"), "abc  usr/lib/x\n").unwrap();
        std::fs::write(status_d.join("base-files"), "Package: base-files\n").unwrap();
        assert_eq!(
            dpkg_status(root.path()),
            "Package: base-files\nStatus: install ok installed\n\n\
             Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\n\
             Description: compression\n more\n\n"
        );
    }
}
