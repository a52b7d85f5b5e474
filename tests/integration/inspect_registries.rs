//! `inspect` against real registries: CNCF distribution 2.8.2 (tag schema) and ferro-oci-server
//! (referrers API), holding the article's real store and what @sigstore/oci wrote.

use att2ref::store::Repository;
use serde_json::{Value, json};

use crate::cli::att2ref;
use crate::corpus::{self, ARTICLE_IMAGE, WRITER_IMAGE};
use crate::registries::TestRegistry;
use crate::schema::assert_valid;

fn inspect(registry: &TestRegistry, image: &str) -> Value {
    inspect_with(registry, image, &[])
}

fn inspect_with(registry: &TestRegistry, image: &str, flags: &[&str]) -> Value {
    let mut args = vec!["inspect", "--plain-http", image, "-o", "json"];
    args.extend_from_slice(flags);
    let run = att2ref(&args);
    assert_eq!(run.code, 0, "inspect {image} on {} failed:\n{}", registry.kind_name(), run.stderr);
    let report = run.json();
    assert_valid("inspect.schema.json", &report);
    report
}

async fn article_store_is_reported(registry: TestRegistry) {
    let repo = registry.repository("flasksample");
    corpus::article_store("flasksample").push_to(&repo).await.unwrap();
    let image = format!("{}/flasksample@{ARTICLE_IMAGE}", registry.host);
    let full = inspect_with(&registry, &image, &["--full"]);
    let image_report = &full["images"][0];
    assert_eq!(image_report["digest"], ARTICLE_IMAGE);
    assert_eq!(image_report["subject"]["present"], false, "the article's image manifest was never published");
    assert!(image_report["anomalies"].as_array().unwrap().iter().any(|a| a["code"] == "subject-missing"));

    let att = &image_report["legacy"]["attestations"];
    let layers = att["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0]["size"], 2_225_736);
    assert_eq!(layers[1]["size"], 2_392);
    for layer in layers {
        assert_eq!(layer["read"], "whole");
        assert_eq!(layer["predicateType"], "cosign.sigstore.dev/attestation/v1");
        assert_eq!(layer["predicateShortName"], "custom");
        assert_eq!(layer["statementType"], "https://in-toto.io/Statement/v0.1");
        assert_eq!(layer["signer"], "key");
        assert_eq!(layer["subjectMatches"], true);
        assert!(layer.get("predicateTypeAnnotation").is_none(), "cosign 1.x wrote no predicateType annotation");
        assert!(layer.get("logEntry").is_none(), "signed with a KMS key, never logged");
    }
    assert_eq!(
        layers[0]["hint"],
        serde_json::json!({"id": "spdx-2.2", "label": "looks like SPDX-2.2", "unsigned": true})
    );
    assert!(layers[1]["hint"]["id"].as_str().unwrap().starts_with("slsa-provenance-v0.2"), "{}", layers[1]["hint"]);
    assert_eq!(layers[1]["hint"]["unsigned"], true);
    assert_eq!(att["configCreated"], "2022-10-13T16:11:27.193412941-07:00");

    let sig = &image_report["legacy"]["signatures"]["layers"][0];
    assert_eq!(sig["content"], "simple-signing");
    assert_eq!(sig["size"], 272);
    assert_eq!(sig["signatures"], 1);
    assert_eq!(sig["subjectMatches"], true);
    let expected = if registry.has_referrers_api() { "api" } else { "tag-schema" };
    assert_eq!(image_report["referrers"]["discovery"], expected);
    assert_eq!(image_report["referrers"]["entries"].as_array().unwrap().len(), 0);

    // By default the SBOM layer is known from its first 2 KiB: the same type and hint, marked as such, and
    // nothing that needs the whole statement. The small SLSA layer is read whole as with --full. Everything
    // else in the report is the same.
    let default = inspect(&registry, &image);
    let layers = default["images"][0]["legacy"]["attestations"]["layers"].as_array().unwrap();
    let sbom = layers[0].as_object().unwrap();
    let mut keys: Vec<&str> = sbom.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "content",
            "digest",
            "hint",
            "index",
            "mediaType",
            "predicateShortName",
            "predicateType",
            "prefixBytes",
            "read",
            "rfc3161Timestamp",
            "signatures",
            "signer",
            "size"
        ]
    );
    assert_eq!(
        (&sbom["read"], &sbom["prefixBytes"], &sbom["predicateType"], &sbom["signer"], &sbom["content"]),
        (
            &json!("prefix"),
            &json!(2048),
            &json!("cosign.sigstore.dev/attestation/v1"),
            &json!("key"),
            &json!("dsse-envelope")
        )
    );
    assert_eq!(
        sbom["hint"],
        json!({"id": "spdx-2.2", "label": "looks like SPDX-2.2", "unsigned": true, "fromPrefix": true})
    );
    assert_eq!(layers[1], full["images"][0]["legacy"]["attestations"]["layers"][1]);
    let mut rest = default.clone();
    let mut rest_full = full.clone();
    for report in [&mut rest, &mut rest_full] {
        report["images"][0]["legacy"]["attestations"]["layers"][0] = Value::Null;
    }
    assert_eq!(rest, rest_full, "only the SBOM layer's entry differs");
}

