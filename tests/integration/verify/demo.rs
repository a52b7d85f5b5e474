//! Every layer the demo generator writes verifies: test keys of every type and scheme (with and without
//! log entries), and keyless layers (test CA, Ed25519 test log) with `intoto`, `dsse` and `hashedrekord`
//! bodies.

use std::sync::Arc;

use att2ref::demo::{AttachmentKind, Scenario, Scheme, SignedBy};
use att2ref::model::cosign::LegacyLayerAnnotations;
use att2ref::model::oci::ImageManifest;
use att2ref::model::trust::TrustedRoot;
use att2ref::verification::{
    CertificateIdentity, LogCheck, Matcher, Policy, PublicKey, RsaPadding, SignedEntity, Verifier,
};

fn check(scenario: &Scenario, root: &Arc<TrustedRoot>) -> usize {
    let mut checked = 0;
    for att in &scenario.attachments {
        let manifest = scenario.repo.manifests.iter().find(|m| m.digest == att.manifest).unwrap();
        let parsed: ImageManifest = serde_json::from_slice(&manifest.bytes).unwrap();
        for (layer, info) in parsed.layers.iter().zip(&att.layers) {
            let blob = scenario.repo.blobs[&layer.digest].to_vec();
            let annotations = LegacyLayerAnnotations::from_annotations(&layer.annotations);
            let entity = match att.kind {
                AttachmentKind::Attestations => SignedEntity::legacy_attestation(blob, annotations),
                AttachmentKind::Signatures => SignedEntity::legacy_signature(blob, annotations),
            };
            let mut policy = Policy::new().with_trusted_root(root.clone()).insecure_ignore_tlog(info.tlog.is_none());
            let mut padding = None;
            match &info.signed_by {
                SignedBy::Key(signer) => {
                    policy = policy.with_key(PublicKey::from_pem(signer.key().public_pem().as_bytes()).unwrap());
                    padding = match signer.scheme() {
                        Scheme::RsaPkcs1Sha256 => Some(RsaPadding::Pkcs1v15),
                        Scheme::RsaPssSha256 => Some(RsaPadding::Pss),
                        _ => None,
                    };
                }
                SignedBy::Keyless(who) => {
                    policy = policy.with_identity(CertificateIdentity::new(
                        Matcher::exact(who.identity.value()),
                        Matcher::exact(who.issuer.clone()),
                    ));
                }
            }
            let v = Verifier::new(policy)
                .unwrap()
                .verify(&entity, &att.subject)
                .unwrap_or_else(|f| panic!("{} {} layer {}: {f}", scenario.name, att.tag, layer.digest));
            assert_eq!(v.rsa_padding(), padding, "{} {}", scenario.name, layer.digest);
            match (&info.tlog, &v.log) {
                (None, LogCheck::Skipped) => {}
                (Some(t), LogCheck::Verified { entries }) => {
                    assert_eq!(entries[0].kind, t.kind.as_str());
                    assert_eq!((entries[0].log_index, entries[0].integrated_time), (t.log_index, t.integrated_time));
                }
                (t, l) => panic!("{}: tlog {t:?} but log check {l:?}", scenario.name),
            }
            checked += 1;
        }
    }
    checked
}

#[test]
fn every_demo_layer_verifies() {
    let root = Arc::new(TrustedRoot::parse(&att2ref::demo::trusted_root_json().unwrap()).unwrap());
    let mut scenarios = att2ref::demo::deterministic_scenarios().unwrap();
    scenarios.push(att2ref::demo::key_types().unwrap());
    scenarios.push(att2ref::demo::keyless_with_log(att2ref::demo::TestLog::ecdsa_p256()).unwrap());
    let total: usize = scenarios.iter().map(|s| check(s, &root)).sum();
    assert!(total > 20, "only {total} layers checked");
}
