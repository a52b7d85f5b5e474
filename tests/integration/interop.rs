//! Third-party checks of the Sigstore bundles `att2ref::convert` writes: sigstore-js (`@sigstore/verify`)
//! verifies each one offline under its public key, and sigstore-models (PyPI) validates each strictly.
//!
//! The tools live in `tests/interop/` (`node_modules` and the venv `.venv`), installed by `scripts/test`.
//! When they are missing these tests fail and say so: a skipped interop check would look like a pass.
//!
//! Bundles come from every key-signed `.att` layer of the generated stores and from real layers: the
//! article's two (RSA-4096 KMS key) and one securesystemslib wrote (ECDSA P-256). Keyless layers are left out: their bundles need a log entry with an inclusion proof from a
//! real log, which the generated stores do not have. RSA-PSS and ECDSA P-384/SHA-384 bundles are
//! validated by sigstore-models, but sigstore-js cannot verify them (see [`sigstore_js_cannot_verify`]),
//! so for those the test pins that refusal instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use att2ref::convert::{
    LegacyLayerInput, OutputFormat, ReferrerSubject, Verified, VerifiedKey, VerifiedSignature, convert_layer,
};
use att2ref::demo::{AttachmentKind, Scenario, Scheme, SignedBy, TestKey};
use att2ref::model::digest::Digest;
use att2ref::model::dsse::encode_base64;
use att2ref::model::media_type as mt;
use att2ref::model::oci::{ImageManifest, Manifest};
use att2ref::model::signed_statement::SignedStatement;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::corpus;

const CSSC: &str = "toddysm-cssc-pipeline/sigstore-test";
const CSSC_KEY: &str = "toddysm-cssc-pipeline/derived/kms-rsa4096-public-key.recovered.pem";
const CSSC_IMAGE: &str = "sha256:9bd049b6b470118cc6a02d58595b86107407c9e288c0d556ce342ea8acbafdf4";

// ---------------------------------------------------------------------------------------------------
// The tools.

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

const INSTALL_HINT: &str = "run scripts/test once (it installs them with `npm ci --prefix tests/interop` and a \
                            Python venv at tests/interop/.venv); these interop checks are never skipped";

/// The interpreter of the venv, failing loudly when it is missing.
fn python() -> PathBuf {
    let python = interop_dir().join(".venv/bin/python");
    assert!(python.exists(), "sigstore-models is not installed ({} is missing): {INSTALL_HINT}", python.display());
    python
}

/// `tests/interop`, after checking that the installed sigstore-js is the pinned one.
fn node_dir() -> PathBuf {
    let dir = interop_dir();
    let installed = dir.join("node_modules/@sigstore/verify/package.json");
    let text = std::fs::read(&installed)
        .unwrap_or_else(|e| panic!("sigstore-js is not installed ({}: {e}): {INSTALL_HINT}", installed.display()));
    let wanted: Value = serde_json::from_slice(&std::fs::read(dir.join("package.json")).unwrap()).unwrap();
    let have: Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(
        have["version"], wanted["dependencies"]["@sigstore/verify"],
        "the installed @sigstore/verify is not the pinned version: {INSTALL_HINT}"
    );
    dir
}

/// One line of a checker's output.
#[derive(Debug)]
pub(crate) struct Checked {
    path: PathBuf,
    ok: bool,
    error: Option<String>,
}

/// Parse a checker's JSON lines; its exit status must agree with them.
fn results(tool: &str, out: std::process::Output, expected: usize) -> Vec<Checked> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Checked> = stdout
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{tool} printed a line that is not JSON ({e}): {line}\nstderr: {stderr}"));
            Checked {
                path: PathBuf::from(v["path"].as_str().unwrap_or_default()),
                ok: v["ok"] == json!(true),
                error: v["error"].as_str().map(str::to_owned),
            }
        })
        .collect();
    assert_eq!(lines.len(), expected, "{tool}: one result per bundle\nstdout: {stdout}\nstderr: {stderr}");
    let all_ok = lines.iter().all(|c| c.ok);
    assert_eq!(out.status.success(), all_ok, "{tool}: exit status {} disagrees with its results", out.status);
    lines
}

