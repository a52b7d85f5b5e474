//! The registry client: faults from a scripted server (wiremock), and round trips against real
//! registries (see `registries.rs`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use att2ref::ErrorKind;
use att2ref::model::digest::Digest;
use att2ref::model::media_type as mt;
use att2ref::model::oci::{Annotations, Descriptor, ImageManifest, Index, to_canonical_bytes};
use att2ref::store::registry::{ClientConfig, Credential, PlainHttp, RegistryClient, RegistryRepository, RetryPolicy};
use att2ref::store::{ReferrersCapability, ReferrersSource, Repository};
use bytes::Bytes;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::registries::{RegistryKind, TestRegistry};

// ---------------------------------------------------------------------------------------------
// Helpers

/// A plain-HTTP client with quick retries, for wiremock registries (also used by `upload_faults`).
pub fn mock_client(adjust: impl FnOnce(&mut ClientConfig)) -> RegistryClient {
    let mut config = ClientConfig {
        plain_http: PlainHttp::All,
        retry: RetryPolicy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            throttled_patience: Duration::from_secs(2),
        },
        ..ClientConfig::default()
    };
    adjust(&mut config);
    RegistryClient::new(config).unwrap()
}

pub fn host(server: &MockServer) -> String {
    server.address().to_string()
}

fn manifest_bytes(
    config: &Descriptor,
    layers: &[Descriptor],
    subject: Option<&Descriptor>,
    artifact_type: Option<&str>,
) -> Bytes {
    let m = ImageManifest {
        schema_version: 2,
        media_type: Some(mt::OCI_MANIFEST.to_owned()),
        artifact_type: artifact_type.map(str::to_owned),
        config: config.clone(),
        layers: layers.to_vec(),
        subject: subject.cloned(),
        annotations: Annotations::new(),
        extra: Default::default(),
    };
    Bytes::from(to_canonical_bytes(&m))
}

fn simple_manifest() -> Bytes {
    manifest_bytes(&Descriptor::empty_config(), &[], None, None)
}

fn index_bytes(entries: &[Descriptor]) -> Bytes {
    let mut index = Index::empty();
    index.manifests = entries.to_vec();
    Bytes::from(to_canonical_bytes(&index))
}

fn referrer_entry(artifact_type: &str, n: u8) -> Descriptor {
    let mut d = Descriptor::of(mt::OCI_MANIFEST, &[n]);
    d.artifact_type = Some(artifact_type.to_owned());
    d
}

pub fn bearer_challenge(server: &MockServer, scope: &str) -> ResponseTemplate {
    ResponseTemplate::new(401).insert_header(
        "WWW-Authenticate",
        format!(r#"Bearer realm="{}/token",service="mock",scope="{scope}""#, server.uri()).as_str(),
    )
}

// ---------------------------------------------------------------------------------------------
// Authentication

#[tokio::test]
async fn bearer_token_is_fetched_once_for_many_calls() {
    let server = MockServer::start().await;
    let body = simple_manifest();
    Mock::given(method("GET"))
        .and(path("/v2/app/manifests/v1"))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body.to_vec(), mt::OCI_MANIFEST))
        .with_priority(1)
        .expect(5)
        .mount(&server)
        .await;
    Mock::given(path("/v2/app/manifests/v1"))
        .respond_with(bearer_challenge(&server, "repository:app:pull"))
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(query_param("service", "mock"))
        .and(query_param("scope", "repository:app:pull"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"token": "tok-1", "expires_in": 300})),
        )
        .expect(1)
        .mount(&server)
        .await;

    let client = mock_client(|_| {});
    let repo = client.repository(&host(&server), "app");
    for _ in 0..5 {
        let raw = repo.get_manifest("v1").await.unwrap().expect("manifest");
        assert_eq!(raw.bytes, body);
    }
    // 1 challenged request + 1 token request + 5 authorised requests: no `GET /v2/` probes.
    assert_eq!(client.stats().requests, 7);
}

