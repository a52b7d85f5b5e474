//! Scenario-level checks: determinism, store integrity, signatures, SETs and sizes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::Value;

use super::content::{ARTICLE_SLSA_TEXT, predicate_type as pt};
use super::dsse::pae;
use super::keys::verify;
use super::rekor::{EntryPosition, TestLog};
use super::*;
use crate::model::media_type::{self as mt, annotations as ann};
use crate::model::oci::{Descriptor, Manifest};
use crate::store::Repository;
use crate::store::memory::MemoryRepository;

fn parse(m: &GeneratedManifest) -> Manifest {
    Manifest::parse(&m.bytes, Some(&m.media_type)).unwrap().0
}

fn layers_of<'a>(s: &'a Scenario, a: &Attachment) -> Vec<(Descriptor, &'a Bytes)> {
    let Manifest::Image(m) = parse(s.repo.manifest(&a.manifest).unwrap()) else {
        panic!("legacy manifest is an image manifest")
    };
    m.layers
        .into_iter()
        .map(|d| {
            let blob = s.repo.blob(&d.digest).unwrap();
            (d, blob)
        })
        .collect()
}

/// Every manifest hashes to its digest and everything it refers to is in the store, with the
/// declared size, pushed before it.
fn check_integrity(s: &Scenario) {
    for (d, b) in &s.repo.blobs {
        assert_eq!(&Digest::sha256(b), d, "{}: blob digest", s.name);
    }
    for (i, m) in s.repo.manifests.iter().enumerate() {
        assert_eq!(Digest::sha256(&m.bytes), m.digest, "{}: manifest digest", s.name);
        match parse(m) {
            Manifest::Image(im) => {
                for d in std::iter::once(&im.config).chain(&im.layers) {
                    let blob =
                        s.repo.blob(&d.digest).unwrap_or_else(|| panic!("{}: blob {} missing", s.name, d.digest));
                    assert_eq!(blob.len() as u64, d.size, "{}: size of {}", s.name, d.digest);
                }
            }
            Manifest::Index(ix) => {
                for d in &ix.manifests {
                    let pos = s.repo.manifests.iter().position(|x| x.digest == d.digest).expect("index entry present");
                    assert!(pos < i, "{}: index entries are pushed before the index", s.name);
                    assert_eq!(s.repo.manifests[pos].bytes.len() as u64, d.size);
                }
            }
            Manifest::Artifact(_) => panic!("no artifact manifests are generated"),
        }
    }
    for a in &s.attachments {
        let sub = s.repo.manifests.iter().position(|m| m.digest == a.subject).expect("subject present");
        let att = s.repo.manifests.iter().position(|m| m.digest == a.manifest).expect("attachment present");
        assert!(sub < att, "{}: subjects are pushed before their attachments", s.name);
        assert_eq!(a.current, s.repo.manifest_by_tag(&a.tag).map(|m| &m.digest) == Some(&a.manifest));
    }
}

fn public_key_of(s: &Scenario, by: &SignedBy, annotations: &crate::model::oci::Annotations) -> Vec<u8> {
    match by {
        SignedBy::Key(signer) => signer.key().public_spki_der(),
        SignedBy::Keyless(who) => {
            assert_eq!(annotations.get(ann::COSIGN_CERTIFICATE).unwrap(), &pki::leaf(who).unwrap().pem, "{}", s.name);
            assert_eq!(annotations.get(ann::COSIGN_CHAIN).unwrap(), &pki::root().unwrap().pem);
            TestKey::FulcioLeaf.public_spki_der()
        }
    }
}

fn scheme_of(by: &SignedBy) -> Scheme {
    match by {
        SignedBy::Key(signer) => signer.scheme(),
        SignedBy::Keyless(_) => Scheme::Ed25519,
    }
}

