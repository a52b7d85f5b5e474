//! Legacy Rekor bundles (`dev.sigstore.cosign/bundle`) from a TEST-ONLY log key: canonical entry
//! bodies of the kinds cosign logged, and the signed entry timestamp over them (FORMATS.md §1.4).
//!
//! No inclusion proofs exist: the legacy annotation only ever carried the SET.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::gojson::{canonical_json, to_go_json};
use super::keys::{TestKey, TestSigner};
use super::pki::log_id;
use crate::error::Result;
use crate::model::digest::Digest;

fn hash(bytes: &[u8]) -> Value {
    json!({"algorithm": "sha256", "value": Digest::sha256(bytes).hex()})
}

/// `dsse/0.0.1` body (cosign `attest` ≥ v2.2.0): hashes of the envelope and payload, and the
/// signature with its verifier (PEM certificate or key).
pub fn dsse_body(envelope: &[u8], payload: &[u8], signature: &[u8], verifier_pem: &str) -> Value {
    json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": hash(envelope),
            "payloadHash": hash(payload),
            "signatures": [{"signature": STANDARD.encode(signature), "verifier": STANDARD.encode(verifier_pem)}],
        },
    })
}

/// `intoto/0.0.1` body (cosign `attest` < v2.2.0): `content.hash` is the envelope's hash; the body
/// carries no signature.
pub fn intoto_body(envelope: &[u8], payload: &[u8], public_key_pem: &str) -> Value {
    json!({
        "apiVersion": "0.0.1",
        "kind": "intoto",
        "spec": {
            "content": {"hash": hash(envelope), "payloadHash": hash(payload)},
            "publicKey": STANDARD.encode(public_key_pem),
        },
    })
}

/// `hashedrekord/0.0.1` body (cosign `sign`): the layer's hash, the signature and the key/cert.
pub fn hashedrekord_body(layer: &[u8], signature: &[u8], public_key_pem: &str) -> Value {
    json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": hash(layer)},
            "signature": {"content": STANDARD.encode(signature), "publicKey": {"content": STANDARD.encode(public_key_pem)}},
        },
    })
}

/// Where and when an entry was (pretend-)logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryPosition {
    /// Global log index.
    pub log_index: i64,
    /// Integration time, Unix seconds.
    pub integrated_time: i64,
}

/// A test transparency log.
#[derive(Clone, Copy, Debug)]
pub struct TestLog {
    key: TestKey,
}

impl TestLog {
    /// The deterministic log (Ed25519 SETs).
    pub fn ed25519() -> TestLog {
        TestLog { key: TestKey::RekorEd25519 }
    }

    /// A log keyed like public-good Rekor v1 (ECDSA P-256; SETs are not byte-stable).
    pub fn ecdsa_p256() -> TestLog {
        TestLog { key: TestKey::RekorEcdsaP256 }
    }

    /// The log's key.
    pub fn key(&self) -> TestKey {
        self.key
    }

    /// The signer of its SETs.
    pub fn signer(&self) -> TestSigner {
        self.key.signer()
    }

    /// `logID`: hex SHA-256 of the log's DER public key.
    pub fn log_id_hex(&self) -> String {
        hex::encode(log_id(self.key))
    }

    /// The bytes a SET signs: RFC 8785 JSON of `{body, integratedTime, logID, logIndex}` with the
    /// body as its base64 string.
    pub fn set_message(body_b64: &str, position: EntryPosition, log_id_hex: &str) -> Result<Vec<u8>> {
        canonical_json(&json!({
            "body": body_b64,
            "integratedTime": position.integrated_time,
            "logID": log_id_hex,
            "logIndex": position.log_index,
        }))
    }

    /// The `dev.sigstore.cosign/bundle` annotation value for `body` (Go field order
    /// `{"SignedEntryTimestamp","Payload":{"body","integratedTime","logIndex","logID"}}`).
    pub fn legacy_bundle(&self, body: &Value, position: EntryPosition) -> Result<String> {
        let body_b64 = STANDARD.encode(canonical_json(body)?);
        let log_id = self.log_id_hex();
        let set = self.signer().sign(&Self::set_message(&body_b64, position, &log_id)?)?;
        let bundle = json!({
            "SignedEntryTimestamp": STANDARD.encode(set),
            "Payload": {"body": body_b64, "integratedTime": position.integrated_time, "logIndex": position.log_index, "logID": log_id},
        });
        // Go output is ASCII here (base64, hex, digits), so the conversion cannot fail.
        Ok(String::from_utf8(to_go_json(&bundle)).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::keys::verify;

    #[test]
    fn bundle_set_verifies_under_the_log_key() {
        for log in [TestLog::ed25519(), TestLog::ecdsa_p256()] {
            let body = hashedrekord_body(b"layer", b"sig", "-----BEGIN PUBLIC KEY-----\n");
            let pos = EntryPosition { log_index: 42, integrated_time: 1_704_067_260 };
            let bundle = log.legacy_bundle(&body, pos).unwrap();
            assert!(bundle.starts_with(r#"{"SignedEntryTimestamp":""#), "{bundle}");
            let v: Value = serde_json::from_str(&bundle).unwrap();
            let payload = &v["Payload"];
            let keys: Vec<&String> = payload.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["body", "integratedTime", "logIndex", "logID"]);
            let msg = TestLog::set_message(payload["body"].as_str().unwrap(), pos, payload["logID"].as_str().unwrap())
                .unwrap();
            let set = STANDARD.decode(v["SignedEntryTimestamp"].as_str().unwrap()).unwrap();
            assert!(verify(log.signer().scheme(), &log.key().public_spki_der(), &msg, &set));
            let body_bytes = STANDARD.decode(payload["body"].as_str().unwrap()).unwrap();
            assert!(body_bytes.starts_with(br#"{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{"data":{"hash":{"algorithm":"sha256","value":""#));
        }
    }

    #[test]
    fn bodies_are_canonical() {
        let b = canonical_json(&dsse_body(b"e", b"p", b"s", "v")).unwrap();
        let s = String::from_utf8(b).unwrap();
        assert!(s.starts_with(r#"{"apiVersion":"0.0.1","kind":"dsse","spec":{"envelopeHash":"#), "{s}");
        let b = String::from_utf8(canonical_json(&intoto_body(b"e", b"p", "k")).unwrap()).unwrap();
        assert!(b.contains(r#""spec":{"content":{"hash":{"algorithm":"sha256","value":""#), "{b}");
        assert!(b.ends_with(r#""publicKey":"aw=="}}"#), "{b}");
    }
}
