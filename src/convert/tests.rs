//! Conversion checks on generated legacy stores (`crate::demo`) and on real data from the corpus.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde_json::{Value, json};

use super::rekor::tests::response_for;
use super::*;
use crate::demo::keys::{Scheme, TestKey, TestSigner, verify};
use crate::demo::{LayerInfo, Scenario, SignedBy};
use crate::error::ErrorKind;
use crate::model::bundle::{Bundle, VerificationKey};
use crate::model::cosign::LegacyLayerAnnotations;
use crate::model::digest::Digest;
use crate::model::dsse::{Envelope, encode_base64, pae};
use crate::model::media_type::{self as mt, annotations as keys};
use crate::model::oci::{Descriptor, ImageManifest, Manifest};
use crate::model::pem;
use crate::model::referrers_index::{IndexChange, add_referrer};
use crate::model::signed_statement::SignedStatement;
use crate::model::testdata;

/// A legacy `.att` of a scenario, as the engine would have read it.
struct Legacy {
    manifest: Digest,
    layers: Vec<(Descriptor, Bytes)>,
    /// Each layer's envelope, parsed as the engine parses it once for reading, verifying and converting.
    signed: Vec<SignedStatement>,
    infos: Vec<LayerInfo>,
    config_created: Option<String>,
}

fn legacy_att(s: &Scenario) -> Legacy {
    let tag = s.image.cosign_tag("att");
    let att = s.attachment(&tag).expect("scenario has an .att");
    let raw = s.repo.manifest(&att.manifest).unwrap();
    let Manifest::Image(m) = Manifest::parse(&raw.bytes, Some(&raw.media_type)).unwrap().0 else {
        panic!("legacy manifest is an image manifest")
    };
    let config: Value = serde_json::from_slice(s.repo.blob(&m.config.digest).unwrap()).unwrap();
    let layers: Vec<(Descriptor, Bytes)> =
        m.layers.iter().map(|d| (d.clone(), s.repo.blob(&d.digest).unwrap().clone())).collect();
    Legacy {
        manifest: att.manifest.clone(),
        signed: layers.iter().map(|(_, b)| SignedStatement::parse(b.clone()).unwrap()).collect(),
        layers,
        infos: att.layers.clone(),
        config_created: config["created"].as_str().map(str::to_owned),
    }
}

fn subject_of(s: &Scenario) -> ReferrerSubject {
    let m = s.repo.manifest(&s.image).unwrap();
    ReferrerSubject::new(&m.media_type, m.digest.clone(), m.bytes.len() as u64).unwrap()
}

impl Legacy {
    fn att(&self, i: usize) -> LegacyLayerInput<'_> {
        LegacyLayerInput {
            legacy_manifest: &self.manifest,
            layer_index: i,
            layer: &self.layers[i].0,
            signed: &self.signed[i],
            config_created: self.config_created.as_deref(),
        }
    }

    /// What a verifier would report for layer `i`: its one signature under the scenario's key or the
    /// layer's certificate, its legacy Rekor entry, and (optionally) a fetched inclusion proof.
    fn verified(&self, i: usize, with_proof: bool) -> Verified {
        let annotations = LegacyLayerAnnotations::from_descriptor(&self.layers[i].0);
        let key = match (&self.infos[i].signed_by, annotations.certificate_der().unwrap()) {
            (SignedBy::Keyless(_), Some(der)) => VerifiedKey::Certificate { der },
            (SignedBy::Key(signer), None) => VerifiedKey::PublicKey { spki_der: signer.key().public_spki_der() },
            other => panic!("unexpected signing material {other:?}"),
        };
        let rekor_bundle = annotations.bundle.map(|b| b.unwrap());
        let inclusion_proof = rekor_bundle
            .as_ref()
            .filter(|_| with_proof)
            .map(|b| RekorEntry::parse_response(response_for(b).as_bytes()).unwrap());
        Verified { signatures: vec![VerifiedSignature { index: 0, key }], rekor_bundle, inclusion_proof }
    }

    fn convert(&self, subject: &ReferrerSubject, i: usize, with_proof: bool) -> Vec<SignatureOutcome> {
        convert_layer(subject, &self.att(i), &self.verified(i, with_proof), OutputFormat::Bundle).unwrap()
    }
}

fn only(outcomes: Vec<SignatureOutcome>) -> SignatureOutcome {
    assert_eq!(outcomes.len(), 1);
    outcomes.into_iter().next().unwrap()
}

fn referrer(outcome: &SignatureOutcome) -> &NewReferrer {
    outcome.referrer().unwrap_or_else(|| panic!("blocked: {:?}", outcome.blocked()))
}

