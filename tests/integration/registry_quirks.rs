//! Documented deviations of real registries from the distribution spec, emulated by a proxy in front of the
//! real test registries (docs/REGISTRIES.md lists them with the issues that document each). Every test
//! checks that nothing is lost or written where nobody finds it.

use att2ref::demo;
use att2ref::model::digest::Digest;
use att2ref::model::oci::Manifest;
use att2ref::store::Repository;
use serde_json::json;

use crate::cli::{Run, att2ref};
use crate::fault_proxy::FaultProxy;
use crate::get::test_key;
use crate::registries::TestRegistry;

/// The demo in repository `name` of `registry`, and its image as reached through a counting proxy in
/// front of it with `quirk` switched on.
struct Quirky {
    registry: TestRegistry,
    proxy: FaultProxy,
    scenario: demo::Scenario,
    repo: att2ref::store::registry::RegistryRepository,
    image: String,
}

async fn quirky(registry: TestRegistry, name: &str, quirk: impl FnOnce(&FaultProxy)) -> Quirky {
    let proxy = FaultProxy::counting(&registry.host);
    quirk(&proxy);
    let scenario = demo::demo().unwrap();
    let repo = registry.repository(name);
    scenario.repo.push_to(&repo).await.unwrap();
    let image = format!("{}/{name}@{}", proxy.host, scenario.image);
    Quirky { registry, proxy, scenario, repo, image }
}

/// `migrate IMAGE -o json` with the demo's test key.
fn migrate(image: &str) -> Run {
    att2ref(&["migrate", "--plain-http", image, "--key", &test_key(), "--insecure-ignore-tlog", "-o", "json", "-q"])
}

/// `migrate IMAGE`, which must succeed writing `written` referrers; its run.
fn migrated(image: &str, written: u64) -> Run {
    let run = migrate(image);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["totals"]["referrers_written"], written, "{}", run.stdout);
    run
}

/// `get` of the demo's SLSA provenance, which must succeed with its exact text; its run.
fn slsa_found(image: &str) -> Run {
    let run = get_slsa(image);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.as_bytes(), demo::content::ARTICLE_SLSA_TEXT.as_bytes());
    run
}

/// `get IMAGE --type custom --hint slsa --stats=json` with the demo's test key.
fn get_slsa(image: &str) -> Run {
    let key = test_key();
    att2ref(&[
        "get",
        "--plain-http",
        image,
        "--type",
        "custom",
        "--hint",
        "slsa",
        "--key",
        &key,
        "--insecure-ignore-tlog",
        "--stats=json",
    ])
}

