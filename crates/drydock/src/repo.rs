//! `drydock repo list` and `drydock repo tags`: what a registry holds
//! (the `az acr repository list` / `show-tags` equivalents).

use anyhow::Context as _;
use oci::ImageReference;

use crate::options::{DataDirArgs, RegistryArgs, ServerArgs, client};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Json,
    Table,
}

#[derive(clap::Subcommand)]
pub enum RepoCommand {
    /// List the repositories of the registry.
    List {
        /// A registry host to list instead of the drydock server (e.g. ghcr.io).
        #[arg(long)]
        registry: Option<String>,
    },
    /// List the tags of a repository (`nginx`, or `host:port/path/name` for another registry).
    Tags { repository: String },
}

#[derive(clap::Args)]
pub struct RepoArgs {
    #[command(subcommand)]
    pub command: RepoCommand,
    #[arg(long, short, value_enum, default_value = "json", global = true)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub data: DataDirArgs,
}

/// `nginx` lives on the drydock server; `ghcr.io/x/y` names its own registry.
fn repository_reference(repository: &str, server_host: &str) -> anyhow::Result<ImageReference> {
    let first = repository.split('/').next().unwrap_or_default();
    let names_registry = repository.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost");
    let text = if names_registry {
        repository.to_string()
    } else {
        format!("{server_host}/{repository}")
    };
    text.parse().with_context(|| {
        format!("{repository:?} is not a repository name (lowercase letters, digits, . _ - and /)")
    })
}

fn print(items: &[String], output: OutputFormat, heading: &str) -> anyhow::Result<()> {
    match output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(items)?),
        OutputFormat::Table => {
            println!(
                "{heading}\n{}",
                "-".repeat(
                    heading
                        .len()
                        .max(items.iter().map(String::len).max().unwrap_or(0))
                )
            );
            for item in items {
                println!("{item}");
            }
        }
    }
    Ok(())
}

pub async fn run(args: RepoArgs) -> anyhow::Result<()> {
    let server_host = args.server.registry_host()?;
    let registry = RegistryArgs {
        plain_http: args.registry.plain_http || args.server.is_plain_http()?,
        ..args.registry.clone()
    };
    let client = client(&args.data, &registry, None, None)?;
    match args.command {
        RepoCommand::List { registry } => {
            let registry = registry.unwrap_or(server_host);
            let mut repositories = client
                .catalog(&registry)
                .await
                .with_context(|| format!("listing the repositories of {registry}"))?;
            repositories.sort();
            print(&repositories, args.output, "Repository")
        }
        RepoCommand::Tags { repository } => {
            let image = repository_reference(&repository, &server_host)?;
            let mut tags = client.list_tags(&image).await.with_context(|| {
                format!(
                    "listing the tags of {}/{}",
                    image.registry(),
                    image.repository()
                )
            })?;
            tags.sort();
            print(&tags, args.output, "Tag")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::repository_reference;

    #[test]
    fn repositories_default_to_the_server() {
        let local = repository_reference("nginx", "127.0.0.1:5000").unwrap();
        assert_eq!(
            (local.registry(), local.repository()),
            ("127.0.0.1:5000", "nginx")
        );
        let nested = repository_reference("team/app", "127.0.0.1:5000").unwrap();
        assert_eq!(nested.registry(), "127.0.0.1:5000");
        let remote = repository_reference("ghcr.io/org/app", "127.0.0.1:5000").unwrap();
        assert_eq!(
            (remote.registry(), remote.repository()),
            ("ghcr.io", "org/app")
        );
        assert!(repository_reference("Bad", "127.0.0.1:5000").is_err());
    }
}
