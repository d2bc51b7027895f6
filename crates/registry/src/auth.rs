//! Optional HTTP basic authentication against an htpasswd file.
//!
//! Owns parsing htpasswd files (bcrypt entries only), verifying credentials
//! and deciding whether a request may proceed without them (anonymous pull).
//! Never stores or logs passwords: verified credentials are remembered only as
//! a sha256 of `user:password`, so bcrypt's deliberate slowness is paid once
//! per user rather than once per request. Depends on no other module of the
//! crate: it answers yes or no, the routes turn no into the spec's error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::http::{HeaderMap, Method, header};
use base64::Engine as _;
use oci::Digest;

/// Why an htpasswd file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HtpasswdError {
    /// The file cannot be read.
    #[error("cannot read htpasswd file {}", path.display())]
    Read {
        /// The htpasswd file.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: std::io::Error,
    },
    /// A user's hash is not bcrypt (htpasswd's default is MD5).
    #[error(
        "htpasswd line {line}: user {user:?} does not have a bcrypt hash; only bcrypt is supported, regenerate it with `htpasswd -B`"
    )]
    NotBcrypt {
        /// The line number, from 1.
        line: usize,
        /// The user it names.
        user: String,
    },
    /// A line is not `user:hash`.
    #[error("htpasswd line {line} is not of the form user:hash")]
    Malformed {
        /// The line number, from 1.
        line: usize,
    },
    /// The file names no user, so nobody could ever log in.
    #[error("htpasswd file has no users; add one with `htpasswd -B FILE USER`")]
    Empty,
}

/// `user → bcrypt hash`, as read from an htpasswd file.
#[derive(Debug)]
pub(crate) struct Htpasswd {
    users: HashMap<String, String>,
}

impl Htpasswd {
    /// Reads an htpasswd file's text; blank lines and `#` comments are skipped.
    pub(crate) fn parse(text: &str) -> Result<Htpasswd, HtpasswdError> {
        let mut users = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line
                .split_once(':')
                .filter(|(user, hash)| !user.is_empty() && !hash.is_empty())
                .ok_or(HtpasswdError::Malformed { line: index + 1 })?;
            if !["$2a$", "$2b$", "$2x$", "$2y$"]
                .iter()
                .any(|p| hash.starts_with(p))
            {
                return Err(HtpasswdError::NotBcrypt {
                    line: index + 1,
                    user: user.to_string(),
                });
            }
            users.insert(user.to_string(), hash.to_string());
        }
        if users.is_empty() {
            return Err(HtpasswdError::Empty);
        }
        Ok(Htpasswd { users })
    }

    /// Whether `password` is `user`'s. Unknown users are checked against
    /// another user's hash and rejected, so both cases take as long.
    fn verify(&self, user: &str, password: &str) -> bool {
        match self.users.get(user) {
            Some(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            None => {
                if let Some(hash) = self.users.values().next() {
                    let _ = bcrypt::verify(password, hash);
                }
                false
            }
        }
    }
}

/// Decides whether a request may proceed.
pub(crate) struct Authenticator {
    htpasswd: std::sync::Arc<Htpasswd>,
    anonymous_pull: bool,
    verified: Mutex<HashMap<String, Digest>>,
}

impl Authenticator {
    /// Reads the htpasswd file at `path`. Blocking.
    pub(crate) fn load(path: &Path, anonymous_pull: bool) -> Result<Authenticator, HtpasswdError> {
        let text = std::fs::read_to_string(path).map_err(|source| HtpasswdError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Authenticator {
            htpasswd: std::sync::Arc::new(Htpasswd::parse(&text)?),
            anonymous_pull,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// Whether the request may proceed: it carries valid credentials, or
    /// carries none and only reads while anonymous pull is on. Fails only
    /// when the blocking password check could not finish.
    pub(crate) async fn authorize(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<bool, tokio::task::JoinError> {
        let Some((user, password)) = basic_credentials(headers) else {
            let reads = method == Method::GET || method == Method::HEAD;
            return Ok(reads && self.anonymous_pull);
        };
        let fingerprint = Digest::sha256_of(format!("{user}:{password}").as_bytes());
        let known = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user)
            == Some(&fingerprint);
        if known {
            return Ok(true);
        }
        let htpasswd = self.htpasswd.clone();
        let checked_user = user.clone();
        let valid =
            tokio::task::spawn_blocking(move || htpasswd.verify(&checked_user, &password)).await?;
        if valid {
            self.verified
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(user, fingerprint);
        }
        Ok(valid)
    }
}

/// `(user, password)` from an `Authorization: Basic …` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bcrypt_entries_and_rejects_others() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let file = format!("# comment\n\nalice:{hash}\n");
        let htpasswd = Htpasswd::parse(&file).unwrap();
        assert!(htpasswd.verify("alice", "secret"));
        assert!(!htpasswd.verify("alice", "wrong"));
        assert!(!htpasswd.verify("bob", "secret"));

        assert!(matches!(
            Htpasswd::parse("bob:{SHA}abc\n"),
            Err(HtpasswdError::NotBcrypt { line: 1, .. })
        ));
        assert!(matches!(
            Htpasswd::parse("x\n"),
            Err(HtpasswdError::Malformed { line: 1 })
        ));
        assert!(matches!(
            Htpasswd::parse("# nobody\n"),
            Err(HtpasswdError::Empty)
        ));
    }

    #[test]
    fn reads_basic_credentials() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            "Basic YWxpY2U6czpwdw==".parse().unwrap(),
        );
        assert_eq!(
            basic_credentials(&headers),
            Some(("alice".into(), "s:pw".into()))
        );
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(basic_credentials(&headers), None);
        headers.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(basic_credentials(&headers), None);
    }
}
