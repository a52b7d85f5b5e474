//! `att2ref prune` end to end on both real registries (distribution 2.8.2 with deletes enabled: tag
//! schema; ferro: the referrers API), and a refused delete from a scripted fake.

use std::path::Path;

use att2ref::convert::annotations::LEGACY_LAYER_DIGEST;
use att2ref::demo::{self, Scenario};
use att2ref::model::digest::Digest;
use att2ref::model::dsse::Envelope;
use att2ref::model::oci::{Manifest, to_canonical_bytes};
use att2ref::store::Repository;
use att2ref::store::registry::RegistryRepository;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::cli::{Run, att2ref};
use crate::fault_proxy::{Fault, FaultProxy};
use crate::registries::TestRegistry;
use crate::schema::assert_valid;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub(crate) fn rsa_key() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/rsa-4096.pub.pem").display().to_string()
}

pub(crate) fn run_json(command: &str, target: &str, extra: &[&str]) -> (Run, Value) {
    let key = rsa_key();
    let mut args = vec![command, "--plain-http", target, "--key", &key, "--insecure-ignore-tlog", "-o", "json"];
    args.extend_from_slice(extra);
    let run = att2ref(&args);
    let report = run.json();
    if command == "prune" {
        assert_valid("prune-report.schema.json", &report);
    }
    (run, report)
}

pub(crate) fn prune(target: &str, extra: &[&str]) -> (Run, Value) {
    run_json("prune", target, extra)
}

/// `(kind, status)` of every item.
pub(crate) fn items(report: &Value) -> Vec<(String, String)> {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["kind"].as_str().unwrap().to_owned(), i["status"].as_str().unwrap().to_owned()))
        .collect()
}

/// `(repository, outcome)` of every image of a migrate report, in report order.
pub(crate) fn repository_outcomes(report: &serde_json::Value) -> Vec<(String, String)> {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["repository"].as_str().unwrap().to_owned(), i["outcome"].as_str().unwrap().to_owned()))
        .collect()
}

/// `(image, outcome)` of every image of a migrate report, in report order.
pub(crate) fn image_outcomes(report: &serde_json::Value) -> Vec<(String, String)> {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["image"].as_str().unwrap().to_owned(), i["outcome"].as_str().unwrap().to_owned()))
        .collect()
}

pub(crate) fn count(report: &Value, kind: &str, status: &str) -> usize {
    items(report).iter().filter(|(k, s)| k == kind && s == status).count()
}

pub(crate) async fn migrated(registry: &TestRegistry, name: &str) -> (Scenario, RegistryRepository, String) {
    let scenario = demo::demo().unwrap();
    let repo = registry.repository(name);
    scenario.repo.push_to(&repo).await.unwrap();
    let image = format!("{}/{name}@{}", registry.host, scenario.image);
    let (run, report) = run_json("migrate", &image, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report["images"][0]["outcome"], "migrated");
    (scenario, repo, image)
}

/// DSSE payloads of the legacy `.att` layers, in order.
fn legacy_payloads(scenario: &Scenario) -> Vec<Vec<u8>> {
    let att = scenario.repo.manifest_by_tag(&scenario.image.cosign_tag("att")).unwrap();
    let Manifest::Image(m) = Manifest::parse(&att.bytes, None).unwrap().0 else { panic!("image manifest") };
    m.layers.iter().map(|l| Envelope::parse(scenario.repo.blob(&l.digest).unwrap()).unwrap().payload).collect()
}

/// DSSE payloads of the bundles among the image's referrers, sorted.
async fn referrer_payloads<R: Repository>(repo: &R, image: &Digest) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for d in repo.referrers(image, None).await.unwrap().descriptors {
        let raw = repo.get_manifest(&d.digest.to_string()).await.unwrap().unwrap();
        let Manifest::Image(m) = raw.manifest else { panic!("image manifest") };
        let blob = repo.get_blob(&m.layers[0], 1 << 24).await.unwrap();
        let bundle = att2ref::model::bundle::Bundle::parse(&blob).unwrap();
        out.push(bundle.dsse_envelope().unwrap().payload.clone());
    }
    out.sort();
    out
}

