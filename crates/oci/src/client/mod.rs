//! A client for OCI Distribution registries.
//!
//! Owns speaking the distribution API: manifests, blobs (monolithic and
//! chunked uploads, cross-repository mounts), tag and catalog listing with
//! paging, and referrers with the tag-schema fallback, under anonymous,
//! basic or bearer-token auth. Registries on loopback are spoken to over
//! plain HTTP, any other over HTTPS unless `plain_http` is set.
//!
//! Every manifest and blob it returns is checked against its digest; a blob
//! stream yields an error instead of its end when the content does not match.

mod auth;
mod credentials;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Once};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http::StatusCode;
use http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LINK, LOCATION,
    WWW_AUTHENTICATE,
};
use oci_spec::image::{Descriptor, ImageIndex};
use reqwest::{RequestBuilder, Response, Url};

pub use credentials::Credentials;

use crate::digest::{Digest, Verifier};
use crate::error::{AuthError, Error, RegistryErrorBody, Result};
use crate::manifest::{ContentRef, media_type};
use crate::reference::{ImageReference, is_loopback_host};
use auth::{AuthCache, Challenge};

/// Manifests larger than this are refused when read (the spec's floor is 4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 8 * 1024 * 1024;

/// A stream of verified blob bytes.
pub type BlobStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// How a [`RegistryClient`] reaches registries.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Use HTTP instead of HTTPS for every registry, not only loopback ones.
    pub plain_http: bool,
    /// Credentials for every registry, instead of those in the auth files.
    pub credentials: Option<Credentials>,
    /// Upload blobs in PATCH chunks of this many bytes instead of one PUT.
    pub chunk_size: Option<usize>,
    /// The caller's shared HTTP client (e.g. one that also trusts the
    /// user's CA certificates), used instead of one from
    /// [`http_client_builder`].
    pub http: Option<SharedHttp>,
}

/// One HTTP client for a whole process, built on first use: drydock's TLS
/// setup ([`http_client_builder`]) with extra trusted certificates. Loading
/// the system's roots costs milliseconds that work needing no network (a
/// local scan, a fresh cached index) does not pay. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct SharedHttp {
    inner: Arc<SharedHttpInner>,
}

#[derive(Debug, Default)]
struct SharedHttpInner {
    certificates: Vec<reqwest::Certificate>,
    client: std::sync::OnceLock<reqwest::Client>,
}

