//! Registry authentication: `WWW-Authenticate` challenges, bearer tokens (GET, or the OAuth2
//! refresh-token POST for identity tokens), Basic, and the caches that keep it to one token request
//! per registry and scope set.
//!
//! There is no `GET /v2/` probe: requests go out anonymously until a registry answers 401 with a
//! challenge, and from then on the registry's scheme is remembered and used up front.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use url::Url;

use super::credentials::{self, Credential, CredentialSource};
use super::errors::status_error;
use super::http::Call;
use super::{Inner, api_host};
use crate::error::{Error, ErrorKind, Result};
use crate::keyed_locks::KeyedLocks;

/// One challenge of a `WWW-Authenticate` header: a scheme (lowercased) and its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Every challenge in every `WWW-Authenticate` header of a response.
pub(crate) fn challenges_of(headers: &HeaderMap) -> Vec<Challenge> {
    headers.get_all(WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok()).flat_map(parse_challenges).collect()
}

/// Parse a `WWW-Authenticate` value (RFC 9110 §11.6.1): several challenges, each a scheme and
/// comma-separated `name=value` pairs whose values are tokens or quoted strings with `\` escapes.
/// Tolerant: junk is skipped rather than failing the whole header.
pub(crate) fn parse_challenges(input: &str) -> Vec<Challenge> {
    let s = input.as_bytes();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let skip = |i: &mut usize, set: &[u8]| {
        while *i < s.len() && set.contains(&s[*i]) {
            *i += 1;
        }
    };
    loop {
        skip(&mut i, b" \t,");
        if i >= s.len() {
            break;
        }
        let start = i;
        while i < s.len() && is_tchar(s[i]) {
            i += 1;
        }
        if start == i {
            i += 1;
            continue;
        }
        let name = String::from_utf8_lossy(&s[start..i]).into_owned();
        skip(&mut i, b" \t");
        match out.last_mut() {
            Some(challenge) if i < s.len() && s[i] == b'=' => {
                i += 1;
                skip(&mut i, b" \t");
                let value = if i < s.len() && s[i] == b'"' {
                    i += 1;
                    let mut v = Vec::new();
                    while i < s.len() && s[i] != b'"' {
                        if s[i] == b'\\' && i + 1 < s.len() {
                            i += 1;
                        }
                        v.push(s[i]);
                        i += 1;
                    }
                    i += 1;
                    v
                } else {
                    let vs = i;
                    while i < s.len() && !b", \t".contains(&s[i]) {
                        i += 1;
                    }
                    s[vs..i].to_vec()
                };
                challenge.params.push((name.to_ascii_lowercase(), String::from_utf8_lossy(&value).into_owned()));
            }
            _ => out.push(Challenge { scheme: name.to_ascii_lowercase(), params: Vec::new() }),
        }
    }
    out
}

/// What a registry asked for in its last challenge.
#[derive(Clone, Debug)]
enum HostAuth {
    Bearer { realm: Url, service: Option<String> },
    Basic,
}

struct CachedToken {
    header: HeaderValue,
    expires: Instant,
}

/// Per-client authentication state, shared by every clone of the client.
#[derive(Default)]
pub(crate) struct AuthCache {
    hosts: Mutex<HashMap<String, HostAuth>>,
    tokens: Mutex<HashMap<String, CachedToken>>,
    credentials: Mutex<HashMap<String, Option<Credential>>>,
    /// One gate per (host, scopes) being fetched: concurrent calls for the same scopes wait for one
    /// token instead of each fetching, while other repositories (other scopes) fetch theirs at once.
    fetching: KeyedLocks,
    /// One credential lookup at a time: a credential helper is a program, run once per host.
    looking_up: tokio::sync::Mutex<()>,
    /// When each host's credential was last looked up again after a refusal (see
    /// [`Inner::refreshed_credential`]).
    refreshed: Mutex<HashMap<String, Instant>>,
}

/// How long after looking a host's credential up again a refusal is taken as final rather than as an
/// expiry: a credential that is simply wrong (or lacks a permission) would otherwise run the helper on
/// every refused request.
const REFRESH_INTERVAL: Duration = Duration::from_secs(60);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn token_key(host: &str, scopes: &[String]) -> String {
    let set: BTreeSet<&str> = scopes.iter().map(String::as_str).collect();
    format!("{host} {}", set.into_iter().collect::<Vec<_>>().join(" "))
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// Cached tokens past which expired ones are swept on the next insert.
const EXPIRED_SWEEP_AT: usize = 256;

/// Cache `token` under `key`. A batch over a whole registry gets a token per repository: past
/// [`EXPIRED_SWEEP_AT`] entries the expired ones are forgotten, so the cache holds the tokens in use,
/// not one for every repository ever visited.
fn remember(tokens: &mut HashMap<String, CachedToken>, key: String, token: CachedToken) {
    if tokens.len() >= EXPIRED_SWEEP_AT {
        let now = Instant::now();
        tokens.retain(|_, t| t.expires > now);
    }
    tokens.insert(key, token);
}

/// Most bytes accepted from a token endpoint.
const MAX_TOKEN_BODY: u64 = 1024 * 1024;
/// Token lifetime when the endpoint does not say (distribution's token spec default).
const DEFAULT_TOKEN_SECS: u64 = 60;

fn basic_header(username: &str, password: &str) -> Result<HeaderValue> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    sensitive(format!("Basic {encoded}"))
}