/// Everything a bundle referrer must satisfy, whatever its source.
fn check_bundle_referrer(r: &NewReferrer, subject: &ReferrerSubject, legacy_envelope: &Envelope, sig: usize) -> Bundle {
    let blob = r.bundle_blob().unwrap();
    let bundle = Bundle::parse(&blob.bytes).unwrap();
    assert_eq!(Some(&bundle), r.bundle.as_ref());
    assert_eq!(bundle.to_json(), blob.bytes, "the blob is the canonical serialisation");
    let env = bundle.dsse_envelope().unwrap();
    assert_eq!(env.payload, legacy_envelope.payload, "payload byte for byte");
    assert_eq!(env.payload_type, legacy_envelope.payload_type);
    assert_eq!(env.signatures, [legacy_envelope.signatures[sig].clone()]);

    let m = &r.manifest.manifest;
    assert_eq!(r.manifest.digest, Digest::sha256(&r.manifest.bytes));
    assert_eq!(serde_json::from_slice::<ImageManifest>(&r.manifest.bytes).unwrap(), *m);
    assert_eq!(m.media_type.as_deref(), Some(mt::OCI_MANIFEST));
    assert_eq!(m.artifact_type.as_deref(), Some(mt::BUNDLE_V03));
    assert_eq!(m.config, Descriptor::empty_config());
    assert_eq!(m.subject.as_ref(), Some(subject.descriptor()));
    assert_eq!(m.layers, std::slice::from_ref(&blob.descriptor));
    assert_eq!(blob.descriptor.media_type, mt::BUNDLE_V03);
    assert_eq!(blob.descriptor.digest, Digest::sha256(&blob.bytes));
    assert_eq!(
        blob.descriptor.annotation(keys::OCI_TITLE),
        Some(format!("sha256-{}.sigstore.json", blob.descriptor.digest.hex()).as_str())
    );
    assert_eq!(r.blobs[0].bytes.as_ref(), b"{}");
    assert_eq!(r.blobs[0].descriptor, Descriptor::empty_config());
    assert!(r.reused.is_empty());
    bundle
}

/// The content hint of a legacy layer, computed the way convert does (independently pinned below).
fn content_hint(layer: &[u8]) -> String {
    let envelope = Envelope::parse(layer).unwrap();
    let statement = crate::model::intoto::Statement::parse(&envelope.payload).unwrap();
    crate::model::predicate::hint_predicate(&statement.predicate_type, statement.predicate_value().as_ref()).id()
}

