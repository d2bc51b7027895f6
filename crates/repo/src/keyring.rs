//! Trusted archive keys and the verification of signed `InRelease` files.
//!
//! Owns the one decision "is this index signed by a key we trust". A
//! distribution signs each suite with several keys at once (Debian: the
//! automatic signing keys of more than one release, as RSA signing
//! subkeys, plus the release team's Ed25519 primary key), so a file is
//! accepted when at least one of its signatures verifies against a trusted
//! primary key or one of its subkeys whose binding to that primary verifies.
//! Never returns text whose signature did not verify.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest as _, Sha256};

use pgp::composed::{CleartextSignedMessage, PublicOrSecret, SignedPublicKey};
use pgp::types::{KeyDetails, Tag};

/// Why a keyring cannot be used, or why a signed file is refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// A keyring file that cannot be read.
    #[error("cannot read keyring {}", path.display())]
    Read {
        /// The keyring file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A keyring file without one usable key.
    #[error("keyring {} holds no usable OpenPGP public key", path.display())]
    NoKeys {
        /// The keyring file.
        path: PathBuf,
        /// Why none of its keys is usable.
        #[source]
        source: KeyError,
    },
    /// A file that should be cleartext-signed and is not.
    #[error("{what} is not an OpenPGP cleartext-signed file")]
    NotSigned {
        /// The file (`InRelease of <suite>`).
        what: String,
        /// The OpenPGP parser's error.
        #[source]
        source: Box<pgp::errors::Error>,
    },
    /// A signed file none of whose signatures verifies against a trusted key.
    #[error(
        "{what}: none of its {signatures} signature(s) verifies against the trusted keys ({keys}); refusing it. \
         If the archive changed keys, update the keyring"
    )]
    BadSignature {
        /// The file (`InRelease of <suite>`).
        what: String,
        /// How many signatures it carries.
        signatures: usize,
        /// The trusted keys' user ids.
        keys: String,
    },
}

/// Why keyring bytes yield no trusted key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Bytes that are not OpenPGP key material (binary or armored).
    #[error("not an OpenPGP keyring")]
    Parse(#[source] Box<pgp::errors::Error>),
    /// Key material without a single public key.
    #[error("no OpenPGP public key in it")]
    NoPublicKey,
}

/// One primary key of a keyring with its subkeys. Whether the primary is
/// self-certified and which subkeys are bound to it is decided the first time
/// a signature names the key (each an RSA or EdDSA verification; a keyring
/// such as Debian's holds many keys and certifications, and a file is signed
/// by one or two of them), then remembered for the keyring's life.
struct TrustedKey {
    key: SignedPublicKey,
    name: String,
    self_certified: OnceLock<bool>,
    subkeys_bound: Vec<OnceLock<bool>>,
}

impl TrustedKey {
    fn new(key: SignedPublicKey) -> TrustedKey {
        let name = key
            .details
            .users
            .first()
            .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
            .unwrap_or_else(|| format!("{:?}", key.primary_key.fingerprint()));
        let subkeys_bound = key.public_subkeys.iter().map(|_| OnceLock::new()).collect();
        TrustedKey {
            key,
            name,
            self_certified: OnceLock::new(),
            subkeys_bound,
        }
    }

    /// A primary is trusted when one of its self-certifications verifies.
    /// Keyrings also carry third-party certifications (by the archive team's
    /// personal keys), which cannot and need not verify here, so only
    /// certifications the primary issued (or naming no issuer) are tried.
    fn is_self_certified(&self) -> bool {
        *self.self_certified.get_or_init(|| {
            let primary = &self.key.primary_key;
            self.key.details.users.iter().any(|user| {
                user.signatures
                    .iter()
                    .filter(|s| may_be_issued_by(s, primary))
                    .any(|s| {
                        s.verify_certification(primary, Tag::UserId, &user.id)
                            .is_ok()
                    })
            })
        })
    }

    fn is_bound(&self, index: usize) -> bool {
        *self.subkeys_bound[index].get_or_init(|| {
            self.key.public_subkeys[index]
                .verify_bindings(&self.key.primary_key)
                .is_ok()
        })
    }