impl SharedHttp {
    /// A client trusting the system's roots and `certificates`.
    pub fn new(certificates: Vec<reqwest::Certificate>) -> SharedHttp {
        SharedHttp {
            inner: Arc::new(SharedHttpInner {
                certificates,
                client: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The client, built on the first call.
    pub fn get(&self) -> std::result::Result<reqwest::Client, reqwest::Error> {
        if let Some(client) = self.inner.client.get() {
            return Ok(client.clone());
        }
        let client = http_client_builder()
            .tls_certs_merge(self.inner.certificates.iter().cloned())
            .build()?;
        Ok(self.inner.client.get_or_init(|| client).clone())
    }
}

/// A manifest as fetched, with the digest its bytes hash to.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The manifest's bytes, exactly as served.
    pub bytes: Bytes,
    /// Its media type: the document's own `mediaType`, else the `Content-Type` served.
    pub media_type: String,
    /// The digest its bytes hash to (checked against the one asked for or announced).
    pub digest: Digest,
}

/// Where an upload stands after it was opened.
#[derive(Debug)]
pub(crate) enum UploadStart {
    /// The registry mounted the blob from another repository; nothing to send.
    Mounted,
    /// An upload session to send the content to.
    Session(Url),
}

/// A client for OCI Distribution registries, with its auth and credential
/// caches. Cheap to clone; clones share the caches.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    options: ClientOptions,
    auth: AuthCache,
    credentials: Mutex<HashMap<String, Option<Credentials>>>,
}

fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Another part of the process may have installed one already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// An HTTP client builder with drydock's TLS setup (rustls, system roots) and
/// user agent, for every crate that fetches over HTTP.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder().user_agent(concat!("drydock/", env!("CARGO_PKG_VERSION")))
}

impl RegistryClient {
    /// A client with `options`, over the HTTP client they give or a new one
    /// from [`http_client_builder`].
    pub fn new(options: ClientOptions) -> Result<RegistryClient> {
        let http = match &options.http {
            Some(http) => http.get(),
            None => http_client_builder().build(),
        }
        .map_err(Error::HttpClient)?;
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                http,
                options,
                auth: AuthCache::default(),
                credentials: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The options it was made with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    fn base_url(&self, registry_host: &str) -> String {
        let scheme = if self.inner.options.plain_http || is_loopback_host(registry_host) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{registry_host}/v2/")
    }

    fn url(&self, image: &ImageReference, path: &str) -> Result<Url> {
        let text = format!(
            "{}{}/{path}",
            self.base_url(image.api_host()),
            image.repository()
        );
        Url::parse(&text).map_err(|source| Error::InvalidUrl { url: text, source })
    }

    async fn credentials_for(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(explicit) = &self.inner.options.credentials {
            return Ok(Some(explicit.clone()));
        }
        if let Some(found) = self
            .inner
            .credentials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(registry)
        {
            return Ok(found.clone());
        }
        let found = credentials::find(registry).await?;
        self.inner
            .credentials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(registry.to_string(), found.clone());
        Ok(found)
    }

    /// Sends a request, answering one auth challenge if the registry raises it.
    /// `build` is called again for the retry, so it must not carry a one-shot body.
    async fn send(
        &self,
        registry: &str,
        scopes: &[String],
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response> {
        let first = self.send_once(registry, scopes, &build).await?;
        if first.status() != StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let challenge = first
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(auth::parse_challenge)
            .ok_or_else(|| Error::Auth {
                registry: registry.to_string(),
                reason: AuthError::NoChallenge,
            })?;
        self.authorize(registry, scopes, challenge).await?;
        let retried = self.send_once(registry, scopes, &build).await?;
        if retried.status() == StatusCode::UNAUTHORIZED {
            return Err(Error::Auth {
                registry: registry.to_string(),
                reason: AuthError::Refused,
            });
        }
        Ok(retried)
    }

    async fn send_once(
        &self,
        registry: &str,
        scopes: &[String],
        build: &impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response> {
        let mut request = build(&self.inner.http);
        if let Some(header) = self.inner.auth.get(registry, scopes) {
            request = request.header(AUTHORIZATION, header);
        }
        let request = request.build().map_err(|source| Error::Http {
            url: source.url().map(Url::to_string).unwrap_or_default(),
            source,
        })?;
        let url = request.url().to_string();
        self.inner
            .http
            .execute(request)
            .await
            .map_err(|source| Error::Http { url, source })
    }

    async fn authorize(
        &self,
        registry: &str,
        scopes: &[String],
        challenge: Challenge,
    ) -> Result<()> {
        let creds = self.credentials_for(registry).await?;
        match challenge {
            Challenge::Basic => {
                let creds = creds.ok_or_else(|| Error::Auth {
                    registry: registry.to_string(),
                    reason: AuthError::CredentialsRequired,
                })?;
                self.inner
                    .auth
                    .put(registry, scopes, auth::basic_header(&creds), None);
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut wanted = scopes.to_vec();
                if let Some(scope) = scope
                    && !wanted.contains(&scope)
                {
                    wanted.push(scope);
                }
                let (header, expires) = auth::fetch_token(
                    &self.inner.http,
                    registry,
                    &realm,
                    service.as_deref(),
                    &wanted,
                    creds.as_ref(),
                )
                .await?;
                self.inner.auth.put(registry, scopes, header, Some(expires));
            }
        }
        Ok(())
    }

    /// Turns a non-success answer into an error carrying the registry's own words.
    async fn check(
        response: Response,
        operation: &'static str,
        expected: &[StatusCode],
    ) -> Result<Response> {
        if expected.contains(&response.status()) {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let url = response.url().to_string();
        #[derive(serde::Deserialize)]
        struct Body {
            #[serde(default)]
            errors: Vec<RegistryErrorBody>,
        }
        let errors = response
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<Body>(&b).ok())
            .map(|b| b.errors)
            .unwrap_or_default();
        Err(Error::Registry {
            operation,
            url,
            status,
            errors,
        })
    }

    /// Fetches a manifest by tag or digest (as `image` names it).
    pub async fn get_manifest(&self, image: &ImageReference) -> Result<FetchedManifest> {
        self.get_manifest_by(image, &image.manifest_reference())
            .await
    }

    async fn get_manifest_by(
        &self,
        image: &ImageReference,
        reference: &str,
    ) -> Result<FetchedManifest> {
        let url = self.url(image, &format!("manifests/{reference}"))?;
        let scopes = [pull_scope(image.repository())];
        let accept = media_type::ACCEPTED.join(", ");
        let response = self
            .send(image.registry(), &scopes, |http| {
                http.get(url.clone()).header(ACCEPT, &accept)
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(Error::NotFound(format!(
                "manifest {}/{}:{reference}",
                image.registry(),
                image.repository()
            )));
        }
        let response = Self::check(response, "fetching a manifest", &[StatusCode::OK]).await?;
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
        let header_digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok());
        let bytes = read_bounded(response, MAX_MANIFEST_BYTES, &url).await?;
        let digest = match reference.parse::<Digest>() {
            Ok(pinned) => {
                pinned
                    .verify(&bytes)
                    .map_err(crate::digest::VerifyError::from)?;
                pinned
            }
            Err(_) => {
                let computed = match &header_digest {
                    Some(h) => h.same_algorithm_of(&bytes),
                    None => Digest::sha256_of(&bytes),
                };
                if let Some(h) = header_digest
                    && h != computed
                {
                    return Err(
                        crate::digest::VerifyError::from(crate::digest::DigestMismatch {
                            expected: h,
                            actual: computed,
                        })
                        .into(),
                    );
                }
                computed
            }
        };
        let declared = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            });
        let media_type = declared
            .or(content_type)
            .unwrap_or_else(|| media_type::OCI_MANIFEST.to_string());
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Fetches a manifest of the same repository by digest.
    pub async fn get_manifest_by_digest(
        &self,
        image: &ImageReference,
        digest: &Digest,
    ) -> Result<FetchedManifest> {
        self.get_manifest_by(image, &digest.to_string()).await
    }

    /// Whether the repository has a manifest with this digest.
    pub(crate) async fn has_manifest(
        &self,
        image: &ImageReference,
        digest: &Digest,
    ) -> Result<bool> {
        let url = self.url(image, &format!("manifests/{digest}"))?;
        let scopes = [pull_scope(image.repository())];
        let accept = media_type::ACCEPTED.join(", ");
        let response = self
            .send(image.registry(), &scopes, |http| {
                http.head(url.clone()).header(ACCEPT, &accept)
            })
            .await?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Self::check(response, "checking for a manifest", &[])
                .await
                .map(|_| false),
        }
    }

    /// Pushes manifest bytes under `reference` (a tag or the digest) and returns their digest.
    pub async fn put_manifest(
        &self,
        image: &ImageReference,
        reference: &str,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<Digest> {
        Ok(self
            .put_manifest_answering(image, reference, bytes, media_type)
            .await?
            .0)
    }

    /// Pushes a manifest and says whether the registry acknowledged its subject (`OCI-Subject`).
    async fn put_manifest_answering(
        &self,
        image: &ImageReference,
        reference: &str,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<(Digest, bool)> {
        let url = self.url(image, &format!("manifests/{reference}"))?;
        let scopes = [push_scope(image.repository())];
        let response = self
            .send(image.registry(), &scopes, |http| {
                http.put(url.clone())
                    .header(CONTENT_TYPE, media_type)
                    .body(bytes.clone())
            })
            .await?;
        let response = Self::check(
            response,
            "pushing a manifest",
            &[StatusCode::CREATED, StatusCode::OK],
        )
        .await?;
        let subject_acknowledged = response.headers().contains_key("oci-subject");
        Ok((Digest::sha256_of(&bytes), subject_acknowledged))
    }

    /// Pushes a manifest that has a `subject` (a report, a signature, a VEX
    /// document) by digest. On registries without the referrers API it also
    /// adds the manifest to the `<alg>-<hex>` fallback index of its subject,
    /// as the distribution spec asks of clients.
    pub async fn push_referrer(
        &self,
        image: &ImageReference,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<Digest> {
        let parsed = crate::manifest::ParsedManifest::parse(&bytes, Some(media_type))?;
        let subject = parsed
            .subject()?
            .ok_or(Error::Manifest(crate::manifest::ManifestError::NoSubject))?;
        let digest = Digest::sha256_of(&bytes);
        let (_, acknowledged) = self
            .put_manifest_answering(image, &digest.to_string(), bytes.clone(), media_type)
            .await?;
        if acknowledged {
            return Ok(digest);
        }
        let tag = format!(
            "{}-{}",
            subject.digest.algorithm().as_str(),
            subject.digest.hex()
        );
        let mut entries: Vec<Descriptor> = match self.get_manifest_by(image, &tag).await {
            Ok(existing) => parse_index(&existing.bytes)?.manifests().clone(),
            Err(Error::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        if !entries
            .iter()
            .any(|d| d.digest().as_ref() == digest.to_string())
        {
            entries.push(referrer_descriptor(&parsed, &digest, bytes.len() as u64)?);
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_INDEX,
            "manifests": entries,
        });
        let index_bytes = Bytes::from(serde_json::to_vec(&index).map_err(|source| {
            crate::manifest::ManifestError::Schema {
                media_type: media_type::OCI_INDEX.to_string(),
                cause: source,
            }
        })?);
        self.put_manifest(image, &tag, index_bytes, media_type::OCI_INDEX)
            .await?;
        Ok(digest)
    }

    /// Whether the repository holds the blob.
    pub async fn has_blob(&self, image: &ImageReference, digest: &Digest) -> Result<bool> {
        let url = self.url(image, &format!("blobs/{digest}"))?;
        let scopes = [pull_scope(image.repository())];
        let response = self
            .send(image.registry(), &scopes, |http| http.head(url.clone()))
            .await?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Self::check(response, "checking for a blob", &[])
                .await
                .map(|_| false),
        }
    }

    /// Streams a blob, verifying its digest (and size) as it arrives.
    pub async fn get_blob(
        &self,
        image: &ImageReference,
        content: &ContentRef,
    ) -> Result<BlobStream> {
        let url = self.url(image, &format!("blobs/{}", content.digest))?;
        let scopes = [pull_scope(image.repository())];
        let response = self
            .send(image.registry(), &scopes, |http| http.get(url.clone()))
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(Error::NotFound(format!(
                "blob {} in {}/{}",
                content.digest,
                image.registry(),
                image.repository()
            )));
        }
        let response = Self::check(response, "fetching a blob", &[StatusCode::OK]).await?;
        Ok(verified_stream(
            response.bytes_stream().map(move |r| {
                r.map_err(|source| Error::Http {
                    url: url.to_string(),
                    source,
                })
            }),
            content,
        ))
    }

    /// Reads a whole small blob (a config, a JSON document) into memory, verified.
    pub async fn get_blob_bytes(
        &self,
        image: &ImageReference,
        content: &ContentRef,
        limit: u64,
    ) -> Result<Bytes> {
        if content.size > limit {
            return Err(Error::TooLarge {
                digest: content.digest.clone(),
                size: content.size,
                limit,
            });
        }
        collect_stream(self.get_blob(image, content).await?).await
    }

    /// Opens an upload, asking the registry to mount the blob from `mount_from`
    /// (a repository of the same registry) when given.
    pub(crate) async fn start_upload(
        &self,
        image: &ImageReference,
        mount_from: Option<(&str, &Digest)>,
    ) -> Result<UploadStart> {
        let mut url = self.url(image, "blobs/uploads/")?;
        let mut scopes = vec![push_scope(image.repository())];
        if let Some((from, digest)) = mount_from {
            url.query_pairs_mut()
                .append_pair("mount", &digest.to_string())
                .append_pair("from", from);
            scopes.push(pull_scope(from));
        }
        let response = self
            .send(image.registry(), &scopes, |http| http.post(url.clone()))
            .await?;
        let response = Self::check(
            response,
            "starting a blob upload",
            &[StatusCode::CREATED, StatusCode::ACCEPTED],
        )
        .await?;
        if response.status() == StatusCode::CREATED {
            return Ok(UploadStart::Mounted);
        }
        Ok(UploadStart::Session(location(&response, &url)?))
    }

    /// Sends a blob's content to an open upload session and completes it.
    pub(crate) async fn finish_upload(
        &self,
        image: &ImageReference,
        session: Url,
        content: &ContentRef,
        stream: BlobStream,
    ) -> Result<()> {
        let scopes = [push_scope(image.repository())];
        let auth = self.inner.auth.get(image.registry(), &scopes);
        let with_auth = |request: RequestBuilder| match &auth {
            Some(header) => request.header(AUTHORIZATION, header),
            None => request,
        };
        let final_url = match self.inner.options.chunk_size {
            None => {
                let url = with_digest(session, &content.digest);
                let request = with_auth(self.inner.http.put(url.clone()))
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, content.size)
                    .body(reqwest::Body::wrap_stream(stream));
                let response = send_request(request, &url).await?;
                Self::check(response, "uploading a blob", &[StatusCode::CREATED]).await?;
                return Ok(());
            }
            Some(chunk_size) => {
                let mut location = session;
                let mut offset = 0u64;
                let mut chunks = rechunk(stream, chunk_size.max(1));
                while let Some(chunk) = chunks.next().await {
                    let chunk = chunk?;
                    let end = offset + chunk.len() as u64 - 1;
                    let request = with_auth(self.inner.http.patch(location.clone()))
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_RANGE, format!("{offset}-{end}"))
                        .header(CONTENT_LENGTH, chunk.len())
                        .body(chunk);
                    let response = send_request(request, &location).await?;
                    let response =
                        Self::check(response, "uploading a blob chunk", &[StatusCode::ACCEPTED])
                            .await?;
                    location = self::location(&response, &location)?;
                    offset = end + 1;
                }
                with_digest(location, &content.digest)
            }
        };
        let request = with_auth(self.inner.http.put(final_url.clone())).header(CONTENT_LENGTH, 0);
        let response = send_request(request, &final_url).await?;
        Self::check(response, "completing a blob upload", &[StatusCode::CREATED]).await?;
        Ok(())
    }

    /// Uploads a blob from a stream (no mount attempt).
    pub async fn push_blob(
        &self,
        image: &ImageReference,
        content: &ContentRef,
        stream: BlobStream,
    ) -> Result<()> {
        match self.start_upload(image, None).await? {
            UploadStart::Mounted => Ok(()),
            UploadStart::Session(session) => {
                self.finish_upload(image, session, content, stream).await
            }
        }
    }

    async fn paged_list(
        &self,
        registry: &str,
        scopes: &[String],
        first: Url,
        field: &str,
        what: String,
    ) -> Result<Vec<String>> {
        let mut items = Vec::new();
        let mut next = Some(first);
        while let Some(url) = next.take() {
            let response = self
                .send(registry, scopes, |http| http.get(url.clone()))
                .await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Err(Error::NotFound(what));
            }
            let response = Self::check(response, "listing", &[StatusCode::OK]).await?;
            next = response
                .headers()
                .get(LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .and_then(|link| url.join(&link).ok());
            let body = read_bounded(response, MAX_MANIFEST_BYTES, &url).await?;
            items.extend(listing_page(&body, field, &url)?);
        }
        Ok(items)
    }

    /// Every tag of the repository, following `Link` pages.
    pub async fn list_tags(&self, image: &ImageReference) -> Result<Vec<String>> {
        let url = self.url(image, "tags/list")?;
        let what = format!("repository {}/{}", image.registry(), image.repository());
        self.paged_list(
            image.registry(),
            &[pull_scope(image.repository())],
            url,
            "tags",
            what,
        )
        .await
    }

    /// Every repository of the registry, following `Link` pages.
    pub async fn catalog(&self, registry: &str) -> Result<Vec<String>> {
        let api_host = if registry == crate::reference::DOCKER_HUB {
            crate::reference::DOCKER_HUB_API
        } else {
            registry
        };
        let text = format!("{}_catalog", self.base_url(api_host));
        let url = Url::parse(&text).map_err(|source| Error::InvalidUrl { url: text, source })?;
        let what = format!("the catalog of {registry} (this registry may not offer /v2/_catalog)");
        self.paged_list(
            registry,
            &["registry:catalog:*".to_string()],
            url,
            "repositories",
            what,
        )
        .await
    }

    /// Manifests that name `subject` as their subject, optionally only those
    /// of one artifact type. Falls back to the `sha256-<hex>` tag schema on
    /// registries without the referrers API.
    pub async fn referrers(
        &self,
        image: &ImageReference,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>> {
        let mut url = self.url(image, &format!("referrers/{subject}"))?;
        if let Some(t) = artifact_type {
            url.query_pairs_mut().append_pair("artifactType", t);
        }
        let scopes = [pull_scope(image.repository())];
        let response = self
            .send(image.registry(), &scopes, |http| http.get(url.clone()))
            .await?;
        let (index, filtered): (ImageIndex, bool) = if response.status() == StatusCode::NOT_FOUND {
            let tag = format!("{}-{}", subject.algorithm().as_str(), subject.hex());
            match self.get_manifest_by(image, &tag).await {
                Ok(fetched) => (parse_index(&fetched.bytes)?, false),
                Err(Error::NotFound(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            }
        } else {
            let response = Self::check(response, "listing referrers", &[StatusCode::OK]).await?;
            let filtered = response.headers().contains_key("oci-filters-applied");
            (
                parse_index(&read_bounded(response, MAX_MANIFEST_BYTES, &url).await?)?,
                filtered,
            )
        };
        Ok(index
            .manifests()
            .iter()
            .filter(|d| {
                filtered
                    || artifact_type.is_none_or(|t| {
                        d.artifact_type()
                            .as_ref()
                            .is_some_and(|a| a.to_string() == t)
                    })
            })
            .cloned()
            .collect())
    }
}

/// The descriptor a referrers index lists for a manifest.
fn referrer_descriptor(
    parsed: &crate::manifest::ParsedManifest,
    digest: &Digest,
    size: u64,
) -> Result<Descriptor> {
    let mut value = serde_json::json!({
        "mediaType": parsed.media_type,
        "digest": digest.to_string(),
        "size": size,
    });
    if let Some(artifact_type) = parsed.artifact_type() {
        value["artifactType"] = serde_json::Value::String(artifact_type);
    }
    if let Some(annotations) = parsed.annotations() {
        value["annotations"] = serde_json::json!(annotations);
    }
    serde_json::from_value(value).map_err(|source| {
        crate::manifest::ManifestError::Schema {
            media_type: media_type::OCI_INDEX.to_string(),
            cause: source,
        }
        .into()
    })
}

fn parse_index(bytes: &[u8]) -> Result<ImageIndex> {
    serde_json::from_slice(bytes).map_err(|source| {
        crate::manifest::ManifestError::Schema {
            media_type: media_type::OCI_INDEX.to_string(),
            cause: source,
        }
        .into()
    })
}

async fn send_request(request: RequestBuilder, url: &Url) -> Result<Response> {
    request.send().await.map_err(|source| Error::Http {
        url: url.to_string(),
        source,
    })
}

fn location(response: &Response, base: &Url) -> Result<Url> {
    let value = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::Registry {
            operation: "uploading a blob",
            url: base.to_string(),
            status: response.status().as_u16(),
            errors: vec![RegistryErrorBody {
                code: "BLOB_UPLOAD_INVALID".into(),
                message: "the registry did not say where to upload (no Location header)".into(),
            }],
        })?;
    base.join(value).map_err(|source| Error::InvalidUrl {
        url: value.to_string(),
        source,
    })
}

/// The names of one page of a tag list or catalog: `field` holds an array of
/// strings; a missing or `null` field is an empty page (registries answer a
/// repository without tags so). Anything else is malformed, never "not found".
fn listing_page(body: &[u8], field: &str, url: &Url) -> Result<Vec<String>> {
    let malformed = |source| Error::MalformedListing {
        url: url.to_string(),
        source,
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| malformed(Some(e)))?;
    if !value.is_object() {
        return Err(malformed(None));
    }
    match value.get(field) {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::Array(entries)) => entries
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| malformed(None))
            })
            .collect(),
        Some(_) => Err(malformed(None)),
    }
}

