//! `att2ref migrate` end to end, on both real registries (distribution 2.8.2: tag schema; ferro: the
//! referrers API), on OCI layouts, and against a local Rekor endpoint for keyless entries.

use std::path::{Path, PathBuf};

use att2ref::demo::{self, AttachmentKind, Scenario, TestKey};
use att2ref::model::digest::Digest;
use att2ref::model::dsse::encode_base64;
use att2ref::model::oci::Manifest;
use att2ref::model::rekor::RekorBundle;
use att2ref::store::Repository;
use att2ref::store::layout::LayoutRepository;
use serde_json::{Value, json};

use crate::cli::{Run, att2ref};
use crate::corpus::{self, ARTICLE_IMAGE};
use crate::registries::TestRegistry;
use crate::rfc6962;
use crate::schema::assert_valid;

const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const CUSTOM_V1: &str = "cosign.sigstore.dev/attestation/v1";

fn rsa_key() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/rsa-4096.pub.pem").display().to_string()
}

/// Run `migrate` with `-o json` and the RSA-4096 key; the report must validate against its schema.
fn migrate(target: &str, extra: &[&str]) -> (Run, Value) {
    let key = rsa_key();
    let mut args = vec!["migrate", "--plain-http", target, "--key", &key, "--insecure-ignore-tlog", "-o", "json"];
    args.extend_from_slice(extra);
    let run = att2ref(&args);
    let report = run.json();
    assert_valid("migrate-report.schema.json", &report);
    (run, report)
}

fn outcome(report: &Value) -> &str {
    report["images"][0]["outcome"].as_str().unwrap()
}

async fn tags<R: Repository>(repo: &R) -> Vec<String> {
    let mut t = repo.list_tags().await.unwrap();
    t.sort();
    t
}

fn att_manifest(scenario: &Scenario) -> Digest {
    scenario.attachment_for(&scenario.image, AttachmentKind::Attestations).unwrap().manifest.clone()
}

