//! Sigstore bundles v0.1–v0.3 (`application/vnd.dev.sigstore.bundle…`), read and written in the protobuf
//! JSON mapping.
//!
//! Reading tolerates unknown fields, either base64 alphabet and `int64` as string or number. Writing
//! follows what protobuf JSON serialisers emit (lowerCamelCase, proto declaration order, `int64` as strings,
//! standard padded base64) with a fixed field order, so serialising the same value always yields the same
//! bytes: a re-run of a migration produces the same blob digest.
//!
//! The model checks structure only (one verification key, one content, decodable bytes). Version rules
//! that decide whether a bundle is *acceptable* (inclusion proofs required from v0.2, a single leaf
//! certificate in v0.3) belong to verification, which can report them properly.

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::dsse::Envelope;
use super::pbjson::{self, named_field};
use crate::error::{Error, Result};

/// The bundle media type att2ref writes (v0.3).
pub const MEDIA_TYPE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Bundle format versions att2ref can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BundleVersion {
    /// v0.1 (`…bundle+json;version=0.1`).
    V0_1,
    /// v0.2 (`…bundle+json;version=0.2`).
    V0_2,
    /// v0.3 (`…bundle.v0.3+json`, or the older `…bundle+json;version=0.3` spelling).
    V0_3,
}

impl BundleVersion {
    /// Recognise a bundle media type; anything else (including v0.4+) is rejected.
    pub fn from_media_type(media_type: &str) -> Result<BundleVersion> {
        match media_type {
            MEDIA_TYPE_V03 | "application/vnd.dev.sigstore.bundle+json;version=0.3" => Ok(BundleVersion::V0_3),
            "application/vnd.dev.sigstore.bundle+json;version=0.2" => Ok(BundleVersion::V0_2),
            "application/vnd.dev.sigstore.bundle+json;version=0.1" => Ok(BundleVersion::V0_1),
            other => {
                let shown: String = other.chars().take(100).collect();
                Err(Error::new(
                    crate::ErrorKind::Unsupported,
                    format!("unsupported Sigstore bundle media type {shown:?} (supported: v0.1, v0.2, v0.3)"),
                ))
            }
        }
    }

    /// The media type written for this version (the `.v0.3+json` form for v0.3).
    pub fn media_type(self) -> &'static str {
        match self {
            BundleVersion::V0_1 => "application/vnd.dev.sigstore.bundle+json;version=0.1",
            BundleVersion::V0_2 => "application/vnd.dev.sigstore.bundle+json;version=0.2",
            BundleVersion::V0_3 => MEDIA_TYPE_V03,
        }
    }
}

/// A Sigstore bundle.
#[derive(Clone, Debug, PartialEq)]
pub struct Bundle {
    /// The format version, from `mediaType`. Serialising writes this version's canonical media type.
    pub version: BundleVersion,
    /// Key or certificate, log entries, timestamps.
    pub verification_material: VerificationMaterial,
    /// What was signed.
    pub content: BundleContent,
}

/// The signed content of a bundle.
#[derive(Clone, Debug, PartialEq)]
pub enum BundleContent {
    /// A DSSE envelope (attestations).
    DsseEnvelope(Envelope),
    /// A signature over a message digest (cosign `.sig` payloads, blobs).
    MessageSignature(MessageSignature),
}

/// A signature over a digest of the signed bytes.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageSignature {
    /// The digest of the signed bytes (optional in the format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_digest: Option<HashOutput>,
    /// The signature.
    #[serde(deserialize_with = "de_signature", serialize_with = "pbjson::ser_bytes")]
    pub signature: Vec<u8>,
}

/// A hash algorithm name (protobuf enum name, e.g. `SHA2_256`) and digest.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct HashOutput {
    /// Algorithm enum name.
    pub algorithm: String,
    /// Raw digest bytes.
    #[serde(deserialize_with = "de_digest", serialize_with = "pbjson::ser_bytes")]
    pub digest: Vec<u8>,
}