fn sensitive(value: String) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(&value).map_err(|_| {
        Error::new(ErrorKind::InvalidInput, "credential or token contains characters not allowed in an HTTP header")
    })?;
    v.set_sensitive(true);
    Ok(v)
}

impl Inner {
    /// The Authorization header to send up front for `host`, from what its last challenge asked.
    pub(crate) async fn auth_header(&self, host: &str, scopes: &[String]) -> Result<Option<HeaderValue>> {
        let known = lock(&self.auth.hosts).get(host).cloned();
        match known {
            None => Ok(None),
            Some(HostAuth::Basic) => match self.credential(host).await? {
                Some(Credential::Basic { username, password }) => basic_header(&username, &password).map(Some),
                _ => Ok(None),
            },
            Some(HostAuth::Bearer { realm, service }) => {
                self.bearer(host, &realm, service.as_deref(), scopes, &[]).await.map(Some)
            }
        }
    }

    /// React to a 401 challenge to a request sent with `sent`: remember the scheme and return the
    /// header to retry with, or `None` when we have nothing better to offer (then the 401 stands).
    pub(crate) async fn answer_challenge(
        &self,
        host: &str,
        scopes: &[String],
        challenges: &[Challenge],
        sent: Option<&HeaderValue>,
    ) -> Result<Option<HeaderValue>> {
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer" && c.param("realm").is_some()) {
            let realm_text = bearer.param("realm").unwrap_or_default();
            let realm = Url::parse(realm_text).map_err(|e| {
                Error::new(
                    ErrorKind::Unauthorized,
                    format!("registry {host} sent an invalid token realm {realm_text:?}: {e}"),
                )
            })?;
            let service = bearer.param("service").map(str::to_owned);
            lock(&self.auth.hosts)
                .insert(host.to_owned(), HostAuth::Bearer { realm: realm.clone(), service: service.clone() });
            // The token we sent (if any) was not good enough: never reuse it. One that another request
            // fetched since (answering the same expiry) is kept: removing it would make every request
            // in flight fetch its own, one after another.
            {
                let key = token_key(host, scopes);
                let mut tokens = lock(&self.auth.tokens);
                if tokens.get(&key).is_some_and(|t| Some(&t.header) == sent) {
                    tokens.remove(&key);
                }
            }
            let extra: Vec<String> =
                bearer.param("scope").unwrap_or_default().split_whitespace().map(str::to_owned).collect();
            return self.bearer(host, &realm, service.as_deref(), scopes, &extra).await.map(Some);
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            lock(&self.auth.hosts).insert(host.to_owned(), HostAuth::Basic);
            let mut credential = self.credential(host).await?;
            if let Some(stale) = &credential
                && sent.is_some()
                && sent == basic_of(stale)?.as_ref()
            {
                // The credential we sent was refused: a helper's may have expired since it was looked up.
                credential = self.refreshed_credential(host, stale).await?;
            }
            if let Some(c) = &credential {
                return basic_of(c);
            }
        }
        Ok(None)
    }

    /// A cached bearer token for (host, scopes), or a new one.
    async fn bearer(
        &self,
        host: &str,
        realm: &Url,
        service: Option<&str>,
        scopes: &[String],
        extra_scopes: &[String],
    ) -> Result<HeaderValue> {
        let key = token_key(host, scopes);
        let cached = |this: &Self| {
            lock(&this.auth.tokens).get(&key).filter(|t| t.expires > Instant::now()).map(|t| t.header.clone())
        };
        if let Some(h) = cached(self) {
            return Ok(h);
        }
        let _turn = self.auth.fetching.take(&key).await;
        if let Some(h) = cached(self) {
            return Ok(h);
        }
        let mut wanted: Vec<String> = scopes.to_vec();
        wanted.extend(extra_scopes.iter().filter(|s| !scopes.contains(s)).cloned());
        let (token, lifetime) = self.fetch_token(host, realm, service, &wanted).await?;
        let header = sensitive(format!("Bearer {token}"))?;
        let expires = Instant::now().checked_add(lifetime).unwrap_or_else(Instant::now);
        remember(&mut lock(&self.auth.tokens), key.clone(), CachedToken { header: header.clone(), expires });
        Ok(header)
    }

    /// Ask the realm for a token with the credential for `host`; when the realm refuses it, once more with
    /// a credential looked up again (a credential helper's tokens expire: GAR's in an hour, ECR's in 12).
    async fn fetch_token(
        &self,
        host: &str,
        realm: &Url,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<(String, Duration)> {
        let credential = self.credential(host).await?;
        match self.request_token(host, realm, service, scopes, credential.as_ref()).await {
            // Any refusal but a throttle or a server error (those say nothing of the credential).
            Err(e) if e.kind() == ErrorKind::Unauthorized => {
                let Some(stale) = &credential else { return Err(e) };
                match self.refreshed_credential(host, stale).await? {
                    Some(fresh) => self.request_token(host, realm, service, scopes, Some(&fresh)).await,
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    /// One token request: a GET (with Basic credentials if any), or for an identity token the OAuth2
    /// `grant_type=refresh_token` POST.
    async fn request_token(
        &self,
        host: &str,
        realm: &Url,
        service: Option<&str>,
        scopes: &[String],
        credential: Option<&Credential>,
    ) -> Result<(String, Duration)> {
        let what = format!(
            "fetching a token for {host} from {}{} (scopes: {})",
            realm.origin().ascii_serialization(),
            realm.path(),
            scopes.join(" ")
        );
        let mut url = realm.clone();
        let call = match credential {
            Some(Credential::IdentityToken(refresh)) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token").append_pair("refresh_token", refresh);
                form.append_pair("client_id", "att2ref");
                if let Some(s) = service {
                    form.append_pair("service", s);
                }
                form.append_pair("scope", &scopes.join(" "));
                Call::new(&what, Method::POST, url)
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"))
                    .body(form.finish().into_bytes().into())
            }
            _ => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for s in scopes {
                        q.append_pair("scope", s);
                    }
                }
                Call::new(&what, Method::GET, url)
            }
        };
        let call = call.cap(MAX_TOKEN_BODY);
        let basic = match credential {
            Some(c) => basic_of(c)?,
            None => None,
        };
        // Basic credentials go to the realm's origin only: `execute` drops them on any redirect away.
        let origin = call.url.origin();
        let reply = self.execute(&call, basic.as_ref().map(|h| (h, &origin))).await?;
        if reply.status != StatusCode::OK {
            let err = status_error(&what, reply.status, &reply.body);
            // Whatever else the token endpoint says (404, 405, 400…), the object was not shown to be
            // absent: never let it read as a NotFound.
            let kind = match err.kind() {
                ErrorKind::RateLimited | ErrorKind::Registry => err.kind(),
                _ => ErrorKind::Unauthorized,
            };
            return Err(Error::new(kind, err.message().to_owned()));
        }
        let parsed: TokenResponse = serde_json::from_slice(&reply.body).map_err(|e| {
            Error::new(ErrorKind::Unauthorized, format!("{what}: the token endpoint answered invalid JSON: {e}"))
        })?;
        let token = parsed.token.or(parsed.access_token).filter(|t| !t.is_empty()).ok_or_else(|| {
            Error::new(ErrorKind::Unauthorized, format!("{what}: the token endpoint answered no token"))
        })?;
        // A hostile or broken endpoint may claim any lifetime; a day is plenty and cannot overflow a clock.
        let secs = parsed.expires_in.unwrap_or(DEFAULT_TOKEN_SECS).min(24 * 3600);
        // Renew a little early so a token does not expire between our check and the registry's.
        let lifetime =
            Duration::from_secs(secs).saturating_sub(Duration::from_secs(10)).max(Duration::from_secs(secs) / 2);
        Ok((token, lifetime))
    }

    /// The credential for `host` (an API host): the one given for that registry, else the configured
    /// files (looked up once).
    pub(crate) async fn credential(&self, host: &str) -> Result<Option<Credential>> {
        if let Some((_, c)) = self.config.explicit_credentials.iter().find(|(registry, _)| api_host(registry) == host) {
            return Ok(Some(c.clone()));
        }
        let CredentialSource::ConfigFiles(paths) = &self.config.credentials else {
            return Ok(None);
        };
        if let Some(c) = lock(&self.auth.credentials).get(host) {
            return Ok(c.clone());
        }
        let _one = self.auth.looking_up.lock().await;
        if let Some(c) = lock(&self.auth.credentials).get(host) {
            return Ok(c.clone());
        }
        let (paths, h) = (paths.clone(), host.to_owned());
        let found = tokio::task::spawn_blocking(move || credentials::lookup(&paths, &h))
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("credential lookup for {host} did not finish: {e}")))??;
        lock(&self.auth.credentials).insert(host.to_owned(), found.clone());
        Ok(found)
    }

    /// After a request sent with the Basic header `sent` was refused without a challenge (403): the
    /// header of `host`'s credential looked up again, if `sent` was its current one and the new one
    /// differs.
    pub(crate) async fn renewed_basic(&self, host: &str, sent: &HeaderValue) -> Result<Option<HeaderValue>> {
        let Some(stale) = self.credential(host).await? else { return Ok(None) };
        if basic_of(&stale)?.as_ref() != Some(sent) {
            return Ok(None);
        }
        match self.refreshed_credential(host, &stale).await? {
            Some(fresh) => basic_of(&fresh),
            None => Ok(None),
        }
    }

    /// After `stale` was refused for `host`: the credential looked up again, if it differs (`None` when
    /// it was given outright, or the files and helpers have nothing newer). Requests refused at the same
    /// time share one look-up: a helper (`docker-credential-gcloud`, `-ecr-login`) can take a second.
    async fn refreshed_credential(&self, host: &str, stale: &Credential) -> Result<Option<Credential>> {
        let given = self.config.explicit_credentials.keys().any(|registry| api_host(registry) == host);
        let CredentialSource::ConfigFiles(paths) = &self.config.credentials else {
            return Ok(None);
        };
        if given {
            return Ok(None);
        }
        let _one = self.auth.looking_up.lock().await;
        // Another refused request may have looked it up again meanwhile.
        if let Some(current) = lock(&self.auth.credentials).get(host).cloned()
            && current.as_ref() != Some(stale)
        {
            return Ok(current);
        }
        {
            let mut refreshed = lock(&self.auth.refreshed);
            if refreshed.get(host).is_some_and(|at| at.elapsed() < REFRESH_INTERVAL) {
                return Ok(None);
            }
            refreshed.insert(host.to_owned(), Instant::now());
        }
        let (paths, h) = (paths.clone(), host.to_owned());
        let found = tokio::task::spawn_blocking(move || credentials::lookup(&paths, &h))
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("credential lookup for {host} did not finish: {e}")))??;
        lock(&self.auth.credentials).insert(host.to_owned(), found.clone());
        tracing::info!(
            host,
            renewed = found.as_ref().is_some_and(|c| c != stale),
            "credential looked up again after a refusal"
        );
        Ok(found.filter(|c| c != stale))
    }
}

