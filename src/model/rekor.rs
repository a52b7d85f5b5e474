//! Rekor (v1) log entries as cosign's legacy layout carries them: the `dev.sigstore.cosign/bundle`
//! annotation (signed entry timestamp + payload) and the canonicalized entry body inside it.
//!
//! The body is decoded and parsed at parse time into the fields verification compares against the layer
//! (hash, signature, key). Unknown kinds parse to [`RekorSpec::Other`] so a new entry type makes the entry
//! unverifiable, not the whole layer unreadable.

use std::fmt::Write as _;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::dsse::decode_base64_any;
use super::pbjson::{self, named_field};
use crate::error::{Error, Result};

/// The legacy Rekor bundle (cosign `RekorBundle`): the SET and what it signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RekorBundle {
    /// The signed entry timestamp (ASN.1 ECDSA signature by the log).
    pub signed_entry_timestamp: Vec<u8>,
    /// The signed payload, as given.
    pub payload: RekorPayload,
    /// `payload.body` decoded: the canonicalized entry (a bundle's `canonicalizedBody`).
    pub body_bytes: Vec<u8>,
    /// The parsed body.
    pub body: RekorBody,
    /// `payload.log_id` decoded from hex.
    pub log_id: Vec<u8>,
}

/// The SET-signed payload, field values exactly as the annotation had them.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RekorPayload {
    /// Base64 of the canonicalized entry body.
    pub body: String,
    /// Unix seconds when the log integrated the entry.
    #[serde(rename = "integratedTime", deserialize_with = "de_integrated_time")]
    pub integrated_time: i64,
    /// Global log index.
    #[serde(rename = "logIndex", deserialize_with = "de_log_index")]
    pub log_index: i64,
    /// Hex SHA-256 of the log's DER public key.
    #[serde(rename = "logID")]
    pub log_id: String,
}

named_field!(de_integrated_time, pbjson::int64, i64, "integratedTime");
named_field!(de_log_index, pbjson::int64, i64, "logIndex");
named_field!(de_set, pbjson::bytes, Vec<u8>, "SignedEntryTimestamp");

#[derive(Deserialize)]
struct RawRekorBundle {
    #[serde(rename = "SignedEntryTimestamp", deserialize_with = "de_set")]
    signed_entry_timestamp: Vec<u8>,
    #[serde(rename = "Payload")]
    payload: RekorPayload,
}

impl RekorBundle {
    /// Parse the annotation's JSON text.
    pub fn parse(json: &[u8]) -> Result<RekorBundle> {
        if json.trim_ascii_start().first() != Some(&b'{') {
            return Err(Error::invalid_format("legacy Rekor bundle: not a JSON object"));
        }
        let raw: RawRekorBundle =
            serde_json::from_slice(json).map_err(|e| Error::invalid_format(format!("legacy Rekor bundle: {e}")))?;
        RekorBundle::from_raw(raw)
    }

    /// Build from already-parsed JSON (the `Bundle` object in `cosign verify` output).
    pub fn from_value(value: &Value) -> Result<RekorBundle> {
        if !value.is_object() {
            return Err(Error::invalid_format("legacy Rekor bundle: not a JSON object"));
        }
        let raw = RawRekorBundle::deserialize(value)
            .map_err(|e| Error::invalid_format(format!("legacy Rekor bundle: {e}")))?;
        RekorBundle::from_raw(raw)
    }

    fn from_raw(raw: RawRekorBundle) -> Result<RekorBundle> {
        let body_bytes =
            decode_base64_any(&raw.payload.body).map_err(|e| e.context("legacy Rekor bundle field `Payload.body`"))?;
        let body = RekorBody::parse(&body_bytes).map_err(|e| e.context("legacy Rekor bundle `Payload.body`"))?;
        let log_id = hex::decode(&raw.payload.log_id)
            .map_err(|e| Error::invalid_format(format!("legacy Rekor bundle field `Payload.logID`: not hex: {e}")))?;
        Ok(RekorBundle {
            signed_entry_timestamp: raw.signed_entry_timestamp,
            payload: raw.payload,
            body_bytes,
            body,
            log_id,
        })
    }

