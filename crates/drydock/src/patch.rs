//! `drydock patch IMAGE`: upgrade an image's vulnerable OS packages natively
//! and write the result under a new tag, with a VEX document and the
//! post-patch scan attached as referrers.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use advisory::{SecurityRepo, SecurityRepoOptions, Store};
use anyhow::Context as _;
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use oci::copy::{Endpoint, Silent};
use oci::manifest::{ContentRef, media_type};
use oci::{ClientOptions, Digest, ImageLocation, ImageReference, OciLayout, RegistryClient};
use patch::image::{ANNOTATION_BASE_NAME, ANNOTATION_ORIGINAL};
use patch::patcher::{Outcome, Patcher, PatcherOptions, WantSource, requests_from_trivy};
use patch::plan::Reason;
use patch::sources::Mirror;
use scan::matching::Filters;
use scan::{Scanner, ScannerOptions};
use serde_json::json;

use crate::options::{DataDirArgs, RegistryArgs};

#[derive(clap::Args)]
pub struct PatchArgs {
    /// The image: a registry reference (`127.0.0.1:5000/app:1`) or `oci:DIR[:TAG]`.
    pub image: String,
    /// The tag of the patched image [default: the original tag + --tag-suffix].
    #[arg(long, short, conflicts_with = "tag_suffix")]
    pub tag: Option<String>,
    /// Appended to the original tag to name the patched image.
    #[arg(long, default_value = "-patched")]
    pub tag_suffix: String,
    /// Upgrade the fixable OS-package findings of this Trivy JSON report instead of scanning.
    #[arg(long, value_name = "FILE", conflicts_with = "update_all")]
    pub report: Option<PathBuf>,
    /// Upgrade every package that has a newer version in the configured suites.
    #[arg(long)]
    pub update_all: bool,
    /// Patch only these platforms of a multi-platform image (`linux/arm64`); repeatable.
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Vec<String>,
    /// Use a mirror: `URL` replaces the scheme and host of every suite, `FROM=TO` a URL prefix; repeatable.
    #[arg(long, value_name = "URL")]
    pub mirror: Vec<Mirror>,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also write the OpenVEX document to FILE.
    #[arg(long, value_name = "FILE")]
    pub vex: Option<PathBuf>,
    /// Also write the post-patch scan (Trivy JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    pub scan_report: Option<PathBuf>,
    /// Write the patched image to this OCI layout (`oci:DIR[:TAG]`) instead of beside the original.
    #[arg(long, value_name = "oci:DIR[:TAG]")]
    pub output: Option<String>,
    /// Patch an end-of-life release from what its suites still hold.
    #[arg(long)]
    pub allow_eol: bool,
    /// The advisory database consulted by the scan [default: <data dir>/advisories.db; optional].
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataDirArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Where the image to patch is read from and the result written to.
struct Target {
    /// The layout the patch works in (the user's, or drydock's cache for registry images).
    work: OciLayout,
    /// The content to patch.
    content: ContentRef,
    /// The registry image, when the source is a registry.
    registry: Option<(RegistryClient, ImageReference)>,
    /// The source tag, if any.
    tag: Option<String>,
    /// Where the image came from (a patched image goes beside it by default).
    source: Endpoint,
}

fn progress(message: &str) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    } else {
        ProgressBar::hidden()
    };
    bar.set_message(message.to_string());
    bar
}

fn pull_tag(text: &str) -> String {
    let mut tag: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    tag.truncate(120);
    tag
}

/// Copies the image into drydock's working layout (only blobs it lacks),
/// so the user's layout or registry never sees intermediate tags.
async fn open_target(args: &PatchArgs, cache: &Path) -> anyhow::Result<Target> {
    let location: ImageLocation = args
        .image
        .parse()
        .with_context(|| format!("image {:?}", args.image))?;
    let work = OciLayout::create(cache.join("images")).await?;
    let (source, registry, tag, label) = match location {
        ImageLocation::Layout { path, tag } => {
            let layout = OciLayout::open(&path).await?;
            let label = format!("{}/{}", path.display(), tag.as_deref().unwrap_or(""));
            (
                Endpoint::Layout {
                    layout,
                    tag: tag.clone(),
                },
                None,
                tag,
                label,
            )
        }
        ImageLocation::Registry(image) => {
            let client = RegistryClient::new(ClientOptions {
                plain_http: args.registry.plain_http,
                ..ClientOptions::default()
            })?;
            let label = format!(
                "{}/{}/{}",
                image.registry(),
                image.repository(),
                image.manifest_reference()
            );
            let tag = image.tag().map(str::to_string);
            (
                Endpoint::Registry {
                    client: client.clone(),
                    image: image.clone(),
                },
                Some((client, image)),
                tag,
                label,
            )
        }
    };
    let local = pull_tag(&label);
    copy_into(&source, &work, &local).await?;
    let content = work.resolve(Some(&local)).await?;
    Ok(Target {
        work,
        content,
        registry,
        tag,
        source,
    })
}

