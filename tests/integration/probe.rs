//! `att2ref probe` against the real test registries and each quirk of the test proxy: the exact facts
//! reported, read-only and with `--write-test`, and after a write test the registry itself (asked
//! directly, not through att2ref or the proxy) holds nothing the probe wrote, or exactly the leftovers the
//! report names.

use std::collections::BTreeMap;

use att2ref::model::digest::Digest;
use att2ref::store::Repository;
use serde_json::Value;

use crate::cli::{Run, att2ref};
use crate::fault_proxy::FaultProxy;
use crate::registries::TestRegistry;
use crate::schema::assert_valid;

const REPO: &str = "probe/app";

fn probe(host: &str, write_test: bool) -> Run {
    let target = format!("{host}/{REPO}");
    let mut args = vec!["probe", "--plain-http", target.as_str(), "-o", "json"];
    if write_test {
        args.push("--write-test");
    }
    let run = att2ref(&args);
    assert_valid("probe-report.schema.json", &run.json());
    run
}

/// `fact → value[ status[ code]]` for every fact of a report.
fn facts(report: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let api = &report["api"];
    out.insert(
        "api".to_owned(),
        format!("{} {} {}", api["status"], api["authScheme"].as_str().unwrap(), api["granted"]),
    );
    let mut put = |name: &str, fact: &Value| {
        if fact.is_null() {
            return;
        }
        let mut text = fact["value"].as_str().unwrap().to_owned();
        if let Some(s) = fact["status"].as_u64() {
            text.push_str(&format!(" {s}"));
        }
        if let Some(c) = fact["code"].as_str() {
            text.push_str(&format!(" {c}"));
        }
        out.insert(name.to_owned(), text);
    };
    for name in [
        "catalog",
        "catalogPaging",
        "tagPaging",
        "referrersApi",
        "artifactTypeFilter",
        "referrersPaging",
        "referrersTag",
        "rangeRequests",
    ] {
        put(name, &report[name]);
    }
    let w = &report["writeTest"];
    if !w.is_null() {
        for name in ["referrerListed", "ociSubject", "referrersTag", "indexAsSubject", "ifMatch", "deleteOrder"] {
            put(&format!("write.{name}"), &w[name]);
        }
        put("write.blobs", &w["cleanup"]["blobs"]);
        out.insert("write.complete".to_owned(), w["cleanup"]["complete"].to_string());
    }
    out
}

fn expect(report: &Value, expected: &[(&str, &str)]) {
    let got = facts(report);
    let expected: BTreeMap<String, String> = expected.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    assert_eq!(got, expected, "{report:#}");
}

/// The read-only facts of an empty repository of distribution 2.8.2 (no referrers API).
const DISTRIBUTION_READ_ONLY: &[(&str, &str)] = &[
    ("api", "200 none true"),
    ("catalog", "allowed 200"),
    ("catalogPaging", "not-enough-entries 200"),
    ("tagPaging", "unknown 404 NAME_UNKNOWN"),
    ("referrersApi", "unsupported 404"),
    ("artifactTypeFilter", "not-applicable"),
    ("referrersPaging", "not-applicable"),
    ("referrersTag", "not-checked"),
    ("rangeRequests", "not-checked"),
];