    /// The bytes the SET signs: RFC 8785 canonical JSON of
    /// `{"body","integratedTime","logID","logIndex"}`, `body` being the base64 text exactly as given.
    pub fn set_payload(&self) -> Vec<u8> {
        self.payload.canonical_json()
    }
}

impl RekorPayload {
    /// RFC 8785 (JCS) serialisation. The four keys in code-unit order are body, integratedTime, logID,
    /// logIndex. Integers are written exactly; JCS would route values above 2^53 through a double, which no
    /// real log index or time reaches.
    pub fn canonical_json(&self) -> Vec<u8> {
        let mut out = String::with_capacity(self.body.len() + 128);
        out.push_str("{\"body\":");
        jcs_string(&mut out, &self.body);
        let _ = write!(out, ",\"integratedTime\":{},\"logID\":", self.integrated_time);
        jcs_string(&mut out, &self.log_id);
        let _ = write!(out, ",\"logIndex\":{}}}", self.log_index);
        out.into_bytes()
    }
}

// JCS string escaping: `"` and `\` escaped, control characters as the short escapes where JSON has them
// and `\u00xx` (lowercase hex) otherwise; everything else verbatim.
fn jcs_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A parsed canonicalized Rekor entry body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RekorBody {
    /// `kind` (`hashedrekord`, `intoto`, `dsse`, `rekord`, …).
    pub kind: String,
    /// `apiVersion` (`0.0.1`, …).
    pub api_version: String,
    /// The kind-specific fields att2ref uses.
    pub spec: RekorSpec,
}

/// Kind-specific fields used for binding a log entry to a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RekorSpec {
    /// `hashedrekord` 0.0.1 (`.sig` signatures).
    HashedRekordV001(HashedRekordV001),
    /// `intoto` 0.0.1 (`cosign attest` before v2.2.0): hashes and key only, no signature.
    IntotoV001(IntotoV001),
    /// `intoto` 0.0.2.
    IntotoV002(IntotoV002),
    /// `dsse` 0.0.1 (`cosign attest` since v2.2.0).
    DsseV001(DsseV001),
    /// `rekord` 0.0.1 (very old `.sig` entries; read on a best-effort basis).
    RekordV001(RekordV001),
    /// Any other kind or version: only `kind`/`apiVersion` are known.
    Other,
}

/// A hash as Rekor writes it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RekorHash {
    /// Algorithm name (`sha256`).
    pub algorithm: String,
    /// Hex value.
    pub value: String,
}

impl RekorHash {
    /// True when this is a SHA-256 hash equal (case-insensitively) to the given hex.
    pub fn is_sha256(&self, hex_value: &str) -> bool {
        self.algorithm == "sha256" && self.value.eq_ignore_ascii_case(hex_value)
    }
}

/// `hashedrekord` 0.0.1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashedRekordV001 {
    /// Hash of the signed artifact (`spec.data.hash`).
    pub hash: RekorHash,
    /// The signature (`spec.signature.content`), decoded.
    pub signature: Vec<u8>,
    /// The key or certificate PEM (`spec.signature.publicKey.content`), decoded from base64.
    pub public_key_pem: Vec<u8>,
}

/// `intoto` 0.0.1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntotoV001 {
    /// SHA-256 of the whole envelope (`spec.content.hash`) = the legacy layer digest.
    pub hash: RekorHash,
    /// SHA-256 of the payload (`spec.content.payloadHash`), when present.
    pub payload_hash: Option<RekorHash>,
    /// The key or certificate PEM (`spec.publicKey`), decoded from base64.
    pub public_key_pem: Vec<u8>,
}

