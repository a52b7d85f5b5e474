//! `att2ref status` and `--metrics` on both test registries (distribution 2.8.2: tag schema;
//! ferro-oci-server: referrers API), through a migration campaign: every state reached by real commands
//! and checked exactly, and the metrics files read by the reference Prometheus text-format parser.

use std::path::{Path, PathBuf};
use std::process::Command;

use att2ref::demo;
use att2ref::model::digest::Digest;
use att2ref::store::Repository;
use serde_json::Value;

use crate::cli::att2ref;
use crate::get::test_key;
use crate::registries::TestRegistry;
use crate::schema::assert_valid;

fn status(target: &str, metrics: &Path) -> Value {
    let run = att2ref(&["status", "--plain-http", target, "-o", "json", "-q", "--metrics", metrics.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_valid("status-report.schema.json", &report);
    report
}

/// `(image, state)` of every image, sorted by image.
fn states(report: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["image"].as_str().unwrap().to_owned(), i["state"].as_str().unwrap().to_owned()))
        .collect();
    out.sort();
    out
}

fn expected(pairs: &[(&Digest, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = pairs.iter().map(|(d, s)| (d.to_string(), (*s).to_owned())).collect();
    out.sort();
    out
}

/// The samples of a metrics file, as the reference parser reads them: `(name, labels, value)`.
pub(crate) fn parse_metrics(path: &Path) -> Vec<(String, serde_json::Map<String, Value>, f64)> {
    let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let python = interop.join(".venv/bin/python");
    let out =
        Command::new(&python).arg(interop.join("parse_metrics.py")).arg(path).output().unwrap_or_else(|e| {
            panic!("cannot run {} ({e}): run scripts/test to install the checkers", python.display())
        });
    assert!(out.status.success(), "the metrics file does not parse: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["name"].as_str().unwrap().to_owned(),
                v["labels"].as_object().unwrap().clone(),
                v["value"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn sample(
    samples: &[(String, serde_json::Map<String, Value>, f64)],
    name: &str,
    label: Option<(&str, &str)>,
) -> Option<f64> {
    samples
        .iter()
        .find(|(n, labels, _)| n == name && label.is_none_or(|(k, v)| labels.get(k).and_then(Value::as_str) == Some(v)))
        .map(|(_, _, v)| *v)
}

async fn campaign(registry: TestRegistry) {
    let kind = registry.kind_name();
    let repo = registry.repository("campaign/app");
    let name = format!("{}/campaign/app", registry.host);
    let first = demo::demo().unwrap(); // v1: .sig + .att with an SBOM and a SLSA provenance
    first.repo.push_to(&repo).await.unwrap();
    let second = demo::article_like_numbered(&name, 2, 3_000).unwrap(); // v2
    second.repo.push_to(&repo).await.unwrap();
    let third = demo::article_like_numbered(&name, 3, 3_000).unwrap(); // v3
    third.repo.push_to(&repo).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("att2ref.prom");

    let report = status(&name, &metrics);
    let all_legacy = [(&first.image, "legacy-only"), (&second.image, "legacy-only"), (&third.image, "legacy-only")];
    assert_eq!(states(&report), expected(&all_legacy), "{kind}");
    assert_eq!(report["totals"]["states"]["legacy-only"], 3, "{kind}");
    let samples = parse_metrics(&metrics);
    assert_eq!(sample(&samples, "att2ref_images", Some(("state", "legacy-only"))), Some(3.0), "{kind}");
    assert_eq!(sample(&samples, "att2ref_images", Some(("state", "migrated"))), Some(0.0), "{kind}");
    assert_eq!(sample(&samples, "att2ref_last_run_success", None), Some(1.0), "{kind}");
    assert!(sample(&samples, "att2ref_last_success_timestamp_seconds", None).is_some_and(|t| t > 1.7e9), "{kind}");

    // Migrate everything (with metrics), then undo one referrer of v1 by hand and prune v2.
    let key = test_key();
    let migrate_metrics = dir.path().join("migrate.prom");
    let run = att2ref(&[
        "migrate",
        "--plain-http",
        &name,
        "--key",
        &key,
        "--insecure-ignore-tlog",
        "-q",
        "-o",
        "json",
        "--metrics",
        migrate_metrics.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{kind}: {}", run.stderr);
    let samples = parse_metrics(&migrate_metrics);
    assert_eq!(sample(&samples, "att2ref_images", Some(("outcome", "migrated"))), Some(3.0), "{kind}");
    assert_eq!(sample(&samples, "att2ref_attestations_written", None), Some(6.0), "{kind}");
    assert_eq!(sample(&samples, "att2ref_last_run_success", None), Some(1.0), "{kind}");
    let report = status(&name, &metrics);
    let all_migrated = [(&first.image, "migrated"), (&second.image, "migrated"), (&third.image, "migrated")];
    assert_eq!(states(&report), expected(&all_migrated), "{kind}");
    let one = report["images"].as_array().unwrap().iter().find(|i| i["image"] == first.image.to_string()).unwrap();
    let (legacy, smallest) =
        (one["bytes"]["legacy"].as_u64().unwrap(), one["bytes"]["referrer_smallest"].as_u64().unwrap());
    assert!(smallest * 10 < legacy, "{kind}: one attestation costs {smallest} B after, {legacy} B before");

    let listing = repo.referrers(&first.image, None).await.unwrap();
    let dropped = listing
        .descriptors
        .iter()
        .find(|d| d.annotations.get("dev.att2ref.legacy.layer").map(String::as_str) == Some("0"));
    let dropped =
        dropped.unwrap_or_else(|| panic!("{kind}: a referrer of layer 0 is listed: {listing:?}")).digest.clone();
    repo.delete_manifest(&dropped).await.unwrap();
    let prune_metrics = dir.path().join("prune.prom");
    let run = att2ref(&[
        "prune",
        "--plain-http",
        &format!("{name}@{}", second.image),
        "--key",
        &key,
        "--insecure-ignore-tlog",
        "--apply",
        "-q",
        "-o",
        "json",
        "--metrics",
        prune_metrics.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{kind}: {}", run.stderr);
    let samples = parse_metrics(&prune_metrics);
    assert_eq!(sample(&samples, "att2ref_legacy_attestations_removed", None), Some(1.0), "{kind}");
    // v3's image manifest is deleted: its legacy tags and referrers are orphaned.
    repo.delete_manifest(&third.image).await.unwrap();

    let report = status(&name, &metrics);
    let campaign = [(&first.image, "partly-migrated"), (&second.image, "referrers-only"), (&third.image, "orphaned")];
    assert_eq!(states(&report), expected(&campaign), "{kind}");
    let partly = report["images"].as_array().unwrap().iter().find(|i| i["image"] == first.image.to_string()).unwrap();
    assert_eq!(partly["unmigrated"].as_array().unwrap().len(), 1, "{kind}: {partly:#}");
    assert_eq!(partly["unmigrated"][0]["index"], 0, "{kind}");
    let v3 = partly["consumers"].as_array().unwrap().iter().find(|c| c["consumer"] == "cosign v3").unwrap();
    assert_eq!(v3["sees"], "only the referrers: 1 legacy attestation(s) hidden", "{kind}");
    let samples = parse_metrics(&metrics);
    for (state, n) in [("partly-migrated", 1.0), ("referrers-only", 1.0), ("orphaned", 1.0), ("migrated", 0.0)] {
        assert_eq!(sample(&samples, "att2ref_images", Some(("state", state))), Some(n), "{kind}: {state}");
    }
    // The table names every state met.
    let run = att2ref(&["status", "--plain-http", &name, "-q"]);
    assert_eq!(run.code, 0, "{kind}: {}", run.stderr);
    for state in ["partly-migrated", "referrers-only", "orphaned"] {
        assert!(run.stdout.contains(state), "{kind}: {}", run.stdout);
    }
}

#[tokio::test]
async fn a_campaign_on_distribution() {
    campaign(TestRegistry::distribution()).await;
}

#[tokio::test]
async fn a_campaign_on_ferro() {
    campaign(TestRegistry::ferro()).await;
}

/// A failed run keeps the time of the last successful one in the metrics file.
#[test]
fn a_failed_status_run_keeps_the_last_success() {
    let dir = tempfile::tempdir().unwrap();
    let metrics: PathBuf = dir.path().join("att2ref.prom");
    std::fs::write(
        &metrics,
        "# HELP att2ref_last_success_timestamp_seconds x\n# TYPE att2ref_last_success_timestamp_seconds gauge\natt2ref_last_success_timestamp_seconds{command=\"status\"} 1700000000\n",
    )
    .unwrap();
    let run = att2ref(&[
        "status",
        "--plain-http",
        "127.0.0.1:9/nothing/here",
        "-o",
        "json",
        "-q",
        "--metrics",
        metrics.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let samples = parse_metrics(&metrics);
    assert_eq!(sample(&samples, "att2ref_last_run_success", None), Some(0.0));
    assert_eq!(sample(&samples, "att2ref_last_success_timestamp_seconds", None), Some(1_700_000_000.0));
    assert_eq!(sample(&samples, "att2ref_failures", Some(("kind", "network-error"))), Some(1.0));
}

/// `--verify` does not take a referrer's word: one that claims (by annotation) to convert layer 0 but
/// carries layer 1's statement counts as converting nothing, and the image is `partly-migrated`; without
/// `--verify` (manifests only) it reads as `migrated`.
#[tokio::test]
async fn verify_checks_each_claim() {
    let registry = TestRegistry::ferro();
    let repo = registry.repository("status/forged");
    let name = format!("{}/status/forged", registry.host);
    let scenario = demo::demo().unwrap();
    scenario.repo.push_to(&repo).await.unwrap();
    let key = test_key();
    let run = att2ref(&["migrate", "--plain-http", &name, "--key", &key, "--insecure-ignore-tlog", "-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let listing = repo.referrers(&scenario.image, None).await.unwrap();
    let mut by_layer = Vec::new();
    for layer in ["0", "1"] {
        let d = listing
            .descriptors
            .iter()
            .find(|d| d.annotations.get("dev.att2ref.legacy.layer").map(String::as_str) == Some(layer))
            .unwrap();
        by_layer.push(repo.get_manifest(&d.digest.to_string()).await.unwrap().unwrap());
    }
    let (zero, one) = (by_layer[0].clone(), by_layer[1].clone());
    // Layer 0's manifest (annotations and all) with layer 1's bundle inside.
    let mut forged: Value = serde_json::from_slice(&zero.bytes).unwrap();
    let one_json: Value = serde_json::from_slice(&one.bytes).unwrap();
    forged["layers"] = one_json["layers"].clone();
    let put = repo
        .put_manifest(bytes::Bytes::from(serde_json::to_vec(&forged).unwrap()), &zero.media_type, None)
        .await
        .unwrap();
    repo.delete_manifest(&zero.digest).await.unwrap();

    let plain = att2ref(&["status", "--plain-http", &name, "-o", "json", "-q"]).json();
    assert_eq!(plain["images"][0]["state"], "migrated", "manifests only take the annotation's word: {plain:#}");
    let run = att2ref(&[
        "status",
        "--plain-http",
        &name,
        "-o",
        "json",
        "-q",
        "--verify",
        "--key",
        &key,
        "--insecure-ignore-tlog",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_valid("status-report.schema.json", &report);
    let image = &report["images"][0];
    assert_eq!(image["state"], "partly-migrated", "{image:#}");
    assert_eq!(image["unmigrated"][0]["index"], 0, "{image:#}");
    assert_eq!(image["unverified"][0]["digest"], put.digest.to_string(), "{image:#}");
    assert_eq!(image["unverified"][0]["reason"], "it does not carry the legacy layer's payload");
}