/// Check the legacy bundle: SET under the log key, body bound to the layer.
fn check_bundle(s: &Scenario, info: &LayerInfo, layer: &[u8], annotations: &crate::model::oci::Annotations) {
    let Some(entry) = info.tlog else {
        assert!(!annotations.contains_key(ann::COSIGN_BUNDLE), "{}: unexpected bundle", s.name);
        return;
    };
    let bundle: Value = serde_json::from_str(annotations.get(ann::COSIGN_BUNDLE).expect("bundle annotation")).unwrap();
    let payload = &bundle["Payload"];
    let body_b64 = payload["body"].as_str().unwrap();
    let log_id = payload["logID"].as_str().unwrap();
    let pos = EntryPosition {
        log_index: payload["logIndex"].as_i64().unwrap(),
        integrated_time: payload["integratedTime"].as_i64().unwrap(),
    };
    assert_eq!((pos.log_index, pos.integrated_time), (entry.log_index, entry.integrated_time));
    assert_eq!(log_id, hex::encode(pki::log_id(entry.log_key)));
    let set = STANDARD.decode(bundle["SignedEntryTimestamp"].as_str().unwrap()).unwrap();
    let msg = TestLog::set_message(body_b64, pos, log_id).unwrap();
    assert!(verify(entry.log_key.signer().scheme(), &entry.log_key.public_spki_der(), &msg, &set), "{}: SET", s.name);

    let body: Value = serde_json::from_slice(&STANDARD.decode(body_b64).unwrap()).unwrap();
    assert_eq!(
        format!("{}/{}", body["kind"].as_str().unwrap(), body["apiVersion"].as_str().unwrap()),
        entry.kind.as_str()
    );
    let layer_hex = Digest::sha256(layer).hex().to_owned();
    let spec = &body["spec"];
    let verifier = match entry.kind {
        TlogKind::Dsse => {
            assert_eq!(spec["envelopeHash"]["value"], layer_hex.as_str());
            spec["signatures"][0]["verifier"].as_str().unwrap().to_owned()
        }
        TlogKind::Intoto => {
            assert_eq!(spec["content"]["hash"]["value"], layer_hex.as_str());
            spec["publicKey"].as_str().unwrap().to_owned()
        }
        TlogKind::HashedRekord => {
            assert_eq!(spec["data"]["hash"]["value"], layer_hex.as_str());
            assert_eq!(
                spec["signature"]["content"].as_str(),
                annotations.get(ann::COSIGN_SIGNATURE).map(String::as_str)
            );
            spec["signature"]["publicKey"]["content"].as_str().unwrap().to_owned()
        }
    };
    let verifier = String::from_utf8(STANDARD.decode(verifier).unwrap()).unwrap();
    let expected = match &info.signed_by {
        SignedBy::Key(signer) => signer.key().public_pem().to_owned(),
        SignedBy::Keyless(who) => pki::leaf(who).unwrap().pem,
    };
    assert_eq!(verifier, expected, "{}: verifier in the log body", s.name);
}

/// Verify every layer of every attachment the way a legacy verifier would, from the stored bytes.
fn check_signatures(s: &Scenario) {
    for a in &s.attachments {
        let layers = layers_of(s, a);
        assert_eq!(layers.len(), a.layers.len());
        for ((desc, blob), info) in layers.iter().zip(&a.layers) {
            assert_eq!(desc.digest, info.digest);
            let key = public_key_of(s, &info.signed_by, &desc.annotations);
            let scheme = scheme_of(&info.signed_by);
            match a.kind {
                AttachmentKind::Attestations => {
                    assert_eq!(desc.media_type, mt::DSSE_ENVELOPE);
                    assert_eq!(desc.annotation(ann::COSIGN_SIGNATURE), Some(""));
                    let env: Value = serde_json::from_slice(blob).unwrap();
                    assert_eq!(env["payloadType"], mt::IN_TOTO);
                    assert_eq!(env["signatures"].as_array().unwrap().len(), 1);
                    assert_eq!(env["signatures"][0]["keyid"], "");
                    let payload = STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
                    let sig = STANDARD.decode(env["signatures"][0]["sig"].as_str().unwrap()).unwrap();
                    assert!(
                        verify(scheme, &key, &pae(mt::IN_TOTO, &payload), &sig),
                        "{}: DSSE signature of {}",
                        s.name,
                        desc.digest
                    );
                    let stmt: Value = serde_json::from_slice(&payload).unwrap();
                    assert_eq!(stmt["_type"], "https://in-toto.io/Statement/v0.1");
                    assert_eq!(stmt["subject"][0]["name"], s.repo.repository.as_str());
                    assert_eq!(stmt["subject"][0]["digest"]["sha256"], a.subject.hex());
                    assert_eq!(stmt["predicateType"].as_str(), info.predicate_type.as_deref());
                    let annotated = desc.annotation(ann::COSIGN_PREDICATE_TYPE);
                    assert_eq!(annotated.is_some(), info.annotated);
                    if let Some(t) = annotated {
                        assert_eq!(Some(t), info.predicate_type.as_deref());
                    }
                }
                AttachmentKind::Signatures => {
                    assert_eq!(desc.media_type, mt::SIMPLE_SIGNING);
                    let sig = STANDARD.decode(desc.annotation(ann::COSIGN_SIGNATURE).unwrap()).unwrap();
                    assert!(verify(scheme, &key, blob, &sig), "{}: .sig signature", s.name);
                    let payload: Value = serde_json::from_slice(blob).unwrap();
                    assert_eq!(payload["critical"]["image"]["docker-manifest-digest"], a.subject.to_string());
                }
            }
            check_bundle(s, info, blob, &desc.annotations);
        }
    }
}

