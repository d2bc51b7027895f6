//! The distributions drydock knows: where their archives are and which
//! keys sign them.
//!
//! Owns the official URLs of Debian's and Ubuntu's archives and security
//! pockets (Ubuntu's ports for other architectures), the Debian archive
//! keyring's path and Ubuntu's archive key shipped with drydock
//! (`keys/README.md` says where it came from and how it was checked). Pure
//! data: mirrors are applied by whoever reads these, never here.

/// Debian's archive (`bookworm`, `bookworm-updates`).
pub const DEBIAN_ARCHIVE: &str = "http://deb.debian.org/debian";

/// Debian's security archive (`bookworm-security`).
pub const DEBIAN_SECURITY: &str = "http://deb.debian.org/debian-security";

/// The keyring of Debian's archive keys, from the `debian-archive-keyring` package.
pub const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Ubuntu's archive for amd64 and i386 (`noble`, `noble-updates`).
pub const UBUNTU_ARCHIVE: &str = "http://archive.ubuntu.com/ubuntu";

/// Ubuntu's security archive for amd64 and i386 (`noble-security`).
pub const UBUNTU_SECURITY: &str = "http://security.ubuntu.com/ubuntu";

/// Ubuntu's archive, security pocket included, for every other architecture.
pub const UBUNTU_PORTS: &str = "http://ports.ubuntu.com/ubuntu-ports";

/// Ubuntu's archive signing key (2018), which signs every current suite;
/// Debian does not package it, so drydock ships it.
pub const UBUNTU_ARCHIVE_KEY: &[u8] = include_bytes!("../keys/ubuntu-archive-2018.gpg");

/// Ubuntu's archive and security archive for `architecture`: the main
/// archives serve amd64 and i386, ports every other architecture.
pub fn ubuntu_archives(architecture: &str) -> (&'static str, &'static str) {
    match architecture {
        "amd64" | "i386" => (UBUNTU_ARCHIVE, UBUNTU_SECURITY),
        _ => (UBUNTU_PORTS, UBUNTU_PORTS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ubuntu_serves_other_architectures_from_ports() {
        assert_eq!(ubuntu_archives("amd64"), (UBUNTU_ARCHIVE, UBUNTU_SECURITY));
        assert_eq!(ubuntu_archives("arm64"), (UBUNTU_PORTS, UBUNTU_PORTS));
    }

    #[test]
    fn the_shipped_ubuntu_key_is_a_usable_keyring() {
        let mut keyring = crate::Keyring::default();
        keyring.add(UBUNTU_ARCHIVE_KEY).unwrap();
    }
}
