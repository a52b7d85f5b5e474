//! A synthetic Sigstore for negative cases real data cannot give: a test certificate authority (rcgen), a
//! test Rekor key (aws-lc-rs), and a trusted root naming both. It mints keyless attestations signed at a
//! chosen integrated time, in the legacy layout and as bundles with inclusion proofs. Test keys only.

use std::time::Duration;

use att2ref::model::bundle::Bundle;
use att2ref::model::cosign::LegacyLayerAnnotations;
use att2ref::model::digest::Digest;
use att2ref::model::dsse::{encode_base64, pae};
use att2ref::model::oci::Annotations;
use att2ref::model::rekor::RekorPayload;
use att2ref::model::trust::TrustedRoot;
use att2ref::verification::{
    CertificateIdentity, FailureReason, LogCheck, Matcher, Policy, PublicKey, SignedEntity, Verifier, leaf_hash,
};
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, PublicKeyData, SanType, SigningKey, date_time_ymd,
};
use serde_json::json;
use sha2::{Digest as _, Sha256};

/// 2024-01-01T00:00:00Z.
pub const T0: i64 = 1_704_067_200;
const IMAGE: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const EMAIL: &str = "builder@example.test";
const ISSUER: &str = "https://issuer.example.test";

pub fn pem(label: &str, der: &[u8]) -> String {
    x509_cert::der::pem::encode_string(label, x509_cert::der::pem::LineEnding::LF, der).unwrap()
}

