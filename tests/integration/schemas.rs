//! The format schemas in `schemas/` (legacy DSSE layer, simple-signing payload, legacy Rekor bundle
//! annotation, referrer manifest) against real data: the article's blobs, cosign's keyless output,
//! third-party writers' manifests, and referrers `att2ref migrate` writes. One negative per schema
//! proves each one rejects something.

use std::path::Path;

use serde_json::{Value, json};

use crate::cli::att2ref;
use crate::corpus;
use crate::schema::assert_valid;

fn is_valid(name: &str, instance: &Value) -> bool {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas").join(name);
    let schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema)
        .unwrap_or_else(|e| panic!("{name} is not a valid schema: {e}"))
        .is_valid(instance)
}

fn corpus_json(relative: &str) -> Value {
    serde_json::from_slice(&corpus::read(relative)).unwrap_or_else(|e| panic!("{relative} is not JSON: {e}"))
}

const ARTICLE_LAYERS: [&str; 2] = [
    "toddysm-cssc-pipeline/sigstore-test/sigstore-attestation/c9880779c90158a29f7a69f29c492551261e7a3936247fc75f225171064d6d32.tar.gz",
    "toddysm-cssc-pipeline/sigstore-test/sigstore-attestation/ff626be9ff3158e9d2118072cd24481d990a5145d10109affec6064423d74cc4.tar.gz",
];

#[test]
fn dsse_envelope_schema_accepts_real_layers() {
    for layer in ARTICLE_LAYERS {
        assert_valid("dsse-envelope.schema.json", &corpus_json(layer));
    }
    assert_valid("dsse-envelope.schema.json", &corpus_json("sigstore-oci-writer/legacy-att-layer0-envelope.json"));
    let missing_sig = json!({"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": []});
    assert!(!is_valid("dsse-envelope.schema.json", &missing_sig));
}

#[test]
fn simple_signing_schema_accepts_real_payloads() {
    let blob = "toddysm-cssc-pipeline/sigstore-test/sigstore-signature/09b3e371137191b52fdd07bdf115824b2b297a2003882e68d68d66d0d35fe1fc.tar.gz";
    assert_valid("simple-signing.schema.json", &corpus_json(blob));
    for n in 1..=3 {
        let outputs = corpus_json(&format!(
            "toddysm-cssc-pipeline/sigstore-test/sigstore-ephemeral-keys/flasksample-v{n}-ephemeral-verification.json"
        ));
        for output in outputs.as_array().unwrap() {
            // `cosign verify` prints the payload with verification details merged into `optional`.
            assert_valid("simple-signing.schema.json", output);
        }
    }
    let wrong_type = json!({"critical": {"identity": {"docker-reference": "r"},
        "image": {"docker-manifest-digest": "sha256:00"}, "type": "something else"}, "optional": null});
    assert!(!is_valid("simple-signing.schema.json", &wrong_type));
}

#[test]
fn legacy_rekor_bundle_schema_accepts_real_annotations() {
    let mut seen = 0;
    for n in 1..=3 {
        let outputs = corpus_json(&format!(
            "toddysm-cssc-pipeline/sigstore-test/sigstore-ephemeral-keys/flasksample-v{n}-ephemeral-verification.json"
        ));
        for output in outputs.as_array().unwrap() {
            assert_valid("legacy-rekor-bundle.schema.json", &output["optional"]["Bundle"]);
            seen += 1;
        }
    }
    assert!(seen >= 3, "expected a Rekor bundle in each keyless verification output");
    // The annotation as written in a committed fixture (a JSON string inside the layer annotations).
    let manifest = fixture_blob("keyless", "53a173f25f5fb2ab0f496e0d22ac94076efcf79895f9380f3d9859d66a873293");
    for layer in manifest["layers"].as_array().unwrap() {
        let text = layer["annotations"]["dev.sigstore.cosign/bundle"].as_str().unwrap();
        assert_valid("legacy-rekor-bundle.schema.json", &serde_json::from_str(text).unwrap());
    }
    let hex_log_index = json!({"SignedEntryTimestamp": "AA==", "Payload": {"body": "e30=",
        "integratedTime": 1, "logIndex": "7", "logID": "00"}});
    assert!(!is_valid("legacy-rekor-bundle.schema.json", &hex_log_index));
}

fn fixture_blob(layout: &str, hex: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/layouts").join(layout).join("blobs/sha256").join(hex);
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

#[test]
fn referrer_manifest_schema_accepts_third_party_and_our_referrers() {
    for name in [
        "referrer-manifest-03947ef44bf6.json",
        "referrer-manifest-e54e50cb87bb.json",
        "referrer-manifest-docker-subject.json",
    ] {
        assert_valid("referrer-manifest.schema.json", &corpus_json(&format!("sigstore-oci-writer/{name}")));
    }

    // Migrate a copy of the demo layout in both formats and validate every manifest written.
    for format in ["bundle", "dsse"] {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("demo");
        copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/layouts/demo"), &layout);
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/rsa-4096.pub.pem");
        let target = format!(
            "ocidir://{}@sha256:2c3d4f2de1bc5421b50a64c7b35cccf4edaafd1760c8ca4021cde6e965946d4f",
            layout.display()
        );
        let run = att2ref(&[
            "migrate",
            &target,
            "--key",
            key.to_str().unwrap(),
            "--insecure-ignore-tlog",
            "--format",
            format,
        ]);
        assert_eq!(run.code, 0, "migrate --format {format} failed: {}", run.stderr);
        let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let written: Vec<&Value> =
            index["manifests"].as_array().unwrap().iter().filter(|d| d.get("artifactType").is_some()).collect();
        assert_eq!(written.len(), 2, "--format {format}: two referrers expected in {index}");
        for d in written {
            let hex = d["digest"].as_str().unwrap().trim_start_matches("sha256:");
            let manifest: Value =
                serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()).unwrap();
            assert_valid("referrer-manifest.schema.json", &manifest);
        }
    }

    let mut legacy = fixture_blob("demo", "2ad58a8ff635728901da7c8a92a6da85b6492eda4dc60ba2765e0afe3f70bd0b");
    assert!(!is_valid("referrer-manifest.schema.json", &legacy), "a legacy .att manifest is not a referrer");
    legacy["artifactType"] = json!("application/vnd.dev.sigstore.bundle.v0.3+json");
    assert!(!is_valid("referrer-manifest.schema.json", &legacy), "no subject, image config, two layers");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}
