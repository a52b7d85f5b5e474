//! A legacy Rekor entry (`dev.sigstore.cosign/bundle`) as a bundle's `TransparencyLogEntry`
//! (FORMATS §2.6), after checking that the entry binds to exactly the signature being converted.
//!
//! The cross-check repeats, purely, what sigstore-go will compare when it verifies the bundle (entry
//! signature, entry key, payload hash) plus what legacy verification compared (envelope hash = layer
//! digest). A mismatch is an error: emitting the bundle would produce something that either fails
//! verification later or, worse, carries a log entry about different content.

use crate::error::{Error, ErrorKind, Result};
use crate::model::bundle::{InclusionPromise, KindVersion, LogId, TransparencyLogEntry};
use crate::model::digest::Digest;
use crate::model::pem;
use crate::model::rekor::{RekorBody, RekorBundle, RekorSpec};

use super::input::VerifiedKey;
use super::outcome::BlockedReason;
use super::rekor::RekorEntry;

/// The entry kinds a DSSE bundle can carry, as far as sigstore-go verifies them.
fn check_kind(legacy: &RekorBundle) -> std::result::Result<(), BlockedReason> {
    let log_index = legacy.payload.log_index;
    match &legacy.body.spec {
        RekorSpec::DsseV001(_) | RekorSpec::IntotoV002(_) => Ok(()),
        RekorSpec::IntotoV001(_) => Err(BlockedReason::IntotoV001Entry { log_index }),
        _ => Err(BlockedReason::UnsupportedLogEntryKind {
            kind: short(&legacy.body.kind),
            version: short(&legacy.body.api_version),
        }),
    }
}

/// What one signature needs from the layer's log entry.
pub(crate) struct Binding<'a> {
    pub layer_digest: &'a Digest,
    pub payload: &'a [u8],
    pub signature: &'a [u8],
    pub key: &'a VerifiedKey,
}

/// Map the layer's legacy entry to a bundle entry for one signature. `Ok(Err(reason))` when the entry
/// cannot be carried; `Err` when it does not bind to this signature.
pub(crate) fn map_entry(
    legacy: &RekorBundle,
    proof: Option<&RekorEntry>,
    binding: &Binding<'_>,
) -> Result<std::result::Result<TransparencyLogEntry, BlockedReason>> {
    if let Err(reason) = check_kind(legacy) {
        return Ok(Err(reason));
    }
    if let Some(reason) = cross_check(&legacy.body, legacy.payload.log_index, binding)? {
        return Ok(Err(reason));
    }
    let missing = BlockedReason::MissingInclusionProof { log_index: legacy.payload.log_index };
    let Some(fetched) = proof else {
        return Ok(Err(missing));
    };
    fetched.check_same_entry(legacy)?;
    let Some(inclusion_proof) = fetched.inclusion_proof.clone() else {
        return Ok(Err(missing));
    };
    Ok(Ok(TransparencyLogEntry {
        log_index: legacy.payload.log_index,
        log_id: LogId { key_id: legacy.log_id.clone() },
        kind_version: KindVersion { kind: legacy.body.kind.clone(), version: legacy.body.api_version.clone() },
        integrated_time: legacy.payload.integrated_time,
        inclusion_promise: Some(InclusionPromise { signed_entry_timestamp: legacy.signed_entry_timestamp.clone() }),
        inclusion_proof: Some(inclusion_proof),
        canonicalized_body: legacy.body_bytes.clone(),
    }))
}