/// Verify bundles with sigstore-js: (bundle, public key PEM) pairs.
pub(crate) fn sigstore_js(job: &[(PathBuf, PathBuf)]) -> Vec<Checked> {
    let dir = node_dir();
    let job: Vec<Value> = job.iter().map(|(b, k)| json!({"bundlePath": b, "publicKeyPemPath": k})).collect();
    let job_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(job_file.path(), serde_json::to_vec(&job).unwrap()).unwrap();
    let out = Command::new("node")
        .arg(dir.join("verify-bundle.mjs"))
        .arg(job_file.path())
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `node` ({e}): Node.js must be on PATH; {INSTALL_HINT}"));
    results("sigstore-js", out, job.len())
}

/// Validate bundle files with sigstore-models.
pub(crate) fn sigstore_models(paths: &[PathBuf]) -> Vec<Checked> {
    let out = Command::new(python())
        .arg(interop_dir().join("validate_bundles.py"))
        .args(paths)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run the venv's python ({e}): {INSTALL_HINT}"));
    results("sigstore-models", out, paths.len())
}

pub(crate) fn assert_all_ok(tool: &str, checked: &[Checked]) {
    let failed: Vec<String> = checked
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("  {}: {}", c.path.display(), c.error.as_deref().unwrap_or("?")))
        .collect();
    assert!(failed.is_empty(), "{tool} rejected {} of {} bundles:\n{}", failed.len(), checked.len(), failed.join("\n"));
}

// ---------------------------------------------------------------------------------------------------
// The bundles.

/// A bundle written to disk with the key that signed it.
struct Written {
    bundle: PathBuf,
    key_pem: PathBuf,
    scheme: Scheme,
}

/// Converts key-signed legacy layers and writes each bundle and key into `dir`.
struct Writer<'a> {
    dir: &'a Path,
    written: Vec<Written>,
}