/// Requests sent together with a token that then expires each meet a 401. The first to answer it fetches
/// a new token; a later one must take that token, not throw it away and fetch one more (with many
/// requests in flight, that would be one token fetch after another).
#[tokio::test]
async fn a_401_to_an_old_token_keeps_the_new_one_another_request_fetched() {
    let server = MockServer::start().await;
    let unknown = || {
        ResponseTemplate::new(404)
            .set_body_json(serde_json::json!({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]}))
    };
    let challenge = bearer_challenge(&server, "repository:app:pull");
    // With the first token: `prime` is served; `a` is refused at once, `b` later (after `a` re-fetched).
    Mock::given(path("/v2/app/manifests/prime"))
        .and(header("authorization", "Bearer t1"))
        .respond_with(unknown())
        .with_priority(1)
        .mount(&server)
        .await;
    for (name, refused_after) in [("a", 0), ("b", 600)] {
        let manifest = format!("/v2/app/manifests/{name}");
        Mock::given(path(manifest.as_str()))
            .and(header("authorization", "Bearer t1"))
            .respond_with(challenge.clone().set_delay(Duration::from_millis(refused_after)))
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(path(manifest.as_str()))
            .and(header("authorization", "Bearer t2"))
            .respond_with(unknown())
            .with_priority(1)
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(path_regex_manifests()).respond_with(challenge).with_priority(2).mount(&server).await;
    for (token, priority) in [("t1", 1), ("t2", 2), ("t3", 3)] {
        Mock::given(path("/token"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(serde_json::json!({"token": token, "expires_in": 300})),
            )
            .up_to_n_times(1)
            .with_priority(priority)
            .expect(u64::from(token != "t3"))
            .mount(&server)
            .await;
    }
    let repo = mock_client(|_| {}).repository(&host(&server), "app");
    assert!(repo.get_manifest("prime").await.unwrap().is_none());
    let (a, b) = tokio::join!(repo.get_manifest("a"), repo.get_manifest("b"));
    assert!(a.unwrap().is_none() && b.unwrap().is_none());
}

fn path_regex_manifests() -> wiremock::matchers::PathRegexMatcher {
    wiremock::matchers::path_regex("^/v2/app/manifests/")
}

/// Token requests for different repositories are not made one after another: a batch over many
/// repositories of a token-auth registry (every real one) needs a token per repository, and one
/// fetch at a time would bound the whole batch by the token server's latency. Calls for the same
/// repository still share one token.
#[tokio::test]
async fn tokens_for_different_repositories_are_fetched_at_once_and_once_each() {
    use std::sync::{Arc, Mutex};

    /// Answers a token for the scope asked and records when each request arrived.
    struct Tokens(Arc<Mutex<Vec<(Instant, String)>>>);
    impl wiremock::Respond for Tokens {
        fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
            let scope = request.url.query_pairs().find(|(k, _)| k == "scope").map(|(_, v)| v.into_owned());
            let scope = scope.unwrap_or_default();
            self.0.lock().unwrap().push((Instant::now(), scope.clone()));
            let repo = scope.split(':').nth(1).unwrap_or_default().to_owned();
            // Answered after a delay: a second request arriving before it went out overlapped the first.
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"token": format!("tok-{repo}"), "expires_in": 300}))
                .set_delay(TOKEN_DELAY)
        }
    }
    const TOKEN_DELAY: Duration = Duration::from_millis(600);
    const REPOS: [&str; 4] = ["r0", "r1", "r2", "r3"];

    let server = MockServer::start().await;
    let body = simple_manifest();
    for repo in REPOS {
        Mock::given(method("GET"))
            .and(path(format!("/v2/{repo}/manifests/v1")))
            .and(header("authorization", format!("Bearer tok-{repo}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body.to_vec(), mt::OCI_MANIFEST))
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(path(format!("/v2/{repo}/manifests/v1")))
            .respond_with(bearer_challenge(&server, &format!("repository:{repo}:pull")))
            .with_priority(2)
            .mount(&server)
            .await;
    }
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("GET")).and(path("/token")).respond_with(Tokens(arrivals.clone())).mount(&server).await;

    let client = mock_client(|_| {});
    let calls = REPOS.iter().flat_map(|repo| {
        let repo = client.repository(&host(&server), repo);
        // Two calls per repository at once: they share the one token of its scope.
        (0..2).map(move |_| {
            let repo = repo.clone();
            async move { repo.get_manifest("v1").await.unwrap().expect("manifest").bytes }
        })
    });
    let got = futures_util::future::join_all(calls).await;
    assert!(got.iter().all(|b| *b == body));

    let arrivals = arrivals.lock().unwrap().clone();
    let mut scopes: Vec<&str> = arrivals.iter().map(|(_, s)| s.as_str()).collect();
    scopes.sort();
    let expected: Vec<String> = REPOS.iter().map(|r| format!("repository:{r}:pull")).collect();
    assert_eq!(scopes, expected, "one token request per repository");
    let first = arrivals.iter().map(|(at, _)| *at).min().unwrap();
    let overlapping = arrivals.iter().filter(|(at, _)| at.duration_since(first) < TOKEN_DELAY).count();
    assert_eq!(overlapping, REPOS.len(), "every token request arrived before the first was answered");
}

#[tokio::test]
async fn an_absurd_token_lifetime_is_clamped_not_a_crash() {
    let server = MockServer::start().await;
    let body = simple_manifest();
    Mock::given(method("GET"))
        .and(path("/v2/app/manifests/v1"))
        .and(header("authorization", "Bearer tok-forever"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body.to_vec(), mt::OCI_MANIFEST))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/app/manifests/v1"))
        .respond_with(bearer_challenge(&server, "repository:app:pull"))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"token": "tok-forever", "expires_in": u64::MAX})),
        )
        .mount(&server)
        .await;
    let client = mock_client(|_| {});
    let raw = client.repository(&host(&server), "app").get_manifest("v1").await.unwrap().expect("manifest");
    assert_eq!(raw.bytes, body);
}

