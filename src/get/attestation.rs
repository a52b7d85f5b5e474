//! One fetched attestation and the forms it can be written in (pure).

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::model::dsse::{Envelope, encode_base64};
use crate::model::intoto::{Statement, raw_member};
use crate::model::predicate::{WrappedData, short_name, unwrap_cosign_data};
use crate::verification::Verification;

/// Where an attestation was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum AnswerSource {
    /// A Sigstore-bundle referrer.
    Referrer {
        /// The referrer manifest.
        manifest: Digest,
        /// The bundle blob.
        bundle: Digest,
        /// Which tool probably wrote it (unsigned clues, for display).
        writer: Option<&'static str>,
    },
    /// A layer of the legacy `.att` manifest.
    Legacy {
        /// The `.att` manifest.
        manifest: Digest,
        /// Its tag.
        tag: String,
        /// Layer position.
        layer: usize,
        /// The layer blob (the DSSE envelope).
        blob: Digest,
    },
}

/// What to write out of an attestation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Emit {
    /// The predicate. For cosign's `{"Data": "<file>", …}` wrapper (the `custom` type, and SBOM types in
    /// cosign 1.x) and for a predicate that is a JSON string (cosign 2.x `--type spdx`), the original
    /// attested text, byte for byte; for a wrapper holding JSON in `Data`, that JSON; otherwise the
    /// predicate JSON. JSON is the exact bytes of the signed statement, never re-serialised.
    #[default]
    Predicate,
    /// The in-toto statement: the signed DSSE payload, byte for byte.
    Statement,
    /// The DSSE envelope: the legacy layer byte for byte; for a bundle, the envelope it carries in DSSE's
    /// own JSON form.
    Envelope,
    /// The Sigstore bundle, byte for byte as stored (referrers only: a legacy layer holds no bundle).
    Bundle,
}

impl Emit {
    /// Stable name (`predicate`, `statement`, `envelope`, `bundle`).
    pub fn as_str(self) -> &'static str {
        match self {
            Emit::Predicate => "predicate",
            Emit::Statement => "statement",
            Emit::Envelope => "envelope",
            Emit::Bundle => "bundle",
        }
    }
}

/// An attestation read, checked against the query on its signed statement, and verified.
#[derive(Clone, Debug)]
pub struct Attestation {
    /// Where it was found.
    pub source: AnswerSource,
    /// The signed predicate type.
    pub predicate_type: String,
    /// Creation time used for "newest": the referrer's `org.opencontainers.image.created` annotation, or for
    /// a legacy layer the Rekor integrated time, else the signed `Timestamp` of a custom predicate.
    pub created: Option<String>,
    /// An unsigned guess at what the predicate holds (`slsa-provenance-v0.2`), made from the signed content.
    pub hint: String,
    /// The verification. `None` only for [`get_unverified`](super::get_unverified).
    pub verification: Option<Verification>,
    /// The statement.
    pub statement: Statement,
    /// The DSSE envelope (its payload is the exact statement bytes that were signed).
    pub envelope: Envelope,
    /// The exact envelope bytes as stored (legacy layers).
    pub envelope_bytes: Option<Bytes>,
    /// The exact bundle bytes as stored (referrers).
    pub bundle_bytes: Option<Bytes>,
}

impl Attestation {
    /// Whether it was verified.
    pub fn is_verified(&self) -> bool {
        self.verification.is_some()
    }

    /// The bytes of the chosen form.
    pub fn emit(&self, what: Emit) -> Result<Vec<u8>> {
        match what {
            Emit::Statement => Ok(self.envelope.payload.clone()),
            Emit::Bundle => self.bundle_bytes.as_ref().map(|b| b.to_vec()).ok_or_else(|| {
                Error::invalid_input(
                    "a legacy .att layer holds a bare DSSE envelope, not a Sigstore bundle: use --emit envelope",
                )
            }),
            Emit::Envelope => Ok(match &self.envelope_bytes {
                Some(b) => b.to_vec(),
                None => envelope_json(&self.envelope),
            }),
            Emit::Predicate => predicate_bytes(&self.statement),
        }
    }

    /// Whether [`Attestation::emit`] of `what` gives JSON (for file extensions and the `--all` array).
    pub fn emits_json(&self, what: Emit) -> bool {
        match what {
            Emit::Predicate => match self.statement.predicate_value() {
                Some(p) => match unwrap_cosign_data(&p) {
                    Some(w) => matches!(w.data, WrappedData::Json(_)),
                    None => !p.is_string(),
                },
                None => false,
            },
            _ => true,
        }
    }

    /// A short, stable label of the predicate type for file names: the cosign short name, else the URI.
    pub fn type_label(&self) -> &str {
        short_name(&self.predicate_type).unwrap_or(&self.predicate_type)
    }
}

/// The predicate in its most original form: JSON exactly as signed (the statement keeps it raw), never
/// re-serialised (which would change whitespace, key order, number spelling and escapes).
fn predicate_bytes(statement: &Statement) -> Result<Vec<u8>> {
    let signed = statement
        .predicate
        .as_ref()
        .ok_or_else(|| Error::invalid_format("the signed statement has no predicate to emit"))?
        .get();
    // No tree for a predicate nested past the parser's depth: it is emitted as signed.
    let Some(predicate) = statement.predicate_value() else {
        return Ok(signed.as_bytes().to_vec());
    };
    if let Some(wrapped) = unwrap_cosign_data(&predicate) {
        return match wrapped.data {
            // The attested file: the string's text.
            WrappedData::Text(text) => Ok(text.as_bytes().to_vec()),
            // cosign 1.x put some documents into `Data` as JSON: that JSON as signed.
            WrappedData::Json(_) => raw_member(signed.as_bytes(), "Data")?
                .map(<[u8]>::to_vec)
                .ok_or_else(|| Error::invalid_format("the signed predicate has no `Data` where the statement has one")),
        };
    }
    if let Value::String(text) = predicate {
        return Ok(text.into_bytes());
    }
    Ok(signed.as_bytes().to_vec())
}

