//! `drydock scan IMAGE`: report the OS-package vulnerabilities of an image
//! as a table, Trivy-compatible JSON, SARIF or CycloneDX, with Trivy's exit
//! code conventions (`--exit-code`, `--exit-on-eol`).

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use advisory::Severity;
use anyhow::Context as _;
use patch::sources::Mirror;
use scan::Report;
use scan::matching::Filters;
use scan::render::{self, Format};

use crate::options::{DataDirArgs, RegistryArgs};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    Table,
    Json,
    Sarif,
    Cyclonedx,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PkgType {
    Os,
    Library,
}

#[derive(clap::Args)]
pub struct ScanArgs {
    /// The image: a registry reference (`nginx:1.25`, `127.0.0.1:5000/app:1`), `oci:DIR[:TAG]` or `dir:ROOTFS`.
    pub image: String,
    #[arg(long, short, value_enum, default_value = "table")]
    pub format: FormatArg,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Report only vulnerabilities that have a fixed version.
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// Report only these severities (comma-separated: UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL).
    #[arg(long, value_delimiter = ',', value_parser = parse_severity)]
    pub severity: Vec<Severity>,
    /// Which packages to scan; only `os` (installed OS packages) is available so far.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "os")]
    pub pkg_types: Vec<PkgType>,
    /// Exit with this code when vulnerabilities remain after the filters.
    #[arg(long, default_value_t = 0)]
    pub exit_code: u8,
    /// Exit with this code when the image's OS is end-of-life.
    #[arg(long, default_value_t = 0)]
    pub exit_on_eol: u8,
    /// The advisory database [default: <data dir>/advisories.db].
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Do not consult the distribution's security repository (Debian and Ubuntu `-security` pockets).
    #[arg(long)]
    pub no_security_repo: bool,
    /// Use only what is cached: no network for the security repository or registry blobs already pulled.
    #[arg(long)]
    pub offline: bool,
    /// Reuse the security repository's index when fetched less than this long ago (e.g. 30m, 1h; 0 always fetches).
    #[arg(long, default_value = "1h", value_name = "AGE", value_parser = crate::serve::parse_duration)]
    pub security_repo_max_age: std::time::Duration,
    /// A Debian security mirror to use instead of deb.debian.org/debian-security.
    #[arg(long, value_name = "URL")]
    pub debian_security_mirror: Option<String>,
    /// An Ubuntu security mirror to use instead of security.ubuntu.com/ubuntu.
    #[arg(long, value_name = "URL")]
    pub ubuntu_security_mirror: Option<String>,
    /// Use a mirror for the security repositories: `URL` replaces the scheme and host, `FROM=TO` a URL prefix; repeatable.
    #[arg(long, value_name = "URL")]
    pub mirror: Vec<Mirror>,
    #[command(flatten)]
    pub data: DataDirArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

fn parse_severity(text: &str) -> Result<Severity, advisory::UnknownName> {
    text.trim().parse()
}

pub async fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    if args.pkg_types.contains(&PkgType::Library) {
        anyhow::bail!(
            "--pkg-types library is not supported yet; drydock scans OS packages (--pkg-types os)"
        );
    }
    // The per-distribution flags are prefix mirrors of the official pockets.
    let mut mirrors = Vec::new();
    for (official, mirror) in [
        (
            environment::distributions::DEBIAN_SECURITY,
            &args.debian_security_mirror,
        ),
        (
            environment::distributions::UBUNTU_SECURITY,
            &args.ubuntu_security_mirror,
        ),
    ] {
        if let Some(mirror) = mirror {
            mirrors.push(
                format!("{official}={mirror}")
                    .parse::<Mirror>()
                    .with_context(|| format!("security mirror {mirror:?}"))?,
            );
        }
    }
    mirrors.extend(args.mirror.iter().cloned());
    let environment = crate::options::environment(&args.data, &args.registry, |config| {
        config.advisory_db = args.db.clone();
        config.offline = args.offline;
        config.security_repo = !args.no_security_repo;
        config.security_repo_max_age = args.security_repo_max_age;
        config.mirrors = mirrors;
    })?;
    if args.no_security_repo && !environment.advisory_db().exists() {
        eprintln!(
            "warning: no advisory database at {} and the security repository is off: \
             reporting packages without vulnerability data. Run `drydock db update` or `drydock db import FILE…`.",
            environment.advisory_db().display()
        );
    }
    let scanner = environment.scanner(
        Filters {
            ignore_unfixed: args.ignore_unfixed,
            severities: args.severity.clone(),
        },
        &args.registry.policy(),
    )?;
    let report = scanner
        .scan(&args.image)
        .await
        .with_context(|| format!("scanning {}", args.image))?;
    let format = match args.format {
        FormatArg::Table => Format::Table,
        FormatArg::Json => Format::Json,
        FormatArg::Sarif => Format::Sarif,
        FormatArg::Cyclonedx => Format::CycloneDx,
    };
    write_report(&report, format, args.output.as_deref())?;
    let eol = report.os.as_ref().is_some_and(|os| os.eosl);
    let vulnerable = report.results.iter().any(|r| !r.findings.is_empty());
    Ok(if eol && args.exit_on_eol != 0 {
        ExitCode::from(args.exit_on_eol)
    } else if vulnerable && args.exit_code != 0 {
        ExitCode::from(args.exit_code)
    } else {
        ExitCode::SUCCESS
    })
}

/// Streams the report to `output`, or to standard output.
fn write_report(report: &Report, format: Format, output: Option<&Path>) -> anyhow::Result<()> {
    let written = match output {
        Some(path) => File::create(path).and_then(|file| {
            let mut out = BufWriter::new(file);
            render::write(report, format, &mut out)?;
            out.flush()
        }),
        None => {
            let mut out = BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
            render::write(report, format, &mut out).and_then(|()| out.flush())
        }
    };
    written.with_context(|| match output {
        Some(path) => format!("writing {}", path.display()),
        None => "writing the report to standard output".to_string(),
    })
}