#[tokio::test]
async fn a_404_that_is_not_a_distribution_not_found_is_an_error() {
    let server = MockServer::start().await;
    // A proxy's HTML page, and a registry hiding a private repository behind 404 DENIED.
    Mock::given(path("/v2/app/manifests/html"))
        .respond_with(ResponseTemplate::new(404).set_body_raw("<html><body>Not Found</body></html>", "text/html"))
        .mount(&server)
        .await;
    Mock::given(path("/v2/app/manifests/denied"))
        .respond_with(ResponseTemplate::new(404).set_body_raw(
            r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let client = mock_client(|_| {});
    let repo = client.repository(&host(&server), "app");
    let err = repo.get_manifest("html").await.unwrap_err();
    assert_eq!(err.kind(), att2ref::ErrorKind::Registry, "{err}");
    let err = repo.get_manifest("denied").await.unwrap_err();
    assert_eq!(err.kind(), att2ref::ErrorKind::Unauthorized, "{err}");
}

#[tokio::test]
async fn conditional_manifest_put_sends_if_match_and_maps_412_to_conflict() {
    let server = MockServer::start().await;
    let index = index_bytes(&[]);
    Mock::given(method("GET"))
        .and(path("/v2/app/manifests/sha256-tag"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(index.to_vec(), mt::OCI_INDEX).insert_header("ETag", "\"v1\""),
        )
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v2/app/manifests/sha256-tag"))
        .and(header("if-match", "\"v1\""))
        .respond_with(ResponseTemplate::new(412))
        .expect(1)
        .mount(&server)
        .await;
    let client = mock_client(|_| {});
    let repo = client.repository(&host(&server), "app");
    let raw = repo.get_manifest("sha256-tag").await.unwrap().unwrap();
    assert_eq!(raw.etag.as_deref(), Some("\"v1\""));
    let err = repo.put_manifest_if_match(index, mt::OCI_INDEX, "sha256-tag", "\"v1\"").await.unwrap_err();
    assert_eq!(err.kind(), att2ref::ErrorKind::Conflict, "{err}");
}

#[tokio::test]
async fn basic_credentials_go_to_the_token_endpoint_and_never_into_errors() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/app/manifests/v1"))
        .respond_with(bearer_challenge(&server, "repository:app:pull"))
        .mount(&server)
        .await;
    // "user:s3cret-pw" in base64.
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(header("authorization", "Basic dXNlcjpzM2NyZXQtcHc="))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})),
        )
        .expect(1)
        .mount(&server)
        .await;

    let client = mock_client(|c| {
        c.explicit_credentials = BTreeMap::from([(
            host(&server),
            Credential::Basic { username: "user".into(), password: "s3cret-pw".into() },
        )])
    });
    let err = client.repository(&host(&server), "app").get_manifest("v1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err:#}");
    let text = format!("{err:#} {err:?}");
    assert!(text.contains("bad credentials"), "{text}");
    assert!(!text.contains("s3cret") && !text.contains("dXNlcjpzM2NyZXQtcHc"), "{text}");
}

#[tokio::test]
async fn identity_token_is_exchanged_with_a_refresh_token_post() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/app/tags/list"))
        .and(header("authorization", "Bearer access-9"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"name": "app", "tags": ["a"]})))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/app/tags/list"))
        .respond_with(bearer_challenge(&server, "repository:app:pull"))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=rt-123"))
        .and(body_string_contains("scope=repository%3Aapp%3Apull"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"access_token": "access-9", "expires_in": 60})),
        )
        .expect(1)
        .mount(&server)
        .await;

    let client = mock_client(|c| {
        c.explicit_credentials = BTreeMap::from([(host(&server), Credential::IdentityToken("rt-123".into()))])
    });
    assert_eq!(client.repository(&host(&server), "app").list_tags().await.unwrap(), ["a"]);
}