async fn article_like_migrates(registry: TestRegistry) {
    let scenario = demo::article_like().unwrap();
    let repo = registry.repository("cssc/flasksample");
    scenario.repo.push_to(&repo).await.unwrap();
    let image = format!("{}/cssc/flasksample@{}", registry.host, scenario.image);
    let att_tag = scenario.image.cosign_tag("att");

    // Dry run: the full plan, nothing written.
    let before = tags(&repo).await;
    let (run, report) = migrate(&image, &["--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(outcome(&report), "planned");
    assert_eq!(report["images"][0]["plan"]["totals"]["write"], 2);
    assert_eq!(report["images"][0]["bytes_written"], 0);
    assert_eq!(tags(&repo).await, before, "a dry run writes no tag");
    assert!(repo.referrers(&scenario.image, None).await.unwrap().descriptors.is_empty());

    // The migration.
    let dir = tempfile::tempdir().unwrap();
    let report_file = dir.path().join("report.json");
    let (run, report) = migrate(&image, &["--report", report_file.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(outcome(&report), "migrated", "{}", run.stdout);
    let saved: Value = serde_json::from_slice(&std::fs::read(&report_file).unwrap()).unwrap();
    assert_eq!(saved["images"], report["images"], "--report writes the same document");
    let written = report["images"][0]["bytes_written"].as_u64().unwrap();
    assert!(written > 1_500_000, "the SBOM bundle was uploaded: {written}");
    assert_eq!(report["totals"]["referrers_written"], 2);
    assert!(report["requests"]["requests"].as_u64().unwrap() > 0);

    // What consumers see: two bundle referrers, typed and annotated; the legacy .att untouched.
    let target = format!("{}/cssc/flasksample@{}", registry.host, scenario.image);
    let run = att2ref(&["inspect", "--plain-http", &target, "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let inspected = run.json();
    let entries = inspected["images"][0]["referrers"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{entries:#?}");
    for e in entries {
        assert_eq!(e["format"], "sigstore-bundle");
        assert_eq!(e["artifactType"], BUNDLE);
        assert_eq!(e["predicateType"], CUSTOM_V1);
        assert_eq!(e["predicateTypeAnnotation"], CUSTOM_V1);
    }
    let expected_discovery = if registry.has_referrers_api() { "api" } else { "tag-schema" };
    assert!(
        inspected["images"][0]["referrers"]["discovery"].as_str().unwrap().contains(expected_discovery),
        "{}",
        inspected["images"][0]["referrers"]["discovery"]
    );
    assert_eq!(repo.head_manifest(&att_tag).await.unwrap().unwrap().digest, att_manifest(&scenario));
    // With the referrers API the registry indexes them itself: no fallback tag is written.
    let fallback = repo.get_manifest(&scenario.image.referrers_tag()).await.unwrap();
    assert_eq!(fallback.is_some(), !registry.has_referrers_api());

    // `verify` accepts the bundles (and still the legacy layers).
    let key = rsa_key();
    let run = att2ref(&["verify", "--plain-http", &target, "--key", &key, "--insecure-ignore-tlog", "-o", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let results = run.json()["images"][0]["results"].as_array().unwrap().clone();
    assert_eq!(results.iter().filter(|r| r["location"]["source"] == "referrer").count(), 2);
    assert!(results.iter().all(|r| r["verified"] == true));

    // A rerun writes nothing.
    let (run, report) = migrate(&image, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(outcome(&report), "already-migrated");
    assert_eq!(report["images"][0]["bytes_written"], 0);
    assert_eq!(report["images"][0]["writes"], 0);
    assert_eq!(report["requests"]["bytes_uploaded"], 0, "not one byte uploaded");

    // The repository form finds the image through its .att tag.
    let (run, report) = migrate(&format!("{}/cssc/flasksample", registry.host), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report["images"].as_array().unwrap().len(), 1);
    assert_eq!(outcome(&report), "already-migrated");
}

#[tokio::test]
async fn article_like_migrates_on_distribution() {
    article_like_migrates(TestRegistry::distribution()).await;
}

#[tokio::test]
async fn article_like_migrates_on_ferro() {
    article_like_migrates(TestRegistry::ferro()).await;
}

#[tokio::test]
async fn real_article_store_is_orphaned_and_left_alone() {
    let registry = TestRegistry::distribution();
    let repo = registry.repository("flasksample");
    corpus::article_store("flasksample").push_to(&repo).await.unwrap();
    let before = tags(&repo).await;
    let (run, report) = migrate(&format!("{}/flasksample@{ARTICLE_IMAGE}", registry.host), &[]);
    assert_eq!(run.code, 0, "orphaned is reported, not an error: {}", run.stderr);
    assert_eq!(outcome(&report), "orphaned");
    assert!(report["images"][0]["reasons"][0].as_str().unwrap().contains("subject manifest missing"));
    assert!(run.stderr.contains("warning:") && run.stderr.contains("orphaned"), "{}", run.stderr);
    assert_eq!(report["images"][0]["bytes_written"], 0);
    assert_eq!(tags(&repo).await, before, "nothing written");
}

/// The article-like store with its `.sig` re-signed by another key (Ed25519).
fn with_foreign_signature(mut scenario: Scenario) -> Scenario {
    let sig_tag = scenario.image.cosign_tag("sig");
    let sig = scenario.repo.manifest_by_tag(&sig_tag).unwrap().clone();
    let mut manifest: Value = serde_json::from_slice(&sig.bytes).unwrap();
    let layer_digest: Digest = manifest["layers"][0]["digest"].as_str().unwrap().parse().unwrap();
    let payload = scenario.repo.blob(&layer_digest).unwrap().clone();
    let signature = TestKey::Ed25519.signer().sign(&payload).unwrap();
    manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"] = json!(encode_base64(&signature));
    let bytes = serde_json::to_vec(&manifest).unwrap();
    scenario.repo.add_manifest(bytes, &sig.media_type, &[sig_tag]);
    scenario
}

#[tokio::test]
async fn foreign_signature_is_skipped_unless_allowed() {
    let registry = TestRegistry::distribution();
    let scenario = with_foreign_signature(demo::article_like().unwrap());
    let repo = registry.repository("switch/app");
    scenario.repo.push_to(&repo).await.unwrap();
    let image = format!("{}/switch/app@{}", registry.host, scenario.image);
    let before = tags(&repo).await;

    let (run, report) = migrate(&image, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(outcome(&report), "skipped-signature-switch");
    let reasons = report["images"][0]["reasons"].to_string();
    assert!(reasons.contains("--allow-signature-switch") && reasons.contains("legacy .sig layer 0"), "{reasons}");
    assert_eq!(tags(&repo).await, before);

    let (run, report) = migrate(&image, &["--allow-signature-switch"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(outcome(&report), "migrated");
    let sig = repo.head_manifest(&scenario.image.cosign_tag("sig")).await.unwrap().unwrap();
    assert_eq!(Some(&sig.digest), scenario.repo.manifest_by_tag(&scenario.image.cosign_tag("sig")).map(|m| &m.digest));
}

#[tokio::test]
async fn two_concurrent_migrators_list_each_referrer_once() {
    let registry = TestRegistry::distribution();
    let scenario = demo::demo().unwrap();
    let repo = registry.repository("race/app");
    scenario.repo.push_to(&repo).await.unwrap();
    let image = format!("{}/race/app@{}", registry.host, scenario.image);
    let key = rsa_key();
    let bin = assert_cmd::cargo::cargo_bin("att2ref");
    let spawn = || {
        std::process::Command::new(&bin)
            .args(["migrate", "--plain-http", &image, "--key", &key, "--insecure-ignore-tlog", "-o", "json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(["migrated", "already-migrated"].contains(&outcome(&report)), "{report:#}");
    }
    let index = repo.get_manifest(&scenario.image.referrers_tag()).await.unwrap().unwrap();
    let Manifest::Index(index) = index.manifest else { panic!("the referrers tag holds an index") };
    let mut digests: Vec<String> = index.manifests.iter().map(|m| m.digest.to_string()).collect();
    assert_eq!(digests.len(), 2, "{digests:?}");
    digests.dedup();
    assert_eq!(digests.len(), 2, "each entry exactly once");
    assert!(index.manifests.iter().all(|m| m.artifact_type.as_deref() == Some(BUNDLE)));
}

#[test]
fn dsse_format_and_journal_on_a_layout() {
    let scenario = demo::demo().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(demo::write_layout(&scenario, dir.path())).unwrap();
    let target = format!("ocidir://{}", dir.path().display());
    let journal = dir.path().join("journal.jsonl");
    let (run, report) = migrate(&target, &["--format", "dsse", "--journal", journal.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(outcome(&report), "migrated");
    let referrers = report["images"][0]["referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 2);
    assert!(referrers.iter().all(|r| r["artifact_type"] == "application/vnd.in-toto+json"));
    let lines = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(lines.lines().count(), 1);
    assert!(lines.contains(r#""outcome":"migrated""#), "{lines}");

    // Resuming from the journal skips the image without reading its layers.
    let (run, report) = migrate(&target, &["--format", "dsse", "--journal", journal.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(outcome(&report), "already-migrated");
    assert!(report["images"][0]["reasons"][0].as_str().unwrap().contains("journal"));

    // The same journal under another format: what it recorded was done in DSSE, so the image is
    // migrated again into bundles, not skipped on the journal's word.
    let (run, report) = migrate(&target, &["--journal", journal.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(outcome(&report), "migrated", "{report:#}");
    let referrers = report["images"][0]["referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 2, "{report:#}");
    assert!(referrers.iter().all(|r| r["artifact_type"] == BUNDLE), "{report:#}");
}

/// The keyless fixture without its `intoto/0.0.1` layer (which current verifiers cannot verify) and
/// without its `.sig` (signed by another identity): two `dsse/0.0.1` layers with legacy Rekor bundles.
fn keyless_dsse_only() -> Scenario {
    let mut scenario = demo::keyless().unwrap();
    let att_tag = scenario.image.cosign_tag("att");
    let att = scenario.repo.manifest_by_tag(&att_tag).unwrap().clone();
    let mut manifest: Value = serde_json::from_slice(&att.bytes).unwrap();
    manifest["layers"].as_array_mut().unwrap().remove(0);
    scenario.repo.add_manifest(serde_json::to_vec(&manifest).unwrap(), &att.media_type, &[att_tag]);
    let sig_tag = scenario.image.cosign_tag("sig");
    for m in &mut scenario.repo.manifests {
        m.tags.retain(|t| *t != sig_tag);
    }
    scenario
}

/// [`keyless_dsse_only`] in a new OCI layout (in a temporary directory kept while the first value lives),
/// the test trusted root written beside it, and the image's `ocidir://` target.
async fn keyless_in_layout() -> (tempfile::TempDir, Scenario, LayoutRepository, PathBuf, String) {
    let scenario = keyless_dsse_only();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let repo = LayoutRepository::create(&layout, att2ref::Limits::default()).unwrap();
    scenario.repo.push_to(&repo).await.unwrap();
    let root: PathBuf = dir.path().join("trusted_root.json");
    std::fs::write(&root, demo::trusted_root_json().unwrap()).unwrap();
    let target = format!("ocidir://{}@{}", layout.display(), scenario.image);
    (dir, scenario, repo, root, target)
}

/// `migrate TARGET` under the keyless test policy (`root` the test trusted root), then `extra`.
fn keyless_migrate_args(target: &str, root: &Path, extra: &[&str]) -> Vec<String> {
    let identity = ["--certificate-identity", "keyless-signer@example.test"];
    let issuer = ["--certificate-oidc-issuer", "https://oidc.example.test"];
    let head = ["migrate", target, "--trusted-root", root.to_str().unwrap(), "-o", "json"];
    [&head[..], &identity, &issuer, extra].concat().into_iter().map(str::to_owned).collect()
}

/// A local Rekor answering for the log entries of `scenario`'s `.att` layers (`once`: exactly once
/// each, checked when the server is verified or dropped): each entry at index 2 of a log of `size`
/// leaves ([`rekor_response_in`]).
async fn rekor_serving(scenario: &Scenario, size: usize, once: bool) -> wiremock::MockServer {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    for legacy in legacy_log_entries(scenario) {
        let mock = Mock::given(method("GET"))
            .and(path("/api/v1/log/entries"))
            .and(query_param("logIndex", legacy.payload.log_index.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(rekor_response_in(&legacy, 2, size)));
        if once { mock.expect(1) } else { mock }.mount(&server).await;
    }
    server
}

/// The legacy log entries of `scenario`'s `.att` layers, in layer order.
fn legacy_log_entries(scenario: &Scenario) -> Vec<RekorBundle> {
    let att = scenario.repo.manifest_by_tag(&scenario.image.cosign_tag("att")).unwrap();
    let Manifest::Image(m) = Manifest::parse(&att.bytes, None).unwrap().0 else { panic!("image manifest") };
    m.layers
        .iter()
        .map(|l| RekorBundle::parse(l.annotation("dev.sigstore.cosign/bundle").unwrap().as_bytes()).unwrap())
        .collect()
}

/// Rekor's answer for one legacy entry at `index` of a log of `size` leaves, with a checkpoint over that
/// tree signed by the test log key. At index 2 of 5 leaves the audit path has a right sibling, a left
/// one and the unbalanced right edge to hash (a one-leaf tree has an empty path, and would pass with
/// the path hashing broken).
fn rekor_response_in(legacy: &RekorBundle, index: usize, size: usize) -> Value {
    let leaves: Vec<[u8; 32]> = (0..size)
        .map(|i| {
            if i == index { rfc6962::leaf(&legacy.body_bytes) } else { rfc6962::leaf(format!("entry {i}").as_bytes()) }
        })
        .collect();
    let root = rfc6962::root(&leaves);
    let hashes = rfc6962::path(index, &leaves);
    assert_eq!(hashes.len(), 3, "right sibling, left sibling, right edge (or its parent)");
    let text = format!("rekor.test - 1\n{size}\n{}\n", encode_base64(&root));
    let signature = TestKey::RekorEd25519.signer().sign(text.as_bytes()).unwrap();
    let mut signed = legacy.log_id[..4].to_vec();
    signed.extend_from_slice(&signature);
    let checkpoint = format!("{text}\n\u{2014} rekor.test {}\n", encode_base64(&signed));
    json!({
        hex::encode(leaves[index]): {
            "body": legacy.payload.body,
            "integratedTime": legacy.payload.integrated_time,
            "logID": legacy.payload.log_id,
            "logIndex": legacy.payload.log_index,
            "verification": {
                "inclusionProof": {
                    "checkpoint": checkpoint,
                    "hashes": hashes.iter().map(hex::encode).collect::<Vec<_>>(),
                    "logIndex": index,
                    "rootHash": hex::encode(root),
                    "treeSize": size
                },
                "signedEntryTimestamp": encode_base64(&legacy.signed_entry_timestamp)
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn keyless_needs_a_verified_inclusion_proof() {
    let (_dir, scenario, repo, root, target) = keyless_in_layout().await;
    let args = |extra: &[&str]| keyless_migrate_args(&target, &root, extra);
    let run_cli = |a: Vec<String>| async move {
        tokio::task::spawn_blocking(move || att2ref(&a.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap()
    };

    // Without a proof source: blocked, exactly why, nothing written.
    let run = run_cli(args(&[])).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    assert_valid("migrate-report.schema.json", &report);
    assert_eq!(outcome(&report), "blocked");
    let reasons = report["images"][0]["reasons"].to_string();
    assert!(reasons.contains("has no inclusion proof"), "{reasons}");
    assert!(repo.referrers(&scenario.image, None).await.unwrap().descriptors.is_empty());

    // With a local Rekor serving each entry and a proof: fetched, verified, embedded.
    let server = rekor_serving(&scenario, 5, true).await;
    let run = run_cli(args(&["--rekor-url", &server.uri()])).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_valid("migrate-report.schema.json", &report);
    assert_eq!(outcome(&report), "migrated", "{report:#}");
    assert_eq!(report["images"][0]["referrers"].as_array().unwrap().len(), 2);

    let run = run_cli(vec!["inspect".into(), target.clone(), "-o".into(), "json".into()]).await;
    let inspected = run.json();
    let entries = inspected["images"][0]["referrers"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e["logEntries"] == 1 && e["inclusionProofs"] == true), "{entries:#?}");
}

/// Rekor proves an entry against the log's size at the time it is asked, so a rerun after the log grew
/// plans bundles with other bytes than those written: it adopts the ones written (nothing written, the
/// same two referrers listed). One whose proof no longer verifies is not adopted: a good one is written.
#[tokio::test(flavor = "multi_thread")]
async fn reruns_against_a_grown_log_adopt_what_was_written_unless_it_no_longer_verifies() {
    let (_dir, scenario, repo, root, target) = keyless_in_layout().await;
    // A log of `size` entries, asked once per entry.
    let migrate_against = |size: usize| {
        let (scenario, target, root) = (&scenario, target.clone(), root.clone());
        async move {
            let server = rekor_serving(scenario, size, true).await;
            let args = keyless_migrate_args(&target, &root, &["--rekor-url", &server.uri()]);
            let run =
                tokio::task::spawn_blocking(move || att2ref(&args.iter().map(String::as_str).collect::<Vec<_>>()))
                    .await
                    .unwrap();
            server.verify().await;
            assert!(run.code == 0 || run.code == 2, "{}\n{}", run.stdout, run.stderr);
            let report = run.json();
            assert_valid("migrate-report.schema.json", &report);
            report
        }
    };
    let referrers = |report: &Value| -> Vec<(String, bool)> {
        report["images"][0]["referrers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["digest"].as_str().unwrap().to_owned(), r["existed"].as_bool().unwrap()))
            .collect()
    };

    let first = migrate_against(5).await;
    assert_eq!(outcome(&first), "migrated", "{first:#}");
    let written = referrers(&first);
    assert_eq!(written.len(), 2);
    assert!(written.iter().all(|(_, existed)| !existed));

    let grown = migrate_against(6).await;
    assert_eq!(outcome(&grown), "already-migrated", "{grown:#}");
    let adopted = referrers(&grown);
    assert_eq!(adopted, written.iter().map(|(d, _)| (d.clone(), true)).collect::<Vec<_>>());
    assert_eq!(repo.referrers(&scenario.image, None).await.unwrap().descriptors.len(), 2);

    // The first referrer's proof is damaged (one hash of its audit path zeroed) and it is stored anew in
    // place of the one written: the same attestation but for a proof that no longer verifies.
    let first_digest: Digest = written[0].0.parse().unwrap();
    let raw = repo.get_manifest(&first_digest.to_string()).await.unwrap().unwrap();
    let Manifest::Image(mut damaged) = raw.manifest else { panic!("a referrer is an image manifest") };
    let bundle = repo.get_blob(&damaged.layers[0], 1 << 26).await.unwrap();
    let mut bundle: Value = serde_json::from_slice(&bundle).unwrap();
    bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][0] = json!(encode_base64(&[0u8; 32]));
    let bundle = serde_json::to_vec(&bundle).unwrap();
    damaged.layers[0].size = bundle.len() as u64;
    damaged.layers[0].digest = repo.put_blob(bundle.into()).await.unwrap();
    let damaged_bytes = att2ref::model::oci::to_canonical_bytes(&damaged);
    let damaged_digest = Digest::sha256(&damaged_bytes);
    repo.put_manifest(damaged_bytes.clone().into(), &raw.media_type, None).await.unwrap();
    // The layout lists referrers through the tag schema's index: its entry now names the damaged one.
    let tag = scenario.image.referrers_tag();
    let index = repo.get_manifest(&tag).await.unwrap().unwrap();
    let Manifest::Index(mut index) = index.manifest else { panic!("the referrers index") };
    let entry = index.manifests.iter_mut().find(|e| e.digest == first_digest).expect("the first referrer listed");
    (entry.digest, entry.size) = (damaged_digest.clone(), damaged_bytes.len() as u64);
    let index = att2ref::model::oci::to_canonical_bytes(&index);
    repo.put_manifest(index.into(), att2ref::model::media_type::OCI_INDEX, Some(&tag)).await.unwrap();
    repo.delete_manifest(&first_digest).await.unwrap();
    let listed: Vec<Digest> =
        repo.referrers(&scenario.image, None).await.unwrap().descriptors.into_iter().map(|d| d.digest).collect();
    assert!(listed.contains(&damaged_digest) && listed.len() == 2, "{listed:?}");

    let repaired = migrate_against(6).await;
    assert_eq!(outcome(&repaired), "migrated", "{repaired:#}");
    let now = referrers(&repaired);
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(!now.iter().any(|(d, _)| *d == damaged_digest.to_string()), "the damaged one adopted: {now:?}");
    assert_eq!(now[1], (written[1].0.clone(), true), "the intact one adopted");
    assert!(!now[0].1, "a new one written for the damaged one: {now:?}");
}

/// `copy` and `rollback` reach a Rekor given as `http://` as `migrate` does (plain HTTP to that host only,
/// through the same client): copy converts with the fetched proofs, and rollback, planning exactly what
/// the migration wrote, finds both referrers to remove.
#[tokio::test(flavor = "multi_thread")]
async fn copy_and_rollback_fetch_proofs_from_an_http_rekor_too() {
    let (dir, scenario, _repo, root, source) = keyless_in_layout().await;
    let server = rekor_serving(&scenario, 5, false).await;
    let rekor = server.uri();
    assert!(rekor.starts_with("http://"), "{rekor}");
    let copied = format!("ocidir://{}", dir.path().join("copy").display());
    let run = |head: &[&str]| {
        let mut a: Vec<String> = head.iter().map(|s| s.to_string()).collect();
        a.extend(
            [
                "--trusted-root",
                root.to_str().unwrap(),
                "--certificate-identity",
                "keyless-signer@example.test",
                "--certificate-oidc-issuer",
                "https://oidc.example.test",
                "--rekor-url",
                &rekor,
                "-o",
                "json",
                "-q",
            ]
            .map(str::to_owned),
        );
        move || att2ref(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };

    let copy = tokio::task::spawn_blocking(run(&["copy", &source, &copied])).await.unwrap();
    assert_eq!(copy.code, 0, "{}\n{}", copy.stdout, copy.stderr);
    let report = copy.json();
    assert_valid("copy-report.schema.json", &report);
    assert_eq!(report["images"][0]["outcome"], "copied", "{report:#}");
    assert_eq!(report["images"][0]["converted"][0]["referrers"].as_array().unwrap().len(), 2, "{report:#}");

    let migrate = tokio::task::spawn_blocking(run(&["migrate", &source])).await.unwrap();
    assert_eq!(migrate.code, 0, "{}", migrate.stderr);
    assert_eq!(outcome(&migrate.json()), "migrated");
    let rollback = tokio::task::spawn_blocking(run(&["rollback", &source])).await.unwrap();
    assert_eq!(rollback.code, 0, "{}\n{}", rollback.stdout, rollback.stderr);
    let report = rollback.json();
    assert_valid("rollback-report.schema.json", &report);
    let image = &report["images"][0];
    assert_eq!((image["outcome"].as_str(), image["planned"].as_array().map(Vec::len)), (Some("planned"), Some(2)));
}

#[tokio::test]
async fn all_repos_split_into_shards_and_from_file() {
    let registry = TestRegistry::distribution();
    let scenario = demo::demo().unwrap();
    let names = ["team/a", "team/b", "team/c"];
    for name in names {
        scenario.repo.push_to(&registry.repository(name)).await.unwrap();
    }
    // Each repository lands in exactly one of two shards.
    let mut seen = Vec::new();
    for shard in ["0/2", "1/2"] {
        let (run, report) = migrate(&registry.host, &["--all-repos", "--shard", shard, "--dry-run", "--jobs", "2"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        for image in report["images"].as_array().unwrap() {
            assert_eq!(image["outcome"], "planned");
            seen.push(image["repository"].as_str().unwrap().to_owned());
        }
    }
    seen.sort();
    let expected: Vec<String> = names.iter().map(|n| format!("{}/{n}", registry.host)).collect();
    assert_eq!(seen, expected, "every repository in exactly one shard");

    // --from-file: comments and blank lines ignored; targets migrate in order.
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("targets.txt");
    let text = format!("# two repositories\n{h}/team/a\n\n{h}/team/b\n", h = registry.host);
    std::fs::write(&list, text).unwrap();
    let key = rsa_key();
    let run = att2ref(&[
        "migrate",
        "--plain-http",
        "--from-file",
        list.to_str().unwrap(),
        "--key",
        &key,
        "--insecure-ignore-tlog",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_valid("migrate-report.schema.json", &report);
    let outcomes: Vec<&str> =
        report["images"].as_array().unwrap().iter().map(|i| i["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["migrated", "migrated"]);
    assert_eq!(report["totals"]["referrers_written"], 4);
}

/// A run killed after writing one referrer (blobs and manifest pushed, index not yet updated) is
/// completed by the next run, which writes only what is missing.
#[tokio::test]
async fn an_interrupted_run_is_completed() {
    use att2ref::rewrite::{MigrateOptions, plan};
    use std::sync::Arc;

    let registry = TestRegistry::distribution();
    let scenario = demo::demo().unwrap();
    let repo = registry.repository("killed/app");
    scenario.repo.push_to(&repo).await.unwrap();

    let pem = std::fs::read(rsa_key()).unwrap();
    let policy = att2ref::verification::Policy::new()
        .with_key(att2ref::verification::PublicKey::from_pem(&pem).unwrap())
        .insecure_ignore_tlog(true);
    let verifier = Arc::new(att2ref::verification::Verifier::new(policy).unwrap());
    let prepared = plan::plan_image(&repo, &scenario.image, &verifier, &MigrateOptions::default()).await.unwrap();
    assert_eq!(prepared.pending.len(), 2);
    let first = &prepared.pending[0].referrer;
    for blob in &first.blobs {
        repo.put_blob(blob.bytes.clone()).await.unwrap();
    }
    repo.put_manifest(first.manifest.bytes.clone(), "application/vnd.oci.image.manifest.v1+json", None).await.unwrap();
    assert!(repo.get_manifest(&scenario.image.referrers_tag()).await.unwrap().is_none(), "killed before the index");

    let (run, report) = migrate(&format!("{}/killed/app@{}", registry.host, scenario.image), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(outcome(&report), "migrated");
    let first_size = first.manifest.bytes.len() as u64 + first.blobs.iter().map(|b| b.bytes.len() as u64).sum::<u64>();
    let full: u64 = prepared
        .pending
        .iter()
        .map(|p| {
            p.referrer.manifest.bytes.len() as u64 + p.referrer.blobs.iter().map(|b| b.bytes.len() as u64).sum::<u64>()
        })
        .sum();
    let written = report["images"][0]["bytes_written"].as_u64().unwrap();
    assert!(written < full - first_size + 4096, "only the missing referrer and the index: {written}");
    let index = repo.get_manifest(&scenario.image.referrers_tag()).await.unwrap().unwrap();
    let Manifest::Index(index) = index.manifest else { panic!("index") };
    assert_eq!(index.manifests.len(), 2);
}

/// With a key that signed nothing here, the image is blocked (exit 1) with each layer's reason — not
/// merely skipped for its `.sig` — and nothing is written.
#[test]
fn wrong_key_blocks_the_image() {
    let scenario = demo::demo().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let repo = rt.block_on(demo::write_layout(&scenario, dir.path())).unwrap();
    let target = format!("ocidir://{}@{}", dir.path().display(), scenario.image);
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/ed25519.pub.pem");
    let run = att2ref(&["migrate", &target, "--key", key.to_str().unwrap(), "--insecure-ignore-tlog", "-o", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    assert_valid("migrate-report.schema.json", &report);
    assert_eq!(outcome(&report), "blocked");
    let reasons = report["images"][0]["reasons"].as_array().unwrap();
    assert!(reasons[0].as_str().unwrap().starts_with("layer 0 ("), "{reasons:?}");
    assert!(reasons[0].as_str().unwrap().contains("the signature did not verify"), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.as_str().unwrap().contains("legacy .sig layer 0 does not verify")));
    assert_eq!(report["images"][0]["plan"]["totals"]["blocked"], 2, "the plan shows what is blocked");
    assert!(rt.block_on(repo.referrers(&scenario.image, None)).unwrap().descriptors.is_empty());
    assert!(run.stderr.contains("blocked"), "{}", run.stderr);
}

/// A migrate process killed (SIGKILL) at several points of its run: each rerun converges to the same
/// final state as an uninterrupted run — every referrer listed once, legacy data untouched.
///
/// The kill points are fractions of how long a clean run took here, so a slow or loaded machine moves
/// them along with the run. A run that ended before its kill is not counted as killed (its exit status
/// says so: only a process still running dies by SIGKILL); the test fails unless most kills hit a
/// running process.
#[tokio::test]
async fn killed_runs_converge_on_rerun() {
    use std::os::unix::process::ExitStatusExt;
    const SIGKILL: i32 = 9;

    let scenario = demo::demo().unwrap();
    // The state a clean run leaves, to compare with, and how long it takes.
    let clean = TestRegistry::distribution();
    let clean_repo = clean.repository("kill/app");
    scenario.repo.push_to(&clean_repo).await.unwrap();
    let started = std::time::Instant::now();
    let (run, _) = migrate(&format!("{}/kill/app@{}", clean.host, scenario.image), &[]);
    let clean_run = started.elapsed();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let expected = clean_repo.get_manifest(&scenario.image.referrers_tag()).await.unwrap().unwrap().bytes;

    let key = rsa_key();
    let bin = assert_cmd::cargo::cargo_bin("att2ref");
    let percents = [0u32, 10, 25, 40, 60, 80];
    let mut killed_running = Vec::new();
    let mut ended_first = Vec::new();
    for percent in percents {
        let delay = clean_run * percent / 100;
        let registry = TestRegistry::distribution();
        let repo = registry.repository("kill/app");
        scenario.repo.push_to(&repo).await.unwrap();
        let image = format!("{}/kill/app@{}", registry.host, scenario.image);
        let mut child = std::process::Command::new(&bin)
            .args(["migrate", "--plain-http", &image, "--key", &key, "--insecure-ignore-tlog", "-q"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let running = child.try_wait().unwrap().is_none();
        let _ = child.kill(); // SIGKILL on Unix (a no-op on a run that has ended)
        let status = child.wait().unwrap();
        // Both: still running just before, and dead by the signal (it did not exit on its own in between).
        if running && status.signal() == Some(SIGKILL) {
            killed_running.push(percent);
        } else {
            assert_eq!(status.code(), Some(0), "{percent}% ({delay:?}): a run that ended before its kill succeeds");
            ended_first.push(percent);
        }

        let (run, report) = migrate(&image, &[]);
        assert_eq!(run.code, 0, "rerun after a kill at {percent}% ({delay:?}): {}", run.stderr);
        assert!(["migrated", "already-migrated"].contains(&outcome(&report)), "{report:#}");
        let index = repo.get_manifest(&scenario.image.referrers_tag()).await.unwrap().unwrap();
        assert_eq!(index.bytes, expected, "kill at {percent}% ({delay:?}): the index differs from a clean run's");
        assert_eq!(
            repo.head_manifest(&scenario.image.cosign_tag("att")).await.unwrap().unwrap().digest,
            att_manifest(&scenario),
            "legacy .att untouched"
        );
    }
    // 0% always hits a running process but proves little; the others are what the test is about. Runs
    // vary, so the latest points may miss; the early ones must not.
    let mid_run = killed_running.iter().filter(|p| **p > 0).count();
    eprintln!("clean run {clean_run:?}; killed running at {killed_running:?}%, ended first at {ended_first:?}%");
    assert!(
        mid_run >= 3,
        "only {mid_run} kill(s) after 0% hit a running process (clean run {clean_run:?}; killed at {killed_running:?}%, \
         ended first at {ended_first:?}%)"
    );
}

/// An envelope with two signatures by two trusted keys becomes two bundles (a bundle holds exactly one).
#[tokio::test]
async fn each_trusted_signature_of_an_envelope_becomes_its_own_referrer() {
    use att2ref::demo::TestKey;
    use att2ref::model::dsse::{decode_base64_any, encode_base64, pae};
    use att2ref::model::media_type as mt;
    use att2ref::model::oci::Descriptor;

    let tmp = tempfile::tempdir().unwrap();
    let scenario = demo::demo().unwrap();
    let repo = demo::write_layout(&scenario, tmp.path()).await.unwrap();
    let tag = scenario.image.cosign_tag("att");
    let att = repo.get_manifest(&tag).await.unwrap().unwrap();
    let mut manifest: Value = serde_json::from_slice(&att.bytes).unwrap();
    let layer: Descriptor = serde_json::from_value(manifest["layers"][1].clone()).unwrap();
    let mut envelope: Value = serde_json::from_slice(&repo.get_blob(&layer, 1 << 20).await.unwrap()).unwrap();
    let payload = decode_base64_any(envelope["payload"].as_str().unwrap()).unwrap();
    let second = TestKey::Ed25519.signer().sign(&pae(mt::IN_TOTO, &payload)).unwrap();
    envelope["signatures"].as_array_mut().unwrap().push(json!({"keyid": "", "sig": encode_base64(&second)}));
    let bytes = serde_json::to_vec(&envelope).unwrap();
    let digest = repo.put_blob(bytes.clone().into()).await.unwrap();
    manifest["layers"][1]["digest"] = json!(digest.to_string());
    manifest["layers"][1]["size"] = json!(bytes.len());
    repo.put_manifest(serde_json::to_vec(&manifest).unwrap().into(), mt::OCI_MANIFEST, Some(&tag)).await.unwrap();

    let ed25519 = tmp.path().join("ed25519.pub.pem");
    std::fs::write(&ed25519, TestKey::Ed25519.public_pem()).unwrap();
    let target = format!("ocidir://{}@{}", tmp.path().display(), scenario.image);
    let (run, report) = migrate(&target, &["--key", ed25519.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(outcome(&report), "migrated", "{report:#}");
    let inspect = att2ref(&["inspect", &target, "-o", "json"]).json();
    let entries = inspect["images"][0]["referrers"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "layer 0 once, layer 1 once per signature: {inspect:#}");

    // With only one of the two keys trusted, the envelope's other signature is not verified: all or nothing.
    let tmp2 = tempfile::tempdir().unwrap();
    let repo2 = demo::write_layout(&scenario, tmp2.path()).await.unwrap();
    repo2.put_blob(bytes.clone().into()).await.unwrap();
    repo2.put_manifest(serde_json::to_vec(&manifest).unwrap().into(), mt::OCI_MANIFEST, Some(&tag)).await.unwrap();
    let (run, report) = migrate(&format!("ocidir://{}@{}", tmp2.path().display(), scenario.image), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(outcome(&report), "blocked", "{report:#}");
}
