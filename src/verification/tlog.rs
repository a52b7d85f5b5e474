//! Rekor (v1) evidence: signed entry timestamps, inclusion proofs, and the binding between a log entry's
//! body and the attestation it is supposed to describe.

use crate::model::bundle::{BundleVersion, TransparencyLogEntry};
use crate::model::dsse::encode_base64;
use crate::model::pem;
use crate::model::rekor::{RekorBody, RekorBundle, RekorHash, RekorPayload, RekorSpec};

use super::failure::{Failure, FailureReason, fail};
use super::material::{LogKey, TrustedMaterial};
use super::merkle::{leaf_hash, verify_checkpoint, verify_inclusion};

/// What was checked for one log entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntryCheck {
    /// The log id (hex SHA-256 of the log key).
    pub log_id: String,
    /// The log's base URL from the trusted root.
    pub log_url: String,
    /// Global log index.
    pub log_index: i64,
    /// When the log integrated the entry (Unix seconds); trusted only when `promise_verified`.
    pub integrated_time: i64,
    /// Body `kind/apiVersion`, e.g. `dsse/0.0.1`.
    pub kind: String,
    /// Whether a signed entry timestamp was verified.
    pub promise_verified: bool,
    /// The verified inclusion proof, when there was one.
    pub proof: Option<ProofCheck>,
}

/// A verified inclusion proof.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProofCheck {
    /// Leaf index in the proof's tree (shard-local in sharded Rekor v1).
    pub log_index: i64,
    /// Tree size the proof and checkpoint are for.
    pub tree_size: u64,
    /// Root hash, hex.
    pub root_hash: String,
    /// The checkpoint's origin line.
    pub checkpoint_origin: String,
}

fn verify_set(log: &LogKey, payload: &RekorPayload, set: &[u8]) -> Result<(), Failure> {
    if log.key.verify(&payload.canonical_json(), set).is_none() {
        return fail(
            FailureReason::SetInvalid,
            format!(
                "signed entry timestamp of entry {} does not verify under the key of log {} ({})",
                payload.log_index, payload.log_id, log.url
            ),
        );
    }
    Ok(())
}

/// Verify a legacy `dev.sigstore.cosign/bundle` annotation's SET.
pub(crate) fn verify_legacy(material: &TrustedMaterial, b: &RekorBundle) -> Result<LogEntryCheck, Failure> {
    let log = material.log(&b.log_id, b.payload.integrated_time)?;
    verify_set(log, &b.payload, &b.signed_entry_timestamp)?;
    Ok(LogEntryCheck {
        log_id: hex::encode(&b.log_id),
        log_url: log.url.clone(),
        log_index: b.payload.log_index,
        integrated_time: b.payload.integrated_time,
        kind: format!("{}/{}", b.body.kind, b.body.api_version),
        promise_verified: true,
        proof: None,
    })
}

/// Verify one bundle log entry: promise and/or proof, as the bundle version requires.
pub(crate) fn verify_bundle_entry(
    material: &TrustedMaterial,
    version: BundleVersion,
    entry: &TransparencyLogEntry,
    body: &RekorBody,
) -> Result<LogEntryCheck, Failure> {
    let log = material.log(&entry.log_id.key_id, entry.integrated_time)?;
    let kind = format!("{}/{}", body.kind, body.api_version);
    if entry.kind_version.kind != body.kind || entry.kind_version.version != body.api_version {
        return fail(
            FailureReason::BodyMismatch,
            format!(
                "entry declares kind {}/{} but its body is {kind}",
                entry.kind_version.kind, entry.kind_version.version
            ),
        );
    }
    if version >= BundleVersion::V0_2 && entry.inclusion_proof.is_none() {
        return fail(
            FailureReason::MissingInclusionProof,
            format!("log entry {} has no inclusion proof, which bundles v0.2 and later require", entry.log_index),
        );
    }
    if version == BundleVersion::V0_1 && entry.inclusion_promise.is_none() {
        return fail(
            FailureReason::MissingInclusionPromise,
            format!("log entry {} has no signed entry timestamp, which v0.1 bundles require", entry.log_index),
        );
    }
    let mut promise_verified = false;
    if let Some(promise) = &entry.inclusion_promise {
        let payload = RekorPayload {
            body: encode_base64(&entry.canonicalized_body),
            integrated_time: entry.integrated_time,
            log_index: entry.log_index,
            log_id: hex::encode(&entry.log_id.key_id),
        };
        verify_set(log, &payload, &promise.signed_entry_timestamp)?;
        promise_verified = true;
    }
    let proof = match &entry.inclusion_proof {
        None => None,
        Some(p) => {
            let bad = |m: String| Failure::new(FailureReason::InclusionProofInvalid, m);
            let index = u64::try_from(p.log_index).map_err(|_| bad(format!("negative proof index {}", p.log_index)))?;
            let size = u64::try_from(p.tree_size).map_err(|_| bad(format!("negative tree size {}", p.tree_size)))?;
            verify_inclusion(index, size, &leaf_hash(&entry.canonicalized_body), &p.hashes, &p.root_hash)
                .map_err(|e| bad(format!("log entry {}: {e}", entry.log_index)))?;
            let cp = verify_checkpoint(&p.checkpoint.envelope, &log.key, &log.id)
                .map_err(|e| bad(format!("log entry {}: {e}", entry.log_index)))?;
            if cp.tree_size != size || cp.root_hash != p.root_hash {
                return Err(bad(format!(
                    "log entry {}: checkpoint is for tree size {} root {}, the proof for size {size} root {}",
                    entry.log_index,
                    cp.tree_size,
                    hex::encode(&cp.root_hash),
                    hex::encode(&p.root_hash)
                )));
            }
            Some(ProofCheck {
                log_index: p.log_index,
                tree_size: size,
                root_hash: hex::encode(&p.root_hash),
                checkpoint_origin: cp.origin,
            })
        }
    };
    if !promise_verified && proof.is_none() {
        return fail(
            FailureReason::MissingInclusionPromise,
            format!("log entry {} has neither a signed entry timestamp nor an inclusion proof", entry.log_index),
        );
    }
    Ok(LogEntryCheck {
        log_id: hex::encode(&entry.log_id.key_id),
        log_url: log.url.clone(),
        log_index: entry.log_index,
        integrated_time: entry.integrated_time,
        kind,
        promise_verified,
        proof,
    })
}

