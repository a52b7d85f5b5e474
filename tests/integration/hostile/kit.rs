//! Planting hostile data in a real distribution 2.8.2: through its API where it accepts the data, and
//! straight into its filesystem storage where a well-behaved registry refuses (bytes that do not match
//! their digest, manifests it cannot parse, 100 000 tags).

use std::path::{Path, PathBuf};

use att2ref::demo::dsse::{STATEMENT_V01, sign_envelope, statement};
use att2ref::demo::oci::{GeneratedLayer, legacy_manifest_and_config, subject_image};
use att2ref::demo::{TestKey, TestLog};
use att2ref::model::digest::Digest;
use att2ref::model::media_type::{self as mt, annotations as ann};
use att2ref::model::oci::Annotations;
use att2ref::store::Repository;
use att2ref::store::registry::RegistryRepository;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::registries::TestRegistry;

/// The predicate type of every planted attestation.
pub const PREDICATE: &str = "https://example.test/hostile/v1";

/// One registry, a runtime to drive the library with, and the trust material the commands use.
pub struct Kit {
    pub rt: tokio::runtime::Runtime,
    pub registry: TestRegistry,
    pub dir: tempfile::TempDir,
    /// One client for all planting (a new client would probe the registry again each time).
    client: att2ref::store::registry::RegistryClient,
    /// Scratch directories on tmpfs that planted storage links into; removed on drop.
    scratch: std::sync::Mutex<Vec<tempfile::TempDir>>,
}

