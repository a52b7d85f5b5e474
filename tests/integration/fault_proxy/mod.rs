//! A faulty HTTP/1.1 reverse proxy for robustness tests: it sits between `att2ref` and a real registry
//! and, on a seeded fraction of requests, answers 5xx or 429, drops the connection, truncates the body,
//! answers slowly, or forwards the request and then loses the answer (what real proxies do to writes).
//! It can also SIGKILL a child process when the Nth request arrives, before or after forwarding it.
//!
//! Reproducible under concurrency: whether a request is faulted, and how, depends only on the seed, the
//! request's normalised method and path (upload-session ids dropped) and how many times that same request
//! was seen before, never on global arrival order. A request faulted once is never faulted on its next
//! occurrence, so a client that retries always gets through.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};

mod answer;

/// How often and how the proxy misbehaves.
#[derive(Clone, Copy, Debug)]
pub struct FaultPlan {
    /// Seed of every decision; printed in failure messages.
    pub seed: u64,
    /// Faulted requests per thousand.
    pub per_mille: u64,
    /// Delay of a slow answer (keep it well below the client's timeout).
    pub slow: Duration,
}

/// One kind of injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// 500, 502 or 503 without forwarding.
    ServerError(u16),
    /// 429 with `Retry-After: 0` or `1`, without forwarding.
    TooManyRequests(u8),
    /// The connection closed without an answer, without forwarding.
    Reset,
    /// Forwarded; the answer's body cut in half with the full `Content-Length` declared, then the
    /// connection closed. (An answer without a body is lost instead.)
    Truncated,
    /// Forwarded; the answer delayed (headers first, the body's second half after the delay).
    Slow,
    /// Forwarded (the registry acted on it); the connection closed without an answer.
    LostResponse,
    /// Forwarded (the registry acted on it); the client told 502 instead.
    LostBehind502,
    /// Forwarded (the registry acted on it); the client told this status instead. Only by
    /// [`FaultProxy::fault_next`], never in the seeded schedule.
    LostBehind(u16),
}

impl Fault {
    fn name(self) -> String {
        match self {
            Fault::ServerError(s) => format!("{s} before forwarding"),
            Fault::TooManyRequests(s) => format!("429 Retry-After {s}"),
            Fault::Reset => "reset before forwarding".into(),
            Fault::Truncated => "truncated body".into(),
            Fault::Slow => "slow answer".into(),
            Fault::LostResponse => "reset after forwarding".into(),
            Fault::LostBehind502 => "502 after forwarding".into(),
            Fault::LostBehind(s) => format!("{s} after forwarding"),
        }
    }
}

const KINDS: [Fault; 10] = [
    Fault::ServerError(500),
    Fault::ServerError(502),
    Fault::ServerError(503),
    Fault::TooManyRequests(0),
    Fault::TooManyRequests(1),
    Fault::Reset,
    Fault::Truncated,
    Fault::Slow,
    Fault::LostResponse,
    Fault::LostBehind502,
];

/// When, relative to forwarding, the armed kill happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillWhen {
    /// The request never reaches the registry.
    BeforeForwarding,
    /// The registry has acted on the request; its answer never reaches the client.
    AfterForwarding,
}

struct Kill {
    at: KillAt,
    when: KillWhen,
}

/// Which request the armed kill waits for.
enum KillAt {
    /// The n-th request to arrive (1-based).
    Number(u64),
    /// The `nth` (1-based) arrival of one normalised request; `seen` counts those so far.
    Request { key: String, nth: u64, seen: u64 },
}

impl Kill {
    /// Whether request number `n`, normalised as `key`, is the one; counts it for [`KillAt::Request`].
    fn hit(&mut self, n: u64, key: &str) -> bool {
        match &mut self.at {
            KillAt::Number(at) => *at == n,
            KillAt::Request { key: k, nth, seen } => {
                if k == key {
                    *seen += 1;
                }
                k == key && *seen == *nth
            }
        }
    }
}

