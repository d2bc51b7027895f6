//! `drydock workflow`: continuous-patching workflows on a drydock server,
//! the `az acr supply-chain workflow` equivalents (create, update, show,
//! delete, list, cancel-run).
//!
//! Reads the config file itself (ACR's file checks and messages, from
//! [`::workflow::Config::from_file`]) and sends its text; everything else is
//! validated, stored and run by the server (`drydock serve`), whose error
//! messages are printed as they are. The dry run is printed exactly as
//! [`::workflow::render_dry_run`] writes it.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use reqwest::Method;
use server::api::{
    CanceledRuns, CreateWorkflow, DEFAULT_WORKFLOW, UpdateWorkflow, WorkflowChange, WorkflowView,
};
use server::status::ImageStatus;

use crate::api::Api;
use crate::options::ServerArgs;
use crate::output::{Output, or_dash, print_json, table, time};

#[derive(clap::Args)]
pub struct WorkflowArgs {
    #[command(subcommand)]
    command: WorkflowCommand,
    /// `table` for people, `json` for scripts.
    #[arg(long, short, value_enum, default_value = "table", global = true)]
    output: Output,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(clap::Args)]
struct NameArg {
    /// The workflow's name.
    #[arg(long, short, default_value = DEFAULT_WORKFLOW)]
    name: String,
}

