//! Shared harness for the `registry_*` integration tests: starts the real
//! `drydock serve` binary on a free loopback port with its own data directory
//! and offers small HTTP helpers for pushing content.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use oci::Digest;
use reqwest::{Client, Response, StatusCode};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// A running `drydock serve`; killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    pub address: String,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts on a fresh temporary data directory.
    pub fn start(extra_args: &[&str]) -> Server {
        let temp = tempfile::tempdir().expect("create temp data dir");
        let mut server = Server::start_in(temp.path(), extra_args);
        server._temp = Some(temp);
        server
    }

    /// Starts on `data_dir`, which outlives the server (for restarts).
    pub fn start_in(data_dir: &Path, extra_args: &[&str]) -> Server {
        Server::start_listening(data_dir, "127.0.0.1:0", extra_args)
    }

    /// Starts on `data_dir` listening on `listen`, e.g. the address of a
    /// server that was stopped, to come back where clients expect it.
    pub fn start_listening(data_dir: &Path, listen: &str, extra_args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_drydock"))
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .args(extra_args)
            .env("DRYDOCK_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start drydock serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read serve's first line");
        let address = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("serve did not print where it listens: {line:?}"))
            .to_string();
        Server {
            child,
            base: format!("http://{address}"),
            address,
            data_dir: data_dir.to_path_buf(),
            _temp: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().build().expect("build http client")
}

pub fn sha256(bytes: &[u8]) -> String {
    Digest::sha256_of(bytes).to_string()
}

/// The `code` of the first error in a spec error body.
pub async fn error_code(response: Response) -> String {
    let body: serde_json::Value = response.json().await.expect("error body is JSON");
    body["errors"][0]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
        .to_string()
}

pub fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("response has no {name} header"))
        .to_string()
}

/// Fetches a blob and asserts it is served with exactly these bytes.
pub async fn assert_blob(
    server: &Server,
    client: &Client,
    repo: &str,
    digest: &str,
    expected: &[u8],
) {
    let response = client
        .get(server.url(&format!("/v2/{repo}/blobs/{digest}")))
        .send()
        .await
        .expect("get blob");
    assert_eq!(response.status(), StatusCode::OK, "blob {digest} in {repo}");
    assert_eq!(
        response.bytes().await.expect("blob body").as_ref(),
        expected
    );
}

/// Pushes a blob monolithically and returns its digest.
pub async fn push_blob(server: &Server, client: &Client, repo: &str, content: &[u8]) -> String {
    let digest = sha256(content);
    let response = client
        .post(server.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
        .header("Content-Type", "application/octet-stream")
        .body(content.to_vec())
        .send()
        .await
        .expect("push blob");
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "pushing blob {digest}"
    );
    digest
}

/// An image manifest document for a config and layers.
pub fn image_manifest(
    media_type: &str,
    config: (&str, &[u8]),
    layers: &[(&str, &[u8])],
) -> Vec<u8> {
    let descriptor = |mt: &str, content: &[u8]| serde_json::json!({"mediaType": mt, "digest": sha256(content), "size": content.len()});
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(config.0, config.1),
        "layers": layers.iter().map(|(mt, c)| descriptor(mt, c)).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&manifest).expect("serialise manifest")
}

pub async fn put_manifest(
    server: &Server,
    client: &Client,
    repo: &str,
    reference: &str,
    media_type: &str,
    content: &[u8],
) -> Response {
    client
        .put(server.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("Content-Type", media_type)
        .body(content.to_vec())
        .send()
        .await
        .expect("put manifest")
}

/// Pushes a config and one layer plus an OCI manifest tagged `tag`; returns
/// (manifest bytes, manifest digest, layer digest).
pub async fn push_image(
    server: &Server,
    client: &Client,
    repo: &str,
    tag: &str,
    seed: &str,
) -> (Vec<u8>, String, String) {
    let config = format!("{{\"seed\":\"{seed}\"}}").into_bytes();
    let layer = format!("layer for {seed}").into_bytes();
    push_blob(server, client, repo, &config).await;
    let layer_digest = push_blob(server, client, repo, &layer).await;
    let manifest = image_manifest(OCI_MANIFEST, (OCI_CONFIG, &config), &[(OCI_LAYER, &layer)]);
    let response = put_manifest(server, client, repo, tag, OCI_MANIFEST, &manifest).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "pushing manifest {repo}:{tag}"
    );
    let digest = sha256(&manifest);
    (manifest, digest, layer_digest)
}

/// Runs `drydock` with `args` and returns its stdout; panics on failure.
pub fn drydock(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_drydock"))
        .args(args)
        .env("DRYDOCK_LOG", "warn")
        .output()
        .expect("run drydock");
    assert!(
        output.status.success(),
        "drydock {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Fails loudly when an external tool the test needs is missing.
pub fn require_tool(name: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is required for this test but is not installed; run the repository's install script (scripts/) to provide it"
    );
}

/// Sends a raw request over TCP (for requests an HTTP client would normalise
/// or refuse to send, like `..` paths) and returns everything the server
/// answered until it closed the connection.
pub fn raw_request(server: &Server, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(&server.address).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("set timeout");
    stream.write_all(request).expect("send raw request");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// Sends `request` (e.g. a body shorter than its Content-Length) and hangs
/// up, as a client that dies mid-upload does; waits until the server has
/// noticed (closed its side).
pub fn send_and_hang_up(server: &Server, request: &[u8]) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(&server.address).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("set timeout");
    stream.write_all(request).expect("send raw request");
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let _ = stream.read_to_end(&mut Vec::new());
}
