//! DSSE envelopes and in-toto statements exactly as cosign wrote them into `.att` layers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::gojson::to_go_json;
use super::keys::TestSigner;
use crate::error::Result;
use crate::model::digest::Digest;
use crate::model::media_type as mt;

/// in-toto Statement v0.1 `_type`, which every `cosign attest` up to v3 writes.
pub const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";
/// in-toto Statement v1 `_type`.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";

pub use crate::model::dsse::pae;

/// The statement bytes `cosign attest` signs: Go field order `_type`, `predicateType`, `subject`,
/// `predicate`, one subject named after the repository, and Go's HTML-safe escaping.
pub fn statement(
    statement_type: &str,
    subject_name: &str,
    subject: &Digest,
    predicate_type: &str,
    predicate: &Value,
) -> Vec<u8> {
    let mut digest = serde_json::Map::new();
    digest.insert(subject.algorithm().as_str().to_owned(), Value::String(subject.hex().to_owned()));
    let stmt = json!({
        "_type": statement_type,
        "predicateType": predicate_type,
        "subject": [{"name": subject_name, "digest": digest}],
        "predicate": predicate,
    });
    to_go_json(&stmt)
}

/// A signed envelope: the exact layer bytes and what went into them.
#[derive(Clone, Debug)]
pub struct SignedEnvelope {
    /// The envelope JSON, byte for byte as stored in the layer.
    pub bytes: Vec<u8>,
    /// The signed payload (the statement).
    pub payload: Vec<u8>,
    /// The raw signature bytes.
    pub signature: Vec<u8>,
}

/// Sign `payload` as an in-toto DSSE envelope the way cosign does: Go field order
/// `{"payloadType","payload","signatures":[{"keyid":"","sig":…}]}`, standard base64.
pub fn sign_envelope(payload: Vec<u8>, signer: &TestSigner) -> Result<SignedEnvelope> {
    let signature = signer.sign(&pae(mt::IN_TOTO, &payload))?;
    let envelope = json!({
        "payloadType": mt::IN_TOTO,
        "payload": STANDARD.encode(&payload),
        "signatures": [{"keyid": "", "sig": STANDARD.encode(&signature)}],
    });
    Ok(SignedEnvelope { bytes: to_go_json(&envelope), payload, signature })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::keys::{self, TestKey};

    #[test]
    fn envelope_has_go_field_order_and_verifies() {
        let image = Digest::sha256(b"image");
        let payload =
            statement(STATEMENT_V01, "registry.test/a&b", &image, "https://example.test/p", &json!({"k": "<v>"}));
        let text = String::from_utf8(payload.clone()).unwrap();
        assert!(text.starts_with(r#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://example.test/p","subject":[{"name":"registry.test/a\u0026b","digest":{"sha256":""#), "{text}");
        let signer = TestKey::Ed25519.signer();
        let env = sign_envelope(payload.clone(), &signer).unwrap();
        let s = String::from_utf8(env.bytes.clone()).unwrap();
        assert!(s.starts_with(r#"{"payloadType":"application/vnd.in-toto+json","payload":""#), "{s}");
        assert!(s.contains(r#""signatures":[{"keyid":"","sig":""#), "{s}");
        assert!(keys::verify(
            signer.scheme(),
            &TestKey::Ed25519.public_spki_der(),
            &pae(mt::IN_TOTO, &payload),
            &env.signature
        ));
    }
}
