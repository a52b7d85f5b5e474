//! `att2ref::verification` on the real corpus: the article's RSA/KMS `.att` and `.sig`, its keyless `.sig`
//! signatures, a cosign v3 keyless bundle with inclusion proof, and a key-signed bundle without a log.
//! Negative cases mutate that real data; the few that need a log or CA under our control (certificate
//! expired at the integrated time) use the synthetic Sigstore in `kit`.

mod demo;
mod kit;

use std::sync::Arc;

use crate::corpus;
use att2ref::ErrorKind;
use att2ref::model::bundle::Bundle;
use att2ref::model::cosign::LegacyLayerAnnotations;
use att2ref::model::digest::Digest;
use att2ref::model::dsse::encode_base64;
use att2ref::model::oci::{Annotations, ImageManifest};
use att2ref::model::rekor::{RekorBundle, RekorSpec};
use att2ref::model::signed_statement::SignedStatement;
use att2ref::model::trust::TrustedRoot;
use att2ref::verification::{
    CertificateIdentity, CertificateInfo, FailureReason, LogCheck, Matcher, Policy, PublicKey, RsaPadding, San,
    SignedEntity, Signer, Verifier,
};
use serde_json::{Value, json};

const CSSC: &str = "toddysm-cssc-pipeline/sigstore-test";
const CSSC_IMAGE: &str = "sha256:9bd049b6b470118cc6a02d58595b86107407c9e288c0d556ce342ea8acbafdf4";
const CSSC_KEY: &str = "toddysm-cssc-pipeline/derived/kms-rsa4096-public-key.recovered.pem";
const COSIGN_BUNDLE: &str = "sigstore-cosign/oci-attestation.sigstore.json";
const COSIGN_ROOT: &str = "sigstore-cosign/trusted_root_pgi.json";
const COSIGN_IMAGE: &str = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4";
const PUBLIC_GOOD: &str = "sigstore-trusted-roots/public-good.trusted_root.json";
const STAGING: &str = "sigstore-trusted-roots/staging.trusted_root.json";

fn digest(s: &str) -> Digest {
    s.parse().unwrap()
}

fn root(rel: &str) -> Arc<TrustedRoot> {
    Arc::new(TrustedRoot::parse(&corpus::read(rel)).unwrap())
}

fn cssc_key() -> PublicKey {
    PublicKey::from_pem(&corpus::read(CSSC_KEY)).unwrap()
}

/// The article's two `.att` layers, with the annotations their manifest gives them.
fn cssc_att_layers() -> Vec<(Vec<u8>, Annotations)> {
    let manifest: ImageManifest =
        serde_json::from_slice(&corpus::read(&format!("{CSSC}/flasksample-v1-attestation-manifest.json"))).unwrap();
    assert_eq!(manifest.layers.len(), 2);
    manifest
        .layers
        .iter()
        .map(|l| {
            let blob = corpus::read(&format!("{CSSC}/sigstore-attestation/{}.tar.gz", l.digest.hex()));
            l.digest.verify(&blob).unwrap();
            (blob, l.annotations.clone())
        })
        .collect()
}

fn att_entity(layer: Vec<u8>, annotations: &Annotations) -> SignedEntity {
    SignedEntity::legacy_attestation(layer, LegacyLayerAnnotations::from_annotations(annotations))
}

fn cssc_sig_entity() -> SignedEntity {
    let manifest: ImageManifest =
        serde_json::from_slice(&corpus::read(&format!("{CSSC}/flasksample-v1-signature-manifest.json"))).unwrap();
    let layer = &manifest.layers[0];
    let blob = corpus::read(&format!("{CSSC}/sigstore-signature/{}.tar.gz", layer.digest.hex()));
    layer.digest.verify(&blob).unwrap();
    SignedEntity::legacy_signature(blob, LegacyLayerAnnotations::from_annotations(&layer.annotations))
}

fn key_policy() -> Policy {
    Policy::new().with_key(cssc_key()).insecure_ignore_tlog(true)
}

