//! Orphans on both real registries: attachments whose image is absent from their repository are kept
//! by default, in every repository; with `--delete-orphans` they go only when the image is definitely
//! absent from every repository searched (the catalog, or `--search-repository`).
//!
//! What the registry holds before and after is read from the registry itself (tags, and every
//! referrer manifest by digest), never from att2ref's report.

use std::collections::BTreeMap;

use att2ref::demo::{self, Scenario};
use att2ref::model::digest::Digest;
use att2ref::store::Repository;
use att2ref::store::registry::RegistryRepository;
use serde_json::{Value, json};

use crate::fault_proxy::{Fault, FaultProxy};
use crate::prune::{count, items, migrated, prune};
use crate::registries::TestRegistry;

/// What a repository holds, as the registry answers: every tag with its digest, and which of
/// `manifests` still exist.
async fn holdings(repo: &RegistryRepository, manifests: &[Digest]) -> (BTreeMap<String, Digest>, Vec<Digest>) {
    let mut tags = BTreeMap::new();
    for tag in repo.list_tags().await.unwrap() {
        if let Some(d) = repo.head_manifest(&tag).await.unwrap() {
            tags.insert(tag, d.digest);
        }
    }
    let mut present = Vec::new();
    for m in manifests {
        if repo.head_manifest(&m.to_string()).await.unwrap().is_some() {
            present.push(m.clone());
        }
    }
    (tags, present)
}

/// The digests of the image's referrers as the registry lists them.
async fn referrer_digests(repo: &RegistryRepository, image: &Digest) -> Vec<Digest> {
    repo.referrers(image, None).await.unwrap().descriptors.into_iter().map(|d| d.digest).collect()
}

/// Orphan items of `image`: `(kind, status)`, sorted.
fn orphan_items(report: &Value, image: &Digest) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["subject"] == image.to_string())
        .map(|i| (i["kind"].as_str().unwrap().to_owned(), i["status"].as_str().unwrap().to_owned()))
        .collect();
    out.sort();
    out
}

/// The orphan items one migrated demo image leaves when its manifest goes: `.sig`, `.att`, two
/// referrers, and (tag schema only) the referrers index — all with `status`.
fn expected_orphans(registry: &TestRegistry, scenario: &Scenario, status: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for suffix in ["att", "sig"] {
        if scenario.repo.manifest_by_tag(&scenario.image.cosign_tag(suffix)).is_some() {
            out.push(("orphan-legacy".to_owned(), status.to_owned()));
        }
    }
    if !registry.has_referrers_api() {
        out.push(("orphan-index".to_owned(), status.to_owned()));
    }
    out.push(("orphan-referrer".to_owned(), status.to_owned()));
    out.push(("orphan-referrer".to_owned(), status.to_owned()));
    out.sort();
    out
}

/// Every orphan item's `subject_search`, which must be the same for all of them.
fn the_search(report: &Value, image: &Digest) -> Value {
    let searches: Vec<&Value> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["subject"] == image.to_string() && i["kind"].as_str().unwrap().starts_with("orphan-"))
        .map(|i| &i["subject_search"])
        .collect();
    assert!(!searches.is_empty(), "no orphan item for {image}: {report:#}");
    assert!(searches.iter().all(|s| s == &searches[0]), "{searches:#?}");
    searches[0].clone()
}

