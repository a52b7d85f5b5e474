//! OCI distribution registry client.
//!
//! [`RegistryClient`] holds what is shared across repositories and clones: one connection pool, the
//! token and credential caches, the referrers capability per repository, and counters.
//! [`RegistryClient::repository`] gives a [`RegistryRepository`], which implements
//! [`Repository`].
//!
//! Transport rules live in `http` (retries, redirects, caps), authentication in `auth`, and one
//! file per resource (`manifests`, `blobs`, `tags`, `referrers`) builds requests and reads answers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use url::Url;

use super::{
    Answer, BlobPrefix, DeleteSupport, HostFacts, Learnt, PutManifest, Referrers, ReferrersCapability, RegistryFacts,
    Repository,
};
use crate::error::{Error, ErrorKind, Result};
use crate::keyed_locks::KeyedLocks;
use crate::limits::Limits;
use crate::model::digest::Digest;
use crate::model::oci::{Descriptor, RawManifest};

pub(crate) mod auth;
mod blob_streams;
mod blobs;
mod credentials;
mod errors;
mod http;
mod manifests;
mod pacing;
pub(crate) mod probe;
mod referrers;
pub(crate) mod tags;

pub use credentials::{ConfigEnv, Credential, CredentialSource, config_search_paths};

/// The API host of Docker Hub; `docker.io` and `index.docker.io` are names for it.
pub(crate) const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Default of [`ClientConfig::max_concurrent_requests`]: above what `--jobs 8` needs on a registry
/// that keeps up, low enough not to look like a flood to one that rate-limits.
pub const DEFAULT_CONCURRENT_REQUESTS: usize = 16;

/// Which registries are spoken to over plain HTTP instead of HTTPS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PlainHttp {
    /// HTTPS everywhere (the default).
    #[default]
    Never,
    /// Plain HTTP to every registry.
    All,
    /// Plain HTTP to these `host[:port]` names only.
    Hosts(Vec<String>),
}

/// How failed requests are retried (429, 502, 503, 504, 500 on idempotent requests, connection errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = no retries).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles each time (with jitter).
    pub base_backoff: Duration,
    /// Longest computed wait. A `Retry-After` is honoured instead, up to 60 s.
    pub max_backoff: Duration,
    /// How long one request keeps waiting out `429 Too Many Requests` answers, their waits added up,
    /// however many attempts that takes (they do not count against `max_attempts`): a throttled batch
    /// slows down rather than fails, and a registry that keeps refusing fails it in the end.
    pub throttled_patience: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(20),
            throttled_patience: Duration::from_secs(180),
        }
    }
}

/// Client configuration.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Registries reached over plain HTTP.
    pub plain_http: PlainHttp,
    /// Skip TLS certificate verification. Dangerous; off by default.
    pub insecure: bool,
    /// Extra trusted CA certificates (PEM bundles), added to the system's roots: for registries whose
    /// certificate comes from a private CA.
    pub ca_certificates: Vec<Vec<u8>>,
    /// Where credentials are looked up.
    pub credentials: CredentialSource,
    /// Credentials given outright, each for the one registry it is keyed by (as references name it:
    /// `ghcr.io`, `registry.example.com:5000`, `docker.io`), instead of any lookup for that registry. A
    /// credential is never sent to another registry, nor to a token service another registry names: a
    /// run that reaches several registries (a copy between two, a target list spanning hosts) gives each
    /// the credentials of the configured files, or none.
    pub explicit_credentials: BTreeMap<String, Credential>,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Size and count caps.
    pub limits: Limits,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Timeout of one whole request (connect to last body byte); `None` for none. A streamed blob
    /// ([`Repository::read_blob_stream`], [`Repository::put_blob_stream`]) gets one more second per MiB.
    pub request_timeout: Option<Duration>,
    /// Blobs larger than this are uploaded in chunks of this size (PATCH); smaller ones in one PUT.
    pub upload_chunk_size: u64,
    /// Most requests in flight to one registry host at once, across every repository and clone of the
    /// client. After a 429 the host is paused for the wait it asked for and this number is halved; it
    /// grows back by one per window of other answers.
    pub max_concurrent_requests: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            plain_http: PlainHttp::Never,
            insecure: false,
            ca_certificates: Vec::new(),
            credentials: CredentialSource::Anonymous,
            explicit_credentials: BTreeMap::new(),
            retry: RetryPolicy::default(),
            limits: Limits::default(),
            user_agent: concat!("att2ref/", env!("CARGO_PKG_VERSION")).to_owned(),
            request_timeout: Some(Duration::from_secs(300)),
            upload_chunk_size: 16 * 1024 * 1024,
            max_concurrent_requests: DEFAULT_CONCURRENT_REQUESTS,
        }
    }
}