#[test]
fn article_att_layers_verify_with_recovered_kms_key_when_log_is_skipped() {
    let verifier = Verifier::new(key_policy()).unwrap();
    let image = digest(CSSC_IMAGE);
    let entities: Vec<SignedEntity> = cssc_att_layers().into_iter().map(|(b, a)| att_entity(b, &a)).collect();
    for result in verifier.verify_all(&entities, &image) {
        let v = result.unwrap();
        assert_eq!(v.key_id(), Some(cssc_key().key_id()));
        assert_eq!(v.rsa_padding(), Some(RsaPadding::Pkcs1v15));
        assert_eq!(v.signature_index, 0);
        assert_eq!(v.log, LogCheck::Skipped);
        assert_eq!(v.subject.name, "562077019569.dkr.ecr.us-west-2.amazonaws.com/flasksample");
        assert_eq!(v.predicate_type.as_deref(), Some("cosign.sigstore.dev/attestation/v1"));
    }
}

#[test]
fn article_sig_verifies_with_recovered_kms_key_when_log_is_skipped() {
    let v = Verifier::new(key_policy()).unwrap().verify(&cssc_sig_entity(), &digest(CSSC_IMAGE)).unwrap();
    assert_eq!(v.rsa_padding(), Some(RsaPadding::Pkcs1v15));
    assert!(matches!(v.signer, Signer::Key { .. }));
    assert!(!v.log.is_verified());
}

#[test]
fn article_att_and_sig_fail_with_no_log_entry_unless_log_is_skipped() {
    let verifier = Verifier::new(Policy::new().with_key(cssc_key()).with_trusted_root(root(PUBLIC_GOOD))).unwrap();
    let image = digest(CSSC_IMAGE);
    for (blob, ann) in cssc_att_layers() {
        let f = verifier.verify(&att_entity(blob, &ann), &image).unwrap_err();
        assert_eq!(f.reason, FailureReason::NoLogEntry, "{f}");
        assert_eq!(f.kind(), ErrorKind::VerificationFailed);
    }
    let f = verifier.verify(&cssc_sig_entity(), &image).unwrap_err();
    assert_eq!(f.reason, FailureReason::NoLogEntry);
}

#[test]
fn tampered_payload_fails_signature() {
    let (blob, ann) = cssc_att_layers().pop().unwrap();
    let mut env: Value = serde_json::from_slice(&blob).unwrap();
    let payload = att2ref::model::dsse::decode_base64_any(env["payload"].as_str().unwrap()).unwrap();
    let tampered = String::from_utf8(payload).unwrap().replace("flasksample", "flasksamplf");
    env["payload"] = json!(encode_base64(tampered.as_bytes()));
    let entity = att_entity(serde_json::to_vec(&env).unwrap(), &ann);
    let f = Verifier::new(key_policy()).unwrap().verify(&entity, &digest(CSSC_IMAGE)).unwrap_err();
    assert_eq!(f.reason, FailureReason::SignatureInvalid, "{f}");
}

#[test]
fn url_safe_base64_envelope_still_verifies() {
    let (blob, ann) = cssc_att_layers().pop().unwrap();
    let mut env: Value = serde_json::from_slice(&blob).unwrap();
    let payload = env["payload"].as_str().unwrap().replace('+', "-").replace('/', "_");
    env["payload"] = json!(payload);
    let sig = env["signatures"][0]["sig"].as_str().unwrap().replace('+', "-").replace('/', "_");
    env["signatures"][0]["sig"] = json!(sig);
    let bytes = serde_json::to_vec(&env).unwrap();
    assert!(bytes.contains(&b'_') || bytes.contains(&b'-'), "the test must exercise the URL-safe alphabet");
    Verifier::new(key_policy()).unwrap().verify(&att_entity(bytes, &ann), &digest(CSSC_IMAGE)).unwrap();
}