/// A repository (`team/app`) holding its own image beside the attachments — legacy `.sig`/`.att`,
/// migrated referrers and (tag schema) their index — of an image stored in `team/images`.
async fn attachments_beside_images(registry: TestRegistry) {
    let (scenario, app, _) = migrated(&registry, "team/app").await;
    let own = demo::article_like().unwrap();
    own.repo.push_to(&app).await.unwrap();
    let images = registry.repository("team/images");
    scenario.repo.push_to(&images).await.unwrap();
    app.delete_manifest(&scenario.image).await.unwrap();
    assert!(app.head_manifest(&scenario.image.to_string()).await.unwrap().is_none(), "absent from team/app");
    assert!(images.head_manifest(&scenario.image.to_string()).await.unwrap().is_some(), "present in team/images");

    let referrers = referrer_digests(&app, &scenario.image).await;
    assert_eq!(referrers.len(), 2, "the two migrated referrers are listed in team/app");
    let before = holdings(&app, &referrers).await;
    assert_eq!(before.1, referrers);
    let target = format!("{}/team/app", registry.host);
    let images_name = format!("{}/team/images", registry.host);

    // 1. The default, as the nightly CronJob runs it: reported, kept, exit 0, nothing deleted.
    let (run, report) = prune(&target, &["--apply"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(orphan_items(&report, &scenario.image), expected_orphans(&registry, &scenario, "kept"), "{report:#}");
    let search = the_search(&report, &scenario.image);
    assert_eq!(
        search,
        json!({"scope": "own-repository", "repositories": [target], "repositories_searched": 1, "result": "absent"})
    );
    assert_eq!(count(&report, "legacy-attestation", "kept"), 1, "the own image's unmigrated .att: {report:#}");
    assert_eq!(holdings(&app, &referrers).await, before, "nothing deleted");

    // 2. Opted in, searching the catalog: the image lives in team/images, so nothing is an orphan.
    let (run, report) = prune(&target, &["--apply", "--delete-orphans"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(orphan_items(&report, &scenario.image), expected_orphans(&registry, &scenario, "kept"), "{report:#}");
    let search = the_search(&report, &scenario.image);
    assert_eq!(search["scope"], "catalog");
    assert_eq!(search["registry"], registry.host);
    assert_eq!(search["result"], "present");
    assert_eq!(search["found_in"], images_name);
    assert!(report.to_string().contains("attachments of an image stored there"), "{report:#}");
    assert_eq!(holdings(&app, &referrers).await, before, "nothing deleted");

    // 3. Opted in, but the registry refuses the catalog (as GHCR, Docker Hub and ECR do for ordinary
    //    credentials; a proxy in front of the real registry plays that part): could-not-check, exit 2.
    let proxy = FaultProxy::start(&registry.host, None);
    proxy.refuse("/v2/_catalog", 403);
    let proxied = format!("{}/team/app", proxy.host);
    let (run, report) = prune(&proxied, &["--apply", "--delete-orphans"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        orphan_items(&report, &scenario.image),
        expected_orphans(&registry, &scenario, "could-not-check"),
        "{report:#}"
    );
    let search = the_search(&report, &scenario.image);
    assert_eq!(search["result"], "could-not-check");
    assert!(search["errors"][0].as_str().unwrap().contains("catalog"), "{search:#}");
    assert!(run.stderr.contains("could-not-check"), "{}", run.stderr);
    assert!(proxy.log().iter().any(|l| l.contains("_catalog") && l.contains("refused with 403")), "{:#?}", proxy.log());
    assert_eq!(holdings(&app, &referrers).await, before, "nothing deleted");

    // 4. The image is deleted from team/images too: now, and only with the opt-in, the orphans go.
    images.delete_manifest(&scenario.image).await.unwrap();

    // ... but not while one repository cannot answer (a 403 on the subject there, by the proxy).
    let refused_path = format!("/v2/team/images/manifests/{}", scenario.image);
    let proxy = FaultProxy::start(&registry.host, None);
    proxy.refuse(&refused_path, 403);
    let proxied = format!("{}/team/app", proxy.host);
    let (run, report) = prune(&proxied, &["--apply", "--delete-orphans"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        orphan_items(&report, &scenario.image),
        expected_orphans(&registry, &scenario, "could-not-check"),
        "{report:#}"
    );
    let search = the_search(&report, &scenario.image);
    assert_eq!(search["result"], "could-not-check");
    assert_eq!(search["repositories_searched"], 2);
    assert!(search["errors"][0].as_str().unwrap().contains("team/images"), "{search:#}");
    assert_eq!(holdings(&app, &referrers).await, before, "nothing deleted");

    let (run, report) = prune(&target, &["--apply"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(orphan_items(&report, &scenario.image), expected_orphans(&registry, &scenario, "kept"), "{report:#}");
    assert_eq!(holdings(&app, &referrers).await, before, "still nothing deleted without the opt-in");

    let (run, report) = prune(&target, &["--delete-orphans"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(orphan_items(&report, &scenario.image), expected_orphans(&registry, &scenario, "planned"), "{report:#}");
    let search = the_search(&report, &scenario.image);
    assert_eq!(
        search,
        json!({"scope": "catalog", "registry": registry.host, "repositories_searched": 2, "result": "absent"}),
        "the catalog holds exactly team/app and team/images"
    );
    assert_eq!(holdings(&app, &referrers).await, before, "a dry run deletes nothing");

    let (run, report) = prune(&target, &["--apply", "--delete-orphans"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(orphan_items(&report, &scenario.image), expected_orphans(&registry, &scenario, "removed"), "{report:#}");
    let (tags, present) = holdings(&app, &referrers).await;
    assert!(present.is_empty(), "the orphaned referrers are gone: {present:?}");
    let left: Vec<&String> = tags.keys().filter(|t| t.contains(scenario.image.hex())).collect();
    assert!(left.is_empty(), "every tag of the deleted image is gone: {left:?}");
    for suffix in ["sig", "att"] {
        let tag = own.image.cosign_tag(suffix);
        assert_eq!(tags.get(&tag), before.0.get(&tag), "the own image's {tag} is untouched");
    }
    assert!(app.head_manifest(&own.image.to_string()).await.unwrap().is_some(), "the own image stays");
}

#[tokio::test]
async fn attachments_beside_images_on_distribution() {
    attachments_beside_images(TestRegistry::distribution()).await;
}

#[tokio::test]
async fn attachments_beside_images_on_ferro() {
    attachments_beside_images(TestRegistry::ferro()).await;
}

/// An attachments-only repository (cosign's `COSIGN_REPOSITORY`): nothing in it has its image, and
/// `--search-repository` names where the images live instead of the catalog.
async fn attachments_repository_with_named_search(registry: TestRegistry) {
    let scenario = demo::demo().unwrap();
    let images = registry.repository("prod/images");
    scenario.repo.push_to(&images).await.unwrap();
    let signatures = registry.repository("prod/signatures");
    scenario.repo.push_to(&signatures).await.unwrap();
    signatures.delete_manifest(&scenario.image).await.unwrap();
    let before = holdings(&signatures, &[]).await;
    let target = format!("{}/prod/signatures", registry.host);
    let images_name = format!("{}/prod/images", registry.host);
    let n_legacy = ["sig", "att"]
        .iter()
        .filter(|s| scenario.repo.manifest_by_tag(&scenario.image.cosign_tag(s)).is_some())
        .count();

    let (run, report) = prune(&target, &["--apply"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(count(&report, "orphan-legacy", "kept"), n_legacy, "{report:#}");
    assert_eq!(items(&report).len(), n_legacy, "{report:#}");
    assert_eq!(holdings(&signatures, &[]).await, before);

    let (run, report) = prune(&target, &["--apply", "--delete-orphans", "--search-repository", &images_name]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(count(&report, "orphan-legacy", "kept"), n_legacy, "{report:#}");
    let search = the_search(&report, &scenario.image);
    assert_eq!(
        search,
        json!({
            "scope": "named",
            "repositories": [target, images_name],
            "repositories_searched": 2,
            "result": "present",
            "found_in": images_name,
        })
    );
    assert_eq!(holdings(&signatures, &[]).await, before, "nothing deleted");

    // A mistyped repository would answer "not found" for every subject: a usage error, nothing deleted.
    let typo = format!("{}/prod/imgaes", registry.host);
    let run = crate::cli::att2ref(&[
        "prune",
        "--plain-http",
        &target,
        "--key",
        &crate::prune::rsa_key(),
        "--apply",
        "--delete-orphans",
        "--search-repository",
        &typo,
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("prod/imgaes") && run.stderr.contains("cannot be listed"), "{}", run.stderr);
    assert_eq!(holdings(&signatures, &[]).await, before, "nothing deleted");

    // An image reference is not a repository to search: a usage error, nothing read or deleted.
    let image_ref = format!("{images_name}@{}", scenario.image);
    let run = crate::cli::att2ref(&[
        "prune",
        "--plain-http",
        &target,
        "--key",
        &crate::prune::rsa_key(),
        "--delete-orphans",
        "--search-repository",
        &image_ref,
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--search-repository takes repositories"), "{}", run.stderr);

    // Without --delete-orphans, --search-repository is refused by the parser.
    let run = crate::cli::att2ref(&["prune", "--plain-http", &target, "--search-repository", &images_name]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--delete-orphans"), "{}", run.stderr);
}

#[tokio::test]
async fn attachments_repository_with_named_search_on_distribution() {
    attachments_repository_with_named_search(TestRegistry::distribution()).await;
}

#[tokio::test]
async fn attachments_repository_with_named_search_on_ferro() {
    attachments_repository_with_named_search(TestRegistry::ferro()).await;
}

/// An OCI layout is a store of its own, with no catalog: orphans there are kept by default, and with
/// `--delete-orphans` the layout itself is the whole search.
#[tokio::test]
async fn orphans_in_an_oci_layout() {
    let scenario = demo::demo().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let layout = demo::write_layout(&scenario, dir.path()).await.unwrap();
    // In a layout a manifest exists while its blob does: untag it and remove the blob, as a GC would.
    layout.delete_manifest(&scenario.image).await.unwrap();
    std::fs::remove_file(dir.path().join("blobs/sha256").join(scenario.image.hex())).unwrap();
    let tags_before = layout.list_tags().await.unwrap();
    let target = format!("ocidir://{}", dir.path().display());
    let legacy = tags_before.iter().filter(|t| t.contains(scenario.image.hex())).count();
    assert_eq!(legacy, 2, "the demo image has a .sig and a .att: {tags_before:?}");

    let (run, report) = prune(&target, &["--apply"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(items(&report), vec![("orphan-legacy".to_owned(), "kept".to_owned()); legacy], "{report:#}");
    assert_eq!(layout.list_tags().await.unwrap(), tags_before, "nothing deleted");

    let (run, report) = prune(&target, &["--apply", "--delete-orphans"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(items(&report), vec![("orphan-legacy".to_owned(), "removed".to_owned()); legacy], "{report:#}");
    assert_eq!(
        the_search(&report, &scenario.image),
        json!({"scope": "own-repository", "repositories": [layout.name()], "repositories_searched": 1, "result": "absent"})
    );
    let left: Vec<String> =
        layout.list_tags().await.unwrap().into_iter().filter(|t| t.contains(scenario.image.hex())).collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The library's two steps with a change in between: an image pushed to another repository after the
/// plan keeps its orphans, because `apply` searches again (over a catalog listed again) right before
/// each deletion.
#[tokio::test]
async fn an_image_that_appears_after_planning_keeps_its_orphans() {
    use std::sync::Arc;

    use att2ref::prune::{self, OrphanPolicy, PruneOptions, Scope, SearchSets};
    use att2ref::store::AnyRepository;

    let registry = TestRegistry::distribution();
    let scenario = demo::demo().unwrap();
    let sigs = registry.repository("late/signatures");
    scenario.repo.push_to(&sigs).await.unwrap();
    sigs.delete_manifest(&scenario.image).await.unwrap();
    let before = holdings(&sigs, &[]).await;

    let repo = AnyRepository::Registry(sigs.clone());
    let sets = SearchSets::catalog();
    let options = PruneOptions {
        apply: true,
        orphans: OrphanPolicy::Delete(sets.for_repository(&repo).await),
        ..PruneOptions::default()
    };
    let key = std::fs::read(crate::prune::rsa_key()).unwrap();
    let policy = att2ref::verification::Policy::new()
        .insecure_ignore_tlog(true)
        .with_key(att2ref::verification::PublicKey::from_pem(&key).unwrap());
    let verifier = Arc::new(att2ref::verification::Verifier::new(policy).unwrap());
    let steps = prune::find::find(&repo, &Scope::Repository, &verifier, &options).await.unwrap();
    let planned = steps.iter().filter(|s| s.action.is_some()).count();
    assert_eq!(planned, 2, "the .sig and the .att are planned: absent from the only repository");

    // Meanwhile the image is pushed to a repository the first catalog listing did not have.
    scenario.repo.push_to(&registry.repository("late/images")).await.unwrap();

    let items = prune::apply::apply(&repo, steps, &verifier, &options, &()).await;
    let statuses: Vec<&str> = items.iter().map(|i| i.status.as_str()).collect();
    assert_eq!(statuses, ["skipped", "skipped"], "{items:#?}");
    for item in &items {
        let search = item.subject_search.as_ref().unwrap();
        assert_eq!(search.result, prune::SearchResult::Present);
        assert_eq!(search.found_in.as_deref(), Some(format!("{}/late/images", registry.host).as_str()));
    }
    assert_eq!(holdings(&sigs, &[]).await, before, "nothing deleted");
}

/// With `--delete-orphans`, an orphaned referrer whose DELETE fails keeps its subject's referrers index:
/// deleted anyway, it would leave that referrer in the registry listed nowhere. (The failure is a 503
/// the proxy answers once, with retries off.)
#[tokio::test]
async fn a_referrer_that_stays_keeps_its_index() {
    let registry = TestRegistry::distribution();
    let (scenario, app, _) = migrated(&registry, "orph/app").await;
    app.delete_manifest(&scenario.image).await.unwrap();
    let referrers = referrer_digests(&app, &scenario.image).await;
    assert_eq!(referrers.len(), 2);
    let tag = scenario.image.referrers_tag();

    let proxy = FaultProxy::start(&registry.host, None);
    proxy.fault_next("DELETE", &format!("/manifests/{}", referrers[0]), Fault::ServerError(503));
    let target = format!("{}/orph/app", proxy.host);
    let (run, report) = prune(&target, &["--apply", "--delete-orphans", "--retries", "1"]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    let status_of = |kind: &str, digest: Option<&Digest>| -> Vec<String> {
        report["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["kind"] == kind && digest.is_none_or(|d| i["digest"] == d.to_string()))
            .map(|i| i["status"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(status_of("orphan-referrer", Some(&referrers[0])), ["failed"], "{report:#}");
    assert_eq!(status_of("orphan-referrer", Some(&referrers[1])), ["removed"], "{report:#}");
    assert_eq!(status_of("orphan-index", None), ["could-not-check"], "{report:#}");
    // The registry itself: the referrer that stayed is still listed by the index that stayed.
    let listed = referrer_digests(&app, &scenario.image).await;
    assert!(listed.contains(&referrers[0]), "{listed:?}");
    assert!(app.get_manifest(&tag).await.unwrap().is_some(), "the index is still there");
}