/// FORMATS §2.6 cross-check for envelope-based entries: envelope hash = layer digest, payload hash =
/// SHA-256 of the payload, the entry's signature = this signature, the entry's key = the verifying key.
fn cross_check(body: &RekorBody, log_index: i64, b: &Binding<'_>) -> Result<Option<BlockedReason>> {
    let fail = |what: String| {
        Err(Error::new(
            ErrorKind::VerificationFailed,
            format!(
                "log entry {log_index} ({}/{}) does not bind to this attestation: {what}",
                short(&body.kind),
                short(&body.api_version)
            ),
        ))
    };
    match body.artifact_hash() {
        Some(h) if h.is_sha256(b.layer_digest.hex()) => {}
        Some(h) => {
            return fail(format!(
                "envelope hash {}:{} is not the layer digest {}",
                short(&h.algorithm),
                short(&h.value),
                b.layer_digest
            ));
        }
        None => return fail("no envelope hash".into()),
    }
    let payload_digest = Digest::sha256(b.payload);
    match body.payload_hash() {
        Some(h) if h.is_sha256(payload_digest.hex()) => {}
        Some(h) => {
            return fail(format!(
                "payload hash {}:{} is not the payload's {payload_digest}",
                short(&h.algorithm),
                short(&h.value)
            ));
        }
        None => return fail("no payload hash".into()),
    }
    let logged = body.signatures();
    let Some(position) = logged.iter().position(|s| s.signature == b.signature) else {
        return fail(format!("none of its {} signatures is the envelope signature", logged.len()));
    };
    let key_pem = &logged[position].public_key_pem;
    if !same_key(key_pem, b.key) {
        return fail("its key or certificate is not the one that verified the signature".into());
    }
    if position != 0 {
        return Ok(Some(BlockedReason::LogEntrySignatureNotFirst { position }));
    }
    Ok(None)
}