/// The Basic header of a username/password credential (`None` for an identity token).
fn basic_of(credential: &Credential) -> Result<Option<HeaderValue>> {
    match credential {
        Credential::Basic { username, password } => basic_header(username, password).map(Some),
        Credential::IdentityToken(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_tokens_are_forgotten_once_the_cache_is_large() {
        let token = |expires| CachedToken { header: HeaderValue::from_static("Bearer t"), expires };
        let (past, later) = (Instant::now(), Instant::now() + Duration::from_secs(300));
        let mut tokens = HashMap::new();
        for i in 0..EXPIRED_SWEEP_AT - 1 {
            remember(&mut tokens, format!("expired {i}"), token(past));
        }
        remember(&mut tokens, "live".into(), token(later));
        assert_eq!(tokens.len(), EXPIRED_SWEEP_AT, "nothing swept below the mark");
        remember(&mut tokens, "new".into(), token(later));
        let mut left: Vec<&String> = tokens.keys().collect();
        left.sort();
        assert_eq!(left, ["live", "new"]);
    }

    #[test]
    fn parses_bearer_with_quoted_escapes() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.example/token",service="reg \"x\"",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.example/token"));
        assert_eq!(c[0].param("service"), Some(r#"reg "x""#));
        assert_eq!(c[0].param("Scope"), Some("repository:a/b:pull,push"));
    }

    #[test]
    fn parses_several_challenges_and_token_values() {
        let c = parse_challenges(
            r#"Basic realm="Registry Realm", Bearer realm=https://a/t , error=insufficient_scope, Negotiate"#,
        );
        let schemes: Vec<&str> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer", "negotiate"]);
        assert_eq!(c[0].param("realm"), Some("Registry Realm"));
        assert_eq!(c[1].param("realm"), Some("https://a/t"));
        assert_eq!(c[1].param("error"), Some("insufficient_scope"));
    }

    #[test]
    fn tolerates_junk() {
        assert!(parse_challenges("").is_empty());
        let c = parse_challenges(r#"=,, Bearer realm="unterminated"#);
        assert_eq!(c[0].param("realm"), Some("unterminated"));
        let c = parse_challenges("Basic dXNlcjpwYXNz==");
        assert_eq!(c[0].scheme, "basic");
    }

    #[test]
    fn token_keys_ignore_scope_order() {
        let a = token_key("h", &["b".into(), "a".into()]);
        assert_eq!(a, token_key("h", &["a".into(), "b".into(), "a".into()]));
        assert_ne!(a, token_key("h2", &["a".into(), "b".into()]));
    }
}