fn expected_annotations(
    legacy: &Legacy,
    i: usize,
    predicate_type: &str,
    created: Option<&str>,
) -> BTreeMap<String, String> {
    let mut a: BTreeMap<String, String> = [
        (keys::BUNDLE_CONTENT, "dsse-envelope".to_owned()),
        (keys::BUNDLE_PREDICATE_TYPE, predicate_type.to_owned()),
        (annotations::LEGACY_MANIFEST, legacy.manifest.to_string()),
        (annotations::LEGACY_LAYER, i.to_string()),
        (annotations::LEGACY_LAYER_DIGEST, legacy.layers[i].0.digest.to_string()),
        (annotations::CONTENT_HINT, content_hint(&legacy.layers[i].1)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(c) = created {
        a.insert(keys::OCI_CREATED.into(), c.into());
    }
    a
}

#[test]
fn article_like_store_converts_with_an_empty_tlog() {
    let s = crate::demo::article_like().unwrap();
    let legacy = legacy_att(&s);
    let subject = subject_of(&s);
    let spki = TestKey::Rsa4096.public_spki_der();
    let hint = encode_base64(&Digest::sha256(&spki).raw());
    for (i, created) in ["2023-03-14T16:20:31Z", "2023-03-14T16:21:07Z"].into_iter().enumerate() {
        let outcome = only(legacy.convert(&subject, i, false));
        let r = referrer(&outcome);
        let envelope = Envelope::parse(&legacy.layers[i].1).unwrap();
        let bundle = check_bundle_referrer(r, &subject, &envelope, 0);
        assert_eq!(
            bundle.verification_material.key,
            VerificationKey::PublicKey(crate::model::bundle::PublicKeyIdentifier { hint: hint.clone() })
        );
        assert!(bundle.verification_material.tlog_entries.is_empty());
        assert!(bundle.verification_material.timestamp_verification_data.is_none());
        let text = String::from_utf8(r.bundle_blob().unwrap().bytes.to_vec()).unwrap();
        assert!(text.contains(r#""tlogEntries":[]"#) && !text.contains("keyid"), "{}", &text[..300]);
        // The carried signature still verifies under the key, over the unchanged payload.
        let env = bundle.dsse_envelope().unwrap();
        assert!(verify(Scheme::RsaPkcs1Sha256, &spki, &pae(&env.payload_type, &env.payload), &env.signatures[0].sig));

        assert_eq!(outcome.predicate_type, "cosign.sigstore.dev/attestation/v1");
        assert_eq!(outcome.created.as_ref().unwrap().source, CreatedSource::PredicateTimestamp);
        assert_eq!(
            r.manifest.manifest.annotations,
            expected_annotations(&legacy, i, "cosign.sigstore.dev/attestation/v1", Some(created))
        );
        assert!(outcome.notes.is_empty(), "{:?}", outcome.notes);
        assert_eq!(outcome.source.signature_index, Some(0));
        // Both are `custom`; the unsigned hint tells the SBOM from the SLSA provenance.
        let hint = r.manifest.manifest.annotations.get(annotations::CONTENT_HINT).map(String::as_str);
        assert_eq!(hint, Some(["spdx-2.2", "slsa-provenance-v0.2"][i]));

        // Same inputs, same bytes.
        let again = only(legacy.convert(&subject, i, false));
        let r2 = referrer(&again);
        assert_eq!(r2.manifest.bytes, r.manifest.bytes);
        assert_eq!(r2.bundle_blob().unwrap().bytes, r.bundle_blob().unwrap().bytes);
    }
}

#[test]
fn regenerated_store_gives_identical_referrers() {
    let digests = |s: &Scenario| -> Vec<Digest> {
        let legacy = legacy_att(s);
        let subject = subject_of(s);
        (0..legacy.layers.len())
            .map(|i| referrer(&only(legacy.convert(&subject, i, false))).manifest.digest.clone())
            .collect()
    };
    let first = digests(&crate::demo::demo().unwrap());
    assert_eq!(first.len(), 2);
    assert_eq!(first, digests(&crate::demo::demo().unwrap()));
}

#[test]
fn logged_key_signed_layers_need_proofs_and_intoto_is_blocked() {
    let s = crate::demo::cosign_v2_style().unwrap();
    let legacy = legacy_att(&s);
    let subject = subject_of(&s);
    let blocked: Vec<Option<BlockedReason>> =
        (0..5).map(|i| only(legacy.convert(&subject, i, false)).blocked().cloned()).collect();
    let log_index = |i: usize| legacy.infos[i].tlog.unwrap().log_index;
    assert_eq!(
        blocked,
        [
            Some(BlockedReason::MissingInclusionProof { log_index: log_index(0) }),
            Some(BlockedReason::MissingInclusionProof { log_index: log_index(1) }),
            None,
            Some(BlockedReason::IntotoV001Entry { log_index: log_index(3) }),
            None,
        ]
    );

    // With proofs the dsse entries carry over; intoto/0.0.1 stays blocked.
    let with_proof: Vec<SignatureOutcome> = (0..5).map(|i| only(legacy.convert(&subject, i, true))).collect();
    assert_eq!(with_proof[3].blocked(), Some(&BlockedReason::IntotoV001Entry { log_index: log_index(3) }));
    for i in [0, 1] {
        let r = referrer(&with_proof[i]);
        let envelope = Envelope::parse(&legacy.layers[i].1).unwrap();
        let bundle = check_bundle_referrer(r, &subject, &envelope, 0);
        let verified = legacy.verified(i, true);
        let rekor = verified.rekor_bundle.as_ref().unwrap();
        let [entry] = bundle.verification_material.tlog_entries.as_slice() else { panic!("one tlog entry") };
        assert_eq!(entry.log_index, log_index(i));
        assert_eq!(entry.log_id.key_id, crate::demo::pki::log_id(TestKey::RekorEd25519));
        assert_eq!((entry.kind_version.kind.as_str(), entry.kind_version.version.as_str()), ("dsse", "0.0.1"));
        assert_eq!(entry.integrated_time, legacy.infos[i].tlog.unwrap().integrated_time);
        assert_eq!(entry.inclusion_promise.as_ref().unwrap().signed_entry_timestamp, rekor.signed_entry_timestamp);
        assert_eq!(entry.canonicalized_body, rekor.body_bytes);
        assert_eq!(encode_base64(&entry.canonicalized_body), rekor.payload.body, "same base64 body");
        assert_eq!(entry.inclusion_proof, verified.inclusion_proof.unwrap().inclusion_proof);
        let created = crate::model::time::format_unix(entry.integrated_time).unwrap();
        assert_eq!(with_proof[i].created.as_ref().unwrap().source, CreatedSource::LogIntegratedTime);
        let pt = legacy.infos[i].predicate_type.as_deref().unwrap();
        assert_eq!(r.manifest.manifest.annotations, expected_annotations(&legacy, i, pt, Some(&created)));
    }
    // Unlogged custom predicate: created from its Timestamp; vuln scan: no usable time at all.
    assert_eq!(referrer(&with_proof[2]).manifest.manifest.annotation_created(), Some("2024-01-01T00:02:00Z"));
    assert_eq!(referrer(&with_proof[4]).manifest.manifest.annotation_created(), None);
    assert!(with_proof[4].created.is_none());

    // The engine may decide not to carry an entry: the bundle then has none, and the note says so.
    let mut verified = legacy.verified(0, false);
    verified.rekor_bundle = None;
    let outcome = only(convert_layer(&subject, &legacy.att(0), &verified, OutputFormat::Bundle).unwrap());
    assert!(referrer(&outcome).bundle.as_ref().unwrap().verification_material.tlog_entries.is_empty());
    assert_eq!(outcome.notes, [Note::LogEntryNotCarried]);
}

trait CreatedAnnotation {
    fn annotation_created(&self) -> Option<&str>;
}

impl CreatedAnnotation for ImageManifest {
    fn annotation_created(&self) -> Option<&str> {
        self.annotations.get(keys::OCI_CREATED).map(String::as_str)
    }
}

#[test]
fn keyless_layers_carry_the_leaf_and_need_a_log_entry() {
    let s = crate::demo::keyless().unwrap();
    let legacy = legacy_att(&s);
    let subject = subject_of(&s);
    let first = only(legacy.convert(&subject, 0, true));
    assert!(matches!(first.blocked(), Some(BlockedReason::IntotoV001Entry { .. })));
    for i in [1, 2] {
        let blocked = only(legacy.convert(&subject, i, false));
        assert!(matches!(blocked.blocked(), Some(BlockedReason::MissingInclusionProof { .. })));
        assert!(blocked.notes.contains(&Note::CertificateChainDropped), "{:?}", blocked.notes);

        let outcome = only(legacy.convert(&subject, i, true));
        let r = referrer(&outcome);
        let envelope = Envelope::parse(&legacy.layers[i].1).unwrap();
        let bundle = check_bundle_referrer(r, &subject, &envelope, 0);
        let leaf = LegacyLayerAnnotations::from_descriptor(&legacy.layers[i].0).certificate_der().unwrap().unwrap();
        let VerificationKey::Certificate(c) = &bundle.verification_material.key else { panic!("leaf certificate") };
        assert_eq!(c.raw_bytes, leaf);
        assert_eq!(bundle.verification_material.tlog_entries.len(), 1);
        assert!(outcome.notes.contains(&Note::CertificateChainDropped));
    }
    // Without its log entry a certificate has no verifiable signing time.
    let mut verified = legacy.verified(1, true);
    verified.rekor_bundle = None;
    verified.inclusion_proof = None;
    let outcome = only(convert_layer(&subject, &legacy.att(1), &verified, OutputFormat::Bundle).unwrap());
    assert_eq!(outcome.blocked(), Some(&BlockedReason::MissingTransparencyLogEntry));
}

#[test]
fn log_entries_that_do_not_bind_are_errors() {
    let s = crate::demo::keyless().unwrap();
    let legacy = legacy_att(&s);
    let subject = subject_of(&s);
    // Layer 2 with layer 1's entry: the envelope hash names another layer.
    let mut verified = legacy.verified(2, true);
    let other = legacy.verified(1, true);
    verified.rekor_bundle = other.rekor_bundle;
    verified.inclusion_proof = other.inclusion_proof;
    let err = convert_layer(&subject, &legacy.att(2), &verified, OutputFormat::Bundle).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::VerificationFailed);
    assert!(err.to_string().contains("is not the layer digest"), "{err}");
    assert!(err.to_string().contains("converting layer 2"), "{err}");

    // The right entry, but the signature "verified" under a different key than the one logged.
    let s = crate::demo::cosign_v2_style().unwrap();
    let legacy = legacy_att(&s);
    let mut verified = legacy.verified(0, true);
    verified.signatures[0].key = VerifiedKey::PublicKey { spki_der: TestKey::EcdsaP256.public_spki_der() };
    let err = convert_layer(&subject_of(&s), &legacy.att(0), &verified, OutputFormat::Bundle).unwrap_err();
    assert!(err.to_string().contains("key or certificate is not the one"), "{err}");

    // A fetched entry that is not the legacy one.
    let mut verified = legacy.verified(0, true);
    verified.inclusion_proof = legacy.verified(1, true).inclusion_proof;
    let err = convert_layer(&subject_of(&s), &legacy.att(0), &verified, OutputFormat::Bundle).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::VerificationFailed);
    assert!(err.to_string().contains("canonicalized body"), "{err}");
}

#[test]
fn wrong_inputs_are_refused() {
    let s = crate::demo::cosign_v2_style().unwrap();
    let legacy = legacy_att(&s);
    let subject = subject_of(&s);
    let verified = legacy.verified(2, false);

    // Another image: the signed statement is not about it.
    let other = ReferrerSubject::new(mt::OCI_MANIFEST, Digest::sha256(b"other image"), 10).unwrap();
    let err = convert_layer(&other, &legacy.att(2), &verified, OutputFormat::Bundle).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::VerificationFailed);
    assert!(err.to_string().contains("not about the subject"), "{err}");

    // Bytes that are not the layer.
    let mut att = legacy.att(2);
    att.signed = &legacy.signed[4];
    assert_eq!(
        convert_layer(&subject, &att, &verified, OutputFormat::Bundle).unwrap_err().kind(),
        ErrorKind::DigestMismatch
    );

    // A verified signature that does not exist, or listed twice.
    let mut bad = verified.clone();
    bad.signatures[0].index = 1;
    let err = convert_layer(&subject, &legacy.att(2), &bad, OutputFormat::Bundle).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let mut twice = verified.clone();
    twice.signatures.push(twice.signatures[0].clone());
    assert!(
        convert_layer(&subject, &legacy.att(2), &twice, OutputFormat::Bundle)
            .unwrap_err()
            .to_string()
            .contains("twice")
    );

    // Nothing verified: nothing written.
    let none = Verified::default();
    let outcome = only(convert_layer(&subject, &legacy.att(2), &none, OutputFormat::Bundle).unwrap());
    assert_eq!(outcome.blocked(), Some(&BlockedReason::NotVerified));
}

/// A legacy layer whose envelope has two signatures (cosign never wrote one; other DSSE tools do).
fn two_signature_layer(image: &Digest) -> (Vec<u8>, Descriptor, [TestSigner; 2]) {
    let payload = crate::demo::dsse::statement(
        crate::demo::dsse::STATEMENT_V01,
        "registry.test/multi-sig",
        image,
        "https://slsa.dev/provenance/v1",
        &json!({"buildDefinition": {"buildType": "https://example.test/b"}}),
    );
    let signers = [TestKey::Ed25519.signer(), TestSigner::new(TestKey::Rsa2048, Scheme::RsaPkcs1Sha256).unwrap()];
    let message = pae(mt::IN_TOTO, &payload);
    let envelope = json!({
        "payloadType": mt::IN_TOTO,
        "payload": encode_base64(&payload),
        "signatures": [
            {"keyid": "", "sig": encode_base64(&signers[0].sign(&message).unwrap())},
            {"keyid": "second-key", "sig": encode_base64(&signers[1].sign(&message).unwrap())},
        ],
    });
    let bytes = serde_json::to_vec(&envelope).unwrap();
    let mut layer = Descriptor::of(mt::DSSE_ENVELOPE, &bytes);
    layer.annotations.insert(keys::COSIGN_SIGNATURE.into(), String::new());
    layer.annotations.insert(keys::COSIGN_PREDICATE_TYPE.into(), "https://slsa.dev/provenance/v0.2".into());
    (bytes, layer, signers)
}

#[test]
fn several_signatures_become_several_bundles() {
    let s = crate::demo::cosign_v2_style().unwrap();
    let subject = subject_of(&s);
    let (bytes, layer, signers) = two_signature_layer(subject.digest());
    let manifest = Digest::sha256(b"legacy manifest");
    let att = LegacyLayerInput {
        legacy_manifest: &manifest,
        layer_index: 3,
        layer: &layer,
        signed: &SignedStatement::parse(Bytes::from(bytes.clone())).unwrap(),
        config_created: None,
    };
    let key = |s: &TestSigner| VerifiedKey::PublicKey { spki_der: s.key().public_spki_der() };
    let verified = Verified {
        signatures: vec![
            VerifiedSignature { index: 1, key: key(&signers[1]) },
            VerifiedSignature { index: 0, key: key(&signers[0]) },
        ],
        ..Verified::default()
    };
    let outcomes = convert_layer(&subject, &att, &verified, OutputFormat::Bundle).unwrap();
    assert_eq!(outcomes.len(), 2);
    let envelope = Envelope::parse(&bytes).unwrap();
    let mut digests = Vec::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        let r = referrer(outcome);
        let bundle = check_bundle_referrer(r, &subject, &envelope, i);
        let VerificationKey::PublicKey(k) = &bundle.verification_material.key else { panic!("key hint") };
        assert_eq!(k.hint, key(&signers[i]).hint().unwrap());
        let annotations = &r.manifest.manifest.annotations;
        assert_eq!(annotations.get(annotations::SIGNATURE_INDEX), Some(&i.to_string()));
        assert_eq!(
            annotations.get(keys::BUNDLE_PREDICATE_TYPE).map(String::as_str),
            Some("https://slsa.dev/provenance/v1")
        );
        assert_eq!(outcome.source.signature_index, Some(i));
        assert_eq!(outcome.source.signature_count, 2);
        assert_eq!(
            outcome.notes,
            [
                Note::PredicateTypeAnnotationIgnored { annotation: "https://slsa.dev/provenance/v0.2".into() },
                Note::EnvelopeSplit { signatures: 2 }
            ]
        );
        digests.push(r.manifest.digest.clone());
    }
    assert_ne!(digests[0], digests[1]);
    // The non-empty keyid travels with its signature.
    let second = referrer(&outcomes[1]).bundle.as_ref().unwrap();
    assert_eq!(second.dsse_envelope().unwrap().signatures[0].keyid, "second-key");

    // Only signature 1 verified: signature 0 is reported, not written.
    let only_second = Verified { signatures: vec![verified.signatures[0].clone()], ..Verified::default() };
    let outcomes = convert_layer(&subject, &att, &only_second, OutputFormat::Bundle).unwrap();
    assert_eq!(outcomes[0].blocked(), Some(&BlockedReason::NotVerified));
    assert_eq!(referrer(&outcomes[1]).manifest.digest, digests[1], "independent of the other signature");
}

