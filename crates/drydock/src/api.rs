//! The client of the drydock server's `/api/v1`, shared by the `workflow`
//! and `task` commands: builds request URLs from `--server` /
//! `DRYDOCK_URL`, sends JSON, and turns a failure into the server's own
//! message (`{"error": "…"}`). Decides nothing about workflows itself.

use anyhow::{Context as _, bail};
use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use server::api::ErrorBody;

use crate::options::ServerArgs;

pub struct Api {
    http: reqwest::Client,
    base: url::Url,
}

impl Api {
    pub fn new(server: &ServerArgs) -> anyhow::Result<Api> {
        let base = url::Url::parse(&server.server).with_context(|| {
            format!(
                "{:?} is not a URL (expected e.g. http://127.0.0.1:5000)",
                server.server
            )
        })?;
        if base.cannot_be_a_base() {
            bail!(
                "{:?} is not a server URL (expected e.g. http://127.0.0.1:5000)",
                server.server
            );
        }
        let http = oci::client::http_client_builder()
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Api { http, base })
    }

    /// The server's URL for messages, without its password.
    fn shown_base(&self) -> url::Url {
        let mut base = self.base.clone();
        if base.password().is_some() {
            let _ = base.set_password(Some("***"));
        }
        base
    }

    /// `<server>/api/v1/<segments…>?<query>`, each segment percent-encoded;
    /// credentials in the server URL are sent as basic auth.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> url::Url {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .expect("checked in Api::new that the URL can be a base");
            path.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    fn request(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> RequestBuilder {
        self.http.request(method, self.url(segments, query))
    }

    /// Sends the request; a failure carries the server's message.
    async fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let response = request
            .send()
            .await
            // Its URL may hold the password; the message names the server.
            .map_err(reqwest::Error::without_url)
            .with_context(|| {
            format!(
                "cannot reach the drydock server at {}; start it with `drydock serve` or point --server / DRYDOCK_URL at it",
                self.shown_base()
            )
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => bail!("{}", body.error),
            Err(_) if status == reqwest::StatusCode::UNAUTHORIZED => bail!(
                "the drydock server at {} refused the request: it needs the credentials of its --htpasswd file, given in the URL (--server / DRYDOCK_URL http://USER:PASSWORD@HOST:PORT)",
                self.shown_base()
            ),
            Err(_) => bail!(
                "the drydock server at {} answered {status}: {}",
                self.shown_base(),
                text.trim()
            ),
        }
    }

    async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> anyhow::Result<T> {
        self.send(request)
            .await?
            .json()
            .await
            .context("the drydock server's answer is not what this drydock expects; are both the same version?")
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        self.json(self.request(Method::GET, segments, query)).await
    }

    pub async fn get_text(&self, segments: &[&str]) -> anyhow::Result<String> {
        let response = self.send(self.request(Method::GET, segments, &[])).await?;
        response
            .text()
            .await
            .context("reading the drydock server's answer")
    }

    /// A request with a JSON body (POST, PATCH) or none (DELETE).
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&impl Serialize>,
    ) -> anyhow::Result<T> {
        let mut request = self.request(method, segments, &[]);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.json(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_api_urls_under_any_base() {
        for base in [
            "http://127.0.0.1:5000",
            "http://127.0.0.1:5000/",
            "https://d.example/drydock/",
        ] {
            let api = Api::new(&ServerArgs {
                server: base.to_string(),
            })
            .unwrap();
            let url = api.url(
                &["workflows", "a b/c"],
                &[("run_status", "Failed".to_string())],
            );
            assert!(
                url.as_str()
                    .ends_with("/api/v1/workflows/a%20b%2Fc?run_status=Failed"),
                "{url}"
            );
            assert!(
                url.as_str().starts_with(base.trim_end_matches('/')),
                "{url}"
            );
        }
    }
}