/// `intoto` 0.0.2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntotoV002 {
    /// Hash of the envelope (`spec.content.hash`).
    pub hash: RekorHash,
    /// Hash of the payload (`spec.content.payloadHash`).
    pub payload_hash: RekorHash,
    /// The envelope's signatures.
    pub signatures: Vec<EntrySignature>,
}

/// `dsse` 0.0.1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DsseV001 {
    /// SHA-256 of the envelope as submitted (`spec.envelopeHash`).
    pub envelope_hash: RekorHash,
    /// SHA-256 of the payload (`spec.payloadHash`).
    pub payload_hash: RekorHash,
    /// The envelope's signatures.
    pub signatures: Vec<EntrySignature>,
}

/// `rekord` 0.0.1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RekordV001 {
    /// Hash of the signed artifact, when present.
    pub hash: Option<RekorHash>,
    /// Signature format (`x509`, `pgp`, …).
    pub format: String,
    /// The signature, decoded.
    pub signature: Vec<u8>,
    /// The key (PEM for `x509`), decoded from base64.
    pub public_key: Vec<u8>,
}

/// A signature and its verification key from an envelope-based entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntrySignature {
    /// The raw signature bytes.
    pub signature: Vec<u8>,
    /// The key or certificate PEM, decoded from base64.
    pub public_key_pem: Vec<u8>,
}

// Wire shapes of the bodies (rekor `pkg/types/*/v*/…_schema.json`).
mod wire {
    use super::*;

    named_field!(de_content, pbjson::bytes, Vec<u8>, "content");
    named_field!(de_public_key, pbjson::bytes, Vec<u8>, "publicKey");
    named_field!(de_verifier, pbjson::bytes, Vec<u8>, "verifier");
    named_field!(de_dsse_signature, pbjson::bytes, Vec<u8>, "signature");

    #[derive(Deserialize)]
    pub struct Head {
        pub kind: String,
        #[serde(rename = "apiVersion")]
        pub api_version: String,
        #[serde(default)]
        pub spec: Value,
    }

    #[derive(Deserialize)]
    pub struct Data {
        #[serde(default)]
        pub hash: Option<RekorHash>,
    }

    #[derive(Deserialize)]
    pub struct KeyContent {
        #[serde(deserialize_with = "de_content")]
        pub content: Vec<u8>,
    }