#[tokio::test]
async fn article_store_on_distribution() {
    article_store_is_reported(TestRegistry::distribution()).await;
}

#[tokio::test]
async fn article_store_on_ferro() {
    article_store_is_reported(TestRegistry::ferro()).await;
}

async fn sigstore_oci_writer_store_is_reported(registry: TestRegistry) {
    let repo = registry.repository("demo/hello");
    corpus::sigstore_oci_writer_store("demo/hello", !registry.has_referrers_api()).push_to(&repo).await.unwrap();
    let report = inspect(&registry, &format!("{}/demo/hello@{WRITER_IMAGE}", registry.host));
    let image = &report["images"][0];
    assert_eq!(image["subject"]["present"], false);
    let entries = image["referrers"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{report:#}");
    let r = &entries[0];
    assert_eq!(r["format"], "sigstore-bundle");
    assert_eq!(r["bundleVersion"], "v0.3");
    assert_eq!(r["bundleContent"], "dsse-envelope");
    assert_eq!(r["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(r["predicateTypeAnnotation"], "https://slsa.dev/provenance/v1");
    assert_eq!(r["signer"], "key");
    assert_eq!(r["logEntries"], 0);
    assert_eq!(r["layersSize"], 1459);
    assert_eq!(r["writerHint"], "@sigstore/oci");
    let att = &image["legacy"]["attestations"]["layers"][0];
    assert_eq!(att["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(att["predicateTypeAnnotation"], "https://slsa.dev/provenance/v1");
    assert_eq!(att["statementType"], "https://in-toto.io/Statement/v1");
    assert_eq!(att["size"], 1272);
}

#[tokio::test]
async fn sigstore_oci_writer_store_on_distribution() {
    sigstore_oci_writer_store_is_reported(TestRegistry::distribution()).await;
}

#[tokio::test]
async fn sigstore_oci_writer_store_on_ferro() {
    sigstore_oci_writer_store_is_reported(TestRegistry::ferro()).await;
}

#[tokio::test]
async fn truncated_envelope_is_a_clear_error() {
    let registry = TestRegistry::distribution();
    let repo = registry.repository("broken");
    let mut store = corpus::article_store("broken");
    // Replace the SLSA layer by a truncated copy (a valid blob whose digest matches its truncated bytes).
    let full = corpus::read(
        "toddysm-cssc-pipeline/sigstore-test/sigstore-attestation/ff626be9ff3158e9d2118072cd24481d990a5145d10109affec6064423d74cc4.tar.gz",
    );
    let truncated = full[..full.len() / 2].to_vec();
    let digest = store.add_blob(truncated.clone());
    let att_tag = ARTICLE_IMAGE.parse::<att2ref::model::digest::Digest>().unwrap().cosign_tag("att");
    let original = store.manifest_by_tag(&att_tag).unwrap().bytes.clone();
    let text = String::from_utf8(original.to_vec())
        .unwrap()
        .replace("sha256:ff626be9ff3158e9d2118072cd24481d990a5145d10109affec6064423d74cc4", &digest.to_string())
        .replace("\"size\":2392", &format!("\"size\":{}", truncated.len()));
    store.add_manifest(text.into_bytes(), att2ref::model::media_type::OCI_MANIFEST, &[att_tag]);
    store.push_to(&repo).await.unwrap();

    let run = att2ref(&["inspect", "--plain-http", &format!("{}/broken@{ARTICLE_IMAGE}", registry.host), "-o", "json"]);
    assert_eq!(run.code, 1, "malformed data is exit 1\n{}", run.stderr);
    let report = run.json();
    assert_valid("inspect.schema.json", &report);
    assert!(report["images"].as_array().unwrap().is_empty());
    let message = report["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(ARTICLE_IMAGE) && message.contains("layer 1") && message.contains("JSON"), "{message}");
    assert_eq!(report["errors"][0]["errorKind"], "invalid-format");
}

#[tokio::test]
async fn unknown_tag_is_not_an_empty_answer() {
    let registry = TestRegistry::distribution();
    let run = att2ref(&["inspect", "--plain-http", &format!("{}/nothing:here", registry.host)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("nothing:here") || run.stderr.contains("\"here\""), "{}", run.stderr);
    assert!(run.stdout.trim().is_empty() || run.stdout.contains("nothing found"));
    let _ = registry.repository("nothing").list_tags().await;
}

/// `oras attach --artifact-type application/vnd.in-toto+json` is often used with a plain, unsigned
/// statement, not a DSSE envelope. That referrer is another tool's artifact, not damage: `inspect` shows it
/// with an anomaly and reports the rest of the image (ferro-oci-server: the referrers API lists it).
#[tokio::test]
async fn a_dsse_typed_referrer_holding_a_plain_statement_is_an_anomaly_not_a_failure() {
    use att2ref::model::digest::Digest;
    use att2ref::model::media_type as mt;

    let registry = TestRegistry::ferro();
    let scenario = att2ref::demo::demo().unwrap();
    let repo = registry.repository("oras/app");
    scenario.repo.push_to(&repo).await.unwrap();
    let subject = repo.head_manifest(&scenario.image.to_string()).await.unwrap().unwrap();
    let statement = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"https://example.test/p","predicate":{}}"#;
    let layer = repo.put_blob(bytes::Bytes::from_static(statement)).await.unwrap();
    let config = repo.put_blob(bytes::Bytes::from_static(b"{}")).await.unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "artifactType": mt::IN_TOTO,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config.to_string(), "size": 2},
        "layers": [{"mediaType": mt::IN_TOTO, "digest": layer.to_string(), "size": statement.len()}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest.to_string(), "size": subject.size},
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let referrer = Digest::sha256(&bytes);
    repo.put_manifest(bytes.into(), mt::OCI_MANIFEST, None).await.unwrap();

    let report = inspect(&registry, &format!("{}/oras/app@{}", registry.host, scenario.image));
    let image = &report["images"][0];
    let entries = image["referrers"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{report:#}");
    assert_eq!(entries[0]["digest"], referrer.to_string(), "{report:#}");
    let anomalies: Vec<&Value> =
        image["anomalies"].as_array().unwrap().iter().filter(|a| a["code"] == "unreadable-referrer-content").collect();
    assert_eq!(anomalies.len(), 1, "{report:#}");
    assert_eq!(image["legacy"]["attestations"]["layers"].as_array().map(Vec::len), Some(2));
}