async fn copy_into(source: &Endpoint, work: &OciLayout, tag: &str) -> anyhow::Result<()> {
    let destination = Endpoint::Layout {
        layout: work.clone(),
        tag: Some(tag.to_string()),
    };
    oci::copy::copy_image(source, &destination, Arc::new(Silent))
        .await
        .with_context(|| format!("reading {}", source.describe()))?;
    Ok(())
}

/// Re-patching starts from the original: follows the annotation a patch leaves.
async fn original_of(target: &mut Target) -> anyhow::Result<Option<String>> {
    let bytes = target.work.read_blob_bytes(&target.content).await?;
    let manifest: serde_json::Value = serde_json::from_slice(&bytes)?;
    let annotation = |name: &str| {
        manifest
            .pointer(&format!("/annotations/{}", name.replace('/', "~1")))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let Some(original) = annotation(ANNOTATION_ORIGINAL) else {
        return Ok(None);
    };
    let digest: Digest = original
        .parse()
        .with_context(|| format!("annotation {ANNOTATION_ORIGINAL}"))?;
    let local = format!("original-{}", &digest.hex()[..32]);
    let source = match &target.source {
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
                .find_map(|d| d.annotations().as_ref()?.get(oci::layout::REF_NAME_ANNOTATION).cloned())
                .with_context(|| format!("this is a patched image; its original {digest} must be tagged in {} to patch again", layout.root().display()))?;
            Endpoint::Layout {
                layout: layout.clone(),
                tag: Some(tag),
            }
        }
    };
    copy_into(&source, &target.work, &local)
        .await
        .context("fetching the original of this patched image")?;
    target.content = target.work.resolve(Some(&local)).await?;
    Ok(annotation(ANNOTATION_BASE_NAME))
}

fn scanner(args: &PatchArgs, cache: &Path) -> anyhow::Result<Scanner> {
    let db_path = args.data.advisory_db(args.db.clone());
    let store = if db_path.exists() {
        Some(Store::open_existing(&db_path).context("opening the advisory database")?)
    } else {
        None
    };
    let mut debian_security = vec![
        patch::sources::AptSource {
            uri: "http://deb.debian.org/debian-security".to_string(),
            suite: String::new(),
            components: vec![],
            trusted: false,
        },
        patch::sources::AptSource {
            uri: "http://security.ubuntu.com/ubuntu".to_string(),
            suite: String::new(),
            components: vec![],
            trusted: false,
        },
    ];
    patch::sources::apply_mirrors(&mut debian_security, &args.mirror);
    let mirrored =
        |i: usize, default: &str| Some(debian_security[i].uri.clone()).filter(|u| u != default);
    let security = SecurityRepo::new(SecurityRepoOptions {
        debian_mirror: mirrored(0, "http://deb.debian.org/debian-security"),
        ubuntu_mirror: mirrored(1, "http://security.ubuntu.com/ubuntu"),
        ..SecurityRepoOptions::new(scan::scanner::cache_dir(&args.data.data_dir))
    })?;
    Ok(Scanner::new(
        store,
        Some(security),
        ScannerOptions {
            cache_dir: cache.join("scan"),
            registry: ClientOptions {
                plain_http: args.registry.plain_http,
                ..ClientOptions::default()
            },
            filters: Filters {
                ignore_unfixed: true,
                severities: Vec::new(),
            },
        },
    )?)
}

