//! `inspect` on OCI layouts: the committed fixtures, BuildKit indexes, corrupted data.

use std::path::{Path, PathBuf};

use att2ref::demo;
use att2ref::model::digest::Digest;
use att2ref::model::media_type as mt;
use att2ref::store::Repository;
use att2ref::store::layout::LayoutRepository;
use serde_json::{Value, json};

use crate::cli::att2ref;
use crate::schema::assert_valid;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/layouts")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn inspect_json(target: &str) -> Value {
    let run = att2ref(&["inspect", target, "-o", "json"]);
    assert_eq!(run.code, 0, "inspect {target} failed:\n{}", run.stderr);
    let report = run.json();
    assert_valid("inspect.schema.json", &report);
    report
}

#[tokio::test]
async fn committed_fixtures_are_exactly_what_the_generator_makes() {
    let tmp = tempfile::tempdir().unwrap();
    for scenario in demo::committed_scenarios().unwrap() {
        let dir = tmp.path().join(scenario.name);
        demo::write_layout(&scenario, &dir).await.unwrap();
        let committed = files(&fixtures().join(scenario.name));
        let fresh = files(&dir);
        assert_eq!(
            committed.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
            fresh.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
            "{}: file lists differ; run `cargo run --example gen_fixtures`",
            scenario.name
        );
        for ((path, a), (_, b)) in committed.iter().zip(&fresh) {
            assert!(
                a == b,
                "{}/{} differs from the generator's output; run `cargo run --example gen_fixtures`",
                scenario.name,
                path.display()
            );
        }
    }
}