#[tokio::test]
async fn basic_auth_is_sent_only_after_a_basic_challenge() {
    let server = MockServer::start().await;
    let body = simple_manifest();
    Mock::given(method("GET"))
        .and(path("/v2/app/manifests/v1"))
        .and(header("authorization", "Basic dXNlcjpwdw=="))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body.to_vec(), mt::OCI_MANIFEST))
        .with_priority(1)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(path("/v2/app/manifests/v1"))
        .respond_with(ResponseTemplate::new(401).insert_header("WWW-Authenticate", r#"Basic realm="Registry Realm""#))
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;

    let client = mock_client(|c| {
        c.explicit_credentials =
            BTreeMap::from([(host(&server), Credential::Basic { username: "user".into(), password: "pw".into() })])
    });
    let repo = client.repository(&host(&server), "app");
    repo.get_manifest("v1").await.unwrap().unwrap();
    repo.get_manifest("v1").await.unwrap().unwrap();
    let requests = server.received_requests().await.unwrap();
    assert!(requests[0].headers.get("authorization").is_none(), "credentials sent before any challenge");
    assert_eq!(requests.len(), 3, "the second call sends Basic up front");
}

#[tokio::test]
async fn cross_host_redirect_drops_authorization() {
    let registry = MockServer::start().await;
    let storage = MockServer::start().await;
    let blob = Bytes::from_static(b"layer bytes");
    let digest = Digest::sha256(&blob);
    Mock::given(method("GET"))
        .and(path(format!("/v2/app/blobs/{digest}")))
        .and(header("authorization", "Basic dXNlcjpwdw=="))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("Location", format!("{}/bucket/obj?sig=x", storage.uri()).as_str()),
        )
        .with_priority(1)
        .mount(&registry)
        .await;
    Mock::given(path(format!("/v2/app/blobs/{digest}")))
        .respond_with(ResponseTemplate::new(401).insert_header("WWW-Authenticate", r#"Basic realm="r""#))
        .with_priority(2)
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path("/bucket/obj"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(blob.to_vec()))
        .expect(1)
        .mount(&storage)
        .await;

    let client = mock_client(|c| {
        c.explicit_credentials =
            BTreeMap::from([(host(&registry), Credential::Basic { username: "user".into(), password: "pw".into() })])
    });
    let repo = client.repository(&host(&registry), "app");
    let got = repo.get_blob(&Descriptor::of("application/octet-stream", &blob), 1024).await.unwrap();
    assert_eq!(got, blob);
    let at_storage = storage.received_requests().await.unwrap();
    assert!(at_storage[0].headers.get("authorization").is_none(), "Authorization leaked to another host");
}

/// Where a redirect led is not the registry: its 401 challenge (a realm of its choosing) is not answered,
/// so the registry's credentials never go to that realm, and the registry's own way of logging in is not
/// overwritten by it.
#[tokio::test]
async fn a_challenge_from_where_a_redirect_led_is_not_answered() {
    let registry = MockServer::start().await;
    let storage = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/app/tags/list"))
        .and(header("authorization", "Basic dXNlcjpwdw=="))
        .respond_with(
            ResponseTemplate::new(307).insert_header("Location", format!("{}/mirror/tags", storage.uri()).as_str()),
        )
        .with_priority(1)
        .mount(&registry)
        .await;
    Mock::given(path("/v2/app/tags/list"))
        .respond_with(ResponseTemplate::new(401).insert_header("WWW-Authenticate", r#"Basic realm="r""#))
        .with_priority(2)
        .mount(&registry)
        .await;
    let realm = format!("{}/token", storage.uri());
    Mock::given(path("/mirror/tags"))
        .respond_with(
            ResponseTemplate::new(401).insert_header("WWW-Authenticate", format!(r#"Bearer realm="{realm}""#).as_str()),
        )
        .mount(&storage)
        .await;
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "token": "t" })))
        .mount(&storage)
        .await;

    let client = mock_client(|c| {
        c.explicit_credentials =
            BTreeMap::from([(host(&registry), Credential::Basic { username: "user".into(), password: "pw".into() })])
    });
    let repo = client.repository(&host(&registry), "app");
    // The first call learns the registry's Basic challenge; the second sends Basic up front and meets the
    // storage's challenge on its first answer.
    for _ in 0..2 {
        let err = repo.list_tags().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err:#}");
    }
    let at_storage = storage.received_requests().await.unwrap();
    assert!(at_storage.iter().all(|r| r.url.path() != "/token"), "the storage's realm was asked: {at_storage:#?}");
    assert!(at_storage.iter().all(|r| r.headers.get("authorization").is_none()), "{at_storage:#?}");
}

// ---------------------------------------------------------------------------------------------
// Retries

#[tokio::test]
async fn rate_limit_with_retry_after_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/app/tags/list"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/app/tags/list"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"name": "app", "tags": ["x"]})))
        .with_priority(2)
        .mount(&server)
        .await;

    let client = mock_client(|_| {});
    let started = Instant::now();
    assert_eq!(client.repository(&host(&server), "app").list_tags().await.unwrap(), ["x"]);
    assert!(started.elapsed() >= Duration::from_millis(950), "Retry-After not honoured: {:?}", started.elapsed());
    let stats = client.stats();
    assert_eq!((stats.requests, stats.retries), (2, 1));
}

#[tokio::test]
async fn service_unavailable_exhausts_retries_into_an_error() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/app/manifests/v1"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(serde_json::json!({"errors": [{"code": "UNAVAILABLE", "message": "try later"}]})),
        )
        .expect(3)
        .mount(&server)
        .await;
    let client = mock_client(|_| {});
    let err = client.repository(&host(&server), "app").get_manifest("v1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Registry);
    assert!(
        err.message().contains("GET manifest")
            && err.message().contains("app:v1")
            && err.message().contains("try later"),
        "{err}"
    );
    assert_eq!(client.stats().retries, 2);
}

#[tokio::test]
async fn connection_refused_is_a_network_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = mock_client(|_| {});
    let err = client.repository(&format!("127.0.0.1:{port}"), "app").list_tags().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "{err:#}");
    assert_eq!(client.stats().retries, 2);
}

#[tokio::test]
async fn https_is_the_default() {
    let server = MockServer::start().await;
    let retry = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
    let client = RegistryClient::new(ClientConfig { retry, ..ClientConfig::default() }).unwrap();
    // The mock speaks plain HTTP only; an HTTPS attempt must fail rather than fall back.
    let err = client.repository(&host(&server), "app").list_tags().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "{err:#}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Content checks

#[tokio::test]
async fn blob_with_wrong_content_is_a_digest_mismatch() {
    let server = MockServer::start().await;
    let wanted = Descriptor::of("application/octet-stream", b"the real bytes");
    Mock::given(method("GET"))
        .and(path(format!("/v2/app/blobs/{}", wanted.digest)))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"forged  bytes!".to_vec()))
        .mount(&server)
        .await;
    let client = mock_client(|_| {});
    let err = client.repository(&host(&server), "app").get_blob(&wanted, 1024).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DigestMismatch, "{err:#}");
}

