//! `migrate`'s read-back on a real registry (distribution 2.8.2, tag schema): the default (`digest`) does
//! not download the bundles it wrote, but a rerun finds a bundle blob that is gone (and uploads it
//! again) or has the wrong size (and fails the image); `--readback full` downloads them and catches a blob whose stored bytes were
//! changed. On an OCI layout the default hashes the local blob, so a rerun rewrites a same-size
//! corruption too.

use std::path::{Path, PathBuf};

use att2ref::demo::{self, AttachmentKind};
use att2ref::model::digest::Digest;
use att2ref::model::oci::Manifest;
use att2ref::store::Repository;
use serde_json::Value;

use crate::cli::att2ref;
use crate::registries::{DistributionConfig, TestRegistry};
use crate::schema::assert_valid;

fn migrate(target: &str, extra: &[&str]) -> Value {
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/rsa-4096.pub.pem");
    let key = key.to_str().unwrap();
    let mut args = vec!["migrate", "--plain-http", target, "--key", key, "--insecure-ignore-tlog", "-o", "json"];
    args.extend_from_slice(extra);
    let run = att2ref(&args);
    let report = run.json();
    assert_valid("migrate-report.schema.json", &report);
    report
}

/// Where distribution's filesystem driver keeps a blob's bytes.
fn blob_data(storage: &Path, digest: &Digest) -> PathBuf {
    let hex = digest.hex();
    storage.join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
}

/// Access-log lines (Apache combined format) of `method` requests for blob `digest`.
fn blob_requests(log: &Path, method: &str, digest: &Digest) -> usize {
    let text = std::fs::read_to_string(log).unwrap();
    let needle = format!("\"{method} /v2/");
    let blob = format!("/blobs/{digest} ");
    text.lines().filter(|l| l.contains(&needle) && l.contains(&blob)).count()
}

#[tokio::test]
async fn default_readback_checks_presence_without_downloading_and_full_downloads() {
    let registry = TestRegistry::distribution_with(DistributionConfig { log_level: "info", ..Default::default() });
    let scenario = demo::article_like().unwrap();
    let repo = registry.repository("cssc/readback");
    scenario.repo.push_to(&repo).await.unwrap();
    let image = format!("{}/cssc/readback@{}", registry.host, scenario.image);

    let report = migrate(&image, &[]);
    assert_eq!(report["images"][0]["outcome"], "migrated", "{report:#}");
    let mut bundles = Vec::new();
    for r in report["images"][0]["referrers"].as_array().unwrap() {
        let digest = r["digest"].as_str().unwrap();
        let raw = repo.get_manifest(digest).await.unwrap().unwrap();
        let Manifest::Image(m) = raw.manifest else { panic!("{digest} is not an image manifest") };
        bundles.push(m.layers[0].clone());
    }
    assert_eq!(bundles.len(), 2);
    let log = registry.log_path();
    for b in &bundles {
        assert_eq!(blob_requests(&log, "GET", &b.digest), 0, "the default read-back downloaded bundle {}", b.digest);
        // One HEAD before the upload (is it there already?), one in the read-back at least.
        assert!(blob_requests(&log, "HEAD", &b.digest) >= 2, "bundle {} was never checked", b.digest);
    }
    // Bytes read: the legacy .att and subject once, not the bundles again.
    let read = report["images"][0]["bytes_read"].as_u64().unwrap();
    let att = scenario.attachment_for(&scenario.image, AttachmentKind::Attestations).unwrap();
    let legacy: u64 = att.layers.iter().map(|l| l.size).sum();
    assert!(read < legacy + 64 * 1024, "read {read} bytes for {legacy} legacy bytes");

    // Full read-back downloads each bundle once.
    let report = migrate(&image, &["--readback", "full"]);
    assert_eq!(report["images"][0]["outcome"], "already-migrated", "{report:#}");
    for b in &bundles {
        assert_eq!(blob_requests(&log, "GET", &b.digest), 1, "--readback full reads bundle {} once", b.digest);
    }

    // Same size, other bytes in the registry's storage: only a download can tell.
    let sbom = bundles.iter().max_by_key(|b| b.size).unwrap();
    let path = blob_data(&registry.storage_dir(), &sbom.digest);
    let original = std::fs::read(&path).unwrap();
    let mut altered = original.clone();
    let last = altered.len() - 2;
    altered[last] ^= 0x20;
    std::fs::write(&path, &altered).unwrap();
    let report = migrate(&image, &["--readback", "full"]);
    assert_eq!(report["images"][0]["outcome"], "failed", "{report:#}");
    let reasons = report["images"][0]["reasons"].to_string();
    assert!(reasons.contains("digest"), "{reasons}");
    let report = migrate(&image, &[]);
    assert_eq!(
        report["images"][0]["outcome"], "already-migrated",
        "the default trusts the registry's upload digest check for the bytes: {report:#}"
    );

    // The wrong size: a rerun uploads the blob again, but distribution keeps the file it has under that
    // digest, so the read-back still sees the wrong size and fails the image.
    std::fs::write(&path, &original[..original.len() - 1]).unwrap();
    let report = migrate(&image, &[]);
    assert_eq!(report["images"][0]["outcome"], "failed", "{report:#}");
    let reasons = report["images"][0]["reasons"].to_string();
    assert!(reasons.contains("read-back") && reasons.contains(&sbom.digest.to_string()), "{reasons}");

    // Gone from storage: a rerun uploads it again (nothing else), and the registry holds the original
    // bytes once more.
    std::fs::remove_file(&path).unwrap();
    let report = migrate(&image, &[]);
    assert_eq!(report["images"][0]["outcome"], "migrated", "{report:#}");
    assert_eq!(report["images"][0]["writes"], 1, "{report:#}");
    assert_eq!(std::fs::read(&path).unwrap(), original, "the bundle is stored again");
    let report = migrate(&image, &[]);
    assert_eq!(report["images"][0]["outcome"], "already-migrated", "{report:#}");
}