/// A snapshot of the client's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP requests sent (retries, redirects and token requests included).
    pub requests: u64,
    /// Retries after 429/5xx answers or connection errors.
    pub retries: u64,
    /// Response body bytes received.
    pub bytes_downloaded: u64,
    /// Request body bytes sent.
    pub bytes_uploaded: u64,
    /// 429 Too Many Requests answers: each paused every request to that registry host.
    pub throttled: u64,
}

pub(crate) struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    stats: http::Counters,
    auth: auth::AuthCache,
    capabilities: Mutex<HashMap<String, ReferrersCapability>>,
    /// What each host answered to a DELETE of a digest nobody stored (see [`Repository::delete_support`]).
    delete_support: Mutex<HashMap<String, DeleteSupport>>,
    /// One lock per host, held while it is probed, so repositories working at once probe it once (and
    /// a slow or throttled probe of one host never holds up another's).
    delete_probe: KeyedLocks,
    /// What commands learnt about each host by acting on it ([`Repository::learn`]).
    facts: Mutex<HashMap<String, HostFacts>>,
    pacing: pacing::Pacing,
    /// Small blobs this client stored, by host and digest, with a repository holding each: the next
    /// repository that needs one mounts it in one request instead of checking and uploading it.
    stored_blobs: Mutex<HashMap<(String, Digest), String>>,
    /// Repositories of a host that a blob mount from was refused (by host, then the repository mounted
    /// from): the next blob from there is uploaded without asking again.
    refused_mounts: Mutex<HashSet<(String, String)>>,
}