fn check(s: &Scenario) {
    check_integrity(s);
    check_signatures(s);
}

#[test]
fn deterministic_scenarios_are_byte_identical_and_valid() {
    let first = deterministic_scenarios().unwrap();
    let second = deterministic_scenarios().unwrap();
    for (a, b) in first.iter().zip(&second) {
        assert!(a.deterministic, "{} should be deterministic", a.name);
        assert_eq!(a.repo, b.repo, "{} differs between runs", a.name);
        check(a);
    }
    let digests: std::collections::BTreeSet<&Digest> = first.iter().map(|s| &s.image).collect();
    assert_eq!(digests.len(), first.len(), "scenarios use distinct images");
}

#[test]
fn key_types_cover_every_scheme_and_verify() {
    let s = key_types().unwrap();
    assert!(!s.deterministic);
    check(&s);
    let mut schemes: Vec<(TestKey, Scheme)> = s
        .attachments
        .iter()
        .filter(|a| a.kind == AttachmentKind::Attestations)
        .map(|a| match &a.layers[0].signed_by {
            SignedBy::Key(k) => (k.key(), k.scheme()),
            SignedBy::Keyless(_) => panic!("key_types is keyed"),
        })
        .collect();
    schemes.sort_by_key(|(k, s)| (*k, format!("{s:?}")));
    assert_eq!(schemes.len(), 6);
    for expected in [
        (TestKey::Rsa2048, Scheme::RsaPkcs1Sha256),
        (TestKey::Rsa2048, Scheme::RsaPssSha256),
        (TestKey::Rsa4096, Scheme::RsaPkcs1Sha256),
        (TestKey::EcdsaP256, Scheme::EcdsaP256Sha256),
        (TestKey::EcdsaP384, Scheme::EcdsaP384Sha384),
        (TestKey::Ed25519, Scheme::Ed25519),
    ] {
        assert!(schemes.contains(&expected), "{expected:?}");
    }
}

#[test]
fn keyless_with_an_ecdsa_log_verifies() {
    let s = keyless_with_log(TestLog::ecdsa_p256()).unwrap();
    assert!(!s.deterministic);
    check(&s);
}

#[test]
fn article_like_has_the_articles_shape_and_sizes() {
    let s = article_like().unwrap();
    let att = s.attachment_for(&s.image, AttachmentKind::Attestations).unwrap();
    assert_eq!(att.layers.len(), 2);
    assert!(
        att.layers
            .iter()
            .all(|l| l.predicate_type.as_deref() == Some(pt::CUSTOM_V1) && !l.annotated && l.tlog.is_none())
    );
    assert!(att.layers.iter().all(|l| matches!(l.signed_by, SignedBy::Key(k) if k.key() == TestKey::Rsa4096 && k.scheme() == Scheme::RsaPkcs1Sha256)));
    let layers = layers_of(&s, att);
    // Only the empty signature annotation, as cosign v1.x wrote.
    assert!(layers.iter().all(|(d, _)| d.annotations.len() == 1));
    let sbom_layer = layers[0].1;
    assert!(sbom_layer.len() >= 1_500_000, "SBOM envelope is {} bytes", sbom_layer.len());
    assert!(sbom_layer.len() <= 3_000_000, "SBOM envelope is {} bytes", sbom_layer.len());

    let data_of = |blob: &Bytes| {
        let env: Value = serde_json::from_slice(blob).unwrap();
        let payload = STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
        let stmt: Value = serde_json::from_slice(&payload).unwrap();
        assert!(stmt["predicate"]["Timestamp"].as_str().unwrap().ends_with('Z'));
        (payload, stmt["predicate"]["Data"].as_str().unwrap().to_owned())
    };
    let (sbom_payload, sbom) = data_of(sbom_layer);
    assert!(sbom.len() >= ARTICLE_SBOM_BYTES, "SBOM file is {} bytes", sbom.len());
    let doc: Value = serde_json::from_str(&sbom).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.2");
    assert!(doc["packages"].as_array().unwrap().len() > 100);
    // Go escaping of '&' inside the signed payload, as in the article's own SBOM layer.
    assert!(sbom_payload.windows(6).any(|w| w == b"\\u0026"));

    let (_, slsa) = data_of(layers[1].1);
    assert_eq!(slsa, ARTICLE_SLSA_TEXT, "the SLSA text round-trips out of the Data wrapper");
    assert_eq!(slsa.len(), 785);

    let config = parse(s.repo.manifest(&att.manifest).unwrap());
    let Manifest::Image(m) = config else { panic!() };
    let config: Value = serde_json::from_slice(s.repo.blob(&m.config.digest).unwrap()).unwrap();
    assert_ne!(config["created"], "0001-01-01T00:00:00Z", "v1.x configs carry the signing time");
    assert_eq!(config["history"].as_array().unwrap().len(), 2);

    let sig = s.attachment_for(&s.image, AttachmentKind::Signatures).unwrap();
    assert_eq!(sig.layers.len(), 1);
}

