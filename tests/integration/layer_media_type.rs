//! One rule for a `.att` layer whose media type is not the DSSE envelope type: it is read as an envelope
//! by its content (cosign's verify-attestation does the same), so `inspect`, `verify`, `get`, `migrate`
//! and `prune` all see the same attestation. The odd media type is reported, never a reason to skip.

use att2ref::demo;
use att2ref::model::oci::Manifest;
use att2ref::store::Repository;
use serde_json::Value;

use crate::cli::att2ref;
use crate::prune::{items, rsa_key};
use crate::registries::TestRegistry;
use crate::schema::assert_valid;

const ODD: &str = "application/octet-stream";
/// What a `.sig` layer is labelled: the one media type that must not make a `.att` layer a signature.
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn run_json(command: &str, image: &str, extra: &[&str]) -> (crate::cli::Run, Value) {
    let key = rsa_key();
    let mut args = vec![command, "--plain-http", image, "--key", &key, "--insecure-ignore-tlog", "-o", "json"];
    args.extend_from_slice(extra);
    let run = att2ref(&args);
    let report = run.json();
    (run, report)
}

fn get_slsa(image: &str) -> crate::cli::Run {
    let key = rsa_key();
    att2ref(&[
        "get",
        "--plain-http",
        image,
        "--type",
        "custom",
        "--hint",
        "slsa-provenance",
        "--key",
        &key,
        "--insecure-ignore-tlog",
    ])
}

#[tokio::test]
async fn a_layer_with_another_media_type_is_the_same_attestation_for_every_command() {
    let registry = TestRegistry::distribution();
    let scenario = demo::demo().unwrap();
    let repo = registry.repository("odd/app");
    scenario.repo.push_to(&repo).await.unwrap();

    // Rewrite the .att so that the SLSA layer (the last one) carries another media type and the first
    // one a signature's; bytes unchanged.
    let att_tag = scenario.image.cosign_tag("att");
    let att = repo.get_manifest(&att_tag).await.unwrap().unwrap();
    let Manifest::Image(m) = &att.manifest else { panic!("the .att is an image manifest") };
    let last = m.layers.len() - 1;
    assert!(last >= 1, "the demo .att has several layers");
    let mut edited: Value = serde_json::from_slice(&att.bytes).unwrap();
    assert_eq!(edited["layers"][last]["mediaType"], "application/vnd.dsse.envelope.v1+json");
    edited["layers"][last]["mediaType"] = ODD.into();
    edited["layers"][0]["mediaType"] = SIMPLE_SIGNING.into();
    let bytes = serde_json::to_vec(&edited).unwrap();
    repo.put_manifest(bytes.into(), OCI_MANIFEST, Some(&att_tag)).await.unwrap();
    let image = format!("{}/odd/app@{}", registry.host, scenario.image);

    // inspect: read as an envelope, with the media type reported as an anomaly once.
    let run = att2ref(&["inspect", "--plain-http", &image, "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_valid("inspect.schema.json", &report);
    let text = report.to_string();
    assert_eq!(text.matches("unexpected-layer-media-type").count(), 2, "{report:#}");
    assert_eq!(text.matches(ODD).count(), 2, "the layer's mediaType and the anomaly message: {report:#}");
    let layers = report["images"][0]["legacy"]["attestations"]["layers"].as_array().unwrap();
    assert!(layers.iter().all(|l| l["content"] == "dsse-envelope"), "every layer read as an envelope: {layers:#?}");

    // verify: every layer of the .att verifies, the odd one included.
    let (run, report) = run_json("verify", &image, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_valid("verify.schema.json", &report);
    let results = report["images"][0]["results"].as_array().unwrap();
    let layers: Vec<u64> = results
        .iter()
        .filter(|r| r["location"]["source"] == "legacy-attestation")
        .map(|r| {
            assert_eq!(r["verified"], true, "{r:#}");
            r["location"]["layer"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(layers, (0..=last as u64).collect::<Vec<_>>());

    // get, straight from the legacy .att: the SLSA statement in the odd layer is found.
    let run = get_slsa(&image);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, demo::content::ARTICLE_SLSA_TEXT);

    // migrate: the odd layer becomes a referrer like the others, with a note saying why it was read.
    let (run, report) = run_json("migrate", &image, &["--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let notes: Vec<u64> = report["images"][0]["plan"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["notes"].as_array().into_iter().flatten().any(|n| n["code"] == "layer_media_type_ignored"))
        .map(|i| i["source"]["layer_index"].as_u64().unwrap())
        .collect();
    assert_eq!(notes, [0, last as u64], "{report:#}");
    let (run, report) = run_json("migrate", &image, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report["images"][0]["outcome"], "migrated");
    assert_eq!(report["images"][0]["referrers"].as_array().unwrap().len(), last + 1, "{report:#}");

    // prune: every layer, the odd one included, has its referrer, so the .att goes.
    let (run, report) = run_json("prune", &image, &["--apply"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(items(&report), vec![("legacy-attestation".to_owned(), "removed".to_owned())], "{report:#}");
    assert!(repo.head_manifest(&att_tag).await.unwrap().is_none(), "the .att is gone");

    // get, now from the referrer: the same bytes.
    let run = get_slsa(&image);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, demo::content::ARTICLE_SLSA_TEXT);
}