struct State {
    upstream: String,
    /// `host:port` the proxy listens on (rewritten into `Location` headers instead of the upstream's).
    host: String,
    client: reqwest::Client,
    plan: Option<FaultPlan>,
    /// Per normalised request: times seen, and whether the last one was faulted.
    seen: Mutex<HashMap<String, (u64, bool)>>,
    injected: Mutex<BTreeMap<String, u64>>,
    requests: AtomicU64,
    /// Body bytes of registry answers passed back whole (not of injected, truncated or slowed ones).
    bytes_answered: AtomicU64,
    /// Those answers one by one: `METHOD path[?query]` and body bytes, in completion order.
    answered: Mutex<Vec<(String, u64)>>,
    kill: Mutex<Option<Kill>>,
    /// One-shot faults for the next request with a method and a path containing a string.
    targeted: Mutex<Vec<(String, String, Fault)>>,
    child: Mutex<Option<Child>>,
    killed: AtomicBool,
    /// New connections are relayed byte for byte, uncounted (cheap: for reruns after a kill).
    relay: AtomicBool,
    log: Mutex<Vec<String>>,
    /// Paths answered with a fixed status instead of being forwarded (see [`FaultProxy::refuse`]).
    refused: Mutex<Vec<(String, u16)>>,
    /// Added before forwarding every counted request (see [`FaultProxy::delay_every_request`]).
    delay: Mutex<Duration>,
    /// Held before forwarding requests `METHOD path`, instead of `delay` when longer (see
    /// [`FaultProxy::delay_request`]).
    delayed: Mutex<Vec<(String, String, Duration)>>,
    /// `Range` headers are not forwarded (see [`FaultProxy::ignore_range`]).
    strip_range: AtomicBool,
    /// Manifest PUTs with a subject are answered with `OCI-Subject` (see [`FaultProxy::claim_oci_subject`]).
    claim_subject: AtomicBool,
    /// `sha256-<hex>` manifest tags are read as digests (see [`FaultProxy::read_digest_tags_as_digests`]).
    digest_tags: AtomicBool,
    /// Upload sessions are moved off `/v2/` (see [`FaultProxy::move_upload_sessions`]).
    move_uploads: AtomicBool,
    /// Every DELETE is refused as GHCR refuses it (see [`FaultProxy::refuse_deletes`]).
    refuse_deletes: AtomicBool,
    /// Referrers listings are served this many entries per page, 0 for whole (see
    /// [`FaultProxy::page_referrers`]).
    referrers_page: AtomicU64,
    /// The `artifactType` filter of referrers listings is dropped silently (see
    /// [`FaultProxy::ignore_artifact_type_filter`]).
    drop_filter: AtomicBool,
    /// Referrers listings give every entry the empty config's media type as its artifactType (see
    /// [`FaultProxy::list_config_type_as_artifact_type`]).
    config_type_listed: AtomicBool,
    /// Referrers of a subject the repository does not hold are answered 200 `{}` (see
    /// [`FaultProxy::answer_unknown_subjects_with_an_empty_object`]).
    empty_object_for_unknown: AtomicBool,
    /// Referrers whose subject is an image index are refused as ECR refuses them (see
    /// [`FaultProxy::refuse_index_subjects`]).
    refuse_index_subjects: AtomicBool,
    /// A manifest a referrers tag-schema index lists cannot be deleted (see
    /// [`FaultProxy::refuse_delete_while_listed`]).
    refuse_listed_deletes: AtomicBool,
    /// How long a referrers listing is served from the proxy's cache, zero for never (see
    /// [`FaultProxy::cache_referrers`]); the cache by path, the query left out.
    referrers_ttl: Mutex<Duration>,
    referrers_cache: Mutex<HashMap<String, (Instant, StatusCode, hyper::HeaderMap, Bytes)>>,
    /// Requests being handled now, and the most at once so far.
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    /// When each request arrived (since the proxy started) and what it was.
    started: Instant,
    arrivals: Mutex<Vec<(Duration, String)>>,
}

/// Counts a request in flight while it is handled.
struct InFlight<'a>(&'a State);

