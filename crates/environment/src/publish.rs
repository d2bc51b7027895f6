//! Getting an image to patch and putting the patched one where it belongs.
//!
//! Owns the edges around [`patch::patcher::Patcher`] that the one publish
//! sequence ([`crate::Environment::patch_and_publish`]) runs: copying the image
//! into a working layout (only the blobs it lacks; the user's registry or
//! layout never sees an intermediate tag), following a patched image back to
//! its original, writing the result (new blobs first, the tag last, the
//! original tag never), and attaching the evidence (OpenVEX and the
//! post-patch scan) as referrers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use oci::copy::{CopyReport, Endpoint, Silent};
use oci::manifest::{ContentRef, media_type};
use oci::{ClientOptions, Digest, ImageLocation, OciLayout, RegistryClient};
use serde_json::{Value, json};

use oci::digest::DigestError;
use patch::image::{ANNOTATION_BASE_NAME, ANNOTATION_ORIGINAL};
use patch::patcher::Outcome;

/// Why an image could not be read for patching, or its patch not written.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The name is not a registry reference, `oci:DIR[:TAG]` or an archive.
    #[error("{image:?} is not an image reference")]
    Reference {
        /// The name as given.
        image: String,
        /// What is wrong with it.
        #[source]
        source: oci::reference::ReferenceError,
    },
    /// Copying an image from or to a registry, layout or archive failed.
    #[error("copying {image}")]
    Copy {
        /// The image copied (`registry/repository/reference`, `oci:…`, a file).
        image: String,
        /// The registry's, the layout's or the archive's error.
        #[source]
        source: oci::Error,
    },
    /// The image's manifest does not parse.
    #[error("the manifest of {image} is not JSON")]
    Manifest {
        /// The image.
        image: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A patched image names its original with a malformed digest.
    #[error("{image}: the annotation {ANNOTATION_ORIGINAL} is not a digest")]
    OriginalAnnotation {
        /// The patched image.
        image: String,
        /// What is wrong with the digest.
        #[source]
        source: DigestError,
    },
    /// A patched image in a layout whose original is not tagged there: a
    /// patch is always rebuilt from its original.
    #[error("{image} is a patched image; its original {digest} must be tagged in {} to patch again", layout.display())]
    OriginalMissing {
        /// The patched image.
        image: String,
        /// The original's manifest digest.
        digest: Digest,
        /// The layout searched.
        layout: PathBuf,
    },
    /// The image came from a `docker save` archive, which is never rewritten.
    #[error("{} is a docker save archive, which drydock does not rewrite; the patched image needs an OCI layout to go to", archive.display())]
    ArchiveNotRewritten {
        /// The archive.
        archive: PathBuf,
    },
    /// The patched tag is the original's own.
    #[error("refusing to overwrite the original tag {tag:?}; choose another tag")]
    OriginalTag {
        /// The tag.
        tag: String,
    },
    /// Reading or writing the working layout or the destination failed.
    #[error(transparent)]
    Oci(#[from] oci::Error),
    /// The scan of the patched image (its evidence) failed.
    #[error("scanning the patched image")]
    Scan(#[from] scan::ScanError),
}

/// The artifact type of the OpenVEX document attached to a patched image.
pub const VEX_TYPE: &str = "application/vnd.openvex+json";
/// The artifact type of the post-patch scan attached to each patched platform.
pub const REPORT_TYPE: &str = "application/vnd.drydock.scan.report.v1+json";

/// The image to patch, copied into the working layout.
pub struct Source {
    /// The working layout holding the image (and, later, its patch).
    pub work: OciLayout,
    /// What to patch in `work` (the original, for an already patched image).
    pub content: ContentRef,
    /// Where the image came from.
    pub endpoint: Endpoint,
    /// Its tag, if it has one.
    pub tag: Option<String>,
    /// How the original is named in the patched image's annotations.
    pub base_name: String,
    /// The `docker save` archive the image was read from: nothing is
    /// written back into an archive, the patch needs an output.
    pub archive: Option<PathBuf>,
}

/// Where the patched image goes.
pub enum Output {
    /// Beside the original: same registry repository or layout, this tag.
    Beside(String),
    /// Another OCI layout.
    Layout {
        /// The layout's directory (created when absent).
        path: std::path::PathBuf,
        /// The tag the patched image gets there.
        tag: String,
    },
}

/// The patched image as written.
pub struct Written {
    /// `registry/repo:tag` or `oci:DIR:TAG`.
    pub name: String,
    /// Where it was written.
    pub destination: Endpoint,
    /// What the copy sent and found already there.
    pub copy: CopyReport,
    /// The destination already held exactly this image under the tag.
    pub unchanged: bool,
}

fn copy_error(image: String) -> impl FnOnce(oci::Error) -> PublishError {
    move |source| PublishError::Copy { image, source }
}

async fn copy_into(source: &Endpoint, work: &OciLayout, tag: &str) -> Result<(), PublishError> {
    let destination = Endpoint::Layout {
        layout: work.clone(),
        tag: Some(tag.to_string()),
    };
    oci::copy::copy_image(source, &destination, Arc::new(Silent))
        .await
        .map_err(copy_error(source.describe()))?;
    Ok(())
}

/// Copies `image` (a registry reference, `oci:DIR[:TAG]`, or a `docker save`
/// archive as `docker-archive:FILE` or a file path) into the working layout
/// under `cache_dir/images` and, when it is a drydock patch, finds its original.
pub async fn open(
    image: &str,
    registry: ClientOptions,
    cache_dir: &Path,
) -> Result<Source, PublishError> {
    let archive = image
        .strip_prefix("docker-archive:")
        .map(PathBuf::from)
        .or_else(|| Path::new(image).is_file().then(|| PathBuf::from(image)));
    if let Some(archive) = archive {
        let work = OciLayout::create(cache_dir.join("images")).await?;
        let key =
            oci::docker_archive::archive_key(&archive).map_err(copy_error(image.to_string()))?;
        let local = format!("archive-{}", &key.hex()[..32]);
        let content = oci::docker_archive::import(&archive, &work, &local)
            .await
            .map_err(copy_error(image.to_string()))?;
        let mut source = Source {
            endpoint: Endpoint::Layout {
                layout: work.clone(),
                tag: Some(local),
            },
            work,
            content,
            tag: None,
            base_name: image.to_string(),
            archive: Some(archive),
        };
        follow_to_original(&mut source).await?;
        return Ok(source);
    }
    let location: ImageLocation = image.parse().map_err(|source| PublishError::Reference {
        image: image.to_string(),
        source,
    })?;
    let work = OciLayout::create(cache_dir.join("images")).await?;
    let (endpoint, tag, label) = match location {
        ImageLocation::Layout { path, tag } => {
            let layout = OciLayout::open(&path).await?;
            let label = format!("{}/{}", path.display(), tag.as_deref().unwrap_or(""));
            (
                Endpoint::Layout {
                    layout,
                    tag: tag.clone(),
                },
                tag,
                label,
            )
        }
        ImageLocation::Registry(reference) => {
            let client = RegistryClient::new(registry)?;
            let label = format!(
                "{}/{}/{}",
                reference.registry(),
                reference.repository(),
                reference.manifest_reference()
            );
            let tag = reference.tag().map(str::to_string);
            (
                Endpoint::Registry {
                    client,
                    image: reference,
                },
                tag,
                label,
            )
        }
    };
    let local = oci::layout::tag_naming(&label);
    copy_into(&endpoint, &work, &local).await?;
    let content = work.resolve(Some(&local)).await?;
    let mut source = Source {
        work,
        content,
        endpoint,
        tag,
        base_name: image.to_string(),
        archive: None,
    };
    follow_to_original(&mut source).await?;
    Ok(source)
}

/// Re-patching starts from the original: follows the annotation a patch leaves.
async fn follow_to_original(source: &mut Source) -> Result<(), PublishError> {
    let bytes = source.work.read_blob_bytes(&source.content).await?;
    let manifest: Value =
        serde_json::from_slice(&bytes).map_err(|error| PublishError::Manifest {
            image: source.base_name.clone(),
            source: error,
        })?;
    let annotation = |name: &str| {
        manifest
            .get("annotations")
            .and_then(|a| a.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let Some(original) = annotation(ANNOTATION_ORIGINAL) else {
        return Ok(());
    };
    let digest: Digest = original
        .parse()
        .map_err(|error| PublishError::OriginalAnnotation {
            image: source.base_name.clone(),
            source: error,
        })?;
    let local = format!("original-{}", &digest.hex()[..32]);
    let endpoint = match &source.endpoint {
        Endpoint::Registry { client, image } => Endpoint::Registry {
            client: client.clone(),
            image: image.with_digest(digest.clone()),
        },
        Endpoint::Layout { layout, .. } => {
            // In a layout the original is found by digest among the tagged images.
            let index = layout.read_index().await?;
            let tag = index
                .manifests()
                .iter()
                .filter(|d| d.digest().as_ref() == digest.to_string())
                .find_map(|d| {
                    d.annotations()
                        .as_ref()?
                        .get(oci::layout::REF_NAME_ANNOTATION)
                        .cloned()
                })
                .ok_or_else(|| PublishError::OriginalMissing {
                    image: source.base_name.clone(),
                    digest: digest.clone(),
                    layout: layout.root().to_path_buf(),
                })?;
            Endpoint::Layout {
                layout: layout.clone(),
                tag: Some(tag),
            }
        }
    };
    copy_into(&endpoint, &source.work, &local).await?;
    source.content = source.work.resolve(Some(&local)).await?;
    if let Some(name) = annotation(ANNOTATION_BASE_NAME) {
        source.base_name = name;
    }
    Ok(())
}

/// Writes `patched` (in the working layout) to `output`: blobs the
/// destination lacks, then the tag. Refuses to move the original's tag.
pub async fn write(
    source: &Source,
    patched: &ContentRef,
    output: Output,
) -> Result<Written, PublishError> {
    let local = format!("patched-{}", &patched.digest.hex()[..32]);
    source.work.set_tag(Some(&local), patched).await?;
    let from = Endpoint::Layout {
        layout: source.work.clone(),
        tag: Some(local),
    };
    let (destination, name) = match output {
        Output::Layout { path, tag } => (
            Endpoint::Layout {
                layout: OciLayout::create(&path).await?,
                tag: Some(tag.clone()),
            },
            format!("oci:{}:{tag}", path.display()),
        ),
        Output::Beside(tag) => {
            if let Some(archive) = &source.archive {
                return Err(PublishError::ArchiveNotRewritten {
                    archive: archive.clone(),
                });
            }
            if source.tag.as_deref() == Some(tag.as_str()) {
                return Err(PublishError::OriginalTag { tag });
            }
            match &source.endpoint {
                Endpoint::Registry { client, image } => {
                    let destination = image.with_tag(&tag).map_err(oci::Error::from)?;
                    let name = format!(
                        "{}/{}:{tag}",
                        destination.registry(),
                        destination.repository()
                    );
                    (
                        Endpoint::Registry {
                            client: client.clone(),
                            image: destination,
                        },
                        name,
                    )
                }
                Endpoint::Layout { layout, .. } => (
                    Endpoint::Layout {
                        layout: layout.clone(),
                        tag: Some(tag.clone()),
                    },
                    format!("oci:{}:{tag}", layout.root().display()),
                ),
            }
        }
    };
    let unchanged = match &destination {
        Endpoint::Layout { layout, tag } => layout
            .resolve(tag.as_deref())
            .await
            .is_ok_and(|c| c.digest == patched.digest),
        Endpoint::Registry { client, image } => client
            .get_manifest(image)
            .await
            .is_ok_and(|m| m.digest == patched.digest),
    };
    let copy = oci::copy::copy_image(&from, &destination, Arc::new(Silent))
        .await
        .map_err(copy_error(destination.describe()))?;
    Ok(Written {
        name,
        destination,
        copy,
        unchanged,
    })
}

/// The evidence of a patch: the OpenVEX document and, per patched platform
/// manifest, the post-patch scan.
pub struct Evidence {
    /// The OpenVEX document: what the patch fixed, per vulnerability.
    pub vex: Value,
    /// The post-patch scan of each patched platform's manifest.
    pub reports: Vec<(ContentRef, scan::Report)>,
}

/// Scans each patched platform and writes the VEX document.
pub async fn evidence(
    outcome: &Outcome,
    patched: &ContentRef,
    written: &Written,
    scanner: &scan::Scanner,
) -> Result<Evidence, PublishError> {
    let (_, timestamp) = scanner.clock().today_and_stamp();
    let repository = match &written.destination {
        Endpoint::Registry { image, .. } => format!("{}/{}", image.registry(), image.repository()),
        Endpoint::Layout { .. } => written.name.clone(),
    };
    let product = patch::vex::oci_purl(&repository, &patched.digest.to_string());
    let mut reports = Vec::new();
    let mut parts = Vec::new();
    for platform in &outcome.platforms {
        let (Some(manifest), Some(after)) = (&platform.manifest, &platform.inventory_after) else {
            continue;
        };
        let report = scanner
            .scan_inventory(&written.name, after, Some(manifest.digest.clone()))
            .await?;
        reports.push((manifest.clone(), report));
        parts.push(patch::vex::Patched {
            plan: &platform.plan,
            product: product.clone(),
            distro: &platform.distro.0,
            release: &platform.distro.1,
            effects: platform
                .layer
                .as_ref()
                .map_or(&[], |l| l.script_effects.as_slice()),
        });
    }
    let vex = patch::vex::document(
        &format!("urn:drydock:vex:{}", patched.digest),
        &timestamp,
        &parts,
    );
    Ok(Evidence { vex, reports })
}

/// Attaches the evidence to the patched image as referrers.
pub async fn attach(
    written: &Written,
    patched: &ContentRef,
    evidence: &Evidence,
) -> Result<(), PublishError> {
    let vex = Bytes::from(serde_json::to_vec_pretty(&evidence.vex).expect("JSON serialises"));
    attach_one(&written.destination, patched, VEX_TYPE, vex).await?;
    for (manifest, report) in &evidence.reports {
        let body = Bytes::from(scan::render::render(report, scan::render::Format::Json));
        attach_one(&written.destination, manifest, REPORT_TYPE, body).await?;
    }
    Ok(())
}

/// An artifact manifest carrying `blob` about `subject`.
fn referrer(subject: &ContentRef, artifact_type: &str, blob: &ContentRef) -> Bytes {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": media_type::OCI_EMPTY, "digest": Digest::sha256_of(b"{}").to_string(), "size": 2},
        "layers": [{"mediaType": blob.media_type, "digest": blob.digest.to_string(), "size": blob.size}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest.to_string(), "size": subject.size},
    });
    Bytes::from(serde_json::to_vec(&manifest).expect("a manifest serialises"))
}

/// Stores `body` as an artifact whose subject is `subject`, in a registry
/// (the referrers API, with the tag-schema fallback) or a layout (an untagged index entry).
async fn attach_one(
    destination: &Endpoint,
    subject: &ContentRef,
    artifact_type: &str,
    body: Bytes,
) -> Result<(), PublishError> {
    let empty = Bytes::from_static(b"{}");
    let blob = ContentRef {
        digest: Digest::sha256_of(&body),
        size: body.len() as u64,
        media_type: artifact_type.to_string(),
    };
    let empty_ref = ContentRef {
        digest: Digest::sha256_of(&empty),
        size: 2,
        media_type: media_type::OCI_EMPTY.to_string(),
    };
    let manifest = referrer(subject, artifact_type, &blob);
    match destination {
        Endpoint::Layout { layout, .. } => {
            layout.write_blob_bytes(body, artifact_type).await?;
            layout
                .write_blob_bytes(empty, media_type::OCI_EMPTY)
                .await?;
            let content = layout
                .write_blob_bytes(manifest, media_type::OCI_MANIFEST)
                .await?;
            layout.set_tag(None, &content).await?;
        }
        Endpoint::Registry { client, image } => {
            for (content, bytes) in [(&blob, body), (&empty_ref, empty)] {
                if !client.has_blob(image, &content.digest).await? {
                    let stream: oci::client::BlobStream =
                        Box::pin(futures_util::stream::once(async move { Ok(bytes) }));
                    client.push_blob(image, content, stream).await?;
                }
            }
            client
                .push_referrer(image, manifest, media_type::OCI_MANIFEST)
                .await?;
        }
    }
    Ok(())
}
