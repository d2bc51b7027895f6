//! Copying images between registries and OCI layouts.
//!
//! Owns the order of a copy: blobs first (skipped when present, mounted when
//! source and destination are repositories of the same registry, otherwise
//! streamed and verified), then child manifests, then the root manifest under
//! its tag, so a destination tag only ever points at complete content.
//! Manifest bytes are copied unchanged, so digests are preserved.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

use crate::client::{BlobStream, RegistryClient, UploadStart};
use crate::digest::Digest;
use crate::error::Result;
use crate::layout::OciLayout;
use crate::manifest::{ContentRef, ParsedManifest};
use crate::reference::ImageReference;

/// Blobs transferred at once.
const PARALLEL_BLOBS: usize = 4;

/// One side of a copy.
#[derive(Clone)]
pub enum Endpoint {
    /// An image in a registry.
    Registry {
        /// The client that reaches it.
        client: RegistryClient,
        /// The image: its tag or digest is what is read, or where it lands.
        image: ImageReference,
    },
    /// An image in an OCI image layout directory.
    Layout {
        /// The layout.
        layout: OciLayout,
        /// The tag read, or landed under (`latest` when none).
        tag: Option<String>,
    },
}

impl Endpoint {
    async fn root_manifest(&self) -> Result<(Bytes, String, Digest)> {
        match self {
            Endpoint::Registry { client, image } => {
                let fetched = client.get_manifest(image).await?;
                Ok((fetched.bytes, fetched.media_type, fetched.digest))
            }
            Endpoint::Layout { layout, tag } => {
                let content = layout.resolve(tag.as_deref()).await?;
                let bytes = layout.read_blob_bytes(&content).await?;
                Ok((bytes, content.media_type, content.digest))
            }
        }
    }

    async fn child_manifest(&self, content: &ContentRef) -> Result<Bytes> {
        match self {
            Endpoint::Registry { client, image } => Ok(client
                .get_manifest_by_digest(image, &content.digest)
                .await?
                .bytes),
            Endpoint::Layout { layout, .. } => layout.read_blob_bytes(content).await,
        }
    }

    async fn has_manifest(&self, digest: &Digest) -> Result<bool> {
        match self {
            Endpoint::Registry { client, image } => client.has_manifest(image, digest).await,
            Endpoint::Layout { layout, .. } => Ok(layout.has_blob(digest).await),
        }
    }

    async fn read_blob(&self, content: &ContentRef) -> Result<BlobStream> {
        match self {
            Endpoint::Registry { client, image } => client.get_blob(image, content).await,
            Endpoint::Layout { layout, .. } => layout.read_blob(content).await,
        }
    }

    /// Stores manifest bytes, under `tag` when given, else by digest only.
    async fn put_manifest(
        &self,
        bytes: Bytes,
        media_type: &str,
        digest: &Digest,
        tag: Option<&str>,
    ) -> Result<()> {
        match self {
            Endpoint::Registry { client, image } => {
                let reference = tag.map_or_else(|| digest.to_string(), str::to_string);
                client
                    .put_manifest(image, &reference, bytes, media_type)
                    .await
                    .map(|_| ())
            }
            Endpoint::Layout { layout, .. } => {
                let content = layout.write_blob_bytes(bytes, media_type).await?;
                match tag {
                    Some(tag) => layout.set_tag(Some(tag), &content).await,
                    None => Ok(()),
                }
            }
        }
    }

    /// The tag a copy should land under at this endpoint.
    fn destination_tag(&self) -> Option<String> {
        match self {
            Endpoint::Registry { image, .. } if image.digest().is_none() => {
                Some(image.manifest_reference())
            }
            Endpoint::Registry { .. } => None,
            Endpoint::Layout { tag, .. } => {
                Some(tag.clone().unwrap_or_else(|| "latest".to_string()))
            }
        }
    }

    /// The endpoint as a user names it: an image reference or `oci:DIR[:TAG]`.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Registry { image, .. } => image.to_string(),
            Endpoint::Layout { layout, tag } => match tag {
                Some(tag) => format!("oci:{}:{tag}", layout.root().display()),
                None => format!("oci:{}", layout.root().display()),
            },
        }
    }
}

/// How one blob reached the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobTransfer {
    /// Its bytes were streamed from the source.
    Copied,
    /// The destination registry linked it from the source repository.
    Mounted,
    /// The destination had it already.
    AlreadyPresent,
}

/// Observes a copy as it runs (progress bars live in the binary).
pub trait CopyProgress: Send + Sync {
    /// The copy will consider `count` blobs of `bytes` in all.
    fn blobs_planned(&self, _count: usize, _bytes: u64) {}
    /// `bytes` more of some blob reached the destination.
    fn bytes_transferred(&self, _bytes: u64) {}
    /// One blob is at the destination, and how it got there.
    fn blob_done(&self, _content: &ContentRef, _how: BlobTransfer) {}
}

/// A copy that reports nothing.
pub struct Silent;
impl CopyProgress for Silent {}

