//! An APT repository client: signed suites, their indexes and pool files.
//!
//! Owns the chain of trust from a keyring to every byte drydock installs:
//! `InRelease` is verified against the keyring and checked for expiry
//! (`Valid-Until`), its SHA256 list then verifies each index (fetched
//! `by-hash` when the suite offers it, so a mirror update in between cannot
//! mix versions), and index entries verify each `.deb`. Everything
//! downloaded by checksum goes through the [`Cache`].

pub mod packages;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oci::{Digest, SharedHttp};
use sha2::{Digest as _, Sha256};

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::release::Release;

/// Signed files and indexes larger than this are refused.
const MAX_INRELEASE_BYTES: usize = 32 * 1024 * 1024;
/// The largest decompressed index accepted (Debian main's Packages is ~50 MB).
pub const MAX_INDEX_BYTES: u64 = 1024 * 1024 * 1024;

/// A suite of an archive, e.g. `http://deb.debian.org/debian-security` + `bookworm-security`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Suite {
    /// The archive's base URL, without a trailing slash.
    pub base_url: String,
    /// The suite's name under `dists/` (`bookworm-security`).
    pub name: String,
}

impl Suite {
    /// The suite `name` of the archive at `base_url` (a trailing slash is dropped).
    pub fn new(base_url: &str, name: &str) -> Suite {
        Suite {
            base_url: base_url.trim_end_matches('/').to_string(),
            name: name.to_string(),
        }
    }

    fn dists_url(&self, path: &str) -> String {
        format!("{}/dists/{}/{path}", self.base_url, self.name)
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.base_url, self.name)
    }
}

/// A suite whose `InRelease` verified.
#[derive(Debug, Clone)]
pub struct VerifiedSuite {
    /// The suite.
    pub suite: Suite,
    /// What its verified `Release` says.
    pub release: Release,
}

/// When a suite's verified `InRelease` may be used again instead of
/// fetched: the one policy the security feed and the patcher share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReleaseReuse {
    /// A stored `InRelease` younger than this is used (its `Valid-Until`
    /// checked again); `None` always fetches.
    pub max_age: Option<Duration>,
    /// Never fetch: the stored `InRelease` is used even past its
    /// `Valid-Until` (with a warning).
    pub offline: bool,
}

/// First words of the record kept beside a stored `InRelease`.
const VERIFIED_MAGIC: &str = "drydock-verified-release 1";

