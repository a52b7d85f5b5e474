//! Request execution: authentication hand-off, manual redirects (so credentials never follow a
//! redirect to another origin), retries with jittered backoff and `Retry-After`, capped body reads
//! that hash while streaming, and the client's counters.

use std::hash::{BuildHasher, Hasher as _};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use url::{Origin, Url};

use super::auth::challenges_of;
use super::{Inner, RetryPolicy};
use crate::error::{Error, ErrorKind, Result};
use crate::model::digest::{Algorithm, Digest, Hasher};

/// Most bytes read from an error answer: enough for a distribution error body.
const ERROR_BODY_CAP: u64 = 64 * 1024;
const MAX_REDIRECTS: usize = 10;
/// Longest single wait between attempts, whatever `Retry-After` asks for.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Least wait before a request answered 429 is sent again.
const MIN_THROTTLED_WAIT: Duration = Duration::from_millis(10);

/// One request, replayable unless its body is a stream: a `Bytes` body can be resent by retries and
/// redirects.
pub(crate) struct Call<'a> {
    /// Method, object and repository, for messages: "GET manifest reg/repo:tag".
    pub what: &'a str,
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// Largest successful body accepted (declared or actual).
    pub max_body: u64,
    /// Hash a successful body with this algorithm while it streams.
    pub hash: Option<Algorithm>,
    /// A successful body longer than `max_body` is cut there (and the connection dropped) instead of
    /// being refused: for reading the start of a blob from a registry that may ignore `Range`.
    pub truncate: bool,
    /// A body sent as it is produced (a blob too large to hold): it can be sent once, so the request is
    /// never retried nor replayed after a challenge. Taken by the one attempt.
    pub streamed_body: Option<Mutex<Option<reqwest::Body>>>,
    /// A successful body is left unread, in [`Reply::response`], for the caller to stream.
    pub unbuffered: bool,
    /// This request's whole-exchange timeout instead of the client's.
    pub timeout: Option<Duration>,
    /// Never sent again after a wait (see [`Call::no_retry`]); an immediate replay to answer an
    /// authentication challenge is still made.
    pub no_retry: bool,
}

impl<'a> Call<'a> {
    pub(crate) fn new(what: &'a str, method: Method, url: Url) -> Self {
        Call {
            what,
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            max_body: ERROR_BODY_CAP,
            hash: None,
            truncate: false,
            streamed_body: None,
            unbuffered: false,
            timeout: None,
            no_retry: false,
        }
    }

    pub(crate) fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    pub(crate) fn body(mut self, body: Bytes) -> Self {
        self.body = Some(body);
        self
    }

    pub(crate) fn cap(mut self, max_body: u64) -> Self {
        self.max_body = max_body;
        self
    }

    pub(crate) fn hash(mut self, algorithm: Algorithm) -> Self {
        self.hash = Some(algorithm);
        self
    }

    /// Cut a successful body at the cap instead of refusing it.
    pub(crate) fn truncate(mut self) -> Self {
        self.truncate = true;
        self
    }

    /// Send `body` as it is produced, once (see [`Call::streamed_body`]).
    pub(crate) fn stream_body(mut self, body: reqwest::Body) -> Self {
        self.streamed_body = Some(Mutex::new(Some(body)));
        self
    }

    /// Leave a successful body unread (see [`Reply::response`]).
    pub(crate) fn unbuffered(mut self) -> Self {
        self.unbuffered = true;
        self
    }

    /// Send this request at most once, whatever the answer: its body was merged from an earlier read,
    /// and the same body sent again after a back-off (or after a timeout whose first attempt may have
    /// landed) could overwrite what another writer stored meanwhile. The caller reads again and merges.
    pub(crate) fn no_retry(mut self) -> Self {
        self.no_retry = true;
        self
    }

    /// Override the client's timeout for this request (`None` keeps it).
    pub(crate) fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether the request can be sent again (a retry, an answer to a challenge).
    fn replayable(&self) -> bool {
        self.streamed_body.is_none()
    }

    /// The streamed body, the first time it is asked for.
    fn take_streamed_body(&self) -> Option<reqwest::Body> {
        self.streamed_body.as_ref().and_then(|b| b.lock().unwrap_or_else(|p| p.into_inner()).take())
    }
}