/// With `--write-test` on distribution 2.8.2: the read-only facts measured while the test image exists,
/// and the write test's.
fn distribution_write(changes: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let mut facts: BTreeMap<&str, String> = [
        ("api", "200 none true"),
        ("catalog", "allowed 200"),
        ("catalogPaging", "not-enough-entries 200"),
        // distribution 2.8.2 ignores n: both tags (image and index) in one answer.
        ("tagPaging", "n-ignored 200"),
        ("referrersApi", "unsupported 404"),
        ("artifactTypeFilter", "not-applicable"),
        ("referrersPaging", "not-applicable"),
        ("referrersTag", "absent 404 MANIFEST_UNKNOWN"),
        ("rangeRequests", "honoured 206"),
        ("write.referrerListed", "tag-schema 200"),
        ("write.ociSubject", "absent"),
        ("write.referrersTag", "identical 200"),
        ("write.indexAsSubject", "accepted 201"),
        ("write.ifMatch", "ignored 201"),
        ("write.deleteOrder", "while-listed 202"),
        ("write.blobs", "deleted"),
        ("write.complete", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect();
    for (k, v) in changes {
        let key = facts.keys().find(|key| **key == *k).copied().unwrap_or_else(|| panic!("no fact {k}"));
        facts.insert(key, (*v).to_owned());
    }
    facts.into_iter().collect()
}

fn expect_owned(report: &Value, expected: &[(&str, String)]) {
    let borrowed: Vec<(&str, &str)> = expected.iter().map(|(k, v)| (*k, v.as_str())).collect();
    expect(report, &borrowed);
}

/// The registry itself holds none of the probe's tags, and the image is gone.
async fn assert_nothing_left(registry: &TestRegistry, report: &Value) {
    let repo = registry.repository(REPO);
    let tags = repo.list_tags().await.unwrap_or_default();
    assert!(!tags.iter().any(|t| t.starts_with("att2ref-probe-") || t.starts_with("sha256-")), "left tags: {tags:?}");
    for o in report["writeTest"]["cleanup"]["objects"].as_array().unwrap() {
        if o["kind"] == "manifest" {
            let digest = o["reference"].as_str().unwrap();
            assert!(repo.get_manifest(digest).await.unwrap().is_none(), "manifest {digest} is still there");
        }
        assert_eq!(o["removed"], true, "{o}");
    }
}

#[tokio::test]
async fn probe_distribution() {
    let registry = TestRegistry::distribution();
    let run = probe(&registry.host, false);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    expect(&report, DISTRIBUTION_READ_ONLY);
    assert!(report["writeTest"].is_null());
    assert_eq!(report["sizeLimits"]["manifestBytes"], Value::Null);

    let run = probe(&registry.host, true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    expect_owned(&report, &distribution_write(&[]));
    assert_nothing_left(&registry, &report).await;
    // 6 manifests (image, index, 3 referrers, the tag-schema index), 3 tags (image, index, sha256-<hex>), 6 blobs.
    let objects = report["writeTest"]["cleanup"]["objects"].as_array().unwrap();
    let count = |kind: &str| objects.iter().filter(|o| o["kind"] == kind).count();
    assert_eq!((count("manifest"), count("tag"), count("blob")), (6, 3, 6), "{objects:#?}");

    // The schema rejects what the probe never says.
    let mut wrong = report.clone();
    wrong["writeTest"]["deleteOrder"]["value"] = "maybe".into();
    let schema: Value = serde_json::from_slice(
        &std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/probe-report.schema.json"))
            .unwrap(),
    )
    .unwrap();
    assert!(!jsonschema::draft202012::new(&schema).unwrap().is_valid(&wrong));

    // Without a repository: only the registry-wide facts, and --write-test is refused before any request.
    let run = att2ref(&["probe", "--plain-http", &registry.host, "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_valid("probe-report.schema.json", &report);
    expect(&report, &DISTRIBUTION_READ_ONLY[..3]);
    let run = att2ref(&["probe", "--plain-http", &registry.host, "--write-test"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stderr.contains("the write test needs a repository to write to"), "{}", run.stderr);
}

#[tokio::test]
async fn probe_ferro() {
    let registry = TestRegistry::ferro();
    let run = probe(&registry.host, false);
    assert_eq!(run.code, 0, "{}", run.stderr);
    expect(
        &run.json(),
        &[
            ("api", "200 none true"),
            ("catalog", "allowed 200"),
            ("catalogPaging", "not-enough-entries 200"),
            ("tagPaging", "not-enough-entries 200"),
            ("referrersApi", "supported 200"),
            ("artifactTypeFilter", "honoured 200"),
            ("referrersPaging", "not-seen 200"),
            ("referrersTag", "not-checked"),
            ("rangeRequests", "not-checked"),
        ],
    );
    let run = probe(&registry.host, true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    expect_owned(&report, &ferro_write(&[]));
    assert_nothing_left(&registry, &report).await;
}

/// With `--write-test` on ferro-oci-server 1.0.0 (the referrers API), before any change a proxy makes.
fn ferro_write(changes: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let mut facts = distribution_write(&[
        // ferro honours n with a Link.
        ("tagPaging", "link 200"),
        ("referrersApi", "supported 200"),
        // Both test referrers listed, the filtered listing holds only the probe's type.
        ("artifactTypeFilter", "honoured 200"),
        ("referrersPaging", "not-seen 200"),
        ("rangeRequests", "ignored 200"),
        ("write.referrerListed", "api 200"),
        ("write.ociSubject", "honest"),
        ("write.referrersTag", "not-written"),
    ]);
    for (k, v) in changes {
        facts.iter_mut().find(|(key, _)| key == k).unwrap_or_else(|| panic!("no fact {k}")).1 = (*v).to_owned();
    }
    facts
}

#[tokio::test]
async fn probe_distribution_without_deletes_names_every_leftover() {
    let registry = TestRegistry::distribution_without_deletes();
    let run = probe(&registry.host, false);
    assert_eq!(run.code, 0, "{}", run.stderr);
    expect(&run.json(), DISTRIBUTION_READ_ONLY);
    let run = probe(&registry.host, true);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let report = run.json();
    expect_owned(
        &report,
        &distribution_write(&[
            ("write.deleteOrder", "unsupported 405 UNSUPPORTED"),
            ("write.blobs", "left-for-garbage-collection"),
            ("write.complete", "false"),
        ]),
    );
    assert_leftovers(&registry, &report, &run).await;
}

/// Every object the report says is left is really there (asked directly), and is named on stderr.
async fn assert_leftovers(registry: &TestRegistry, report: &Value, run: &Run) {
    let repo = registry.repository(REPO);
    let w = &report["writeTest"];
    let objects = w["cleanup"]["objects"].as_array().unwrap();
    assert!(objects.iter().all(|o| o["removed"] == false), "{objects:#?}");
    let image: Digest = w["image"].as_str().unwrap().parse().unwrap();
    let tag = w["tag"].as_str().unwrap();
    let mut tags = repo.list_tags().await.unwrap();
    tags.sort();
    let mut expected = vec![tag.to_owned(), format!("{tag}-index"), image.referrers_tag()];
    expected.sort();
    assert_eq!(tags, expected);
    for o in objects {
        let reference = o["reference"].as_str().unwrap();
        match o["kind"].as_str().unwrap() {
            "manifest" => {
                assert!(repo.get_manifest(reference).await.unwrap().is_some(), "{reference}");
                assert_eq!((o["status"].as_u64(), o["code"].as_str()), (Some(405), Some("UNSUPPORTED")), "{o}");
            }
            "blob" => assert!(repo.blob_size(&reference.parse().unwrap()).await.unwrap().is_some(), "{reference}"),
            _ => assert!(tags.iter().any(|t| t == reference), "{reference}"),
        }
        if o["kind"] != "blob" {
            assert!(run.stderr.contains(reference), "{reference} not named on stderr: {}", run.stderr);
        }
    }
}

#[tokio::test]
async fn probe_a_registry_refusing_deletes_names_every_leftover() {
    let registry = TestRegistry::distribution();
    let proxy = FaultProxy::counting(&registry.host);
    proxy.refuse_deletes();
    let run = probe(&proxy.host, true);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let report = run.json();
    expect_owned(
        &report,
        &distribution_write(&[
            ("write.deleteOrder", "unsupported 405 UNSUPPORTED"),
            ("write.blobs", "left-for-garbage-collection"),
            ("write.complete", "false"),
        ]),
    );
    assert_leftovers(&registry, &report, &run).await;
    // Every DELETE was answered by the proxy, none reached the registry.
    let deletes = proxy.log().iter().filter(|l| l.contains(" DELETE ") || l.contains("DELETE /v2/")).count();
    assert_eq!(deletes, 1 + 6 + 6, "{:#?}", proxy.log());
}

#[tokio::test]
async fn probe_an_unbacked_oci_subject_header() {
    let registry = TestRegistry::distribution();
    let proxy = FaultProxy::counting(&registry.host);
    proxy.claim_oci_subject();
    let run = probe(&proxy.host, true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    expect_owned(&report, &distribution_write(&[("write.ociSubject", "unbacked")]));
    assert_nothing_left(&registry, &report).await;
    assert!(proxy.log().iter().any(|l| l.contains("/referrers/") && l.ends_with("→ 404")), "{:#?}", proxy.log());
}

#[tokio::test]
async fn probe_a_referrers_tag_read_as_a_digest() {
    let registry = TestRegistry::distribution();
    let proxy = FaultProxy::counting(&registry.host);
    proxy.read_digest_tags_as_digests();
    let run = probe(&proxy.host, true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    expect_owned(
        &report,
        &distribution_write(&[
            ("referrersTag", "resolves-to-subject 200"),
            ("write.referrerListed", "not-listed"),
            ("write.referrersTag", "resolves-to-subject 200"),
        ]),
    );
    assert_nothing_left(&registry, &report).await;
}

#[tokio::test]
async fn probe_a_registry_ignoring_range_and_refusing_the_catalog() {
    let registry = TestRegistry::distribution();
    let proxy = FaultProxy::counting(&registry.host);
    proxy.ignore_range();
    // GHCR, Docker Hub and ECR refuse the catalog to ordinary credentials.
    proxy.refuse("/v2/_catalog", 403);
    let run = probe(&proxy.host, true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    expect_owned(
        &report,
        &distribution_write(&[
            ("rangeRequests", "ignored 200"),
            ("catalog", "denied 403 DENIED"),
            ("catalogPaging", "not-applicable 403 DENIED"),
        ]),
    );
    assert_nothing_left(&registry, &report).await;
}

#[tokio::test]
async fn probe_paged_referrers_and_an_ignored_filter() {
    let registry = TestRegistry::ferro();
    let proxy = FaultProxy::counting(&registry.host);
    proxy.page_referrers(1);
    let run = probe(&proxy.host, true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    expect_owned(&report, &ferro_write(&[("referrersPaging", "link 200")]));
    assert_nothing_left(&registry, &report).await;
    assert!(proxy.log().iter().any(|l| l.contains("/referrers/") && l.contains("page=1")), "{:#?}", proxy.log());

    let registry = TestRegistry::ferro();
    let proxy = FaultProxy::counting(&registry.host);
    proxy.ignore_artifact_type_filter();
    let run = probe(&proxy.host, false);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["artifactTypeFilter"]["value"], "not-signalled");
    let run = probe(&proxy.host, true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    expect_owned(&report, &ferro_write(&[("artifactTypeFilter", "ignored 200")]));
    assert_nothing_left(&registry, &report).await;
}

#[tokio::test]
async fn probe_basic_auth_anonymous_refused_and_credentials_granted() {
    use crate::cli::att2ref_with;
    use crate::registries::{TEST_PASSWORD, TEST_USER};
    let registry = TestRegistry::distribution_with_basic_auth();
    let target = format!("{}/{REPO}", registry.host);
    // Anonymous: the report says what the registry asked for, and the run fails with a clear error.
    let run = att2ref(&["probe", "--plain-http", &target, "-o", "json"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let report = run.json();
    assert_valid("probe-report.schema.json", &report);
    expect(&report, &[("api", "401 basic false"), ("catalog", "other"), ("catalogPaging", "not-applicable")]);
    assert_eq!(report["api"]["credentials"], "anonymous");
    assert!(run.stderr.contains("refused the credentials in use: GET /v2/ answered 401"), "{}", run.stderr);

    let password = format!("{TEST_PASSWORD}\n");
    let args = ["probe", "--plain-http", &target, "-u", TEST_USER, "--password-stdin", "-o", "json", "--write-test"];
    let run = att2ref_with(&args, Some(&password), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_valid("probe-report.schema.json", &report);
    let api = &report["api"];
    assert_eq!((api["anonymousStatus"].as_u64(), api["status"].as_u64()), (Some(401), Some(200)), "{api}");
    assert_eq!((api["authScheme"].as_str(), api["credentials"].as_str()), (Some("basic"), Some("configured")));
    expect_owned(&report, &distribution_write(&[("api", "200 basic true")]));
    assert!(!run.stderr.contains(TEST_PASSWORD) && !run.stdout.contains(TEST_PASSWORD));
}

/// ECR (aws/containers-roadmap#2783, as emulated by the proxy): a referrer whose subject is an image index is
/// refused; the probe says so, and the refused referrer leaves nothing behind.
#[tokio::test]
async fn probe_a_registry_refusing_index_subjects() {
    let registry = TestRegistry::distribution();
    let proxy = FaultProxy::counting(&registry.host);
    proxy.refuse_index_subjects();
    let run = probe(&proxy.host, true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    expect_owned(&report, &distribution_write(&[("write.indexAsSubject", "refused 405 UNSUPPORTED")]));
    assert_nothing_left(&registry, &report).await;
    let refused = proxy.log().iter().filter(|l| l.contains(" PUT ") && l.contains("refused with 405")).count();
    assert_eq!(refused, 1, "{:#?}", proxy.log());
}

/// GAR (as emulated by the proxy): a manifest still listed by a tag-schema index cannot be deleted; the
/// probe finds the order that works, and cleans up in that order.
#[tokio::test]
async fn probe_a_registry_refusing_to_delete_listed_manifests() {
    let registry = TestRegistry::distribution();
    let proxy = FaultProxy::counting(&registry.host);
    proxy.refuse_delete_while_listed();
    let run = probe(&proxy.host, true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    expect_owned(
        &report,
        &distribution_write(&[("write.deleteOrder", "index-entry-first 400 GOOGLE_MANIFEST_DANGLING_PARENT_IMAGE")]),
    );
    assert_nothing_left(&registry, &report).await;
}

/// Quay (quay#6510, as emulated by the proxy): the referrers listing is cached, so a new referrer shows
/// only once the cache expires, or not within the probe's wait at all.
#[tokio::test]
async fn probe_a_cached_referrers_listing() {
    let registry = TestRegistry::ferro();
    let proxy = FaultProxy::counting(&registry.host);
    proxy.cache_referrers(std::time::Duration::from_millis(700));
    let run = probe(&proxy.host, true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    // The cache is keyed without the query (as Quay's is), so the filtered listing is the cached whole one.
    let cached = [("artifactTypeFilter", "not-signalled 200")];
    expect_owned(&report, &ferro_write(&[cached[0], ("write.referrerListed", "api-after-delay 200")]));
    assert_nothing_left(&registry, &report).await;
    assert!(proxy.log().iter().any(|l| l.contains("from the cache")), "{:#?}", proxy.log());

    let registry = TestRegistry::ferro();
    let proxy = FaultProxy::counting(&registry.host);
    proxy.cache_referrers(std::time::Duration::from_secs(600));
    let run = probe(&proxy.host, true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    // The header said the subject was processed, but the listing never showed it: not to be relied on.
    let unlisted = [cached[0], ("write.referrerListed", "not-listed"), ("write.ociSubject", "unbacked")];
    expect_owned(&report, &ferro_write(&unlisted));
    assert_nothing_left(&registry, &report).await;
}