#[test]
fn dsse_format_reuses_the_envelope() {
    let s = crate::demo::cosign_v2_style().unwrap();
    let legacy = legacy_att(&s);
    let subject = subject_of(&s);
    let outcome =
        only(convert_layer(&subject, &legacy.att(0), &legacy.verified(0, false), OutputFormat::Dsse).unwrap());
    let r = referrer(&outcome);
    assert_eq!(r.format, OutputFormat::Dsse);
    assert!(r.bundle.is_none() && r.bundle_blob().is_none());
    let m = &r.manifest.manifest;
    assert_eq!(m.artifact_type.as_deref(), Some(mt::IN_TOTO));
    assert_eq!(m.config, Descriptor::empty_config());
    assert_eq!(m.subject.as_ref(), Some(subject.descriptor()));
    assert_eq!(m.layers, [legacy.layers[0].0.clone()], "the legacy layer exactly, annotations included");
    assert_eq!(r.reused, m.layers);
    assert_eq!(r.blobs.len(), 1);
    assert_eq!(outcome.source.signature_index, None);
    let mut want = expected_annotations(&legacy, 0, "", outcome.created.as_ref().map(|c| c.time.as_str()));
    want.remove(keys::BUNDLE_CONTENT);
    want.remove(keys::BUNDLE_PREDICATE_TYPE);
    want.insert(keys::IN_TOTO_PREDICATE_TYPE.into(), "https://slsa.dev/provenance/v0.2".into());
    assert_eq!(m.annotations, want);
    // No inclusion proof is needed: nothing is re-expressed as a bundle.
    let again = only(convert_layer(&subject, &legacy.att(0), &legacy.verified(0, false), OutputFormat::Dsse).unwrap());
    assert_eq!(referrer(&again).manifest.bytes, r.manifest.bytes);
    let unverified = only(convert_layer(&subject, &legacy.att(0), &Verified::default(), OutputFormat::Dsse).unwrap());
    assert_eq!(unverified.blocked(), Some(&BlockedReason::NotVerified));
}