impl Writer<'_> {
    fn key_file(&self, name: &str, pem: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.pub.pem"));
        if !path.exists() {
            std::fs::write(&path, pem).unwrap();
        }
        path
    }

    /// Convert one layer (one signature, verified under `spki_der`) and write its bundle as `name`.
    fn convert(
        &mut self,
        name: &str,
        subject: &ReferrerSubject,
        att: &LegacyLayerInput<'_>,
        spki_der: Vec<u8>,
    ) -> PathBuf {
        let verified = Verified {
            signatures: vec![VerifiedSignature { index: 0, key: VerifiedKey::PublicKey { spki_der } }],
            ..Verified::default()
        };
        let outcomes = convert_layer(subject, att, &verified, OutputFormat::Bundle).unwrap();
        let [outcome] = outcomes.as_slice() else { panic!("{name}: one signature, one outcome") };
        let referrer = outcome.referrer().unwrap_or_else(|| panic!("{name}: blocked: {:?}", outcome.blocked()));
        let blob = referrer.bundle_blob().expect("a bundle referrer has a bundle blob");
        let path = self.dir.join(format!("{name}.sigstore.json"));
        std::fs::write(&path, &blob.bytes).unwrap();
        path
    }

    /// Every key-signed `.att` layer of a scenario (superseded manifests too); returns how many
    /// keyless layers were left out.
    fn scenario(&mut self, s: &Scenario) -> usize {
        let mut keyless = 0;
        for (n, att) in s.attachments.iter().enumerate().filter(|(_, a)| a.kind == AttachmentKind::Attestations) {
            let served = s.repo.manifest(&att.subject).expect("the subject is in the store");
            let subject =
                ReferrerSubject::new(&served.media_type, served.digest.clone(), served.bytes.len() as u64).unwrap();
            let raw = s.repo.manifest(&att.manifest).expect("the legacy manifest is in the store");
            let Manifest::Image(m) = Manifest::parse(&raw.bytes, Some(&raw.media_type)).unwrap().0 else {
                panic!("{}: a legacy .att manifest is an image manifest", s.name)
            };
            for (i, (layer, info)) in m.layers.iter().zip(&att.layers).enumerate() {
                let SignedBy::Key(signer) = &info.signed_by else {
                    keyless += 1;
                    continue;
                };
                let bytes = s.repo.blob(&layer.digest).expect("the layer is in the store");
                let legacy = LegacyLayerInput {
                    legacy_manifest: &att.manifest,
                    layer_index: i,
                    layer,
                    signed: &SignedStatement::parse(bytes.clone()).unwrap(),
                    config_created: None,
                };
                let key = signer.key();
                let scheme = format!("{:?}", signer.scheme()).to_lowercase();
                let name = format!("{}-att{n}-layer{i}-{}-{scheme}", s.name, key.name());
                let bundle = self.convert(&name, &subject, &legacy, key.public_spki_der());
                let key_pem = self.key_file(key.name(), key.public_pem());
                self.written.push(Written { bundle, key_pem, scheme: signer.scheme() });
            }
        }
        keyless
    }

    /// The article's two real `.att` layers, signed with its RSA-4096 KMS key (PKCS#1 v1.5).
    fn article(&mut self) {
        let manifest_bytes = corpus::compact(&format!("{CSSC}/flasksample-v1-attestation-manifest.json"));
        let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes).unwrap();
        let manifest_digest = Digest::sha256(&manifest_bytes);
        // Only the image digest is known; media type and size are stand-ins that do not reach the bundle.
        let subject = ReferrerSubject::new(mt::DOCKER_MANIFEST, CSSC_IMAGE.parse().unwrap(), 1_000).unwrap();
        let key_pem = corpus::path(CSSC_KEY);
        let pem_text = String::from_utf8(corpus::read(CSSC_KEY)).unwrap();
        let spki = att2ref::model::pem::decode_all(&pem_text).unwrap().remove(0).der;
        assert_eq!(manifest.layers.len(), 2);
        for (i, layer) in manifest.layers.iter().enumerate() {
            let bytes = corpus::read(&format!("{CSSC}/sigstore-attestation/{}.tar.gz", layer.digest.hex()));
            let legacy = LegacyLayerInput {
                legacy_manifest: &manifest_digest,
                layer_index: i,
                layer,
                signed: &SignedStatement::parse(Bytes::from(bytes)).unwrap(),
                config_created: None,
            };
            let bundle = self.convert(&format!("article-real-layer{i}"), &subject, &legacy, spki.clone());
            self.written.push(Written { bundle, key_pem: key_pem.clone(), scheme: Scheme::RsaPkcs1Sha256 });
        }
    }

    /// A real layer securesystemslib signed with ECDSA P-256, whose envelope @sigstore/oci also wrapped.
    fn securesystemslib_layer(&mut self) {
        let manifest_bytes = corpus::read("sigstore-oci-writer/legacy-att-manifest.json");
        let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes).unwrap();
        let manifest_digest = Digest::sha256(&manifest_bytes);
        let image = corpus::read("sigstore-oci-writer/image1-manifest.json");
        let subject = ReferrerSubject::new(mt::OCI_MANIFEST, Digest::sha256(&image), image.len() as u64).unwrap();
        let bytes = corpus::read("sigstore-oci-writer/legacy-att-layer0-envelope.json");
        let key = "sigstore-oci-writer/ecdsa-p256.pub.pem";
        let spki =
            att2ref::model::pem::decode_all(&String::from_utf8(corpus::read(key)).unwrap()).unwrap().remove(0).der;
        let legacy = LegacyLayerInput {
            legacy_manifest: &manifest_digest,
            layer_index: 0,
            layer: &manifest.layers[0],
            signed: &SignedStatement::parse(Bytes::from(bytes)).unwrap(),
            config_created: None,
        };
        let bundle = self.convert("securesystemslib-layer0", &subject, &legacy, spki);
        self.written.push(Written { bundle, key_pem: corpus::path(key), scheme: Scheme::EcdsaP256Sha256 });
    }
}

fn writer(dir: &Path) -> Writer<'_> {
    Writer { dir, written: Vec::new() }
}