#[test]
fn demo_is_article_shaped_but_small() {
    let s = demo().unwrap();
    let att = s.attachment_for(&s.image, AttachmentKind::Attestations).unwrap();
    assert_eq!(att.layers.len(), 2);
    assert!(att.layers[0].size > DEMO_SBOM_BYTES as u64 && att.layers[0].size < 500_000, "{}", att.layers[0].size);
    assert!(s.repo.total_bytes() < 1_000_000);
}

#[test]
fn cosign_v2_style_appends_repeated_types() {
    let s = cosign_v2_style().unwrap();
    let att = s.attachment_for(&s.image, AttachmentKind::Attestations).unwrap();
    let types: Vec<&str> = att.layers.iter().map(|l| l.predicate_type.as_deref().unwrap()).collect();
    assert_eq!(types, [pt::SLSA_V02, pt::SPDX, pt::CUSTOM, pt::SLSA_V02, pt::VULN]);
    assert!(att.layers.iter().all(|l| l.annotated));
    let kinds: Vec<Option<TlogKind>> = att.layers.iter().map(|l| l.tlog.map(|t| t.kind)).collect();
    assert_eq!(kinds, [Some(TlogKind::Dsse), Some(TlogKind::Dsse), None, Some(TlogKind::Intoto), None]);
}

#[test]
fn replace_history_follows_cosign_replace() {
    let s = replace_history().unwrap();
    let atts: Vec<&Attachment> = s.attachments.iter().filter(|a| a.kind == AttachmentKind::Attestations).collect();
    assert_eq!(atts.len(), 3);
    assert_eq!(atts.iter().map(|a| a.current).collect::<Vec<_>>(), [false, false, true]);
    let types = |a: &Attachment| a.layers.iter().map(|l| l.predicate_type.clone().unwrap()).collect::<Vec<_>>();
    assert_eq!(types(atts[0]), [pt::CUSTOM_V1, pt::SLSA_V02, pt::SPDX]);
    assert_eq!(types(atts[1]), [pt::SLSA_V02, pt::CUSTOM_V1, pt::SPDX]);
    assert_eq!(types(atts[2]), [pt::CUSTOM, pt::SLSA_V02, pt::CUSTOM_V1, pt::SPDX]);
    // The replaced SLSA layer is gone; kept layers are the same blobs.
    assert_ne!(atts[0].layers[1].digest, atts[1].layers[0].digest);
    assert_eq!(atts[0].layers[0].digest, atts[1].layers[1].digest);
    assert_eq!(atts[1].layers[0].digest, atts[2].layers[1].digest);
    // The superseded manifests stay in the store, untagged.
    assert!(s.repo.manifest(&atts[0].manifest).unwrap().tags.is_empty());
}

