//! `drydock patch IMAGE`: upgrade an image's vulnerable OS packages natively
//! and write the result under a new tag, with a VEX document and the
//! post-patch scan attached as referrers.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use environment::{
    EnvironmentError, Evidence, LayoutOutput, Observer, PatchPolicy, PatchRequest, PatchResult,
    Stage, TagChoice, Wants, Written,
};
use indicatif::{ProgressBar, ProgressStyle};
use oci::ImageLocation;
use oci::manifest::ContentRef;
use patch::patcher::{Outcome, ScriptMode, requests_from_trivy};
use patch::plan::Reason;
use patch::sources::Mirror;

use crate::options::{DataDirArgs, RegistryArgs};

#[derive(clap::Args)]
pub struct PatchArgs {
    /// The image: a registry reference (`127.0.0.1:5000/app:1`), `oci:DIR[:TAG]`,
    /// or a `docker save` archive (`docker-archive:FILE`, or the file's path; needs --output).
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
    /// Use suites whose signature is missing or does not verify (their checksums still apply).
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Run the upgraded packages' maintainer scripts and triggers with the
    /// image's own apt and dpkg in a sandbox (bubblewrap; needs root and an
    /// image the host can execute) instead of reproducing their effects natively.
    #[arg(long)]
    pub run_maintainer_scripts: bool,
    /// The advisory database consulted by the scan [default: <data dir>/advisories.db; optional].
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataDirArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// A spinner on a terminal naming the step under way; nothing otherwise.
struct Progress(ProgressBar);

impl Progress {
    fn new() -> Progress {
        Progress(if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        } else {
            ProgressBar::hidden()
        })
    }
}

impl Observer for Progress {
    fn stage(&self, stage: Stage) {
        self.0.set_message(match stage {
            Stage::Reading => "reading the image",
            Stage::Patching(ScriptMode::Sandbox) => {
                "planning, downloading, running dpkg in the sandbox"
            }
            Stage::Patching(ScriptMode::Native) => "planning, downloading and building the layer",
            Stage::Writing => "writing the patched image",
            Stage::Evidence => "scanning the patched image and attaching the evidence",
        });
    }
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
        for suite in &platform.third_party {
            let source = &suite.source;
            match &suite.skipped {
                None if source.trusted => println!(
                    "  third-party suite consulted without a signature ([trusted=yes]): {} {}",
                    source.uri, source.suite
                ),
                None => println!(
                    "  third-party suite consulted: {} {}",
                    source.uri, source.suite
                ),
                Some(reason) => println!(
                    "  third-party suite not consulted: {} {}: {reason}",
                    source.uri, source.suite
                ),
            }
        }
    }
}

