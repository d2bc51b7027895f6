//! Image references: where an image lives and how the user named it.
//!
//! Owns the grammar of `registry/repo:tag@digest` (with Docker Hub's
//! defaults: `nginx` is `docker.io/library/nginx:latest`), of repository
//! names and tags as the distribution spec restricts them, and of
//! `oci:DIR[:TAG]` image-layout locations. Pure parsing, no I/O.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// Docker Hub as image references name it.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that actually serves Docker Hub's registry API.
pub(crate) const DOCKER_HUB_API: &str = "registry-1.docker.io";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// Why a text is not an image reference or location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Nothing was given.
    #[error("image reference is empty")]
    Empty,
    /// The repository name breaks the distribution spec's grammar.
    #[error(
        "invalid repository name {0:?}: use lowercase path components of letters, digits and single separators (. _ __ -), joined by '/'"
    )]
    InvalidRepository(String),
    /// The tag breaks the distribution spec's grammar.
    #[error(
        "invalid tag {0:?}: up to 128 characters of letters, digits, '_', '.', '-', not starting with '.' or '-'"
    )]
    InvalidTag(String),
    /// The registry part is not `host[:port]`.
    #[error("invalid registry host {0:?}")]
    InvalidRegistry(String),
    /// The `@digest` part is not a digest.
    #[error(transparent)]
    InvalidDigest(#[from] DigestError),
    /// An `oci:` location names no directory.
    #[error("OCI layout reference {0:?} has no directory (expected oci:DIR[:TAG])")]
    EmptyLayoutPath(String),
}

/// Whether `name` is a valid repository name per the distribution spec:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub fn is_valid_repository_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && name.split('/').all(is_valid_path_component)
}

fn is_valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Separators: a single '.', a single '_', exactly "__", or any run of '-'.
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Whether `tag` matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    match bytes.first() {
        Some(b) if b.is_ascii_alphanumeric() || *b == b'_' => {}
        _ => return false,
    }
    bytes.len() <= MAX_TAG_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn is_valid_registry_host(host: &str) -> bool {
    // host[:port], where host is a DNS name, IPv4 or a bracketed IPv6 address.
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, tail)) => (v6, tail.strip_prefix(':')),
            None => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    port_ok && name_ok
}

/// `registry/repository[:tag][@digest]` after Docker's defaults were applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageReference {
    /// A reference from its parts, each checked against the spec's grammar.
    pub fn new(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Result<ImageReference, ReferenceError> {
        if !is_valid_registry_host(registry) {
            return Err(ReferenceError::InvalidRegistry(registry.to_string()));
        }
        if !is_valid_repository_name(repository) {
            return Err(ReferenceError::InvalidRepository(repository.to_string()));
        }
        if let Some(tag) = tag
            && !is_valid_tag(tag)
        {
            return Err(ReferenceError::InvalidTag(tag.to_string()));
        }
        Ok(ImageReference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The registry as the user names it (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host to send API requests to (Docker Hub's API lives elsewhere).
    pub(crate) fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The repository, e.g. `library/nginx`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, when it has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest it is pinned to, when it is.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to put after `/manifests/`: the digest when pinned, else the tag,
    /// else `latest`.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<ImageReference, ReferenceError> {
        ImageReference::new(&self.registry, &self.repository, Some(tag), None)
    }

    /// The same repository pinned to a digest (the tag is kept for display).
    pub fn with_digest(&self, digest: Digest) -> ImageReference {
        ImageReference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// Whether the registry is on this machine, where plain HTTP is the default.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.registry)
    }
}

/// `localhost`, `127.x.x.x` and `[::1]`, with or without a port.
pub fn is_loopback_host(registry: &str) -> bool {
    let host = if registry.starts_with('[') {
        registry
            .split(']')
            .next()
            .unwrap_or("")
            .trim_start_matches('[')
    } else {
        registry.split(':').next().unwrap_or("")
    };
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

impl FromStr for ImageReference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (rest, Some(d.parse::<Digest>()?)),
            None => (s, None),
        };
        // The tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.starts_with('[') =>
            {
                (first, remainder.to_string())
            }
            _ => (DOCKER_HUB, name.to_string()),
        };
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB
        } else {
            registry
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t),
            (None, Some(_)) => None,
            (None, None) => Some("latest"),
        };
        ImageReference::new(registry, &repository, tag, digest)
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Where an image is read from or written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageLocation {
    /// An image in a registry.
    Registry(ImageReference),
    /// An OCI image layout directory; the tag is the `org.opencontainers.image.ref.name` annotation.
    Layout {
        /// The layout's directory.
        path: PathBuf,
        /// The tag, when one was named.
        tag: Option<String>,
    },
}

