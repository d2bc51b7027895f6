//! The crate's error type: what went wrong, with which image, blob or file.
//! Each variant names the thing that failed; the underlying failure (an I/O
//! error, an HTTP error, a parse error) is its `source`, printed once by
//! whoever prints the chain. Depends only on the leaf modules whose own
//! errors it rolls up.

use std::path::PathBuf;

use crate::digest::{Digest, VerifyError};
use crate::manifest::ManifestError;
use crate::reference::ReferenceError;

/// One error as a registry reports it in its `{"errors":[…]}` body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RegistryErrorBody {
    /// The distribution spec's code, e.g. `MANIFEST_UNKNOWN`.
    pub code: String,
    /// The registry's own words, possibly empty.
    #[serde(default)]
    pub message: String,
}

/// Why an operation of this crate failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An image reference or a repository name or tag is malformed.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A manifest or index cannot be parsed or has an unsupported media type.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Content did not hash to its digest or had the wrong size.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The HTTP client could not be set up (TLS configuration).
    #[error("cannot set up the HTTP client")]
    HttpClient(#[source] reqwest::Error),
    /// A request could not be sent or its answer not read (connection, TLS, timeout).
    #[error("request to {url} failed")]
    Http {
        /// The URL requested.
        url: String,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with an unexpected status, with its error body's codes.
    #[error("{operation} at {url}: HTTP {status}{}", format_registry_errors(.errors))]
    Registry {
        /// What was being done, e.g. "pushing a manifest".
        operation: &'static str,
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The errors the registry's body listed.
        errors: Vec<RegistryErrorBody>,
    },
    /// The registry's authentication handshake failed.
    #[error("authentication with {registry} failed")]
    Auth {
        /// The registry, as an image reference names it.
        registry: String,
        /// What failed.
        #[source]
        reason: AuthError,
    },
    /// The credentials for a registry cannot be read from where container tools keep them.
    #[error("credentials for {registry}")]
    Credentials {
        /// The registry, as an image reference names it.
        registry: String,
        /// What is wrong.
        #[source]
        reason: CredentialsError,
    },
    /// What was asked for does not exist: a manifest, a blob, a repository
    /// (its tag list) or a registry's catalog answered 404, or a layout has
    /// no such blob. Only for absence: a malformed answer is another variant.
    #[error("{0} not found")]
    NotFound(String),
    /// A URL built from a registry host and repository, or one a registry
    /// sent (an upload's `Location`), does not parse.
    #[error("invalid URL {url:?}")]
    InvalidUrl {
        /// The text that should have been a URL.
        url: String,
        /// Why it is not one.
        #[source]
        source: url::ParseError,
    },
    /// A tag list or catalog page is not a JSON object with a list of names.
    #[error("the listing at {url} is not a JSON object with a list of names")]
    MalformedListing {
        /// The page's URL.
        url: String,
        /// The JSON error, when the body is not JSON at all.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// A blob is larger than what this kind of content may be.
    #[error(
        "blob {digest} is {size} bytes, more than the {limit}-byte limit for this kind of content"
    )]
    TooLarge {
        /// The blob.
        digest: Digest,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// An OCI image layout cannot be used as asked.
    #[error("OCI layout {}", path.display())]
    Layout {
        /// The layout's directory.
        path: PathBuf,
        /// What is wrong.
        #[source]
        reason: LayoutError,
    },
    /// A `docker save` archive cannot be read or converted.
    #[error("docker archive {}", path.display())]
    Archive {
        /// The archive file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        reason: ArchiveError,
    },
    /// A file or directory cannot be read, written, created or renamed.
    #[error("{}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },
}

/// Why a registry's authentication handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The registry answered 401 without a challenge this client can answer.
    #[error("HTTP 401 without a usable WWW-Authenticate challenge")]
    NoChallenge,
    /// The registry still answered 401 after credentials or a token were sent.
    #[error(
        "the registry refused the credentials (HTTP 401); check those in ~/.docker/config.json or the ones given"
    )]
    Refused,
    /// The registry asks for basic auth and no credentials are known for it.
    #[error(
        "the registry wants a user name and password; log in (docker login / podman login) or give credentials"
    )]
    CredentialsRequired,
    /// The challenge's token realm is not a URL.
    #[error("token realm {realm:?} is not a URL")]
    Realm {
        /// The realm as the challenge gave it.
        realm: String,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
    /// The token service answered with an error status.
    #[error("token service {realm} answered HTTP {status}; {}", if *.with_credentials { "check the credentials" } else { "this registry may need credentials" })]
    TokenRefused {
        /// The token service's URL.
        realm: String,
        /// Its HTTP status.
        status: u16,
        /// Whether credentials were sent.
        with_credentials: bool,
    },
    /// The token service answered without a token.
    #[error("token service {realm} answered without a token")]
    NoToken {
        /// The token service's URL.
        realm: String,
    },
}