impl Kit {
    pub fn new() -> Kit {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("trusted_root.json"), att2ref::demo::trusted_root_json().unwrap()).unwrap();
        let registry = TestRegistry::distribution();
        let client = registry.client();
        Kit { rt, registry, dir, client, scratch: Default::default() }
    }

    /// The public key the commands verify with (Ed25519: signing is fast even in debug builds).
    pub fn key(&self) -> String {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/ed25519.pub.pem").display().to_string()
    }

    pub fn trusted_root(&self) -> String {
        self.dir.path().join("trusted_root.json").display().to_string()
    }

    pub fn repo(&self, name: &str) -> RegistryRepository {
        self.client.repository(&self.registry.host, name)
    }

    /// Push a blob through the API.
    pub fn blob(&self, repo: &str, bytes: impl Into<Bytes>) -> Digest {
        self.rt.block_on(self.repo(repo).put_blob(bytes.into())).unwrap()
    }

    /// Push a manifest through the API (by digest, and under `tag`).
    pub fn manifest(&self, repo: &str, bytes: impl Into<Bytes>, media_type: &str, tag: Option<&str>) -> Digest {
        let bytes = bytes.into();
        let r = self.repo(repo);
        let put = self.rt.block_on(r.put_manifest(bytes.clone(), media_type, None)).unwrap();
        if let Some(tag) = tag {
            self.rt.block_on(r.put_manifest(bytes, media_type, Some(tag))).unwrap();
        }
        put.digest
    }

    /// A small real image: the subject of the attestations.
    pub fn subject(&self, repo: &str) -> Digest {
        self.subject_labeled(repo, "hostile corpus")
    }

    /// Another small real image in `repo`, different per `label`.
    pub fn subject_labeled(&self, repo: &str, label: &str) -> Digest {
        let image = subject_image(&format!("{repo} ({label})"), "linux", "amd64", None);
        self.blob(repo, image.config.clone());
        self.blob(repo, image.layer.clone());
        self.manifest(repo, image.manifest.clone(), mt::OCI_MANIFEST, Some("v1"))
    }

    /// Push `layers` as the subject's legacy `.att` (config, layers, manifest) through the API.
    pub fn att(&self, repo: &str, subject: &Digest, layers: &[GeneratedLayer]) -> Digest {
        let (manifest, config) = legacy_manifest_and_config(layers, "2024-01-01T00:00:00Z");
        self.blob(repo, config);
        let unique: std::collections::BTreeSet<&Vec<u8>> = layers.iter().map(|l| &l.bytes).collect();
        for bytes in unique {
            self.blob(repo, bytes.clone());
        }
        self.manifest(repo, manifest, mt::OCI_MANIFEST, Some(&subject.cosign_tag("att")))
    }

    /// A subject and an `.att` holding exactly `layers`; the image digest.
    pub fn image_with(&self, repo: &str, layers: impl FnOnce(&Digest) -> Vec<GeneratedLayer>) -> Digest {
        let subject = self.subject(repo);
        let layers = layers(&subject);
        self.att(repo, &subject, &layers);
        subject
    }

    // --- filesystem planting -------------------------------------------------------------------

    fn v2(&self) -> PathBuf {
        self.registry.storage_dir().join("docker/registry/v2")
    }

    /// Store `bytes` as the blob `claimed` (which need not be their digest) and link it into `repo`.
    pub fn fs_blob(&self, repo: &str, claimed: &Digest, bytes: &[u8]) {
        let hex = claimed.hex();
        let dir = self.v2().join("blobs/sha256").join(&hex[..2]).join(hex);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("data"), bytes).unwrap();
        self.fs_link(&self.v2().join("repositories").join(repo).join("_layers/sha256").join(hex), claimed);
    }

    /// Store `bytes` as the manifest `claimed` of `repo` and point `tags` at it.
    pub fn fs_manifest(&self, repo: &str, claimed: &Digest, bytes: &[u8], tags: &[&str]) {
        self.fs_blob(repo, claimed, bytes);
        let manifests = self.v2().join("repositories").join(repo).join("_manifests");
        self.fs_link(&manifests.join("revisions/sha256").join(claimed.hex()), claimed);
        for tag in tags {
            self.fs_tag(repo, tag, claimed);
        }
    }

    /// Point `tag` of `repo` at `digest` (the manifest must be stored already).
    pub fn fs_tag(&self, repo: &str, tag: &str, digest: &Digest) {
        let tag_dir = self.v2().join("repositories").join(repo).join("_manifests/tags").join(tag);
        self.fs_link(&tag_dir.join("current"), digest);
        self.fs_link(&tag_dir.join("index/sha256").join(digest.hex()), digest);
    }

    /// Add `n` tags `t0`… pointing at `digest` to `repo` (whose other tags are kept). Creating that
    /// many directories is slow on a loaded disk, so where tmpfs exists the repository's tag directory
    /// becomes a link to a scratch directory there (distribution follows it).
    pub fn fs_bulk_tags(&self, repo: &str, n: u32, digest: &Digest) {
        let tags = self.v2().join("repositories").join(repo).join("_manifests/tags");
        let shm = Path::new("/dev/shm");
        let target = if shm.is_dir() {
            let scratch = tempfile::tempdir_in(shm).unwrap();
            let moved = scratch.path().join("tags");
            std::fs::create_dir(&moved).unwrap();
            for entry in std::fs::read_dir(&tags).unwrap() {
                let entry = entry.unwrap();
                crate::registries::copy_tree(&entry.path(), &moved.join(entry.file_name())).unwrap();
            }
            std::fs::remove_dir_all(&tags).unwrap();
            std::os::unix::fs::symlink(&moved, &tags).unwrap();
            self.scratch.lock().unwrap().push(scratch);
            moved
        } else {
            tags
        };
        let link = digest.to_string();
        for i in 0..n {
            let current = target.join(format!("t{i}")).join("current");
            std::fs::create_dir_all(&current).unwrap();
            std::fs::write(current.join("link"), &link).unwrap();
        }
    }

    fn fs_link(&self, dir: &Path, digest: &Digest) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("link"), digest.to_string()).unwrap();
    }

    /// A subject and an `.att` whose manifest bytes are `bytes`, stored under digest `claimed` (their
    /// own digest when `None`), bypassing the registry's checks.
    pub fn image_with_raw_att(&self, repo: &str, bytes: &[u8], claimed: Option<Digest>) -> Digest {
        let subject = self.subject(repo);
        let claimed = claimed.unwrap_or_else(|| Digest::sha256(bytes));
        self.fs_manifest(repo, &claimed, bytes, &[&subject.cosign_tag("att")]);
        subject
    }

    /// Everything of `repo` a migration could write, read from the registry's storage: each manifest
    /// revision and blob link (untagged referrers included) and each tag (first 200) with its target.
    pub fn snapshot(&self, repo: &str) -> Vec<String> {
        let root = self.v2().join("repositories").join(repo);
        let mut out = Vec::new();
        for (kind, dir) in [("manifest", "_manifests/revisions/sha256"), ("blob", "_layers/sha256")] {
            if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
                out.extend(entries.map(|e| format!("{kind} {}", e.unwrap().file_name().to_string_lossy())));
            }
        }
        if let Ok(entries) = std::fs::read_dir(root.join("_manifests/tags")) {
            let mut tags: Vec<String> =
                entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
            tags.sort();
            for t in tags.into_iter().take(200) {
                let link = std::fs::read_to_string(root.join("_manifests/tags").join(&t).join("current/link"));
                out.push(format!("tag {t} -> {}", link.unwrap_or_default()));
            }
        }
        out.sort();
        out
    }
}