/// DSSE's own JSON form of an envelope (field order of the DSSE spec; standard base64).
fn envelope_json(envelope: &Envelope) -> Vec<u8> {
    let signatures: Vec<Value> =
        envelope.signatures.iter().map(|s| json!({"keyid": s.keyid, "sig": encode_base64(&s.sig)})).collect();
    let value = json!({
        "payloadType": envelope.payload_type,
        "payload": encode_base64(&envelope.payload),
        "signatures": signatures,
    });
    // A map of strings and arrays always serialises.
    serde_json::to_vec(&value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::content::ARTICLE_SLSA_TEXT;

    fn attestation(predicate: Value) -> Attestation {
        let statement_json = json!({
            "_type": "https://in-toto.io/Statement/v0.1",
            "subject": [{"name": "x", "digest": {"sha256": "00"}}],
            "predicateType": "cosign.sigstore.dev/attestation/v1",
            "predicate": predicate,
        });
        from_payload(serde_json::to_vec(&statement_json).unwrap())
    }

    fn from_payload(payload: Vec<u8>) -> Attestation {
        let envelope = Envelope {
            payload_type: "application/vnd.in-toto+json".into(),
            payload: payload.clone(),
            signatures: vec![crate::model::dsse::Signature { keyid: String::new(), sig: vec![1, 2, 3] }],
        };
        Attestation {
            source: AnswerSource::Legacy {
                manifest: Digest::sha256(b"m"),
                tag: "t".into(),
                layer: 0,
                blob: Digest::sha256(b"b"),
            },
            predicate_type: "cosign.sigstore.dev/attestation/v1".into(),
            created: None,
            hint: "slsa-provenance-v0.2".into(),
            verification: None,
            statement: Statement::parse(&payload).unwrap(),
            envelope,
            envelope_bytes: None,
            bundle_bytes: None,
        }
    }

    #[test]
    fn custom_predicate_emits_the_original_text() {
        let a = attestation(json!({"Data": ARTICLE_SLSA_TEXT, "Timestamp": "2023-03-14T16:21:07Z"}));
        assert_eq!(a.emit(Emit::Predicate).unwrap(), ARTICLE_SLSA_TEXT.as_bytes());
        assert_eq!(ARTICLE_SLSA_TEXT.len(), 785);
        assert!(!a.emits_json(Emit::Predicate));
        assert_eq!(a.type_label(), "custom");
    }

    #[test]
    fn json_predicates_are_the_signed_bytes_not_a_reserialisation() {
        let predicate = "{ \"z\" : 1.0,\n\t\"a\":[1e2, -0.0, 123456789012345678901234],\"s\":\"caf\\u00e9 \\/\" }";
        let payload = |predicate: &str| {
            format!(
                "{{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{{\"name\":\"x\",\"digest\":\
                 {{\"sha256\":\"00\"}}}}],\"predicateType\":\"https://example.test/p\",\"predicate\" :  {predicate}\n}}"
            )
            .into_bytes()
        };
        let reserialised = serde_json::to_string(&serde_json::from_str::<Value>(predicate).unwrap()).unwrap();
        assert_ne!(reserialised, predicate, "the case must be one serde_json changes");
        let a = from_payload(payload(predicate));
        assert_eq!(String::from_utf8(a.emit(Emit::Predicate).unwrap()).unwrap(), predicate);
        assert!(a.emits_json(Emit::Predicate));

        // cosign 1.x JSON in `Data`: that JSON as signed; text in `Data` or a string predicate: the text.
        let wrapped = "{\"Data\": {\"b\" : 1E+2, \"a\":\"\\u00e9\"} ,\"Timestamp\":\"2023-01-01T00:00:00Z\"}";
        let a = from_payload(payload(wrapped));
        assert_eq!(a.emit(Emit::Predicate).unwrap(), br#"{"b" : 1E+2, "a":"\u00e9"}"#);
        let a = from_payload(payload(r#"{"Data":"caf\u00e9\n","Timestamp":""}"#));
        assert_eq!(a.emit(Emit::Predicate).unwrap(), "café\n".as_bytes());
        let a = from_payload(payload(r#""caf\u00e9""#));
        assert_eq!(a.emit(Emit::Predicate).unwrap(), "café".as_bytes());

        // A member written twice: the last, which is the one the statement was parsed with.
        let twice = String::from_utf8(payload(r#"{"n": 1.50}"#)).unwrap().replacen('{', r#"{"predicate":{"n": 0},"#, 1);
        let a = from_payload(twice.into_bytes());
        assert_eq!(a.emit(Emit::Predicate).unwrap(), br#"{"n": 1.50}"#);
    }

    #[test]
    fn other_forms() {
        let a = attestation(json!({"b": 1, "a": [true]}));
        assert_eq!(a.emit(Emit::Predicate).unwrap(), br#"{"b":1,"a":[true]}"#);
        assert_eq!(a.emit(Emit::Statement).unwrap(), a.envelope.payload);
        let env = Envelope::parse(&a.emit(Emit::Envelope).unwrap()).unwrap();
        assert_eq!(env, a.envelope);
        assert!(a.emit(Emit::Bundle).unwrap_err().to_string().contains("--emit envelope"));
        let s = attestation(json!("SPDXVersion: SPDX-2.3\n"));
        assert_eq!(s.emit(Emit::Predicate).unwrap(), b"SPDXVersion: SPDX-2.3\n");
    }
}
