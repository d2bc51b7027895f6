//! Manifests and what hangs off them: validation on put (parseable, digest
//! matches, everything referenced present), reads by tag or digest, deletes,
//! tag and repository listings, and referrers. A put is recorded atomically
//! with its tag and references, so a tag never points at anything missing.
//! Never stores a manifest it could not parse.

use axum::body::Body;
use futures_util::TryStreamExt;
use oci::{Digest, ParsedManifest, media_type};

use crate::Registry;
use crate::error::Error;
use crate::storage::{NewManifest, Referrer, StoredManifest, metadata};

/// How a manifest is addressed in a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

/// What a successful put reports back.
pub struct Pushed {
    pub digest: Digest,
    pub subject: Option<Digest>,
}

/// Reads at most `limit + 1` bytes of `body`, failing when there are more.
async fn read_limited(body: Body, limit: u64) -> Result<Vec<u8>, Error> {
    let mut stream = body.into_data_stream();
    let mut content = Vec::new();
    while let Some(chunk) = stream.try_next().await.map_err(|e| {
        Error::ManifestInvalid(format!("request body could not be read completely: {e}"))
    })? {
        if (content.len() + chunk.len()) as u64 > limit {
            return Err(Error::ManifestTooLarge { limit });
        }
        content.extend_from_slice(&chunk);
    }
    Ok(content)
}

pub async fn put(
    registry: &Registry,
    repo: &str,
    reference: Reference,
    content_type: Option<&str>,
    body: Body,
) -> Result<Pushed, Error> {
    let content = read_limited(body, registry.inner.config.max_manifest_bytes).await?;
    let parsed = ParsedManifest::parse(&content, content_type)
        .map_err(|e| Error::ManifestInvalid(e.to_string()))?;
    let (digest, tag) = match reference {
        Reference::Digest(expected) => {
            let actual = expected.same_algorithm_of(&content);
            if actual != expected {
                return Err(Error::DigestInvalid(format!(
                    "manifest content hashes to {actual}, not {expected} as the URL says"
                )));
            }
            (expected, None)
        }
        Reference::Tag(tag) => (Digest::sha256_of(&content), Some(tag)),
    };
    let subject = parsed
        .subject()
        .map_err(|e| Error::ManifestInvalid(e.to_string()))?
        .map(|s| s.digest);
    let (required_blobs, required_manifests) = if parsed.is_index() {
        let children = parsed
            .references()
            .map_err(|e| Error::ManifestInvalid(e.to_string()))?;
        (
            Vec::new(),
            children.into_iter().map(|c| c.digest.to_string()).collect(),
        )
    } else {
        let blobs = parsed
            .required_blobs()
            .into_iter()
            .map(|b| b.digest.to_string())
            .collect();
        (blobs, Vec::new())
    };
    let annotations = parsed
        .annotations()
        .filter(|a| !a.is_empty())
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| Error::ManifestInvalid(e.to_string()))?;
    let record = NewManifest {
        repo: repo.to_string(),
        digest: digest.to_string(),
        media_type: parsed.media_type.clone(),
        content,
        subject: subject.as_ref().map(Digest::to_string),
        artifact_type: parsed.artifact_type(),
        annotations,
        required_blobs,
        required_manifests,
        tag,
    };
    let _guard = registry.inner.lock.shared().await?;
    registry
        .inner
        .metadata
        .call(move |c| metadata::put_manifest(c, &record))
        .await?;
    Ok(Pushed { digest, subject })
}

pub async fn get(
    registry: &Registry,
    repo: &str,
    reference: &Reference,
) -> Result<StoredManifest, Error> {
    let (repo, reference) = (repo.to_string(), reference.clone());
    registry
        .inner
        .metadata
        .call(move |c| {
            let (digest, shown) = match &reference {
                Reference::Digest(d) => (Some(d.to_string()), d.to_string()),
                Reference::Tag(t) => (metadata::resolve_tag(c, &repo, t)?, t.clone()),
            };
            let manifest = match digest {
                Some(digest) => metadata::get_manifest(c, &repo, &digest)?,
                None => None,
            };
            manifest.ok_or(Error::ManifestUnknown(shown))
        })
        .await
}

/// Deletes a manifest (by digest, with its tags) or only a tag.
pub async fn delete(registry: &Registry, repo: &str, reference: &Reference) -> Result<(), Error> {
    let (repo, reference) = (repo.to_string(), reference.clone());
    registry
        .inner
        .metadata
        .call(move |c| {
            let (deleted, shown) = match &reference {
                Reference::Digest(d) => (
                    metadata::delete_manifest(c, &repo, &d.to_string())?,
                    d.to_string(),
                ),
                Reference::Tag(t) => (metadata::delete_tag(c, &repo, t)?, t.clone()),
            };
            if deleted {
                Ok(())
            } else {
                Err(Error::ManifestUnknown(shown))
            }
        })
        .await
}

/// Up to `limit` tags after `last`; `NAME_UNKNOWN` when the repository holds nothing.
pub async fn tags(
    registry: &Registry,
    repo: &str,
    last: &str,
    limit: u64,
) -> Result<Vec<String>, Error> {
    let (repo, last) = (repo.to_string(), last.to_string());
    registry
        .inner
        .metadata
        .call(move |c| {
            if !metadata::repository_exists(c, &repo)? {
                return Err(Error::NameUnknown(repo));
            }
            metadata::list_tags(c, &repo, &last, limit)
        })
        .await
}

/// Up to `limit` repository names after `last`.
pub async fn repositories(
    registry: &Registry,
    last: &str,
    limit: u64,
) -> Result<Vec<String>, Error> {
    let last = last.to_string();
    registry
        .inner
        .metadata
        .call(move |c| metadata::list_repositories(c, &last, limit))
        .await
}

/// The referrers of `subject` in `repo` as an OCI image index document.
pub async fn referrers(
    registry: &Registry,
    repo: &str,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> Result<Vec<u8>, Error> {
    let (repo, subject, artifact_type) = (
        repo.to_string(),
        subject.to_string(),
        artifact_type.map(str::to_string),
    );
    let found = registry
        .inner
        .metadata
        .call(move |c| metadata::referrers(c, &repo, &subject, artifact_type.as_deref()))
        .await?;
    let manifests: Vec<serde_json::Value> = found.into_iter().map(descriptor).collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_INDEX,
        "manifests": manifests,
    });
    Ok(serde_json::to_vec(&index).expect("a JSON value always serialises"))
}

fn descriptor(referrer: Referrer) -> serde_json::Value {
    let mut descriptor = serde_json::json!({
        "mediaType": referrer.media_type,
        "digest": referrer.digest,
        "size": referrer.size,
    });
    if let Some(artifact_type) = referrer.artifact_type {
        descriptor["artifactType"] = artifact_type.into();
    }
    if let Some(annotations) = referrer
        .annotations
        .and_then(|a| serde_json::from_str::<serde_json::Value>(&a).ok())
    {
        descriptor["annotations"] = annotations;
    }
    descriptor
}