#[test]
fn keyless_covers_every_entry_kind() {
    let s = keyless().unwrap();
    let att = s.attachment_for(&s.image, AttachmentKind::Attestations).unwrap();
    let kinds: Vec<TlogKind> = att.layers.iter().map(|l| l.tlog.unwrap().kind).collect();
    assert_eq!(kinds, [TlogKind::Intoto, TlogKind::Dsse, TlogKind::Dsse]);
    let sig = s.attachment_for(&s.image, AttachmentKind::Signatures).unwrap();
    assert_eq!(sig.layers[0].tlog.unwrap().kind, TlogKind::HashedRekord);
    assert_eq!(sig.layers[0].signed_by, SignedBy::Keyless(KeylessIdentity::workflow()));
    // Entries are integrated inside the leaf certificates' validity window.
    for l in att.layers.iter().chain(&sig.layers) {
        let t = l.tlog.unwrap().integrated_time;
        assert!(t > pki::LEAF_NOT_BEFORE_UNIX && t < pki::LEAF_NOT_BEFORE_UNIX + pki::LEAF_LIFETIME_SECS);
    }
    let root: Value = serde_json::from_slice(&trusted_root_json().unwrap()).unwrap();
    assert_eq!(root["tlogs"][0]["logId"]["keyId"], STANDARD.encode(pki::log_id(TestKey::RekorEd25519)));
}

#[test]
fn multi_arch_attaches_to_index_and_platform() {
    let s = multi_arch().unwrap();
    let index = s.repo.manifest(&s.image).unwrap();
    assert_eq!(index.media_type, mt::OCI_INDEX);
    let Manifest::Index(ix) = parse(index) else { panic!() };
    assert_eq!(ix.manifests.len(), 2);
    let amd64 = &ix.manifests[0].digest;
    assert!(s.attachment_for(&s.image, AttachmentKind::Attestations).is_some());
    assert!(s.attachment_for(&s.image, AttachmentKind::Signatures).is_some());
    assert!(s.attachment_for(amd64, AttachmentKind::Attestations).is_some());
    assert!(s.attachment_for(&ix.manifests[1].digest, AttachmentKind::Attestations).is_none());
}

#[tokio::test]
async fn push_to_writes_blobs_manifests_and_tags() {
    let s = replace_history().unwrap();
    let mem = MemoryRepository::default();
    s.repo.push_to(&mem).await.unwrap();
    assert_eq!(mem.blob_count(), s.repo.blobs.len());
    assert_eq!(mem.manifest_count(), s.repo.manifests.len());
    for m in &s.repo.manifests {
        assert_eq!(mem.get_manifest(&m.digest.to_string()).await.unwrap().unwrap().bytes, m.bytes);
        for t in &m.tags {
            assert_eq!(mem.get_manifest(t).await.unwrap().unwrap().digest, m.digest);
        }
    }
    let att_tag = s.image.cosign_tag("att");
    let current = s.attachment(&att_tag).unwrap();
    assert_eq!(mem.get_manifest(&att_tag).await.unwrap().unwrap().digest, current.manifest);
    let mut tags = mem.list_tags().await.unwrap();
    tags.sort();
    let mut expected: Vec<String> = s.repo.tags().into_iter().map(str::to_owned).collect();
    expected.sort();
    assert_eq!(tags, expected);
}

#[test]
fn demo_bytes_are_pinned() {
    // Pinned so a change that alters generated bytes (across processes, platforms or dependency
    // upgrades) is noticed. Update deliberately when the generator or the test keys change.
    let s = demo().unwrap();
    let att = s.attachment_for(&s.image, AttachmentKind::Attestations).unwrap();
    let sig = s.attachment_for(&s.image, AttachmentKind::Signatures).unwrap();
    assert_eq!(s.image.to_string(), "sha256:2c3d4f2de1bc5421b50a64c7b35cccf4edaafd1760c8ca4021cde6e965946d4f");
    assert_eq!(att.manifest.to_string(), "sha256:2ad58a8ff635728901da7c8a92a6da85b6492eda4dc60ba2765e0afe3f70bd0b");
    assert_eq!(sig.manifest.to_string(), "sha256:b4ea1923a2fab772da6952f33602969a59081bb232ef13ce820a0c5083e540ae");
}

#[test]
fn numbered_fleet_images_are_distinct_and_reproducible() {
    let one = article_like_numbered("registry.test/bench", 1, 4_000).unwrap();
    let again = article_like_numbered("registry.test/bench", 1, 4_000).unwrap();
    let two = article_like_numbered("registry.test/bench", 2, 4_000).unwrap();
    assert_eq!(one.repo, again.repo);
    assert_ne!(one.image, two.image);
    for s in [&one, &two] {
        check_integrity(s);
        assert_eq!(s.attachments.len(), 1, "only an .att, no .sig");
        assert_eq!(s.attachments[0].layers.len(), 2);
    }
    let layers = |s: &Scenario| s.attachments[0].layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>();
    assert!(layers(&one).iter().all(|d| !layers(&two).contains(d)), "every layer differs per index");
}
