//! Pacing per registry, seen from the registry's side (a pass-through proxy that holds each request a
//! little, so concurrent ones overlap measurably): `--concurrent-requests N` caps the requests in flight
//! to one registry across every repository of a batch, and a 429 pauses the whole batch for the wait it
//! asks for, not only the request that got it. And from a scripted registry (wiremock): how long one
//! request waits out 429s.

use std::time::{Duration, Instant};

use att2ref::demo;
use att2ref::store::Repository;

use crate::fault_proxy::{Fault, FaultProxy};
use crate::prune::run_json;
use crate::registries::TestRegistry;
use crate::registry_client::{host, mock_client};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

const REPOSITORIES: usize = 6;

/// `REPOSITORIES` repositories holding the demo image and its legacy attachments, behind a proxy that
/// holds every request `delay`.
async fn batch(delay: Duration) -> (TestRegistry, FaultProxy, demo::Scenario) {
    let registry = TestRegistry::distribution();
    let scenario = demo::demo().unwrap();
    for i in 0..REPOSITORIES {
        scenario.repo.push_to(&registry.repository(&format!("paced/r{i}"))).await.unwrap();
    }
    let proxy = FaultProxy::start(&registry.host, None);
    proxy.delay_every_request(delay);
    (registry, proxy, scenario)
}

