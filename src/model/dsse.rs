//! DSSE v1 envelopes (`application/vnd.dsse.envelope.v1+json`), their pre-authentication encoding, and the
//! forgiving base64 decoder every Sigstore format needs.
//!
//! An envelope is decoded once, at parse time: `payload` and every `sig` become bytes, so a bad field is
//! reported by name before anything tries to verify it. The raw envelope bytes stay with the caller, because
//! legacy log entries commit to exactly those bytes.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Serialize;
use serde::ser::SerializeStruct;
use serde_json::Value;

use crate::error::{Error, Result};

// Padding is either complete or absent: "partly padded" text comes from no encoder.
const PADDED: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::RequireCanonical);
const UNPADDED: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::RequireNone);
const STD_PADDED: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, PADDED);
const STD_UNPADDED: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, UNPADDED);
const URL_PADDED: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, PADDED);
const URL_UNPADDED: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, UNPADDED);

/// Decode base64 in either alphabet (standard `+/` or URL-safe `-_`), with or without `=` padding.
///
/// DSSE requires accepting both alphabets, and protobuf JSON parsers do the same for `bytes` fields. Line
/// breaks (`\r`, `\n`) are skipped, as Go's decoder does for PEM-style wrapped input. Mixing the two
/// alphabets in one string is rejected: no encoder produces that. The error does not know which field it
/// was; callers add that with [`Error::context`].
pub fn decode_base64_any(text: &str) -> Result<Vec<u8>> {
    // What every writer produces: the standard alphabet, no line breaks. A successful decode with it
    // proves there was no line break and no URL-safe character, so the checks below would choose the
    // same engine; anything else (or an error) takes the careful path, which words the error.
    let standard = if text.ends_with('=') { &STD_PADDED } else { &STD_UNPADDED };
    if let Ok(bytes) = standard.decode(text) {
        return Ok(bytes);
    }
    // Byte searches, not `str::contains` with a set of chars: that decodes UTF-8 char by char and was a
    // fifth of migration's CPU on megabyte payloads; `<[u8]>::contains` scans a word at a time.
    let has = |set: [u8; 2]| -> bool { set.iter().any(|b| text.as_bytes().contains(b)) };
    let cleaned: std::borrow::Cow<'_, [u8]> = if has([b'\r', b'\n']) {
        text.bytes().filter(|b| *b != b'\r' && *b != b'\n').collect::<Vec<u8>>().into()
    } else {
        text.as_bytes().into()
    };
    let has_std = has([b'+', b'/']);
    let has_url = has([b'-', b'_']);
    if has_std && has_url {
        return Err(Error::invalid_format("invalid base64: mixes the standard (+/) and URL-safe (-_) alphabets"));
    }
    let engine = match (has_url, cleaned.ends_with(b"=")) {
        (false, true) => &STD_PADDED,
        (false, false) => &STD_UNPADDED,
        (true, true) => &URL_PADDED,
        (true, false) => &URL_UNPADDED,
    };
    engine.decode(&*cleaned).map_err(|e| Error::invalid_format(format!("invalid base64: {e}")))
}

/// Standard base64 with padding: the form every format we write uses.
pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `payloadType` of in-toto statements.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The DSSE v1 pre-authentication encoding: the exact bytes a DSSE signature covers.
///
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal. Signatures are over the
/// raw payload bytes, never over their base64 text.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let header = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len());
    let mut out = Vec::with_capacity(header.len() + payload.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// A parsed DSSE envelope with its payload and signatures decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The payload type (for attestations, [`IN_TOTO_PAYLOAD_TYPE`]).
    pub payload_type: String,
    /// The decoded payload bytes: what was signed (through [`pae`]).
    pub payload: Vec<u8>,
    /// The signatures, in envelope order.
    pub signatures: Vec<Signature>,
}

/// One DSSE signature.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    /// The unauthenticated key hint; empty when absent (cosign writes `""`).
    pub keyid: String,
    /// The decoded signature bytes.
    pub sig: Vec<u8>,
}