/// A complete answer.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The URL that answered (after redirects), for resolving relative `Location` / `Link`.
    pub url: Url,
    /// Digest of the body, when the call asked for one and the status was a success.
    pub digest: Option<Digest>,
    /// This answers a repeat of the request, and an earlier attempt may have taken effect: it got a 5xx
    /// or no answer at all after the request was sent. (A DELETE that then finds nothing was applied.)
    pub replayed: bool,
    /// Body bytes that arrived, including any past a cut.
    pub received: u64,
    /// The unread answer of a successful [`Call::unbuffered`] request (`body` is then empty).
    pub response: Option<reqwest::Response>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
    }
}

/// The counters behind [`super::ClientStats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub downloaded: AtomicU64,
    pub uploaded: AtomicU64,
    pub throttled: AtomicU64,
}

fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

enum Failure {
    /// The exchange failed (connect, reset, timeout): maybe worth another attempt.
    Transport(reqwest::Error),
    /// A decision of ours (cap exceeded, scheme refused): never retried.
    Fatal(Error),
}

/// Whether `path` is (or may be read by a registry as) under the registry API, `/v2/`: doubled slashes
/// folded, in any case, or with any percent escape (which a front may decode before routing).
pub(crate) fn in_registry_api(path: &str) -> bool {
    let folded = path.trim_start_matches('/').to_ascii_lowercase();
    folded == "v2" || folded.starts_with("v2/") || path.contains('%')
}

impl Inner {
    /// Count a retry made above this layer (a restarted upload), so the report shows it.
    pub(crate) fn count_retry(&self) {
        add(&self.stats.retries, 1);
    }

    /// Count body bytes read from an unbuffered answer.
    pub(crate) fn count_downloaded(&self, n: usize) {
        add(&self.stats.downloaded, n);
    }

    /// Count bytes of a streamed request body as they are sent.
    pub(crate) fn count_uploaded(&self, n: usize) {
        add(&self.stats.uploaded, n);
    }

    /// Send `call` to registry `host` needing `scopes`: with the auth the registry asked for before,
    /// once more after answering a fresh 401 challenge, and once more again when the Basic credential
    /// sent was refused and looking it up again gave another (a helper's that expired). Any final status
    /// is returned as a [`Reply`]; only transport failures and our own refusals are errors.
    pub(crate) async fn call(&self, host: &str, scopes: &[String], call: &Call<'_>) -> Result<Reply> {
        let origin = self.base_url(host)?.origin();
        let mut sent = self.auth_header(host, scopes).await?;
        let mut reply = self.execute(call, sent.as_ref().map(|h| (h, &origin))).await?;
        for round in 0..2 {
            // Only the registry itself says how to log in to it: a 401 from where a redirect led (object
            // storage, an upstream behind a pull-through front) names a realm that is not the registry's,
            // and answering it would send the registry's credentials there. A streamed body is gone. The
            // answer stands.
            if reply.url.origin() != origin || !call.replayable() {
                break;
            }
            let next = match reply.status {
                StatusCode::UNAUTHORIZED => {
                    let challenges = challenges_of(&reply.headers);
                    // A refused token was fetched anew in the first answer, with a credential looked up
                    // again if the token service refused it: only a Basic challenge is answered twice.
                    let bearer = challenges.iter().any(|c| c.scheme == "bearer");
                    if challenges.is_empty() || (round > 0 && bearer) {
                        break;
                    }
                    self.answer_challenge(host, scopes, &challenges, sent.as_ref()).await
                }
                // ECR answers an expired Basic credential with 403 `DENIED` ("Your authorization token has
                // expired"), not with a challenge.
                StatusCode::FORBIDDEN => match &sent {
                    Some(header) => self.renewed_basic(host, header).await,
                    None => Ok(None),
                },
                _ => break,
            }
            .map_err(|e| e.context(call.what))?;
            // After the first answer, only another credential is worth another attempt.
            let Some(header) = next.filter(|h| round == 0 || Some(h) != sent.as_ref()) else {
                break;
            };
            let replayed = reply.replayed;
            reply = self.execute(call, Some((&header, &origin))).await?;
            reply.replayed |= replayed;
            sent = Some(header);
        }
        Ok(reply)
    }