#[test]
fn several_signatures_pass_if_any_verifies_and_report_the_index() {
    let (blob, ann) = cssc_att_layers().pop().unwrap();
    let mut env: Value = serde_json::from_slice(&blob).unwrap();
    let real = env["signatures"][0].clone();
    env["signatures"] = json!([{"keyid": "other", "sig": encode_base64(&[1u8; 512])}, real]);
    let entity = att_entity(serde_json::to_vec(&env).unwrap(), &ann);
    let v = Verifier::new(key_policy()).unwrap().verify(&entity, &digest(CSSC_IMAGE)).unwrap();
    assert_eq!(v.signature_index, 1);
}

#[test]
fn wrong_subject_fails_subject_mismatch() {
    let other = digest("sha256:0000000000000000000000000000000000000000000000000000000000000001");
    let verifier = Verifier::new(key_policy()).unwrap();
    let (blob, ann) = cssc_att_layers().pop().unwrap();
    let f = verifier.verify(&att_entity(blob, &ann), &other).unwrap_err();
    assert_eq!(f.reason, FailureReason::SubjectMismatch, "{f}");
    let f = verifier.verify(&cssc_sig_entity(), &other).unwrap_err();
    assert_eq!(f.reason, FailureReason::SubjectMismatch, "{f}");
}

/// `SignedEntity::parsed_attestation` (an envelope parsed once, what `migrate` and `verify` hand the
/// verifier) gives exactly what `legacy_attestation` (the bytes) gives: on the article's layer, a
/// tampered payload, a second signature, another image, and with a log required that is absent.
#[test]
fn a_parsed_envelope_verifies_as_its_bytes_do() {
    let (blob, ann) = cssc_att_layers().pop().unwrap();
    let env: Value = serde_json::from_slice(&blob).unwrap();
    let payload = att2ref::model::dsse::decode_base64_any(env["payload"].as_str().unwrap()).unwrap();
    let mut tampered = env.clone();
    let edited = String::from_utf8(payload).unwrap().replace("flasksample", "flasksamplf");
    tampered["payload"] = json!(encode_base64(edited.as_bytes()));
    let mut several = env.clone();
    several["signatures"] = json!([{"keyid": "other", "sig": encode_base64(&[1u8; 512])}, env["signatures"][0]]);
    let other = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
    let cases = [
        (blob.clone(), CSSC_IMAGE),
        (serde_json::to_vec(&tampered).unwrap(), CSSC_IMAGE),
        (serde_json::to_vec(&several).unwrap(), CSSC_IMAGE),
        (blob, other),
    ];
    let policies = [key_policy(), Policy::new().with_key(cssc_key()).with_trusted_root(root(PUBLIC_GOOD))];
    let (mut verified, mut reasons) = (0, Vec::new());
    for policy in policies {
        let verifier = Verifier::new(policy).unwrap();
        for (bytes, image) in &cases {
            let image = digest(image);
            let raw = verifier.verify(&att_entity(bytes.clone(), &ann), &image);
            let signed = Arc::new(SignedStatement::parse(bytes::Bytes::from(bytes.clone())).unwrap());
            let annotations = LegacyLayerAnnotations::from_annotations(&ann);
            let parsed = verifier.verify(&SignedEntity::parsed_attestation(signed, annotations), &image);
            match (raw, parsed) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a, b);
                    verified += 1;
                }
                (Err(a), Err(b)) => {
                    assert_eq!((a.reason, a.to_string()), (b.reason, b.to_string()));
                    reasons.push(a.reason);
                }
                (a, b) => panic!("bytes: {a:?}, parsed: {b:?}"),
            }
        }
    }
    assert_eq!(verified, 2, "the article's layer and the one with a second signature verify without a log");
    assert_eq!(
        reasons,
        [
            FailureReason::SignatureInvalid,
            FailureReason::SubjectMismatch,
            FailureReason::NoLogEntry,
            FailureReason::NoLogEntry,
            FailureReason::NoLogEntry,
            FailureReason::NoLogEntry,
        ]
    );
}