async fn migrated_att_is_pruned(registry: TestRegistry) {
    let (scenario, repo, image) = migrated(&registry, "prune/app").await;
    let att_tag = scenario.image.cosign_tag("att");
    let repository = format!("{}/prune/app", registry.host);

    // Dry run over the whole repository: the .att is removable, nothing deleted.
    let (run, report) = prune(&repository, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(report["apply"], false);
    assert_eq!(items(&report), vec![("legacy-attestation".to_owned(), "planned".to_owned())], "{report:#}");
    let reasons = report["items"][0]["reasons"].to_string();
    assert!(reasons.contains("layer 1: referrer") && reasons.contains("same payload"), "{reasons}");
    assert!(report["items"][0]["size"].as_u64().unwrap() > 0);
    assert!(repo.head_manifest(&att_tag).await.unwrap().is_some(), "a dry run deletes nothing");
    let text = att2ref(&["prune", "--plain-http", &repository, "--key", &rsa_key(), "--insecure-ignore-tlog"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.contains("planned") && text.stdout.contains("dry run"), "{}", text.stdout);

    // --apply removes it; the referrers still verify and hold the same payloads.
    let before = referrer_payloads(&repo, &scenario.image).await;
    let dir = tempfile::tempdir().unwrap();
    let (journal, report_file) = (dir.path().join("prune.jsonl"), dir.path().join("report.json"));
    let files = ["--journal", journal.to_str().unwrap(), "--report", report_file.to_str().unwrap()];
    let (run, report) = prune(&image, &[&["--apply"][..], &files[..]].concat());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(items(&report), vec![("legacy-attestation".to_owned(), "removed".to_owned())], "{report:#}");
    let saved: Value = serde_json::from_slice(&std::fs::read(&report_file).unwrap()).unwrap();
    assert_eq!(saved["items"], report["items"], "--report writes the same document");
    let lines = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
    let line: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(line["item"]["status"], "removed");
    assert!(line["at"].as_u64().unwrap() > 0);
    assert!(repo.head_manifest(&att_tag).await.unwrap().is_none(), "the .att tag is gone");
    assert!(repo.head_manifest(&scenario.image.cosign_tag("sig")).await.unwrap().is_some(), "the .sig stays");
    let (run, verified) = run_json("verify", &image, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let results = verified["images"][0]["results"].as_array().unwrap();
    assert_eq!(results.iter().filter(|r| r["location"]["source"] == "referrer").count(), 2);
    assert!(results.iter().all(|r| r["verified"] == true));
    let mut expected = legacy_payloads(&scenario);
    expected.sort();
    assert_eq!(referrer_payloads(&repo, &scenario.image).await, expected);
    assert_eq!(before, expected);

    // `get` still returns the same SLSA bytes, now from its own referrer (the .att is gone).
    let key = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/rsa-4096.pub.pem");
    let run = crate::cli::att2ref(&[
        "get",
        "--plain-http",
        &image,
        "--type",
        "custom",
        "--hint",
        "slsa-provenance",
        "--key",
        key.to_str().unwrap(),
        "--insecure-ignore-tlog",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, att2ref::demo::content::ARTICLE_SLSA_TEXT, "the same SLSA bytes after the prune");

    // A second --apply does nothing.
    let (run, report) = prune(&repository, &["--apply"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(items(&report).is_empty(), "{report:#}");
}

#[tokio::test]
async fn migrated_att_is_pruned_on_distribution() {
    migrated_att_is_pruned(TestRegistry::distribution()).await;
}

#[tokio::test]
async fn migrated_att_is_pruned_on_ferro() {
    migrated_att_is_pruned(TestRegistry::ferro()).await;
}

/// A migrated image whose `.att` then gains a layer nobody migrated (same payload, re-serialised
/// envelope, so a new blob): the `.att` is kept, with the layer named.
async fn att_with_an_unmigrated_layer_is_kept(registry: TestRegistry) {
    let (scenario, repo, image) = migrated(&registry, "prune/partial").await;
    let att_tag = scenario.image.cosign_tag("att");
    let att = repo.get_manifest(&att_tag).await.unwrap().unwrap();
    let mut manifest: Value = serde_json::from_slice(&att.bytes).unwrap();
    let first: Digest = manifest["layers"][0]["digest"].as_str().unwrap().parse().unwrap();
    let envelope: Value = serde_json::from_slice(scenario.repo.blob(&first).unwrap()).unwrap();
    let pretty = Bytes::from(serde_json::to_vec_pretty(&envelope).unwrap());
    let digest = repo.put_blob(pretty.clone()).await.unwrap();
    let mut layer = manifest["layers"][0].clone();
    layer["digest"] = json!(digest.to_string());
    layer["size"] = json!(pretty.len());
    manifest["layers"].as_array_mut().unwrap().push(layer);
    let bytes = Bytes::from(serde_json::to_vec(&manifest).unwrap());
    let pushed = repo.put_manifest(bytes, OCI_MANIFEST, Some(&att_tag)).await.unwrap();

    for extra in [&[][..], &["--apply"][..]] {
        let (run, report) = prune(&image, extra);
        assert_eq!(run.code, 0, "kept is not a failure: {}", run.stderr);
        assert_eq!(items(&report), vec![("legacy-attestation".to_owned(), "kept".to_owned())], "{report:#}");
        let reasons = report["items"][0]["reasons"].to_string();
        assert!(reasons.contains("layer 2") && reasons.contains("no migrated referrer"), "{reasons}");
    }
    assert_eq!(repo.head_manifest(&att_tag).await.unwrap().unwrap().digest, pushed.digest, "still there");
}

#[tokio::test]
async fn att_with_an_unmigrated_layer_is_kept_on_distribution() {
    att_with_an_unmigrated_layer_is_kept(TestRegistry::distribution()).await;
}

#[tokio::test]
async fn att_with_an_unmigrated_layer_is_kept_on_ferro() {
    att_with_an_unmigrated_layer_is_kept(TestRegistry::ferro()).await;
}

/// Push a copy of the first referrer of `image` (another annotation, the same bundle blob), listed in the
/// tag-schema index where the registry has no API. Returns the copy's digest.
pub(crate) async fn add_duplicate(registry: &TestRegistry, repo: &RegistryRepository, image: &Digest) -> Digest {
    assert_eq!(repo.referrers(image, None).await.unwrap().descriptors.len(), 2);
    add_copy(registry, repo, image, |copy| {
        copy.annotations.insert("example.test/copy".into(), "1".into());
    })
    .await
}

/// Push a copy of the first referrer att2ref wrote for `image`, as `edit` changes it, listed in the
/// tag-schema index where the registry has no API. Returns the copy's digest.
pub(crate) async fn add_copy(
    registry: &TestRegistry,
    repo: &RegistryRepository,
    image: &Digest,
    edit: impl FnOnce(&mut att2ref::model::oci::ImageManifest),
) -> Digest {
    let listing = repo.referrers(image, None).await.unwrap();
    let before = listing.descriptors.len();
    let first = listing.descriptors.iter().find(|d| d.annotations.contains_key(LEGACY_LAYER_DIGEST)).unwrap();
    let original = repo.get_manifest(&first.digest.to_string()).await.unwrap().unwrap();
    let Manifest::Image(mut copy) = original.manifest.clone() else { panic!("image manifest") };
    edit(&mut copy);
    let bytes = Bytes::from(to_canonical_bytes(&copy));
    let put = repo.put_manifest(bytes.clone(), OCI_MANIFEST, None).await.unwrap();
    if !registry.has_referrers_api() {
        let tag = image.referrers_tag();
        let raw = repo.get_manifest(&tag).await.unwrap().unwrap();
        let Manifest::Index(mut index) = raw.manifest else { panic!("index") };
        let mut d = att2ref::model::oci::Descriptor::of(OCI_MANIFEST, &bytes);
        d.digest = put.digest.clone();
        index.manifests.push(att2ref::model::referrers_index::referrer_entry(&d, &copy));
        repo.put_manifest(Bytes::from(to_canonical_bytes(&index)), OCI_INDEX, Some(&tag)).await.unwrap();
    }
    assert_eq!(repo.referrers(image, None).await.unwrap().descriptors.len(), before + 1);
    put.digest
}

/// Only a copy that consumers find and verify exactly as the original is a duplicate: one with another
/// artifact type (listings are filtered on it) or other layer annotations (a DSSE referrer's
/// certificate and log entry sit there) is not, whatever its blob. Of two true copies, the one `migrate`
/// pairs with its legacy layer is kept, even when the other was created first: removing it would make
/// the next `migrate` write it again, and the next prune remove it again.
#[tokio::test]
async fn only_copies_that_consumers_see_alike_are_duplicates_and_the_paired_one_is_kept() {
    let registry = TestRegistry::distribution();
    let (scenario, repo, image) = migrated(&registry, "prune/alike").await;
    let ours: Vec<Digest> =
        repo.referrers(&scenario.image, None).await.unwrap().descriptors.into_iter().map(|d| d.digest).collect();
    let unpaired = |copy: &mut att2ref::model::oci::ImageManifest| {
        copy.annotations.retain(|k, _| !k.starts_with("dev.att2ref."));
        copy.annotations.insert("org.opencontainers.image.created".into(), "2000-01-01T00:00:00Z".into());
    };
    let other_type = add_copy(&registry, &repo, &scenario.image, |copy| {
        unpaired(copy);
        copy.artifact_type = Some("application/vnd.example.other+json".into());
    })
    .await;
    let other_layer = add_copy(&registry, &repo, &scenario.image, |copy| {
        unpaired(copy);
        copy.layers[0].annotations.insert("example.test/layer".into(), "1".into());
    })
    .await;
    let (run, report) = prune(&image, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count(&report, "duplicate-referrer", "planned"), 0, "{report:#}");

    let alike = add_copy(&registry, &repo, &scenario.image, unpaired).await;
    let (run, report) = prune(&image, &["--apply"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let removed: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "duplicate-referrer")
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(removed, ["removed"], "{report:#}");
    let duplicate = report["items"].as_array().unwrap().iter().find(|i| i["kind"] == "duplicate-referrer").unwrap();
    assert_eq!(duplicate["digest"], alike.to_string(), "the unpaired copy goes, though created first: {report:#}");
    let mut listed: Vec<Digest> =
        repo.referrers(&scenario.image, None).await.unwrap().descriptors.into_iter().map(|d| d.digest).collect();
    listed.sort();
    let mut expected = [ours, vec![other_type, other_layer]].concat();
    expected.sort();
    assert_eq!(listed, expected);
}

/// Of two copies, the one kept is one consumers find: when another writer's stale merge dropped the
/// artifact type from the paired copy's tag-schema entry, cosign (filtering on it) misses that copy, so
/// the other copy stays and the mislisted one goes; the `.att` stays too, its layer no longer covered by
/// a paired referrer consumers find. With every copy mislisted, none goes.
#[tokio::test]
async fn the_copy_kept_of_duplicates_is_one_consumers_find() {
    let registry = TestRegistry::distribution();
    let (scenario, repo, image) = migrated(&registry, "prune/mislisted").await;
    let listing = repo.referrers(&scenario.image, None).await.unwrap();
    let paired = listing.descriptors.iter().find(|d| d.annotations.contains_key(LEGACY_LAYER_DIGEST)).unwrap();
    let paired = paired.digest.clone();
    let alike = add_copy(&registry, &repo, &scenario.image, |copy| {
        copy.annotations.retain(|k, _| !k.starts_with("dev.att2ref."));
    })
    .await;
    // Each entry of the tag-schema index named here listed with that artifact type.
    let relist = |types: Vec<(Digest, Option<&'static str>)>| {
        let (repo, tag) = (&repo, scenario.image.referrers_tag());
        async move {
            let raw = repo.get_manifest(&tag).await.unwrap().unwrap();
            let Manifest::Index(mut index) = raw.manifest else { panic!("index") };
            for (digest, artifact_type) in types {
                let entry = index.manifests.iter_mut().find(|e| e.digest == digest).unwrap();
                entry.artifact_type = artifact_type.map(str::to_owned);
            }
            repo.put_manifest(Bytes::from(to_canonical_bytes(&index)), OCI_INDEX, Some(&tag)).await.unwrap();
        }
    };
    let bundle = Some(att2ref::model::media_type::BUNDLE_V03);

    relist(vec![(paired.clone(), None), (alike.clone(), None)]).await;
    let (run, report) = prune(&image, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count(&report, "duplicate-referrer", "planned"), 0, "every copy mislisted: {report:#}");
    assert_eq!(count(&report, "duplicate-referrer", "kept"), 1, "and the report says so: {report:#}");

    relist(vec![(alike.clone(), bundle)]).await;
    let (run, report) = prune(&image, &["--apply"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let duplicates: Vec<&Value> =
        report["items"].as_array().unwrap().iter().filter(|i| i["kind"] == "duplicate-referrer").collect();
    assert_eq!(duplicates.len(), 1, "{report:#}");
    assert_eq!(duplicates[0]["digest"], paired.to_string(), "the copy consumers miss goes: {report:#}");
    assert_eq!(duplicates[0]["status"], "removed", "{report:#}");
    assert_eq!(count(&report, "legacy-attestation", "removed"), 0, "{report:#}");
    assert!(repo.head_manifest(&scenario.image.cosign_tag("att")).await.unwrap().is_some());
    let listed = repo.referrers(&scenario.image, None).await.unwrap().descriptors;
    let kept = listed.iter().find(|d| d.digest == alike).expect("the copy consumers find stays listed");
    assert_eq!(kept.artifact_type.as_deref(), bundle);
}

/// A `.att` that is itself signed (`cosign sign --attachment attestation` tags its signature
/// `sha256-<.att digest>.sig`) stays while that tag cannot be read: a registry that hides what a token may
/// not see answers 404 `DENIED`, and a HEAD's 404 (no body) cannot be told from an absence, so the check
/// right before the delete reads it with a GET.
#[tokio::test]
async fn a_signature_of_the_att_that_cannot_be_read_keeps_the_att() {
    let registry = TestRegistry::distribution();
    let (scenario, repo, _) = migrated(&registry, "prune/signed-att").await;
    let att = repo.get_manifest(&scenario.image.cosign_tag("att")).await.unwrap().unwrap();
    let sig_tag = att.digest.cosign_tag("sig");
    repo.put_manifest(att.bytes.clone(), &att.media_type, Some(&sig_tag)).await.unwrap();
    let proxy = FaultProxy::counting(&registry.host);
    proxy.refuse(&format!("/v2/prune/signed-att/manifests/{sig_tag}"), 404);
    let image = format!("{}/prune/signed-att@{}", proxy.host, scenario.image);

    let (run, report) = prune(&image, &["--apply"]);
    assert_eq!(count(&report, "legacy-attestation", "removed"), 0, "{report:#}");
    assert_ne!(run.code, 0, "an unreadable attachment is not a clean run: {}", run.stderr);
    assert!(repo.get_manifest(&scenario.image.cosign_tag("att")).await.unwrap().is_some(), "the .att stays");
    assert!(proxy.log().iter().any(|l| l.contains(&sig_tag) && l.contains("refused")), "{:#?}", proxy.log());
}

/// A copy of a referrer (another annotation, the same bundle blob) is reduced to one.
async fn duplicates_are_reduced_to_one(registry: TestRegistry) {
    let (scenario, repo, image) = migrated(&registry, "prune/dup").await;
    add_duplicate(&registry, &repo, &scenario.image).await;

    let (run, report) = prune(&image, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count(&report, "duplicate-referrer", "planned"), 1, "{report:#}");
    assert_eq!(count(&report, "legacy-attestation", "planned"), 1, "{report:#}");

    let (run, report) = prune(&image, &["--apply"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(count(&report, "duplicate-referrer", "removed"), 1, "{report:#}");
    assert_eq!(count(&report, "legacy-attestation", "removed"), 1, "{report:#}");
    let listing = repo.referrers(&scenario.image, None).await.unwrap();
    assert_eq!(listing.descriptors.len(), 2, "one per layer: {:#?}", listing.descriptors);
    let mut expected = legacy_payloads(&scenario);
    expected.sort();
    assert_eq!(referrer_payloads(&repo, &scenario.image).await, expected);
    let (run, _) = run_json("verify", &image, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Targets naming one repository twice — the repository and one of its images — make two units of it,
/// which take turns even with `--jobs 2`: each removal is made once and reported once, no delete meets
/// a 404 from the other unit, and no index entry is put back for a referrer the other removed.
#[tokio::test]
async fn overlapping_targets_in_one_repository_take_turns() {
    let registry = TestRegistry::distribution();
    let (scenario, repo, image) = migrated(&registry, "prune/overlap").await;
    add_duplicate(&registry, &repo, &scenario.image).await;
    let repository = format!("{}/prune/overlap", registry.host);
    let key = rsa_key();
    let args = ["prune", "--plain-http", &repository, &image, "--key", &key, "--insecure-ignore-tlog"];
    // The dry run plans each removal once, though both units find it.
    let run = att2ref(&[&args[..], &["--jobs", "2", "-o", "json"]].concat());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let planned =
        [("duplicate-referrer".to_owned(), "planned".to_owned()), ("legacy-attestation".into(), "planned".into())];
    let mut found = items(&report);
    found.sort();
    assert_eq!(found, planned, "{report:#}");

    let run = att2ref(&[&args[..], &["--apply", "--jobs", "2", "-o", "json"]].concat());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(count(&report, "duplicate-referrer", "removed"), 1, "{report:#}");
    assert_eq!(count(&report, "legacy-attestation", "removed"), 1, "{report:#}");
    assert_eq!(items(&report).len(), 2, "each removal reported once: {report:#}");
    let listing = repo.referrers(&scenario.image, None).await.unwrap();
    assert_eq!(listing.descriptors.len(), 2, "one per layer: {:#?}", listing.descriptors);
    for d in &listing.descriptors {
        assert!(repo.get_manifest(&d.digest.to_string()).await.unwrap().is_some(), "{} is listed but gone", d.digest);
    }
}

#[tokio::test]
async fn duplicates_are_reduced_to_one_on_distribution() {
    duplicates_are_reduced_to_one(TestRegistry::distribution()).await;
}

#[tokio::test]
async fn duplicates_are_reduced_to_one_on_ferro() {
    duplicates_are_reduced_to_one(TestRegistry::ferro()).await;
}

/// A registry that refuses deletes (405, as GHCR): the item fails, the run goes on, the exit is non-zero.
#[tokio::test]
async fn a_refused_delete_fails_the_item_and_the_run() {
    use wiremock::matchers::{method, path, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let image = Digest::sha256(b"a deleted image");
    let sig_tag = image.cosign_tag("sig");
    let config = Digest::sha256(b"{}");
    let sig = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2},
        "layers": []
    }))
    .unwrap();
    let sig_digest = Digest::sha256(&sig);
    let server = MockServer::start().await;
    Mock::given(method("GET")).and(path("/v2/")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/v2/app/tags/list"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"name": "app", "tags": [sig_tag]})))
        .mount(&server)
        .await;
    let manifest = ResponseTemplate::new(200)
        .set_body_raw(sig.clone(), OCI_MANIFEST)
        .insert_header("Docker-Content-Digest", sig_digest.to_string().as_str());
    for reference in [sig_tag.clone(), sig_digest.to_string()] {
        for verb in ["GET", "HEAD"] {
            Mock::given(method(verb))
                .and(path(format!("/v2/app/manifests/{reference}")))
                .respond_with(manifest.clone())
                .with_priority(1)
                .mount(&server)
                .await;
        }
    }
    Mock::given(method("DELETE"))
        .and(path_regex(r"^/v2/app/manifests/.*"))
        .respond_with(ResponseTemplate::new(405).set_body_raw(
            r#"{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}"#,
            "application/json",
        ))
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path_regex(r"^/v2/app/referrers/.*"))
        .respond_with(ResponseTemplate::new(404).set_body_raw("404 page not found\n", "text/plain"))
        .mount(&server)
        .await;
    Mock::given(path_regex(r"^/v2/app/manifests/.*"))
        .respond_with(ResponseTemplate::new(404).set_body_raw(
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
            "application/json",
        ))
        .with_priority(10)
        .mount(&server)
        .await;

    let target = format!("{}/app", server.address());
    // Orphans are kept unless deleting them is asked for.
    let (run, report) = prune(&target, &["--apply"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(items(&report), vec![("orphan-legacy".to_owned(), "kept".to_owned())], "{report:#}");
    assert!(report["items"][0]["reasons"].to_string().contains("COSIGN_REPOSITORY"), "{report:#}");

    // Searched in exactly this repository (named), the subject is absent: the delete would go, but the
    // registry refuses DELETE altogether (learnt with one probe), so it is not attempted.
    let (run, report) = prune(&target, &["--apply", "--delete-orphans", "--search-repository", &target]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(items(&report), vec![("orphan-legacy".to_owned(), "failed".to_owned())], "{report:#}");
    assert_eq!(report["items"][0]["error_kind"], "unsupported");
    assert_eq!(report["items"][0]["subject_search"]["scope"], "named");
    assert_eq!(report["items"][0]["subject_search"]["repositories"], json!([target]));
    let reason = report["items"][0]["reasons"].as_array().unwrap().last().unwrap().as_str().unwrap().to_owned();
    assert!(
        reason.starts_with("not attempted: the registry refuses manifest DELETE") && reason.contains("405"),
        "{reason}"
    );
    assert!(
        run.stderr.contains("error: not attempted") && run.stderr.contains("(1 removal not attempted)"),
        "{}",
        run.stderr
    );
}

/// `cosign sign --attachment attestation` signs the `.att` manifest itself: removing the `.att` would
/// orphan that signature, so the `.att` is kept.
#[tokio::test]
async fn an_att_that_is_signed_itself_is_kept() {
    let registry = TestRegistry::distribution();
    let (scenario, repo, image) = migrated(&registry, "prune/signed-att").await;
    let att_tag = scenario.image.cosign_tag("att");
    let att = repo.head_manifest(&att_tag).await.unwrap().unwrap();
    let sig = repo.get_manifest(&scenario.image.cosign_tag("sig")).await.unwrap().unwrap();
    repo.put_manifest(sig.bytes.clone(), OCI_MANIFEST, Some(&att.digest.cosign_tag("sig"))).await.unwrap();

    let (run, report) = prune(&image, &["--apply"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(items(&report).contains(&("legacy-attestation".to_owned(), "kept".to_owned())), "{report:#}");
    let note = format!("a legacy {} of its own", att.digest.cosign_tag("sig"));
    assert!(report.to_string().contains(&note), "{report:#}");
    assert!(repo.head_manifest(&att_tag).await.unwrap().is_some(), "still there");
}

/// A real registry that refuses deletes (distribution with deletes disabled answers 405 `UNSUPPORTED`):
/// learnt with one probe, the item fails as not attempted with one clear line, the exit code is non-zero,
/// and nothing is lost.
#[tokio::test]
async fn a_registry_refusing_deletes_fails_the_run_and_keeps_everything() {
    let registry = TestRegistry::distribution_without_deletes();
    let (scenario, repo, image) = migrated(&registry, "prune/nodelete").await;
    let att_tag = scenario.image.cosign_tag("att");
    let (run, report) = prune(&image, &["--apply"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(items(&report), vec![("legacy-attestation".to_owned(), "failed".to_owned())], "{report:#}");
    assert_eq!(report["items"][0]["error_kind"], "unsupported", "{report:#}");
    let reason = report["items"][0]["reasons"].as_array().unwrap().last().unwrap().as_str().unwrap().to_owned();
    assert!(
        reason.starts_with("not attempted: the registry refuses manifest DELETE") && reason.contains("UNSUPPORTED"),
        "{reason}"
    );
    assert_eq!(run.stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{}", run.stderr);
    assert!(repo.head_manifest(&att_tag).await.unwrap().is_some(), "the .att is still there");
}

/// The registry applies the `.att` DELETE but its answer is lost (`fault`); the client repeats it and
/// gets 404: the item is `removed`, the run succeeds, and the manifest is really gone.
async fn a_retried_delete_finding_nothing_is_removed(fault: Fault, name: &str) {
    let registry = TestRegistry::distribution();
    let (scenario, repo, _) = migrated(&registry, name).await;
    let att_tag = scenario.image.cosign_tag("att");
    let att = repo.head_manifest(&att_tag).await.unwrap().expect("the .att before the prune").digest;
    let proxy = FaultProxy::start(&registry.host, None);
    proxy.fault_next("DELETE", &format!("/manifests/{att}"), fault);
    let image = format!("{}/{name}@{}", proxy.host, scenario.image);
    let (run, report) = prune(&image, &["--apply"]);
    let log = proxy.log().join("\n");
    assert_eq!(run.code, 0, "{}\n{}\n{log}", run.stdout, run.stderr);
    assert_eq!(items(&report), vec![("legacy-attestation".to_owned(), "removed".to_owned())], "{report:#}");
    assert_eq!(proxy.injected().values().sum::<u64>(), 1, "{log}");
    // The first DELETE is the probe of a digest nobody stored (404: deletes work); then the `.att`'s.
    let all_deletes = log.lines().filter(|l| l.contains("DELETE ")).count();
    assert_eq!(all_deletes, 3, "the probe, the first DELETE and its repetition:\n{log}");
    let deletes: Vec<&str> = log.lines().filter(|l| l.contains("DELETE ") && l.contains(&att.to_string())).collect();
    assert_eq!(deletes.len(), 2, "the first DELETE and its repetition:\n{log}");
    assert!(deletes[1].ends_with("→ 404"), "the repetition found nothing:\n{log}");
    // Asked of the registry itself, not through the proxy.
    assert!(repo.head_manifest(&att.to_string()).await.unwrap().is_none(), "the .att manifest is gone");
    assert!(repo.head_manifest(&att_tag).await.unwrap().is_none(), "its tag is gone");
    assert!(repo.head_manifest(&scenario.image.to_string()).await.unwrap().is_some(), "the image stays");
}

#[tokio::test]
async fn a_delete_applied_then_answered_500_is_removed_on_retry() {
    a_retried_delete_finding_nothing_is_removed(Fault::LostBehind(500), "prune/retried-500").await;
}

#[tokio::test]
async fn a_delete_applied_then_unanswered_is_removed_on_retry() {
    a_retried_delete_finding_nothing_is_removed(Fault::LostResponse, "prune/retried-lost").await;
}

/// An index listing two referrers that are both gone: distribution refuses any index that lists a
/// manifest it lacks, so the two entries must go in one edit (one at a time, each push would still list
/// the other and be refused, for good). Then the empty index goes too.
#[tokio::test]
async fn two_dangling_index_entries_are_removed_in_one_edit_on_distribution() {
    let registry = TestRegistry::distribution();
    let (scenario, repo, image) = migrated(&registry, "prune/dangling").await;
    let tag = scenario.image.referrers_tag();
    let listed = repo.referrers(&scenario.image, None).await.unwrap().descriptors;
    assert_eq!(listed.len(), 2);
    for d in &listed {
        repo.delete_manifest(&d.digest).await.unwrap();
    }

    let (run, report) = prune(&image, &["--apply"]);
    assert_eq!(count(&report, "index-entry", "removed"), 2, "{}\n{report:#}", run.stderr);
    assert_eq!(count(&report, "empty-index", "removed"), 1, "{report:#}");
    assert_eq!(count(&report, "legacy-attestation", "kept"), 1, "nothing replaces its layers now: {report:#}");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(repo.get_manifest(&tag).await.unwrap().is_none(), "the index tag is gone");
    assert!(repo.get_manifest(&scenario.image.cosign_tag("att")).await.unwrap().is_some(), "the .att stays");
}

/// A duplicate referrer that something attaches to (here a legacy `.sig` on the duplicate's own digest)
/// is not deleted: that signature would be left pointing at nothing.
#[tokio::test]
async fn a_duplicate_with_attachments_of_its_own_is_kept() {
    let registry = TestRegistry::distribution();
    let (scenario, repo, image) = migrated(&registry, "prune/dup-signed").await;
    let duplicate = add_duplicate(&registry, &repo, &scenario.image).await;
    let sig = repo.get_manifest(&scenario.image.cosign_tag("sig")).await.unwrap().unwrap();
    repo.put_manifest(sig.bytes.clone(), OCI_MANIFEST, Some(&duplicate.cosign_tag("sig"))).await.unwrap();

    let (run, report) = prune(&image, &["--apply"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count(&report, "duplicate-referrer", "skipped"), 1, "{report:#}");
    let note = format!("the duplicate has a legacy {} of its own", duplicate.cosign_tag("sig"));
    assert!(report.to_string().contains(&note), "{report:#}");
    assert!(repo.head_manifest(&duplicate.to_string()).await.unwrap().is_some(), "the duplicate stays");
    assert_eq!(repo.referrers(&scenario.image, None).await.unwrap().descriptors.len(), 3, "still listed");
}

/// A server error on an index edit is not the end of it: the edit is read and merged again (the client
/// never resends an index push as it was), and the dangling entries still go.
#[tokio::test]
async fn an_index_edit_answered_503_is_read_and_made_again() {
    let registry = TestRegistry::distribution();
    let (scenario, repo, _) = migrated(&registry, "prune/dangling-503").await;
    let tag = scenario.image.referrers_tag();
    for d in repo.referrers(&scenario.image, None).await.unwrap().descriptors {
        repo.delete_manifest(&d.digest).await.unwrap();
    }
    let proxy = FaultProxy::start(&registry.host, None);
    proxy.fault_next("PUT", &format!("/manifests/{tag}"), Fault::ServerError(503));
    let image = format!("{}/prune/dangling-503@{}", proxy.host, scenario.image);
    let (run, report) = prune(&image, &["--apply"]);
    assert_eq!(count(&report, "index-entry", "removed"), 2, "{}\n{report:#}", run.stderr);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(repo.get_manifest(&tag).await.unwrap().is_none(), "the emptied index is gone");
    let on_tag: Vec<String> = proxy.log().into_iter().filter(|l| l.contains(&tag)).collect();
    let faulted = on_tag.iter().position(|l| l.contains(" PUT /") && l.contains("503")).expect("the 503");
    assert!(on_tag[faulted + 1].contains(" GET /"), "read again before the next push: {on_tag:?}");
}