// --- building blocks for legacy layers ---------------------------------------------------------

/// The in-toto statement cosign signs for `subject`.
pub fn stmt(subject: &Digest) -> Vec<u8> {
    statement(STATEMENT_V01, "registry.test/hostile", subject, PREDICATE, &json!({"k": "v"}))
}

/// The test key every planted signature is made with.
pub const KEY: TestKey = TestKey::Ed25519;

/// A DSSE envelope over `payload`, signed like cosign with [`KEY`].
pub fn envelope(payload: Vec<u8>) -> Vec<u8> {
    sign_envelope(payload, &KEY.signer()).unwrap().bytes
}

/// A DSSE envelope over `payload` signed by `key`.
pub fn envelope_by(payload: Vec<u8>, key: TestKey) -> Vec<u8> {
    sign_envelope(payload, &key.signer()).unwrap().bytes
}

/// A legacy `.att` layer with cosign's annotations.
pub fn layer(bytes: Vec<u8>) -> GeneratedLayer {
    layer_with(bytes, &[])
}

/// A legacy `.att` layer with cosign's annotations plus `extra`.
pub fn layer_with(bytes: Vec<u8>, extra: &[(&str, &str)]) -> GeneratedLayer {
    let mut annotations = Annotations::new();
    annotations.insert(ann::COSIGN_SIGNATURE.into(), String::new());
    annotations.insert(ann::COSIGN_PREDICATE_TYPE.into(), PREDICATE.into());
    for (k, v) in extra {
        annotations.insert((*k).into(), (*v).into());
    }
    GeneratedLayer { media_type: mt::DSSE_ENVELOPE, bytes, annotations }
}

/// A well-formed, correctly signed layer for `subject`.
pub fn good_layer(subject: &Digest) -> GeneratedLayer {
    layer(envelope(stmt(subject)))
}

/// The envelope JSON with fields replaced.
pub fn envelope_json(payload_type: &str, payload: &str, sig: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"payloadType": payload_type, "payload": payload, "signatures": [{"keyid": "", "sig": sig}]}),
    )
    .unwrap()
}

/// A legacy Rekor bundle annotation from the test log for an entry whose body is `body`.
pub fn rekor_bundle(body: &Value) -> String {
    let position = att2ref::demo::rekor::EntryPosition { log_index: 7_000_001, integrated_time: 1_700_000_000 };
    TestLog::ed25519().legacy_bundle(body, position).unwrap()
}

/// A `dsse/0.0.1` body for `envelope` (signed with [`KEY`]).
pub fn dsse_body_for(envelope: &[u8]) -> Value {
    let env: Value = serde_json::from_slice(envelope).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64.decode(env["payload"].as_str().unwrap()).unwrap();
    let sig = b64.decode(env["signatures"][0]["sig"].as_str().unwrap()).unwrap();
    att2ref::demo::rekor::dsse_body(envelope, &payload, &sig, KEY.public_pem())
}

/// A legacy manifest's JSON with `edit` applied (for descriptors that lie).
pub fn edited_att(layers: &[GeneratedLayer], edit: impl FnOnce(&mut Value)) -> (Vec<u8>, Vec<u8>) {
    let (manifest, config) = legacy_manifest_and_config(layers, "2024-01-01T00:00:00Z");
    let mut v: Value = serde_json::from_slice(&manifest).unwrap();
    edit(&mut v);
    (serde_json::to_vec(&v).unwrap(), config)
}