impl<'a> InFlight<'a> {
    fn enter(state: &'a State) -> Self {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A running proxy; stopped on drop.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`.
    pub host: String,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// An error for hyper: the connection is closed without (the rest of) an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

impl FaultProxy {
    /// A proxy to the registry at `upstream` (`host:port`, plain HTTP), faulting as `plan` says (never,
    /// with `None`).
    pub fn start(upstream: &str, plan: Option<FaultPlan>) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding the proxy port");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let host = listener.local_addr().expect("the proxy address").to_string();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the proxy's upstream client");
        let state = Arc::new(State {
            upstream: upstream.to_owned(),
            host: host.clone(),
            client,
            plan,
            seen: Mutex::default(),
            injected: Mutex::default(),
            requests: AtomicU64::new(0),
            bytes_answered: AtomicU64::new(0),
            answered: Mutex::default(),
            kill: Mutex::new(None),
            targeted: Mutex::default(),
            child: Mutex::new(None),
            killed: AtomicBool::new(false),
            relay: AtomicBool::new(false),
            log: Mutex::default(),
            refused: Mutex::default(),
            delay: Mutex::new(Duration::ZERO),
            delayed: Mutex::new(Vec::new()),
            strip_range: AtomicBool::new(false),
            claim_subject: AtomicBool::new(false),
            digest_tags: AtomicBool::new(false),
            move_uploads: AtomicBool::new(false),
            refuse_deletes: AtomicBool::new(false),
            referrers_page: AtomicU64::new(0),
            drop_filter: AtomicBool::new(false),
            config_type_listed: AtomicBool::new(false),
            empty_object_for_unknown: AtomicBool::new(false),
            refuse_index_subjects: AtomicBool::new(false),
            refuse_listed_deletes: AtomicBool::new(false),
            referrers_ttl: Mutex::new(Duration::ZERO),
            referrers_cache: Mutex::default(),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            started: Instant::now(),
            arrivals: Mutex::default(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let serving = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("the proxy runtime");
            rt.block_on(serve(listener, serving, stopped));
        });
        FaultProxy { host, state, stop: Some(stop), thread: Some(thread) }
    }

    /// A pass-through proxy that only counts: every request is forwarded unchanged and its answer
    /// returned whole, so [`FaultProxy::requests`] and [`FaultProxy::bytes_answered`] are what the
    /// registry behind it was asked and answered.
    pub fn counting(upstream: &str) -> FaultProxy {
        Self::start(upstream, None)
    }

    /// From now on, drop the `Range` header of every request before forwarding it: the registry answers
    /// 200 with the whole blob, as registries that ignore `Range` do (ferro-oci-server 1.0.0; RFC 9110 lets
    /// a server ignore it). The answer is counted whole although the client may read only its start.
    pub fn ignore_range(&self) {
        self.state.strip_range.store(true, Ordering::SeqCst);
    }

    /// From now on, answer every accepted manifest PUT whose body has a `subject` with an `OCI-Subject`
    /// header naming it, as a registry with the referrers API does, although the registry behind (without
    /// the API) indexes nothing. ECR did this in 2024 (sigstore-js#1183, which then stopped trusting the
    /// header alone), Docker Hub too (docker/hub-feedback#2372).
    pub fn claim_oci_subject(&self) {
        self.state.claim_subject.store(true, Ordering::SeqCst);
    }

    /// From now on, read a manifest tag of the form `sha256-<64 hex>` as the digest `sha256:<hex>` (GET and
    /// HEAD), as GitLab's container registry does: the referrers tag of an image answers with the image
    /// itself (oras-project/oras#2148, oras-project/oras-go#1396). Writes are forwarded unchanged.
    pub fn read_digest_tags_as_digests(&self) {
        self.state.digest_tags.store(true, Ordering::SeqCst);
    }

    /// From now on, answer every upload with a `Location` outside `/v2/`, a path of its own on the same
    /// host, as Google Artifact Registry does (`/artifacts-uploads/namespaces/<project>/repositories/<repo>/
    /// uploads/<id>`, quoted in oras-project/rust-oci-client#175); the distribution spec allows a session
    /// anywhere. Requests to it reach the registry's own session.
    pub fn move_upload_sessions(&self) {
        self.state.move_uploads.store(true, Ordering::SeqCst);
    }

    /// From now on, serve referrers listings `per_page` entries at a time, each page but the last with a
    /// `Link: <…?page=N>; rel="next"` header, as the distribution spec requires of a list that does not fit in
    /// one answer. No production registry was found doing it; the spec allows any page size.
    pub fn page_referrers(&self, per_page: u64) {
        self.state.referrers_page.store(per_page, Ordering::SeqCst);
    }

    /// From now on, drop the `artifactType` query of referrers listings before forwarding and the
    /// `OCI-Filters-Applied` header of the answer: a registry that ignores the filter without saying so
    /// (Harbor before 2.8, harbor#18413; Quay's cache keyed without it, quay#6510).
    pub fn ignore_artifact_type_filter(&self) {
        self.state.drop_filter.store(true, Ordering::SeqCst);
    }

    /// From now on, answer a referrers listing of a subject the repository does not hold with 200 `{}`,
    /// as Harbor 2.8–2.10 does ("give an empty json body on non artifact scenario", goharbor/harbor#18430;
    /// `Content-Type: application/json` before 2.10, harbor#19690), instead of 404 or an empty index.
    pub fn answer_unknown_subjects_with_an_empty_object(&self) {
        self.state.empty_object_for_unknown.store(true, Ordering::SeqCst);
    }

    /// From now on, list every referrer with its config's media type as its artifactType, whatever the
    /// manifest's own artifactType, as Harbor 2.8–2.10 does (goharbor/harbor#19867; fixed in 2.11). Every
    /// referrer these tests write has the empty config, so the entries read
    /// `application/vnd.oci.empty.v1+json`.
    pub fn list_config_type_as_artifact_type(&self) {
        self.state.config_type_listed.store(true, Ordering::SeqCst);
    }

    /// From now on, answer every DELETE as GHCR does, without forwarding it: 405 with
    /// `{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}`
    /// (containers/skopeo#1880, sigstore/cosign#3434); GHCR deletes only through the GitHub Packages API.
    pub fn refuse_deletes(&self) {
        self.state.refuse_deletes.store(true, Ordering::SeqCst);
    }

    /// From now on, refuse a manifest PUT whose `subject` is an image index with 405 `UNSUPPORTED`, without
    /// forwarding it, as ECR does (aws/containers-roadmap#2783: an index cannot be the subject of a
    /// referrer there). The body's wording is the proxy's own.
    pub fn refuse_index_subjects(&self) {
        self.state.refuse_index_subjects.store(true, Ordering::SeqCst);
    }

    /// From now on, refuse the DELETE of a manifest that a referrers tag-schema index of its repository
    /// (a `sha256-<hex>` tag) still lists, with 400 `GOOGLE_MANIFEST_DANGLING_PARENT_IMAGE`, as Google
    /// Artifact Registry does (chainguard-dev/terraform-provider-cosign#577: the index entry has to go
    /// first).
    pub fn refuse_delete_while_listed(&self) {
        self.state.refuse_listed_deletes.store(true, Ordering::SeqCst);
    }

    /// From now on, answer a referrers listing from a cache kept `ttl` after the first answer, keyed by
    /// the path alone (the `artifactType` query left out), as Quay did (up to 60 s, quay#6510; a signer
    /// that listed right after writing found nothing, tektoncd/chains#1691). Writes are forwarded; only
    /// the listing lags.
    pub fn cache_referrers(&self, ttl: Duration) {
        *self.state.referrers_ttl.lock().unwrap() = ttl;
    }

    /// Forget every cached referrers listing (the cache expired).
    pub fn expire_referrers_cache(&self) {
        self.state.referrers_cache.lock().unwrap().clear();
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Response body bytes sent back to the client so far (counted requests only, not relayed ones).
    pub fn bytes_answered(&self) -> u64 {
        self.state.bytes_answered.load(Ordering::SeqCst)
    }

    /// The answers [`FaultProxy::bytes_answered`] sums: request (`METHOD path[?query]`) and body bytes.
    pub fn answered(&self) -> Vec<(String, u64)> {
        self.state.answered.lock().unwrap().clone()
    }

    /// Faults injected so far, by kind.
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.state.injected.lock().unwrap().clone()
    }

    /// Every request received, in arrival order (`#n METHOD path → what happened`), for failure messages.
    pub fn log(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }

    /// SIGKILL the child given to [`FaultProxy::run_child`] when request number `at` (1-based) arrives.
    /// From then on every request is dropped unanswered.
    pub fn arm_kill(&self, at: u64, when: KillWhen) {
        *self.state.kill.lock().unwrap() = Some(Kill { at: KillAt::Number(at), when });
    }

    /// SIGKILL the child when the `nth` (1-based) occurrence of one request arrives: `key` is a request
    /// as [`FaultProxy::log`] names it (`METHOD path[?query]`, upload-session ids dropped). Unlike a request
    /// number, this names the same point of a run whatever else the client interleaves around it (a
    /// batch lists the next repository and settles the last one beside the image in flight).
    pub fn arm_kill_on(&self, key: &str, nth: u64, when: KillWhen) {
        let at = KillAt::Request { key: key.to_owned(), nth, seen: 0 };
        *self.state.kill.lock().unwrap() = Some(Kill { at, when });
    }

    /// Hand over the child the armed kill is for, and wait (up to `timeout`) until it exits.
    pub fn run_child(&self, child: Child, timeout: Duration) -> ExitStatus {
        *self.state.child.lock().unwrap() = Some(child);
        let deadline = Instant::now() + timeout;
        loop {
            {
                let mut slot = self.state.child.lock().unwrap();
                let child = slot.as_mut().expect("the child is held until it exits");
                if let Some(status) = child.try_wait().expect("waiting for the child") {
                    slot.take();
                    return status;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the child did not exit within {timeout:?}");
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Fault the next `method` request whose path contains `path_part` with `fault`, once, whatever the
    /// plan (a proxy without a plan forwards everything else untouched).
    pub fn fault_next(&self, method: &str, path_part: &str, fault: Fault) {
        self.state.targeted.lock().unwrap().push((method.to_owned(), path_part.to_owned(), fault));
    }

    /// Forget the armed kill and, from now on, relay new connections to the registry untouched and
    /// uncounted (the reruns after a kill: same address, no proxy work).
    pub fn disarm(&self) {
        *self.state.kill.lock().unwrap() = None;
        self.state.relay.store(true, Ordering::SeqCst);
        self.state.killed.store(false, Ordering::SeqCst);
    }

    /// Forget the armed kill and go on counting and logging every request: a rerun whose requests the
    /// test reads back from [`FaultProxy::log`] (unlike [`FaultProxy::disarm`], which relays them unseen).
    pub fn disarm_counting(&self) {
        *self.state.kill.lock().unwrap() = None;
        self.state.killed.store(false, Ordering::SeqCst);
    }

    /// Answer every request whose path is exactly `path` with `status` and an OCI error body, never
    /// forwarding it: a registry policy a lab registry will not produce on demand (e.g. GHCR, Docker Hub
    /// and ECR refusing `/v2/_catalog` to ordinary credentials). A `path` with a query (`PATH?k=v`)
    /// refuses only the requests to that path whose query starts so.
    pub fn refuse(&self, path: &str, status: u16) {
        self.state.refused.lock().unwrap().push((path.to_owned(), status));
    }

    /// Whether the armed kill happened.
    pub fn killed(&self) -> bool {
        self.state.killed.load(Ordering::SeqCst)
    }

    /// Hold every request this long before forwarding it: a registry slow enough that concurrent
    /// requests overlap at the proxy measurably.
    pub fn delay_every_request(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    /// Hold every request `METHOD path` (the path exactly) this long before forwarding it (or for
    /// [`FaultProxy::delay_every_request`]'s delay, if longer): one slow resource, so that whoever reads
    /// it overlaps with whoever reads it next.
    pub fn delay_request(&self, method: &str, path: &str, delay: Duration) {
        self.state.delayed.lock().unwrap().push((method.to_owned(), path.to_owned(), delay));
    }

    /// The most requests the proxy was handling at once (from arrival to the answer's headers).
    pub fn max_in_flight(&self) -> u64 {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Every counted request: when it arrived (since the proxy started) and `METHOD path`.
    pub fn arrivals(&self) -> Vec<(Duration, String)> {
        self.state.arrivals.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(mut child) = self.state.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn serve(listener: std::net::TcpListener, state: Arc<State>, mut stopped: tokio::sync::oneshot::Receiver<()>) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => {
                let Ok((mut stream, _)) = accepted else { continue };
                let state = state.clone();
                if state.relay.load(Ordering::SeqCst) && state.plan.is_none() {
                    // distribution builds upload locations from the Host header, which names the proxy.
                    connections.spawn(async move {
                        if let Ok(mut upstream) = tokio::net::TcpStream::connect(&state.upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
                        }
                    });
                    continue;
                }
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| answer::handle(state.clone(), req));
                    // Errors here are the faults we inject (or the client going away): nothing to report.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
    connections.abort_all();
}

/// Stable 64-bit hash (FNV-1a, then a SplitMix64 finaliser): the same on every platform and version.
fn hash(seed: u64, text: &str, n: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in text.bytes().chain(n.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The request as the fault schedule sees it: upload-session ids and state (random per run) dropped,
/// the `digest` of a closing upload PUT kept.
fn normalise(method: &str, path: &str, query: Option<&str>) -> String {
    if let Some(at) = path.find("/blobs/uploads/") {
        let base = &path[..at + "/blobs/uploads/".len()];
        let session = if path.len() > base.len() { "*" } else { "" };
        let digest = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| p.starts_with("digest=") || p.starts_with("mount="))
            .collect::<Vec<_>>()
            .join("&");
        return format!("{method} {base}{session}?{digest}");
    }
    match query {
        Some(q) => format!("{method} {path}?{q}"),
        None => format!("{method} {path}"),
    }
}

impl State {
    fn decide(&self, key: &str) -> Option<Fault> {
        let plan = self.plan?;
        let mut seen = self.seen.lock().unwrap();
        let entry = seen.entry(key.to_owned()).or_insert((0, false));
        let n = entry.0;
        entry.0 += 1;
        if entry.1 {
            // Never twice in a row: the client's retry gets through.
            entry.1 = false;
            return None;
        }
        let h = hash(plan.seed, key, n);
        if h % 1000 >= plan.per_mille {
            return None;
        }
        entry.1 = true;
        Some(KINDS[((h / 1000) % KINDS.len() as u64) as usize])
    }

    fn take_targeted(&self, method: &str, path: &str) -> Option<Fault> {
        let mut targeted = self.targeted.lock().unwrap();
        let at = targeted.iter().position(|(m, p, _)| m == method && path.contains(p.as_str()))?;
        Some(targeted.remove(at).2)
    }

    fn count(&self, fault: Fault) {
        *self.injected.lock().unwrap().entry(fault.name()).or_default() += 1;
    }

    fn kill_child(&self) {
        self.killed.store(true, Ordering::SeqCst);
        // The child may not be handed over yet (it is spawned just before): wait for it briefly.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(child) = self.child.lock().unwrap().as_mut() {
                // Child::kill is SIGKILL on Unix, to exactly this PID.
                let _ = child.kill();
                return;
            }
            if Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[test]
fn fault_schedule_is_a_pure_function_of_seed_and_request() {
    assert_eq!(hash(7, "GET /v2/", 0), hash(7, "GET /v2/", 0));
    assert_ne!(hash(7, "GET /v2/", 0), hash(8, "GET /v2/", 0));
    assert_ne!(hash(7, "GET /v2/", 0), hash(7, "GET /v2/", 1));
    assert_eq!(
        normalise("PUT", "/v2/a/b/blobs/uploads/0f1e-uuid", Some("_state=xyz&digest=sha256%3Aab")),
        "PUT /v2/a/b/blobs/uploads/*?digest=sha256%3Aab"
    );
    assert_eq!(normalise("POST", "/v2/a/blobs/uploads/", None), "POST /v2/a/blobs/uploads/?");
    assert_eq!(normalise("GET", "/v2/a/tags/list", Some("n=1000")), "GET /v2/a/tags/list?n=1000");
    // About the asked-for fraction is faulted.
    let per_mille = 100;
    let faulted = (0..10_000u64).filter(|i| hash(42, &format!("GET /v2/x/{i}"), 0) % 1000 < per_mille).count();
    assert!((800..1200).contains(&faulted), "{faulted}");
}