#[test]
fn plan_lists_writes_and_blocks() {
    let s = crate::demo::cosign_v2_style().unwrap();
    let legacy = legacy_att(&s);
    let subject = subject_of(&s);
    let outcomes: Vec<SignatureOutcome> = (0..5).flat_map(|i| legacy.convert(&subject, i, i == 0)).collect();
    let mut plan = ImagePlan::new(&subject, OutputFormat::Bundle, &outcomes);
    assert_eq!((plan.totals.write, plan.totals.blocked, plan.totals.already_present), (3, 2, 0));
    // The `{}` config is shared: three bundles plus one config.
    assert_eq!(plan.totals.new_blobs, 4);
    let sizes: u64 =
        outcomes.iter().filter_map(|o| o.referrer()).map(|r| r.bundle_blob().unwrap().bytes.len() as u64).sum();
    assert_eq!(plan.totals.new_blob_bytes, sizes + 2);
    let manifests: u64 = outcomes.iter().filter_map(|o| o.referrer()).map(|r| r.manifest.bytes.len() as u64).sum();
    assert_eq!(plan.totals.manifest_bytes, manifests);

    let json: Value = serde_json::from_slice(&plan.to_json()).unwrap();
    assert_eq!(json["format"], "bundle");
    assert_eq!(json["subject"]["digest"], subject.digest().to_string());
    assert_eq!(json["items"][0]["verdict"], json!({"action": "write"}));
    assert_eq!(json["items"][0]["blobs"][1]["role"], "bundle");
    assert_eq!(json["items"][0]["manifest"]["artifact_type"], mt::BUNDLE_V03);
    assert_eq!(json["items"][0]["created"]["source"], "log_integrated_time");
    assert_eq!(json["items"][1]["verdict"]["action"], "blocked");
    assert_eq!(json["items"][1]["verdict"]["reason"]["code"], "missing_inclusion_proof");
    assert!(json["items"][1]["verdict"]["message"].as_str().unwrap().contains("no inclusion proof"));
    assert!(json["items"][1].get("manifest").is_none());
    assert_eq!(json["items"][3]["verdict"]["reason"]["code"], "intoto_v001_entry");

    let present: BTreeSet<Digest> = [outcomes[0].referrer().unwrap().manifest.digest.clone()].into();
    plan.mark_present(&present);
    assert_eq!(plan.items[0].verdict, Verdict::AlreadyPresent);
    assert_eq!((plan.totals.write, plan.totals.already_present), (2, 1));
    assert_eq!(plan.totals.new_blobs, 3);

    // Referrers feed the tag-schema index with artifactType and every annotation.
    let r = outcomes[2].referrer().unwrap();
    let entry = r.index_entry();
    assert_eq!(entry.artifact_type.as_deref(), Some(mt::BUNDLE_V03));
    assert_eq!(entry.annotations, r.manifest.manifest.annotations);
    assert_eq!((entry.digest.clone(), entry.size), (r.manifest.digest.clone(), r.manifest.bytes.len() as u64));
    let update = add_referrer(None, &entry, false);
    assert_eq!(update.change, IndexChange::Appended);
    assert!(add_referrer(Some(update.index), &entry, true).is_noop());
}