// ---------------------------------------------------------------------------------------------------
// The checks.

#[test]
fn generated_bundles_verify_in_sigstore_js_and_validate_in_sigstore_models() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path());
    let mut scenarios = att2ref::demo::deterministic_scenarios().unwrap();
    scenarios.push(att2ref::demo::key_types().unwrap());
    let mut keyless = 0;
    for s in &scenarios {
        keyless += w.scenario(s);
    }
    assert!(keyless > 0, "the keyless scenario's layers are the only ones left out");

    // Every key type the generator has, both RSA paddings among them.
    let schemes: std::collections::BTreeSet<String> = w.written.iter().map(|x| format!("{:?}", x.scheme)).collect();
    assert_eq!(schemes.len(), 5, "{schemes:?}");
    assert!(w.written.len() >= 15, "{} bundles", w.written.len());

    let all: Vec<PathBuf> = w.written.iter().map(|x| x.bundle.clone()).collect();
    assert_all_ok("sigstore-models", &sigstore_models(&all));

    let (refused, verifiable): (Vec<&Written>, Vec<&Written>) =
        w.written.iter().partition(|x| sigstore_js_cannot_verify(x.scheme).is_some());
    let job: Vec<(PathBuf, PathBuf)> = verifiable.iter().map(|x| (x.bundle.clone(), x.key_pem.clone())).collect();
    assert_all_ok("sigstore-js", &sigstore_js(&job));

    // What sigstore-js cannot verify fails on the signature, not earlier: everything else about those
    // bundles (parsing, the key hint, the thresholds) passed.
    assert_eq!(refused.len(), 2, "the RSA-PSS and the ECDSA P-384 bundle of key_types");
    let job: Vec<(PathBuf, PathBuf)> = refused.iter().map(|x| (x.bundle.clone(), x.key_pem.clone())).collect();
    for (c, x) in sigstore_js(&job).iter().zip(&refused) {
        let why = sigstore_js_cannot_verify(x.scheme).unwrap_or_default();
        assert!(!c.ok, "sigstore-js now verifies {why} ({}): update this test and the docs", c.path.display());
        assert!(c.error.as_deref().unwrap_or_default().contains("SIGNATURE_ERROR"), "{:?}", c.error);
    }
}

/// Signature schemes sigstore-js 3.1 cannot verify under a bare public key, and why: it calls Node's
/// `crypto.verify` without naming a digest or padding, so the key alone decides them.
fn sigstore_js_cannot_verify(scheme: Scheme) -> Option<&'static str> {
    match scheme {
        Scheme::RsaPssSha256 => Some("RSA-PSS (an RSA key means PKCS#1 v1.5 to it)"),
        Scheme::EcdsaP384Sha384 => Some("ECDSA P-384 with SHA-384 (it hashes with the default, SHA-256)"),
        _ => None,
    }
}

#[test]
fn real_layers_convert_to_bundles_that_verify_in_sigstore_js_and_validate_in_sigstore_models() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path());
    w.article();
    w.securesystemslib_layer();
    let paths: Vec<PathBuf> = w.written.iter().map(|x| x.bundle.clone()).collect();
    assert_all_ok("sigstore-models", &sigstore_models(&paths));
    let job: Vec<(PathBuf, PathBuf)> = w.written.iter().map(|x| (x.bundle.clone(), x.key_pem.clone())).collect();
    assert_all_ok("sigstore-js", &sigstore_js(&job));
}