    /// Send with retries. `auth` is attached only while the URL is on the given origin.
    pub(crate) async fn execute(&self, call: &Call<'_>, auth: Option<(&HeaderValue, &Origin)>) -> Result<Reply> {
        let policy = &self.config.retry;
        let attempts = policy.max_attempts.max(1);
        let mut attempt = 1;
        // Attempts answered otherwise than 429 (those count against `attempts`), and the time spent
        // waiting out 429s (that counts against the patience).
        let (mut unthrottled, mut throttled_for) = (0, Duration::ZERO);
        // Whether an attempt so far may have reached the server and acted without our learning so.
        let mut uncertain = false;
        // Paced by the host the request is addressed to (a redirect elsewhere stays within its slot).
        let pace = self.pacing.host(&call.url.origin().ascii_serialization());
        loop {
            let slot = pace.start().await;
            let mut outcome = self.attempt(call, auth).await;
            if let Ok(reply) = &mut outcome {
                reply.replayed = uncertain;
            }
            uncertain |= match &outcome {
                Ok(r) => r.status.is_server_error(),
                // A connection that was never made carried no request.
                Err(Failure::Transport(e)) => !e.is_connect(),
                Err(Failure::Fatal(_)) => false,
            };
            let wait = match &outcome {
                // A 502/504 after a POST or PATCH may come after the server acted on it (an upload session
                // opened, a chunk applied): replaying it would fail or leak. 429 and 503 mean "not processed".
                // A 500 is retried when repeating the request cannot do harm twice: distribution answers one
                // on a read while a concurrent writer rewrites the tag, and proxies answer one for a backend
                // that dropped the connection (a PUT replayed after it took effect lands on the same state).
                Ok(r)
                    if matches!(r.status.as_u16(), 429 | 503)
                        || (matches!(r.status.as_u16(), 502 | 504)
                            && !matches!(call.method, Method::POST | Method::PATCH))
                        || (r.status.as_u16() == 500 && is_idempotent(&call.method)) =>
                {
                    // A wait of nothing (`0`, or a date our clock has already passed) would spend every
                    // attempt at once: our own backoff then.
                    let after = r
                        .header(RETRY_AFTER.as_str())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()))
                        .filter(|w| !w.is_zero());
                    Some(after.unwrap_or_else(|| backoff(policy, attempt)))
                }
                Err(Failure::Transport(e)) if is_transient(e, &call.method) => Some(backoff(policy, attempt)),
                _ => None,
            };
            // The registry's pause applies to every request of the host, even one that is not sent again;
            // it is in place before this request's slot is given back, so no waiting request slips through.
            let throttled = matches!(&outcome, Ok(r) if r.status == StatusCode::TOO_MANY_REQUESTS);
            match &outcome {
                Ok(_) if throttled => {
                    add(&self.stats.throttled, 1);
                    pace.throttled(&slot, wait.unwrap_or_else(|| backoff(policy, attempt)).min(MAX_WAIT));
                }
                Ok(_) => pace.answered(),
                Err(_) => {}
            }
            drop(slot);
            if !throttled {
                unthrottled += 1;
            }
            let again = |wait: &Duration| {
                if throttled {
                    throttled_for + (*wait).min(MAX_WAIT) <= policy.throttled_patience
                } else {
                    unthrottled < attempts
                }
            };
            match wait.filter(|w| call.replayable() && !call.no_retry && again(w)) {
                Some(wait) => {
                    // A 429 is waited out at least a little, so the patience runs out even with a
                    // policy whose backoff is zero.
                    let wait = if throttled { wait.max(MIN_THROTTLED_WAIT) } else { wait }.min(MAX_WAIT);
                    if throttled {
                        throttled_for += wait;
                    }
                    tracing::debug!(
                        what = call.what,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "retrying registry request"
                    );
                    add(&self.stats.retries, 1);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                _ => {
                    return outcome.map_err(|f| match f {
                        Failure::Fatal(e) => e,
                        Failure::Transport(e) => network_error(call.what, attempt, e),
                    });
                }
            }
        }
    }

    /// One attempt, following redirects by hand.
    async fn attempt(&self, call: &Call<'_>, auth: Option<(&HeaderValue, &Origin)>) -> Result<Reply, Failure> {
        let (mut url, mut method, mut body, mut auth) =
            (call.url.clone(), call.method.clone(), call.body.clone(), auth);
        for _ in 0..=MAX_REDIRECTS {
            self.check_scheme(&url).map_err(|e| Failure::Fatal(e.context(call.what)))?;
            let mut request = self.http.request(method.clone(), url.clone()).headers(call.headers.clone());
            // Once a redirect leaves the origin the credentials were meant for, they stay dropped.
            auth = auth.filter(|(_, origin)| url.origin() == **origin);
            if let Some((header, _)) = auth {
                request = request.header(AUTHORIZATION, header.clone());
            }
            if let Some(timeout) = call.timeout {
                request = request.timeout(timeout);
            }
            match &body {
                Some(b) => {
                    add(&self.stats.uploaded, b.len());
                    request = request.body(b.clone());
                }
                None if call.streamed_body.is_some() => {
                    let streamed = call.take_streamed_body().ok_or_else(|| {
                        Failure::Fatal(Error::new(
                            ErrorKind::Registry,
                            format!("{}: the streamed request body was already sent once", call.what),
                        ))
                    })?;
                    request = request.body(streamed);
                }
                None if matches!(method, Method::POST | Method::PUT | Method::PATCH) => {
                    request = request.body(Bytes::new())
                }
                None => {}
            }
            add(&self.stats.requests, 1);
            let response = request.send().await.map_err(Failure::Transport)?;
            let status = response.status();
            tracing::debug!(method = %method, host = url.host_str(), path = url.path(), status = status.as_u16(), "registry request");
            let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
            // A write to the registry API is never redirected: the target is ours to choose (a repository
            // the user named, a digest we computed), and a redirect could move it to another repository.
            // The token endpoint (outside `/v2/`) may redirect its POST, within one origin.
            // Nor is a write elsewhere (an upload session outside `/v2/`) redirected into the API.
            let target = location.as_deref().and_then(|l| url.join(l).ok());
            let into_api = in_registry_api(url.path()) || target.as_ref().is_some_and(|t| in_registry_api(t.path()));
            let registry_write = !matches!(method, Method::GET | Method::HEAD) && into_api;
            if registry_write && status.is_redirection() && location.is_some() {
                return Err(Failure::Fatal(Error::new(
                    ErrorKind::Registry,
                    format!("{}: refusing to follow a redirect ({status}) of a write to {}", call.what, url.path()),
                )));
            }
            let follow = status.is_redirection()
                && (matches!(method, Method::GET | Method::HEAD) || matches!(status.as_u16(), 307 | 308));
            if let (true, Some(location)) = (follow, location) {
                let next = url.join(&location).map_err(|e| {
                    Failure::Fatal(Error::new(
                        ErrorKind::Registry,
                        format!("{}: invalid redirect location: {e}", call.what),
                    ))
                })?;
                // A body may hold a secret (the refresh-token POST): it never follows a redirect elsewhere.
                if body.is_some() && next.origin() != url.origin() && status != StatusCode::SEE_OTHER {
                    return Err(Failure::Fatal(Error::new(
                        ErrorKind::Registry,
                        format!("{}: refusing to send the request body to another origin on a redirect", call.what),
                    )));
                }
                url = next;
                if status == StatusCode::SEE_OTHER && method != Method::HEAD {
                    method = Method::GET;
                    body = None;
                }
                continue;
            }
            let headers = response.headers().clone();
            let success = status.is_success();
            // The pacing slot goes back with the headers: held while the caller reads the body, possibly
            // into a request to the same host, it could deadlock once a 429 lowered the limit to one.
            if success && call.unbuffered && method != Method::HEAD {
                let (body, digest, replayed, received, response) = (Bytes::new(), None, false, 0, Some(response));
                return Ok(Reply { status, headers, body, url, digest, replayed, received, response });
            }
            let (body, digest, received) = if method == Method::HEAD {
                (Bytes::new(), None, 0)
            } else if success {
                self.read_body(response, call.max_body, !call.truncate, call.hash, call.what).await?
            } else {
                self.read_body(response, ERROR_BODY_CAP, false, None, call.what).await?
            };
            return Ok(Reply { status, headers, body, url, digest, replayed: false, received, response: None });
        }
        Err(Failure::Fatal(Error::new(
            ErrorKind::Registry,
            format!("{}: more than {MAX_REDIRECTS} redirects", call.what),
        )))
    }

    /// Read a body up to `cap` bytes. `strict`: exceeding the cap (declared or actual) is an error;
    /// otherwise the body is cut and the rest never read: the response is dropped with it, which closes
    /// the connection instead of draining it. Also returns how many bytes arrived.
    async fn read_body(
        &self,
        mut response: reqwest::Response,
        cap: u64,
        strict: bool,
        hash: Option<Algorithm>,
        what: &str,
    ) -> Result<(Bytes, Option<Digest>, u64), Failure> {
        let too_large = |n: String| {
            Failure::Fatal(Error::new(
                ErrorKind::TooLarge,
                format!("{what}: the body is {n} bytes, more than the limit of {cap}"),
            ))
        };
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(len) = declared.filter(|&len| strict && len > cap) {
            return Err(too_large(len.to_string()));
        }
        // The declared length (already held to the cap) sizes the buffer exactly: growing by doubling from a
        // smaller guess left a 2.2 MB envelope in 4 MiB, copied once on the way. Pages are committed only as
        // bytes arrive, so a declared length the server does not honour costs address space, not memory.
        let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(cap) as usize);
        let mut hasher = hash.map(Hasher::new);
        let mut received = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(Failure::Transport)? {
            add(&self.stats.downloaded, chunk.len());
            received += chunk.len() as u64;
            let room = (cap as usize).saturating_sub(buf.len());
            if chunk.len() > room {
                if strict {
                    return Err(too_large(format!("more than {}", buf.len() + chunk.len())));
                }
                buf.extend_from_slice(&chunk[..room]);
                break;
            }
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            buf.extend_from_slice(&chunk);
            // A cut body that is full needs no further chunk (nor a chance to fail on one).
            if !strict && buf.len() as u64 >= cap {
                break;
            }
        }
        let digest = hasher.map(Hasher::finish);
        Ok((Bytes::from(buf), digest, received))
    }

    /// HTTPS always; plain HTTP only to hosts configured for it.
    fn check_scheme(&self, url: &Url) -> Result<()> {
        match url.scheme() {
            "https" => Ok(()),
            "http" if self.plain_http_allowed(&authority(url)) => Ok(()),
            scheme => Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "refusing {scheme}:// to {}: only HTTPS, or plain HTTP to hosts configured for it",
                    authority(url)
                ),
            )),
        }
    }
}