#[test]
fn annotation_keys_use_our_prefix() {
    for key in annotations::ALL {
        assert!(key.starts_with(crate::ANNOTATION_PREFIX), "{key}");
    }
}

// ---------------------------------------------------------------------------------------------------
// Real data.

#[test]
fn real_article_layers_convert() {
    let manifest_text = testdata::read(testdata::CSSC_ATT_MANIFEST);
    let legacy_manifest: ImageManifest = serde_json::from_slice(&manifest_text).unwrap();
    // The manifest in the corpus is pretty-printed; its served digest is not known, so a stand-in is used.
    let manifest_digest = Digest::sha256(b"article .att manifest (stand-in digest)");
    let image: Digest = testdata::CSSC_IMAGE.parse().unwrap();
    // Only the digest is known of the article's image; media type and size are stand-ins for the test.
    let subject = ReferrerSubject::new(mt::DOCKER_MANIFEST, image, 1_000).unwrap();
    let pem_text =
        String::from_utf8(testdata::read("toddysm-cssc-pipeline/derived/kms-rsa4096-public-key.recovered.pem"))
            .unwrap();
    let spki = pem::decode_all(&pem_text).unwrap().remove(0).der;
    let verified = Verified {
        signatures: vec![VerifiedSignature { index: 0, key: VerifiedKey::PublicKey { spki_der: spki.clone() } }],
        ..Verified::default()
    };
    let files = [testdata::CSSC_SBOM_LAYER, testdata::CSSC_SLSA_LAYER];
    let created = ["2022-10-13T21:37:54Z", "2022-10-13T23:11:26Z"];
    for (i, layer) in legacy_manifest.layers.iter().enumerate() {
        let bytes = testdata::read(files[i]);
        let att = LegacyLayerInput {
            legacy_manifest: &manifest_digest,
            layer_index: i,
            layer,
            signed: &SignedStatement::parse(Bytes::from(bytes.clone())).unwrap(),
            config_created: Some("2022-10-13T16:11:27.193412941-07:00"),
        };
        let outcome = only(convert_layer(&subject, &att, &verified, OutputFormat::Bundle).unwrap());
        let r = referrer(&outcome);
        let envelope = Envelope::parse(&bytes).unwrap();
        let bundle = check_bundle_referrer(r, &subject, &envelope, 0);
        let env = bundle.dsse_envelope().unwrap();
        assert!(verify(Scheme::RsaPkcs1Sha256, &spki, &pae(&env.payload_type, &env.payload), &env.signatures[0].sig));
        let VerificationKey::PublicKey(k) = &bundle.verification_material.key else { panic!("key hint") };
        assert_eq!(k.hint, encode_base64(&Digest::sha256(&spki).raw()));
        let a = &r.manifest.manifest.annotations;
        assert_eq!(a.get(keys::BUNDLE_PREDICATE_TYPE).map(String::as_str), Some("cosign.sigstore.dev/attestation/v1"));
        assert_eq!(a.get(keys::OCI_CREATED).map(String::as_str), Some(created[i]));
        assert_eq!(a.get(annotations::LEGACY_LAYER_DIGEST), Some(&layer.digest.to_string()));
    }
}