/// A registry client. Cheap to clone: clones share the connection pool, caches and counters.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient").field("plain_http", &self.inner.config.plain_http).finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// Build a client.
    pub fn new(config: ClientConfig) -> Result<RegistryClient> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(config.user_agent.clone())
            .connect_timeout(Duration::from_secs(30))
            .tls_danger_accept_invalid_certs(config.insecure);
        if let Some(t) = config.request_timeout {
            builder = builder.timeout(t);
        }
        for (i, pem) in config.ca_certificates.iter().enumerate() {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("CA certificate bundle {}: not PEM certificates: {e}", i + 1),
                )
                .with_source(e)
            })?;
            if certs.is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("CA certificate bundle {}: no certificate in it", i + 1),
                ));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(|e| {
            Error::new(ErrorKind::InvalidInput, format!("building the HTTP client: {e}")).with_source(e)
        })?;
        let inner = Inner {
            http,
            pacing: pacing::Pacing::new(config.max_concurrent_requests),
            config,
            stats: http::Counters::default(),
            auth: auth::AuthCache::default(),
            capabilities: Mutex::new(HashMap::new()),
            delete_support: Mutex::new(HashMap::new()),
            delete_probe: KeyedLocks::default(),
            facts: Mutex::new(HashMap::new()),
            stored_blobs: Mutex::new(HashMap::new()),
            refused_mounts: Mutex::new(HashSet::new()),
        };
        Ok(RegistryClient { inner: Arc::new(inner) })
    }

    /// A repository of a registry. `registry` is `host[:port]` (`docker.io` means Docker Hub);
    /// `name` is the repository path. Both are checked when the first request is built.
    pub fn repository(&self, registry: &str, name: &str) -> RegistryRepository {
        RegistryRepository { client: self.clone(), host: api_host(registry), name: name.to_owned(), in_catalog: false }
    }

    /// Every repository of a registry (`GET /v2/_catalog`, all pages).
    pub async fn catalog(&self, registry: &str) -> Result<Vec<String>> {
        tags::catalog(&self.inner, &api_host(registry)).await
    }

    /// The repositories of a registry as a stream of pages (`GET /v2/_catalog`, following `Link`), so
    /// work can start on the first page and memory holds one page, not the whole catalog. A failed
    /// page ends the stream with its error.
    pub fn catalog_pages(
        &self,
        registry: &str,
    ) -> impl futures_util::Stream<Item = Result<Vec<String>>> + Send + 'static {
        let pager = tags::catalog_pager(&self.inner, &api_host(registry));
        futures_util::stream::unfold(Some(pager), |state| async move {
            let mut pager = match state? {
                Ok(pager) => pager,
                Err(e) => return Some((Err(e), None)),
            };
            match pager.next_page().await {
                Ok(Some(page)) => Some((Ok(page), Some(Ok(pager)))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// GET a URL outside any registry (a transparency log, say) through this client: the same TLS
    /// settings (system roots plus CA files, `insecure`), plain-HTTP policy, timeouts, retries and
    /// counters as registry requests, and no credentials. Returns the status and at most `max_bytes` of
    /// body (more is [`ErrorKind::TooLarge`]).
    pub async fn get_url(&self, url: Url, what: &str, max_bytes: u64) -> Result<(u16, Bytes)> {
        let call = http::Call::new(what, reqwest::Method::GET, url).cap(max_bytes);
        let reply = self.inner.execute(&call, None).await?;
        Ok((reply.status.as_u16(), reply.body))
    }

    /// What this client found out about each registry host it worked on, for reports: referrers API or
    /// tag schema, DELETE, index subjects, delete order, listing lag (see [`RegistryFacts`]). Hosts in
    /// name order.
    pub fn facts(&self) -> Vec<RegistryFacts> {
        let inner = &self.inner;
        let capabilities = inner.capabilities.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let deletes = inner.delete_support.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let learnt = inner.facts.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut hosts: Vec<String> = deletes.keys().chain(learnt.keys()).cloned().collect();
        hosts.extend(capabilities.keys().filter_map(|k| k.split_once('/').map(|(h, _)| h.to_owned())));
        hosts.sort();
        hosts.dedup();
        hosts
            .into_iter()
            .map(|host| {
                let prefix = format!("{host}/");
                let seen: Vec<ReferrersCapability> =
                    capabilities.iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(_, c)| *c).collect();
                let api = seen.contains(&ReferrersCapability::Supported);
                let schema = seen.contains(&ReferrersCapability::Unsupported);
                let referrers = match (api, schema) {
                    (true, true) => Some("mixed"),
                    (true, false) => Some("api"),
                    (false, true) => Some("tag-schema"),
                    (false, false) => None,
                };
                let h = learnt.get(&host).cloned().unwrap_or_default();
                RegistryFacts {
                    referrers,
                    deletes: match deletes.get(&host) {
                        Some(DeleteSupport::Allowed) => Some(Answer::Accepted),
                        Some(DeleteSupport::Refused(why)) => Some(Answer::Refused(why.clone())),
                        Some(DeleteSupport::Unknown) | None => None,
                    },
                    index_subject: h.index_subject,
                    delete_while_listed: h.delete_while_listed,
                    listing_lag_ms: h.listing_lag.map(|d| d.as_millis() as u64),
                    listing_never_showed_ms: h.listing_never_showed.map(|d| d.as_millis() as u64),
                    host,
                }
            })
            .collect()
    }

    /// The counters so far.
    pub fn stats(&self) -> ClientStats {
        let s = &self.inner.stats;
        ClientStats {
            requests: s.requests.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            bytes_downloaded: s.downloaded.load(Ordering::Relaxed),
            bytes_uploaded: s.uploaded.load(Ordering::Relaxed),
            throttled: s.throttled.load(Ordering::Relaxed),
        }
    }
}

/// The host to talk to for a registry name.
fn api_host(registry: &str) -> String {
    match registry {
        "docker.io" | "index.docker.io" => DOCKER_HUB_API.to_owned(),
        other => other.to_owned(),
    }
}

impl Inner {
    fn plain_http_allowed(&self, authority: &str) -> bool {
        match &self.config.plain_http {
            PlainHttp::Never => false,
            PlainHttp::All => true,
            PlainHttp::Hosts(hosts) => hosts.iter().any(|h| h == authority),
        }
    }

    /// `<scheme>://<host>/` for a registry, after checking the host is a plain `host[:port]`.
    fn base_url(&self, host: &str) -> Result<Url> {
        let ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
        if !ok {
            return Err(Error::invalid_input(format!("invalid registry host {host:?}")));
        }
        let scheme = if self.plain_http_allowed(host) { "http" } else { "https" };
        Url::parse(&format!("{scheme}://{host}/"))
            .map_err(|e| Error::invalid_input(format!("invalid registry host {host:?}: {e}")))
    }

    fn capability(&self, key: &str) -> ReferrersCapability {
        self.capabilities
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
            .unwrap_or(ReferrersCapability::Unknown)
    }

    /// A repository of `host` other than `except` that this client stored `digest` in, if any.
    fn stored_blob_source(&self, host: &str, digest: &Digest, except: &str) -> Option<String> {
        let stored = self.stored_blobs.lock().unwrap_or_else(|p| p.into_inner());
        stored.get(&(host.to_owned(), digest.clone())).filter(|r| *r != except).cloned()
    }

    /// Remember that `repository` of `host` holds `digest` (only small blobs, and a bounded number: the
    /// blobs shared between repositories, like the empty config of every referrer, are the small ones).
    fn remember_stored_blob(&self, host: &str, digest: &Digest, size: u64, repository: &str) {
        const MAX_SIZE: u64 = 64 * 1024;
        const MAX_ENTRIES: usize = 1024;
        let mut stored = self.stored_blobs.lock().unwrap_or_else(|p| p.into_inner());
        if size <= MAX_SIZE && stored.len() < MAX_ENTRIES {
            stored.entry((host.to_owned(), digest.clone())).or_insert_with(|| repository.to_owned());
        }
    }

    /// Whether a blob mount from `from` into a repository of `host` was refused before.
    fn mount_refused_before(&self, host: &str, from: &str) -> bool {
        let refused = self.refused_mounts.lock().unwrap_or_else(|p| p.into_inner());
        refused.contains(&(host.to_owned(), from.to_owned()))
    }

    /// Remember that `host` refused a blob mount from `from` (a bounded number of them).
    fn remember_refused_mount(&self, host: &str, from: &str) {
        const MAX_ENTRIES: usize = 1024;
        let mut refused = self.refused_mounts.lock().unwrap_or_else(|p| p.into_inner());
        if refused.len() < MAX_ENTRIES {
            refused.insert((host.to_owned(), from.to_owned()));
        }
    }

    fn set_capability(&self, key: &str, capability: ReferrersCapability) {
        self.capabilities.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned(), capability);
    }
}

/// Check a repository name against the distribution grammar's character set, so nothing in it can
/// change the structure of a URL or a token scope.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.split('/').all(|c| {
            c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        });
    if valid { Ok(()) } else { Err(Error::invalid_input(format!("invalid repository name {name:?}"))) }
}