/// A client of APT archives that trusts one keyring and downloads through
/// one cache. Cloning is cheap and shares both.
#[derive(Clone)]
pub struct AptClient {
    http: SharedHttp,
    cache: Cache,
    keyring: Arc<Keyring>,
    /// Suites [`AptClient::release_reusing`] returned, with when their
    /// `InRelease` was fetched, so a process scanning many images reads each
    /// stored file once while it may be reused.
    reused: Arc<Mutex<HashMap<Suite, (SystemTime, VerifiedSuite)>>>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl AptClient {
    /// A client making its requests with `http` (which carries the user's
    /// TLS trust), keeping downloads in `cache`, trusting `keyring`.
    pub fn new(http: SharedHttp, cache: Cache, keyring: Keyring) -> AptClient {
        AptClient {
            http,
            cache,
            keyring: Arc::new(keyring),
            reused: Arc::default(),
        }
    }

    /// The shared HTTP client, built on the first request.
    fn http(&self) -> Result<reqwest::Client> {
        self.http.get().map_err(Error::HttpClient)
    }

    /// The download cache it fetches through.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Fetches and verifies a suite's `InRelease`.
    pub async fn release(&self, suite: &Suite) -> Result<VerifiedSuite> {
        let text = self.fetch_small(&suite.dists_url("InRelease")).await?;
        self.verify_release(suite, &text, now())
    }

    /// A suite's verified `InRelease`, reused as `reuse` says. Each one
    /// fetched is verified, then stored under the cache (`releases/`), keyed
    /// by suite, so another process (the next scan, an offline one) can
    /// reuse it, with a record of its verified text and of the keyring
    /// that verified it (`releases/<key>.verified`, checksummed): a reuse by
    /// a client with the same keyring reads the record instead of checking
    /// the signature again, as APT trusts its lists once `apt update`
    /// verified them; a client with another keyring (a key added or
    /// removed) verifies the stored file again with its own keys.
    pub async fn release_reusing(
        &self,
        suite: &Suite,
        reuse: ReleaseReuse,
    ) -> Result<VerifiedSuite> {
        let remembered = self
            .reused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(suite)
            .cloned();
        if let Some((fetched_at, verified)) = remembered {
            let young = reuse
                .max_age
                .is_some_and(|max_age| fetched_at.elapsed().is_ok_and(|age| age < max_age));
            let valid = verified.release.valid_until.is_none_or(|v| v >= now());
            if reuse.offline || (young && valid) {
                return Ok(verified);
            }
        }
        let stored = self.stored_release(suite);
        // When the stored file was fetched (its mtime: reusing it never rewrites it).
        let stored_at = std::fs::metadata(&stored).and_then(|m| m.modified()).ok();
        if reuse.offline {
            let verified = self.stored_verified(suite, &stored, 0)?;
            if let Some(valid_until) = verified.release.valid_until
                && valid_until < now()
            {
                tracing::warn!(
                    suite = %suite,
                    valid_until,
                    "offline: using the stored InRelease although its Valid-Until has passed; \
                     newer updates may be missing"
                );
            }
            return Ok(self.remember(stored_at.unwrap_or_else(SystemTime::now), verified));
        }
        let young = stored_at.filter(|fetched_at| {
            reuse
                .max_age
                .is_some_and(|max_age| fetched_at.elapsed().is_ok_and(|age| age < max_age))
        });
        if let Some(fetched_at) = young
            && let Ok(verified) = self.stored_verified(suite, &stored, now())
        {
            return Ok(self.remember(fetched_at, verified));
        }
        let signed = self.fetch_small(&suite.dists_url("InRelease")).await?;
        let text = self.verify_signature(suite, &signed)?;
        let verified = suite_from_release(suite, &text, now())?;
        let written =
            oci::atomic::write_atomic(&stored, signed.as_bytes(), oci::atomic::Durability::Synced);
        match written {
            Ok(()) => {
                let signed_sha256 = hex::encode(Sha256::digest(signed.as_bytes()));
                self.record_verified(&stored, &signed_sha256, &text);
            }
            Err(e) => tracing::warn!("cannot store the InRelease of {suite}: {e}"),
        }
        Ok(self.remember(SystemTime::now(), verified))
    }

    /// Remembers a suite whose `InRelease` was fetched at `fetched_at`.
    fn remember(&self, fetched_at: SystemTime, verified: VerifiedSuite) -> VerifiedSuite {
        self.reused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(verified.suite.clone(), (fetched_at, verified.clone()));
        verified
    }

    /// The stored `InRelease` of `suite`: the verified text its record holds
    /// when this keyring made the record, else the file verified again now
    /// (and the record rewritten for this keyring); `Valid-Until` checked
    /// against `now` (0: not).
    fn stored_verified(&self, suite: &Suite, stored: &Path, now: i64) -> Result<VerifiedSuite> {
        let signed = std::fs::read_to_string(stored).map_err(|_| Error::NotStored {
            suite: suite.to_string(),
            cache: self.cache.dir().to_path_buf(),
        })?;
        let signed_sha256 = hex::encode(Sha256::digest(signed.as_bytes()));
        let recorded = std::fs::read_to_string(verified_record_path(stored))
            .ok()
            .and_then(|record| {
                recorded_text(&record, &signed_sha256, &self.keyring.id()).map(str::to_string)
            });
        let text = match recorded {
            Some(text) => text,
            None => {
                let text = self.verify_signature(suite, &signed)?;
                self.record_verified(stored, &signed_sha256, &text);
                text
            }
        };
        suite_from_release(suite, &text, now)
    }

    /// Writes the record of a stored `InRelease` this keyring verified; a
    /// failure only costs a later verification, so it is logged, not returned.
    fn record_verified(&self, stored: &Path, signed_sha256: &str, text: &str) {
        let record = verified_record(signed_sha256, &self.keyring.id(), text);
        let path = verified_record_path(stored);
        if let Err(e) =
            oci::atomic::write_atomic(&path, record.as_bytes(), oci::atomic::Durability::Synced)
        {
            tracing::warn!(
                "cannot record the verified InRelease at {}: {e}",
                path.display()
            );
        }
    }

    /// Where a suite's last verified `InRelease` is kept.
    fn stored_release(&self, suite: &Suite) -> PathBuf {
        let key = sha2::Sha256::digest(format!("{} {}", suite.base_url, suite.name));
        self.cache.dir().join("releases").join(hex::encode(key))
    }

    /// A suite's `Release` **without** checking any signature, for a
    /// repository the user explicitly trusts (`[trusted=yes]`,
    /// `--allow-unsigned`): `InRelease` with its signature ignored, else
    /// `Release`. Indexes and packages are still checked against the
    /// checksums it lists; only the origin of those checksums is unproven.
    pub async fn release_without_signature(&self, suite: &Suite) -> Result<VerifiedSuite> {
        let text = match self.fetch_small(&suite.dists_url("InRelease")).await {
            Ok(text) => cleartext_body(&text),
            Err(Error::NotFound { .. }) => self.fetch_small(&suite.dists_url("Release")).await?,
            Err(e) => return Err(e),
        };
        suite_from_release(suite, &text, now())
    }

    /// GETs a small text file (`InRelease`, `Release`), bounded; transient
    /// failures are retried.
    async fn fetch_small(&self, url: &str) -> Result<String> {
        crate::error::retrying(|| self.fetch_small_once(url)).await
    }

    async fn fetch_small_once(&self, url: &str) -> Result<String> {
        let url = url.to_string();
        let response = self
            .http()?
            .get(&url)
            .send()
            .await
            .map_err(|source| Error::Http {
                url: url.clone(),
                source,
            })?;
        match response.status().as_u16() {
            200 => {}
            404 => return Err(Error::NotFound { url }),
            status => return Err(Error::Status { url, status }),
        }
        if response
            .content_length()
            .is_some_and(|l| l > MAX_INRELEASE_BYTES as u64)
        {
            return Err(Error::TooLarge {
                what: url,
                limit: MAX_INRELEASE_BYTES as u64,
            });
        }
        let bytes = response.bytes().await.map_err(|source| Error::Http {
            url: url.clone(),
            source,
        })?;
        if bytes.len() > MAX_INRELEASE_BYTES {
            return Err(Error::TooLarge {
                what: url,
                limit: MAX_INRELEASE_BYTES as u64,
            });
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Verifies and parses `InRelease` text as of `now` (seconds since the epoch).
    pub fn verify_release(
        &self,
        suite: &Suite,
        in_release: &str,
        now: i64,
    ) -> Result<VerifiedSuite> {
        let text = self.verify_signature(suite, in_release)?;
        suite_from_release(suite, &text, now)
    }

    fn verify_signature(&self, suite: &Suite, in_release: &str) -> Result<String> {
        Ok(self
            .keyring
            .verify_cleartext(in_release, &format!("InRelease of {suite}"))?)
    }

    /// Fetches an index such as `main/binary-amd64/Packages` (the best
    /// compression the suite lists), verifies it and returns it decompressed.
    pub async fn index(&self, verified: &VerifiedSuite, stem: &str) -> Result<Vec<u8>> {
        let files = &verified.release.files;
        let (path, file) = ["xz", "gz"]
            .iter()
            .map(|ext| format!("{stem}.{ext}"))
            .chain(std::iter::once(stem.to_string()))
            .find_map(|path| files.get(&path).map(|f| (path, f)))
            .ok_or_else(|| Error::NotListed {
                suite: verified.suite.to_string(),
                path: stem.to_string(),
            })?;
        let digest: Digest =
            format!("sha256:{}", file.sha256)
                .parse()
                .map_err(|_| Error::InvalidEntry {
                    suite: verified.suite.to_string(),
                    path: path.clone(),
                    reason: "its SHA256 is not 64 hex digits",
                })?;
        let mut urls = Vec::new();
        if verified.release.acquire_by_hash {
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            urls.push(
                verified
                    .suite
                    .dists_url(&format!("{dir}/by-hash/SHA256/{}", file.sha256)),
            );
        }
        urls.push(verified.suite.dists_url(&path));
        let cached = self
            .cache
            .fetch(&self.http()?, &urls, &digest, file.size)
            .await?;
        let what = format!("{} {path}", verified.suite);
        tokio::task::spawn_blocking(move || decompress_file(&cached, &what, MAX_INDEX_BYTES))
            .await
            .map_err(|e| Error::Decompress {
                what: stem.to_string(),
                source: std::io::Error::other(e),
            })?
    }

    /// Downloads a pool file (`Filename:` of an index entry), verified against its SHA256 and size.
    pub async fn download(
        &self,
        base_url: &str,
        filename: &str,
        sha256: &str,
        size: u64,
    ) -> Result<PathBuf> {
        let digest: Digest =
            format!("sha256:{sha256}")
                .parse()
                .map_err(|_| Error::InvalidEntry {
                    suite: base_url.to_string(),
                    path: filename.to_string(),
                    reason: "its SHA256 is not 64 hex digits",
                })?;
        if filename.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(Error::InvalidEntry {
                suite: base_url.to_string(),
                path: filename.to_string(),
                reason: "the path has an empty or `..` component",
            });
        }
        let url = format!("{}/{filename}", base_url.trim_end_matches('/'));
        self.cache.fetch(&self.http()?, &[url], &digest, size).await
    }
}

/// Parses a suite's `Release` text, refusing it past its `Valid-Until`.
fn suite_from_release(suite: &Suite, text: &str, now: i64) -> Result<VerifiedSuite> {
    let release = Release::parse(text, &suite.name)?;
    if let Some(valid_until) = release.valid_until
        && valid_until < now
    {
        return Err(Error::Expired {
            suite: suite.to_string(),
            valid_until,
        });
    }
    Ok(VerifiedSuite {
        suite: suite.clone(),
        release,
    })
}

fn verified_record_path(stored: &Path) -> PathBuf {
    let mut path = stored.as_os_str().to_owned();
    path.push(".verified");
    PathBuf::from(path)
}

/// The record of a verified `InRelease`: a header naming the signed file's
/// SHA256, the keyring's [`Keyring::id`] and the text's SHA256, then the text.
fn verified_record(signed_sha256: &str, keyring_id: &str, text: &str) -> String {
    let text_sha256 = hex::encode(Sha256::digest(text.as_bytes()));
    format!("{VERIFIED_MAGIC} {signed_sha256} {keyring_id} {text_sha256}\n{text}")
}

/// The verified text a record holds, when it is whole and was made for this
/// signed file by this keyring.
fn recorded_text<'a>(record: &'a str, signed_sha256: &str, keyring_id: &str) -> Option<&'a str> {
    let (header, text) = record.split_once('\n')?;
    let fields: Vec<&str> = header
        .strip_prefix(VERIFIED_MAGIC)?
        .split_whitespace()
        .collect();
    let [signed, keyring, text_sha256] = fields[..] else {
        return None;
    };
    (signed == signed_sha256
        && keyring == keyring_id
        && hex::encode(Sha256::digest(text.as_bytes())) == text_sha256)
        .then_some(text)
}