impl Envelope {
    /// Parse an envelope from its JSON bytes. Unknown fields are ignored, as DSSE requires.
    pub fn parse(bytes: &[u8]) -> Result<Envelope> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid_format(format!("DSSE envelope: invalid JSON: {e}")))?;
        Envelope::from_value(&value)
    }

    /// Build an envelope from already-parsed JSON (a bundle's `dsseEnvelope`, for instance).
    pub fn from_value(value: &Value) -> Result<Envelope> {
        let obj = value.as_object().ok_or_else(|| Error::invalid_format("DSSE envelope: not a JSON object"))?;
        let payload_type = match obj.get("payloadType") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(Error::invalid_format("DSSE envelope field `payloadType`: not a string")),
            None => return Err(Error::invalid_format("DSSE envelope: missing field `payloadType`")),
        };
        let payload = match obj.get("payload") {
            Some(Value::String(s)) => decode_base64_any(s).map_err(|e| e.context("DSSE envelope field `payload`"))?,
            Some(_) => return Err(Error::invalid_format("DSSE envelope field `payload`: not a string")),
            None => return Err(Error::invalid_format("DSSE envelope: missing field `payload`")),
        };
        let raw_sigs = match obj.get("signatures") {
            Some(Value::Array(a)) => a,
            Some(_) => return Err(Error::invalid_format("DSSE envelope field `signatures`: not an array")),
            None => return Err(Error::invalid_format("DSSE envelope: missing field `signatures`")),
        };
        let signatures = raw_sigs
            .iter()
            .enumerate()
            .map(|(i, s)| Signature::from_value(s).map_err(|e| e.context(format!("DSSE envelope `signatures[{i}]`"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Envelope { payload_type, payload, signatures })
    }

    /// The bytes the signatures cover: [`pae`] of this envelope's type and payload.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// True when the payload type is the in-toto one.
    pub fn is_in_toto(&self) -> bool {
        self.payload_type == IN_TOTO_PAYLOAD_TYPE
    }

    /// The only signature, or an error naming how many there are (bundles allow exactly one).
    pub fn single_signature(&self) -> Result<&Signature> {
        match self.signatures.as_slice() {
            [one] => Ok(one),
            other => Err(Error::invalid_format(format!(
                "DSSE envelope has {} signatures; exactly one is supported",
                other.len()
            ))),
        }
    }
}

impl Signature {
    fn from_value(value: &Value) -> Result<Signature> {
        let obj = value.as_object().ok_or_else(|| Error::invalid_format("not a JSON object"))?;
        let keyid = match obj.get("keyid") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => String::new(),
            Some(_) => return Err(Error::invalid_format("field `keyid`: not a string")),
        };
        let sig = match obj.get("sig") {
            Some(Value::String(s)) => decode_base64_any(s).map_err(|e| e.context("field `sig`"))?,
            Some(_) => return Err(Error::invalid_format("field `sig`: not a string")),
            None => return Err(Error::invalid_format("missing field `sig`")),
        };
        if sig.is_empty() {
            return Err(Error::invalid_format("field `sig` is empty"));
        }
        Ok(Signature { keyid, sig })
    }

    /// The key id, if one was given.
    pub fn keyid(&self) -> Option<&str> {
        (!self.keyid.is_empty()).then_some(self.keyid.as_str())
    }
}

// Protobuf JSON field order of `io.intoto.Envelope` (payload, payloadType, signatures; sig, keyid), with
// standard padded base64 and an empty keyid omitted: the form a Sigstore bundle carries.
impl Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Envelope", 3)?;
        // Base64 never needs JSON escapes: written raw, a megabyte payload is not escaped byte by byte.
        let mut quoted = String::with_capacity(self.payload.len().div_ceil(3) * 4 + 2);
        quoted.push('"');
        base64::engine::general_purpose::STANDARD.encode_string(&self.payload, &mut quoted);
        quoted.push('"');
        match serde_json::value::RawValue::from_string(quoted) {
            Ok(raw) => st.serialize_field("payload", &raw)?,
            Err(_) => st.serialize_field("payload", &encode_base64(&self.payload))?,
        }
        st.serialize_field("payloadType", &self.payload_type)?;
        st.serialize_field("signatures", &self.signatures)?;
        st.end()
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let len = if self.keyid.is_empty() { 1 } else { 2 };
        let mut st = s.serialize_struct("Signature", len)?;
        st.serialize_field("sig", &encode_base64(&self.sig))?;
        if !self.keyid.is_empty() {
            st.serialize_field("keyid", &self.keyid)?;
        }
        st.end()
    }
}

impl std::fmt::Debug for Envelope {
    // A 2 MB payload in a debug print helps nobody.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("payload_type", &self.payload_type)
            .field("payload_len", &self.payload.len())
            .field("signatures", &self.signatures)
            .finish()
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signature").field("keyid", &self.keyid).field("sig_len", &self.sig.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testdata;