fn print_plan(outcome: &Outcome) {
    for platform in &outcome.platforms {
        let title = if platform.platform.is_empty() {
            String::new()
        } else {
            format!(" ({})", platform.platform)
        };
        if platform.plan.is_empty() {
            println!("Nothing to upgrade{title}.");
        } else {
            println!("Plan{title}: {} package(s)", platform.plan.steps.len());
            println!("  {:<28} {:<28} {:<28} WHY", "PACKAGE", "FROM", "TO");
            for step in &platform.plan.steps {
                let why = match &step.reason {
                    Reason::Requested(ids) if ids.is_empty() => "update".to_string(),
                    Reason::Requested(ids) => ids.join(" "),
                    Reason::DependencyOf(of) => format!("dependency of {of}"),
                    Reason::KeepsWorking(of) => format!("keeps working with {of}"),
                };
                println!(
                    "  {:<28} {:<28} {:<28} {}",
                    step.name,
                    step.from.as_deref().unwrap_or("(new)"),
                    step.to_version(),
                    why
                );
            }
        }
        for skipped in &platform.plan.skipped {
            println!("  not upgraded: {}: {}", skipped.name, skipped.reason);
        }
    }
}

/// An artifact manifest carrying `content` about `subject`.
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

const VEX_TYPE: &str = "application/vnd.openvex+json";
const REPORT_TYPE: &str = "application/vnd.drydock.scan.report.v1+json";