/// One repository of a registry.
#[derive(Clone, Debug)]
pub struct RegistryRepository {
    client: RegistryClient,
    host: String,
    name: String,
    /// Named by the registry's catalog (see [`RegistryRepository::from_catalog`]).
    in_catalog: bool,
}

/// A manifest reference: a tag or a digest.
pub(crate) enum Reference {
    Tag(String),
    Digest(Digest),
}

impl RegistryRepository {
    /// This repository, as the registry's catalog named it: a tag listing answered `404 NAME_UNKNOWN`
    /// then reads as no tags. distribution answers so for a repository whose manifests were all pushed
    /// by digest (it has no tag directory) although its catalog lists it; a repository the caller named
    /// itself keeps the error (a mistyped name).
    pub fn from_catalog(mut self) -> RegistryRepository {
        self.in_catalog = true;
        self
    }

    /// [`Repository::tag_pages`], holding its own handle on the client (no borrow of `self`).
    pub(crate) fn owned_tag_pages(&self) -> futures_util::stream::BoxStream<'static, Result<Vec<String>>> {
        tags::tag_pages(self)
    }

    /// The registry host requests go to (`registry-1.docker.io` for Docker Hub).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The repository path.
    pub fn repository_name(&self) -> &str {
        &self.name
    }

    /// The client this repository's requests go through (for other repositories of the same run).
    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// Override what is known about referrers API support (e.g. from a CLI flag).
    pub fn set_referrers_capability(&self, capability: ReferrersCapability) {
        self.inner().set_capability(&self.name(), capability);
    }

    /// Mount a blob from another repository of the same registry. `Ok(true)` when mounted;
    /// `Ok(false)` when the registry declined (the upload session it opened instead is cancelled).
    pub async fn mount_blob(&self, digest: &Digest, from_repo: &str) -> Result<bool> {
        blobs::mount_blob(self, digest, from_repo).await
    }

    /// Upload a blob, mounting it from `from_repo` when the registry can; falls back to uploading
    /// through the session the registry opened.
    pub async fn put_blob_from(&self, bytes: Bytes, from_repo: &str) -> Result<Digest> {
        blobs::put_blob(self, bytes, Some(from_repo)).await
    }

    fn inner(&self) -> &Inner {
        &self.client.inner
    }

    /// `<base>/v2/<name>/<rest>`, after checking the name against the distribution grammar's
    /// character set (so nothing in it can change the URL's structure).
    fn url(&self, rest: &str) -> Result<Url> {
        check_name(&self.name)?;
        let base = self.inner().base_url(&self.host)?;
        base.join(&format!("v2/{}/{rest}", self.name))
            .map_err(|e| Error::invalid_input(format!("building a URL for {}: {e}", self.name())))
    }

    fn scope(&self, actions: &str) -> Vec<String> {
        vec![format!("repository:{}:{actions}", self.name)]
    }

    /// Parse a tag or digest reference.
    fn reference(&self, reference: &str) -> Result<Reference> {
        if reference.contains(':') {
            return reference
                .parse()
                .map(Reference::Digest)
                .map_err(|e| e.context(format!("reference in {}", self.name())));
        }
        let ok = reference.len() <= 128
            && reference.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && reference.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if ok {
            Ok(Reference::Tag(reference.to_owned()))
        } else {
            Err(Error::invalid_input(format!("invalid tag {reference:?} for {}", self.name())))
        }
    }

    async fn call(&self, scopes: &[String], call: &http::Call<'_>) -> Result<http::Reply> {
        self.inner().call(&self.host, scopes, call).await
    }
}

