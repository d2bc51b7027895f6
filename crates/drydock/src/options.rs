//! Command-line options shared by several commands: registry access, the
//! drydock server to talk to, and where drydock keeps its data.

use std::path::PathBuf;

use anyhow::Context as _;
use oci::{ClientOptions, Credentials, RegistryClient};

#[derive(clap::Args, Clone, Debug)]
pub struct RegistryArgs {
    /// Speak plain HTTP to every registry (registries on localhost/127.0.0.1 always get HTTP).
    #[arg(long, global = true)]
    pub plain_http: bool,
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

pub fn client(
    plain_http: bool,
    credentials: Option<Credentials>,
    chunk_size: Option<usize>,
) -> anyhow::Result<RegistryClient> {
    Ok(RegistryClient::new(ClientOptions {
        plain_http,
        credentials,
        chunk_size,
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

impl DataDirArgs {
    /// The advisory database: `explicit` when given, else `<data dir>/advisories.db`.
    pub fn advisory_db(&self, explicit: Option<PathBuf>) -> PathBuf {
        explicit.unwrap_or_else(|| self.data_dir.join("advisories.db"))
    }
}