impl FromStr for ImageLocation {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some(rest) = s.strip_prefix("oci:") else {
            return Ok(ImageLocation::Registry(s.parse()?));
        };
        let (path, tag) = match rest.rsplit_once(':') {
            Some((path, tag)) if !tag.contains('/') => (path, Some(tag)),
            _ => (rest, None),
        };
        if path.is_empty() {
            return Err(ReferenceError::EmptyLayoutPath(s.to_string()));
        }
        if let Some(tag) = tag
            && !is_valid_tag(tag)
        {
            return Err(ReferenceError::InvalidTag(tag.to_string()));
        }
        Ok(ImageLocation::Layout {
            path: PathBuf::from(path),
            tag: tag.map(str::to_string),
        })
    }
}

impl fmt::Display for ImageLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageLocation::Registry(r) => r.fmt(f),
            ImageLocation::Layout { path, tag } => {
                write!(f, "oci:{}", path.display())?;
                if let Some(tag) = tag {
                    write!(f, ":{tag}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ImageReference {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn docker_hub_defaults() {
        let r = parse("nginx");
        assert_eq!(r.to_string(), "docker.io/library/nginx:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(
            parse("bitnami/nginx:1.25").to_string(),
            "docker.io/bitnami/nginx:1.25"
        );
        assert_eq!(parse("index.docker.io/nginx").registry(), "docker.io");
    }

    #[test]
    fn full_references() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = parse(&format!("host.example:5000/a/b/c:v1.2@{d}"));
        assert_eq!(r.registry(), "host.example:5000");
        assert_eq!(r.repository(), "a/b/c");
        assert_eq!(r.tag(), Some("v1.2"));
        assert_eq!(r.manifest_reference(), d);
        let pinned = parse(&format!("localhost:5000/app@{d}"));
        assert_eq!(pinned.tag(), None);
        assert!(pinned.is_loopback());
        assert_eq!(parse("localhost/app").registry(), "localhost");
        assert_eq!(parse("127.0.0.1:5000/app:x").registry(), "127.0.0.1:5000");
        assert!(parse("[::1]:5000/app").is_loopback());
        assert!(!parse("ghcr.io/app").is_loopback());
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "",
            "Nginx",
            "a//b",
            "a/../b",
            "a/-b",
            "a..b",
            "a___b",
            "x:UPPER!",
            "host:5000/",
            "a/b:",
        ] {
            assert!(bad.parse::<ImageReference>().is_err(), "{bad} accepted");
        }
        assert!(is_valid_repository_name("a/b-c/d__e.f---g"));
        assert!(!is_valid_repository_name(".."));
        assert!(!is_valid_repository_name("a/.."));
        assert!(!is_valid_repository_name(&"a".repeat(256)));
        assert!(is_valid_tag("1.25-patched"));
        assert!(!is_valid_tag(".hidden"));
        assert!(!is_valid_tag(&"a".repeat(129)));
    }

    #[test]
    fn layout_locations() {
        assert_eq!(
            "oci:/tmp/img:1.0".parse::<ImageLocation>().unwrap(),
            ImageLocation::Layout {
                path: "/tmp/img".into(),
                tag: Some("1.0".into())
            }
        );
        assert_eq!(
            "oci:./dir".parse::<ImageLocation>().unwrap(),
            ImageLocation::Layout {
                path: "./dir".into(),
                tag: None
            }
        );
        assert!("oci:".parse::<ImageLocation>().is_err());
        assert!(matches!(
            "nginx".parse::<ImageLocation>().unwrap(),
            ImageLocation::Registry(_)
        ));
    }
}
