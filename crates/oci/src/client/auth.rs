//! The registry auth handshake: reading `WWW-Authenticate` challenges,
//! fetching bearer tokens from the realm they name, and caching the
//! resulting `Authorization` header per registry and scope until it expires.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use super::credentials::Credentials;
use crate::error::{AuthError, Error, Result};

/// What a registry asked for in its 401 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header, preferring Bearer when both are offered.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let challenges = http_auth::parse_challenges(header).ok()?;
    let param = |c: &http_auth::ChallengeRef, name: &str| {
        c.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_unescaped())
    };
    let bearer = challenges
        .iter()
        .find(|c| c.scheme.eq_ignore_ascii_case("bearer"));
    if let Some(c) = bearer {
        return Some(Challenge::Bearer {
            realm: param(c, "realm")?,
            service: param(c, "service"),
            scope: param(c, "scope"),
        });
    }
    challenges
        .iter()
        .any(|c| c.scheme.eq_ignore_ascii_case("basic"))
        .then_some(Challenge::Basic)
}

pub(crate) fn basic_header(creds: &Credentials) -> String {
    let raw = format!("{}:{}", creds.username, creds.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// Tokens registries hand out live 60 s unless they say otherwise.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// Asks the challenge's realm for a token covering `scopes`.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    registry: &str,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    creds: Option<&Credentials>,
) -> Result<(String, Instant)> {
    let failed = |reason| Error::Auth {
        registry: registry.to_string(),
        reason,
    };
    let mut url = reqwest::Url::parse(realm).map_err(|source| {
        failed(AuthError::Realm {
            realm: realm.to_string(),
            source,
        })
    })?;
    {
        let mut query = url.query_pairs_mut();
        if let Some(service) = service {
            query.append_pair("service", service);
        }
        for scope in scopes {
            query.append_pair("scope", scope);
        }
    }
    let mut request = http.get(url.clone());
    if let Some(creds) = creds {
        request = request.header(http::header::AUTHORIZATION, basic_header(creds));
    }
    let response = request.send().await.map_err(|source| Error::Http {
        url: url.to_string(),
        source,
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(AuthError::TokenRefused {
            realm: realm.to_string(),
            status: status.as_u16(),
            with_credentials: creds.is_some(),
        }));
    }
    let answer: TokenAnswer = response.json().await.map_err(|source| Error::Http {
        url: url.to_string(),
        source,
    })?;
    let token = answer.token.or(answer.access_token).ok_or_else(|| {
        failed(AuthError::NoToken {
            realm: realm.to_string(),
        })
    })?;
    let lifetime = answer
        .expires_in
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TOKEN_LIFETIME)
        .saturating_sub(EXPIRY_MARGIN);
    Ok((format!("Bearer {token}"), Instant::now() + lifetime))
}

/// An `Authorization` header value and when it stops being valid (never, for basic auth).
type CachedHeader = (String, Option<Instant>);

/// `Authorization` headers that worked, by registry and scope set.
#[derive(Default)]
pub(crate) struct AuthCache {
    entries: Mutex<HashMap<(String, String), CachedHeader>>,
}

impl AuthCache {
    fn key(registry: &str, scopes: &[String]) -> (String, String) {
        (registry.to_string(), scopes.join(" "))
    }

    pub(crate) fn get(&self, registry: &str, scopes: &[String]) -> Option<String> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (header, expires) = entries.get(&Self::key(registry, scopes))?;
        match expires {
            Some(at) if *at <= Instant::now() => None,
            _ => Some(header.clone()),
        }
    }

    pub(crate) fn put(
        &self,
        registry: &str,
        scopes: &[String],
        header: String,
        expires: Option<Instant>,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert(Self::key(registry, scopes), (header, expires));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hub_bearer_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/nginx:pull".into()),
            })
        );
    }

    #[test]
    fn parses_basic_and_rejects_garbage() {
        assert_eq!(
            parse_challenge(r#"Basic realm="drydock""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge("Bearer service=\"x\""),
            None,
            "bearer without realm"
        );
        assert_eq!(parse_challenge("\u{0}"), None);
    }

    #[test]
    fn cache_respects_expiry() {
        let cache = AuthCache::default();
        let scopes = vec!["repository:a:pull".to_string()];
        cache.put(
            "r",
            &scopes,
            "Bearer x".into(),
            Some(Instant::now() - Duration::from_secs(1)),
        );
        assert_eq!(cache.get("r", &scopes), None);
        cache.put("r", &scopes, "Bearer y".into(), None);
        assert_eq!(cache.get("r", &scopes).as_deref(), Some("Bearer y"));
        assert_eq!(cache.get("r", &["other".to_string()]), None);
    }
}
