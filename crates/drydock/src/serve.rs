//! `drydock serve` and `drydock gc`: wiring of the embedded registry, the
//! workflow API, the dashboard and the scheduler on one listener. Parses
//! flags into a [`registry::Config`] and the runner's options, opens
//! `<data dir>/workflows.db`, listens, and shuts down on SIGINT or SIGTERM.
//! No registry, workflow or scheduling logic lives here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use server::runner::{Runner, RunnerOptions};
use server::store::Store;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    #[command(flatten)]
    data: crate::options::DataDirArgs,
    #[command(flatten)]
    registry: crate::options::RegistryArgs,
    /// htpasswd file of bcrypt entries (`htpasswd -B`); enables basic auth.
    #[arg(long, value_name = "FILE")]
    htpasswd: Option<PathBuf>,
    /// With --htpasswd, allow pulls (GET/HEAD) without credentials.
    #[arg(long, requires = "htpasswd")]
    anonymous_pull: bool,
    /// How often to collect garbage (e.g. 30m, 1h; 0 disables).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    gc_interval: Duration,
    /// Never collect blobs used more recently than this.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    gc_grace: Duration,
    /// Remove upload sessions untouched for this long.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    upload_expiry: Duration,
    /// Largest manifest accepted (e.g. 4MiB, 8388608); larger ones get 413.
    #[arg(long, default_value = "4MiB", value_parser = parse_size)]
    max_manifest_size: u64,
    /// Images that workflow runs scan and patch at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    parallelism: u16,
    /// Workflow runs use only cached security-repository data (no network
    /// for the scan's feed; patches still download packages).
    #[arg(long)]
    offline: bool,
    /// Before a workflow run, the advisory database's online feeds older than this are fetched again (e.g. 12h, 1d).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    advisory_max_age: std::time::Duration,
}

#[derive(clap::Args)]
pub struct GcArgs {
    #[command(flatten)]
    data: crate::options::DataDirArgs,
    /// Report what would be removed without removing anything.
    #[arg(long)]
    dry_run: bool,
    /// Never collect blobs used more recently than this.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    grace: Duration,
    /// Remove upload sessions untouched for this long.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    upload_expiry: Duration,
}

async fn open(config: registry::Config) -> anyhow::Result<registry::Registry> {
    let dir = config.data_dir.display().to_string();
    registry::Registry::open(config)
        .await
        .with_context(|| format!("cannot open the registry data directory {dir}"))
}

/// The address clients reach a listener on: loopback when it listens on
/// every interface.
fn reachable(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, address.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, address.port()).into(),
        _ => address,
    }
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = registry::Config {
        max_manifest_bytes: args.max_manifest_size,
        htpasswd: args.htpasswd,
        anonymous_pull: args.anonymous_pull,
        gc_grace: args.gc_grace,
        gc_interval: Some(args.gc_interval).filter(|i| !i.is_zero()),
        upload_expiry: args.upload_expiry,
        ..registry::Config::new(args.data.data_dir.clone())
    };
    let registry = open(config).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another registry running there?",
                args.listen
            )
        })?;
    let address = listener.local_addr()?;
    // Workflows default to this registry, as a client on this machine reaches it.
    let own_registry = reachable(address).to_string();
    let environment = crate::options::environment(&args.data, &args.registry, |config| {
        config.offline = args.offline;
        // One fetch of a pocket's or a suite's InRelease serves every image of a run.
        config.security_repo_max_age = Duration::from_secs(300);
        config.release_max_age = Duration::from_secs(300);
    })?;
    let database = environment.layout().workflow_db();
    let store = Store::open(&database)?;
    server::runner::configure_allocator();
    let runner = Runner::new(
        Arc::new(store),
        Arc::new(environment),
        RunnerOptions {
            parallelism: usize::from(args.parallelism),
            advisory_max_age: args.advisory_max_age,
        },
    )
    .context("cannot set up the workflow runner")?;
    let scheduler = server::scheduler::start(runner.clone())
        .await
        .context("cannot start the workflow scheduler")?;
    let app = registry.router().merge(
        registry.protect(
            server::api::router(runner.clone(), own_registry.clone())
                .merge(server::dashboard::router(runner, own_registry)),
        ),
    );
    let shutdown = shutdown_signal()?;
    // One line, one write: whoever reads it may close the pipe afterwards.
    println!(
        "drydock registry listening on http://{address} (data in {}); API at /api/v1, dashboard at /",
        registry.config().data_dir.display()
    );
    let maintenance = registry.spawn_maintenance();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("the registry server failed")?;
    scheduler.abort();
    if let Some(task) = maintenance {
        task.abort();
    }
    Ok(())
}

pub async fn gc(args: GcArgs) -> anyhow::Result<()> {
    let config = registry::Config {
        gc_grace: args.grace,
        upload_expiry: args.upload_expiry,
        ..registry::Config::new(args.data.data_dir)
    };
    let report = open(config)
        .await?
        .gc(args.dry_run)
        .await
        .context("garbage collection failed")?;
    println!("{report}");
    Ok(())
}

/// Registers SIGINT and SIGTERM handlers now, so a signal that arrives as
/// soon as the server says it is listening already shuts it down cleanly,
/// and returns the future that resolves on the first of them.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down");
    })
}

/// Parses `500ms`, `30s`, `15m`, `1h`, `7d`, `1h 30m` (humantime's
/// spelling) or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration like 30s, 15m, 1h or 7d ({e})"))
}

/// Parses `4MiB`, `512KiB`, `1GiB`, `8MB` or a bare number of bytes, up to 1 EiB.
fn parse_size(text: &str) -> Result<u64, String> {
    let size = text
        .trim()
        .parse::<bytesize::ByteSize>()
        .map_err(|e| format!("{text:?} is not a size like 4MiB or 4194304 ({e})"))?;
    // bytesize saturates what overflows; nothing drydock sizes comes near 1 EiB.
    if size.as_u64() >= 1 << 60 {
        return Err(format!("{text:?} is too large"));
    }
    Ok(size.as_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("8MB"), Ok(8_000_000));
        assert!(parse_size("4XB").is_err());
        assert!(parse_size("99999999999GiB").is_err());
    }
}