/// ECR in 2024 (sigstore-js#1183, fixed there by pinging the listing instead of trusting the header) and
/// Docker Hub (docker/hub-feedback#2372) answered a manifest PUT with `OCI-Subject` while their referrers
/// listing did not work. A migrator that takes the header as "the registry indexes referrers" skips the
/// referrers tag schema, and its referrers are found by nobody. Emulated: distribution 2.8.2 (no
/// referrers API) behind a proxy that adds the header to every PUT of a manifest with a subject.
#[tokio::test]
async fn an_oci_subject_header_without_a_listing_still_gets_the_tag_schema() {
    let Quirky { registry: _registry, proxy, scenario, repo, image } =
        quirky(TestRegistry::distribution(), "quirks/ecr", FaultProxy::claim_oci_subject).await;
    let run = migrated(&image, 2);
    // The proxy really claimed the API for the referrers written.
    let puts = proxy.log().iter().filter(|l| l.contains("PUT /v2/quirks/ecr/manifests/sha256:")).count();
    assert_eq!(puts, 2, "{:#?}", proxy.log());

    // The registry itself (not through the proxy) holds the fallback index listing both referrers.
    let index = repo.get_manifest(&scenario.image.referrers_tag()).await.unwrap().expect("the referrers tag");
    let Manifest::Index(index) = &index.manifest else { panic!("{} is not an index", index.media_type) };
    let written: Vec<Digest> = run.json()["images"][0]["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["digest"].as_str().unwrap().parse().unwrap())
        .collect();
    let mut listed: Vec<Digest> = index.manifests.iter().map(|d| d.digest.clone()).collect();
    let mut expected = written.clone();
    listed.sort();
    expected.sort();
    assert_eq!((listed.len(), listed), (2, expected), "{}", run.stdout);

    // A consumer finds the SLSA provenance among them, through the same proxy.
    let run = slsa_found(&image);
    assert!(run.stderr.contains("\"answeredBy\":\"referrer\""), "{}", run.stderr);

    // prune, through the same proxy, finds both replacements in the tag schema and removes the `.att`.
    let (run, report) = crate::prune::prune(&image, &["--apply"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(crate::prune::items(&report), [("legacy-attestation".to_owned(), "removed".to_owned())], "{report:#}");
    assert!(repo.head_manifest(&scenario.image.cosign_tag("att")).await.unwrap().is_none());
    assert_eq!(repo.referrers(&scenario.image, None).await.unwrap().descriptors.len(), 2);
}

/// Google Artifact Registry answers the upload POST with a session outside `/v2/`:
/// `/artifacts-uploads/namespaces/<project>/repositories/<repo>/uploads/<id>` (quoted in
/// oras-project/rust-oci-client#175; the distribution spec lets a session live anywhere). A client that
/// accepts only its repository's `/v2/…/blobs/uploads/` path cannot upload a single blob there.
/// Emulated: distribution 2.8.2 behind a proxy that moves every session so; `migrate` and `copy` write
/// every blob through the moved sessions.
#[tokio::test]
async fn upload_sessions_outside_the_api_path_are_followed() {
    let Quirky { registry: _registry, proxy, scenario, repo: _repo, image } =
        quirky(TestRegistry::distribution(), "quirks/gar", FaultProxy::move_upload_sessions).await;
    migrated(&image, 2);
    let (moved, in_api) = session_writes(&proxy);
    // Two bundles and the empty config, each closed by one PUT on its moved session.
    assert_eq!((moved, in_api), (3, 0), "{:#?}", proxy.arrivals());
    slsa_found(&image);

    // copy to another registry of the same kind: its blobs go through moved sessions too (within one
    // registry they would be mounted, not uploaded).
    let other = TestRegistry::distribution();
    let other_proxy = FaultProxy::counting(&other.host);
    other_proxy.move_upload_sessions();
    let destination = format!("{}/quirks/gar-copy", other_proxy.host);
    let key = test_key();
    let run = att2ref(&[
        "copy",
        "--plain-http",
        &image,
        &destination,
        "--key",
        &key,
        "--insecure-ignore-tlog",
        "-o",
        "json",
        "-q",
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let (moved, in_api) = session_writes(&other_proxy);
    assert!(moved >= 3 && in_api == 0, "{moved} {in_api}: {:#?}", other_proxy.arrivals());
    let copied = other.repository("quirks/gar-copy");
    assert_eq!(copied.referrers(&scenario.image, None).await.unwrap().descriptors.len(), 2);
}

/// Upload writes (PUT, PATCH) that reached a moved session, and those that reached `/v2/…/blobs/uploads/`.
fn session_writes(proxy: &FaultProxy) -> (usize, usize) {
    let arrivals = proxy.arrivals();
    let writes = || arrivals.iter().filter(|(_, l)| l.starts_with("PUT ") || l.starts_with("PATCH "));
    let moved = writes().filter(|(_, l)| l.contains(" /artifacts-uploads/")).count();
    let in_api = writes().filter(|(_, l)| l.contains("/blobs/uploads/") && l.contains(" /v2/")).count();
    (moved, in_api)
}

/// GitLab's container registry reads a `sha256-<hex>` tag as the digest `sha256:<hex>`: the referrers tag
/// of an image answers 200 with the image itself (oras-project/oras#2148, oras-project/oras-go#1396), and
/// GitLab has no referrers API. Emulated: distribution 2.8.2 behind a proxy that reads such tags as
/// digests. Readers must still read the legacy layout and say why no referrers were listed; writers must
/// refuse before writing anything; prune must keep the legacy `.att`.
#[tokio::test]
async fn a_referrers_tag_that_answers_with_the_image_itself_is_diagnosed_and_nothing_is_written() {
    let Quirky { registry: _registry, proxy, scenario, repo, image } =
        quirky(TestRegistry::distribution(), "quirks/gitlab", FaultProxy::read_digest_tags_as_digests).await;
    let key = test_key();
    let mut tags_before = repo.list_tags().await.unwrap();
    tags_before.sort();

    // get: the legacy .att answers; the stats say the referrers could not be listed.
    let run = slsa_found(&image);
    assert!(run.stderr.contains("\"answeredBy\":\"legacy\""), "{}", run.stderr);
    assert!(run.stderr.contains("\"discovery\":\"unusable\""), "{}", run.stderr);

    // inspect: the legacy layout in full, and one anomaly naming the cause.
    let run = att2ref(&["inspect", "--plain-http", &image, "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    crate::schema::assert_valid("inspect.schema.json", &report);
    let report = &report["images"][0];
    assert_eq!(report["referrers"]["discovery"], "unusable");
    assert_eq!(report["legacy"]["attestations"]["layers"].as_array().map(Vec::len), Some(2));
    let anomalies: Vec<&serde_json::Value> =
        report["anomalies"].as_array().unwrap().iter().filter(|a| a["code"] == "referrers-unusable").collect();
    assert_eq!(anomalies.len(), 1, "{report:#}");
    let message = anomalies[0]["message"].as_str().unwrap();
    assert!(message.contains("answers with the image") && message.contains("oras-project/oras#2148"), "{message}");

    // migrate: refused for the image, with the same diagnosis; nothing written.
    let run = migrate(&image);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let migrated = &run.json()["images"][0];
    assert_eq!(
        (&migrated["outcome"], &migrated["error_kind"]),
        (&json!("failed"), &json!("unsupported")),
        "{migrated:#}"
    );
    assert!(
        migrated["reasons"][0].as_str().unwrap().contains("referrers tag schema cannot be used here"),
        "{migrated:#}"
    );
    assert_eq!(run.json()["totals"]["referrers_written"], 0, "{}", run.stdout);
    let log = proxy.log();
    let puts: Vec<&String> = log.iter().filter(|l| l.contains(" PUT ")).collect();
    assert!(puts.is_empty(), "nothing may be written: {puts:#?}");
    let posts = proxy.log().iter().filter(|l| l.contains("POST ")).count();
    assert_eq!(posts, 0, "no upload started: {:#?}", proxy.log());

    // prune --apply: the legacy .att has no verified replacement anywhere, so it stays.
    let run = att2ref(&["prune", "--plain-http", &image, "--key", &key, "--insecure-ignore-tlog", "--apply", "-q"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("could-not-check") && run.stdout.contains("oras-project/oras#2148"), "{}", run.stdout);
    let deletes = proxy.log().iter().filter(|l| l.contains("DELETE ")).count();
    assert_eq!(deletes, 0, "{:#?}", proxy.log());
    let mut tags_after = repo.list_tags().await.unwrap();
    tags_after.sort();
    assert_eq!(tags_after, tags_before, "the registry's tags are as before");
    assert!(repo.get_manifest(&scenario.image.referrers_tag()).await.unwrap().is_none());
}

/// The distribution spec requires a referrers list that does not fit in one answer to be paged with
/// `Link`, and a registry may ignore the `artifactType` filter, which it must then not claim in
/// `OCI-Filters-Applied` (Harbor before 2.8 mis-signalled it, goharbor/harbor#18413; Quay's cache was keyed
/// without the filter, quay/quay#6510). No production registry was found paging `/referrers`; a proxy in
/// front of ferro-oci-server (referrers API) serves one entry per page and drops the filter.
#[tokio::test]
async fn referrers_split_over_link_pages_and_an_ignored_filter_lose_nothing() {
    use att2ref::model::media_type as mt;
    use att2ref::store::ReferrersSource;

    let registry = TestRegistry::ferro();
    let scenario = demo::demo().unwrap();
    let repo = registry.repository("quirks/pages");
    scenario.repo.push_to(&repo).await.unwrap();
    let direct = format!("{}/quirks/pages@{}", registry.host, scenario.image);
    let run = migrate(&direct);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["totals"]["referrers_written"], 2, "{}", run.stdout);

    let proxy = FaultProxy::counting(&registry.host);
    proxy.page_referrers(1);
    proxy.ignore_artifact_type_filter();
    let image = format!("{}/quirks/pages@{}", proxy.host, scenario.image);

    // The library: both referrers over two pages; a filter the registry did not apply is applied here.
    let client =
        registry.client_with(|c| c.plain_http = att2ref::store::registry::PlainHttp::Hosts(vec![proxy.host.clone()]));
    let through = client.repository(&proxy.host, "quirks/pages");
    let all = through.referrers(&scenario.image, None).await.unwrap();
    assert_eq!(all.descriptors.len(), 2, "{:#?}", proxy.log());
    let bundles = through.referrers(&scenario.image, Some(mt::BUNDLE_V03)).await.unwrap();
    assert_eq!(bundles.descriptors.len(), 2);
    assert!(matches!(bundles.source, ReferrersSource::Api { filtered: false }), "{:?}", bundles.source);
    let none = through.referrers(&scenario.image, Some("application/vnd.example.other+json")).await.unwrap();
    assert!(none.descriptors.is_empty(), "{:?}", none.descriptors);
    let pages = proxy.log().iter().filter(|l| l.contains("/referrers/") && l.contains("page=1")).count();
    assert_eq!(pages, 3, "each listing asked for its second page: {:#?}", proxy.log());

    // inspect lists both; a migrate rerun finds both and writes nothing; get finds the SLSA provenance.
    let run = att2ref(&["inspect", "--plain-http", &image, "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["images"][0]["referrers"]["entries"].as_array().map(Vec::len), Some(2));
    migrated(&image, 0);
    slsa_found(&image);

    // prune sees the duplicate pair across pages, keeps one (by creation time, then digest) and removes
    // the `.att`.
    crate::prune::add_duplicate(&registry, &repo, &scenario.image).await;
    let (run, report) = crate::prune::prune(&image, &["--apply"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut items = crate::prune::items(&report);
    items.sort();
    let expected = [("duplicate-referrer", "removed"), ("legacy-attestation", "removed")];
    assert_eq!(items, expected.map(|(k, s)| (k.to_owned(), s.to_owned())), "{report:#}");
    let left = repo.referrers(&scenario.image, None).await.unwrap().descriptors;
    assert_eq!(left.len(), 2, "{left:#?}");
    let removed = report["items"].as_array().unwrap().iter().find(|i| i["kind"] == "duplicate-referrer").unwrap();
    let removed: Digest = removed["digest"].as_str().unwrap().parse().unwrap();
    assert!(left.iter().all(|d| d.digest != removed), "{left:#?}");
    assert!(repo.get_manifest(&removed.to_string()).await.unwrap().is_none());
}

/// GHCR refuses manifest DELETE through the registry API: 405 `UNSUPPORTED` "The operation is
/// unsupported." (containers/skopeo#1880, sigstore/cosign#3434); only the GitHub Packages API deletes.
/// `prune --apply` over two repositories of such a registry (distribution 2.8.2 behind a proxy that
/// refuses every DELETE as GHCR does) learns it with one request, says it once, and deletes nothing.
#[tokio::test]
async fn a_registry_that_refuses_delete_is_reported_once_and_nothing_is_attempted() {
    let registry = TestRegistry::distribution();
    let scenario = demo::demo().unwrap();
    let key = test_key();
    let mut images = Vec::new();
    for name in ["quirks/ghcr-a", "quirks/ghcr-b"] {
        scenario.repo.push_to(&registry.repository(name)).await.unwrap();
        let direct = format!("{}/{name}@{}", registry.host, scenario.image);
        let run = migrate(&direct);
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        images.push(name);
    }
    let proxy = FaultProxy::counting(&registry.host);
    proxy.refuse_deletes();
    let targets: Vec<String> = images.iter().map(|n| format!("{}/{n}@{}", proxy.host, scenario.image)).collect();
    let mut args = vec!["prune", "--plain-http", "--key", &key, "--insecure-ignore-tlog", "--apply", "-o", "json"];
    args.extend(targets.iter().map(String::as_str));
    let run = att2ref(&args);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);

    // One DELETE in all: the probe, of a digest nobody stored.
    let log = proxy.log();
    let deletes: Vec<&String> = log.iter().filter(|l| l.contains(" DELETE ")).collect();
    assert_eq!(deletes.len(), 1, "{log:#?}");
    // Said once, with the registry's own words.
    let said: Vec<&str> = run.stderr.lines().filter(|l| l.contains("refuses manifest DELETE")).collect();
    assert_eq!(said.len(), 1, "{}", run.stderr);
    assert!(
        said[0].contains("The operation is unsupported.") && said[0].ends_with("(2 removals not attempted)"),
        "{}",
        said[0]
    );
    assert_eq!(run.stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{}", run.stderr);
    // Both .att items failed as not attempted; both .att tags are still there.
    let report = run.json();
    let att: Vec<&serde_json::Value> =
        report["items"].as_array().unwrap().iter().filter(|i| i["status"] == "failed").collect();
    assert_eq!(att.len(), 2, "{report:#}");
    assert!(att.iter().all(|i| i["error_kind"] == "unsupported"), "{report:#}");
    for name in images {
        let tag = scenario.image.cosign_tag("att");
        assert!(registry.repository(name).head_manifest(&tag).await.unwrap().is_some(), "{name}:{tag} is kept");
    }
}

/// ECR answers 405 to a referrer whose subject is an image index (aws/containers-roadmap#2783). A
/// migration there must fail that index alone, say why, and lose nothing: its legacy `.att` stays (and
/// `prune` keeps it), while its platform manifests are migrated on their own. Emulated: distribution
/// 2.8.2 behind a proxy refusing such PUTs.
#[tokio::test]
async fn a_registry_refusing_index_subjects_fails_the_index_alone_and_keeps_its_att() {
    let registry = TestRegistry::distribution();
    let proxy = FaultProxy::counting(&registry.host);
    proxy.refuse_index_subjects();
    let scenario = demo::multi_arch().unwrap();
    let repo = registry.repository("quirks/index");
    scenario.repo.push_to(&repo).await.unwrap();
    let Manifest::Index(index) = &repo.get_manifest(&scenario.image.to_string()).await.unwrap().unwrap().manifest
    else {
        panic!("the multi-arch scenario's image is an index")
    };
    let (amd64, arm64) = (index.manifests[0].digest.clone(), index.manifests[1].digest.clone());
    let index_att = repo.head_manifest(&scenario.image.cosign_tag("att")).await.unwrap().expect("the index's .att");

    let target = format!("{}/quirks/index:1.0", proxy.host);
    let ed25519 = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/ed25519.pub.pem");
    let key = ed25519.to_str().unwrap();
    let run =
        att2ref(&["migrate", "--plain-http", &target, "--key", key, "--insecure-ignore-tlog", "-o", "json", "-q"]);
    assert_eq!(run.code, 2, "unsupported by the registry: {}\n{}", run.stdout, run.stderr);
    let report = run.json();
    crate::schema::assert_valid("migrate-report.schema.json", &report);
    let outcomes = crate::prune::image_outcomes(&report);
    let expected = [(&scenario.image, "failed"), (&amd64, "migrated"), (&arm64, "nothing-to-migrate")];
    assert_eq!(outcomes, expected.map(|(d, o)| (d.to_string(), o.to_owned())), "{report:#}");
    let failed = &report["images"][0];
    assert_eq!(failed["error_kind"], "unsupported", "{failed:#}");
    let reasons = failed["reasons"].to_string();
    assert!(reasons.contains("the registry refuses referrers whose subject is an image index"), "{reasons}");
    assert!(reasons.contains("the legacy .att of this index is kept"), "{reasons}");
    assert_eq!(report["registries"][0]["index_subject"]["answer"], "refused", "{report:#}");
    assert_eq!(report["registries"][0]["referrers"], "tag-schema", "{report:#}");
    let refused = proxy.log().iter().filter(|l| l.contains("the subject is an index")).count();
    assert_eq!(refused, 1, "one referrer of the index was tried: {:#?}", proxy.log());

    // The registry itself: no referrers tag for the index, one referrer listed for amd64.
    assert!(repo.get_manifest(&scenario.image.referrers_tag()).await.unwrap().is_none());
    assert_eq!(repo.referrers(&amd64, None).await.unwrap().descriptors.len(), 1);

    // Prune through the same registry keeps the index's .att (no replacement) and removes amd64's.
    let run = att2ref(&[
        "prune",
        "--plain-http",
        &target,
        "--key",
        key,
        "--insecure-ignore-tlog",
        "--apply",
        "-o",
        "json",
        "-q",
    ]);
    let report = run.json();
    crate::schema::assert_valid("prune-report.schema.json", &report);
    let mut legacy: Vec<(String, String)> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "legacy-attestation")
        .map(|i| (i["subject"].as_str().unwrap().to_owned(), i["status"].as_str().unwrap().to_owned()))
        .collect();
    legacy.sort();
    let mut expected = vec![(scenario.image.to_string(), "kept".to_owned()), (amd64.to_string(), "removed".to_owned())];
    expected.sort();
    assert_eq!(legacy, expected, "{report:#}");
    assert_eq!(repo.head_manifest(&scenario.image.cosign_tag("att")).await.unwrap(), Some(index_att));
    assert!(repo.head_manifest(&amd64.cosign_tag("att")).await.unwrap().is_none());
}

/// Quay served referrers listings from a cache for up to 60 s, keyed without the `artifactType` filter
/// (quay#6510; a signer listing right after its write found nothing, tektoncd/chains#1691). Migrating
/// there lists before writing (the answer cached) and reads back after: the read-back waits for the
/// listing, and the lag is reported. Emulated: ferro-oci-server behind a proxy caching listings 3 s.
#[tokio::test]
async fn a_cached_referrers_listing_is_waited_for_and_reported() {
    let Quirky { registry: _registry, proxy, scenario: _scenario, repo: _repo, image } =
        quirky(TestRegistry::ferro(), "quirks/quay", |p| p.cache_referrers(std::time::Duration::from_secs(3))).await;
    let run = migrate(&image);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["images"][0]["outcome"], "migrated", "{report:#}");
    assert_eq!(report["registries"][0]["referrers"], "api", "{report:#}");
    assert!(report["registries"][0]["listing_lag_ms"].as_u64().is_some(), "{report:#}");
    let cached = proxy.log().iter().filter(|l| l.contains("from the cache")).count();
    assert!(cached >= 1, "the read-back met the cached listing at least once: {:#?}", proxy.log());
    // And a consumer through the same registry finds the SLSA provenance once the cache has expired.
    proxy.expire_referrers_cache();
    slsa_found(&image);
}

/// A listing that never shows what the registry accepted (within `--listing-wait`) fails the image with
/// the diagnosis, and nothing is lost: `prune`, reading the same stale listing, finds no replacement and
/// keeps the legacy `.att`; once the listing is current, it removes it.
#[tokio::test]
async fn a_listing_that_never_shows_the_write_fails_the_image_and_prune_keeps_the_att() {
    let Quirky { registry: _registry, proxy, scenario, repo, image } =
        quirky(TestRegistry::ferro(), "quirks/stale", |p| p.cache_referrers(std::time::Duration::from_secs(600))).await;
    let att = repo.head_manifest(&scenario.image.cosign_tag("att")).await.unwrap().expect("the .att");
    let key = test_key();
    let common = ["--plain-http", &image, "--key", &key, "--insecure-ignore-tlog", "-o", "json", "-q"];
    let run = att2ref(&[&["migrate", "--listing-wait", "1"], &common[..]].concat());
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["images"][0]["outcome"], "failed", "{report:#}");
    let reasons = report["images"][0]["reasons"].to_string();
    assert!(reasons.contains("the registry accepted referrer") && reasons.contains("does not show it"), "{reasons}");
    assert!(report["registries"][0]["listing_never_showed_ms"].as_u64().is_some_and(|ms| ms >= 1000), "{report:#}");

    let run = att2ref(&[&["prune", "--apply"], &common[..]].concat());
    let report = run.json();
    assert_eq!(crate::prune::count(&report, "legacy-attestation", "removed"), 0, "{report:#}");
    assert_eq!(repo.head_manifest(&scenario.image.cosign_tag("att")).await.unwrap(), Some(att.clone()));

    proxy.expire_referrers_cache();
    proxy.cache_referrers(std::time::Duration::ZERO);
    let run = att2ref(&[&["prune", "--apply"], &common[..]].concat());
    let report = run.json();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(crate::prune::count(&report, "legacy-attestation", "removed"), 1, "{report:#}");
    assert!(repo.head_manifest(&scenario.image.cosign_tag("att")).await.unwrap().is_none());
}

/// Once a host's listing never showed a write within the whole `--listing-wait` (and never showed one
/// late), the next images there wait 5 s at most: a batch on such a registry does not spend the whole wait
/// on every image. The second image's failure says how long it waited.
#[tokio::test]
async fn after_a_listing_never_showed_later_images_wait_less() {
    let registry = TestRegistry::ferro();
    let proxy = FaultProxy::counting(&registry.host);
    proxy.cache_referrers(std::time::Duration::from_secs(600));
    let repo = registry.repository("quirks/stale-batch");
    for i in 0..2 {
        let s = demo::article_like_numbered(&format!("{}/quirks/stale-batch", registry.host), i, 2_000).unwrap();
        s.repo.push_to(&repo).await.unwrap();
    }
    let target = format!("{}/quirks/stale-batch", proxy.host);
    let key = test_key();
    let run = att2ref(&[
        "migrate",
        "--plain-http",
        &target,
        "--key",
        &key,
        "--insecure-ignore-tlog",
        "-o",
        "json",
        "-q",
        "--jobs",
        "1",
        "--listing-wait",
        "8",
    ]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let waited: Vec<f64> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert_eq!(i["outcome"], "failed", "{i:#}");
            let reason = i["reasons"][0].as_str().unwrap();
            let after = reason.split(" after ").nth(1).unwrap();
            after.split(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(waited.len(), 2);
    assert!(waited[0] >= 8.0, "the first image waits the whole --listing-wait: {waited:?}");
    assert!((5.0..8.0).contains(&waited[1]), "the second waits 5 s: {waited:?}");
}

/// Google Artifact Registry refuses to delete a manifest that an index still lists (400
/// `GOOGLE_MANIFEST_DANGLING_PARENT_IMAGE`, chainguard-dev/terraform-provider-cosign#577). Pruning a
/// duplicate referrer there removes its tag-schema entry first, then the manifest; the order is learnt and
/// reported. Emulated: distribution 2.8.2 behind a proxy refusing such deletes.
#[tokio::test]
async fn a_registry_refusing_to_delete_listed_manifests_gets_the_index_entry_removed_first() {
    let registry = TestRegistry::distribution();
    let (scenario, repo, image) = crate::prune::migrated(&registry, "quirks/gar").await;
    let copy = crate::prune::add_duplicate(&registry, &repo, &scenario.image).await;
    let proxy = FaultProxy::counting(&registry.host);
    proxy.refuse_delete_while_listed();
    let image = image.replace(&registry.host, &proxy.host);
    let (run, report) = crate::prune::prune(&image, &["--apply"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(crate::prune::count(&report, "duplicate-referrer", "removed"), 1, "{report:#}");
    assert_eq!(crate::prune::count(&report, "legacy-attestation", "removed"), 1, "{report:#}");
    let refused = proxy.log().iter().filter(|l| l.contains("a referrers index lists it")).count();
    assert_eq!(refused, 1, "one refusal, then the other order: {:#?}", proxy.log());
    assert_eq!(report["registries"][0]["delete_while_listed"]["answer"], "refused", "{report:#}");
    let duplicate = report["items"].as_array().unwrap().iter().find(|i| i["kind"] == "duplicate-referrer").unwrap();
    assert!(duplicate["reasons"].to_string().contains("removed from the referrers index"), "{duplicate:#}");

    // The registry itself: two referrers listed, the copy gone from the index and from the repository.
    let listing = repo.referrers(&scenario.image, None).await.unwrap();
    assert_eq!(listing.descriptors.len(), 2, "{:#?}", listing.descriptors);
    assert!(listing.descriptors.iter().all(|d| d.digest != copy));
    assert!(repo.get_manifest(&copy.to_string()).await.unwrap().is_none(), "the copy is deleted");
}

/// Google Artifact Registry's listing lags deletions by hours: a referrer deleted is still listed, and a
/// DELETE of it answers `MANIFEST_UNKNOWN` (chainguard-dev/terraform-provider-cosign#581). A listed
/// referrer is therefore never taken as present: `prune` keeps the legacy `.att` whose replacements are
/// only ghosts, `get` still finds the attestation (in the legacy layout), and `migrate` writes the
/// replacements again. Emulated: ferro-oci-server behind a proxy serving a listing cached before the
/// referrers were deleted (directly on the registry, as another tool or a retention policy would).
#[tokio::test]
async fn referrers_still_listed_after_their_deletion_are_not_taken_as_present() {
    let registry = TestRegistry::ferro();
    let (scenario, repo, image) = crate::prune::migrated(&registry, "quirks/ghost").await;
    let att = repo.head_manifest(&scenario.image.cosign_tag("att")).await.unwrap().expect("the .att");
    let proxy = FaultProxy::counting(&registry.host);
    proxy.cache_referrers(std::time::Duration::from_secs(600));
    let image = image.replace(&registry.host, &proxy.host);
    let run = att2ref(&["inspect", "--plain-http", &image, "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let listed = repo.referrers(&scenario.image, None).await.unwrap().descriptors;
    assert_eq!(listed.len(), 2, "{listed:#?}");
    for d in &listed {
        repo.delete_manifest(&d.digest).await.unwrap();
    }
    assert!(repo.referrers(&scenario.image, None).await.unwrap().descriptors.is_empty());

    // inspect (like verify) cannot show or check what is listed and not served: it says so, naming it.
    let run = att2ref(&["inspect", "--plain-http", &image, "-o", "json"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stderr.contains("listed but its manifest is missing"), "{}", run.stderr);

    let (run, report) = crate::prune::prune(&image, &["--apply"]);
    let reasons = report["items"][0]["reasons"].to_string();
    assert_eq!(reasons.matches("listed, but its manifest is gone").count(), 2, "{reasons}");
    assert_eq!(crate::prune::count(&report, "legacy-attestation", "removed"), 0, "{report:#}");
    assert_eq!(
        repo.head_manifest(&scenario.image.cosign_tag("att")).await.unwrap(),
        Some(att.clone()),
        "{}",
        run.stderr
    );

    let run = slsa_found(&image);
    let stats = crate::get::stats(&run);
    assert_eq!(stats["read"]["referrersMissing"], 1, "the SLSA ghost was tried and skipped: {stats:#}");
    assert_eq!(stats["answeredBy"], "legacy", "{stats:#}");

    let run = migrate(&image);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["images"][0]["outcome"], "migrated", "{report:#}");
    let mut again: Vec<Digest> =
        repo.referrers(&scenario.image, None).await.unwrap().descriptors.into_iter().map(|d| d.digest).collect();
    let mut before: Vec<Digest> = listed.into_iter().map(|d| d.digest).collect();
    again.sort();
    before.sort();
    assert_eq!(again, before, "the same referrers, byte for byte, are listed again");
    // Now served, they replace the legacy `.att`.
    let (run, report) = crate::prune::prune(&image, &["--apply"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(crate::prune::count(&report, "legacy-attestation", "removed"), 1, "{report:#}");
}

/// distribution since 2.8.2 caps catalog pages at `catalog.maxentries` and answers a larger `n` with 400
/// `PAGINATION_NUMBER_INVALID` (distribution/distribution 521ea3d, "Fix runaway allocation on
/// /v2/_catalog") instead of serving fewer. `--all-repos` asks for 1000 a page: on a registry configured
/// below that, it asks again without `n` and follows the registry's own pages.
#[tokio::test]
async fn a_catalog_refusing_the_page_size_is_read_at_its_own() {
    use crate::registries::DistributionConfig;
    let registry = TestRegistry::distribution_with(DistributionConfig {
        catalog_max_entries: Some(3),
        ..DistributionConfig::default()
    });
    let scenario = demo::demo().unwrap();
    let mut names: Vec<String> = (0..7).map(|i| format!("capped/r{i}")).collect();
    for name in &names {
        scenario.repo.push_to(&registry.repository(name)).await.unwrap();
    }
    let mut listed = registry.client().catalog(&registry.host).await.unwrap();
    listed.sort();
    names.sort();
    assert_eq!(listed, names);

    let run = att2ref(&["status", "--plain-http", "--all-repos", &registry.host, "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let repositories = run.json()["repositories"].as_object().map(serde_json::Map::len);
    assert_eq!(repositories, Some(7), "{}", run.stdout);
}

/// Harbor 2.8–2.10 lists every referrer with its config's media type as artifactType, whatever the
/// manifest's own (goharbor/harbor#19867, fixed in 2.11): our referrers read
/// `application/vnd.oci.empty.v1+json`, and a consumer filtering on the bundle type finds none. `get`
/// still finds the SLSA provenance among them (an entry listed with the empty config's type is told by
/// its annotations); `prune` does not count them as replacements and keeps the `.att`, saying why.
/// Emulated: ferro-oci-server (referrers API) behind a proxy that rewrites the listing so.
#[tokio::test]
async fn referrers_listed_with_their_config_type_are_found_but_replace_nothing() {
    let Quirky { registry: _registry, proxy: _proxy, scenario, repo, image } =
        quirky(TestRegistry::ferro(), "quirks/harbor", FaultProxy::list_config_type_as_artifact_type).await;
    migrated(&image, 2);

    let run = slsa_found(&image);
    assert!(run.stderr.contains("\"answeredBy\":\"referrer\""), "{}", run.stderr);

    let (run, report) = crate::prune::prune(&image, &["--apply"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(crate::prune::items(&report), [("legacy-attestation".to_owned(), "kept".to_owned())], "{report:#}");
    assert!(report["items"][0]["reasons"].to_string().contains("goharbor/harbor#19867"), "{report:#}");
    assert!(repo.head_manifest(&scenario.image.cosign_tag("att")).await.unwrap().is_some(), "the .att stays");
}

/// Harbor 2.8–2.10 answer the referrers listing of a subject the repository does not hold with 200 `{}`
/// ("give an empty json body on non artifact scenario", goharbor/harbor#18430), not with an index. `copy`
/// asks the destination for the image's referrers before the image is there: taking `{}` for a broken
/// answer failed every image, on every rerun. It is no listing and says nothing of the API; the copy goes
/// on. Emulated: ferro-oci-server behind a proxy answering so.
#[tokio::test]
async fn an_empty_object_for_an_unknown_subject_is_no_listing() {
    let source = TestRegistry::distribution();
    let scenario = demo::demo().unwrap();
    scenario.repo.push_to(&source.repository("quirks/src")).await.unwrap();
    let destination = TestRegistry::ferro();
    let proxy = FaultProxy::counting(&destination.host);
    proxy.answer_unknown_subjects_with_an_empty_object();
    let key = test_key();
    let from = format!("{}/quirks/src@{}", source.host, scenario.image);
    let to = format!("{}/quirks/harbor-copy", proxy.host);
    let run =
        att2ref(&["copy", "--plain-http", &from, &to, "--key", &key, "--insecure-ignore-tlog", "-o", "json", "-q"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(proxy.log().iter().any(|l| l.contains("200 {}")), "the quirk answered: {:#?}", proxy.log());
    let copied = destination.repository("quirks/harbor-copy");
    assert_eq!(copied.referrers(&scenario.image, None).await.unwrap().descriptors.len(), 2);
}