/// On an OCI layout the default read-back hashes the local bundle blobs: a same-size file of other bytes
/// is found by a rerun, which writes the blob again instead of reporting `already-migrated`, and the
/// referrers verify and serve their predicate afterwards.
#[tokio::test]
async fn a_corrupted_bundle_of_the_same_size_in_a_layout_is_rewritten_by_a_rerun() {
    let scenario = demo::demo().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let layout = demo::write_layout(&scenario, dir.path()).await.unwrap();
    let target = format!("ocidir://{}@{}", dir.path().display(), scenario.image);
    let report = migrate(&target, &[]);
    assert_eq!(report["images"][0]["outcome"], "migrated", "{report:#}");

    // Every referrer's bundle blob overwritten with as many other bytes.
    let mut bundles = Vec::new();
    for r in report["images"][0]["referrers"].as_array().unwrap() {
        let raw = layout.get_manifest(r["digest"].as_str().unwrap()).await.unwrap().unwrap();
        let Manifest::Image(m) = raw.manifest else { panic!("not an image manifest") };
        bundles.push(m.layers[0].clone());
    }
    assert_eq!(bundles.len(), 2);
    let file = |d: &Digest| dir.path().join("blobs").join(d.algorithm().as_str()).join(d.hex());
    for b in &bundles {
        let path = file(&b.digest);
        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!(size, b.size);
        // Blob files may be read-only: replace, do not write through.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, vec![b'x'; size as usize]).unwrap();
        assert_ne!(Digest::sha256(&std::fs::read(&path).unwrap()), b.digest);
    }

    let report = migrate(&target, &[]);
    assert_eq!(report["images"][0]["outcome"], "migrated", "rewritten, not already-migrated: {report:#}");
    assert_eq!(report["images"][0]["writes"], 2, "the two bundle blobs and nothing else: {report:#}");
    for b in &bundles {
        assert_eq!(Digest::sha256(&std::fs::read(file(&b.digest)).unwrap()), b.digest, "{} rewritten", b.digest);
    }
    let report = migrate(&target, &[]);
    assert_eq!(report["images"][0]["outcome"], "already-migrated", "{report:#}");

    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/rsa-4096.pub.pem");
    let key = key.to_str().unwrap();
    let verify = att2ref(&["verify", &target, "--key", key, "--insecure-ignore-tlog", "-o", "json"]);
    assert_eq!(verify.code, 0, "{}\n{}", verify.stdout, verify.stderr);
    let results = verify.json()["images"][0]["results"].as_array().unwrap().clone();
    let referrers: Vec<&Value> = results.iter().filter(|r| r["location"]["source"] == "referrer").collect();
    assert_eq!(referrers.len(), 2, "{results:#?}");
    assert!(referrers.iter().all(|r| r["verified"] == true), "{results:#?}");
    let get = att2ref(&[
        "get",
        &target,
        "--type",
        "custom",
        "--hint",
        "slsa-provenance",
        "--key",
        key,
        "--insecure-ignore-tlog",
    ]);
    assert_eq!(get.code, 0, "{}", get.stderr);
    assert_eq!(get.stdout, demo::content::ARTICLE_SLSA_TEXT);
}