/// `host[:port]` of a URL, as registries are named.
pub(crate) fn authority(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => String::new(),
    }
}

/// Worth another attempt: connection failures always (nothing reached the server); timeouts and
/// resets only when repeating the request cannot do harm twice.
fn is_transient(err: &reqwest::Error, method: &Method) -> bool {
    err.is_connect()
        || (is_idempotent(method) && (err.is_timeout() || err.is_request() || err.is_body() || err.is_decode()))
}

/// Methods whose repetition has the effect of one request (RFC 9110, 9.2.2).
fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::PUT | Method::DELETE)
}

fn network_error(what: &str, attempts: u32, err: reqwest::Error) -> Error {
    let (kind, message) = describe(what, err);
    Error::new(kind, format!("{message} (after {attempts} attempt(s))"))
}

/// An error reading an unbuffered answer's body (see [`Reply::response`]): the transport failed after
/// a successful status, whatever reqwest calls it. Never retried here: the bytes before it are already
/// with the caller.
pub(crate) fn body_error(what: &str, err: reqwest::Error) -> Error {
    Error::new(ErrorKind::Network, describe(what, err).1)
}

fn describe(what: &str, err: reqwest::Error) -> (ErrorKind, String) {
    // Our own text plus the cause chain, without the URL (upload URLs carry opaque session state).
    let err = err.without_url();
    let mut message = format!("{what}: {err}");
    let mut cause = std::error::Error::source(&err);
    while let Some(c) = cause {
        message.push_str(&format!(": {c}"));
        cause = c.source();
    }
    let kind = if err.is_timeout() || err.is_connect() || err.is_request() || err.is_body() {
        ErrorKind::Network
    } else {
        ErrorKind::Registry
    };
    (kind, message)
}

