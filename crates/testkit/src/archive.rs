//! Verified downloads from Debian's archive, through the `repo` crate: a
//! suite's signed `Packages` index for one architecture, the `.deb` files
//! it lists (checked against the index), and the keyrings other archives
//! need, which Debian ships as packages (Ubuntu's). Everything trusts only
//! the host's `debian-archive-keyring`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, PoisonError};

use repo::{AptClient, Cache, Keyring, Suite};

use crate::{cache_dir, field, run};

pub use repo::distributions::{DEBIAN_ARCHIVE as DEBIAN, DEBIAN_KEYRING, DEBIAN_SECURITY};

/// A `.deb` downloaded from the archive and verified.
pub struct Deb {
    /// The package's name.
    pub name: String,
    /// Where the verified `.deb` is, in the download cache.
    pub path: PathBuf,
    /// `Package Version Architecture source:Package source:Version`, as
    /// `dpkg-deb --show` reads them from the control file.
    pub identity: String,
}

impl Deb {
    /// The package's version.
    pub fn version(&self) -> &str {
        self.identity.split(' ').nth(1).unwrap()
    }
}

fn client() -> AptClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let keyring = Keyring::from_files(&[DEBIAN_KEYRING])
        .unwrap_or_else(|e| panic!("{e} (the debian-archive-keyring package provides it)"));
    AptClient::new(
        oci::SharedHttp::default(),
        Cache::new(cache_dir().join("apt")),
        keyring,
    )
}

/// The `main` Packages index of `suite` of the archive at `base_url` for
/// `architecture` (it lists the `all` packages too), verified against the
/// signed `InRelease`.
pub fn packages(base_url: &str, suite: &str, architecture: &str) -> String {
    let apt = client();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let verified = apt
            .release(&Suite::new(base_url, suite))
            .await
            .unwrap_or_else(|e| panic!("{suite}: {e}"));
        let index = apt
            .index(&verified, &format!("main/binary-{architecture}/Packages"))
            .await
            .unwrap_or_else(|e| panic!("{suite} {architecture}: {e}"));
        String::from_utf8(index).unwrap()
    })
}

/// The paragraph of package `name` in a Packages index.
pub fn paragraph<'a>(index: &'a str, name: &str) -> Option<&'a str> {
    index
        .split("\n\n")
        .find(|p| field(p, "Package").as_deref() == Some(name))
}

/// Downloads the `.deb` of each of `names` listed in `index`, a verified
/// Packages index of `suite` of the archive at `base_url`.
pub fn download(base_url: &str, suite: &str, index: &str, names: &[&str]) -> Vec<Deb> {
    let apt = client();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut debs = Vec::new();
        for name in names {
            let paragraph = paragraph(index, name)
                .unwrap_or_else(|| panic!("{suite} has no package {name} today"));
            let wanted = |f| field(paragraph, f).unwrap_or_else(|| panic!("{name}: no {f}"));
            let path = apt
                .download(
                    base_url,
                    &wanted("Filename"),
                    &wanted("SHA256"),
                    wanted("Size").parse().unwrap(),
                )
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let identity = run(Command::new("dpkg-deb")
                .args(["--show", "--showformat"])
                .arg("${Package} ${Version} ${Architecture} ${source:Package} ${source:Version}")
                .arg(&path));
            debs.push(Deb {
                name: name.to_string(),
                path,
                identity,
            });
        }
        debs
    })
}

/// Downloads the `.deb` of each of `names` from a suite of Debian's
/// archive, for `architecture` (or `all`).
pub fn fetch(suite: &str, architecture: &str, names: &[&str]) -> Vec<Deb> {
    let index = packages(DEBIAN, suite, architecture);
    download(DEBIAN, suite, &index, names)
}

/// The suite of Debian's archive whose `ubuntu-keyring` package gives
/// [`ubuntu_keyring`] (Debian 12 itself has none).
const UBUNTU_KEYRING_SUITE: &str = "bookworm-backports";

