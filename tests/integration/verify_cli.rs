//! `att2ref verify` end to end: real registries, the article's real store, generated keyless stores.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cli::{Run, att2ref};
use crate::corpus::{self, ARTICLE_IMAGE, WRITER_IMAGE};
use crate::registries::TestRegistry;
use crate::schema::assert_valid;

fn article_key() -> String {
    corpus::path("toddysm-cssc-pipeline/derived/kms-rsa4096-public-key.recovered.pem").display().to_string()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn json(run: &Run) -> Value {
    let report = run.json();
    assert_valid("verify.schema.json", &report);
    report
}

fn reasons(report: &Value) -> Vec<String> {
    report["images"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["failure"]["reason"].as_str().unwrap_or("verified").to_owned())
        .collect()
}

async fn article_store_verifies(registry: TestRegistry) {
    corpus::article_store("flasksample").push_to(&registry.repository("flasksample")).await.unwrap();
    let image = format!("{}/flasksample@{ARTICLE_IMAGE}", registry.host);
    let key = article_key();

    let run = att2ref(&["verify", "--plain-http", &image, "--key", &key, "--insecure-ignore-tlog", "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = json(&run);
    let results = report["images"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "two .att layers and one .sig layer");
    for r in results {
        assert_eq!(r["verified"], true);
        assert_eq!(r["verification"]["scheme"]["algorithm"], "rsa-4096");
        assert_eq!(r["verification"]["scheme"]["rsaPadding"], "pkcs1v15");
        assert_eq!(r["verification"]["log"]["status"], "skipped", "the result records that no log was checked");
        assert_eq!(r["verification"]["subject"]["digest"], ARTICLE_IMAGE);
    }
    let sources: Vec<&str> = results.iter().map(|r| r["location"]["source"].as_str().unwrap()).collect();
    assert_eq!(sources, ["legacy-attestation", "legacy-attestation", "legacy-signature"]);

    // As in cosign ≥ 2, a key-signed attestation with no log entry verifies only with the explicit flag.
    let run = att2ref(&["verify", "--plain-http", &image, "--key", &key, "-o", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(reasons(&json(&run)), ["no-log-entry"; 3]);

    // Human output.
    let run = att2ref(&["verify", "--plain-http", &image, "--key", &key, "--insecure-ignore-tlog", "--type", "custom"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("2 verified, 0 failed"), "{}", run.stdout);
    assert!(run.stdout.contains("skipped .sig layer 0"), "{}", run.stdout);
}

#[tokio::test]
async fn article_store_verifies_on_distribution() {
    article_store_verifies(TestRegistry::distribution()).await;
}

#[tokio::test]
async fn article_store_verifies_on_ferro() {
    article_store_verifies(TestRegistry::ferro()).await;
}

#[tokio::test]
async fn wrong_key_fails_each_attestation() {
    let registry = TestRegistry::distribution();
    corpus::article_store("flasksample").push_to(&registry.repository("flasksample")).await.unwrap();
    let other = fixtures().join("keys/rsa-4096.pub.pem");
    let run = att2ref(&[
        "verify",
        "--plain-http",
        &format!("{}/flasksample@{ARTICLE_IMAGE}", registry.host),
        "--key",
        other.to_str().unwrap(),
        "--insecure-ignore-tlog",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(reasons(&json(&run)), ["signature-invalid"; 3]);
    assert!(run.stderr.contains("3 of 3 failed"), "{}", run.stderr);
}

#[tokio::test]
async fn sigstore_oci_writer_bundle_and_legacy_layer_verify() {
    for registry in [TestRegistry::distribution(), TestRegistry::ferro()] {
        let store = corpus::sigstore_oci_writer_store("demo/hello", !registry.has_referrers_api());
        store.push_to(&registry.repository("demo/hello")).await.unwrap();
        let key = corpus::path("sigstore-oci-writer/ecdsa-p256.pub.pem");
        let run = att2ref(&[
            "verify",
            "--plain-http",
            &format!("{}/demo/hello@{WRITER_IMAGE}", registry.host),
            "--key",
            key.to_str().unwrap(),
            "--insecure-ignore-tlog",
            "--type",
            "slsaprovenance1",
            "-o",
            "json",
        ]);
        assert_eq!(run.code, 0, "{}: {}", registry.kind_name(), run.stderr);
        let report = json(&run);
        let results = report["images"][0]["results"].as_array().unwrap();
        let sources: Vec<&str> = results.iter().map(|r| r["location"]["source"].as_str().unwrap()).collect();
        assert_eq!(sources, ["legacy-attestation", "referrer"], "{}", registry.kind_name());
        assert!(results.iter().all(|r| r["verification"]["scheme"]["algorithm"] == "ecdsa-p256"));
        assert_eq!(results[1]["verification"]["entity"], "bundle");
    }
}

#[test]
fn keyless_fixture_verifies_offline_against_its_trusted_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("trusted_root.json");
    std::fs::write(&root, att2ref::demo::trusted_root_json().unwrap()).unwrap();
    let scenario = att2ref::demo::keyless().unwrap();
    let target = format!("ocidir://{}@{}", fixtures().join("layouts/keyless").display(), scenario.image);
    let root = root.to_str().unwrap();

    let run = att2ref(&[
        "verify",
        &target,
        "--trusted-root",
        root,
        "--certificate-identity-regexp",
        r"example\.test",
        "--certificate-oidc-issuer-regexp",
        r"^https://(oidc|ci-token)\.example\.test$",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = json(&run);
    for r in report["images"][0]["results"].as_array().unwrap() {
        assert_eq!(r["verification"]["signer"]["type"], "certificate");
        assert_eq!(r["verification"]["log"]["status"], "verified");
        assert_eq!(r["verification"]["log"]["entries"][0]["promiseVerified"], true);
    }

    let run = att2ref(&[
        "verify",
        &target,
        "--trusted-root",
        root,
        "--type",
        "custom",
        "--certificate-identity",
        "someone-else@example.test",
        "--certificate-oidc-issuer",
        "https://oidc.example.test",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(reasons(&json(&run)).iter().all(|r| r == "identity-mismatch"), "{}", run.stdout);

    let run = att2ref(&[
        "verify",
        &target,
        "--trusted-root",
        root,
        "--type",
        "custom",
        "--certificate-identity",
        "keyless-signer@example.test",
        "--certificate-oidc-issuer",
        "https://other.example.test",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(reasons(&json(&run)).iter().all(|r| r == "issuer-mismatch"), "{}", run.stdout);
}

#[test]
fn usage_errors_are_could_not_check() {
    let target = format!("ocidir://{}:latest", fixtures().join("layouts/demo").display());
    let run = att2ref(&["verify", &target]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--key") && run.stderr.contains("--trusted-root"), "{}", run.stderr);

    let run = att2ref(&["verify", &target, "--key", "awskms:///arn:aws:kms:us-west-2:1:key/abc"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("cosign public-key"), "{}", run.stderr);

    let run = att2ref(&[
        "verify",
        &target,
        "--certificate-identity",
        "a@b",
        "--certificate-oidc-issuer",
        "https://x",
        "--key",
        "missing.pem",
    ]);
    assert_eq!(run.code, 2);
}

/// A validly signed envelope whose payloadType is not in-toto, carrying text that parses as a statement,
/// with an unsigned annotation claiming SLSA: neither `--type` nor a plain verify may accept it.
#[tokio::test]
async fn a_non_in_toto_payload_never_passes_as_an_attestation() {
    use att2ref::demo::TestKey;
    use att2ref::model::digest::Digest;
    use att2ref::model::dsse::{encode_base64, pae};
    use att2ref::model::media_type as mt;
    use att2ref::store::Repository;
    use att2ref::store::layout::LayoutRepository;
    use serde_json::json;

    let tmp = tempfile::tempdir().unwrap();
    let repo = LayoutRepository::create(tmp.path(), att2ref::Limits::default()).unwrap();
    let config = repo.put_blob(b"{}".to_vec().into()).await.unwrap();
    let image = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": mt::OCI_MANIFEST,
        "config": {"mediaType": mt::OCI_CONFIG, "digest": config.to_string(), "size": 2}, "layers": []}))
    .unwrap();
    let image_digest = Digest::sha256(&image);
    repo.put_manifest(image.clone().into(), mt::OCI_MANIFEST, Some("v1")).await.unwrap();

    let statement = serde_json::to_vec(&json!({"_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "x", "digest": {"sha256": image_digest.hex()}}],
        "predicateType": "https://cosign.sigstore.dev/attestation/v1", "predicate": {}}))
    .unwrap();
    let key = TestKey::Ed25519;
    let sig = key.signer().sign(&pae("text/plain", &statement)).unwrap();
    let hint = encode_base64(&Digest::sha256(&key.public_spki_der()).raw());
    let bundle = serde_json::to_vec(&json!({"mediaType": mt::BUNDLE_V03,
        "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": []},
        "dsseEnvelope": {"payload": encode_base64(&statement), "payloadType": "text/plain",
                         "signatures": [{"sig": encode_base64(&sig)}]}}))
    .unwrap();
    let bundle_digest = repo.put_blob(bundle.clone().into()).await.unwrap();
    let empty = Digest::sha256(b"{}");
    let annotations = json!({"dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": "https://slsa.dev/provenance/v0.2"});
    let referrer = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": mt::OCI_MANIFEST,
        "artifactType": mt::BUNDLE_V03,
        "config": {"mediaType": mt::OCI_EMPTY, "digest": empty.to_string(), "size": 2},
        "layers": [{"mediaType": mt::BUNDLE_V03, "digest": bundle_digest.to_string(), "size": bundle.len()}],
        "subject": {"mediaType": mt::OCI_MANIFEST, "digest": image_digest.to_string(), "size": image.len()},
        "annotations": annotations}))
    .unwrap();
    let referrer_digest = Digest::sha256(&referrer);
    repo.put_manifest(referrer.clone().into(), mt::OCI_MANIFEST, None).await.unwrap();
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": mt::OCI_INDEX, "manifests": [
        {"mediaType": mt::OCI_MANIFEST, "digest": referrer_digest.to_string(), "size": referrer.len(),
         "artifactType": mt::BUNDLE_V03, "annotations": annotations}]}))
    .unwrap();
    repo.put_manifest(index.into(), mt::OCI_INDEX, Some(&image_digest.referrers_tag())).await.unwrap();

    let target = format!("ocidir://{}:v1", tmp.path().display());
    let pem = tmp.path().join("key.pem");
    std::fs::write(&pem, key.public_pem()).unwrap();
    let pem = pem.to_str().unwrap();
    let run =
        att2ref(&["verify", &target, "--key", pem, "--insecure-ignore-tlog", "--type", "slsaprovenance", "-o", "json"]);
    assert_eq!(run.code, 1, "the unsigned annotation must not select it: {}", run.stdout);
    assert_eq!(json(&run)["images"][0]["results"].as_array().unwrap().len(), 0);

    let run = att2ref(&["verify", &target, "--key", pem, "--insecure-ignore-tlog", "-o", "json"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(reasons(&json(&run)), ["malformed"]);
}

/// distribution's own record of a manifest revision in a repository, read from its storage: whether the
/// registry holds the image manifest, independently of what att2ref asks over HTTP.
fn distribution_has_manifest(registry: &TestRegistry, repository: &str, digest: &str) -> bool {
    let hex = digest.strip_prefix("sha256:").unwrap();
    registry
        .storage_dir()
        .join("docker/registry/v2/repositories")
        .join(repository)
        .join("_manifests/revisions/sha256")
        .join(hex)
        .join("link")
        .is_file()
}

const ABSENT_WARNING: &str =
    "subject manifest absent: what is verified is attached to a digest the registry no longer serves (orphaned)";

/// The article's image manifest was never published, while its `.att` and `.sig` are there: they still
/// verify with exit 0 (as in cosign, and as the README's exit codes say), but stderr warns and the JSON
/// says `subject.present: false`. The demo store has its image: no warning, `subject.present: true`.
#[tokio::test]
async fn absent_subject_verifies_with_a_warning_on_distribution() {
    let registry = TestRegistry::distribution();
    corpus::article_store("flasksample").push_to(&registry.repository("flasksample")).await.unwrap();
    assert!(!distribution_has_manifest(&registry, "flasksample", ARTICLE_IMAGE), "the precondition: no image manifest");
    let image = format!("{}/flasksample@{ARTICLE_IMAGE}", registry.host);
    let key = article_key();

    let run = att2ref(&["verify", "--plain-http", &image, "--key", &key, "--insecure-ignore-tlog", "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, format!("warning: {image}: {ABSENT_WARNING}\n"));
    let report = json(&run);
    assert_eq!(report["images"][0]["subject"], serde_json::json!({"present": false}));
    assert_eq!(report["images"][0]["results"].as_array().unwrap().len(), 3);

    // Text output warns the same way, once.
    let run = att2ref(&["verify", "--plain-http", &image, "--key", &key, "--insecure-ignore-tlog"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, format!("warning: {image}: {ABSENT_WARNING}\n"));
    assert!(run.stdout.contains("3 verified, 0 failed"), "{}", run.stdout);

    // A failed check with an absent subject: still exit 1, and still the warning.
    let run = att2ref(&["verify", "--plain-http", &image, "--key", &key, "-o", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.starts_with(&format!("warning: {image}: {ABSENT_WARNING}\n")), "{}", run.stderr);
    assert_eq!(json(&run)["images"][0]["subject"]["present"], false);

    // Subject present, by digest and by tag.
    let scenario = att2ref::demo::demo().unwrap();
    scenario.repo.push_to(&registry.repository("demo/app")).await.unwrap();
    let digest = scenario.image.to_string();
    assert!(distribution_has_manifest(&registry, "demo/app", &digest), "the precondition: the image manifest is there");
    let pushed = scenario.repo.manifests.iter().find(|m| m.digest == scenario.image).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let pem = tmp.path().join("key.pem");
    std::fs::write(&pem, att2ref::demo::TestKey::Rsa4096.public_pem()).unwrap(); // TEST-ONLY key
    for target in [format!("{}/demo/app@{digest}", registry.host), format!("{}/demo/app:v1", registry.host)] {
        let run = att2ref(&[
            "verify",
            "--plain-http",
            &target,
            "--key",
            pem.to_str().unwrap(),
            "--insecure-ignore-tlog",
            "-o",
            "json",
        ]);
        assert_eq!(run.code, 0, "{target}: {}", run.stderr);
        assert_eq!(run.stderr, "", "{target}: no warning");
        let report = json(&run);
        assert_eq!(report["images"][0]["digest"], digest.as_str());
        assert_eq!(
            report["images"][0]["subject"],
            serde_json::json!({"present": true, "mediaType": pushed.media_type, "size": pushed.bytes.len()}),
            "{target}"
        );
        assert_eq!(report["images"][0]["results"].as_array().unwrap().len(), 3, "{target}");
    }
}

/// The legacy layers of one image are held together while they are verified or converted: over
/// `--max-legacy-size`, `verify` (the article's `.att` and `.sig`, about 2.2 MB) and `migrate` (the
/// demo's, a few kB) refuse the image before reading a layer, name it and the reason, exit 1 (the data
/// failed a check), and write nothing; under it, both succeed.
#[tokio::test]
async fn legacy_layers_over_the_image_budget_are_refused_by_verify_and_migrate() {
    use att2ref::store::Repository;
    use att2ref::store::layout::LayoutRepository;
    let dir = tempfile::tempdir().unwrap();
    let layout = |name: &str| LayoutRepository::create(dir.path().join(name), att2ref::Limits::default()).unwrap();
    let target = |name: &str, image: &str| format!("ocidir://{}@{image}", dir.path().join(name).display());
    corpus::article_store("flasksample").push_to(&layout("article")).await.unwrap();
    let scenario = att2ref::demo::demo().unwrap();
    let demo = scenario.image.to_string();
    let (refused, fitting) = (layout("refused"), layout("fitting"));
    scenario.repo.push_to(&refused).await.unwrap();
    scenario.repo.push_to(&fitting).await.unwrap();
    let (article_key, demo_key) = (article_key(), fixtures().join("keys/rsa-4096.pub.pem").display().to_string());
    let run = |command: &str, target: &str, key: &str, limit: &str| {
        att2ref(&[command, target, "--key", key, "--insecure-ignore-tlog", "-o", "json", "--max-legacy-size", limit])
    };
    let refusal = |run: Run, command: &str, bytes: u64, image: &str| {
        assert_eq!(run.code, 1, "{command}: {}\n{}", run.stdout, run.stderr);
        let out = format!("{}{}", run.stdout, run.stderr);
        assert!(out.contains(&format!("more than the limit of {bytes} (--max-legacy-size)")), "{command}: {out}");
        assert!(out.contains(image), "{command}: names the image: {out}");
    };

    let article = target("article", ARTICLE_IMAGE);
    assert_eq!(run("verify", &article, &article_key, "64MiB").code, 0);
    refusal(run("verify", &article, &article_key, "1MiB"), "verify", 1 << 20, ARTICLE_IMAGE);

    assert_eq!(run("migrate", &target("fitting", &demo), &demo_key, "64MiB").code, 0);
    refusal(run("migrate", &target("refused", &demo), &demo_key, "1K"), "migrate", 1 << 10, &demo);
    assert!(refused.referrers(&scenario.image, None).await.unwrap().descriptors.is_empty(), "nothing written");
    assert_eq!(fitting.referrers(&scenario.image, None).await.unwrap().descriptors.len(), 2);
}