impl Repository for RegistryRepository {
    fn name(&self) -> String {
        format!("{}/{}", self.host, self.name)
    }

    async fn get_manifest(&self, reference: &str) -> Result<Option<RawManifest>> {
        manifests::get(self, reference).await
    }

    async fn head_manifest(&self, reference: &str) -> Result<Option<Descriptor>> {
        manifests::head(self, reference).await
    }

    async fn put_manifest(&self, bytes: Bytes, media_type: &str, tag: Option<&str>) -> Result<PutManifest> {
        manifests::put(self, bytes, media_type, tag, None).await
    }

    async fn put_manifest_if_match(
        &self,
        bytes: Bytes,
        media_type: &str,
        tag: &str,
        etag: &str,
    ) -> Result<PutManifest> {
        manifests::put(self, bytes, media_type, Some(tag), Some(etag)).await
    }

    async fn delete_manifest(&self, digest: &Digest) -> Result<()> {
        manifests::delete(self, digest).await
    }

    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        blobs::blob_size(self, digest).await
    }

    async fn get_blob(&self, descriptor: &Descriptor, max_bytes: u64) -> Result<Bytes> {
        blobs::get_blob(self, descriptor, max_bytes).await
    }

    async fn get_blob_prefix(&self, descriptor: &Descriptor, max_bytes: u64) -> Result<BlobPrefix> {
        blobs::get_blob_prefix(self, descriptor, max_bytes).await
    }

    async fn put_blob(&self, bytes: Bytes) -> Result<Digest> {
        blobs::put_blob(self, bytes, None).await
    }

    async fn put_missing_blob(&self, bytes: Bytes, digest: &Digest) -> Result<Digest> {
        blobs::put_missing_blob(self, bytes, digest).await
    }

    async fn read_blob_stream(&self, descriptor: &Descriptor) -> Result<super::BlobChunks> {
        blob_streams::read_blob_stream(self, descriptor).await
    }

    async fn put_blob_stream(&self, descriptor: &Descriptor, chunks: super::BlobChunks) -> Result<Digest> {
        blob_streams::put_blob_stream_from(self, descriptor, async move { Ok(chunks) }).await
    }

    async fn put_blob_stream_from<F>(&self, descriptor: &Descriptor, open: F) -> Result<Digest>
    where
        F: Future<Output = Result<super::BlobChunks>> + Send,
    {
        blob_streams::put_blob_stream_from(self, descriptor, open).await
    }

    // The inherent `mount_blob` (by digest) stays for callers that hold no descriptor.
    async fn mount_blob(&self, descriptor: &Descriptor, from: &str) -> Result<bool> {
        blob_streams::mount(self, descriptor, from).await
    }

    async fn list_tags(&self) -> Result<Vec<String>> {
        tags::list_tags(self).await
    }

    // What guards a delete never reads an unknown repository as one without tags.
    async fn delete_side_tags(&self) -> Result<std::sync::Arc<std::collections::BTreeMap<String, Descriptor>>> {
        crate::store::resolve_tags(&RegistryRepository { in_catalog: false, ..self.clone() })
            .await
            .map(std::sync::Arc::new)
    }

    fn tag_pages(&self) -> futures_util::stream::BoxStream<'_, Result<Vec<String>>> {
        tags::tag_pages(self)
    }

    async fn referrers(&self, subject: &Digest, artifact_type: Option<&str>) -> Result<Referrers> {
        referrers::referrers(self, subject, artifact_type).await
    }

    fn referrers_capability(&self) -> ReferrersCapability {
        self.inner().capability(&self.name())
    }

    fn learn(&self, fact: Learnt) {
        let mut facts = self.inner().facts.lock().unwrap_or_else(|p| p.into_inner());
        facts.entry(self.host.clone()).or_default().record(fact);
    }

    fn facts(&self) -> HostFacts {
        self.inner().facts.lock().unwrap_or_else(|p| p.into_inner()).get(&self.host).cloned().unwrap_or_default()
    }

    async fn delete_support(&self) -> DeleteSupport {
        let host = self.host().to_owned();
        let _probing = self.inner().delete_probe.take(&host).await;
        if let Some(known) = self.inner().delete_support.lock().unwrap_or_else(|p| p.into_inner()).get(&host) {
            return known.clone();
        }
        let support = manifests::probe_delete(self).await;
        // Only an answer about the registry as a whole is kept for its other repositories.
        if !matches!(support, DeleteSupport::Unknown) {
            self.inner().delete_support.lock().unwrap_or_else(|p| p.into_inner()).insert(host, support.clone());
        }
        support
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_names_map_to_the_api_host() {
        assert_eq!(api_host("docker.io"), DOCKER_HUB_API);
        assert_eq!(api_host("index.docker.io"), DOCKER_HUB_API);
        assert_eq!(api_host("ghcr.io"), "ghcr.io");
        assert_eq!(credentials::credential_keys(DOCKER_HUB_API)[0], "https://index.docker.io/v1/");
    }

    #[test]
    fn urls_are_checked_and_plain_http_is_opt_in() {
        let client = RegistryClient::new(ClientConfig {
            plain_http: PlainHttp::Hosts(vec!["localhost:5000".into()]),
            ..ClientConfig::default()
        })
        .unwrap();
        let repo = client.repository("localhost:5000", "a/b-c");
        assert_eq!(repo.url("tags/list").unwrap().as_str(), "http://localhost:5000/v2/a/b-c/tags/list");
        let repo = client.repository("ghcr.io", "a/b");
        assert_eq!(repo.url("tags/list").unwrap().as_str(), "https://ghcr.io/v2/a/b/tags/list");
        for bad in ["A/b", "a//b", "a/../b", "a?x", "", "-a"] {
            let err = client.repository("ghcr.io", bad).url("x").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}: {err}");
            assert_eq!(err.to_string(), format!("invalid repository name {bad:?}"));
        }
        let err = client.repository("evil.io/x?", "a").url("x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert_eq!(err.to_string(), r#"invalid registry host "evil.io/x?""#);
        let repo = client.repository("ghcr.io", "a");
        assert!(matches!(repo.reference("v1.0_x"), Ok(Reference::Tag(_))));
        assert!(matches!(repo.reference(&Digest::sha256(b"").to_string()), Ok(Reference::Digest(_))));
        let err = repo.reference("../x").err().unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert_eq!(err.to_string(), r#"invalid tag "../x" for ghcr.io/a"#);
        // Looks like a digest, so it is refused as one (not as a tag with a `:` in it).
        let err = repo.reference("sha256:zz").err().unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidFormat, "{err}");
        assert!(err.to_string().contains(r#"digest "sha256:zz" must have 64 lowercase hex characters"#), "{err}");
    }
}