/// Ubuntu's archive keys (`ubuntu-archive-keyring.gpg`, a binary OpenPGP
/// keyring as debootstrap, apt and [`repo::Keyring`] read it), taken once
/// from the `ubuntu-keyring` package of Debian's `bookworm-backports`: the
/// chain of trust runs from the host's Debian keyring, not from a key
/// downloaded from the archive it is meant to verify. The package's file
/// also holds GnuPG trust packets, which the `pgp` crate (so
/// `repo::Keyring`) refuses; they are left out.
pub fn ubuntu_keyring() -> PathBuf {
    static FETCHING: Mutex<()> = Mutex::new(());
    let _fetching = FETCHING.lock().unwrap_or_else(PoisonError::into_inner);
    let keyring = cache_dir().join("ubuntu-archive-keyring.gpg");
    if keyring.exists() {
        return keyring;
    }
    let debs = fetch(UBUNTU_KEYRING_SUITE, "amd64", &["ubuntu-keyring"]);
    let work = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&debs[0].path)
        .arg(work.path()));
    let packaged = work
        .path()
        .join("usr/share/keyrings/ubuntu-archive-keyring.gpg");
    let bytes = std::fs::read(&packaged)
        .unwrap_or_else(|e| panic!("{} of {}: {e}", packaged.display(), debs[0].identity));
    let keys = without_trust_packets(&bytes);
    let temp = keyring.with_extension("part");
    std::fs::write(&temp, keys).unwrap();
    Keyring::from_files(&[&temp])
        .unwrap_or_else(|e| panic!("the keyring of {}: {e}", debs[0].identity));
    std::fs::rename(&temp, &keyring).unwrap();
    keyring
}

/// The packets of a binary OpenPGP keyring but its trust packets (tag 12,
/// GnuPG's local bookkeeping; RFC 4880 4.2 framing).
fn without_trust_packets(mut bytes: &[u8]) -> Vec<u8> {
    let mut kept = Vec::new();
    while let Some(&first) = bytes.first() {
        assert!(first & 0x80 != 0, "not an OpenPGP packet: {first:#x}");
        let be = |b: &[u8]| b.iter().fold(0usize, |n, &b| n << 8 | b as usize);
        let (tag, header, length) = if first & 0x40 == 0 {
            let width = match first & 3 {
                3 => panic!("a keyring packet of indeterminate length"),
                w => 1 << w,
            };
            ((first >> 2) & 0xf, 1 + width, be(&bytes[1..1 + width]))
        } else {
            match bytes[1] {
                o @ 0..192 => (first & 0x3f, 2, o as usize),
                o @ 192..224 => (
                    first & 0x3f,
                    3,
                    ((o as usize - 192) << 8) + bytes[2] as usize + 192,
                ),
                255 => (first & 0x3f, 6, be(&bytes[2..6])),
                _ => panic!("a keyring packet of partial length"),
            }
        };
        let (packet, rest) = bytes.split_at(header + length);
        if tag != 12 {
            kept.extend_from_slice(packet);
        }
        bytes = rest;
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_out_trust_packets_of_either_framing() {
        let user_id_new = [0xc0 | 13, 3, b'a', b'b', b'c'];
        let trust_old = [0x80 | 12 << 2, 2, 0, 3];
        let trust_new = [0xc0 | 12, 1, 0];
        let long_old = [&[0x80 | 2 << 2 | 1, 1, 44][..], &[7; 300]].concat();
        let long_new = [&[0xc0 | 2, 192, 108][..], &[9; 300]].concat();
        let keyring = [
            &user_id_new[..],
            &trust_old,
            &long_old,
            &trust_new,
            &long_new,
        ]
        .concat();
        assert_eq!(
            without_trust_packets(&keyring),
            [&user_id_new[..], &long_old, &long_new].concat()
        );
    }
}