/// What the attestation commits to, for comparison with a log entry body.
pub(crate) struct Binding<'a> {
    /// SHA-256 (hex) of the exact legacy layer bytes; `None` for bundles (their envelope is re-serialised).
    pub layer_sha256: Option<String>,
    /// For message signatures: SHA-256 (hex) of the signed bytes.
    pub message_sha256: Option<String>,
    /// For DSSE: SHA-256 (hex) of the payload.
    pub payload_sha256: Option<String>,
    /// The signature that verified.
    pub signature: &'a [u8],
    /// The signer's certificate (DER), if certificate-signed.
    pub cert_der: Option<&'a [u8]>,
    /// The signer's SPKI DER.
    pub spki_der: &'a [u8],
}

impl Binding<'_> {
    fn key_matches(&self, pem_bytes: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(pem_bytes) else {
            return false;
        };
        let Ok(blocks) = pem::decode_all(text) else {
            return false;
        };
        match blocks.first() {
            Some(b) if b.label == "CERTIFICATE" => self.cert_der == Some(b.der.as_slice()),
            Some(b) if b.label == "PUBLIC KEY" => self.cert_der.is_none() && b.der == self.spki_der,
            _ => false,
        }
    }
}

fn check_hash(what: &str, logged: &RekorHash, actual: Option<&String>) -> Result<(), Failure> {
    let Some(actual) = actual else {
        return fail(FailureReason::BodyMismatch, format!("log entry records {what}, which this attestation lacks"));
    };
    if !logged.is_sha256(actual) {
        return fail(
            FailureReason::BodyMismatch,
            format!("log entry {what} is {}:{}, the attestation's is sha256:{actual}", logged.algorithm, logged.value),
        );
    }
    Ok(())
}

/// Check that `body` describes the attestation (cosign `VerifyBundle` for legacy layers; sigstore-go
/// `VerifyTlogEntry` for bundles, where the envelope hash is not compared).
pub(crate) fn bind_body(body: &RekorBody, b: &Binding<'_>) -> Result<(), Failure> {
    let kind = format!("{}/{}", body.kind, body.api_version);
    let is_dsse = b.payload_sha256.is_some();
    let mismatch = |m: &str| Failure::new(FailureReason::BodyMismatch, format!("{kind} log entry: {m}"));
    let signature_logged = |sigs: &[crate::model::rekor::EntrySignature]| {
        if sigs.iter().any(|s| s.signature == b.signature && b.key_matches(&s.public_key_pem)) {
            Ok(())
        } else if sigs.iter().any(|s| s.signature == b.signature) {
            Err(mismatch("the logged key or certificate is not the one that signed"))
        } else {
            Err(mismatch("the signature that verified is not the logged one"))
        }
    };
    match &body.spec {
        RekorSpec::HashedRekordV001(_) | RekorSpec::RekordV001(_) if is_dsse => {
            Err(mismatch("a message-signature entry cannot describe a DSSE envelope"))
        }
        RekorSpec::HashedRekordV001(_) | RekorSpec::RekordV001(_) => {
            let hash = body.artifact_hash().ok_or_else(|| mismatch("no artifact hash logged"))?;
            check_hash("artifact hash", hash, b.message_sha256.as_ref()).map_err(|f| f.context(&kind))?;
            signature_logged(&body.signatures())
        }
        _ if !is_dsse => Err(mismatch("an envelope entry cannot describe a message signature")),
        RekorSpec::IntotoV001(s) => {
            let Some(layer) = &b.layer_sha256 else {
                return Err(Failure::new(
                    FailureReason::Unsupported,
                    format!("{kind} log entries commit to the original envelope bytes, which a bundle does not keep"),
                ));
            };
            check_hash("envelope hash", &s.hash, Some(layer)).map_err(|f| f.context(&kind))?;
            if let Some(ph) = &s.payload_hash {
                check_hash("payload hash", ph, b.payload_sha256.as_ref()).map_err(|f| f.context(&kind))?;
            }
            if b.key_matches(&s.public_key_pem) {
                Ok(())
            } else {
                Err(mismatch("the logged key or certificate is not the one that signed"))
            }
        }
        RekorSpec::IntotoV002(_) | RekorSpec::DsseV001(_) => {
            if let (Some(layer), Some(h)) = (&b.layer_sha256, body.artifact_hash()) {
                check_hash("envelope hash", h, Some(layer)).map_err(|f| f.context(&kind))?;
            }
            let ph = body.payload_hash().ok_or_else(|| mismatch("no payload hash logged"))?;
            check_hash("payload hash", ph, b.payload_sha256.as_ref()).map_err(|f| f.context(&kind))?;
            signature_logged(&body.signatures())
        }
        RekorSpec::Other => Err(Failure::new(FailureReason::Unsupported, format!("unsupported log entry kind {kind}"))),
    }
}