#[test]
fn inspects_the_demo_fixture_like_the_article() {
    let scenario = demo::demo().unwrap();
    let target = format!("ocidir://{}@{}", fixtures().join("demo").display(), scenario.image);
    let report = inspect_json(&target);
    let image = &report["images"][0];
    assert_eq!(image["digest"], scenario.image.to_string());
    assert_eq!(image["subject"]["present"], true);
    let layers = image["legacy"]["attestations"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for layer in layers {
        assert_eq!(layer["predicateType"], "cosign.sigstore.dev/attestation/v1");
        assert_eq!(layer["signer"], "key");
        assert!(layer.get("logEntry").is_none());
    }
    // The 200 KB SBOM is known from its first 2 KiB (a bounded read of the layout file); the SLSA layer is
    // small and read whole.
    assert_eq!((&layers[0]["read"], &layers[0]["prefixBytes"]), (&json!("prefix"), &json!(2048)));
    assert_eq!(layers[0]["hint"]["fromPrefix"], true);
    assert!(layers[0].get("subjectMatches").is_none(), "{}", layers[0]);
    assert_eq!((&layers[1]["read"], &layers[1]["subjectMatches"]), (&json!("whole"), &json!(true)));
    assert!(layers[1]["hint"].get("fromPrefix").is_none());
    assert_eq!(layers[0]["hint"]["id"], "spdx-2.2");
    assert!(layers[1]["hint"]["id"].as_str().unwrap().starts_with("slsa-provenance-v0.2"), "{}", layers[1]["hint"]);
    assert_eq!(image["legacy"]["signatures"]["layers"][0]["content"], "simple-signing");
    assert_eq!(image["legacy"]["signatures"]["layers"][0]["subjectMatches"], true);
    assert_eq!(image["referrers"]["discovery"], "tag-schema");
    assert_eq!(image["referrers"]["entries"].as_array().unwrap().len(), 0);
}

#[test]
fn inspects_cosign_v2_annotations_and_repeats() {
    let scenario = demo::cosign_v2_style().unwrap();
    let report = inspect_json(&format!("ocidir://{}@{}", fixtures().join("cosign_v2_style").display(), scenario.image));
    let image = &report["images"][0];
    let layers = image["legacy"]["attestations"]["layers"].as_array().unwrap();
    let info = &scenario.attachment(&scenario.image.cosign_tag("att")).unwrap().layers;
    assert_eq!(layers.len(), info.len());
    for (layer, expected) in layers.iter().zip(info) {
        let expected_type = expected.predicate_type.as_deref().unwrap();
        assert_eq!(layer["predicateType"], expected_type);
        if expected.annotated {
            assert_eq!(layer["predicateTypeAnnotation"], expected_type, "cosign ≥ 2 writes the annotation");
        }
        assert_eq!(layer["logEntry"].is_object(), expected.tlog.is_some());
    }
    assert!(layers.iter().any(|l| l["predicateShortName"] == "custom"));
}

#[test]
fn inspects_keyless_entries() {
    let scenario = demo::keyless().unwrap();
    let report = inspect_json(&format!("ocidir://{}@{}", fixtures().join("keyless").display(), scenario.image));
    let image = &report["images"][0];
    let mut kinds = Vec::new();
    for layer in image["legacy"]["attestations"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(image["legacy"]["signatures"]["layers"].as_array().unwrap())
    {
        assert_eq!(layer["signer"], "certificate");
        assert!(layer["certificateIdentity"].as_str().unwrap().contains("example.test"), "{layer}");
        assert!(layer["certificateIssuer"].as_str().unwrap().starts_with("https://"), "{layer}");
        kinds.push(layer["logEntry"]["kind"].as_str().unwrap().to_owned());
    }
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds, ["dsse/0.0.1", "hashedrekord/0.0.1", "intoto/0.0.1"]);
}

#[test]
fn inspects_both_levels_of_a_multi_arch_index() {
    let scenario = demo::multi_arch().unwrap();
    let report = inspect_json(&format!("ocidir://{}@{}", fixtures().join("multi_arch").display(), scenario.image));
    let image = &report["images"][0];
    assert_eq!(image["subject"]["kind"], "index");
    assert!(image["legacy"]["attestations"].is_object());
    assert!(image["legacy"]["signatures"].is_object());
    let children = image["children"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    assert!(children.iter().all(|c| c["platform"].is_string()));
    assert_eq!(children.iter().filter(|c| c["legacy"]["attestations"].is_object()).count(), 1);
}

#[test]
fn all_tags_lists_images_and_orphans() {
    let scenario = demo::replace_history().unwrap();
    let run = att2ref(&[
        "inspect",
        "--all-tags",
        &format!("ocidir://{}", fixtures().join("replace_history").display()),
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_valid("inspect.schema.json", &report);
    let images = report["images"].as_array().unwrap();
    assert!(
        images.iter().any(|i| i["digest"] == scenario.image.to_string() && !i["tags"].as_array().unwrap().is_empty())
    );
}

#[test]
fn text_output_is_a_tree() {
    let scenario = demo::demo().unwrap();
    let run = att2ref(&["inspect", &format!("ocidir://{}@{}", fixtures().join("demo").display(), scenario.image)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("legacy attestations: sha256-"), "{}", run.stdout);
    assert!(run.stdout.contains("hint: looks like SPDX-2.2"), "{}", run.stdout);
}

#[test]
fn demo_command_runs() {
    let run = att2ref(&["demo", "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_valid("inspect.schema.json", &run.json());
    assert!(run.stderr.contains("TEST-ONLY"), "{}", run.stderr);
}

#[test]
fn corrupted_layer_fails_the_image_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    copy_dir(&fixtures().join("demo"), &dir);
    let scenario = demo::demo().unwrap();
    let layer = &scenario.attachment(&scenario.image.cosign_tag("att")).unwrap().layers[1];
    let blob = dir.join("blobs/sha256").join(layer.digest.hex());
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let run = att2ref(&["inspect", &format!("ocidir://{}@{}", dir.display(), scenario.image), "-o", "json"]);
    assert_eq!(run.code, 1, "a digest mismatch is a data failure (exit 1)\n{}", run.stderr);
    let report = run.json();
    assert_valid("inspect.schema.json", &report);
    assert!(report["images"].as_array().unwrap().is_empty(), "nothing partial is reported for a broken image");
    let error = &report["errors"][0];
    assert_eq!(error["errorKind"], "digest-mismatch");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(&scenario.image.to_string()), "{message}");
    assert!(message.contains(&layer.digest.short()), "{message}");
    assert!(run.stderr.contains("mismatch"), "{}", run.stderr);
}

#[tokio::test]
async fn buildkit_attestations_inside_an_index_are_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = LayoutRepository::create(tmp.path(), att2ref::Limits::default()).unwrap();
    let put_blob = |bytes: &'static [u8]| {
        let repo = repo.clone();
        async move { repo.put_blob(bytes.into()).await.unwrap() }
    };
    let config = put_blob(br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#).await;
    let statement = put_blob(br#"{"_type":"https://in-toto.io/Statement/v0.1","subject":[],"predicateType":"https://spdx.dev/Document","predicate":{}}"#).await;
    let image = json!({"schemaVersion": 2, "mediaType": mt::OCI_MANIFEST,
        "config": {"mediaType": mt::OCI_CONFIG, "digest": config.to_string(), "size": 80}, "layers": []});
    let image_bytes = serde_json::to_vec(&image).unwrap();
    let image_digest = Digest::sha256(&image_bytes);
    repo.put_manifest(image_bytes.clone().into(), mt::OCI_MANIFEST, None).await.unwrap();
    let att = json!({"schemaVersion": 2, "mediaType": mt::OCI_MANIFEST,
        "config": {"mediaType": mt::OCI_CONFIG, "digest": config.to_string(), "size": 80},
        "layers": [{"mediaType": mt::IN_TOTO, "digest": statement.to_string(), "size": 114,
                    "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"}}]});
    let att_bytes = serde_json::to_vec(&att).unwrap();
    repo.put_manifest(att_bytes.clone().into(), mt::OCI_MANIFEST, None).await.unwrap();
    let index = json!({"schemaVersion": 2, "mediaType": mt::OCI_INDEX, "manifests": [
        {"mediaType": mt::OCI_MANIFEST, "digest": image_digest.to_string(), "size": image_bytes.len(),
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": mt::OCI_MANIFEST, "digest": Digest::sha256(&att_bytes).to_string(), "size": att_bytes.len(),
         "platform": {"architecture": "unknown", "os": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": image_digest.to_string()}}]});
    repo.put_manifest(serde_json::to_vec(&index).unwrap().into(), mt::OCI_INDEX, Some("v1")).await.unwrap();

    let report = inspect_json(&format!("ocidir://{}:v1", tmp.path().display()));
    let children = report["images"][0]["children"].as_array().unwrap();
    assert_eq!(children.len(), 1, "the attestation manifest is not a platform image");
    assert_eq!(children[0]["buildkitAttestations"][0]["predicateTypes"], json!(["https://spdx.dev/Document"]));
}

#[tokio::test]
async fn an_index_listing_a_manifest_twice_is_inspected_once() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = LayoutRepository::create(tmp.path(), att2ref::Limits::default()).unwrap();
    let config = repo.put_blob(b"{}".to_vec().into()).await.unwrap();
    let image = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": mt::OCI_MANIFEST,
        "config": {"mediaType": mt::OCI_CONFIG, "digest": config.to_string(), "size": 2}, "layers": []}))
    .unwrap();
    repo.put_manifest(image.clone().into(), mt::OCI_MANIFEST, None).await.unwrap();
    let entry = json!({"mediaType": mt::OCI_MANIFEST, "digest": Digest::sha256(&image).to_string(), "size": image.len(),
                       "platform": {"architecture": "amd64", "os": "linux"}});
    let index = json!({"schemaVersion": 2, "mediaType": mt::OCI_INDEX, "manifests": [entry.clone(), entry]});
    repo.put_manifest(serde_json::to_vec(&index).unwrap().into(), mt::OCI_INDEX, Some("v1")).await.unwrap();

    let report = inspect_json(&format!("ocidir://{}:v1", tmp.path().display()));
    let image = &report["images"][0];
    assert_eq!(image["children"].as_array().unwrap().len(), 1);
    assert!(image["anomalies"].as_array().unwrap().iter().any(|a| a["code"] == "repeated-index-entry"));
}