/// How the signature is to be checked, plus the evidence of when it was made.
#[derive(Clone, Debug, PartialEq)]
pub struct VerificationMaterial {
    /// The key, certificate or chain.
    pub key: VerificationKey,
    /// Transparency log entries (may be empty).
    pub tlog_entries: Vec<TransparencyLogEntry>,
    /// RFC 3161 timestamps, when present.
    pub timestamp_verification_data: Option<TimestampVerificationData>,
}

/// The `oneof content` of the verification material.
#[derive(Clone, Debug, PartialEq)]
pub enum VerificationKey {
    /// A public key known to the verifier, named by an optional hint.
    PublicKey(PublicKeyIdentifier),
    /// A chain, leaf first (v0.1/v0.2).
    X509CertificateChain(X509CertificateChain),
    /// A single leaf certificate (v0.3).
    Certificate(X509Certificate),
}

/// `publicKey` material.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct PublicKeyIdentifier {
    /// Key hint (cosign: base64 SHA-256 of the SPKI DER); empty when absent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hint: String,
}

/// One DER certificate.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct X509Certificate {
    /// The DER bytes.
    #[serde(deserialize_with = "de_raw_bytes", serialize_with = "pbjson::ser_bytes")]
    pub raw_bytes: Vec<u8>,
}

/// A certificate chain, leaf first.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct X509CertificateChain {
    /// The certificates.
    #[serde(default)]
    pub certificates: Vec<X509Certificate>,
}

/// One transparency log entry.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransparencyLogEntry {
    /// Global log index.
    #[serde(default, deserialize_with = "de_log_index", serialize_with = "pbjson::ser_int64")]
    pub log_index: i64,
    /// The log's id.
    pub log_id: LogId,
    /// Entry kind and version (`dsse`/`0.0.1`, `hashedrekord`/`0.0.1`, …).
    pub kind_version: KindVersion,
    /// Unix seconds when the log integrated the entry; 0 when absent (Rekor v2).
    #[serde(
        default,
        deserialize_with = "de_integrated_time",
        serialize_with = "pbjson::ser_int64",
        skip_serializing_if = "pbjson::is_zero"
    )]
    pub integrated_time: i64,
    /// The signed entry timestamp (SET).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_promise: Option<InclusionPromise>,
    /// The Merkle inclusion proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_proof: Option<InclusionProof>,
    /// The canonicalized entry body (JSON for Rekor v1).
    #[serde(deserialize_with = "de_canonicalized_body", serialize_with = "pbjson::ser_bytes")]
    pub canonicalized_body: Vec<u8>,
}

/// A transparency log's id, as bundles and trusted roots both write it (protobuf-specs
/// `dev.sigstore.common.v1.LogId`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogId {
    /// For Rekor v1: SHA-256 of the log's DER public key.
    #[serde(deserialize_with = "de_key_id", serialize_with = "pbjson::ser_bytes")]
    pub key_id: Vec<u8>,
}

/// A log entry kind and version.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct KindVersion {
    /// Entry kind.
    pub kind: String,
    /// Entry API version.
    pub version: String,
}

/// The inclusion promise.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionPromise {
    /// The SET bytes (ASN.1 ECDSA signature for Rekor v1).
    #[serde(deserialize_with = "de_set", serialize_with = "pbjson::ser_bytes")]
    pub signed_entry_timestamp: Vec<u8>,
}

/// An RFC 6962 inclusion proof with its checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    /// Index of the leaf in the tree the proof is for (shard-local in sharded Rekor v1).
    #[serde(default, deserialize_with = "de_log_index", serialize_with = "pbjson::ser_int64")]
    pub log_index: i64,
    /// Root hash of that tree.
    #[serde(deserialize_with = "de_root_hash", serialize_with = "pbjson::ser_bytes")]
    pub root_hash: Vec<u8>,
    /// Size of that tree.
    #[serde(deserialize_with = "de_tree_size", serialize_with = "pbjson::ser_int64")]
    pub tree_size: i64,
    /// The audit path, leaf to root.
    #[serde(default, deserialize_with = "de_hashes", serialize_with = "pbjson::ser_bytes_list")]
    pub hashes: Vec<Vec<u8>>,
    /// The signed checkpoint.
    pub checkpoint: Checkpoint,
}