/// Why a registry's credentials cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// An auth file's `auth` field is not base64 of `USER:PASSWORD`.
    #[error("the `auth` field is not base64 of USER:PASSWORD")]
    BadAuthField,
    /// An auth file (Docker's `config.json`, containers' `auth.json`) is not valid.
    #[error("{} is not a valid auth file", path.display())]
    BadAuthFile {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A credential helper could not be run or talked to.
    #[error("cannot run credential helper {program}")]
    HelperIo {
        /// The helper program, `docker-credential-<name>`.
        program: String,
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },
    /// A credential helper exited with an error.
    #[error("{program} failed: {output}")]
    HelperFailed {
        /// The helper program.
        program: String,
        /// What it printed.
        output: String,
    },
    /// A credential helper printed something other than its JSON answer.
    #[error("{program} printed an unexpected answer")]
    HelperAnswer {
        /// The helper program.
        program: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A credential helper gave an identity token, which is not supported.
    #[error(
        "{program} returned an identity token, which drydock does not support yet; log in with a user name and password or token"
    )]
    IdentityToken {
        /// The helper program.
        program: String,
    },
}

/// Why an OCI image layout cannot be used as asked.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The directory has no readable `oci-layout` marker.
    #[error("not an OCI image layout (cannot read oci-layout)")]
    NotALayout(#[source] std::io::Error),
    /// The `oci-layout` marker is not JSON.
    #[error("oci-layout is not JSON")]
    MarkerNotJson(#[source] serde_json::Error),
    /// The `oci-layout` marker declares another version.
    #[error("oci-layout does not declare imageLayoutVersion 1.0.0")]
    MarkerVersion,
    /// `index.json` is not an image index.
    #[error("index.json is not a valid image index")]
    InvalidIndex(#[source] serde_json::Error),
    /// `index.json` cannot be encoded.
    #[error("cannot encode index.json")]
    EncodeIndex(#[source] serde_json::Error),
    /// No entry of `index.json` has this tag.
    #[error("has no image tagged {tag:?} (tags: {})", .tags.join(", "))]
    NoSuchTag {
        /// The tag asked for.
        tag: String,
        /// The tags it has.
        tags: Vec<String>,
    },
    /// No tag was given and the layout holds more than one image.
    #[error("holds {count} images; name one as {location}:TAG (tags: {})", .tags.join(", "))]
    Ambiguous {
        /// How many entries `index.json` has.
        count: usize,
        /// The layout as a location, `oci:DIR`.
        location: String,
        /// The tags it has.
        tags: Vec<String>,
    },
    /// A digest cannot be written into an index entry.
    #[error("digest {digest} cannot be recorded")]
    Digest {
        /// The digest.
        digest: Digest,
        /// What the OCI spec types said.
        #[source]
        source: oci_spec::OciSpecError,
    },
    /// An empty index cannot be built.
    #[error("cannot build an empty index")]
    EmptyIndex(#[source] oci_spec::OciSpecError),
    /// The task that locks `index.json` panicked or was cancelled.
    #[error("locking index.json did not finish")]
    Lock(#[source] tokio::task::JoinError),
}

/// Why a `docker save` archive cannot be read or converted.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The file is not a tar archive.
    #[error("not a tar archive")]
    NotTar(#[source] std::io::Error),
    /// A tar entry cannot be read.
    #[error("unreadable tar entry")]
    Entry(#[source] std::io::Error),
    /// A JSON member cannot be read.
    #[error("cannot read {name}")]
    Member {
        /// The member's name.
        name: String,
        /// What the reader reported.
        #[source]
        source: std::io::Error,
    },
    /// The task reading the archive panicked or was cancelled.
    #[error("reading the archive did not finish")]
    Task(#[source] tokio::task::JoinError),
    /// The archive has no `manifest.json`.
    #[error("has no manifest.json; is it a `docker save` archive?")]
    NoManifest,
    /// `manifest.json` is not what `docker save` writes.
    #[error("manifest.json is not valid")]
    BadManifest(#[source] serde_json::Error),
    /// `manifest.json` lists no image.
    #[error("manifest.json lists no image")]
    NoImage,
    /// The image's config is not in the archive.
    #[error("config {0} is missing")]
    MissingConfig(String),
    /// A layer the image lists is not in the archive.
    #[error("layer {0} is missing")]
    MissingLayer(String),
    /// The converted manifest cannot be encoded.
    #[error("cannot encode the image manifest")]
    Encode(#[source] serde_json::Error),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

fn format_registry_errors(errors: &[RegistryErrorBody]) -> String {
    errors
        .iter()
        .map(|e| {
            if e.message.is_empty() {
                format!(" {}", e.code)
            } else {
                format!(" {}: {}", e.code, e.message)
            }
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// A result whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `error` and each of its causes on one line, joined by `: `, as the CLI
/// prints a chain: for the places that keep a failure as text (a log line,
/// a reason recorded in a run or an outcome, an HTTP error body).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}