#[derive(clap::Subcommand)]
enum WorkflowCommand {
    /// Create a workflow: validate the config, list the images it matches
    /// (the dry run), store it and schedule it.
    Create {
        #[command(flatten)]
        name: NameArg,
        /// The config file (`continuouspatching.json`: version, tag-convention, repositories).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Run every N days of each month (`1d` … `30d`), at the time of day of creation (UTC).
        #[arg(long, value_name = "Nd")]
        schedule: String,
        /// Only list the images the config matches; store nothing.
        #[arg(long)]
        dry_run: bool,
        /// Run once now, then follow the schedule.
        #[arg(long)]
        run_immediately: bool,
        /// The registry holding the images (`host:port`); default: the server's own.
        #[arg(long, value_name = "HOST:PORT")]
        registry: Option<String>,
        /// Speak plain HTTP to --registry (loopback registries always get it).
        #[arg(long)]
        plain_http: bool,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Change a workflow's config and/or schedule.
    Update {
        #[command(flatten)]
        name: NameArg,
        /// A new config file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// A new schedule (`1d` … `30d`).
        #[arg(long, value_name = "Nd")]
        schedule: Option<String>,
        /// Only list the images the new config matches; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Run once now, then follow the schedule.
        #[arg(long)]
        run_immediately: bool,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Show a workflow: its tasks, schedule, next run and config.
    Show(NameArg),
    /// Delete a workflow: cancel its runs and remove it (patched images stay).
    Delete {
        #[command(flatten)]
        name: NameArg,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// List the images a workflow scanned and patched, with their latest runs.
    List {
        #[command(flatten)]
        name: NameArg,
        /// Only images whose latest run has this status
        /// (Queued, Running, Succeeded, Failed, Skipped, Canceled).
        #[arg(long, value_name = "STATUS", value_parser = parse_status)]
        run_status: Option<::workflow::RunStatus>,
    },
    /// Cancel a workflow's queued and running runs (the schedule continues).
    CancelRun(NameArg),
}

/// drydock's additions to ACR's rule (patch on any fixable OS-package vulnerability).
#[derive(clap::Args)]
struct PolicyArgs {
    /// Patch only when a fixable vulnerability of this severity or higher is
    /// found (LOW, MEDIUM, HIGH, CRITICAL; NONE removes the threshold).
    #[arg(long, value_name = "SEVERITY")]
    min_severity: Option<String>,
    /// Vulnerability ids that never call for a patch (comma-separated; on
    /// update, replaces the list; an empty value clears it).
    #[arg(long, value_name = "ID,…", value_delimiter = ',', num_args = 0..)]
    ignore: Option<Vec<String>>,
    /// How patches handle the upgraded packages' maintainer scripts: native
    /// (the default: known effects reproduced) or sandbox (the image's own
    /// apt and dpkg run them under bubblewrap; the server must run as root).
    #[arg(long, value_name = "MODE")]
    maintainer_scripts: Option<String>,
}

fn parse_status(text: &str) -> Result<::workflow::RunStatus, String> {
    text.parse()
        .map_err(|e: ::workflow::UnknownName| e.to_string())
}

/// The ignore list as given, blanks dropped.
fn ignore_list(ids: Option<Vec<String>>) -> Option<Vec<String>> {
    ids.map(|ids| {
        ids.into_iter()
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty())
            .collect()
    })
}

/// The config file's text, after ACR's checks of the file and its content;
/// a failed check reads as ACR's CLI words it (which name `--config`).
fn read_config(path: &Path) -> anyhow::Result<String> {
    if let Err(error) = ::workflow::Config::from_file(path) {
        return Err(acr_config_error(error));
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// ACR's message for a config file that fails its checks: the library
/// says what is wrong, ACR's CLI also points at `--config` and `--help`.
fn acr_config_error(error: ::workflow::ConfigError) -> anyhow::Error {
    use ::workflow::ConfigError;
    const SCHEMA: &str = "Use --help to see the schema of the config file.";
    match &error {
        ConfigError::Empty => anyhow::anyhow!("{error} {SCHEMA}"),
        ConfigError::InvalidJson { problem } => anyhow::anyhow!(
            "File used for --config cannot be parsed as a JSON file. {SCHEMA} Problem: {problem}."
        ),
        ConfigError::Schema(problem) => anyhow::anyhow!(
            "File used for --config is not a valid config JSON file. {SCHEMA} Problem: {problem}."
        ),
        _ => error.into(),
    }
}

/// ACR's refusal of both run modes at once, checked before the server is asked.
fn check_run_mode(dry_run: bool, run_immediately: bool) -> anyhow::Result<()> {
    if dry_run && run_immediately {
        anyhow::bail!(
            "The --dry-run and --run-immediately options cannot be used together. Use one or the other."
        );
    }
    Ok(())
}

pub async fn run(args: WorkflowArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.server)?;
    let output = args.output;
    match args.command {
        WorkflowCommand::Create {
            name: NameArg { name },
            config,
            schedule,
            dry_run,
            run_immediately,
            registry,
            plain_http,
            policy,
        } => {
            check_run_mode(dry_run, run_immediately)?;
            let request = CreateWorkflow {
                name,
                config: read_config(&config)?,
                schedule,
                dry_run,
                run_immediately,
                registry,
                plain_http: plain_http.then_some(true),
                min_severity: policy.min_severity,
                ignore: ignore_list(policy.ignore).unwrap_or_default(),
                maintainer_scripts: policy.maintainer_scripts,
            };
            let change: WorkflowChange = api
                .call(Method::POST, &["workflows"], Some(&request))
                .await?;
            print_change(&change, output, "created")
        }
        WorkflowCommand::Update {
            name: NameArg { name },
            config,
            schedule,
            dry_run,
            run_immediately,
            policy,
        } => {
            check_run_mode(dry_run, run_immediately)?;
            if config.is_none()
                && schedule.is_none()
                && policy.min_severity.is_none()
                && policy.ignore.is_none()
                && policy.maintainer_scripts.is_none()
            {
                anyhow::bail!(
                    "Provide at least one parameter to update: --schedule or --config \
                     (or --min-severity, --ignore, --maintainer-scripts)"
                );
            }
            let request = UpdateWorkflow {
                config: config.as_deref().map(read_config).transpose()?,
                schedule,
                dry_run,
                run_immediately,
                min_severity: policy.min_severity,
                ignore: ignore_list(policy.ignore),
                maintainer_scripts: policy.maintainer_scripts,
            };
            let change: WorkflowChange = api
                .call(Method::PATCH, &["workflows", &name], Some(&request))
                .await?;
            print_change(&change, output, "updated")
        }
        WorkflowCommand::Show(NameArg { name }) => {
            let workflow: WorkflowView = api.get(&["workflows", &name], &[]).await?;
            match output {
                Output::Json => print_json(&workflow),
                Output::Table => {
                    print!("{}", describe(&workflow));
                    Ok(())
                }
            }
        }
        WorkflowCommand::Delete {
            name: NameArg { name },
            yes,
        } => {
            if !yes && !confirm(&name)? {
                bail!("workflow {name} was not deleted");
            }
            let deleted: CanceledRuns = api
                .call(Method::DELETE, &["workflows", &name], None::<&()>)
                .await?;
            match output {
                Output::Json => print_json(&deleted),
                Output::Table => {
                    println!(
                        "Deleted workflow {}; {}. Patched images stay in the registry.",
                        deleted.workflow,
                        canceled_text(&deleted.canceled)
                    );
                    Ok(())
                }
            }
        }
        WorkflowCommand::List {
            name: NameArg { name },
            run_status,
        } => {
            let query: Vec<(&str, String)> = run_status
                .map(|status| ("run_status", status.to_string()))
                .into_iter()
                .collect();
            let images: Vec<ImageStatus> = api.get(&["workflows", &name, "images"], &query).await?;
            match output {
                Output::Json => print_json(&images),
                Output::Table if images.is_empty() => {
                    match run_status {
                        Some(status) => {
                            println!("No image of workflow {name} has status {status}.")
                        }
                        None => println!("Workflow {name} has not scanned any image yet."),
                    }
                    Ok(())
                }
                Output::Table => {
                    print!("{}", images_table(&images));
                    Ok(())
                }
            }
        }
        WorkflowCommand::CancelRun(NameArg { name }) => {
            let canceled: CanceledRuns = api
                .call(Method::POST, &["workflows", &name, "cancel"], None::<&()>)
                .await?;
            match output {
                Output::Json => print_json(&canceled),
                Output::Table => {
                    println!(
                        "Workflow {}: {}; the schedule continues.",
                        canceled.workflow,
                        canceled_text(&canceled.canceled)
                    );
                    Ok(())
                }
            }
        }
    }
}

fn print_change(change: &WorkflowChange, output: Output, done: &str) -> anyhow::Result<()> {
    if output == Output::Json {
        return print_json(change);
    }
    print!("{}", change.dry_run);
    if !change.saved {
        return Ok(());
    }
    println!(
        "Workflow {} {done}; schedule {}.",
        change.workflow, change.schedule
    );
    if let Some(run) = &change.run_id {
        println!(
            "Queued trigger run {run}; follow it with `drydock task list-runs` and `drydock task logs {run}`."
        );
    }
    if let Some(next) = change.next_run {
        println!("Next scheduled run: {}", time(next));
    }
    Ok(())
}

fn describe(workflow: &WorkflowView) -> String {
    let mut text = format!(
        "Name:          {}\n\
         Registry:      {}{}\n\
         Schedule:      {} (cron \"{}\", UTC)\n\
         Created:       {}\n\
         Updated:       {}\n\
         Last trigger:  {}\n\
         Next run:      {}\n\
         Tasks:\n",
        workflow.name,
        workflow.registry,
        if workflow.plain_http {
            " (plain HTTP)"
        } else {
            ""
        },
        workflow.schedule,
        workflow.cron,
        time(workflow.created_at),
        time(workflow.updated_at),
        workflow
            .last_trigger_at
            .map_or_else(|| "never".to_string(), time),
        time(workflow.next_run),
    );
    for task in &workflow.tasks {
        text += &format!("  {:<8} {}\n", task.name.as_str(), task.description);
    }
    text += &format!(
        "Patch when:    a fixable OS-package vulnerability{}{}\n",
        workflow
            .policy
            .min_severity
            .map(|s| format!(" of severity {} or higher", s.as_str()))
            .unwrap_or_default(),
        if workflow.policy.ignore.is_empty() {
            String::new()
        } else {
            format!(", ignoring {}", workflow.policy.ignore.join(", "))
        }
    );
    text += &format!(
        "Maintainer scripts: {}\n",
        match workflow.policy.maintainer_scripts {
            patch::patcher::ScriptMode::Native => "native (known effects reproduced)",
            patch::patcher::ScriptMode::Sandbox =>
                "sandbox (the image's own apt and dpkg under bubblewrap)",
        }
    );
    text += "Config:\n";
    text += &workflow.config;
    if !workflow.config.ends_with('\n') {
        text.push('\n');
    }
    text
}

fn images_table(images: &[ImageStatus]) -> String {
    let rows: Vec<Vec<String>> = images
        .iter()
        .map(|image| {
            vec![
                format!("{}:{}", image.repository, image.tag),
                image.status.to_string(),
                image.scan_status.to_string(),
                time(image.scan_date),
                image.scan_run_id.clone(),
                or_dash(image.patch_status),
                or_dash(image.patch_date.map(time)),
                or_dash(image.patch_run_id.as_deref()),
                or_dash(image.last_patched_image.as_deref()),
                or_dash(image.reason.as_deref()),
            ]
        })
        .collect();
    table(
        &[
            "IMAGE",
            "STATUS",
            "SCAN STATUS",
            "SCAN DATE",
            "SCAN RUN",
            "PATCH STATUS",
            "PATCH DATE",
            "PATCH RUN",
            "LAST PATCHED IMAGE",
            "REASON",
        ],
        &rows,
    )
}

fn canceled_text(canceled: &[String]) -> String {
    if canceled.is_empty() {
        "no run was queued or running".to_string()
    } else {
        format!(
            "canceled {} run(s): {}",
            canceled.len(),
            canceled.join(", ")
        )
    }
}

/// Asks on the terminal; refuses when there is none to ask on.
fn confirm(name: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "deleting workflow {name} needs confirmation and there is no terminal to ask on: pass --yes"
        );
    }
    eprint!(
        "Delete workflow {name}? Its queued and running runs are canceled; patched images stay. [y/N] "
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
