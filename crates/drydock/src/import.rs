//! `drydock import SRC DEST`: copy an image or a whole multi-platform index
//! between registries and OCI layouts, with a progress bar on a terminal.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use oci::copy::{BlobTransfer, CopyProgress, Endpoint};
use oci::{ContentRef, Credentials, ImageLocation, OciLayout};

use crate::options::{DataDirArgs, RegistryArgs, client, parse_credentials};

#[derive(clap::Args)]
pub struct ImportArgs {
    /// Source: a registry reference (`nginx:1.25`, `host:5000/app:1@sha256:…`) or `oci:DIR[:TAG]`.
    pub source: String,
    /// Destination: a registry reference or `oci:DIR[:TAG]`. Without a tag, the source's tag is kept.
    pub destination: String,
    /// Credentials for the source registry (default: ~/.docker/config.json and helpers).
    #[arg(long, value_name = "USER:PASSWORD", value_parser = parse_credentials)]
    pub src_creds: Option<Credentials>,
    /// Credentials for the destination registry.
    #[arg(long, value_name = "USER:PASSWORD", value_parser = parse_credentials)]
    pub dest_creds: Option<Credentials>,
    /// Upload blobs in chunks of this many MiB instead of one request each.
    #[arg(long, value_name = "MIB")]
    pub chunk_size: Option<usize>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub data: DataDirArgs,
}

/// Whether a reference text names a tag itself (the parser fills in `latest` otherwise).
fn names_tag(reference: &str) -> bool {
    let name = reference.split('@').next().unwrap_or(reference);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.contains(':')
}

async fn endpoint(
    location: ImageLocation,
    creating: bool,
    args: &ImportArgs,
    creds: Option<Credentials>,
) -> anyhow::Result<Endpoint> {
    Ok(match location {
        ImageLocation::Registry(image) => Endpoint::Registry {
            client: client(
                &args.data,
                &args.registry,
                creds,
                args.chunk_size.map(|m| m * 1024 * 1024),
            )?,
            image,
        },
        ImageLocation::Layout { path, tag } => {
            let layout = if creating {
                OciLayout::create(&path).await?
            } else {
                OciLayout::open(&path).await?
            };
            Endpoint::Layout { layout, tag }
        }
    })
}

/// The source's tag, used when the destination names none.
fn source_tag(source: &ImageLocation) -> Option<String> {
    match source {
        ImageLocation::Registry(image) => image.tag().map(str::to_string),
        ImageLocation::Layout { tag, .. } => tag.clone(),
    }
}

fn destination_location(
    args: &ImportArgs,
    source: &ImageLocation,
) -> anyhow::Result<ImageLocation> {
    let parsed: ImageLocation = args
        .destination
        .parse()
        .with_context(|| format!("destination {:?}", args.destination))?;
    let inherited = source_tag(source);
    Ok(match parsed {
        ImageLocation::Registry(image)
            if !names_tag(&args.destination) && image.digest().is_none() =>
        {
            match inherited {
                Some(tag) => ImageLocation::Registry(image.with_tag(&tag)?),
                None => ImageLocation::Registry(image),
            }
        }
        ImageLocation::Layout { path, tag: None } => ImageLocation::Layout {
            path,
            tag: inherited,
        },
        other => other,
    })
}

struct Bar(ProgressBar);

impl CopyProgress for Bar {
    fn blobs_planned(&self, count: usize, bytes: u64) {
        self.0.set_length(bytes);
        self.0.set_message(format!("{count} blobs"));
    }
    fn bytes_transferred(&self, bytes: u64) {
        self.0.inc(bytes);
    }
    fn blob_done(&self, content: &ContentRef, how: BlobTransfer) {
        if how != BlobTransfer::Copied {
            self.0.inc(content.size);
        }
    }
}

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let source_location: ImageLocation = args
        .source
        .parse()
        .with_context(|| format!("source {:?}", args.source))?;
    let destination_location = destination_location(&args, &source_location)?;
    let source = endpoint(source_location, false, &args, args.src_creds.clone()).await?;
    let destination = endpoint(destination_location, true, &args, args.dest_creds.clone()).await?;

    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let report = oci::copy::copy_image(&source, &destination, Arc::new(Bar(bar.clone())))
        .await
        .with_context(|| {
            format!(
                "importing {} into {}",
                source.describe(),
                destination.describe()
            )
        })?;
    bar.finish_and_clear();
    let digest = report.digest.map(|d| d.to_string()).unwrap_or_default();
    println!(
        "Imported {} -> {} ({digest})\n  {} manifest(s); blobs: {} copied ({:.1} MiB), {} mounted, {} already present; {:.1}s",
        source.describe(),
        destination.describe(),
        report.manifests,
        report.blobs_copied,
        report.bytes_copied as f64 / (1024.0 * 1024.0),
        report.blobs_mounted,
        report.blobs_present,
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::names_tag;

    #[test]
    fn detects_explicit_tags() {
        assert!(names_tag("nginx:1.25"));
        assert!(names_tag("localhost:5000/nginx:1.25"));
        assert!(!names_tag("localhost:5000/nginx"));
        assert!(!names_tag("localhost:5000/nginx@sha256:abc"));
    }
}
