//! `att2ref rollback` on both test registries: migrate, status, roll back, status again, and the
//! registry's tags, manifests and referrers listings equal to what they were before the migration, with
//! another tool's referrer (and, without the referrers API, its index) kept.

use std::collections::BTreeMap;

use att2ref::demo;
use att2ref::model::digest::Digest;
use att2ref::store::Repository;
use att2ref::store::registry::RegistryRepository;
use serde_json::Value;

use crate::cli::att2ref;
use crate::get::test_key;
use crate::registries::TestRegistry;
use crate::schema::assert_valid;

/// Every tag with the digest it points at.
async fn tags(repo: &RegistryRepository) -> BTreeMap<String, Digest> {
    let mut out = BTreeMap::new();
    for tag in repo.list_tags().await.unwrap_or_default() {
        if let Some(d) = repo.head_manifest(&tag).await.unwrap() {
            out.insert(tag, d.digest);
        }
    }
    out
}

async fn listed(repo: &RegistryRepository, image: &Digest) -> Vec<Digest> {
    let mut d: Vec<Digest> =
        repo.referrers(image, None).await.unwrap().descriptors.into_iter().map(|d| d.digest).collect();
    d.sort();
    d
}

fn run(command: &str, target: &str, extra: &[&str]) -> (i32, Value, String) {
    let key = test_key();
    let mut args = vec![command, "--plain-http", target, "--key", &key, "--insecure-ignore-tlog", "-o", "json", "-q"];
    args.extend_from_slice(extra);
    let run = att2ref(&args);
    let report = run.json();
    (run.code, report, run.stderr)
}

fn outcomes(report: &Value, image: &Digest) -> (String, usize, usize, usize) {
    let i = report["images"].as_array().unwrap().iter().find(|i| i["image"] == image.to_string()).unwrap();
    (
        i["outcome"].as_str().unwrap().to_owned(),
        i["planned"].as_array().unwrap().len(),
        i["removed"].as_array().unwrap().len(),
        i["kept"].as_array().unwrap().len(),
    )
}

fn state(report: &Value, image: &Digest) -> String {
    let i = report["images"].as_array().unwrap().iter().find(|i| i["image"] == image.to_string()).unwrap();
    i["state"].as_str().unwrap().to_owned()
}

async fn round_trip(registry: TestRegistry) {
    let kind = registry.kind_name();
    let repo = registry.repository("rollback/app");
    let name = format!("{}/rollback/app", registry.host);
    let first = demo::demo().unwrap();
    first.repo.push_to(&repo).await.unwrap();
    let second = demo::article_like_numbered(&name, 2, 3_000).unwrap();
    second.repo.push_to(&repo).await.unwrap();
    // Another tool's referrer of the first image, there before the migration.
    let subject = repo.head_manifest(&first.image.to_string()).await.unwrap().unwrap();
    let foreign = crate::copy::push_referrer(&repo, &subject, "application/vnd.example.sbom+json", "{}").await;
    let before = tags(&repo).await;
    let (before_first, before_second) = (listed(&repo, &first.image).await, listed(&repo, &second.image).await);
    assert_eq!(before_first, std::slice::from_ref(&foreign), "{kind}");

    let (code, _, stderr) = run("migrate", &name, &[]);
    assert_eq!(code, 0, "{kind}: {stderr}");
    let status = att2ref(&["status", "--plain-http", &name, "-o", "json", "-q"]).json();
    assert_eq!((state(&status, &first.image), state(&status, &second.image)), ("migrated".into(), "migrated".into()));
    // One referrer of the second image missing: its conversion is not completely listed (as while a migrate
    // is writing it), so it is left alone.
    let mut seconds = listed(&repo, &second.image).await;
    let gone = seconds.pop().unwrap();
    repo.delete_manifest(&gone).await.unwrap();
    if !registry.has_referrers_api() {
        att2ref::store::tag_schema::remove_entry(&repo, &second.image.referrers_tag(), &gone, 8).await.unwrap();
    }
    let after_migrate = tags(&repo).await;

    let (code, report, stderr) = run("rollback", &name, &[]);
    assert_eq!(code, 0, "{kind}: {stderr}");
    assert_valid("rollback-report.schema.json", &report);
    assert_eq!(outcomes(&report, &first.image), ("planned".into(), 2, 0, 1), "{kind}: {report:#}");
    assert_eq!(outcomes(&report, &second.image), ("kept".into(), 0, 0, 1), "{kind}: {report:#}");
    assert_eq!(tags(&repo).await, after_migrate, "{kind}: a dry run changes nothing");

    let (code, report, stderr) = run("rollback", &name, &["--apply"]);
    assert_eq!(code, 0, "{kind}: {stderr}");
    assert_eq!(outcomes(&report, &first.image), ("rolled-back".into(), 0, 2, 1), "{kind}: {report:#}");
    assert!(stderr.contains("kept referrer"), "{kind}: {stderr}");
    assert_eq!(
        listed(&repo, &first.image).await,
        std::slice::from_ref(&foreign),
        "{kind}: the other tool's referrer stays"
    );

    // The second image, completed by a rerun of migrate, then rolled back too.
    let (code, _, stderr) = run("migrate", &name, &[]);
    assert_eq!(code, 0, "{kind}: {stderr}");
    let (code, report, stderr) = run("rollback", &name, &["--apply"]);
    assert_eq!(code, 0, "{kind}: {stderr}");
    assert_eq!(outcomes(&report, &second.image), ("rolled-back".into(), 0, 2, 0), "{kind}: {report:#}");
    let index_removed = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == second.image.to_string())
        .unwrap()["index_removed"]
        .clone();
    assert_eq!(index_removed, Value::Bool(!registry.has_referrers_api()), "{kind}: att2ref's own index goes");

    let status = att2ref(&["status", "--plain-http", &name, "-o", "json", "-q"]).json();
    assert_eq!(
        (state(&status, &first.image), state(&status, &second.image)),
        ("legacy-only".into(), "legacy-only".into())
    );
    assert_eq!(tags(&repo).await, before, "{kind}: the tags and what they point at, as before the migration");
    assert_eq!(listed(&repo, &first.image).await, before_first, "{kind}");
    assert_eq!(listed(&repo, &second.image).await, before_second, "{kind}");
    let (code, report, _) = run("rollback", &name, &["--apply"]);
    assert_eq!(code, 0);
    assert_eq!(report["referrers_removed"], 0, "{kind}: nothing left to roll back");
}