pub fn generated_p256_key() -> PublicKey {
    let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
    let spki: PublicKeyX509Der = kp.public_key().as_der().unwrap();
    PublicKey::from_spki_der(spki.as_ref()).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    encode_base64(bytes)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub struct FakeSigstore {
    ca: CertifiedIssuer<'static, KeyPair>,
    rekor: EcdsaKeyPair,
    rekor_spki: Vec<u8>,
}

pub struct Leaf {
    der: Vec<u8>,
    key: KeyPair,
}

impl FakeSigstore {
    pub fn new() -> FakeSigstore {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, "att2ref test");
        params.distinguished_name.push(DnType::CommonName, "att2ref test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2040, 1, 1);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let rekor = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let spki: PublicKeyX509Der = rekor.public_key().as_der().unwrap();
        FakeSigstore { ca, rekor, rekor_spki: spki.as_ref().to_vec() }
    }

    fn log_id(&self) -> Vec<u8> {
        Sha256::digest(&self.rekor_spki).to_vec()
    }

    pub fn trusted_root(&self) -> TrustedRoot {
        let doc = json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{
                "baseUrl": "https://rekor.example.test",
                "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": b64(&self.rekor_spki), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                              "validFor": {"start": "2020-01-01T00:00:00Z"}},
                "logId": {"keyId": b64(&self.log_id())}
            }],
            "certificateAuthorities": [{
                "subject": {"organization": "att2ref test", "commonName": "att2ref test CA"},
                "uri": "https://ca.example.test",
                "certChain": {"certificates": [{"rawBytes": b64(self.ca.der())}]},
                "validFor": {"start": "2020-01-01T00:00:00Z"}
            }],
            "ctlogs": [],
            "timestampAuthorities": []
        });
        TrustedRoot::parse(doc.to_string().as_bytes()).unwrap()
    }

    /// A Fulcio-like leaf valid for ten minutes from `not_before` (Unix seconds, on a whole day + offset).
    pub fn leaf(&self, not_before: i64) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![SanType::Rfc822Name(EMAIL.try_into().unwrap())];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        let start = date_time_ymd(2024, 1, 1) + Duration::from_secs(u64::try_from(not_before - T0).unwrap());
        params.not_before = start;
        params.not_after = start + Duration::from_secs(600);
        let mut issuer_der = vec![0x0c, u8::try_from(ISSUER.len()).unwrap()];
        issuer_der.extend_from_slice(ISSUER.as_bytes());
        params.custom_extensions = vec![
            CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 1], ISSUER.as_bytes().to_vec()),
            CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 8], issuer_der),
        ];
        let cert = params.signed_by(&key, &*self.ca).unwrap();
        Leaf { der: cert.der().to_vec(), key }
    }

    fn statement() -> Vec<u8> {
        json!({
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://example.test/predicate/v1",
            "subject": [{"name": "registry.test/app", "digest": {"sha256": IMAGE.trim_start_matches("sha256:")}}],
            "predicate": {"ok": true}
        })
        .to_string()
        .into_bytes()
    }

    // Envelope in cosign's field order, and the signature.
    fn envelope(key: &KeyPair) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let payload = Self::statement();
        let sig = key.sign(&pae("application/vnd.in-toto+json", &payload)).unwrap();
        let env = format!(
            r#"{{"payloadType":"application/vnd.in-toto+json","payload":"{}","signatures":[{{"keyid":"","sig":"{}"}}]}}"#,
            b64(&payload),
            b64(&sig)
        );
        (env.into_bytes(), payload, sig)
    }

    fn set(&self, body_b64: &str, integrated_time: i64, log_index: i64) -> Vec<u8> {
        let payload =
            RekorPayload { body: body_b64.to_string(), integrated_time, log_index, log_id: hex::encode(self.log_id()) };
        self.rekor.sign(&SystemRandom::new(), &payload.canonical_json()).unwrap().as_ref().to_vec()
    }

    /// A legacy keyless `.att` layer logged as `intoto/0.0.1` at `integrated_time`.
    pub fn legacy_att(&self, leaf: &Leaf, integrated_time: i64) -> SignedEntity {
        let cert_pem = pem("CERTIFICATE", &leaf.der);
        self.legacy_att_with(&leaf.key, cert_pem.clone(), Some(cert_pem), integrated_time)
    }

    /// A legacy key-signed `.att` layer whose `intoto/0.0.1` entry logs `logged` as the key.
    pub fn legacy_att_keyed(&self, signer: &KeyPair, logged: &KeyPair) -> SignedEntity {
        self.legacy_att_with(signer, pem("PUBLIC KEY", &logged.subject_public_key_info()), None, T0)
    }

    fn legacy_att_with(
        &self,
        signer: &KeyPair,
        logged_pem: String,
        cert_pem: Option<String>,
        integrated_time: i64,
    ) -> SignedEntity {
        let (env, payload, _) = Self::envelope(signer);
        let body = json!({"apiVersion": "0.0.1", "kind": "intoto", "spec": {
            "content": {"hash": {"algorithm": "sha256", "value": sha256_hex(&env)},
                        "payloadHash": {"algorithm": "sha256", "value": sha256_hex(&payload)}},
            "publicKey": b64(logged_pem.as_bytes())}})
        .to_string();
        let body_b64 = b64(body.as_bytes());
        let bundle = json!({"SignedEntryTimestamp": b64(&self.set(&body_b64, integrated_time, 42)),
            "Payload": {"body": body_b64, "integratedTime": integrated_time, "logIndex": 42,
                        "logID": hex::encode(self.log_id())}});
        let mut ann = Annotations::new();
        ann.insert("dev.cosignproject.cosign/signature".into(), String::new());
        if let Some(cert_pem) = cert_pem {
            ann.insert("dev.sigstore.cosign/certificate".into(), cert_pem);
            ann.insert("dev.sigstore.cosign/chain".into(), pem("CERTIFICATE", self.ca.der()));
        }
        ann.insert("dev.sigstore.cosign/bundle".into(), bundle.to_string());
        SignedEntity::legacy_attestation(env, LegacyLayerAnnotations::from_annotations(&ann))
    }

    /// A v0.3 bundle logged as `dsse/0.0.1`, with promise and an inclusion proof in a 3-leaf tree.
    pub fn bundle(&self, leaf: &Leaf, integrated_time: i64) -> serde_json::Value {
        let (env, payload, sig) = Self::envelope(&leaf.key);
        let cert_pem = pem("CERTIFICATE", &leaf.der);
        let body = json!({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": sha256_hex(&env)},
            "payloadHash": {"algorithm": "sha256", "value": sha256_hex(&payload)},
            "signatures": [{"signature": b64(&sig), "verifier": b64(cert_pem.as_bytes())}]}})
        .to_string();
        let body_b64 = b64(body.as_bytes());
        let node = |l: &[u8], r: &[u8]| -> Vec<u8> {
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(l);
            h.update(r);
            h.finalize().to_vec()
        };
        let (l0, l1, l2) = (leaf_hash(b"zero"), leaf_hash(body.as_bytes()), leaf_hash(b"two"));
        let root = node(&node(&l0, &l1), &l2);
        let text = format!("rekor.example.test - 7\n3\n{}\n", b64(&root));
        let note_sig = self.rekor.sign(&SystemRandom::new(), text.as_bytes()).unwrap();
        let mut hinted = self.log_id()[..4].to_vec();
        hinted.extend_from_slice(note_sig.as_ref());
        let checkpoint = format!("{text}\n\u{2014} rekor.example.test {}\n", b64(&hinted));
        json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {"rawBytes": b64(&leaf.der)},
                "tlogEntries": [{
                    "logIndex": "1001", "logId": {"keyId": b64(&self.log_id())},
                    "kindVersion": {"kind": "dsse", "version": "0.0.1"},
                    "integratedTime": integrated_time.to_string(),
                    "inclusionPromise": {"signedEntryTimestamp": b64(&self.set(&body_b64, integrated_time, 1001))},
                    "inclusionProof": {"logIndex": "1", "rootHash": b64(&root), "treeSize": "3",
                                       "hashes": [b64(&l0), b64(&l2)], "checkpoint": {"envelope": checkpoint}},
                    "canonicalizedBody": body_b64
                }]
            },
            "dsseEnvelope": serde_json::from_slice::<serde_json::Value>(&env).unwrap()
        })
    }

    pub fn policy(&self) -> Policy {
        Policy::new()
            .with_trusted_root(self.trusted_root())
            .with_identity(CertificateIdentity::new(Matcher::exact(EMAIL), Matcher::exact(ISSUER)))
    }
}