fn with_digest(mut url: Url, digest: &Digest) -> Url {
    url.query_pairs_mut()
        .append_pair("digest", &digest.to_string());
    url
}

/// The target of `rel="next"` in a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p == "rel=\"next\"" || p == "rel=next"
        });
        is_next.then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

async fn read_bounded(response: Response, limit: u64, url: &Url) -> Result<Bytes> {
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(Error::Registry {
            operation: "reading a response",
            url: url.to_string(),
            status: response.status().as_u16(),
            errors: vec![RegistryErrorBody {
                code: "SIZE_INVALID".into(),
                message: format!("response larger than {limit} bytes"),
            }],
        });
    }
    let mut body = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| Error::Http {
            url: url.to_string(),
            source,
        })?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(Error::Registry {
                operation: "reading a response",
                url: url.to_string(),
                status: 200,
                errors: vec![RegistryErrorBody {
                    code: "SIZE_INVALID".into(),
                    message: format!("response larger than {limit} bytes"),
                }],
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Wraps a byte stream so it fails instead of ending when the content does
/// not match `content`'s digest and size.
pub(crate) fn verified_stream(
    stream: impl Stream<Item = Result<Bytes>> + Send + 'static,
    content: &ContentRef,
) -> BlobStream {
    let mut verifier = Some(Verifier::new(content.digest.clone(), Some(content.size)));
    Box::pin(async_stream::try_stream! {
        let mut stream = std::pin::pin!(stream);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if let Some(v) = verifier.as_mut() {
                v.update(&chunk)?;
            }
            yield chunk;
        }
        if let Some(v) = verifier.take() {
            v.finish()?;
        }
    })
}

/// Collects a (small) stream into memory.
pub(crate) async fn collect_stream(mut stream: BlobStream) -> Result<Bytes> {
    let mut body = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk?);
    }
    Ok(body.freeze())
}