pub async fn run(args: PatchArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let cache = args.data.data_dir.join("patch-cache");
    let bar = progress("reading the image");
    let mut target = open_target(&args, &cache).await?;
    let source_tag = target.tag.clone();
    let base_name = original_of(&mut target)
        .await?
        .unwrap_or_else(|| args.image.clone());
    let wants_scanner;
    let wants = if args.update_all {
        WantSource::All
    } else if let Some(report) = &args.report {
        let bytes =
            std::fs::read(report).with_context(|| format!("reading {}", report.display()))?;
        WantSource::Report(
            requests_from_trivy(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", report.display()))?,
        )
    } else {
        wants_scanner = scanner(&args, &cache)?;
        WantSource::Scan(&wants_scanner)
    };
    let patcher = Patcher::new(PatcherOptions {
        cache_dir: cache.clone(),
        mirrors: args.mirror.clone(),
        debian_keyrings: Vec::new(),
        ubuntu_keyrings: Vec::new(),
        allow_eol: args.allow_eol,
        platforms: args.platform.clone(),
    })?;
    bar.set_message("planning, downloading and building the layer");
    let outcome = patcher
        .patch(
            &target.work,
            &target.content,
            &base_name,
            &wants,
            args.dry_run,
        )
        .await
        .with_context(|| format!("patching {}", args.image))?;
    bar.finish_and_clear();
    print_plan(&outcome);
    if args.dry_run {
        println!("Dry run: nothing written.");
        return Ok(());
    }
    let Some(patched) = outcome.patched.clone() else {
        println!("{} needs no patch; nothing written.", args.image);
        return Ok(());
    };
    let tag = match (&args.tag, &source_tag) {
        (Some(tag), _) => tag.clone(),
        (None, Some(source)) => format!("{source}{}", args.tag_suffix),
        (None, None) => {
            anyhow::bail!("the image has no tag to derive the patched tag from; pass --tag")
        }
    };
    if Some(&tag) == source_tag.as_ref() && args.output.is_none() {
        anyhow::bail!("refusing to overwrite the original tag {tag:?}; choose another --tag");
    }
    let local_tag = format!("patched-{}", &patched.digest.hex()[..32]);
    target.work.set_tag(Some(&local_tag), &patched).await?;
    let source = Endpoint::Layout {
        layout: target.work.clone(),
        tag: Some(local_tag),
    };
    let bar = progress("writing the patched image");
    let (destination, written_name) = match (&args.output, &target.registry) {
        (Some(output), _) => {
            let location: ImageLocation = output
                .parse()
                .with_context(|| format!("--output {output:?}"))?;
            let ImageLocation::Layout { path, tag: out_tag } = location else {
                anyhow::bail!(
                    "--output takes an OCI layout (oci:DIR[:TAG]); to push to a registry, patch the registry image"
                );
            };
            let tag = out_tag.unwrap_or(tag.clone());
            (
                Endpoint::Layout {
                    layout: OciLayout::create(&path).await?,
                    tag: Some(tag.clone()),
                },
                format!("oci:{}:{tag}", path.display()),
            )
        }
        (None, Some((client, image))) => {
            let destination = image.with_tag(&tag)?;
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
        (None, None) => {
            let Endpoint::Layout { layout, .. } = &target.source else {
                unreachable!("a source without a registry is a layout")
            };
            let name = format!("oci:{}:{tag}", layout.root().display());
            (
                Endpoint::Layout {
                    layout: layout.clone(),
                    tag: Some(tag.clone()),
                },
                name,
            )
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
    let copied = oci::copy::copy_image(&source, &destination, Arc::new(Silent))
        .await
        .with_context(|| format!("writing {}", destination.describe()))?;
    bar.finish_and_clear();

    if unchanged {
        println!(
            "{written_name} already is this patch ({}); nothing new written.",
            patched.digest
        );
        return Ok(());
    }
    // Evidence: VEX and the post-patch scan, per patched platform manifest.
    let evidence_scanner = scanner(&args, &cache)?;
    let (_, timestamp) = scan::scanner::now_utc();
    let mut vex_parts = Vec::new();
    let mut reports = Vec::new();
    let repository = match &target.registry {
        Some((_, image)) => format!("{}/{}", image.registry(), image.repository()),
        None => written_name.clone(),
    };
    for platform in &outcome.platforms {
        let (Some(manifest), Some(after)) = (&platform.manifest, &platform.inventory_after) else {
            continue;
        };
        let report = evidence_scanner
            .scan_inventory(&written_name, after, Some(manifest.digest.clone()))
            .await?;
        reports.push((manifest.clone(), report));
        vex_parts.push((
            platform,
            patch::vex::oci_purl(&repository, &patched.digest.to_string()),
        ));
    }
    let vex = patch::vex::document(
        &format!("urn:drydock:vex:{}", patched.digest),
        &timestamp,
        &vex_parts
            .iter()
            .map(|(p, product)| patch::vex::Patched {
                plan: &p.plan,
                product: product.clone(),
                distro: &p.distro.0,
                release: &p.distro.1,
            })
            .collect::<Vec<_>>(),
    );
    let vex_bytes = Bytes::from(serde_json::to_vec_pretty(&vex)?);
    if let Some(path) = &args.vex {
        std::fs::write(path, &vex_bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.scan_report
        && let Some((_, report)) = reports.first()
    {
        std::fs::write(
            path,
            scan::render::render(report, scan::render::Format::Json),
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut attachments = vec![(patched.clone(), VEX_TYPE, vex_bytes)];
    for (manifest, report) in &reports {
        attachments.push((
            manifest.clone(),
            REPORT_TYPE,
            Bytes::from(scan::render::render(report, scan::render::Format::Json)),
        ));
    }
    for (subject, artifact_type, body) in attachments {
        attach(&destination, &subject, artifact_type, body)
            .await
            .context("attaching the evidence as a referrer")?;
    }

    // Summary.
    let mut upgraded = 0;
    let mut added = 0;
    let mut layer_bytes = 0;
    let mut fixed: BTreeMap<String, ()> = BTreeMap::new();
    for platform in &outcome.platforms {
        upgraded += platform
            .plan
            .steps
            .iter()
            .filter(|s| s.from.is_some())
            .count();
        added += platform
            .plan
            .steps
            .iter()
            .filter(|s| s.from.is_none())
            .count();
        layer_bytes += platform.layer.as_ref().map_or(0, |l| l.blob.len());
        for id in platform.plan.vulnerabilities() {
            fixed.insert(id, ());
        }
        if let Some(layer) = &platform.layer {
            for (package, scripts) in &layer.scripts_not_run {
                println!(
                    "  note: {package}: maintainer scripts not run ({})",
                    scripts.join(", ")
                );
            }
            if layer.linker_cache_updated {
                println!("  note: etc/ld.so.cache updated for the libraries added or removed");
            }
            for path in &layer.conffiles_kept {
                println!(
                    "  note: {path} was modified in the image and is kept; the new version is {path}.dpkg-dist"
                );
            }
        }
    }
    let remaining: usize = reports
        .iter()
        .map(|(_, r)| r.results.iter().map(|t| t.findings.len()).sum::<usize>())
        .sum();
    println!(
        "Patched {} -> {written_name} ({})\n  {upgraded} package(s) upgraded, {added} added; {} vulnerabilit{} fixed; {remaining} fixable remain\n  new layer {:.1} MiB; blobs: {} pushed, {} already there; {:.1}s",
        args.image,
        patched.digest,
        fixed.len(),
        if fixed.len() == 1 { "y" } else { "ies" },
        layer_bytes as f64 / (1024.0 * 1024.0),
        copied.blobs_copied,
        copied.blobs_present + copied.blobs_mounted,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Stores `body` as an artifact whose subject is `subject`, in a registry
/// (the referrers API, with the tag-schema fallback) or a layout (an untagged index entry).
async fn attach(
    destination: &Endpoint,
    subject: &ContentRef,
    artifact_type: &str,
    body: Bytes,
) -> anyhow::Result<()> {
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