fn image() -> Digest {
    IMAGE.parse().unwrap()
}

fn bundle_entity(v: &serde_json::Value) -> SignedEntity {
    SignedEntity::bundle(Bundle::parse(v.to_string().as_bytes()).unwrap())
}

#[test]
fn synthetic_legacy_keyless_att_verifies_within_certificate_validity() {
    let s = FakeSigstore::new();
    let leaf = s.leaf(T0);
    let v = Verifier::new(s.policy()).unwrap().verify(&s.legacy_att(&leaf, T0 + 60), &image()).unwrap();
    assert_eq!(v.verified_time, Some(T0 + 60));
    let LogCheck::Verified { entries } = &v.log else { panic!() };
    assert_eq!(entries[0].kind, "intoto/0.0.1");
}

#[test]
fn certificate_expired_at_integrated_time() {
    let s = FakeSigstore::new();
    let leaf = s.leaf(T0);
    let verifier = Verifier::new(s.policy()).unwrap();
    let f = verifier.verify(&s.legacy_att(&leaf, T0 + 3600), &image()).unwrap_err();
    assert_eq!(f.reason, FailureReason::CertificateExpired, "{f}");
    let f = verifier.verify(&bundle_entity(&s.bundle(&leaf, T0 + 3600)), &image()).unwrap_err();
    assert_eq!(f.reason, FailureReason::CertificateExpired, "{f}");
}

#[test]
fn synthetic_bundle_with_three_leaf_proof_verifies() {
    let s = FakeSigstore::new();
    let leaf = s.leaf(T0);
    let v = Verifier::new(s.policy()).unwrap().verify(&bundle_entity(&s.bundle(&leaf, T0 + 5)), &image()).unwrap();
    let LogCheck::Verified { entries } = &v.log else { panic!() };
    let proof = entries[0].proof.as_ref().unwrap();
    assert_eq!((proof.log_index, proof.tree_size), (1, 3));
}

#[test]
fn certificate_from_another_ca_is_untrusted() {
    let trusted = FakeSigstore::new();
    let other = FakeSigstore::new();
    // Logged by the trusted log, but certified by a CA the trusted root does not know.
    let leaf = other.leaf(T0);
    let mut entity_src = trusted.bundle(&leaf, T0 + 5);
    entity_src["verificationMaterial"]["certificate"]["rawBytes"] = json!(b64(&leaf.der));
    let f = Verifier::new(trusted.policy()).unwrap().verify(&bundle_entity(&entity_src), &image()).unwrap_err();
    assert_eq!(f.reason, FailureReason::UntrustedChain, "{f}");
}

#[test]
fn proof_only_entry_gives_no_trusted_time_for_certificates() {
    let s = FakeSigstore::new();
    let leaf = s.leaf(T0);
    let mut b = s.bundle(&leaf, T0 + 5);
    b["verificationMaterial"]["tlogEntries"][0].as_object_mut().unwrap().remove("inclusionPromise");
    let f = Verifier::new(s.policy()).unwrap().verify(&bundle_entity(&b), &image()).unwrap_err();
    assert_eq!(f.reason, FailureReason::NoTrustedTime, "{f}");
}

#[test]
fn key_signed_att_with_log_entry_binds_the_logged_key() {
    let s = FakeSigstore::new();
    let key = KeyPair::generate().unwrap();
    let public = PublicKey::from_spki_der(&key.subject_public_key_info()).unwrap();
    let verifier = Verifier::new(Policy::new().with_key(public.clone()).with_trusted_root(s.trusted_root())).unwrap();
    let v = verifier.verify(&s.legacy_att_keyed(&key, &key), &image()).unwrap();
    assert_eq!(v.key_id(), Some(public.key_id()));
    assert!(v.log.is_verified());
    assert_eq!(v.verified_time, None);
    // The log names another key: the entry does not describe this attestation.
    let other = KeyPair::generate().unwrap();
    let f = verifier.verify(&s.legacy_att_keyed(&key, &other), &image()).unwrap_err();
    assert_eq!(f.reason, FailureReason::BodyMismatch, "{f}");
}

#[test]
fn verifier_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Verifier>();
    assert_send_sync::<SignedEntity>();
    assert_send_sync::<att2ref::verification::Verification>();
    assert_send_sync::<att2ref::verification::Failure>();
}