/// Regroups a stream into chunks of exactly `size` bytes (the last may be shorter).
fn rechunk(stream: BlobStream, size: usize) -> BlobStream {
    Box::pin(async_stream::try_stream! {
        let mut stream = stream;
        let mut buffer = BytesMut::with_capacity(size);
        while let Some(chunk) = stream.next().await {
            let mut chunk = chunk?;
            while !chunk.is_empty() {
                let take = (size - buffer.len()).min(chunk.len());
                buffer.extend_from_slice(&chunk.split_to(take));
                if buffer.len() == size {
                    yield buffer.split().freeze();
                }
            }
        }
        if !buffer.is_empty() {
            yield buffer.freeze();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_pages_are_names_or_malformed() {
        let url: Url = "http://r/v2/a/tags/list".parse().unwrap();
        let page = |body: &str| listing_page(body.as_bytes(), "tags", &url);
        assert_eq!(
            page(r#"{"name":"a","tags":["1","2"]}"#).unwrap(),
            ["1", "2"]
        );
        assert!(page(r#"{"name":"a","tags":null}"#).unwrap().is_empty());
        assert!(page(r#"{"name":"a"}"#).unwrap().is_empty());
        for bad in ["not json", "[]", r#"{"tags":"1"}"#, r#"{"tags":[1]}"#] {
            assert!(
                matches!(page(bad), Err(Error::MalformedListing { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_shared_http_client_is_built_once_on_first_use() {
        let shared = SharedHttp::default();
        assert!(shared.inner.client.get().is_none(), "not built up front");
        let client = RegistryClient::new(ClientOptions {
            http: Some(shared.clone()),
            ..ClientOptions::default()
        })
        .unwrap();
        assert!(client.options().http.is_some());
        assert!(shared.inner.client.get().is_some(), "built for every clone");
    }

    #[test]
    fn finds_next_link() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(next_link(r#"<http://x/y>; rel="prev""#), None);
    }

    #[tokio::test]
    async fn rechunks_and_verifies() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let content = ContentRef {
            digest: Digest::sha256_of(&data),
            size: data.len() as u64,
            media_type: String::new(),
        };
        let pieces: Vec<Result<Bytes>> = data
            .chunks(7)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let stream = verified_stream(futures_util::stream::iter(pieces), &content);
        let chunks: Vec<Bytes> = rechunk(stream, 300).map(|c| c.unwrap()).collect().await;
        assert_eq!(
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [300, 300, 300, 100]
        );
        assert_eq!(chunks.concat(), data);

        let wrong = ContentRef {
            digest: Digest::sha256_of(b"other"),
            ..content
        };
        let stream = verified_stream(
            futures_util::stream::iter(vec![Ok(Bytes::from(data))]),
            &wrong,
        );
        assert!(collect_stream(stream).await.is_err());
    }
}