/// The sigstore-oci-writer corpus: a legacy layer and the bundle @sigstore/oci wrote around the same
/// envelope with the same key, plus the referrer manifest it pushed.
#[test]
fn matches_what_sigstore_oci_wrote() {
    let legacy_manifest_bytes = testdata::read(testdata::WRITER_LEGACY_MANIFEST);
    let legacy_manifest: ImageManifest = serde_json::from_slice(&legacy_manifest_bytes).unwrap();
    let manifest_digest = Digest::sha256(&legacy_manifest_bytes);
    let bytes = testdata::read(testdata::WRITER_LEGACY_ENVELOPE);
    let image = testdata::read("sigstore-oci-writer/image1-manifest.json");
    let subject = ReferrerSubject::new(mt::OCI_MANIFEST, Digest::sha256(&image), image.len() as u64).unwrap();
    let pem_text = String::from_utf8(testdata::read("sigstore-oci-writer/ecdsa-p256.pub.pem")).unwrap();
    let key = VerifiedKey::PublicKey { spki_der: pem::decode_all(&pem_text).unwrap().remove(0).der };
    let verified = Verified { signatures: vec![VerifiedSignature { index: 0, key }], ..Verified::default() };
    let att = LegacyLayerInput {
        legacy_manifest: &manifest_digest,
        layer_index: 0,
        layer: &legacy_manifest.layers[0],
        signed: &SignedStatement::parse(Bytes::from(bytes.clone())).unwrap(),
        config_created: Some("0001-01-01T00:00:00Z"),
    };
    let outcome = only(convert_layer(&subject, &att, &verified, OutputFormat::Bundle).unwrap());
    let r = referrer(&outcome);

    // The same bundle, byte for byte, except that protobuf JSON omits the empty keyid.
    let theirs = testdata::read(testdata::WRITER_BUNDLE);
    let ours = &r.bundle_blob().unwrap().bytes;
    let theirs_text = String::from_utf8(theirs.clone()).unwrap();
    assert_eq!(String::from_utf8(ours.to_vec()).unwrap(), theirs_text.trim_end().replace(r#""keyid":"","#, ""));
    assert_eq!(Bundle::parse(ours).unwrap(), Bundle::parse(&theirs).unwrap());

    // Their referrer manifest: same fields and media types; we add the layer title and our provenance
    // annotations, and write no creation time because the attestation carries none.
    let their_manifest: Value =
        serde_json::from_slice(&testdata::read("sigstore-oci-writer/referrer-manifest-03947ef44bf6.json")).unwrap();
    let our_manifest: Value = serde_json::from_slice(&r.manifest.bytes).unwrap();
    let ours_shape: BTreeSet<String> = shape(&our_manifest)
        .into_iter()
        .filter(|p| {
            !p.starts_with("annotations.dev.att2ref.") && p != "layers[].annotations.org.opencontainers.image.title"
        })
        .collect();
    let mut theirs_shape = shape(&their_manifest);
    theirs_shape.remove("annotations.org.opencontainers.image.created");
    assert_eq!(ours_shape, theirs_shape);
    for field in ["mediaType", "artifactType", "schemaVersion", "config", "subject"] {
        assert_eq!(our_manifest[field], their_manifest[field], "{field}");
    }
    assert_eq!(our_manifest["layers"][0]["mediaType"], their_manifest["layers"][0]["mediaType"]);
    for key in [keys::BUNDLE_CONTENT, keys::BUNDLE_PREDICATE_TYPE] {
        assert_eq!(our_manifest["annotations"][key], their_manifest["annotations"][key], "{key}");
    }
    assert_eq!(outcome.created, None);

    // With a creation time (a logged layer), the annotation set is theirs plus ours.
    let s = crate::demo::cosign_v2_style().unwrap();
    let legacy = legacy_att(&s);
    let logged = only(legacy.convert(&subject_of(&s), 0, true));
    let ours: BTreeSet<String> = referrer(&logged)
        .manifest
        .manifest
        .annotations
        .keys()
        .filter(|k| !k.starts_with(crate::ANNOTATION_PREFIX))
        .cloned()
        .collect();
    let theirs: BTreeSet<String> = their_manifest["annotations"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(ours, theirs);
}

/// Every JSON path of a document (object keys joined by `.`, arrays as `[]`), leaves only.
fn shape(v: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, path: String, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    walk(child, p, out);
                }
            }
            Value::Array(items) => {
                for item in items {
                    walk(item, format!("{path}[]"), out);
                }
            }
            _ => {
                out.insert(path);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(v, String::new(), &mut out);
    out
}

#[test]
fn writer_key_hint_matches_the_real_bundle() {
    let pem_text = String::from_utf8(testdata::read("sigstore-oci-writer/ecdsa-p256.pub.pem")).unwrap();
    let key = VerifiedKey::PublicKey { spki_der: pem::decode_all(&pem_text).unwrap().remove(0).der };
    assert_eq!(key.hint().unwrap(), "DZm4a75xLiHO2x5rW//eJsGBE7E9KAuPK0YiLm3RJsA=");
}
