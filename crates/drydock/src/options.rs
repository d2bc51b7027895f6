//! Command-line options shared by several commands: registry access, the
//! drydock server to talk to, and where drydock keeps its data; and the
//! [`Environment`] they configure.

use std::path::PathBuf;

use anyhow::Context as _;
use environment::{Config, Environment, RegistryPolicy};
use oci::{Credentials, RegistryClient};

#[derive(clap::Args, Clone, Debug)]
pub struct RegistryArgs {
    /// Speak plain HTTP to every registry (registries on localhost/127.0.0.1 always get HTTP).
    #[arg(long, global = true)]
    pub plain_http: bool,
    /// Trust the certificate authorities in this PEM file besides the
    /// system's, for registries, mirrors and feeds (repeatable).
    #[arg(long, value_name = "FILE", global = true)]
    pub ca_certificate: Vec<PathBuf>,
}

impl RegistryArgs {
    /// The registry policy these flags ask for.
    pub fn policy(&self) -> RegistryPolicy {
        RegistryPolicy {
            plain_http: self.plain_http,
            ..RegistryPolicy::default()
        }
    }
}

/// The environment of a command: the data directory, the registry flags,
/// and whatever else the command sets in `configure`.
pub fn environment(
    data: &DataDirArgs,
    registry: &RegistryArgs,
    configure: impl FnOnce(&mut Config),
) -> anyhow::Result<Environment> {
    let mut config = Config {
        registry: registry.policy(),
        ca_certificates: registry.ca_certificate.clone(),
        ..Config::new(&data.data_dir)
    };
    configure(&mut config);
    Ok(Environment::new(config)?)
}

/// The drydock server the command talks to when no registry is named.
#[derive(clap::Args, Clone, Debug)]
pub struct ServerArgs {
    /// URL of the drydock server (embedded registry and API).
    #[arg(
        long,
        env = "DRYDOCK_URL",
        default_value = "http://127.0.0.1:5000",
        global = true
    )]
    pub server: String,
}

impl ServerArgs {
    /// The server's `host:port` as used in image references.
    pub fn registry_host(&self) -> anyhow::Result<String> {
        let url = reqwest_url(&self.server)?;
        let host = url
            .host_str()
            .with_context(|| format!("server URL {:?} has no host", self.server))?;
        Ok(match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        })
    }

    /// Whether the server URL asks for plain HTTP.
    pub fn is_plain_http(&self) -> anyhow::Result<bool> {
        Ok(reqwest_url(&self.server)?.scheme() == "http")
    }
}

fn reqwest_url(text: &str) -> anyhow::Result<url::Url> {
    url::Url::parse(text)
        .with_context(|| format!("{text:?} is not a URL (expected e.g. http://127.0.0.1:5000)"))
}

pub fn parse_credentials(text: &str) -> Result<Credentials, String> {
    Credentials::parse(text).ok_or_else(|| "expected USER:PASSWORD".to_string())
}

/// A registry client as `registry`'s flags say, with these credentials and upload chunks.
pub fn client(
    data: &DataDirArgs,
    registry: &RegistryArgs,
    credentials: Option<Credentials>,
    chunk_size: Option<usize>,
) -> anyhow::Result<RegistryClient> {
    let environment = environment(data, registry, |_| {})?;
    Ok(environment.registry_client(&RegistryPolicy {
        credentials,
        chunk_size,
        ..registry.policy()
    })?)
}

/// Where drydock keeps its data (registry storage, advisory database, caches).
#[derive(clap::Args, Clone, Debug)]
pub struct DataDirArgs {
    /// Directory holding drydock's data.
    #[arg(
        long,
        env = "DRYDOCK_DATA_DIR",
        default_value = ".drydock",
        global = true
    )]
    pub data_dir: PathBuf,
}
