//! `drydock db update|import|status`: the local advisory database. Fetches
//! or reads feeds and stores them through the `advisory` crate, and shows
//! what is stored; no parsing or storage logic lives here.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use advisory::feeds::fetch::DEFAULT_ALPINE_RELEASES;
use advisory::{FeedKind, FeedStatus, Source, Store};
use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args)]
pub struct DbArgs {
    #[command(subcommand)]
    pub command: DbCommand,
    /// The advisory database [default: <data dir>/advisories.db].
    #[arg(long, value_name = "PATH", global = true)]
    pub db: Option<PathBuf>,
    #[command(flatten)]
    pub data: crate::options::DataDirArgs,
    #[command(flatten)]
    pub registry: crate::options::RegistryArgs,
}

#[derive(clap::Subcommand)]
pub enum DbCommand {
    /// Fetch the online feeds (every one unless --source is given) and store them.
    Update {
        /// A feed to fetch: tracker, osv-debian, osv-ubuntu, osv-alpine or secdb (repeatable).
        #[arg(long = "source", value_name = "SOURCE")]
        sources: Vec<Source>,
        /// Fetch SOURCE from under BASE_URL instead of its canonical host
        /// (repeatable), e.g. tracker=http://mirror.example/tracker.
        #[arg(long = "mirror", value_name = "SOURCE=BASE_URL", value_parser = parse_mirror)]
        mirrors: Vec<(Source, String)>,
        /// An Alpine branch whose secdb to fetch (repeatable) [default: 3.19 to 3.23].
        #[arg(long = "alpine-release", value_name = "BRANCH")]
        alpine_releases: Vec<String>,
    },
    /// Load feed files, for sites without internet: Debian tracker JSON,
    /// OSV all.zip, OSV record or directory of records, Alpine secdb JSON.
    Import {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The files' format; `auto` tells it from their content.
        #[arg(long, value_enum, default_value = "auto")]
        kind: KindArg,
    },
    /// Show the stored feeds: where they came from and how old they are.
    Status {
        #[arg(long, short, value_enum, default_value = "table")]
        output: OutputFormat,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindArg {
    Auto,
    Tracker,
    Osv,
    Secdb,
}

impl KindArg {
    fn kind(self) -> Option<FeedKind> {
        match self {
            KindArg::Auto => None,
            KindArg::Tracker => Some(FeedKind::Tracker),
            KindArg::Osv => Some(FeedKind::Osv),
            KindArg::Secdb => Some(FeedKind::Secdb),
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
}

fn parse_mirror(text: &str) -> Result<(Source, String), String> {
    let (source, base) = text.split_once('=').ok_or_else(|| {
        "expected SOURCE=BASE_URL, e.g. tracker=http://mirror/tracker".to_string()
    })?;
    let url = url::Url::parse(base).map_err(|e| format!("{base:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{base:?} is not an http(s) URL"));
    }
    let source = source
        .parse()
        .map_err(|e: advisory::UnknownName| e.to_string())?;
    Ok((source, base.to_string()))
}

pub async fn run(args: DbArgs) -> anyhow::Result<()> {
    let environment = crate::options::environment(&args.data, &args.registry, |config| {
        config.advisory_db = args.db.clone();
    })?;
    let path = environment.advisory_db();
    match args.command {
        DbCommand::Update {
            sources,
            mirrors,
            alpine_releases,
        } => update(&environment, sources, mirrors, alpine_releases).await,
        DbCommand::Import { files, kind } => import(&path, &files, kind.kind()),
        DbCommand::Status { output } => status(&path, output),
    }
}

fn bar(message: String) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn report(stored: &[FeedStatus]) {
    for feed in stored {
        println!(
            "{}: {} advisories from {}",
            feed.source.name, feed.advisories, feed.source.location
        );
    }
}

async fn update(
    environment: &environment::Environment,
    sources: Vec<Source>,
    mirrors: Vec<(Source, String)>,
    alpine_releases: Vec<String>,
) -> anyhow::Result<()> {
    let mut sources = if sources.is_empty() {
        Source::ALL.to_vec()
    } else {
        sources
    };
    sources.sort();
    sources.dedup();
    let alpine_releases = if alpine_releases.is_empty() {
        DEFAULT_ALPINE_RELEASES.map(str::to_string).to_vec()
    } else {
        alpine_releases
    };
    let path = environment.advisory_db();
    let fetcher = environment.advisory_fetcher(
        mirrors.into_iter().collect::<BTreeMap<_, _>>(),
        alpine_releases,
    )?;
    let mut store = environment.advisory_store_for_update()?;
    let mut failed = Vec::new();
    for source in &sources {
        let bar = bar(format!("fetching {source}"));
        let progress = |url: &str, received: u64, total: Option<u64>| {
            bar.set_message(format!("fetching {url}"));
            if let Some(total) = total {
                bar.set_length(total);
            }
            bar.set_position(received);
        };
        let fetched = fetcher.fetch(*source, &progress).await;
        bar.set_message(format!("storing {source}"));
        let stored = fetched.and_then(|loaded| store.replace_feeds(&loaded));
        bar.finish_and_clear();
        match stored {
            Ok(stored) => report(&stored),
            Err(error) => {
                eprintln!("error: {source}: {:#}", anyhow::Error::from(error));
                failed.push(source.name());
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} feeds could not be updated ({}); the others were stored in {}",
            failed.len(),
            sources.len(),
            failed.join(", "),
            path.display()
        );
    }
    Ok(())
}

fn import(path: &Path, files: &[PathBuf], kind: Option<FeedKind>) -> anyhow::Result<()> {
    let bar = bar(format!("reading {} input(s)", files.len()));
    let loaded = advisory::feeds::load(files, kind);
    bar.set_message(format!("storing into {}", path.display()));
    let stored = loaded.and_then(|loaded| Store::open(path)?.replace_feeds(&loaded));
    bar.finish_and_clear();
    let stored = stored.context("nothing was imported")?;
    report(&stored);
    Ok(())
}

fn status(path: &Path, output: OutputFormat) -> anyhow::Result<()> {
    let feeds = Store::open_existing(path)?.feeds()?;
    let now = chrono::Utc::now().timestamp();
    // The age of the data: its own modification time where known (a file's), else when it was read.
    let age = |feed: &FeedStatus| {
        (now - feed.source.modified_at.unwrap_or(feed.source.fetched_at)).max(0)
    };
    match output {
        OutputFormat::Json => {
            let feeds = feeds
                .iter()
                .map(|feed| {
                    let mut value = serde_json::to_value(feed)?;
                    value["fetched"] = rfc3339(feed.source.fetched_at).into();
                    value["age_seconds"] = age(feed).into();
                    Ok(value)
                })
                .collect::<serde_json::Result<Vec<_>>>()?;
            let status = serde_json::json!({
                "database": path.display().to_string(),
                "schema_version": advisory::store::SCHEMA_VERSION,
                "feeds": feeds,
            });
            println!("{}", serde_json::to_string_pretty(&status)?);
        }
        OutputFormat::Table => {
            if feeds.is_empty() {
                println!(
                    "No feeds in {}; run `drydock db update` or `drydock db import FILE…`.",
                    path.display()
                );
                return Ok(());
            }
            let rows: Vec<[String; 6]> = feeds
                .iter()
                .map(|feed| {
                    [
                        feed.source.name.clone(),
                        feed.source.kind.as_str().to_string(),
                        feed.advisories.to_string(),
                        rfc3339(feed.source.fetched_at),
                        human_age(age(feed)),
                        feed.source.location.clone(),
                    ]
                })
                .collect();
            let heading =
                ["FEED", "KIND", "ADVISORIES", "FETCHED", "AGE", "SOURCE"].map(String::from);
            let widths: Vec<usize> = (0..6)
                .map(|column| {
                    std::iter::once(&heading)
                        .chain(&rows)
                        .map(|row| row[column].chars().count())
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            for row in std::iter::once(&heading).chain(&rows) {
                let cells: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(cell, width)| format!("{cell:<width$}"))
                    .collect();
                println!("{}", cells.join("  ").trim_end());
            }
        }
    }
    Ok(())
}

fn human_age(seconds: i64) -> String {
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3_600 % 24, seconds / 60 % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => "just now".to_string(),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// `2024-05-01T12:00:00Z` for Unix seconds (UTC).
fn rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("@{seconds}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_ages() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_714_564_800), "2024-05-01T12:00:00Z");
        assert_eq!(human_age(30), "just now");
        assert_eq!(human_age(125), "2m");
        assert_eq!(human_age(3 * 3_600 + 60), "3h 1m");
        assert_eq!(human_age(2 * 86_400 + 5 * 3_600), "2d 5h");
    }

    #[test]
    fn mirrors() {
        assert_eq!(
            parse_mirror("osv-debian=http://127.0.0.1:8080/osv"),
            Ok((Source::OsvDebian, "http://127.0.0.1:8080/osv".to_string()))
        );
        assert!(
            parse_mirror("tracker")
                .unwrap_err()
                .contains("SOURCE=BASE_URL")
        );
        assert!(
            parse_mirror("nvd=http://x")
                .unwrap_err()
                .contains("unknown feed source")
        );
        assert!(
            parse_mirror("tracker=ftp://x")
                .unwrap_err()
                .contains("http(s)")
        );
    }
}