/// A signed checkpoint (signed note text).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Checkpoint {
    /// The note: origin, size, root hash, blank line, signature lines.
    pub envelope: String,
}

/// RFC 3161 timestamps.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimestampVerificationData {
    /// The timestamps.
    #[serde(default)]
    pub rfc3161_timestamps: Vec<Rfc3161SignedTimestamp>,
}

/// One RFC 3161 timestamp.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rfc3161SignedTimestamp {
    /// DER `TimeStampResp` (or token) bytes.
    #[serde(deserialize_with = "de_signed_timestamp", serialize_with = "pbjson::ser_bytes")]
    pub signed_timestamp: Vec<u8>,
}

named_field!(de_signature, pbjson::bytes, Vec<u8>, "signature");
named_field!(de_digest, pbjson::bytes, Vec<u8>, "digest");
named_field!(de_raw_bytes, pbjson::bytes, Vec<u8>, "rawBytes");
named_field!(de_log_index, pbjson::int64, i64, "logIndex");
named_field!(de_integrated_time, pbjson::int64, i64, "integratedTime");
named_field!(de_canonicalized_body, pbjson::bytes, Vec<u8>, "canonicalizedBody");
named_field!(de_key_id, pbjson::bytes, Vec<u8>, "keyId");
named_field!(de_set, pbjson::bytes, Vec<u8>, "signedEntryTimestamp");
named_field!(de_root_hash, pbjson::bytes, Vec<u8>, "rootHash");
named_field!(de_tree_size, pbjson::int64, i64, "treeSize");
named_field!(de_hashes, pbjson::bytes_list, Vec<Vec<u8>>, "hashes");
named_field!(de_signed_timestamp, pbjson::bytes, Vec<u8>, "signedTimestamp");

// The oneofs arrive as sibling optional fields; these mirror the JSON before the oneof is resolved.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBundle {
    media_type: String,
    verification_material: RawVerificationMaterial,
    #[serde(default)]
    dsse_envelope: Option<Value>,
    #[serde(default)]
    message_signature: Option<MessageSignature>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawVerificationMaterial {
    #[serde(default)]
    public_key: Option<PublicKeyIdentifier>,
    #[serde(default)]
    x509_certificate_chain: Option<X509CertificateChain>,
    #[serde(default)]
    certificate: Option<X509Certificate>,
    #[serde(default)]
    tlog_entries: Vec<TransparencyLogEntry>,
    #[serde(default)]
    timestamp_verification_data: Option<TimestampVerificationData>,
}