#[test]
fn malformed_layer_is_invalid_format_not_verification_failure() {
    let entity = att_entity(b"{not json".to_vec(), &Annotations::new());
    let f = Verifier::new(key_policy()).unwrap().verify(&entity, &digest(CSSC_IMAGE)).unwrap_err();
    assert_eq!(f.reason, FailureReason::Malformed);
    assert_eq!(f.kind(), ErrorKind::InvalidFormat);
    assert_eq!(att2ref::Error::from(f).kind(), ErrorKind::InvalidFormat);
}

// ---- key-signed bundle without a log (securesystemslib + @sigstore/oci) ----

const WRITER_IMAGE: &str = "sha256:ccc3bb21a9e5fb9763bc7c4d7b5eb24f94030e2223acf5ad467b49d10b608440";

fn writer_bundle() -> SignedEntity {
    SignedEntity::bundle(Bundle::parse(&corpus::read("sigstore-oci-writer/bundle-slsa1-ecdsa.json")).unwrap())
}

#[test]
fn key_bundle_without_log_verifies_only_when_log_is_skipped() {
    let key = PublicKey::from_pem(&corpus::read("sigstore-oci-writer/ecdsa-p256.pub.pem")).unwrap();
    let image = digest(WRITER_IMAGE);
    let v = Verifier::new(Policy::new().with_key(key.clone()).insecure_ignore_tlog(true))
        .unwrap()
        .verify(&writer_bundle(), &image)
        .unwrap();
    assert_eq!(v.key_id(), Some(key.key_id()));
    assert_eq!(v.predicate_type.as_deref(), Some("https://slsa.dev/provenance/v1"));
    let f = Verifier::new(Policy::new().with_key(key).with_trusted_root(root(PUBLIC_GOOD)))
        .unwrap()
        .verify(&writer_bundle(), &image)
        .unwrap_err();
    assert_eq!(f.reason, FailureReason::NoLogEntry);
}

#[test]
fn wrong_key_fails_unknown_key() {
    let other = kit::generated_p256_key();
    let f = Verifier::new(Policy::new().with_key(other).insecure_ignore_tlog(true))
        .unwrap()
        .verify(&writer_bundle(), &digest(WRITER_IMAGE))
        .unwrap_err();
    assert_eq!(f.reason, FailureReason::UnknownKey, "{f}");
}

// ---- cosign v3 keyless bundle with inclusion proof ----

fn cosign_bundle_json() -> Value {
    serde_json::from_slice(&corpus::read(COSIGN_BUNDLE)).unwrap()
}

fn bundle_entity(v: &Value) -> SignedEntity {
    SignedEntity::bundle(Bundle::parse(&serde_json::to_vec(v).unwrap()).unwrap())
}

fn cosign_identity() -> (String, String) {
    let b = Bundle::parse(&corpus::read(COSIGN_BUNDLE)).unwrap();
    let att2ref::model::bundle::VerificationKey::Certificate(c) = &b.verification_material.key else {
        panic!("expected a leaf certificate")
    };
    let info = CertificateInfo::from_der(&c.raw_bytes).unwrap();
    assert_eq!(info.sans, vec![San::Email("cody@soyland.com".into())]);
    assert_eq!(info.oidc_issuer.as_deref(), Some("https://github.com/login/oauth"));
    (info.sans[0].value().to_string(), info.oidc_issuer.unwrap())
}

fn keyless_policy(root_rel: &str) -> Policy {
    let (id, issuer) = cosign_identity();
    Policy::new()
        .with_trusted_root(root(root_rel))
        .with_identity(CertificateIdentity::new(Matcher::exact(id), Matcher::exact(issuer)))
}

fn verify_cosign(
    policy: Policy,
    bundle: &Value,
) -> Result<att2ref::verification::Verification, att2ref::verification::Failure> {
    Verifier::new(policy).unwrap().verify(&bundle_entity(bundle), &digest(COSIGN_IMAGE))
}