    #[test]
    fn pae_matches_the_spec_vector() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
        // Lengths are bytes, not characters.
        assert_eq!(pae("é", b"\xff"), "DSSEv1 2 é 1 ".bytes().chain([0xff]).collect::<Vec<u8>>());
    }

    #[test]
    fn base64_accepts_both_alphabets_and_any_padding() {
        let bytes: Vec<u8> = vec![0xfb, 0xff, 0xbf, 0x01];
        for text in ["+/+/AQ==", "+/+/AQ", "-_-_AQ==", "-_-_AQ", "+/+/\r\nAQ=="] {
            assert_eq!(decode_base64_any(text).unwrap(), bytes, "{text}");
        }
        assert_eq!(decode_base64_any("").unwrap(), Vec::<u8>::new());
        assert_eq!(encode_base64(&bytes), "+/+/AQ==");
        // input, fragment the message must contain (after our own check, the base64 crate's words)
        for (bad, want) in [
            ("+/-_", "mixes the standard (+/) and URL-safe (-_) alphabets"),
            ("AQ=", "Invalid padding"),
            ("A", "Invalid input length: 1"),
            ("AQ===", "Invalid symbol 61, offset 2"),
            ("A Q==", "Invalid symbol 32, offset 1"),
            ("AQ==AQ==", "Invalid symbol 61, offset 2"),
            ("*", "Invalid symbol 42, offset 0"),
        ] {
            let err = decode_base64_any(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidFormat, "{bad}: {err}");
            assert!(err.to_string().starts_with("invalid base64: "), "{bad}: {err}");
            assert!(err.to_string().contains(want), "{bad}: {want:?} not in {err}");
        }
    }

    #[test]
    fn parses_a_minimal_envelope() {
        let json =
            br#"{"payloadType":"t","payload":"aGVsbG8","signatures":[{"sig":"AQID"},{"keyid":"k","sig":"AQ"}],"x":1}"#;
        let env = Envelope::parse(json).unwrap();
        assert_eq!(env.payload, b"hello");
        assert_eq!(env.signatures[0].keyid(), None);
        assert_eq!(env.signatures[0].sig, [1, 2, 3]);
        assert_eq!(env.signatures[1].keyid(), Some("k"));
        assert_eq!(env.pae(), b"DSSEv1 1 t 5 hello");
        let err = env.single_signature().unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidFormat, "{err}");
        assert_eq!(err.to_string(), "DSSE envelope has 2 signatures; exactly one is supported");
    }

    #[test]
    fn errors_name_the_failing_field() {
        let cases: &[(&[u8], &str)] = &[
            (br#"{"payloadType":"t","payload":"@@","signatures":[]}"#, "`payload`"),
            (br#"{"payloadType":"t","payload":"","signatures":[{"sig":"!!"}]}"#, "`signatures[0]`: field `sig`"),
            (br#"{"payloadType":"t","payload":"","signatures":[{"sig":""}]}"#, "`sig` is empty"),
            (br#"{"payloadType":"t","payload":"","signatures":[{"keyid":1,"sig":"AQ"}]}"#, "`keyid`"),
            (br#"{"payloadType":1,"payload":"","signatures":[]}"#, "`payloadType`"),
            (br#"{"payload":"","signatures":[]}"#, "missing field `payloadType`"),
            (br#"{"payloadType":"t","signatures":[]}"#, "missing field `payload`"),
            (br#"{"payloadType":"t","payload":""}"#, "missing field `signatures`"),
            (br#"{"payloadType":"t","payload":"","signatures":{}}"#, "`signatures`: not an array"),
            (br#"[]"#, "not a JSON object"),
            (br#"{"payloadType":"t","payl"#, "invalid JSON"),
        ];
        for (json, want) in cases {
            let err = Envelope::parse(json).unwrap_err();
            assert!(err.to_string().contains(want), "{err} should contain {want}");
            assert_eq!(err.kind(), crate::ErrorKind::InvalidFormat);
        }
    }

    #[test]
    fn serialises_in_protobuf_order_with_std_base64() {
        let env =
            Envelope::parse(br#"{"signatures":[{"sig":"-_8","keyid":""}],"payload":"-_8","payloadType":"t"}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&env).unwrap(),
            r#"{"payload":"+/8=","payloadType":"t","signatures":[{"sig":"+/8="}]}"#
        );
    }

    #[test]
    fn parses_the_article_layers() {
        let slsa = testdata::read(testdata::CSSC_SLSA_LAYER);
        let env = Envelope::parse(&slsa).unwrap();
        assert!(env.is_in_toto());
        assert_eq!(env.single_signature().unwrap().sig.len(), 512, "RSA-4096 signature");
        assert!(env.payload.starts_with(br#"{"_type":"https://in-toto.io/Statement/v0.1""#));

        let sbom = testdata::read(testdata::CSSC_SBOM_LAYER);
        let env = Envelope::parse(&sbom).unwrap();
        assert_eq!(env.signatures.len(), 1);
        assert!(env.payload.len() > 1_500_000);

        let layer0 = testdata::read(testdata::WRITER_LEGACY_ENVELOPE);
        let env = Envelope::parse(&layer0).unwrap();
        assert!(env.is_in_toto());
        assert_eq!(env.signatures.len(), 1);
    }
}