/// The text of a clear-signed message with its armour and signature
/// dropped (and dash-escaping undone); text that is not clear-signed is
/// returned as it is.
fn cleartext_body(text: &str) -> String {
    let Some(start) = text.find("-----BEGIN PGP SIGNED MESSAGE-----") else {
        return text.to_string();
    };
    let after_header = text[start..]
        .split_once("\n\n")
        .map_or("", |(_, body)| body);
    let body = after_header
        .split("\n-----BEGIN PGP SIGNATURE-----")
        .next()
        .unwrap_or("");
    body.lines()
        .map(|line| line.strip_prefix("- ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Decompresses an xz, gzip or plain file by its magic bytes, refusing output beyond `limit`.
pub fn decompress_file(path: &std::path::Path, what: &str, limit: u64) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(Error::io(path))?;
    decompress(std::io::BufReader::new(file), what, limit)
}

/// Decompresses xz, gzip or plain data by its magic bytes, refusing output beyond `limit`.
pub fn decompress(mut input: impl std::io::BufRead, what: &str, limit: u64) -> Result<Vec<u8>> {
    let decompress_error = |source| Error::Decompress {
        what: what.to_string(),
        source,
    };
    let magic = input.fill_buf().map_err(decompress_error)?.to_vec();
    let reader: Box<dyn Read> = if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(liblzma::read::XzDecoder::new(input))
    } else if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::GzDecoder::new(input))
    } else {
        Box::new(input)
    };
    let mut output = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut output)
        .map_err(decompress_error)?;
    if output.len() as u64 > limit {
        return Err(Error::TooLarge {
            what: what.to_string(),
            limit,
        });
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_the_text_of_clear_signed_files() {
        let signed = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: Debian\n- -dashed\nSuite: x\n-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n";
        assert_eq!(
            cleartext_body(signed),
            "Origin: Debian\n-dashed\nSuite: x\n"
        );
        assert_eq!(cleartext_body("Origin: x\n"), "Origin: x\n");
    }

    #[test]
    fn decompresses_by_magic_and_bounds_output() {
        let text = b"Package: a\n\n".repeat(1000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&text).unwrap();
        let xz = xz.finish().unwrap();
        for input in [&gz[..], &xz[..], &text[..]] {
            assert_eq!(decompress(input, "t", 1 << 20).unwrap(), text);
        }
        assert!(matches!(
            decompress(&gz[..], "bomb", 100),
            Err(Error::TooLarge { .. })
        ));
        assert!(matches!(
            decompress(&[0x1f, 0x8b, 1, 2, 3][..], "junk", 100),
            Err(Error::Decompress { .. })
        ));
    }
}