impl Bundle {
    /// Parse bundle JSON.
    pub fn parse(bytes: &[u8]) -> Result<Bundle> {
        // serde would also accept a struct written as an array; a bundle is always an object.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(Error::invalid_format("Sigstore bundle: not a JSON object"));
        }
        let raw: RawBundle =
            serde_json::from_slice(bytes).map_err(|e| Error::invalid_format(format!("Sigstore bundle: {e}")))?;
        let version = BundleVersion::from_media_type(&raw.media_type)?;
        let vm = raw.verification_material;
        let key = match (vm.public_key, vm.x509_certificate_chain, vm.certificate) {
            (Some(k), None, None) => VerificationKey::PublicKey(k),
            (None, Some(c), None) => VerificationKey::X509CertificateChain(c),
            (None, None, Some(c)) => VerificationKey::Certificate(c),
            (None, None, None) => {
                return Err(Error::invalid_format(
                    "Sigstore bundle: verificationMaterial has none of publicKey, x509CertificateChain, certificate",
                ));
            }
            _ => {
                return Err(Error::invalid_format(
                    "Sigstore bundle: verificationMaterial has more than one of publicKey, x509CertificateChain, certificate",
                ));
            }
        };
        let content = match (raw.dsse_envelope, raw.message_signature) {
            (Some(env), None) => BundleContent::DsseEnvelope(
                Envelope::from_value(&env).map_err(|e| e.context("Sigstore bundle `dsseEnvelope`"))?,
            ),
            (None, Some(sig)) => BundleContent::MessageSignature(sig),
            (None, None) => {
                return Err(Error::invalid_format("Sigstore bundle: has neither dsseEnvelope nor messageSignature"));
            }
            (Some(_), Some(_)) => {
                return Err(Error::invalid_format("Sigstore bundle: has both dsseEnvelope and messageSignature"));
            }
        };
        Ok(Bundle {
            version,
            verification_material: VerificationMaterial {
                key,
                tlog_entries: vm.tlog_entries,
                timestamp_verification_data: vm.timestamp_verification_data,
            },
            content,
        })
    }

    /// The canonical media type of this bundle's version.
    pub fn media_type(&self) -> &'static str {
        self.version.media_type()
    }

    /// The DSSE envelope, if that is the content.
    pub fn dsse_envelope(&self) -> Option<&Envelope> {
        match &self.content {
            BundleContent::DsseEnvelope(e) => Some(e),
            BundleContent::MessageSignature(_) => None,
        }
    }

    /// Serialise as compact protobuf JSON. Deterministic: equal bundles give equal bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // Sized for the payload's base64 up front: grown by doubling, a 2 MB bundle would be copied four
        // times over into freshly faulted-in memory (most of what serialising it cost).
        let payload = self.dsse_envelope().map_or(0, |e| e.payload.len().div_ceil(3) * 4);
        let mut out = Vec::with_capacity(payload + 16 * 1024);
        // Serialising these types cannot fail: every map key is a fixed string and no value is a float.
        match serde_json::to_writer(&mut out, self) {
            Ok(()) => out,
            Err(_) => Vec::new(),
        }
    }
}

impl Serialize for Bundle {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Bundle", 3)?;
        st.serialize_field("mediaType", self.media_type())?;
        st.serialize_field("verificationMaterial", &self.verification_material)?;
        match &self.content {
            BundleContent::MessageSignature(m) => st.serialize_field("messageSignature", m)?,
            BundleContent::DsseEnvelope(e) => st.serialize_field("dsseEnvelope", e)?,
        }
        st.end()
    }
}

// Declaration order of `VerificationMaterial` in the proto: the key oneof, then tlogEntries, then
// timestampVerificationData. `tlogEntries` is always written, even empty, so readers that expect the
// array find it.
impl Serialize for VerificationMaterial {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("VerificationMaterial", 3)?;
        match &self.key {
            VerificationKey::PublicKey(k) => st.serialize_field("publicKey", k)?,
            VerificationKey::X509CertificateChain(c) => st.serialize_field("x509CertificateChain", c)?,
            VerificationKey::Certificate(c) => st.serialize_field("certificate", c)?,
        }
        st.serialize_field("tlogEntries", &self.tlog_entries)?;
        if let Some(t) = &self.timestamp_verification_data {
            st.serialize_field("timestampVerificationData", t)?;
        }
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::intoto::Statement;
    use crate::model::testdata;

    #[test]
    fn media_types() {
        use BundleVersion::*;
        for (mt, v) in [
            (MEDIA_TYPE_V03, V0_3),
            ("application/vnd.dev.sigstore.bundle+json;version=0.3", V0_3),
            ("application/vnd.dev.sigstore.bundle+json;version=0.2", V0_2),
            ("application/vnd.dev.sigstore.bundle+json;version=0.1", V0_1),
        ] {
            assert_eq!(BundleVersion::from_media_type(mt).unwrap(), v);
        }
        for bad in [
            "application/vnd.dev.sigstore.bundle.v0.4+json",
            "application/vnd.dev.sigstore.bundle+json;version=0.4",
            "application/vnd.dev.sigstore.bundle+json",
            "application/json",
            "",
        ] {
            let err = BundleVersion::from_media_type(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Unsupported, "{bad}");
        }
        assert_eq!(V0_1.media_type(), "application/vnd.dev.sigstore.bundle+json;version=0.1");
    }