#[tokio::test]
async fn oversized_manifest_is_too_large() {
    let server = MockServer::start().await;
    let body = simple_manifest();
    Mock::given(method("GET"))
        .and(path("/v2/app/manifests/v1"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body.to_vec(), mt::OCI_MANIFEST))
        .mount(&server)
        .await;
    let client = mock_client(|c| c.limits.max_manifest_bytes = 64);
    let err = client.repository(&host(&server), "app").get_manifest("v1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err:#}");
}

#[tokio::test]
async fn manifest_by_tag_must_match_docker_content_digest() {
    let server = MockServer::start().await;
    let body = simple_manifest();
    Mock::given(method("GET"))
        .and(path("/v2/app/manifests/v1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(body.to_vec(), mt::OCI_MANIFEST)
                .insert_header("Docker-Content-Digest", Digest::sha256(b"other").to_string().as_str()),
        )
        .mount(&server)
        .await;
    let err = mock_client(|_| {}).repository(&host(&server), "app").get_manifest("v1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DigestMismatch, "{err:#}");
}

#[tokio::test]
async fn declined_mount_cancels_the_upload_session() {
    let server = MockServer::start().await;
    let digest = Digest::sha256(b"x");
    Mock::given(method("POST"))
        .and(path("/v2/app/blobs/uploads/"))
        .and(query_param("mount", digest.to_string().as_str()))
        .and(query_param("from", "other"))
        .respond_with(ResponseTemplate::new(202).insert_header("Location", "/v2/app/blobs/uploads/session-1"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v2/app/blobs/uploads/session-1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let repo = mock_client(|_| {}).repository(&host(&server), "app");
    assert!(!repo.mount_blob(&digest, "other").await.unwrap());
}

/// A DELETE answered `first` (once), then 404 MANIFEST_UNKNOWN: the repository's `delete_manifest` result.
async fn delete_after(first: Option<ResponseTemplate>) -> att2ref::Result<()> {
    let server = MockServer::start().await;
    let digest = Digest::sha256(b"gone");
    let at = format!("/v2/app/manifests/{digest}");
    if let Some(first) = first {
        Mock::given(method("DELETE")).and(path(at.as_str())).respond_with(first).up_to_n_times(1).mount(&server).await;
    }
    let unknown = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
    Mock::given(method("DELETE"))
        .and(path(at.as_str()))
        .respond_with(ResponseTemplate::new(404).set_body_string(unknown))
        .expect(1)
        .mount(&server)
        .await;
    mock_client(|_| {}).repository(&host(&server), "app").delete_manifest(&digest).await
}

#[tokio::test]
async fn a_delete_finding_nothing_is_not_found_unless_an_earlier_attempt_may_have_applied_it() {
    // First attempt: the manifest was not there.
    let err = delete_after(None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:#}");
    // Repeated after a 500 or a 502: the first attempt may have deleted it, so it is done.
    delete_after(Some(ResponseTemplate::new(500))).await.unwrap();
    delete_after(Some(ResponseTemplate::new(502))).await.unwrap();
    // A 429 says the request was not processed: the 404 that follows keeps its meaning.
    let err = delete_after(Some(ResponseTemplate::new(429).insert_header("Retry-After", "0"))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:#}");
}

// ---------------------------------------------------------------------------------------------
// Referrers

const AT_SBOM: &str = "application/spdx+json";
const AT_SIG: &str = mt::BUNDLE_V03;

#[tokio::test]
async fn referrers_404_then_denied_fallback_tag_is_an_error_never_empty() {
    let server = MockServer::start().await;
    let denied = Digest::sha256(b"denied");
    let throttled = Digest::sha256(b"throttled");
    Mock::given(path_regex_referrers())
        .respond_with(ResponseTemplate::new(404).set_body_raw("404 page not found\n", "text/plain"))
        .mount(&server)
        .await;
    Mock::given(path(format!("/v2/app/manifests/{}", denied.referrers_tag())))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(path(format!("/v2/app/manifests/{}", throttled.referrers_tag())))
        .respond_with(ResponseTemplate::new(429))
        .mount(&server)
        .await;

    let repo = mock_client(|_| {}).repository(&host(&server), "app");
    let err = repo.referrers(&denied, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err:#}");
    assert_eq!(repo.referrers_capability(), ReferrersCapability::Unsupported);
    let err = repo.referrers(&throttled, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err:#}");
}

fn path_regex_referrers() -> wiremock::matchers::PathRegexMatcher {
    wiremock::matchers::path_regex("^/v2/app/referrers/")
}

#[tokio::test]
async fn referrers_api_pages_and_client_side_filter() {
    let server = MockServer::start().await;
    let subject = Digest::sha256(b"subject");
    let first = format!("/v2/app/referrers/{subject}");
    // Unfiltered: two pages, the second reached through a relative Link.
    Mock::given(path(first.as_str()))
        .and(query_param("page", "2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(index_bytes(&[referrer_entry(AT_SIG, 3)]).to_vec(), mt::OCI_INDEX),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path(first.as_str()))
        .and(query_param("artifactType", AT_SBOM))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(index_bytes(&[referrer_entry(AT_SBOM, 1)]).to_vec(), mt::OCI_INDEX)
                .insert_header("OCI-Filters-Applied", "artifactType"),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path(first.as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(
                    index_bytes(&[referrer_entry(AT_SBOM, 1), referrer_entry(AT_SIG, 2)]).to_vec(),
                    mt::OCI_INDEX,
                )
                .insert_header("Link", format!(r#"<{first}?page=2>; rel="next""#).as_str()),
        )
        .with_priority(2)
        .mount(&server)
        .await;

    let repo = mock_client(|_| {}).repository(&host(&server), "app");
    let all = repo.referrers(&subject, None).await.unwrap();
    assert_eq!(all.descriptors.len(), 3);
    assert!(matches!(all.source, ReferrersSource::Api { filtered: false }));
    assert_eq!(repo.referrers_capability(), ReferrersCapability::Supported);

    let sboms = repo.referrers(&subject, Some(AT_SBOM)).await.unwrap();
    assert_eq!(sboms.descriptors.len(), 1);
    assert!(matches!(sboms.source, ReferrersSource::Api { filtered: true }));

    // This registry ignores the filter for bundles (no OCI-Filters-Applied): filtered here.
    let sigs = repo.referrers(&subject, Some(AT_SIG)).await.unwrap();
    assert!(matches!(sigs.source, ReferrersSource::Api { filtered: false }));
    assert_eq!(
        sigs.descriptors.iter().map(|d| d.artifact_type.as_deref()).collect::<Vec<_>>(),
        [Some(AT_SIG), Some(AT_SIG)]
    );
}

/// A referrers page answered from `pages`: each entry is the page's `page` query value, the referrers
/// it lists and the `page` value its `Link` names next (none on the last).
async fn paged_referrers(pages: &[(&str, Vec<Descriptor>, Option<&str>)]) -> (MockServer, Digest) {
    let server = MockServer::start().await;
    let subject = Digest::sha256(b"subject");
    let first = format!("/v2/app/referrers/{subject}");
    for (page, entries, next) in pages {
        let mut answer = ResponseTemplate::new(200).set_body_raw(index_bytes(entries).to_vec(), mt::OCI_INDEX);
        if let Some(next) = next {
            answer = answer.insert_header("Link", format!(r#"<{first}?page={next}>; rel="next""#).as_str());
        }
        let mock = Mock::given(path(first.as_str()));
        let mock = if page.is_empty() {
            mock.and(wiremock::matchers::query_param_is_missing("page")).respond_with(answer)
        } else {
            mock.and(query_param("page", *page)).respond_with(answer)
        };
        mock.mount(&server).await;
    }
    (server, subject)
}

/// Listings that prune and rollback decide from: an empty page linking a next one is followed, and a
/// registry that links a next page without advancing (a page already listed, a link back) fails the
/// listing rather than end it short.
#[tokio::test]
async fn referrers_pages_past_an_empty_one_and_never_end_short() {
    let (a, b, c) = (referrer_entry(AT_SIG, 1), referrer_entry(AT_SIG, 2), referrer_entry(AT_SBOM, 3));
    let (server, subject) = paged_referrers(&[
        ("", vec![a.clone()], Some("2")),
        ("2", vec![], Some("3")),
        ("3", vec![b.clone(), c.clone()], None),
    ])
    .await;
    let repo = mock_client(|_| {}).repository(&host(&server), "app");
    let all = repo.referrers(&subject, None).await.unwrap();
    let digests: Vec<&Digest> = all.descriptors.iter().map(|d| &d.digest).collect();
    assert_eq!(digests, [&a.digest, &b.digest, &c.digest]);

    // Page 2 repeats page 1 and links a third page: what follows cannot be reached.
    let (server, subject) = paged_referrers(&[
        ("", vec![a.clone()], Some("2")),
        ("2", vec![a.clone()], Some("3")),
        ("3", vec![b.clone()], None),
    ])
    .await;
    let repo = mock_client(|_| {}).repository(&host(&server), "app");
    let err = repo.referrers(&subject, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Registry, "{err:#}");
    assert!(err.to_string().contains("page 2 brings no new referrer"), "{err:#}");

    // Page 2 links back to itself after new entries.
    let (server, subject) =
        paged_referrers(&[("", vec![a.clone()], Some("2")), ("2", vec![b.clone()], Some("2"))]).await;
    let repo = mock_client(|_| {}).repository(&host(&server), "app");
    let err = repo.referrers(&subject, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Registry, "{err:#}");
    assert!(err.to_string().contains("links back to a page already read"), "{err:#}");
}

#[tokio::test]
async fn referrers_401_without_challenge_means_unsupported() {
    let server = MockServer::start().await;
    let subject = Digest::sha256(b"s");
    Mock::given(path_regex_referrers()).respond_with(ResponseTemplate::new(401)).mount(&server).await;
    Mock::given(path(format!("/v2/app/manifests/{}", subject.referrers_tag())))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            serde_json::json!({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}),
        ))
        .mount(&server)
        .await;
    let repo = mock_client(|_| {}).repository(&host(&server), "app");
    let r = repo.referrers(&subject, None).await.unwrap();
    assert!(r.descriptors.is_empty());
    assert!(matches!(r.source, ReferrersSource::TagSchema { index: None, .. }));
}

// ---------------------------------------------------------------------------------------------
// Real registries

/// Push a config, a layer and a manifest under `tag`; returns the manifest descriptor.
async fn push_image(repo: &RegistryRepository, tag: &str, layer: &[u8]) -> Descriptor {
    let config = Descriptor::empty_config();
    assert_eq!(repo.put_blob(Bytes::from_static(b"{}")).await.unwrap(), config.digest);
    let layer_desc = Descriptor::of("application/vnd.oci.image.layer.v1.tar", layer);
    assert_eq!(repo.put_blob(Bytes::copy_from_slice(layer)).await.unwrap(), layer_desc.digest);
    let bytes = manifest_bytes(&config, &[layer_desc], None, None);
    let put = repo.put_manifest(bytes.clone(), mt::OCI_MANIFEST, Some(tag)).await.unwrap();
    assert_eq!(put.digest, Digest::sha256(&bytes));
    Descriptor::of(mt::OCI_MANIFEST, &bytes)
}

async fn round_trip(registry: &TestRegistry) {
    let client = registry.client_with(|c| c.upload_chunk_size = 1000);
    let repo = client.repository(&registry.host, "proj/app");
    let image = push_image(&repo, "v1", b"layer one").await;

    let by_tag = repo.get_manifest("v1").await.unwrap().expect("by tag");
    let by_digest = repo.get_manifest(&image.digest.to_string()).await.unwrap().expect("by digest");
    assert_eq!(by_tag.bytes, by_digest.bytes);
    assert_eq!(by_tag.digest, image.digest);
    assert_eq!(by_digest.media_type, mt::OCI_MANIFEST);
    let head = repo.head_manifest("v1").await.unwrap().expect("head");
    assert_eq!(
        (head.digest.clone(), head.size, head.media_type.as_str()),
        (image.digest.clone(), image.size, mt::OCI_MANIFEST)
    );
    assert!(repo.get_manifest("nope").await.unwrap().is_none());
    assert!(repo.head_manifest("nope").await.unwrap().is_none());

    // Blobs: HEAD, GET, the upload skipped when present, and a chunked upload.
    let layer = Descriptor::of("application/octet-stream", b"layer one");
    assert_eq!(repo.blob_size(&layer.digest).await.unwrap(), Some(9));
    assert_eq!(repo.get_blob(&layer, 1024).await.unwrap(), Bytes::from_static(b"layer one"));
    let before = client.stats().requests;
    repo.put_blob(Bytes::from_static(b"layer one")).await.unwrap();
    assert_eq!(client.stats().requests - before, 1, "a present blob costs one HEAD");
    let big: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
    let big_desc = Descriptor::of("application/octet-stream", &big);
    let before = client.stats().requests;
    repo.put_blob(Bytes::from(big.clone())).await.unwrap();
    assert_eq!(client.stats().requests - before, 6, "HEAD, POST, 3 PATCH chunks, closing PUT");
    assert_eq!(repo.get_blob(&big_desc, 10_000).await.unwrap(), Bytes::from(big));
    assert_eq!(repo.get_blob(&big_desc, 100).await.unwrap_err().kind(), ErrorKind::TooLarge);
    let absent = Descriptor::of("application/octet-stream", b"absent");
    assert_eq!(repo.blob_size(&absent.digest).await.unwrap(), None);
    assert_eq!(repo.get_blob(&absent, 100).await.unwrap_err().kind(), ErrorKind::NotFound);

    // Mount into another repository, and a declined mount of a missing blob.
    let other = client.repository(&registry.host, "proj/other");
    // Distribution mounts (201); ferro-oci-server declines every mount (202 + a session we cancel).
    let mounted = other.mount_blob(&layer.digest, "proj/app").await.unwrap();
    assert_eq!(mounted, registry.kind == RegistryKind::Distribution);
    if mounted {
        assert_eq!(other.blob_size(&layer.digest).await.unwrap(), Some(9));
    }
    assert!(!other.mount_blob(&absent.digest, "proj/app").await.unwrap());
    other.put_blob_from(Bytes::from_static(b"{}"), "proj/app").await.unwrap();
    push_image(&other, "latest", b"layer one").await;

    let tags = repo.list_tags().await.unwrap();
    assert_eq!(tags, ["v1"]);
    let catalog = client.catalog(&registry.host).await.unwrap();
    assert!(catalog.contains(&"proj/app".to_owned()) && catalog.contains(&"proj/other".to_owned()), "{catalog:?}");

    repo.delete_manifest(&image.digest).await.unwrap();
    assert!(repo.get_manifest(&image.digest.to_string()).await.unwrap().is_none());
    assert!(repo.get_manifest("v1").await.unwrap().is_none());
    assert!(client.stats().bytes_uploaded > 2500 && client.stats().bytes_downloaded > 2500);
}

#[tokio::test]
async fn distribution_round_trip() {
    let registry = TestRegistry::distribution();
    assert_eq!(registry.kind, RegistryKind::Distribution);
    round_trip(&registry).await;
}

#[tokio::test]
async fn ferro_round_trip() {
    let registry = TestRegistry::ferro();
    round_trip(&registry).await;
}

#[tokio::test]
async fn distribution_referrers_use_the_tag_schema() {
    let registry = TestRegistry::distribution();
    let client = registry.client();
    let repo = client.repository(&registry.host, "app");
    let subject = push_image(&repo, "v1", b"subject layer").await;

    let none = repo.referrers(&subject.digest, None).await.unwrap();
    assert!(none.descriptors.is_empty());
    assert!(
        matches!(&none.source, ReferrersSource::TagSchema { index: None, tag } if *tag == subject.digest.referrers_tag())
    );
    assert_eq!(repo.referrers_capability(), ReferrersCapability::Unsupported);

    // A referrer artifact, recorded in the fallback index as the tag schema says.
    repo.put_blob(Bytes::from_static(b"bundle")).await.unwrap();
    let layer = Descriptor::of(mt::BUNDLE_V03, b"bundle");
    let referrer = manifest_bytes(&Descriptor::empty_config(), &[layer], Some(&subject), Some(AT_SIG));
    let put = repo.put_manifest(referrer.clone(), mt::OCI_MANIFEST, None).await.unwrap();
    assert_eq!(put.oci_subject, None);
    let mut entry = Descriptor::of(mt::OCI_MANIFEST, &referrer);
    entry.artifact_type = Some(AT_SIG.to_owned());
    let index = index_bytes(&[entry.clone()]);
    repo.put_manifest(index.clone(), mt::OCI_INDEX, Some(&subject.digest.referrers_tag())).await.unwrap();

    let found = repo.referrers(&subject.digest, None).await.unwrap();
    assert_eq!(found.descriptors, [entry]);
    match &found.source {
        ReferrersSource::TagSchema { index: Some(raw), .. } => assert_eq!(raw.bytes, index),
        other => panic!("expected the tag schema with an index, got {other:?}"),
    }
    assert!(repo.referrers(&subject.digest, Some(AT_SBOM)).await.unwrap().descriptors.is_empty());

    // A fallback tag holding something other than an index is an error, not "no referrers".
    let other = push_image(&repo, "v2", b"second layer").await;
    let stray = manifest_bytes(&Descriptor::empty_config(), &[], None, None);
    repo.put_manifest(stray, mt::OCI_MANIFEST, Some(&other.digest.referrers_tag())).await.unwrap();
    assert_eq!(repo.referrers(&other.digest, None).await.unwrap_err().kind(), ErrorKind::InvalidFormat);
}

#[tokio::test]
async fn ferro_referrers_use_the_api_with_filter() {
    let registry = TestRegistry::ferro();
    let client = registry.client();
    let repo = client.repository(&registry.host, "app");
    let subject = push_image(&repo, "v1", b"subject layer").await;
    repo.put_blob(Bytes::from_static(b"{}")).await.unwrap();

    for (artifact_type, content) in [(AT_SIG, &b"bundle"[..]), (AT_SBOM, &b"sbom"[..])] {
        repo.put_blob(Bytes::copy_from_slice(content)).await.unwrap();
        let layer = Descriptor::of(artifact_type, content);
        let referrer = manifest_bytes(&Descriptor::empty_config(), &[layer], Some(&subject), Some(artifact_type));
        let put = repo.put_manifest(referrer, mt::OCI_MANIFEST, None).await.unwrap();
        assert_eq!(put.oci_subject.as_ref(), Some(&subject.digest));
    }
    // The header alone does not make the client take the API as working (ECR and Docker Hub sent it
    // without a working listing: docs/REGISTRIES.md); the first listing does.
    assert_eq!(repo.referrers_capability(), ReferrersCapability::Unknown);

    let all = repo.referrers(&subject.digest, None).await.unwrap();
    assert_eq!(repo.referrers_capability(), ReferrersCapability::Supported);
    assert_eq!(all.descriptors.len(), 2);
    assert!(matches!(all.source, ReferrersSource::Api { filtered: false }));
    let sigs = repo.referrers(&subject.digest, Some(AT_SIG)).await.unwrap();
    assert_eq!(sigs.descriptors.len(), 1);
    assert_eq!(sigs.descriptors[0].artifact_type.as_deref(), Some(AT_SIG));
    assert!(matches!(sigs.source, ReferrersSource::Api { filtered: true }));

    // A fresh client learns support from the first API answer.
    let fresh = registry.client().repository(&registry.host, "app");
    assert_eq!(fresh.referrers_capability(), ReferrersCapability::Unknown);
    assert_eq!(fresh.referrers(&subject.digest, None).await.unwrap().descriptors.len(), 2);
    assert_eq!(fresh.referrers_capability(), ReferrersCapability::Supported);
}

#[tokio::test]
async fn referrers_redirect_to_a_web_page_means_unsupported() {
    let server = MockServer::start().await;
    let subject = Digest::sha256(b"s");
    Mock::given(path_regex_referrers())
        .respond_with(ResponseTemplate::new(302).insert_header("Location", "/login"))
        .mount(&server)
        .await;
    Mock::given(path("/login"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("<html>sign in</html>", "text/html"))
        .mount(&server)
        .await;
    Mock::given(path(format!("/v2/app/manifests/{}", subject.referrers_tag())))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let repo = mock_client(|_| {}).repository(&host(&server), "app");
    let r = repo.referrers(&subject, None).await.unwrap();
    assert!(r.descriptors.is_empty());
    assert!(matches!(r.source, ReferrersSource::TagSchema { index: None, .. }));
    assert_eq!(repo.referrers_capability(), ReferrersCapability::Unsupported);
}
