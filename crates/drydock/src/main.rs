//! The `drydock` command line: parses arguments, calls the library crates,
//! and presents their results. No registry, scanning or patching logic lives here.

mod api;
mod db;
mod hints;
mod import;
mod options;
mod output;
mod patch;
mod repo;
mod scan;
mod serve;
mod task;
mod workflow;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "drydock",
    version,
    about = "Continuous patching for container registries"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the embedded OCI registry, the workflow API, the scheduler and the dashboard.
    Serve(serve::ServeArgs),
    /// Collect garbage in the embedded registry's storage.
    Gc(serve::GcArgs),
    /// Copy an image (or a whole multi-platform index) between registries and OCI layouts.
    Import(import::ImportArgs),
    /// List repositories and tags.
    Repo(repo::RepoArgs),
    /// Keep the local advisory database: update (online), import (files), status.
    Db(db::DbArgs),
    /// Report the OS-package vulnerabilities of an image.
    Scan(scan::ScanArgs),
    /// Upgrade an image's vulnerable OS packages in one new layer, natively.
    Patch(patch::PatchArgs),
    /// Continuous-patching workflows on the drydock server: create, update, show, delete, list, cancel-run.
    Workflow(workflow::WorkflowArgs),
    /// The runs of workflows' tasks (trigger, scan, patch): list-runs, logs.
    Task(task::TaskArgs),
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            if let Some(hint) = hints::for_error(&error) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DRYDOCK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    let outcome = runtime.block_on(async move {
        let done = match cli.command {
            Command::Serve(args) => serve::serve(args).await,
            Command::Gc(args) => serve::gc(args).await,
            Command::Import(args) => import::run(args).await,
            Command::Repo(args) => repo::run(args).await,
            Command::Db(args) => db::run(args).await,
            Command::Scan(args) => return scan::run(args).await,
            Command::Patch(args) => patch::run(args).await,
            Command::Workflow(args) => workflow::run(args).await,
            Command::Task(args) => task::run(args).await,
        };
        done.map(|()| ExitCode::SUCCESS)
    });
    // `serve` may stop with workflow runs still working on blocking
    // threads; they are not waited for (the next start marks them failed).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    outcome
}