    #[test]
    fn cosign_bundle_parses_and_reserialises_identically() {
        let bytes = testdata::read(testdata::COSIGN_BUNDLE);
        let b = Bundle::parse(&bytes).unwrap();
        assert_eq!(b.version, BundleVersion::V0_3);
        assert!(matches!(&b.verification_material.key, VerificationKey::Certificate(c) if c.raw_bytes[0] == 0x30));
        let entry = &b.verification_material.tlog_entries[0];
        assert_eq!(entry.log_index, 175_508_996);
        assert_eq!(entry.kind_version, KindVersion { kind: "dsse".into(), version: "0.0.1".into() });
        assert_eq!(entry.integrated_time, 1_740_770_291);
        assert_eq!(entry.log_id.key_id.len(), 32);
        let proof = entry.inclusion_proof.as_ref().unwrap();
        assert_eq!((proof.log_index, proof.tree_size), (53_604_734, 53_604_735));
        assert_eq!(proof.root_hash.len(), 32);
        assert!(proof.hashes.iter().all(|h| h.len() == 32));
        assert!(proof.checkpoint.envelope.starts_with("rekor.sigstore.dev - "));
        assert!(entry.canonicalized_body.starts_with(br#"{"apiVersion":"0.0.1","kind":"dsse""#));
        let env = b.dsse_envelope().unwrap();
        assert!(Statement::parse(&env.payload).is_ok());

        // Written the way cosign wrote it, byte for byte (modulo a trailing newline in the file).
        let written = b.to_json();
        assert_eq!(String::from_utf8(written.clone()).unwrap(), String::from_utf8_lossy(&bytes).trim_end());
        assert_eq!(Bundle::parse(&written).unwrap(), b);
    }

    #[test]
    fn writer_bundle_round_trips() {
        let bytes = testdata::read(testdata::WRITER_BUNDLE);
        let b = Bundle::parse(&bytes).unwrap();
        assert_eq!(b.version, BundleVersion::V0_3);
        let VerificationKey::PublicKey(k) = &b.verification_material.key else { panic!("expected a key hint") };
        assert_eq!(k.hint, "DZm4a75xLiHO2x5rW//eJsGBE7E9KAuPK0YiLm3RJsA=");
        assert!(b.verification_material.tlog_entries.is_empty());
        let written = b.to_json();
        assert_eq!(Bundle::parse(&written).unwrap(), b);
        assert_eq!(written, Bundle::parse(&written).unwrap().to_json(), "serialising is deterministic");
        // The source wrote an empty keyid; the protobuf form omits it and nothing else differs.
        let text = String::from_utf8(written).unwrap();
        assert!(!text.contains("keyid"));
        let mut expected: Value = serde_json::from_slice(&bytes).unwrap();
        expected["dsseEnvelope"]["signatures"][0].as_object_mut().unwrap().remove("keyid");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), expected);
    }