#[test]
fn cosign_v3_bundle_verifies_keyless_with_inclusion_proof_and_checkpoint() {
    let v = verify_cosign(keyless_policy(COSIGN_ROOT), &cosign_bundle_json()).unwrap();
    let Signer::Certificate { identity, issuer, .. } = &v.signer else { panic!("expected a certificate signer") };
    assert_eq!(identity, "cody@soyland.com");
    assert_eq!(issuer, "https://github.com/login/oauth");
    assert_eq!(v.verified_time, Some(1740770291));
    let LogCheck::Verified { entries } = &v.log else { panic!("log not verified") };
    let e = &entries[0];
    assert_eq!((e.log_index, e.kind.as_str(), e.promise_verified), (175508996, "dsse/0.0.1", true));
    assert_eq!(e.log_id, "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d");
    let proof = e.proof.as_ref().unwrap();
    assert_eq!((proof.log_index, proof.tree_size), (53604734, 53604735));
    assert_eq!(proof.checkpoint_origin, "rekor.sigstore.dev - 1193050959916656506");
    // The regexp forms work too.
    let p = Policy::new().with_trusted_root(root(COSIGN_ROOT)).with_identity(CertificateIdentity::new(
        Matcher::regex(r"^cody@soyland\.com$").unwrap(),
        Matcher::regex(r"^https://github\.com/").unwrap(),
    ));
    verify_cosign(p, &cosign_bundle_json()).unwrap();
}

#[test]
fn cosign_bundle_identity_and_issuer_mismatch() {
    let (id, issuer) = cosign_identity();
    let wrong_id = Policy::new()
        .with_trusted_root(root(COSIGN_ROOT))
        .with_identity(CertificateIdentity::new(Matcher::exact("someone@example.com"), Matcher::exact(issuer)));
    assert_eq!(verify_cosign(wrong_id, &cosign_bundle_json()).unwrap_err().reason, FailureReason::IdentityMismatch);
    let wrong_issuer = Policy::new()
        .with_trusted_root(root(COSIGN_ROOT))
        .with_identity(CertificateIdentity::new(Matcher::exact(id), Matcher::exact("https://accounts.google.com")));
    assert_eq!(verify_cosign(wrong_issuer, &cosign_bundle_json()).unwrap_err().reason, FailureReason::IssuerMismatch);
    let none = Policy::new().with_trusted_root(root(COSIGN_ROOT));
    assert_eq!(verify_cosign(none, &cosign_bundle_json()).unwrap_err().reason, FailureReason::NoIdentityPolicy);
}

#[test]
fn cosign_bundle_missing_inclusion_proof_fails() {
    let mut b = cosign_bundle_json();
    b["verificationMaterial"]["tlogEntries"][0].as_object_mut().unwrap().remove("inclusionProof");
    let f = verify_cosign(keyless_policy(COSIGN_ROOT), &b).unwrap_err();
    assert_eq!(f.reason, FailureReason::MissingInclusionProof, "{f}");
}

#[test]
fn cosign_bundle_bad_proof_or_checkpoint_fails_inclusion_proof() {
    let mut b = cosign_bundle_json();
    b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][3] = json!(encode_base64(&[7u8; 32]));
    let f = verify_cosign(keyless_policy(COSIGN_ROOT), &b).unwrap_err();
    assert_eq!(f.reason, FailureReason::InclusionProofInvalid, "{f}");

    let mut b = cosign_bundle_json();
    let cp = b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]["envelope"]
        .as_str()
        .unwrap()
        .replace("53604735\n", "53604736\n");
    b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]["envelope"] = json!(cp);
    let f = verify_cosign(keyless_policy(COSIGN_ROOT), &b).unwrap_err();
    assert_eq!(f.reason, FailureReason::InclusionProofInvalid, "{f}");
}

