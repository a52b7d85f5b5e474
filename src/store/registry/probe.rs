//! Raw requests for `att2ref probe`: the status, headers and a capped body of any registry answer,
//! sent through the same auth, retries, pacing and counters as every other request. The probe reads
//! answers the typed methods turn into errors or hide (a 405 on DELETE, the `Link` of a first page, an
//! `OCI-Subject` header), so it needs them as they came.

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::auth::challenges_of;
use super::errors::parse_error_body;
use super::http::Call;
use super::{RegistryClient, RegistryRepository, api_host, check_name};
use crate::error::{Error, Result};

/// Most body bytes kept from a probe answer: manifests and listings of a test repository are small.
const MAX_PROBE_BODY: u64 = 4 * 1024 * 1024;

/// One answer as the registry gave it.
#[derive(Clone, Debug)]
pub(crate) struct RawReply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The URL that answered (after redirects), for resolving a relative `Link`.
    pub url: Url,
}

impl RawReply {
    /// A header's value, trimmed, when present and text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
    }

    /// Every value of a header, split at commas.
    pub(crate) fn header_list(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// The codes of a distribution error body (`UNSUPPORTED`, `NAME_UNKNOWN`…), empty for any other body.
    pub(crate) fn error_codes(&self) -> Vec<String> {
        parse_error_body(&self.body).into_iter().map(|e| e.code).collect()
    }

    /// The schemes of the `WWW-Authenticate` challenges, lowercase.
    pub(crate) fn challenge_schemes(&self) -> Vec<String> {
        challenges_of(&self.headers).into_iter().map(|c| c.scheme).collect()
    }

    /// The target of the `rel="next"` link, if any.
    pub(crate) fn next_link(&self) -> Option<String> {
        super::tags::next_link(&self.headers)
    }
}

/// A request to send raw.
pub(crate) struct RawRequest<'a> {
    pub method: Method,
    /// After `/v2/` of the registry (`""`, `_catalog`) or of the repository (`tags/list`).
    pub path: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Bytes>,
}

impl<'a> RawRequest<'a> {
    pub(crate) fn new(method: Method, path: &'a str) -> Self {
        RawRequest { method, path, query: &[], headers: Vec::new(), body: None }
    }

    pub(crate) fn query(mut self, query: &'a [(&'a str, &'a str)]) -> Self {
        self.query = query;
        self
    }

    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> Result<Self> {
        let value = HeaderValue::from_str(value)
            .map_err(|_| Error::invalid_input(format!("{value:?} is not a valid value for header {name}")))?;
        self.headers.push((name, value));
        Ok(self)
    }

    pub(crate) fn body(mut self, body: Bytes) -> Self {
        self.body = Some(body);
        self
    }
}

impl RegistryClient {
    /// Send `request` to `/v2/<path>` of `registry` with `scopes`, answering an auth challenge as every
    /// request does. With `anonymous`, no credentials and no challenge answer: the registry's first word.
    pub(crate) async fn raw_registry(
        &self,
        registry: &str,
        scopes: &[String],
        request: RawRequest<'_>,
        anonymous: bool,
    ) -> Result<RawReply> {
        let host = api_host(registry);
        let url = self
            .inner
            .base_url(&host)?
            .join(&format!("v2/{}", request.path))
            .map_err(|e| Error::invalid_input(format!("building a URL for {host}/v2/{}: {e}", request.path)))?;
        send(self, &host, scopes, url, request, anonymous).await
    }

    /// Whether requests to `registry` carry credentials (given explicitly or found in a config file).
    pub(crate) async fn has_credential(&self, registry: &str) -> Result<bool> {
        Ok(self.inner.credential(&api_host(registry)).await?.is_some())
    }
}

impl RegistryRepository {
    /// Send `request` to `/v2/<name>/<path>` with the repository scope for `actions` (`pull`,
    /// `pull,push`, `pull,push,delete`).
    pub(crate) async fn raw(&self, actions: &str, request: RawRequest<'_>) -> Result<RawReply> {
        check_name(&self.name)?;
        let url = self.url(request.path)?;
        send(&self.client, &self.host, &self.scope(actions), url, request, false).await
    }
}

async fn send(
    client: &RegistryClient,
    host: &str,
    scopes: &[String],
    mut url: Url,
    request: RawRequest<'_>,
    anonymous: bool,
) -> Result<RawReply> {
    if !request.query.is_empty() {
        url.query_pairs_mut().extend_pairs(request.query);
    }
    let what = format!("{} {}{}", request.method, host, url.path());
    let mut call = Call::new(&what, request.method, url).cap(MAX_PROBE_BODY);
    for (name, value) in request.headers {
        call = call.header(name, value);
    }
    if let Some(body) = request.body {
        call = call.body(body);
    }
    let reply = if anonymous {
        client.inner.execute(&call, None).await?
    } else {
        client.inner.call(host, scopes, &call).await?
    };
    Ok(RawReply { status: reply.status.as_u16(), headers: reply.headers, body: reply.body, url: reply.url })
}
