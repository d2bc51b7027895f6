//! `drydock task`: the runs of workflows' tasks (trigger, scan, patch) on a
//! drydock server, the `az acr task list-runs` / `az acr task logs`
//! equivalents. Presents what the server stores; decides nothing.

use server::api::RunView;

use crate::api::Api;
use crate::options::ServerArgs;
use crate::output::{Output, or_dash, print_json, table, time};

#[derive(clap::Args)]
pub struct TaskArgs {
    #[command(subcommand)]
    command: TaskCommand,
    /// `table` for people, `json` for scripts.
    #[arg(long, short, value_enum, default_value = "table", global = true)]
    output: Output,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(clap::Subcommand)]
enum TaskCommand {
    /// List runs, newest first.
    ListRuns {
        /// Only runs of this task: trigger, scan or patch.
        #[arg(long, short, value_name = "TASK", value_parser = parse::<::workflow::TaskKind>)]
        name: Option<::workflow::TaskKind>,
        /// Only runs of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only runs with this status (Queued, Running, Succeeded, Failed, Skipped, Canceled).
        #[arg(long, value_name = "STATUS", value_parser = parse::<::workflow::RunStatus>)]
        run_status: Option<::workflow::RunStatus>,
        /// How many of the newest runs to list.
        #[arg(long, default_value_t = 15)]
        top: usize,
    },
    /// Print a run's log.
    Logs {
        /// The run's id (`drydock task list-runs` shows them).
        run_id: String,
    },
}

fn parse<T>(text: &str) -> Result<T, String>
where
    T: std::str::FromStr<Err = ::workflow::UnknownName>,
{
    text.parse()
        .map_err(|e: ::workflow::UnknownName| e.to_string())
}

pub async fn run(args: TaskArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.server)?;
    match args.command {
        TaskCommand::ListRuns {
            name,
            workflow,
            run_status,
            top,
        } => {
            let mut query = vec![("limit", top.to_string())];
            query.extend(name.map(|kind| ("kind", kind.to_string())));
            query.extend(workflow.map(|workflow| ("workflow", workflow)));
            query.extend(run_status.map(|status| ("status", status.to_string())));
            let runs: Vec<RunView> = api.get(&["runs"], &query).await?;
            match args.output {
                Output::Json => print_json(&runs),
                Output::Table if runs.is_empty() => {
                    println!("No runs.");
                    Ok(())
                }
                Output::Table => {
                    print!("{}", runs_table(&runs));
                    Ok(())
                }
            }
        }
        TaskCommand::Logs { run_id } => {
            let log = api.get_text(&["runs", &run_id, "log"]).await?;
            if log.is_empty() {
                let run: RunView = api.get(&["runs", &run_id], &[]).await?;
                eprintln!(
                    "Run {run_id} has written no log yet (it is {}).",
                    run.status
                );
            }
            print!("{log}");
            Ok(())
        }
    }
}

fn duration(run: &RunView) -> String {
    match (run.started_at, run.finished_at) {
        (Some(started), Some(finished)) => format!(
            "{:.1}s",
            (finished - started).num_milliseconds() as f64 / 1000.0
        ),
        _ => "-".to_string(),
    }
}

fn runs_table(runs: &[RunView]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            vec![
                run.id.clone(),
                run.kind.to_string(),
                run.workflow.clone(),
                run.status.to_string(),
                or_dash(run.patched_image.as_deref().or(run.image.as_deref())),
                or_dash(run.started_at.map(time)),
                duration(run),
                or_dash(run.reason.as_deref()),
            ]
        })
        .collect();
    table(
        &[
            "RUN ID", "TASK", "WORKFLOW", "STATUS", "IMAGE", "STARTED", "DURATION", "RESULT",
        ],
        &rows,
    )
}