    fn minimal(vm: &str, content: &str) -> String {
        format!(r#"{{"mediaType":"{MEDIA_TYPE_V03}","verificationMaterial":{vm},{content}}}"#)
    }

    const MSG: &str = r#""messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AQ"},"signature":"Ag"}"#;

    #[test]
    fn reads_legacy_spellings_and_numbers() {
        let json = format!(
            r#"{{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.1","verificationMaterial":{{"x509CertificateChain":{{"certificates":[{{"rawBytes":"MA"}}]}},"tlogEntries":[{{"logIndex":7,"logId":{{"keyId":"AQ"}},"kindVersion":{{"kind":"hashedrekord","version":"0.0.1"}},"integratedTime":"5","inclusionPromise":{{"signedEntryTimestamp":"-_8"}},"canonicalizedBody":"e30","future":true}}],"timestampVerificationData":{{"rfc3161Timestamps":[{{"signedTimestamp":"AQ=="}}]}}}},{MSG},"extra":{{}}}}"#
        );
        let b = Bundle::parse(json.as_bytes()).unwrap();
        assert_eq!(b.version, BundleVersion::V0_1);
        let e = &b.verification_material.tlog_entries[0];
        assert_eq!((e.log_index, e.integrated_time), (7, 5));
        assert_eq!(e.inclusion_promise.as_ref().unwrap().signed_entry_timestamp, [0xfb, 0xff]);
        assert_eq!(e.canonicalized_body, b"{}");
        let BundleContent::MessageSignature(m) = &b.content else { panic!() };
        assert_eq!(m.message_digest.as_ref().unwrap().digest, [1]);
        assert_eq!(
            String::from_utf8(b.to_json()).unwrap(),
            r#"{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.1","verificationMaterial":{"x509CertificateChain":{"certificates":[{"rawBytes":"MA=="}]},"tlogEntries":[{"logIndex":"7","logId":{"keyId":"AQ=="},"kindVersion":{"kind":"hashedrekord","version":"0.0.1"},"integratedTime":"5","inclusionPromise":{"signedEntryTimestamp":"+/8="},"canonicalizedBody":"e30="}],"timestampVerificationData":{"rfc3161Timestamps":[{"signedTimestamp":"AQ=="}]}},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AQ=="},"signature":"Ag=="}}"#
        );
    }

    #[test]
    fn rejects_malformed_bundles() {
        let key = r#"{"publicKey":{}}"#;
        let entry = |patch: &str| {
            format!(
                r#"{{"publicKey":{{}},"tlogEntries":[{{"logIndex":"1","logId":{{"keyId":"AQ"}},"kindVersion":{{"kind":"k","version":"v"}},"canonicalizedBody":"e30"{patch}}}]}}"#
            )
        };
        let cases = [
            (minimal(key, MSG).replace("v0.3", "v0.9"), "unsupported Sigstore bundle media type"),
            (minimal("{}", MSG), "none of publicKey"),
            (minimal(r#"{"publicKey":{},"certificate":{"rawBytes":"MA"}}"#, MSG), "more than one"),
            (minimal(key, r#""x":1"#), "neither dsseEnvelope nor messageSignature"),
            (minimal(key, &format!(r#"{MSG},"dsseEnvelope":{{}}"#)), "both"),
            (
                minimal(key, r#""dsseEnvelope":{"payloadType":"t","payload":"!!","signatures":[]}"#),
                "`dsseEnvelope`: DSSE envelope field `payload`",
            ),
            (minimal(r#"{"certificate":{"rawBytes":"M A"}}"#, MSG), "field `rawBytes`: invalid base64"),
            (minimal(r#"{"certificate":{}}"#, MSG), "missing field `rawBytes`"),
            (minimal(&entry(r#","logIndex":"x""#), MSG), "duplicate field `logIndex`"),
            (
                minimal(&entry("").replace(r#""logIndex":"1""#, r#""logIndex":"1x""#), MSG),
                "field `logIndex`: \"1x\" is not an int64",
            ),
            (minimal(&entry("").replace(r#","logId":{"keyId":"AQ"}"#, ""), MSG), "missing field `logId`"),
            (
                minimal(
                    &entry(
                        r#","inclusionProof":{"rootHash":"AQ","treeSize":"2","hashes":["AQ","%"],"checkpoint":{"envelope":""}}"#,
                    ),
                    MSG,
                ),
                "field `hashes[1]`",
            ),
            (
                minimal(&entry(r#","inclusionProof":{"rootHash":"AQ","treeSize":"2","checkpoint":{}}"#), MSG),
                "missing field `envelope`",
            ),
            (minimal(key, r#""messageSignature":{"signature":5}"#), "base64 text in `signature`"),
            (minimal(key, MSG)[..60].to_owned(), "EOF"),
            ("[]".to_owned(), "not a JSON object"),
            (r#"{"verificationMaterial":{}}"#.to_owned(), "missing field `mediaType`"),
        ];
        for (json, want) in cases {
            let err = Bundle::parse(json.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(want), "{json}\n  => {err}");
        }
    }
}
