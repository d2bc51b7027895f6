//! Registry credentials from the places container tools keep them.
//!
//! Reads Docker's `config.json` (`$DOCKER_CONFIG` or `~/.docker`) and the
//! containers auth file Podman and skopeo use (`$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`):
//! inline `auths` entries, per-registry `credHelpers` and a default
//! `credsStore`, which run `docker-credential-<helper> get`. Never writes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::error::{CredentialsError, Error, Result};
use crate::reference::DOCKER_HUB;

/// A user name and a password (or token) for basic auth and token requests.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

impl Credentials {
    /// Parses `USER:PASSWORD` as given on a command line.
    pub fn parse(user_colon_password: &str) -> Option<Credentials> {
        let (username, password) = user_colon_password.split_once(':')?;
        Some(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// Where one auth file says the credentials for a registry are.
#[derive(Debug, PartialEq, Eq)]
enum Lookup {
    Inline(Credentials),
    Helper(String),
}

/// `https://index.docker.io/v1/` and `http://host:5000/x` both name a host.
fn normalize_key(key: &str) -> String {
    let without_scheme = key.split_once("://").map_or(key, |(_, rest)| rest);
    let host = without_scheme.split('/').next().unwrap_or(without_scheme);
    match host {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        other => other.to_string(),
    }
}

fn lookup(file: &AuthFile, registry: &str) -> Result<Option<Lookup>> {
    if let Some((_, helper)) = file
        .cred_helpers
        .iter()
        .find(|(k, _)| normalize_key(k) == registry)
    {
        return Ok(Some(Lookup::Helper(helper.clone())));
    }
    if let Some((_, entry)) = file
        .auths
        .iter()
        .find(|(k, _)| normalize_key(k) == registry)
    {
        if let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| Credentials::parse(&s))
                .ok_or_else(|| Error::Credentials {
                    registry: registry.to_string(),
                    reason: CredentialsError::BadAuthField,
                })?;
            return Ok(Some(Lookup::Inline(decoded)));
        }
        if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
            return Ok(Some(Lookup::Inline(Credentials {
                username: username.clone(),
                password: password.clone(),
            })));
        }
    }
    Ok(file.creds_store.clone().map(Lookup::Helper))
}

fn auth_file_paths() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut paths = Vec::new();
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => paths.push(PathBuf::from(dir).join("config.json")),
        None => paths.extend(home.as_ref().map(|h| h.join(".docker/config.json"))),
    }
    paths.extend(std::env::var_os("REGISTRY_AUTH_FILE").map(PathBuf::from));
    paths.extend(
        std::env::var_os("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join("containers/auth.json")),
    );
    paths.extend(home.map(|h| h.join(".config/containers/auth.json")));
    paths
}

/// Finds credentials for `registry` (as in an image reference, e.g.
/// `docker.io` or `localhost:5000`). `Ok(None)` means anonymous access.
pub async fn find(registry: &str) -> Result<Option<Credentials>> {
    for path in auth_file_paths() {
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&path)(e)),
        };
        let file: AuthFile = serde_json::from_str(&text).map_err(|source| Error::Credentials {
            registry: registry.to_string(),
            reason: CredentialsError::BadAuthFile {
                path: path.clone(),
                source,
            },
        })?;
        match lookup(&file, registry)? {
            Some(Lookup::Inline(creds)) => return Ok(Some(creds)),
            Some(Lookup::Helper(helper)) => return run_helper(&helper, registry).await,
            None => {}
        }
    }
    Ok(None)
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

async fn run_helper(helper: &str, registry: &str) -> Result<Option<Credentials>> {
    let program = format!("docker-credential-{helper}");
    helper_credentials(&program, registry)
        .await
        .map_err(|reason| Error::Credentials {
            registry: registry.to_string(),
            reason,
        })
}

/// Asks `program` for `registry`'s credentials; `None` when it has none.
async fn helper_credentials(
    program: &str,
    registry: &str,
) -> std::result::Result<Option<Credentials>, CredentialsError> {
    let io = |source| CredentialsError::HelperIo {
        program: program.to_string(),
        source,
    };
    let mut child = tokio::process::Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io)?;
    let server = if registry == DOCKER_HUB {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(server.as_bytes()).await.map_err(io)?;
    }
    let output = child.wait_with_output().await.map_err(io)?;
    if !output.status.success() {
        let stdout = String::from_utf8_lossy(&output.stdout);
        // Helpers answer "credentials not found in native keychain" for unknown hosts.
        if stdout.contains("not found") {
            return Ok(None);
        }
        return Err(CredentialsError::HelperFailed {
            program: program.to_string(),
            output: stdout.trim().to_string(),
        });
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout).map_err(|source| {
        CredentialsError::HelperAnswer {
            program: program.to_string(),
            source,
        }
    })?;
    if answer.username == "<token>" {
        return Err(CredentialsError::IdentityToken {
            program: program.to_string(),
        });
    }
    Ok(Some(Credentials {
        username: answer.username,
        password: answer.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: &str) -> AuthFile {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn inline_auths_by_normalized_host() {
        let f = file(
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYTpzcw=="},"localhost:5000":{"username":"a","password":"b"}}}"#,
        );
        assert_eq!(
            lookup(&f, "docker.io").unwrap(),
            Some(Lookup::Inline(Credentials {
                username: "user".into(),
                password: "pa:ss".into()
            }))
        );
        assert!(
            matches!(lookup(&f, "localhost:5000").unwrap(), Some(Lookup::Inline(c)) if c.username == "a")
        );
        assert_eq!(lookup(&f, "ghcr.io").unwrap(), None);
    }

    #[test]
    fn helpers_take_precedence_and_store_is_the_fallback() {
        let f = file(
            r#"{"auths":{"ghcr.io":{"auth":"dTpw"}},"credHelpers":{"ghcr.io":"gh"},"credsStore":"desktop"}"#,
        );
        assert_eq!(
            lookup(&f, "ghcr.io").unwrap(),
            Some(Lookup::Helper("gh".into()))
        );
        assert_eq!(
            lookup(&f, "quay.io").unwrap(),
            Some(Lookup::Helper("desktop".into()))
        );
    }

    #[test]
    fn malformed_auth_is_an_error() {
        let f = file(r#"{"auths":{"ghcr.io":{"auth":"!!!"}}}"#);
        assert!(matches!(
            lookup(&f, "ghcr.io"),
            Err(Error::Credentials { .. })
        ));
    }
}