pub async fn run(args: PatchArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let output = match &args.output {
        Some(output) => {
            let location: ImageLocation = output
                .parse()
                .with_context(|| format!("--output {output:?}"))?;
            let ImageLocation::Layout { path, tag } = location else {
                anyhow::bail!(
                    "--output takes an OCI layout (oci:DIR[:TAG]); to push to a registry, patch the registry image"
                );
            };
            Some(LayoutOutput { path, tag })
        }
        None => None,
    };
    let wants = if args.update_all {
        Wants::All
    } else if let Some(report) = &args.report {
        let bytes =
            std::fs::read(report).with_context(|| format!("reading {}", report.display()))?;
        Wants::Report(
            requests_from_trivy(&bytes)
                .with_context(|| format!("reading the Trivy report {}", report.display()))?,
        )
    } else {
        Wants::Scan
    };
    let environment = crate::options::environment(&args.data, &args.registry, |config| {
        config.advisory_db = args.db.clone();
        config.mirrors = args.mirror.clone();
    })?;
    let scanner = environment.patch_scanner(&args.registry.policy())?;
    let patcher = environment.patcher(PatchPolicy {
        allow_eol: args.allow_eol,
        allow_unsigned: args.allow_unsigned,
        platforms: args.platform.clone(),
    })?;
    let request = PatchRequest {
        image: args.image.clone(),
        wants,
        tag: match &args.tag {
            Some(tag) => TagChoice::Named(tag.clone()),
            None => TagChoice::Suffix(args.tag_suffix.clone()),
        },
        output,
        scripts: if args.run_maintainer_scripts {
            ScriptMode::Sandbox
        } else {
            ScriptMode::Native
        },
        dry_run: args.dry_run,
        registry: args.registry.policy(),
    };
    let progress = Progress::new();
    let result = environment
        .patch_and_publish(&patcher, &scanner, &request, &progress)
        .await;
    progress.0.finish_and_clear();
    let result = result.map_err(|error| with_hint(error, &args.image))?;
    print_plan(result.outcome());
    match result {
        PatchResult::Planned { .. } => println!("Dry run: nothing written."),
        PatchResult::NothingToPatch { .. } => {
            println!("{} needs no patch; nothing written.", args.image)
        }
        PatchResult::AlreadyPublished {
            patched, written, ..
        } => println!(
            "{} already is this patch ({}); nothing new written.",
            written.name, patched.digest
        ),
        PatchResult::Published {
            outcome,
            patched,
            written,
            evidence,
        } => {
            if let Some(path) = &args.vex {
                std::fs::write(path, serde_json::to_vec_pretty(&evidence.vex)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if let Some(path) = &args.scan_report
                && let Some((_, report)) = evidence.reports.first()
            {
                std::fs::write(
                    path,
                    scan::render::render(report, scan::render::Format::Json),
                )
                .with_context(|| format!("writing {}", path.display()))?;
            }
            print_summary(
                &args.image,
                &outcome,
                &patched,
                &written,
                &evidence,
                started,
            );
        }
    }
    Ok(())
}

/// The error, with the flag that gets past it where there is one.
fn with_hint(error: EnvironmentError, image: &str) -> anyhow::Error {
    let hint = match &error {
        EnvironmentError::NoTagToDerive { .. } => Some("pass --tag"),
        EnvironmentError::ArchiveNeedsOutput { .. } => {
            Some("pass --output oci:DIR:TAG for the patched image")
        }
        _ => None,
    };
    let error = anyhow::Error::from(error).context(format!("patching {image}"));
    match hint {
        Some(hint) => anyhow::anyhow!("{error:#}; {hint}"),
        None => error,
    }
}

fn print_summary(
    image: &str,
    outcome: &Outcome,
    patched: &ContentRef,
    written: &Written,
    evidence: &Evidence,
    started: Instant,
) {
    let mut upgraded = 0;
    let mut added = 0;
    let mut layer_bytes = 0;
    let mut fixed: BTreeSet<String> = BTreeSet::new();
    // Upgraded, but the fix also waits for a script effect that was not run.
    let mut pending: BTreeSet<String> = BTreeSet::new();
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
        let effects = platform
            .layer
            .as_ref()
            .map_or(&[][..], |l| l.script_effects.as_slice());
        let (platform_fixed, platform_pending) =
            patch::effects::fixed_and_pending(&platform.plan, effects);
        fixed.extend(platform_fixed);
        pending.extend(platform_pending);
        if let Some(layer) = &platform.layer {
            for effect in &layer.script_effects {
                println!(
                    "  {}: {}: {}{}",
                    effect.handling,
                    effect.package,
                    effect.effect,
                    if effect.leaves_fix_pending() {
                        " (its vulnerabilities are not reported fixed)"
                    } else {
                        ""
                    }
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
    let remaining: usize = evidence
        .reports
        .iter()
        .map(|(_, r)| r.results.iter().map(|t| t.findings.len()).sum::<usize>())
        .sum();
    let fixed: BTreeSet<&String> = fixed.difference(&pending).collect();
    if !pending.is_empty() {
        println!(
            "  {} vulnerabilit{} upgraded but not fixed until the effects above run: {}",
            pending.len(),
            if pending.len() == 1 { "y" } else { "ies" },
            pending.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    println!(
        "Patched {image} -> {} ({})\n  {upgraded} package(s) upgraded, {added} added; {} vulnerabilit{} fixed; {remaining} fixable remain\n  new layer {:.1} MiB; blobs: {} pushed, {} already there; {:.1}s",
        written.name,
        patched.digest,
        fixed.len(),
        if fixed.len() == 1 { "y" } else { "ies" },
        layer_bytes as f64 / (1024.0 * 1024.0),
        written.copy.blobs_copied,
        written.copy.blobs_present + written.copy.blobs_mounted,
        started.elapsed().as_secs_f64()
    );
}
