//! The real-world corpus in `../shared/corpus`, assembled into stores the tests can push.
//!
//! The corpus keeps only what could be recovered byte for byte; manifests that were saved
//! pretty-printed are rebuilt compactly here (same layers, same annotations, same order).

use std::path::PathBuf;

use att2ref::demo::GeneratedRepo;
use att2ref::model::digest::Digest;
use att2ref::model::media_type as mt;
use serde_json::Value;

/// The article's image digest (its manifest was never published).
pub const ARTICLE_IMAGE: &str = "sha256:9bd049b6b470118cc6a02d58595b86107407c9e288c0d556ce342ea8acbafdf4";
/// The @sigstore/oci demo image digest (its blobs were not kept).
pub const WRITER_IMAGE: &str = "sha256:ccc3bb21a9e5fb9763bc7c4d7b5eb24f94030e2223acf5ad467b49d10b608440";

/// A file of the shared corpus. Fails loudly when `../shared` is not beside the repository.
pub fn path(relative: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    assert!(
        root.is_dir(),
        "this test reads the real-world corpus in ../shared/corpus (beside the repository), which is missing; \
         CI always has it — check out the project's shared material next to the repository"
    );
    root.join(relative)
}

/// Bytes of a corpus file.
pub fn read(relative: &str) -> Vec<u8> {
    let p = path(relative);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// Pretty-printed JSON made compact again, keeping key order.
pub fn compact(relative: &str) -> Vec<u8> {
    let v: Value = serde_json::from_slice(&read(relative)).expect("corpus JSON");
    serde_json::to_vec(&v).unwrap()
}

/// The article's legacy store: `.att` (two byte-exact DSSE layers, byte-exact config) and `.sig`
/// (byte-exact simple-signing layer and config), under the tags cosign used, without the image.
pub fn article_store(repository: &str) -> GeneratedRepo {
    let image: Digest = ARTICLE_IMAGE.parse().unwrap();
    let base = "toddysm-cssc-pipeline/sigstore-test";
    let mut repo = GeneratedRepo::new(repository);
    for layer in [
        "sigstore-attestation/c9880779c90158a29f7a69f29c492551261e7a3936247fc75f225171064d6d32.tar.gz",
        "sigstore-attestation/ff626be9ff3158e9d2118072cd24481d990a5145d10109affec6064423d74cc4.tar.gz",
        "sigstore-attestation/sha256:728e26b36817753d90d7de8420dacf4fa1bcf746da2b54bb8c59cd047a682198",
        "sigstore-signature/09b3e371137191b52fdd07bdf115824b2b297a2003882e68d68d66d0d35fe1fc.tar.gz",
        "sigstore-signature/sha256:00ce5fed483997c24aa0834081ab1960283ee9b2c9d46912bbccc3f9d18e335d",
    ] {
        let rel = format!("{base}/{layer}");
        let bytes = if layer.contains("sha256:") { compact(&rel) } else { read(&rel) };
        repo.add_blob(bytes);
    }
    let att = compact(&format!("{base}/flasksample-v1-attestation-manifest.json"));
    repo.add_manifest(att, mt::OCI_MANIFEST, &[image.cosign_tag("att")]);
    let sig = compact(&format!("{base}/flasksample-v1-signature-manifest.json"));
    repo.add_manifest(sig, mt::OCI_MANIFEST, &[image.cosign_tag("sig")]);
    for (digest, bytes) in &repo.blobs {
        digest.verify(bytes).expect("corpus blob digest");
    }
    repo
}

/// What @sigstore/oci wrote for its demo image: one Sigstore-bundle referrer (byte-exact manifest and
/// bundle), and, on registries without the referrers API, the tag-schema index entry it maintained.
/// Plus a legacy `.att` rebuilt around the byte-exact securesystemslib envelope of that store.
pub fn sigstore_oci_writer_store(repository: &str, with_tag_schema: bool) -> GeneratedRepo {
    let image: Digest = WRITER_IMAGE.parse().unwrap();
    let base = "sigstore-oci-writer";
    let mut repo = GeneratedRepo::new(repository);
    repo.add_blob(&b"{}"[..]);
    repo.add_blob(read(&format!("{base}/bundle-slsa1-ecdsa.json")));
    let referrer = read(&format!("{base}/referrer-manifest-03947ef44bf6.json"));
    let referrer_digest = repo.add_manifest(referrer, mt::OCI_MANIFEST, &[]);
    if with_tag_schema {
        let mut index: Value = serde_json::from_slice(&read(&format!("{base}/tagschema-index-img1.json"))).unwrap();
        index["manifests"]
            .as_array_mut()
            .unwrap()
            .retain(|entry| entry["digest"].as_str() == Some(referrer_digest.to_string().as_str()));
        assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
        repo.add_manifest(serde_json::to_vec(&index).unwrap(), mt::OCI_INDEX, &[image.referrers_tag()]);
    }
    // The legacy .att around the first envelope of the writer's store.
    let envelope = read(&format!("{base}/legacy-att-layer0-envelope.json"));
    let layer = repo.add_blob(envelope.clone());
    let config = serde_json::json!({
        "architecture": "", "created": "0001-01-01T00:00:00Z", "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "", "rootfs": {"type": "layers", "diff_ids": [layer.to_string()]}, "config": {}
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = repo.add_blob(config.clone());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "config": {"mediaType": mt::OCI_CONFIG, "size": config.len(), "digest": config_digest.to_string()},
        "layers": [{
            "mediaType": mt::DSSE_ENVELOPE, "size": envelope.len(), "digest": layer.to_string(),
            "annotations": {"dev.cosignproject.cosign/signature": "", "predicateType": "https://slsa.dev/provenance/v1"}
        }]
    });
    repo.add_manifest(serde_json::to_vec(&manifest).unwrap(), mt::OCI_MANIFEST, &[image.cosign_tag("att")]);
    repo
}