#[tokio::test]
async fn migrate_then_roll_back_on_distribution() {
    round_trip(TestRegistry::distribution()).await;
}

#[tokio::test]
async fn migrate_then_roll_back_on_ferro() {
    round_trip(TestRegistry::ferro()).await;
}

/// A referrer whose legacy layer is no longer in the `.att` (the `.att` was replaced) is never removed.
#[tokio::test]
async fn a_referrer_whose_legacy_layer_is_gone_is_kept() {
    let registry = TestRegistry::distribution();
    let repo = registry.repository("rollback/changed");
    let name = format!("{}/rollback/changed", registry.host);
    let scenario = demo::demo().unwrap();
    scenario.repo.push_to(&repo).await.unwrap();
    let (code, _, stderr) = run("migrate", &name, &[]);
    assert_eq!(code, 0, "{stderr}");
    // The .att now holds only its second layer: the first layer's attestation exists only as a referrer.
    let att = scenario.image.cosign_tag("att");
    let raw = repo.get_manifest(&att).await.unwrap().unwrap();
    let mut manifest: Value = serde_json::from_slice(&raw.bytes).unwrap();
    manifest["layers"].as_array_mut().unwrap().remove(0);
    let bytes = bytes::Bytes::from(serde_json::to_vec(&manifest).unwrap());
    repo.put_manifest(bytes, &raw.media_type, Some(&att)).await.unwrap();
    let before = listed(&repo, &scenario.image).await;
    let (code, report, stderr) = run("rollback", &name, &["--apply"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(outcomes(&report, &scenario.image), ("kept".into(), 0, 0, 2), "{report:#}");
    assert_eq!(listed(&repo, &scenario.image).await, before, "nothing removed");
}

/// A converted referrer that another artifact refers to (here a signature-like referrer of the bundle)
/// is kept, and with it the image's other att2ref referrers: a partial rollback would leave bundles that
/// cosign v3 reads instead of the whole `.att`.
#[tokio::test]
async fn a_referrer_something_refers_to_keeps_the_image_as_it_is() {
    let registry = TestRegistry::ferro();
    let repo = registry.repository("rollback/attached");
    let name = format!("{}/rollback/attached", registry.host);
    let scenario = demo::demo().unwrap();
    scenario.repo.push_to(&repo).await.unwrap();
    let (code, _, stderr) = run("migrate", &name, &[]);
    assert_eq!(code, 0, "{stderr}");
    let converted = listed(&repo, &scenario.image).await;
    assert_eq!(converted.len(), 2);
    let target = repo.head_manifest(&converted[0].to_string()).await.unwrap().unwrap();
    crate::copy::push_referrer(&repo, &target, "application/vnd.example.signature", "{}").await;
    let (code, report, stderr) = run("rollback", &name, &["--apply"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(outcomes(&report, &scenario.image), ("kept".into(), 0, 0, 2), "{report:#}");
    let reasons = report["images"][0]["kept"].to_string();
    assert!(reasons.contains("refers to it") && reasons.contains("partial rollback"), "{reasons}");
    assert_eq!(listed(&repo, &scenario.image).await, converted, "nothing removed");
}