#[test]
fn cosign_bundle_unknown_log_and_corrupted_set() {
    let mut b = cosign_bundle_json();
    b["verificationMaterial"]["tlogEntries"][0]["logId"]["keyId"] = json!(encode_base64(&[9u8; 32]));
    assert_eq!(verify_cosign(keyless_policy(COSIGN_ROOT), &b).unwrap_err().reason, FailureReason::UnknownLog);

    let mut b = cosign_bundle_json();
    let set = &mut b["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]["signedEntryTimestamp"];
    let mut raw = att2ref::model::dsse::decode_base64_any(set.as_str().unwrap()).unwrap();
    raw[10] ^= 1;
    *set = json!(encode_base64(&raw));
    assert_eq!(verify_cosign(keyless_policy(COSIGN_ROOT), &b).unwrap_err().reason, FailureReason::SetInvalid);
}

#[test]
fn cosign_bundle_chain_to_untrusted_root_fails() {
    // Public-good logs, but only the staging certificate authorities.
    let mut r = (*root(COSIGN_ROOT)).clone();
    r.certificate_authorities = root(STAGING).certificate_authorities.clone();
    let (id, issuer) = cosign_identity();
    let p = Policy::new()
        .with_trusted_root(r)
        .with_identity(CertificateIdentity::new(Matcher::exact(id), Matcher::exact(issuer)));
    let f = verify_cosign(p, &cosign_bundle_json()).unwrap_err();
    assert_eq!(f.reason, FailureReason::UntrustedChain, "{f}");
}

#[test]
fn cosign_bundle_with_log_skipped_checks_certificate_at_verification_time() {
    let f = verify_cosign(keyless_policy(COSIGN_ROOT).insecure_ignore_tlog(true), &cosign_bundle_json()).unwrap_err();
    assert_eq!(f.reason, FailureReason::CertificateExpired, "{f}");
    let v = verify_cosign(
        keyless_policy(COSIGN_ROOT).insecure_ignore_tlog(true).at_time(1740770300),
        &cosign_bundle_json(),
    )
    .unwrap();
    assert_eq!(v.log, LogCheck::Skipped);
}

// ---- the same attestation in cosign's legacy `.att` layout (the inverse mapping) ----

/// The cosign bundle turned back into a legacy layer: envelope in cosign's Go field order (whose SHA-256
/// is the logged `envelopeHash`), certificate annotation, and a legacy Rekor bundle annotation.
fn cosign_as_legacy(envelope_bytes: Option<Vec<u8>>) -> SignedEntity {
    let b = cosign_bundle_json();
    let env = &b["dsseEnvelope"];
    let bytes = envelope_bytes.unwrap_or_else(|| {
        format!(
            r#"{{"payloadType":{},"payload":{},"signatures":[{{"keyid":"","sig":{}}}]}}"#,
            env["payloadType"], env["payload"], env["signatures"][0]["sig"]
        )
        .into_bytes()
    });
    let e = &b["verificationMaterial"]["tlogEntries"][0];
    let cert =
        att2ref::model::dsse::decode_base64_any(b["verificationMaterial"]["certificate"]["rawBytes"].as_str().unwrap())
            .unwrap();
    let log_id = att2ref::model::dsse::decode_base64_any(e["logId"]["keyId"].as_str().unwrap()).unwrap();
    let legacy_bundle = json!({
        "SignedEntryTimestamp": e["inclusionPromise"]["signedEntryTimestamp"],
        "Payload": {
            "body": e["canonicalizedBody"],
            "integratedTime": e["integratedTime"].as_str().unwrap().parse::<i64>().unwrap(),
            "logIndex": e["logIndex"].as_str().unwrap().parse::<i64>().unwrap(),
            "logID": hex::encode(log_id),
        }
    });
    let mut ann = Annotations::new();
    ann.insert("dev.cosignproject.cosign/signature".into(), String::new());
    ann.insert("dev.sigstore.cosign/certificate".into(), kit::pem("CERTIFICATE", &cert));
    ann.insert("dev.sigstore.cosign/chain".into(), String::new());
    ann.insert("dev.sigstore.cosign/bundle".into(), legacy_bundle.to_string());
    att_entity(bytes, &ann)
}

#[test]
fn cosign_attestation_in_legacy_layout_verifies_with_dsse_body_binding() {
    let v = Verifier::new(keyless_policy(COSIGN_ROOT)).unwrap().verify(&cosign_as_legacy(None), &digest(COSIGN_IMAGE));
    let v = v.unwrap();
    let LogCheck::Verified { entries } = &v.log else { panic!() };
    assert!(entries[0].promise_verified && entries[0].proof.is_none());
}

#[test]
fn legacy_body_hash_not_matching_the_envelope_fails_body_mismatch() {
    // Same payload and signature (so the signature still verifies), different envelope bytes.
    let b = cosign_bundle_json();
    let reserialised = serde_json::to_vec_pretty(&b["dsseEnvelope"]).unwrap();
    let f = Verifier::new(keyless_policy(COSIGN_ROOT))
        .unwrap()
        .verify(&cosign_as_legacy(Some(reserialised)), &digest(COSIGN_IMAGE))
        .unwrap_err();
    assert_eq!(f.reason, FailureReason::BodyMismatch, "{f}");
}

// ---- the article's three keyless `.sig` signatures (legacy Rekor bundle, hashedrekord) ----

fn keyless_sig(n: u8) -> (SignedEntity, Digest, Value) {
    let out: Value = serde_json::from_slice(&corpus::read(&format!(
        "{CSSC}/sigstore-ephemeral-keys/flasksample-v{n}-ephemeral-verification.json"
    )))
    .unwrap();
    let item = &out[0];
    let rekor = RekorBundle::from_value(&item["optional"]["Bundle"]).unwrap();
    let RekorSpec::HashedRekordV001(h) = &rekor.body.spec else { panic!("expected hashedrekord") };
    // The layer is the simple-signing payload rebuilt compactly with `"optional":null`.
    let payload = json!({"critical": item["critical"], "optional": null}).to_string().into_bytes();
    assert!(h.hash.is_sha256(Digest::sha256(&payload).hex()), "rebuilt payload of v{n} is not the logged one");
    let mut ann = Annotations::new();
    ann.insert("dev.cosignproject.cosign/signature".into(), encode_base64(&h.signature));
    ann.insert("dev.sigstore.cosign/certificate".into(), String::from_utf8(h.public_key_pem.clone()).unwrap());
    ann.insert("dev.sigstore.cosign/bundle".into(), item["optional"]["Bundle"].to_string());
    let image = digest(item["critical"]["image"]["docker-manifest-digest"].as_str().unwrap());
    (SignedEntity::legacy_signature(payload, LegacyLayerAnnotations::from_annotations(&ann)), image, item.clone())
}

fn article_keyless_policy() -> Policy {
    Policy::new().with_trusted_root(root(PUBLIC_GOOD)).with_identity(CertificateIdentity::new(
        Matcher::exact("toddysm_dev1@outlook.com"),
        Matcher::exact("https://github.com/login/oauth"),
    ))
}

#[test]
fn article_keyless_signatures_verify_chain_set_and_body() {
    let verifier = Verifier::new(article_keyless_policy()).unwrap();
    for n in 1..=3 {
        let (entity, image, item) = keyless_sig(n);
        let v = verifier.verify(&entity, &image).unwrap_or_else(|f| panic!("v{n}: {f}"));
        let Signer::Certificate { identity, issuer, .. } = &v.signer else { panic!() };
        assert_eq!(identity, item["optional"]["Subject"].as_str().unwrap());
        assert_eq!(issuer, item["optional"]["Issuer"].as_str().unwrap());
        let LogCheck::Verified { entries } = &v.log else { panic!() };
        assert_eq!(entries[0].kind, "hashedrekord/0.0.1");
        assert_eq!(Some(entries[0].integrated_time), v.verified_time);
    }
}

#[test]
fn article_keyless_signature_unknown_log_and_corrupted_set() {
    let verifier = Verifier::new(article_keyless_policy()).unwrap();
    let (_, image, item) = keyless_sig(1);
    let rebuild = |bundle: Value| {
        let (entity, ..) = keyless_sig(1);
        let SignedEntity::LegacySignature(mut s) = entity else { unreachable!() };
        let mut ann = Annotations::new();
        ann.insert("dev.cosignproject.cosign/signature".into(), s.annotations.signature.take().unwrap());
        ann.insert("dev.sigstore.cosign/certificate".into(), s.annotations.certificate_pem.take().unwrap());
        ann.insert("dev.sigstore.cosign/bundle".into(), bundle.to_string());
        SignedEntity::legacy_signature(s.layer, LegacyLayerAnnotations::from_annotations(&ann))
    };
    let mut bundle = item["optional"]["Bundle"].clone();
    bundle["Payload"]["logID"] = json!(hex::encode([5u8; 32]));
    assert_eq!(verifier.verify(&rebuild(bundle), &image).unwrap_err().reason, FailureReason::UnknownLog);

    let mut bundle = item["optional"]["Bundle"].clone();
    let mut set = att2ref::model::dsse::decode_base64_any(bundle["SignedEntryTimestamp"].as_str().unwrap()).unwrap();
    let last = set.len() - 1;
    set[last] ^= 0x40;
    bundle["SignedEntryTimestamp"] = json!(encode_base64(&set));
    assert_eq!(verifier.verify(&rebuild(bundle), &image).unwrap_err().reason, FailureReason::SetInvalid);

    // A different integrated time is not what the log signed.
    let mut bundle = item["optional"]["Bundle"].clone();
    bundle["Payload"]["integratedTime"] = json!(1665804211);
    assert_eq!(verifier.verify(&rebuild(bundle), &image).unwrap_err().reason, FailureReason::SetInvalid);
}

#[test]
fn article_keyless_signature_as_message_signature_bundle() {
    // The §2.6 mapping of a `.sig` layer (v0.1 media type: a promise suffices, no proof needed).
    let (entity, image, item) = keyless_sig(1);
    let SignedEntity::LegacySignature(s) = entity else { unreachable!() };
    let rekor = RekorBundle::from_value(&item["optional"]["Bundle"]).unwrap();
    let RekorSpec::HashedRekordV001(h) = &rekor.body.spec else { unreachable!() };
    let cert = att2ref::model::pem::decode_certificates(std::str::from_utf8(&h.public_key_pem).unwrap()).unwrap();
    let bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": {
            "x509CertificateChain": {"certificates": [{"rawBytes": encode_base64(&cert[0])}]},
            "tlogEntries": [{
                "logIndex": rekor.payload.log_index.to_string(),
                "logId": {"keyId": encode_base64(&rekor.log_id)},
                "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
                "integratedTime": rekor.payload.integrated_time.to_string(),
                "inclusionPromise": {"signedEntryTimestamp": encode_base64(&rekor.signed_entry_timestamp)},
                "canonicalizedBody": rekor.payload.body,
            }]
        },
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": encode_base64(&Digest::sha256(&s.layer).raw())},
            "signature": encode_base64(&h.signature)
        }
    });
    let parsed = Bundle::parse(bundle.to_string().as_bytes()).unwrap();
    let verifier = Verifier::new(article_keyless_policy()).unwrap();
    let v = verifier.verify(&SignedEntity::bundle_with_artifact(parsed.clone(), s.layer.clone()), &image).unwrap();
    assert_eq!(v.subject.digest, image.to_string());
    // Without the payload the signature still verifies over the digest, but the image cannot be bound.
    let f = verifier.verify(&SignedEntity::bundle(parsed.clone()), &image).unwrap_err();
    assert_eq!(f.kind(), ErrorKind::InvalidFormat, "{f}");
    // Another artifact is not what was signed.
    let f = verifier.verify(&SignedEntity::bundle_with_artifact(parsed, b"{}".to_vec()), &image).unwrap_err();
    assert_eq!(f.reason, FailureReason::SignatureInvalid, "{f}");
}