    /// Whether `signature` over `text` verifies with this primary or one of
    /// its bound subkeys, trying only the keys the signature names as issuer.
    fn verifies(&self, signature: &pgp::packet::Signature, text: &[u8]) -> bool {
        let primary = &self.key.primary_key;
        if may_be_issued_by(signature, primary)
            && self.is_self_certified()
            && signature.verify(primary, text).is_ok()
        {
            return true;
        }
        self.key
            .public_subkeys
            .iter()
            .enumerate()
            .filter(|(_, subkey)| may_be_issued_by(signature, *subkey))
            .any(|(index, subkey)| {
                self.is_self_certified()
                    && self.is_bound(index)
                    && signature.verify(subkey, text).is_ok()
            })
    }
}

/// Whether `signature` names `key` as its issuer (by fingerprint or key id),
/// or names no issuer at all (then every key must be tried).
fn may_be_issued_by(signature: &pgp::packet::Signature, key: &impl KeyDetails) -> bool {
    let fingerprints = signature.issuer_fingerprint();
    let key_ids = signature.issuer_key_id();
    if fingerprints.is_empty() && key_ids.is_empty() {
        return true;
    }
    (!fingerprints.is_empty() && fingerprints.contains(&&key.fingerprint()))
        || key_ids.contains(&&key.legacy_key_id())
}

/// The keys an archive's indexes must be signed with.
#[derive(Default)]
pub struct Keyring {
    keys: Vec<TrustedKey>,
    /// SHA256 over the SHA256 of each key material added, in order.
    identity: Sha256,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({})", self.names())
    }
}

impl Keyring {
    /// Reads one or more keyring files (binary, as in `/usr/share/keyrings`, or ASCII-armored).
    pub fn from_files(paths: &[impl AsRef<Path>]) -> Result<Keyring, KeyringError> {
        let mut keyring = Keyring::default();
        for path in paths {
            let path = path.as_ref();
            let bytes = std::fs::read(path).map_err(|source| KeyringError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            keyring.add(&bytes).map_err(|source| KeyringError::NoKeys {
                path: path.to_path_buf(),
                source,
            })?;
        }
        Ok(keyring)
    }

    /// Adds the public keys of one keyring's bytes; fails when there is none.
    /// Their self-certifications and subkey bindings are verified when a
    /// signature first names them (see [`Keyring::verify_cleartext`]).
    pub fn add(&mut self, bytes: &[u8]) -> Result<(), KeyError> {
        let (parsed, _) =
            PublicOrSecret::from_reader_many(bytes).map_err(|e| KeyError::Parse(Box::new(e)))?;
        let before = self.keys.len();
        self.keys.extend(parsed.filter_map(|item| match item {
            Ok(PublicOrSecret::Public(key)) => Some(TrustedKey::new(key)),
            _ => None,
        }));
        if self.keys.len() == before {
            return Err(KeyError::NoPublicKey);
        }
        self.identity.update(Sha256::digest(bytes));
        Ok(())
    }

    /// What identifies this keyring's contents (hex): equal for keyrings
    /// made of the same key material in the same order, so a verification
    /// recorded with one keyring is never taken for another's.
    pub fn id(&self) -> String {
        hex::encode(self.identity.clone().finalize())
    }

    fn names(&self) -> String {
        let names: Vec<&str> = self.keys.iter().map(|k| k.name.as_str()).collect();
        names.join("; ")
    }

    /// Verifies a cleartext-signed file (an `InRelease`) and returns the text
    /// that was signed, with `\n` line ends. `what` names the file in errors.
    pub fn verify_cleartext(&self, signed: &str, what: &str) -> Result<String, KeyringError> {
        let (message, _) = CleartextSignedMessage::from_string(signed).map_err(|source| {
            KeyringError::NotSigned {
                what: what.to_string(),
                source: Box::new(source),
            }
        })?;
        let text = message.signed_text();
        let good = message.signatures().iter().any(|signature| {
            self.keys
                .iter()
                .any(|key| key.verifies(signature, text.as_bytes()))
        });
        if !good {
            return Err(KeyringError::BadSignature {
                what: what.to_string(),
                signatures: message.signatures().len(),
                keys: self.names(),
            });
        }
        let mut text = text.replace("\r\n", "\n");
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Ok(text)
    }
}
