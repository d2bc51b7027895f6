//! Manifests and indexes, OCI and Docker v2 alike, as `oci-spec` types.
//!
//! Owns the media-type constants, telling an image manifest from an index,
//! and the list of content a manifest points at (what a registry must hold
//! before it accepts the manifest, and what a copy must transfer). Pure: it
//! reads bytes that were already verified against their digest.

use std::collections::HashMap;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use crate::digest::{Digest, DigestError};

/// The media types of manifests, configs and layers this crate reads or writes.
pub mod media_type {
    /// An OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// An OCI image index (a multi-platform image, or a referrers list).
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// An OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// A gzip-compressed OCI layer tar.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// The empty descriptor's `{}`, an artifact's config.
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    /// A Docker image manifest (schema 2).
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// A Docker manifest list, Docker's multi-platform image.
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// A Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker's retired schema 1 manifest, refused.
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    /// Docker's retired signed schema 1 manifest, refused.
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
    /// A Docker layer fetched from elsewhere (Windows base layers), never pushed.
    pub const DOCKER_FOREIGN_LAYER: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

    /// Every manifest media type we read, in the order we ask registries for them.
    pub const ACCEPTED: &[&str] = &[
        OCI_INDEX,
        OCI_MANIFEST,
        DOCKER_MANIFEST_LIST,
        DOCKER_MANIFEST,
    ];

    /// Whether `media_type` is an index (OCI) or manifest list (Docker).
    pub fn is_index(media_type: &str) -> bool {
        media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
    }

    /// Whether `media_type` is a manifest or index this crate reads.
    pub fn is_manifest(media_type: &str) -> bool {
        ACCEPTED.contains(&media_type)
    }
}

/// Why bytes are not a manifest this crate reads.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The bytes are not JSON.
    #[error("manifest is not valid JSON: {0}")]
    Json(serde_json::Error),
    /// The JSON does not fit the schema of its media type.
    #[error("manifest does not match the {media_type} schema: {cause}")]
    Schema {
        /// The media type whose schema it was read with.
        media_type: String,
        /// Where and why it does not fit.
        cause: serde_json::Error,
    },
    /// Neither an OCI nor a Docker v2 manifest or index (e.g. Docker schema 1).
    #[error(
        "manifest media type {0:?} is not supported (expected an OCI or Docker v2 manifest or index)"
    )]
    UnsupportedMediaType(String),
    /// The document's `mediaType` disagrees with the type it was sent as.
    #[error("manifest declares mediaType {declared:?} but was sent as {content_type:?}")]
    MediaTypeMismatch {
        /// The document's own `mediaType`.
        declared: String,
        /// The `Content-Type` it was sent with.
        content_type: String,
    },
    /// `schemaVersion` is not 2.
    #[error("manifest has schemaVersion {0}, expected 2")]
    SchemaVersion(u64),
    /// A descriptor's digest is malformed.
    #[error("manifest names an invalid digest")]
    Digest(#[from] DigestError),
    /// A manifest pushed as a referrer has no `subject`.
    #[error("a referrer must have a subject")]
    NoSubject,
}

/// A manifest whose kind is known.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    /// An image manifest (OCI or Docker v2): a config and layers.
    Image(Box<ImageManifest>),
    /// An index or manifest list: child manifests, usually one per platform.
    Index(Box<ImageIndex>),
}

/// A descriptor reduced to what storage and copying need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentRef {
    /// The content's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
}

impl ContentRef {
    fn from_descriptor(d: &Descriptor) -> Result<ContentRef, ManifestError> {
        Ok(ContentRef {
            digest: d.digest().as_ref().parse()?,
            size: d.size(),
            media_type: d.media_type().to_string(),
        })
    }
}

/// A parsed manifest with its media type resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedManifest {
    /// The media type, resolved from the document, the type it was sent as, or its shape.
    pub media_type: String,
    /// The document.
    pub manifest: Manifest,
}