/// Exponential backoff with jitter: a random wait between half and all of `base·2^(attempt-1)`,
/// capped at `max_backoff`.
pub(crate) fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy.base_backoff.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let full = exp.min(policy.max_backoff);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    let fraction = 0.5 + (h.finish() % 1000) as f64 / 2000.0;
    full.mul_f64(fraction)
}

/// `Retry-After`: delay-seconds or an HTTP date (IMF-fixdate). A date in the past means now.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parse `Sun, 06 Nov 1994 08:49:37 GMT`.
fn parse_http_date(value: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *h > 23 || *m > 59 || *s > 60 || !(1970..=9999).contains(&year) {
        return None;
    }
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + s;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", UNIX_EPOCH), Some(Duration::ZERO));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(951_825_600))
        );
        for bad in [
            "",
            "soon",
            "-5",
            "1.5",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:00:00 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn backoff_grows_jittered_and_capped() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            ..RetryPolicy::default()
        };
        for attempt in 1..=8 {
            let full = Duration::from_millis(100 * (1 << (attempt - 1))).min(Duration::from_millis(300));
            let b = backoff(&policy, attempt);
            assert!(b >= full / 2 && b <= full, "attempt {attempt}: {b:?}");
        }
        assert!(backoff(&policy, u32::MAX) <= Duration::from_millis(300));
    }

    #[test]
    fn authority_keeps_explicit_ports() {
        assert_eq!(authority(&Url::parse("http://127.0.0.1:5000/v2/").unwrap()), "127.0.0.1:5000");
        assert_eq!(authority(&Url::parse("https://ghcr.io:443/v2/").unwrap()), "ghcr.io");
    }
}