/// True when the logged PEM (one key or certificate) is exactly the verifying key or certificate.
fn same_key(logged_pem: &[u8], key: &VerifiedKey) -> bool {
    let Ok(text) = std::str::from_utf8(logged_pem) else {
        return false;
    };
    let Ok(blocks) = pem::decode_all(text) else {
        return false;
    };
    match (blocks.as_slice(), key) {
        ([block], VerifiedKey::PublicKey { spki_der }) => block.label == "PUBLIC KEY" && &block.der == spki_der,
        ([block], VerifiedKey::Certificate { der }) => block.label == "CERTIFICATE" && &block.der == der,
        _ => false,
    }
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::rekor::tests::{legacy_bundle, response_for};
    use crate::model::dsse::encode_base64;

    const PEM_KEY: &str = "-----BEGIN PUBLIC KEY-----\nAQID\n-----END PUBLIC KEY-----\n";

    fn dsse_body(envelope_hex: &str, payload_hex: &str, sigs: &[(&[u8], &str)]) -> String {
        let sigs: Vec<String> = sigs
            .iter()
            .map(|(s, pem)| {
                format!(r#"{{"signature":"{}","verifier":"{}"}}"#, encode_base64(s), encode_base64(pem.as_bytes()))
            })
            .collect();
        format!(
            r#"{{"apiVersion":"0.0.1","kind":"dsse","spec":{{"envelopeHash":{{"algorithm":"sha256","value":"{envelope_hex}"}},"payloadHash":{{"algorithm":"sha256","value":"{payload_hex}"}},"signatures":[{}]}}}}"#,
            sigs.join(",")
        )
    }

    #[test]
    fn binds_and_maps_a_dsse_entry() {
        let layer = Digest::sha256(b"envelope");
        let payload_hex = Digest::sha256(b"payload").hex().to_owned();
        let key = VerifiedKey::PublicKey { spki_der: vec![1, 2, 3] };
        let binding = Binding { layer_digest: &layer, payload: b"payload", signature: b"sig", key: &key };
        let legacy = legacy_bundle(&dsse_body(layer.hex(), &payload_hex, &[(b"sig", PEM_KEY)]), 42, 1_700_000_000);
        let fetched = RekorEntry::parse_response(response_for(&legacy).as_bytes()).unwrap();

        let entry = map_entry(&legacy, Some(&fetched), &binding).unwrap().unwrap();
        assert_eq!((entry.log_index, entry.integrated_time), (42, 1_700_000_000));
        assert_eq!(entry.kind_version, KindVersion { kind: "dsse".into(), version: "0.0.1".into() });
        assert_eq!(entry.log_id.key_id, legacy.log_id);
        assert_eq!(entry.canonicalized_body, legacy.body_bytes);
        assert_eq!(entry.inclusion_promise.unwrap().signed_entry_timestamp, legacy.signed_entry_timestamp);
        assert_eq!(entry.inclusion_proof, fetched.inclusion_proof);

        assert_eq!(
            map_entry(&legacy, None, &binding).unwrap().unwrap_err(),
            BlockedReason::MissingInclusionProof { log_index: 42 }
        );
        let mut no_proof = fetched.clone();
        no_proof.inclusion_proof = None;
        // A fetched entry without a proof blocks the same way as no fetched entry at all.
        assert_eq!(
            map_entry(&legacy, Some(&no_proof), &binding).unwrap().unwrap_err(),
            BlockedReason::MissingInclusionProof { log_index: 42 }
        );
        let mut other = fetched;
        other.integrated_time += 1;
        assert_eq!(map_entry(&legacy, Some(&other), &binding).unwrap_err().kind(), ErrorKind::VerificationFailed);
    }

    #[test]
    fn cross_check_failures_are_errors() {
        let layer = Digest::sha256(b"envelope");
        let payload_hex = Digest::sha256(b"payload").hex().to_owned();
        let key = VerifiedKey::PublicKey { spki_der: vec![1, 2, 3] };
        let binding = Binding { layer_digest: &layer, payload: b"payload", signature: b"sig", key: &key };
        let other_hex = Digest::sha256(b"other").hex().to_owned();
        let cert_pem = "-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n";
        let cases = [
            (dsse_body(&other_hex, &payload_hex, &[(b"sig", PEM_KEY)]), "is not the layer digest"),
            (dsse_body(layer.hex(), &other_hex, &[(b"sig", PEM_KEY)]), "is not the payload's"),
            (dsse_body(layer.hex(), &payload_hex, &[(b"gis", PEM_KEY)]), "none of its 1 signatures"),
            (dsse_body(layer.hex(), &payload_hex, &[]), "none of its 0 signatures"),
            (dsse_body(layer.hex(), &payload_hex, &[(b"sig", cert_pem)]), "key or certificate"),
            (dsse_body(layer.hex(), &payload_hex, &[(b"sig", "not pem")]), "key or certificate"),
        ];
        for (body, want) in cases {
            let legacy = legacy_bundle(&body, 9, 1);
            let err = map_entry(&legacy, None, &binding).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::VerificationFailed);
            assert!(err.to_string().contains(want), "{want}: {err}");
            assert!(err.to_string().contains("log entry 9 (dsse/0.0.1)"), "{err}");
        }
        // Listed, but not first: verifiers would compare the other signature.
        let legacy =
            legacy_bundle(&dsse_body(layer.hex(), &payload_hex, &[(b"first", PEM_KEY), (b"sig", PEM_KEY)]), 9, 1);
        assert_eq!(
            map_entry(&legacy, None, &binding).unwrap().unwrap_err(),
            BlockedReason::LogEntrySignatureNotFirst { position: 1 }
        );
    }

    #[test]
    fn unsupported_kinds_are_blocked_before_anything_else() {
        let layer = Digest::sha256(b"envelope");
        let key = VerifiedKey::Certificate { der: vec![1] };
        let binding = Binding { layer_digest: &layer, payload: b"p", signature: b"s", key: &key };
        let intoto = r#"{"apiVersion":"0.0.1","kind":"intoto","spec":{"content":{"hash":{"algorithm":"sha256","value":"00"}},"publicKey":"AA=="}}"#;
        let legacy = legacy_bundle(intoto, 5, 1);
        assert_eq!(
            map_entry(&legacy, None, &binding).unwrap().unwrap_err(),
            BlockedReason::IntotoV001Entry { log_index: 5 }
        );
        let legacy = legacy_bundle(r#"{"apiVersion":"0.0.1","kind":"cose","spec":{}}"#, 5, 1);
        assert_eq!(
            map_entry(&legacy, None, &binding).unwrap().unwrap_err(),
            BlockedReason::UnsupportedLogEntryKind { kind: "cose".into(), version: "0.0.1".into() }
        );
    }
}
