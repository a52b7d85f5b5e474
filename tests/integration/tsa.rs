//! RFC 3161 timestamps through `att2ref::verification`, with the TEST-ONLY timestamp authority of
//! `fixtures/tsa` (made once by `fixtures/tsa/generate.sh`): the @sigstore/oci bundle and its legacy `.att`
//! twin from the corpus with stamps over their DSSE signature (and over the whole layer, cosign's legacy
//! imprint), and a keyless-style bundle whose only trusted time is its stamp.

use std::sync::Arc;

use crate::corpus;
use crate::schema::assert_valid;
use att2ref::model::bundle::Bundle;
use att2ref::model::cosign::LegacyLayerAnnotations;
use att2ref::model::digest::Digest;
use att2ref::model::dsse::encode_base64;
use att2ref::model::oci::ImageManifest;
use att2ref::model::pem::decode_certificates;
use att2ref::model::trust::TrustedRoot;
use att2ref::verification::{
    CertificateIdentity, FailureReason, ImprintCovers, Matcher, Policy, PublicKey, SignedEntity, TimestampCheck,
    Verification, Verifier,
};
use serde_json::{Value, json};

const WRITER_IMAGE: &str = "sha256:ccc3bb21a9e5fb9763bc7c4d7b5eb24f94030e2223acf5ad467b49d10b608440";
const TSA_URI: &str = "https://tsa.att2ref.test";
const RFC3161_ANNOTATION: &str = "dev.sigstore.cosign/rfc3161timestamp";

fn fixture(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tsa").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

fn cert_b64(pem_name: &str) -> String {
    let ders = decode_certificates(std::str::from_utf8(&fixture(pem_name)).unwrap()).unwrap();
    encode_base64(&ders[0])
}

/// A trusted root built from the fixture PEMs: the test TSA (leaf + root), and the Fulcio-like CA.
fn trusted_root(with_tsa: bool) -> Arc<TrustedRoot> {
    let chain = |pems: &[&str]| json!({ "certificates": pems.iter().map(|p| json!({"rawBytes": cert_b64(p)})).collect::<Vec<_>>() });
    let tsas = if with_tsa {
        json!([{
            "subject": {"organization": "att2ref test", "commonName": "att2ref test TSA"},
            "uri": TSA_URI,
            "certChain": chain(&["tsa-ec.pem", "root.pem"]),
            "validFor": {"start": "2020-01-01T00:00:00Z"}
        }])
    } else {
        json!([])
    };
    let root = json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [],
        "certificateAuthorities": [{
            "subject": {"organization": "att2ref test", "commonName": "att2ref test Fulcio-like root"},
            "uri": "https://fulcio.att2ref.test",
            "certChain": chain(&["fulcio-root.pem"]),
            "validFor": {"start": "2020-01-01T00:00:00Z"}
        }],
        "ctlogs": [],
        "timestampAuthorities": tsas
    });
    Arc::new(TrustedRoot::parse(&serde_json::to_vec(&root).unwrap()).unwrap())
}

fn writer_key() -> PublicKey {
    PublicKey::from_pem(&corpus::read("sigstore-oci-writer/ecdsa-p256.pub.pem")).unwrap()
}

fn key_policy(with_tsa: bool) -> Policy {
    Policy::new().with_key(writer_key()).with_trusted_root(trusted_root(with_tsa)).insecure_ignore_tlog(true)
}

/// The corpus bundle with `stamp` (a fixture file name) in its timestampVerificationData.
fn stamped_bundle(stamp: &str) -> SignedEntity {
    let mut v: Value = serde_json::from_slice(&corpus::read("sigstore-oci-writer/bundle-slsa1-ecdsa.json")).unwrap();
    v["verificationMaterial"]["timestampVerificationData"] =
        json!({"rfc3161Timestamps": [{"signedTimestamp": encode_base64(&fixture(stamp))}]});
    SignedEntity::bundle(Bundle::parse(&serde_json::to_vec(&v).unwrap()).unwrap())
}

/// The corpus legacy `.att` layer 0 with its manifest annotations plus cosign's timestamp annotation.
fn stamped_legacy_att(stamp: &str) -> SignedEntity {
    let manifest: ImageManifest =
        serde_json::from_slice(&corpus::read("sigstore-oci-writer/legacy-att-manifest.json")).unwrap();
    let layer = corpus::read("sigstore-oci-writer/legacy-att-layer0-envelope.json");
    manifest.layers[0].digest.verify(&layer).unwrap();
    let mut annotations = manifest.layers[0].annotations.clone();
    let value = json!({"SignedRFC3161Timestamp": encode_base64(&fixture(stamp))}).to_string();
    annotations.insert(RFC3161_ANNOTATION.to_owned(), value);
    SignedEntity::legacy_attestation(layer, LegacyLayerAnnotations::from_annotations(&annotations))
}

fn image() -> Digest {
    WRITER_IMAGE.parse().unwrap()
}

/// The verification inside a full report must validate against the published schema.
fn assert_schema(v: &Verification) {
    let report = json!({
        "format": "att2ref.dev/verify/v1",
        "target": "registry.test/app",
        "policy": {"keys": [], "trustedRoot": true, "identities": [], "insecureIgnoreTlog": true},
        "images": [{
            "reference": "registry.test/app",
            "digest": WRITER_IMAGE,
            "subject": {"present": false},
            "results": [{
                "location": {"source": "referrer", "manifest": WRITER_IMAGE, "blob": WRITER_IMAGE},
                "verified": true,
                "verification": serde_json::to_value(v).unwrap()
            }]
        }],
        "errors": []
    });
    assert_valid("verify.schema.json", &report);
}