/// The checks are real: each tool rejects what it should.
#[test]
fn tampered_bundles_fail_the_interop_checks() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path());
    w.scenario(&att2ref::demo::demo().unwrap());
    let good = w.written.swap_remove(0);
    let bundle: Value = serde_json::from_slice(&std::fs::read(&good.bundle).unwrap()).unwrap();
    let variant = |name: &str, edit: &dyn Fn(&mut Value)| -> PathBuf {
        let mut v = bundle.clone();
        edit(&mut v);
        let path = dir.path().join(format!("{name}.sigstore.json"));
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        path
    };

    // One byte added to the signed statement, re-encoded: structurally fine, cryptographically not.
    let tampered_payload = variant("tampered-payload", &|v| {
        let payload = v["dsseEnvelope"]["payload"].as_str().unwrap();
        let mut bytes = att2ref::model::dsse::decode_base64_any(payload).unwrap();
        let at = bytes.iter().position(|b| *b == b'"').unwrap();
        bytes.insert(at, b' ');
        v["dsseEnvelope"]["payload"] = json!(encode_base64(&bytes));
    });
    // A key that did not sign it (which one depends on the demo store's signer).
    let good_pem = std::fs::read_to_string(&good.key_pem).unwrap();
    let other = [TestKey::Ed25519, TestKey::EcdsaP256].into_iter().find(|k| k.public_pem() != good_pem).unwrap();
    let other_key = dir.path().join("other.pub.pem");
    std::fs::write(&other_key, other.public_pem()).unwrap();
    let js = sigstore_js(&[
        (good.bundle.clone(), good.key_pem.clone()),
        (tampered_payload.clone(), good.key_pem.clone()),
        (good.bundle.clone(), other_key),
    ]);
    assert!(js[0].ok, "the untouched bundle verifies: {:?}", js[0].error);
    assert!(!js[1].ok && js[1].error.as_deref().unwrap().contains("SIGNATURE_ERROR"), "{:?}", js[1]);
    assert!(!js[2].ok && js[2].error.as_deref().unwrap().contains("is not the given key's"), "{:?}", js[2]);

    let unknown_field = variant("unknown-field", &|v| v["verificationMaterial"]["x509"] = json!("?"));
    let no_tlog_entries = variant("no-tlog-entries", &|v| {
        v["verificationMaterial"].as_object_mut().unwrap().remove("tlogEntries");
    });
    let bad_media_type =
        variant("media-type", &|v| v["mediaType"] = json!("application/vnd.dev.sigstore.bundle+json;version=0.4"));
    let py = sigstore_models(&[tampered_payload, unknown_field, no_tlog_entries, bad_media_type]);
    assert!(py[0].ok, "a changed payload is still a well-formed bundle: {:?}", py[0].error);
    for c in &py[1..] {
        assert!(!c.ok, "sigstore-models accepted {}", c.path.display());
    }
    assert!(py[1].error.as_deref().unwrap().contains("extra_forbidden"), "{:?}", py[1]);
    assert!(py[2].error.as_deref().unwrap().contains("tlogEntries"), "{:?}", py[2]);
}

/// The bundles `att2ref migrate` actually wrote, read back from the store, pass both tools.
#[tokio::test]
async fn bundles_written_by_migrate_pass_both_tools() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let scenario = att2ref::demo::demo().unwrap();
    att2ref::demo::write_layout(&scenario, &layout).await.unwrap();
    let key = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/rsa-4096.pub.pem");
    let target = format!("ocidir://{}@{}", layout.display(), scenario.image);
    let run = crate::cli::att2ref(&["migrate", &target, "--key", key.to_str().unwrap(), "--insecure-ignore-tlog"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let run = crate::cli::att2ref(&["inspect", &target, "-o", "json"]);
    let report = run.json();
    let blobs = layout.join("blobs/sha256");
    let mut job = Vec::new();
    for entry in report["images"][0]["referrers"]["entries"].as_array().unwrap() {
        let manifest_digest: Digest = entry["digest"].as_str().unwrap().parse().unwrap();
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(blobs.join(manifest_digest.hex())).unwrap()).unwrap();
        let bundle: Digest = manifest["layers"][0]["digest"].as_str().unwrap().parse().unwrap();
        job.push((blobs.join(bundle.hex()), key.clone()));
    }
    assert_eq!(job.len(), 2, "one referrer per legacy layer");
    assert_all_ok("sigstore-js", &sigstore_js(&job));
    let paths: Vec<PathBuf> = job.iter().map(|(b, _)| b.clone()).collect();
    assert_all_ok("sigstore-models", &sigstore_models(&paths));
}