    #[derive(Deserialize)]
    pub struct HashedRekord {
        pub data: Data,
        pub signature: HashedRekordSignature,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct HashedRekordSignature {
        #[serde(deserialize_with = "de_content")]
        pub content: Vec<u8>,
        pub public_key: KeyContent,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Rekord {
        pub data: Data,
        pub signature: RekordSignature,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct RekordSignature {
        #[serde(default)]
        pub format: String,
        #[serde(deserialize_with = "de_content")]
        pub content: Vec<u8>,
        pub public_key: KeyContent,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct IntotoSpecV001 {
        pub content: IntotoContent,
        #[serde(deserialize_with = "de_public_key")]
        pub public_key: Vec<u8>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct IntotoContent {
        pub hash: RekorHash,
        #[serde(default)]
        pub payload_hash: Option<RekorHash>,
        #[serde(default)]
        pub envelope: Option<IntotoEnvelope>,
    }

    #[derive(Deserialize)]
    pub struct IntotoEnvelope {
        #[serde(default)]
        pub signatures: Vec<IntotoSignature>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct IntotoSignature {
        // Rekor stores this base64 text base64-encoded once more.
        #[serde(deserialize_with = "de_double_base64_sig")]
        pub sig: Vec<u8>,
        #[serde(deserialize_with = "de_public_key")]
        pub public_key: Vec<u8>,
    }

    #[derive(Deserialize)]
    pub struct IntotoSpecV002 {
        pub content: IntotoContent,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Dsse {
        pub envelope_hash: RekorHash,
        pub payload_hash: RekorHash,
        #[serde(default)]
        pub signatures: Vec<DsseSignature>,
    }

    #[derive(Deserialize)]
    pub struct DsseSignature {
        #[serde(deserialize_with = "de_dsse_signature")]
        pub signature: Vec<u8>,
        #[serde(deserialize_with = "de_verifier")]
        pub verifier: Vec<u8>,
    }

    fn de_double_base64_sig<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<u8>, D::Error> {
        let once = pbjson::bytes(d, "sig")?;
        let text = std::str::from_utf8(&once)
            .map_err(|_| serde::de::Error::custom("field `sig`: inner value is not base64 text"))?;
        decode_base64_any(text).map_err(|e| serde::de::Error::custom(format!("field `sig` (inner): {}", e.message())))
    }
}

impl RekorBody {
    /// Parse a canonicalized body (the decoded `Payload.body` or a bundle's `canonicalizedBody`).
    pub fn parse(bytes: &[u8]) -> Result<RekorBody> {
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(Error::invalid_format("Rekor entry body: not a JSON object"));
        }
        let head: wire::Head =
            serde_json::from_slice(bytes).map_err(|e| Error::invalid_format(format!("Rekor entry body: {e}")))?;
        let kind_version = format!("{}/{}", short(&head.kind), short(&head.api_version));
        let bad = |e: serde_json::Error| Error::invalid_format(format!("Rekor {kind_version} entry `spec`: {e}"));
        let spec = match (head.kind.as_str(), head.api_version.as_str()) {
            ("hashedrekord", "0.0.1") => {
                let w = wire::HashedRekord::deserialize(&head.spec).map_err(bad)?;
                let hash = w.data.hash.ok_or_else(|| {
                    Error::invalid_format(format!("Rekor {kind_version} entry `spec`: missing `data.hash`"))
                })?;
                RekorSpec::HashedRekordV001(HashedRekordV001 {
                    hash,
                    signature: w.signature.content,
                    public_key_pem: w.signature.public_key.content,
                })
            }
            ("intoto", "0.0.1") => {
                let w = wire::IntotoSpecV001::deserialize(&head.spec).map_err(bad)?;
                RekorSpec::IntotoV001(IntotoV001 {
                    hash: w.content.hash,
                    payload_hash: w.content.payload_hash,
                    public_key_pem: w.public_key,
                })
            }
            ("intoto", "0.0.2") => {
                let w = wire::IntotoSpecV002::deserialize(&head.spec).map_err(bad)?;
                let payload_hash = w.content.payload_hash.ok_or_else(|| {
                    Error::invalid_format(format!("Rekor {kind_version} entry `spec`: missing `content.payloadHash`"))
                })?;
                let signatures = w.content.envelope.map(|e| e.signatures).unwrap_or_default();
                RekorSpec::IntotoV002(IntotoV002 {
                    hash: w.content.hash,
                    payload_hash,
                    signatures: signatures
                        .into_iter()
                        .map(|s| EntrySignature { signature: s.sig, public_key_pem: s.public_key })
                        .collect(),
                })
            }
            ("dsse", "0.0.1") => {
                let w = wire::Dsse::deserialize(&head.spec).map_err(bad)?;
                RekorSpec::DsseV001(DsseV001 {
                    envelope_hash: w.envelope_hash,
                    payload_hash: w.payload_hash,
                    signatures: w
                        .signatures
                        .into_iter()
                        .map(|s| EntrySignature { signature: s.signature, public_key_pem: s.verifier })
                        .collect(),
                })
            }
            ("rekord", "0.0.1") => {
                let w = wire::Rekord::deserialize(&head.spec).map_err(bad)?;
                RekorSpec::RekordV001(RekordV001 {
                    hash: w.data.hash,
                    format: w.signature.format,
                    signature: w.signature.content,
                    public_key: w.signature.public_key.content,
                })
            }
            _ => RekorSpec::Other,
        };
        Ok(RekorBody { kind: head.kind, api_version: head.api_version, spec })
    }

    /// The hash of what was logged: the signed artifact (`hashedrekord`, `rekord`) or the envelope bytes
    /// (`intoto`, `dsse`). Legacy verification compares it with the SHA-256 of the layer.
    pub fn artifact_hash(&self) -> Option<&RekorHash> {
        match &self.spec {
            RekorSpec::HashedRekordV001(s) => Some(&s.hash),
            RekorSpec::IntotoV001(s) => Some(&s.hash),
            RekorSpec::IntotoV002(s) => Some(&s.hash),
            RekorSpec::DsseV001(s) => Some(&s.envelope_hash),
            RekorSpec::RekordV001(s) => s.hash.as_ref(),
            RekorSpec::Other => None,
        }
    }

    /// The hash of the DSSE payload, for envelope-based kinds.
    pub fn payload_hash(&self) -> Option<&RekorHash> {
        match &self.spec {
            RekorSpec::IntotoV001(s) => s.payload_hash.as_ref(),
            RekorSpec::IntotoV002(s) => Some(&s.payload_hash),
            RekorSpec::DsseV001(s) => Some(&s.payload_hash),
            _ => None,
        }
    }

    /// The logged signatures with their keys (`intoto` 0.0.1 logs no signature: empty).
    pub fn signatures(&self) -> Vec<EntrySignature> {
        match &self.spec {
            RekorSpec::HashedRekordV001(s) => {
                vec![EntrySignature { signature: s.signature.clone(), public_key_pem: s.public_key_pem.clone() }]
            }
            RekorSpec::RekordV001(s) => {
                vec![EntrySignature { signature: s.signature.clone(), public_key_pem: s.public_key.clone() }]
            }
            RekorSpec::IntotoV002(s) => s.signatures.clone(),
            RekorSpec::DsseV001(s) => s.signatures.clone(),
            RekorSpec::IntotoV001(_) | RekorSpec::Other => Vec::new(),
        }
    }

    /// The logged key or certificate PEM (the first one for envelope kinds).
    pub fn public_key_pem(&self) -> Option<&[u8]> {
        match &self.spec {
            RekorSpec::HashedRekordV001(s) => Some(&s.public_key_pem),
            RekorSpec::IntotoV001(s) => Some(&s.public_key_pem),
            RekorSpec::IntotoV002(s) => s.signatures.first().map(|s| s.public_key_pem.as_slice()),
            RekorSpec::DsseV001(s) => s.signatures.first().map(|s| s.public_key_pem.as_slice()),
            RekorSpec::RekordV001(s) => Some(&s.public_key),
            RekorSpec::Other => None,
        }
    }
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::bundle::Bundle;
    use crate::model::digest::Digest;
    use crate::model::dsse::encode_base64;
    use crate::model::testdata;

    const REKOR_PGI: &str = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d";

    fn keyless_bundle(n: u8) -> RekorBundle {
        let v: Value = serde_json::from_slice(&testdata::read(&testdata::cssc_keyless_verification(n))).unwrap();
        RekorBundle::from_value(&v[0]["optional"]["Bundle"]).unwrap()
    }

    #[test]
    fn article_keyless_bundles_parse() {
        for n in 1..=3 {
            let b = keyless_bundle(n);
            assert_eq!((b.body.kind.as_str(), b.body.api_version.as_str()), ("hashedrekord", "0.0.1"));
            assert_eq!(b.payload.log_id, REKOR_PGI);
            assert_eq!(hex::encode(&b.log_id), REKOR_PGI);
            assert_eq!(b.signed_entry_timestamp[0], 0x30, "DER ECDSA signature");
            let RekorSpec::HashedRekordV001(h) = &b.body.spec else { panic!("hashedrekord expected") };
            assert!(h.public_key_pem.starts_with(b"-----BEGIN CERTIFICATE-----"));
            assert_eq!(h.signature[0], 0x30);
            assert_eq!(b.body.artifact_hash(), Some(&h.hash));
            assert_eq!(b.body.signatures().len(), 1);
            assert!(b.body.payload_hash().is_none());
        }
        let b = keyless_bundle(1);
        assert_eq!((b.payload.integrated_time, b.payload.log_index), (1_665_804_210, 5_133_131));
        // The simple-signing blob in the corpus is the one this entry logged.
        let blob = testdata::read(testdata::CSSC_SIG_PAYLOAD);
        assert!(b.body.artifact_hash().unwrap().is_sha256(Digest::sha256(&blob).hex()));
    }

    #[test]
    fn set_payload_is_canonical_json() {
        let b = keyless_bundle(1);
        let set = String::from_utf8(b.set_payload()).unwrap();
        let expected = format!(
            r#"{{"body":"{}","integratedTime":1665804210,"logID":"{REKOR_PGI}","logIndex":5133131}}"#,
            b.payload.body
        );
        assert_eq!(set, expected);
        // A sorted-key compact serialisation agrees (keys are plain ASCII, values simple).
        let sorted: std::collections::BTreeMap<&str, Value> = [
            ("body", Value::from(b.payload.body.clone())),
            ("integratedTime", Value::from(b.payload.integrated_time)),
            ("logID", Value::from(b.payload.log_id.clone())),
            ("logIndex", Value::from(b.payload.log_index)),
        ]
        .into();
        assert_eq!(set, serde_json::to_string(&sorted).unwrap());
    }

    #[test]
    fn jcs_escapes_hostile_strings() {
        let mut out = String::new();
        jcs_string(&mut out, "a\"b\\c\u{1}\n\u{1f}é€");
        assert_eq!(out, r#""a\"b\\c\u0001\n\u001fé€""#);
    }

    #[test]
    fn bundle_dsse_entry_binds_to_its_envelope() {
        let bundle = Bundle::parse(&testdata::read(testdata::COSIGN_BUNDLE)).unwrap();
        let entry = &bundle.verification_material.tlog_entries[0];
        let body = RekorBody::parse(&entry.canonicalized_body).unwrap();
        let RekorSpec::DsseV001(d) = &body.spec else { panic!("dsse expected") };
        let env = bundle.dsse_envelope().unwrap();
        assert_eq!(d.signatures[0].signature, env.signatures[0].sig);
        assert!(d.payload_hash.is_sha256(Digest::sha256(&env.payload).hex()));
        assert!(d.signatures[0].public_key_pem.starts_with(b"-----BEGIN CERTIFICATE-----"));
        assert_eq!(body.public_key_pem(), Some(d.signatures[0].public_key_pem.as_slice()));
    }

    fn b64(s: &str) -> String {
        encode_base64(s.as_bytes())
    }

    const H: &str = r#"{"algorithm":"sha256","value":"AB"}"#;

    #[test]
    fn parses_every_supported_kind() {
        let key = b64("PEM");
        let body = format!(
            r#"{{"apiVersion":"0.0.1","kind":"intoto","spec":{{"content":{{"hash":{H},"payloadHash":{H}}},"publicKey":"{key}"}}}}"#
        );
        let b = RekorBody::parse(body.as_bytes()).unwrap();
        assert!(matches!(&b.spec, RekorSpec::IntotoV001(s) if s.public_key_pem == b"PEM"));
        assert!(b.signatures().is_empty(), "intoto 0.0.1 logs no signature");
        assert!(b.artifact_hash().unwrap().is_sha256("ab"));

        // intoto 0.0.2 keeps the DSSE sig base64 text, base64-encoded again.
        let sig = b64(&encode_base64(&[0x30, 1, 2]));
        let body = format!(
            r#"{{"apiVersion":"0.0.2","kind":"intoto","spec":{{"content":{{"envelope":{{"payloadType":"t","signatures":[{{"sig":"{sig}","publicKey":"{key}"}}]}},"hash":{H},"payloadHash":{H}}}}}}}"#
        );
        let b = RekorBody::parse(body.as_bytes()).unwrap();
        assert_eq!(b.signatures()[0].signature, [0x30, 1, 2]);
        assert_eq!(b.public_key_pem(), Some(&b"PEM"[..]));

        let body = format!(
            r#"{{"apiVersion":"0.0.1","kind":"rekord","spec":{{"data":{{"hash":{H}}},"signature":{{"format":"x509","content":"AQ==","publicKey":{{"content":"{key}"}}}}}}}}"#
        );
        let b = RekorBody::parse(body.as_bytes()).unwrap();
        assert!(matches!(&b.spec, RekorSpec::RekordV001(s) if s.format == "x509" && s.signature == [1]));

        let b = RekorBody::parse(br#"{"apiVersion":"0.0.1","kind":"cose","spec":{"x":1}}"#).unwrap();
        assert_eq!((b.kind.as_str(), b.spec.clone()), ("cose", RekorSpec::Other));
        assert!(b.artifact_hash().is_none() && b.public_key_pem().is_none());
    }

    #[test]
    fn rejects_malformed_entries() {
        let good_body = b64(r#"{"apiVersion":"0.0.1","kind":"cose","spec":{}}"#);
        let bundle = |set: &str, body: &str, log_id: &str| {
            format!(
                r#"{{"SignedEntryTimestamp":"{set}","Payload":{{"body":"{body}","integratedTime":1,"logIndex":2,"logID":"{log_id}"}}}}"#
            )
        };
        let cases = [
            (bundle("AQ", &good_body, "zz"), "`Payload.logID`: not hex"),
            (bundle("!", &good_body, "00"), "field `SignedEntryTimestamp`: invalid base64"),
            (bundle("AQ", "%%", "00"), "field `Payload.body`: invalid base64"),
            (bundle("AQ", &b64("not json"), "00"), "`Payload.body`: Rekor entry body: not a JSON object"),
            (bundle("AQ", &b64(r#"{"kind":"dsse"}"#), "00"), "missing field `apiVersion`"),
            (
                bundle("AQ", &b64(r#"{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{"data":{},"signature":{"content":"AQ","publicKey":{"content":"AQ"}}}}"#), "00"),
                "missing `data.hash`",
            ),
            (
                bundle("AQ", &b64(r#"{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{"data":{},"signature":{"content":"@","publicKey":{"content":"AQ"}}}}"#), "00"),
                "hashedrekord/0.0.1 entry `spec`: field `content`: invalid base64",
            ),
            (
                bundle("AQ", &b64(r#"{"apiVersion":"0.0.1","kind":"dsse","spec":{"payloadHash":{"algorithm":"sha256","value":"AB"}}}"#), "00"),
                "missing field `envelopeHash`",
            ),
            (
                bundle("AQ", &b64(r#"{"apiVersion":"0.0.2","kind":"intoto","spec":{"content":{"hash":{"algorithm":"sha256","value":"AB"},"payloadHash":{"algorithm":"sha256","value":"AB"},"envelope":{"signatures":[{"sig":"AQ","publicKey":"AQ"}]}}}}"#), "00"),
                "field `sig`",
            ),
            (r#"{"SignedEntryTimestamp":"AQ","Payload":{"body":"e30","integratedTime":"x","logIndex":2,"logID":"00"}}"#.into(), "field `integratedTime`"),
            (r#"{"SignedEntryTimestamp":"AQ"}"#.into(), "missing field `Payload`"),
            (r#"{"SignedEntryTimestamp":"AQ","Payl"#.into(), "EOF"),
            ("[1]".into(), "not a JSON object"),
        ];
        for (json, want) in cases {
            let err = RekorBundle::parse(json.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(want), "{json}\n  => {err}");
        }
        let err = RekorBundle::from_value(&Value::Null).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidFormat, "{err}");
        assert_eq!(err.to_string(), "legacy Rekor bundle: not a JSON object");
        assert!(RekorBundle::parse(bundle("AQ", &good_body, "00").as_bytes()).is_ok());
    }
}