/// What one copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Digest of the root manifest or index, unchanged by the copy.
    pub digest: Option<Digest>,
    /// The root's media type.
    pub media_type: String,
    /// Manifests written at the destination (the root and an index's children).
    pub manifests: usize,
    /// Blobs streamed from the source.
    pub blobs_copied: usize,
    /// Blobs the destination registry mounted from the source repository.
    pub blobs_mounted: usize,
    /// Blobs the destination had already.
    pub blobs_present: usize,
    /// Bytes of the blobs streamed.
    pub bytes_copied: u64,
}

/// Copies the image `source` names (a single manifest or a whole index) to `destination`.
pub async fn copy_image(
    source: &Endpoint,
    destination: &Endpoint,
    progress: Arc<dyn CopyProgress>,
) -> Result<CopyReport> {
    let (bytes, media_type, digest) = source.root_manifest().await?;
    let root = ParsedManifest::parse(&bytes, Some(&media_type))?;
    let mut report = CopyReport {
        digest: Some(digest.clone()),
        media_type: root.media_type.clone(),
        ..CopyReport::default()
    };
    if !destination.has_manifest(&digest).await? {
        let mut images = Vec::new();
        if root.is_index() {
            for child in root.references()? {
                if destination.has_manifest(&child.digest).await? {
                    continue;
                }
                let child_bytes = source.child_manifest(&child).await?;
                let parsed = ParsedManifest::parse(&child_bytes, Some(&child.media_type))?;
                images.push((child, child_bytes, parsed));
            }
        }
        let blobs = unique_blobs(
            images
                .iter()
                .map(|(_, _, p)| p)
                .chain(std::iter::once(&root)),
        );
        progress.blobs_planned(blobs.len(), blobs.iter().map(|b| b.size).sum());
        let outcomes: Vec<(ContentRef, BlobTransfer)> = futures_util::stream::iter(blobs)
            .map(|blob| {
                let progress = progress.clone();
                async move {
                    let how = copy_blob(source, destination, &blob, progress.clone()).await?;
                    progress.blob_done(&blob, how);
                    Ok::<_, crate::error::Error>((blob, how))
                }
            })
            .buffer_unordered(PARALLEL_BLOBS)
            .try_collect()
            .await?;
        for (blob, how) in outcomes {
            match how {
                BlobTransfer::Copied => {
                    report.blobs_copied += 1;
                    report.bytes_copied += blob.size;
                }
                BlobTransfer::Mounted => report.blobs_mounted += 1,
                BlobTransfer::AlreadyPresent => report.blobs_present += 1,
            }
        }
        for (child, child_bytes, parsed) in images {
            destination
                .put_manifest(child_bytes, &parsed.media_type, &child.digest, None)
                .await?;
            report.manifests += 1;
        }
    }
    destination
        .put_manifest(
            bytes,
            &root.media_type,
            &digest,
            destination.destination_tag().as_deref(),
        )
        .await?;
    report.manifests += 1;
    Ok(report)
}

fn unique_blobs<'a>(manifests: impl Iterator<Item = &'a ParsedManifest>) -> Vec<ContentRef> {
    let mut seen = std::collections::HashSet::new();
    manifests
        .flat_map(ParsedManifest::required_blobs)
        .filter(|b| seen.insert(b.digest.clone()))
        .collect()
}

async fn copy_blob(
    source: &Endpoint,
    destination: &Endpoint,
    blob: &ContentRef,
    progress: Arc<dyn CopyProgress>,
) -> Result<BlobTransfer> {
    match destination {
        Endpoint::Layout { layout, .. } => {
            if layout.has_blob(&blob.digest).await {
                return Ok(BlobTransfer::AlreadyPresent);
            }
            let stream = counted(source.read_blob(blob).await?, progress);
            layout.write_blob(blob, stream).await?;
            Ok(BlobTransfer::Copied)
        }
        Endpoint::Registry { client, image } => {
            if client.has_blob(image, &blob.digest).await? {
                return Ok(BlobTransfer::AlreadyPresent);
            }
            let mount_from = match source {
                Endpoint::Registry { image: from, .. }
                    if from.registry() == image.registry()
                        && from.repository() != image.repository() =>
                {
                    Some((from.repository(), &blob.digest))
                }
                _ => None,
            };
            match client.start_upload(image, mount_from).await? {
                UploadStart::Mounted => Ok(BlobTransfer::Mounted),
                UploadStart::Session(session) => {
                    let stream = counted(source.read_blob(blob).await?, progress);
                    client.finish_upload(image, session, blob, stream).await?;
                    Ok(BlobTransfer::Copied)
                }
            }
        }
    }
}

fn counted(stream: BlobStream, progress: Arc<dyn CopyProgress>) -> BlobStream {
    Box::pin(stream.inspect(move |chunk| {
        if let Ok(chunk) = chunk {
            progress.bytes_transferred(chunk.len() as u64);
        }
    }))
}
