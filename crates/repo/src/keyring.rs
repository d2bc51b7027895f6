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

use pgp::composed::{CleartextSignedMessage, PublicOrSecret, SignedPublicKey};
use pgp::types::{KeyDetails, Tag, VerifyingKey};

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
    /// Keys whose self-signatures do not verify (or no public key at all).
    #[error("no public key with valid self-signatures")]
    NoSelfSigned,
}

/// A key a signature may be made with: a primary key or a bound subkey.
enum SigningKey {
    Primary(SignedPublicKey),
    Subkey(pgp::composed::SignedPublicSubKey),
}

impl SigningKey {
    fn as_verifying(&self) -> &dyn VerifyingKeyRef {
        match self {
            SigningKey::Primary(k) => k,
            SigningKey::Subkey(k) => k,
        }
    }
}

/// `VerifyingKey` is not object safe through `Signature::verify`'s generic, so
/// each kind gets a small adapter.
trait VerifyingKeyRef {
    fn verifies(&self, signature: &pgp::packet::Signature, text: &[u8]) -> bool;
}

impl<T: VerifyingKey> VerifyingKeyRef for T {
    fn verifies(&self, signature: &pgp::packet::Signature, text: &[u8]) -> bool {
        signature.verify(self, text).is_ok()
    }
}

/// The keys an archive's indexes must be signed with.
#[derive(Default)]
pub struct Keyring {
    keys: Vec<SigningKey>,
    names: Vec<String>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({})", self.names.join(", "))
    }
}

impl Keyring {
    /// Reads one or more keyring files (binary, as in `/usr/share/keyrings`, or ASCII-armored).
    pub fn from_files(paths: &[impl AsRef<Path>]) -> Result<Keyring, KeyringError> {
        let mut keyring = Keyring {
            keys: Vec::new(),
            names: Vec::new(),
        };
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

    /// Adds the keys of one keyring's bytes; fails when none is usable.
    pub fn add(&mut self, bytes: &[u8]) -> Result<(), KeyError> {
        let (parsed, _) =
            PublicOrSecret::from_reader_many(bytes).map_err(|e| KeyError::Parse(Box::new(e)))?;
        let before = self.keys.len();
        for item in parsed {
            let Ok(PublicOrSecret::Public(key)) = item else {
                continue;
            };
            // A primary is trusted when one of its self-certifications verifies. Keyrings also
            // carry third-party certifications (by the archive team's personal keys), which
            // cannot and need not verify here.
            let self_certified = key.details.users.iter().any(|user| {
                user.signatures.iter().any(|s| {
                    s.verify_certification(&key.primary_key, Tag::UserId, &user.id)
                        .is_ok()
                })
            });
            if !self_certified {
                continue;
            }
            self.names.push(
                key.details
                    .users
                    .first()
                    .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
                    .unwrap_or_else(|| format!("{:?}", key.primary_key.fingerprint())),
            );
            for subkey in &key.public_subkeys {
                if subkey.verify_bindings(&key.primary_key).is_ok() {
                    self.keys.push(SigningKey::Subkey(subkey.clone()));
                }
            }
            self.keys.push(SigningKey::Primary(key));
        }
        if self.keys.len() == before {
            return Err(KeyError::NoSelfSigned);
        }
        Ok(())
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
                .any(|key| key.as_verifying().verifies(signature, text.as_bytes()))
        });
        if !good {
            return Err(KeyringError::BadSignature {
                what: what.to_string(),
                signatures: message.signatures().len(),
                keys: self.names.join("; "),
            });
        }
        let mut text = text.replace("\r\n", "\n");
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Ok(text)
    }
}