/// Every repository's image migrated, and both referrers listed by the registry itself.
async fn assert_all_migrated(registry: &TestRegistry, scenario: &demo::Scenario, report: &serde_json::Value) {
    let outcomes: Vec<&str> =
        report["images"].as_array().unwrap().iter().map(|i| i["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, vec!["migrated"; REPOSITORIES], "{report}");
    for i in 0..REPOSITORIES {
        let listed = registry.repository(&format!("paced/r{i}")).referrers(&scenario.image, None).await.unwrap();
        assert_eq!(listed.descriptors.len(), 2, "r{i}: both referrers listed");
    }
}

#[tokio::test]
async fn concurrent_requests_are_capped_per_registry_across_repositories() {
    let (registry, capped, scenario) = batch(Duration::from_millis(25)).await;
    let (run, report) =
        run_json("migrate", &capped.host, &["--all-repos", "--jobs", "6", "--concurrent-requests", "2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_all_migrated(&registry, &scenario, &report).await;
    assert_eq!(capped.max_in_flight(), 2, "six jobs, at most two requests at the registry at once");

    // The control: the same batch under the default cap shows the six jobs' requests overlapping.
    let (registry, free, scenario) = batch(Duration::from_millis(25)).await;
    let (run, report) = run_json("migrate", &free.host, &["--all-repos", "--jobs", "6"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_all_migrated(&registry, &scenario, &report).await;
    assert!(free.max_in_flight() >= 4, "without a low cap, jobs overlap: {}", free.max_in_flight());
}

#[tokio::test]
async fn a_429_pauses_every_job_for_the_wait_it_asks() {
    let (registry, proxy, scenario) = batch(Duration::from_millis(30)).await;
    // The first read of a legacy .att manifest is answered 429 with Retry-After: 1, once.
    proxy.fault_next("GET", ".att", Fault::TooManyRequests(1));
    let (run, report) = run_json("migrate", &proxy.host, &["--all-repos", "--jobs", "6"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_all_migrated(&registry, &scenario, &report).await;
    assert_eq!(report["requests"]["throttled"], 1, "{}", report["requests"]);
    assert_eq!(proxy.injected().values().sum::<u64>(), 1, "{:?}", proxy.injected());

    let arrivals = proxy.arrivals();
    let throttled_at = arrivals
        .iter()
        .find(|(_, what)| what.starts_with("GET ") && what.contains(".att"))
        .map(|(at, _)| *at)
        .expect("a legacy .att read");
    // Requests already on their way when the 429 was answered may still arrive; after that, nothing
    // reaches the registry from any job until the second has passed.
    let quiet = throttled_at + Duration::from_millis(150)..throttled_at + Duration::from_millis(850);
    let during: Vec<_> = arrivals.iter().filter(|(at, _)| quiet.contains(at)).collect();
    assert!(during.is_empty(), "requests during the pause a 429 asked for (429 at {throttled_at:?}): {during:?}");
    let after = arrivals.iter().filter(|(at, _)| *at >= throttled_at + Duration::from_secs(1)).count();
    assert!(after > REPOSITORIES * 5, "the batch went on after the pause: {after} requests");
}

/// A registry answering `first` (a 429) `times` times to the tag listing, then the list.
async fn throttling(first: ResponseTemplate, times: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/v2/app/tags/list"))
        .respond_with(first)
        .up_to_n_times(times)
        .with_priority(1)
        .expect(times)
        .mount(&server)
        .await;
    Mock::given(path("/v2/app/tags/list"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"name": "app", "tags": ["x"]})))
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    server
}

/// 429s without `Retry-After` do not use up the request's attempts (3 here): it keeps waiting them out,
/// within its patience, and succeeds once the registry answers.
#[tokio::test]
async fn throttling_without_retry_after_is_waited_out_beyond_the_attempts() {
    let server = throttling(ResponseTemplate::new(429), 6).await;
    let client = mock_client(|_| {});
    assert_eq!(client.repository(&host(&server), "app").list_tags().await.unwrap(), ["x"]);
    assert_eq!((client.stats().requests, client.stats().retries), (7, 6));
}

/// A registry that keeps refusing fails the request once the patience is spent, as rate limited.
#[tokio::test]
async fn throttling_past_the_patience_fails_as_rate_limited() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/app/tags/list")).respond_with(ResponseTemplate::new(429)).mount(&server).await;
    let client = mock_client(|c| c.retry.throttled_patience = Duration::from_millis(200));
    let started = Instant::now();
    let repo = client.repository(&host(&server), "app");
    let err =
        tokio::time::timeout(Duration::from_secs(10), repo.list_tags()).await.expect("gave up in time").unwrap_err();
    assert_eq!(err.kind(), att2ref::ErrorKind::RateLimited, "{err:#}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(100) && waited < Duration::from_secs(5), "{waited:?}");
}

/// A policy without backoff still runs out of patience with a registry that keeps refusing: each 429 is
/// waited out a little.
#[tokio::test]
async fn throttling_with_a_zero_backoff_policy_still_ends() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/app/tags/list")).respond_with(ResponseTemplate::new(429)).mount(&server).await;
    let client = mock_client(|c| {
        c.retry.base_backoff = Duration::ZERO;
        c.retry.max_backoff = Duration::ZERO;
        c.retry.throttled_patience = Duration::from_millis(100);
    });
    let repo = client.repository(&host(&server), "app");
    let err =
        tokio::time::timeout(Duration::from_secs(10), repo.list_tags()).await.expect("gave up in time").unwrap_err();
    assert_eq!(err.kind(), att2ref::ErrorKind::RateLimited, "{err:#}");
}

/// `Retry-After: 0` (or a date our clock has passed) is no wait at all: the request backs off as if none
/// were given, rather than spending its attempts at once.
#[tokio::test]
async fn a_retry_after_of_nothing_still_backs_off() {
    let server = throttling(ResponseTemplate::new(429).insert_header("Retry-After", "0"), 1).await;
    let client = mock_client(|c| {
        c.retry.base_backoff = Duration::from_millis(400);
        c.retry.max_backoff = Duration::from_millis(400);
    });
    let started = Instant::now();
    assert_eq!(client.repository(&host(&server), "app").list_tags().await.unwrap(), ["x"]);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(200), "half the first backoff at least: {waited:?}");
}

/// Learning whether a registry deletes manifests (prune asks once per host) is done per host: a probe
/// that one registry holds up does not hold up another registry's.
#[tokio::test]
async fn a_slow_delete_probe_of_one_registry_does_not_hold_up_another() {
    let answer = |delay: Duration| {
        ResponseTemplate::new(404)
            .set_body_json(serde_json::json!({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]}))
            .set_delay(delay)
    };
    let (slow, quick) = (MockServer::start().await, MockServer::start().await);
    Mock::given(wiremock::matchers::method("DELETE")).respond_with(answer(Duration::from_secs(3))).mount(&slow).await;
    Mock::given(wiremock::matchers::method("DELETE")).respond_with(answer(Duration::ZERO)).mount(&quick).await;
    let client = mock_client(|_| {});
    let (slow_repo, quick_repo) = (client.repository(&host(&slow), "app"), client.repository(&host(&quick), "app"));
    let slow_probe = tokio::spawn(async move { slow_repo.delete_support().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let support = quick_repo.delete_support().await;
    assert!(matches!(support, att2ref::store::DeleteSupport::Allowed), "{support:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "waited for the other registry: {:?}", started.elapsed());
    slow_probe.await.unwrap();
}
