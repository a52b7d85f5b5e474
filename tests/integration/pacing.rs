//! Pacing per registry, seen from the registry's side (a pass-through proxy that holds each request a
//! little, so concurrent ones overlap measurably): `--concurrent-requests N` caps the requests in flight
//! to one registry across every repository of a batch, and a 429 pauses the whole batch for the wait it
//! asks for, not only the request that got it.

use std::time::Duration;

use att2ref::demo;
use att2ref::store::Repository;

use crate::fault_proxy::{Fault, FaultProxy};
use crate::prune::run_json;
use crate::registries::TestRegistry;

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