impl ParsedManifest {
    /// Parses manifest bytes. `content_type` is the type the bytes were served
    /// or pushed with; the document's own `mediaType` wins when present, and a
    /// disagreement between the two is an error.
    pub fn parse(
        bytes: &[u8],
        content_type: Option<&str>,
    ) -> Result<ParsedManifest, ManifestError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
        let declared = value.get("mediaType").and_then(|v| v.as_str());
        let content_type = content_type
            .map(|c| c.split(';').next().unwrap_or(c).trim())
            .filter(|c| {
                !c.is_empty() && *c != "application/json" && *c != "application/octet-stream"
            });
        if let (Some(declared), Some(content_type)) = (declared, content_type)
            && declared != content_type
        {
            return Err(ManifestError::MediaTypeMismatch {
                declared: declared.to_string(),
                content_type: content_type.to_string(),
            });
        }
        let media_type = match declared.or(content_type) {
            Some(m) => m.to_string(),
            None if value.get("manifests").is_some() => media_type::OCI_INDEX.to_string(),
            None => media_type::OCI_MANIFEST.to_string(),
        };
        if !media_type::is_manifest(&media_type) {
            return Err(ManifestError::UnsupportedMediaType(media_type));
        }
        match value.get("schemaVersion").and_then(|v| v.as_u64()) {
            Some(2) => {}
            other => return Err(ManifestError::SchemaVersion(other.unwrap_or(0))),
        }
        let schema = |cause| ManifestError::Schema {
            media_type: media_type.clone(),
            cause,
        };
        let manifest = if media_type::is_index(&media_type) {
            Manifest::Index(serde_json::from_value(value).map_err(schema)?)
        } else {
            Manifest::Image(serde_json::from_value(value).map_err(schema)?)
        };
        let parsed = ParsedManifest {
            media_type,
            manifest,
        };
        // Validate every digest up front so later accessors cannot fail.
        parsed.references()?;
        parsed.subject()?;
        Ok(parsed)
    }

    /// Whether it is an index or manifest list.
    pub fn is_index(&self) -> bool {
        matches!(self.manifest, Manifest::Index(_))
    }

    /// Content this manifest points at, config first, in document order.
    /// For an index these are the child manifests.
    pub fn references(&self) -> Result<Vec<ContentRef>, ManifestError> {
        match &self.manifest {
            Manifest::Image(m) => std::iter::once(m.config())
                .chain(m.layers())
                .map(ContentRef::from_descriptor)
                .collect(),
            Manifest::Index(i) => i
                .manifests()
                .iter()
                .map(ContentRef::from_descriptor)
                .collect(),
        }
    }

    /// Blobs a registry must hold for this manifest: config and layers,
    /// except layers that are fetched from elsewhere (foreign / `urls`).
    pub fn required_blobs(&self) -> Vec<ContentRef> {
        let Manifest::Image(m) = &self.manifest else {
            return Vec::new();
        };
        std::iter::once(m.config())
            .chain(m.layers().iter().filter(|l| {
                l.urls().as_ref().is_none_or(|u| u.is_empty())
                    && l.media_type().as_ref() != media_type::DOCKER_FOREIGN_LAYER
            }))
            .filter_map(|d| ContentRef::from_descriptor(d).ok())
            .collect()
    }

    /// The manifest it refers to (`subject`), as referrers have.
    pub fn subject(&self) -> Result<Option<ContentRef>, ManifestError> {
        let subject = match &self.manifest {
            Manifest::Image(m) => m.subject().as_ref(),
            Manifest::Index(i) => i.subject().as_ref(),
        };
        subject.map(ContentRef::from_descriptor).transpose()
    }

    /// `artifactType`, falling back to the config media type as the
    /// referrers API prescribes.
    pub fn artifact_type(&self) -> Option<String> {
        match &self.manifest {
            Manifest::Image(m) => Some(
                m.artifact_type()
                    .as_ref()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| m.config().media_type().to_string()),
            ),
            Manifest::Index(i) => i.artifact_type().as_ref().map(|a| a.to_string()),
        }
    }

    /// Its top-level annotations.
    pub fn annotations(&self) -> Option<&HashMap<String, String>> {
        match &self.manifest {
            Manifest::Image(m) => m.annotations().as_ref(),
            Manifest::Index(i) => i.annotations().as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    const LAYER: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn image(media_type: Option<&str>) -> String {
        let mt = media_type
            .map(|m| format!("\"mediaType\":\"{m}\","))
            .unwrap_or_default();
        format!(
            r#"{{"schemaVersion":2,{mt}"config":{{"mediaType":"{}","digest":"{CONFIG}","size":2}},"layers":[{{"mediaType":"{}","digest":"{LAYER}","size":0}}]}}"#,
            media_type::OCI_CONFIG,
            media_type::OCI_LAYER_GZIP
        )
    }

    #[test]
    fn parses_image_and_lists_blobs() {
        let parsed =
            ParsedManifest::parse(image(Some(media_type::OCI_MANIFEST)).as_bytes(), None).unwrap();
        assert_eq!(parsed.media_type, media_type::OCI_MANIFEST);
        let blobs: Vec<String> = parsed
            .required_blobs()
            .iter()
            .map(|b| b.digest.to_string())
            .collect();
        assert_eq!(blobs, [CONFIG, LAYER]);
        assert_eq!(
            parsed.artifact_type().as_deref(),
            Some(media_type::OCI_CONFIG)
        );
    }

    #[test]
    fn media_type_from_content_type_or_shape() {
        let docker =
            ParsedManifest::parse(image(None).as_bytes(), Some(media_type::DOCKER_MANIFEST))
                .unwrap();
        assert_eq!(docker.media_type, media_type::DOCKER_MANIFEST);
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{LAYER}","size":1}}]}}"#,
            media_type::OCI_MANIFEST
        );
        assert!(
            ParsedManifest::parse(index.as_bytes(), None)
                .unwrap()
                .is_index()
        );
    }

    #[test]
    fn rejects_bad_manifests() {
        let body = image(Some(media_type::OCI_MANIFEST));
        assert!(matches!(
            ParsedManifest::parse(body.as_bytes(), Some(media_type::DOCKER_MANIFEST)),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        assert!(matches!(
            ParsedManifest::parse(b"{not json", None),
            Err(ManifestError::Json(_))
        ));
        assert!(matches!(
            ParsedManifest::parse(br#"{"schemaVersion":1}"#, Some(media_type::DOCKER_SCHEMA1)),
            Err(ManifestError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            ParsedManifest::parse(br#"{"schemaVersion":2,"config":{}}"#, None),
            Err(ManifestError::Schema { .. })
        ));
        let bad_digest = body.replace(LAYER, "sha256:1234");
        assert!(ParsedManifest::parse(bad_digest.as_bytes(), None).is_err());
    }
}
