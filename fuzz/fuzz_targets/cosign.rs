//! cosign's legacy formats: simple-signing payloads (`SimpleSigning::parse`), the RFC 3161 annotation
//! (`Rfc3161Timestamp::parse`), the layer annotations as a whole (`LegacyLayerAnnotations`), and tags.
#![no_main]

use std::collections::BTreeMap;

use att2ref::model::cosign::{LegacyLayerAnnotations, Rfc3161Timestamp, SimpleSigning, TagKind};
use libfuzzer_sys::fuzz_target;

/// The annotation keys cosign writes; the input's text is put under each so every reader sees it.
const KEYS: &[&str] = &[
    "dev.cosignproject.cosign/signature",
    "dev.sigstore.cosign/certificate",
    "dev.sigstore.cosign/chain",
    "dev.sigstore.cosign/bundle",
    "dev.sigstore.cosign/rfc3161timestamp",
    "predicateType",
    "dev.sigstore.sbom.scope",
];

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = SimpleSigning::parse(data) {
        let _ = (payload.is_cosign_type(), payload.matches(&payload.image_digest.clone()));
    }
    let _ = Rfc3161Timestamp::parse(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some((digest, kind)) = TagKind::parse_tag(text) {
        assert_eq!(kind.tag_for(&digest), text, "a cosign tag does not round-trip");
    }
    let annotations: BTreeMap<String, String> = KEYS.iter().map(|k| (k.to_string(), text.to_owned())).collect();
    let parsed = LegacyLayerAnnotations::from_annotations(&annotations);
    let _ = (parsed.signature_bytes(), parsed.certificate_der(), parsed.chain_der(), parsed.rekor_bundle());
    let _ = parsed.problems();
});
