//! Manifests and what hangs off them: validation on put (parseable, digest
//! matches, everything referenced present), reads by tag or digest, deletes,
//! tag and repository listings, and referrers. A put is recorded atomically
//! with its tag and references, so a tag never points at anything missing.
//! Never stores a manifest it could not parse.

use axum::body::Body;
use futures_util::TryStreamExt;
use oci::{Digest, ParsedManifest, media_type};

use crate::error::{RequestError, chain};
use crate::storage::{
    DataLock, Metadata, NewManifest, PutManifest, Referrer, StoredManifest, metadata,
};

/// How a manifest is addressed in a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// By tag, e.g. `latest`.
    Tag(String),
    /// By digest.
    Digest(Digest),
}

/// What a successful put reports back.
pub struct Pushed {
    /// The digest the manifest is stored under.
    pub digest: Digest,
    /// Its subject, which the response acknowledges (`OCI-Subject`).
    pub subject: Option<Digest>,
}

/// Reads at most `limit + 1` bytes of `body`, failing when there are more.
async fn read_limited(body: Body, limit: u64) -> Result<Vec<u8>, RequestError> {
    let mut stream = body.into_data_stream();
    let mut content = Vec::new();
    while let Some(chunk) = stream.try_next().await.map_err(|e| {
        RequestError::ManifestInvalid(format!("request body could not be read completely: {e}"))
    })? {
        if (content.len() + chunk.len()) as u64 > limit {
            return Err(RequestError::ManifestTooLarge { limit });
        }
        content.extend_from_slice(&chunk);
    }
    Ok(content)
}

/// Manifests, tags, the catalog and referrers over one metadata store.
pub struct ManifestService {
    metadata: Metadata,
    lock: DataLock,
    max_manifest_bytes: u64,
}

impl ManifestService {
    /// The service over these storage handles, accepting manifests up to
    /// `max_manifest_bytes`.
    pub fn new(metadata: Metadata, lock: DataLock, max_manifest_bytes: u64) -> ManifestService {
        ManifestService {
            metadata,
            lock,
            max_manifest_bytes,
        }
    }

    /// Validates and stores a manifest pushed to `repo` under `reference`:
    /// parseable, hashing to the digest the URL names, everything it
    /// references already in the repository.
    pub async fn put(
        &self,
        repo: &str,
        reference: Reference,
        content_type: Option<&str>,
        body: Body,
    ) -> Result<Pushed, RequestError> {
        let content = read_limited(body, self.max_manifest_bytes).await?;
        let parsed = ParsedManifest::parse(&content, content_type)
            .map_err(|e| RequestError::ManifestInvalid(chain(&e)))?;
        let (digest, tag) = match reference {
            Reference::Digest(expected) => {
                let actual = expected.same_algorithm_of(&content);
                if actual != expected {
                    return Err(RequestError::DigestInvalid(format!(
                        "manifest content hashes to {actual}, not {expected} as the URL says"
                    )));
                }
                (expected, None)
            }
            Reference::Tag(tag) => (Digest::sha256_of(&content), Some(tag)),
        };
        let subject = parsed
            .subject()
            .map_err(|e| RequestError::ManifestInvalid(chain(&e)))?
            .map(|s| s.digest);
        let (required_blobs, required_manifests) = if parsed.is_index() {
            let children = parsed
                .references()
                .map_err(|e| RequestError::ManifestInvalid(chain(&e)))?;
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
            .map_err(|e| RequestError::ManifestInvalid(chain(&e)))?;
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
        let _guard = self.lock.shared().await?;
        let outcome = self
            .metadata
            .call(move |c| metadata::put_manifest(c, &record))
            .await?;
        match outcome {
            PutManifest::Stored => Ok(Pushed { digest, subject }),
            PutManifest::Missing(missing) => Err(RequestError::ManifestBlobUnknown(missing)),
        }
    }

    /// The manifest `reference` names in `repo`.
    pub async fn get(
        &self,
        repo: &str,
        reference: &Reference,
    ) -> Result<StoredManifest, RequestError> {
        let (repo, reference) = (repo.to_string(), reference.clone());
        self.metadata
            .call(move |c| {
                let (digest, shown) = match &reference {
                    Reference::Digest(d) => (Some(d.to_string()), d.to_string()),
                    Reference::Tag(t) => (metadata::resolve_tag(c, &repo, t)?, t.clone()),
                };
                let manifest = match digest {
                    Some(digest) => metadata::get_manifest(c, &repo, &digest)?,
                    None => None,
                };
                manifest.ok_or(RequestError::ManifestUnknown(shown))
            })
            .await
    }

    /// Deletes a manifest (by digest, with its tags) or only a tag.
    pub async fn delete(&self, repo: &str, reference: &Reference) -> Result<(), RequestError> {
        let (repo, reference) = (repo.to_string(), reference.clone());
        self.metadata
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
                    Err(RequestError::ManifestUnknown(shown))
                }
            })
            .await
    }

    /// Up to `limit` tags after `last`; `NAME_UNKNOWN` when the repository holds nothing.
    pub async fn tags(
        &self,
        repo: &str,
        last: &str,
        limit: u64,
    ) -> Result<Vec<String>, RequestError> {
        let (repo, last) = (repo.to_string(), last.to_string());
        self.metadata
            .call(move |c| {
                if !metadata::repository_exists(c, &repo)? {
                    return Err(RequestError::NameUnknown(repo));
                }
                Ok(metadata::list_tags(c, &repo, &last, limit)?)
            })
            .await
    }

    /// Up to `limit` repository names after `last`.
    pub async fn repositories(&self, last: &str, limit: u64) -> Result<Vec<String>, RequestError> {
        let last = last.to_string();
        self.metadata
            .call(move |c| Ok(metadata::list_repositories(c, &last, limit)?))
            .await
    }

    /// The referrers of `subject` in `repo` as an OCI image index document.
    pub async fn referrers(
        &self,
        repo: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<u8>, RequestError> {
        let (repo, subject, artifact_type) = (
            repo.to_string(),
            subject.to_string(),
            artifact_type.map(str::to_string),
        );
        let found = self
            .metadata
            .call(move |c| {
                metadata::referrers(c, &repo, &subject, artifact_type.as_deref())
                    .map_err(RequestError::from)
            })
            .await?;
        let manifests: Vec<serde_json::Value> = found.into_iter().map(descriptor).collect();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_INDEX,
            "manifests": manifests,
        });
        Ok(serde_json::to_vec(&index).expect("a JSON value always serialises"))
    }
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