#[track_caller]
fn single_stamp(v: &Verification) -> &att2ref::verification::VerifiedTimestamp {
    match &v.timestamps {
        TimestampCheck::Verified { stamps } if stamps.len() == 1 => &stamps[0],
        other => panic!("expected one verified timestamp, got {other:?}"),
    }
}

#[test]
fn bundle_stamp_over_its_signature_verifies() {
    let v = Verifier::new(key_policy(true)).unwrap().verify(&stamped_bundle("bundle-sig.tsr"), &image()).unwrap();
    let s = single_stamp(&v);
    assert_eq!(s.authority, TSA_URI);
    assert_eq!(s.covers, ImprintCovers::Signature);
    assert_eq!(s.hash_algorithm, "sha256");
    assert_eq!(v.verified_time, None, "key-signed content has no certificate to check at the stamp's time");
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["timestamps"]["status"], "verified");
    assert_eq!(json["timestamps"]["stamps"][0]["covers"], "signature");
    assert_eq!(json["timestamps"]["stamps"][0]["genTime"], s.gen_time);
    assert_schema(&v);
}

#[test]
fn without_timestamp_authorities_stamps_are_not_checked() {
    let v = Verifier::new(key_policy(false)).unwrap().verify(&stamped_bundle("bundle-sig.tsr"), &image()).unwrap();
    assert_eq!(v.timestamps, TimestampCheck::NotChecked { count: 1 });
    assert_eq!(serde_json::to_value(&v).unwrap()["timestamps"], json!({"status": "not-checked", "count": 1}));
    assert_schema(&v);
    // Even a stamp over other data is only "not checked" then: nothing vouches either way.
    let v = Verifier::new(key_policy(false)).unwrap().verify(&stamped_bundle("ec.tsr"), &image()).unwrap();
    assert_eq!(v.timestamps, TimestampCheck::NotChecked { count: 1 });
}

#[test]
fn bundle_stamp_over_other_data_fails_the_attestation() {
    let verifier = Verifier::new(key_policy(true)).unwrap();
    // A valid stamp of the same TSA, but over other bytes; and the legacy-layer imprint, which bundles
    // do not accept.
    for stamp in ["ec.tsr", "legacy-layer.tsr"] {
        let f = verifier.verify(&stamped_bundle(stamp), &image()).unwrap_err();
        assert_eq!(f.reason, FailureReason::TimestampInvalid, "{stamp}: {f}");
        assert!(f.message.contains("RFC 3161 timestamp #0") && f.message.contains("imprint"), "{f}");
        assert_eq!(f.reason.as_str(), "timestamp-invalid");
    }
    // A TSA the trusted root does not list.
    let f = verifier.verify(&stamped_bundle("rogue.tsr"), &image()).unwrap_err();
    assert_eq!(f.reason, FailureReason::TimestampInvalid, "{f}");
    // Garbage is malformed, not a verification verdict.
    let f = verifier.verify(&stamped_bundle("root.pem"), &image()).unwrap_err();
    assert_eq!(f.reason, FailureReason::Malformed, "{f}");
}

#[test]
fn legacy_att_accepts_the_layer_or_the_signature_imprint_and_says_which() {
    let verifier = Verifier::new(key_policy(true)).unwrap();
    for (stamp, covers) in [("legacy-layer.tsr", ImprintCovers::Layer), ("bundle-sig.tsr", ImprintCovers::Signature)] {
        let v = verifier.verify(&stamped_legacy_att(stamp), &image()).unwrap();
        assert_eq!(single_stamp(&v).covers, covers, "{stamp}");
        assert_schema(&v);
    }
    let f = verifier.verify(&stamped_legacy_att("ec.tsr"), &image()).unwrap_err();
    assert_eq!(f.reason, FailureReason::TimestampInvalid, "{f}");
    assert!(f.message.contains("nor of the whole layer"), "{f}");
}

// ---- a keyless-style bundle whose only trusted time is its stamp ----

fn keyless() -> (SignedEntity, Digest) {
    let bundle = Bundle::parse(&fixture("keyless-bundle.json")).unwrap();
    let subject = String::from_utf8(fixture("keyless-subject.txt")).unwrap();
    (SignedEntity::bundle(bundle), subject.trim().parse().unwrap())
}

fn keyless_policy(with_tsa: bool) -> Policy {
    Policy::new()
        .with_trusted_root(trusted_root(with_tsa))
        .with_identity(CertificateIdentity::new(
            Matcher::exact("signer@att2ref.test"),
            Matcher::exact("https://issuer.att2ref.test"),
        ))
        .insecure_ignore_tlog(true)
}

#[test]
fn verified_stamp_is_the_signing_time_for_a_short_lived_certificate() {
    let (entity, subject) = keyless();
    let v = Verifier::new(keyless_policy(true)).unwrap().verify(&entity, &subject).unwrap();
    let gen_time = single_stamp(&v).gen_time;
    assert_eq!(v.verified_time, Some(gen_time), "the certificate was checked at the stamp's genTime");
    assert_eq!(v.predicate_type.as_deref(), Some("https://att2ref.test/tsa/v1"));
    assert_schema(&v);
    // Without timestamp authorities the stamp is not trusted, the certificate is checked at the
    // verification time instead, and its ten minutes are long over.
    let later = keyless_policy(false).at_time(gen_time + 3600);
    let f = Verifier::new(later).unwrap().verify(&entity, &subject).unwrap_err();
    assert_eq!(f.reason, FailureReason::CertificateExpired, "{f}");
}
