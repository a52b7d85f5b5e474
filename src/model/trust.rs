//! Sigstore trusted roots (`trusted_root.json`): the logs, certificate authorities and timestamp
//! authorities a verifier trusts, each with its validity window.
//!
//! Parse only. Keys and certificates stay DER bytes; interpreting them is verification's job.

use serde::Deserialize;

use super::bundle::LogId;
use super::pbjson::{self, named_field};
use super::time::Rfc3339;
use crate::error::{Error, ErrorKind, Result};

/// The media type of trusted roots in the wild (`version=0.1`).
pub const MEDIA_TYPE_V01: &str = "application/vnd.dev.sigstore.trustedroot+json;version=0.1";
/// The later spelling (`.v0.2+json`), accepted as the format is unchanged for the fields read here.
pub const MEDIA_TYPE_V02: &str = "application/vnd.dev.sigstore.trustedroot.v0.2+json";

/// A parsed trusted root.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedRoot {
    /// The media type as given (one of the two accepted).
    pub media_type: String,
    /// Transparency logs (Rekor).
    #[serde(default)]
    pub tlogs: Vec<TransparencyLogInstance>,
    /// Certificate authorities (Fulcio).
    #[serde(default)]
    pub certificate_authorities: Vec<CertificateAuthority>,
    /// Certificate transparency logs.
    #[serde(default)]
    pub ctlogs: Vec<TransparencyLogInstance>,
    /// RFC 3161 timestamp authorities.
    #[serde(default)]
    pub timestamp_authorities: Vec<CertificateAuthority>,
}

/// A transparency log (Rekor or CT).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransparencyLogInstance {
    /// The log's base URL.
    #[serde(default)]
    pub base_url: String,
    /// Hash algorithm enum name (`SHA2_256`).
    #[serde(default)]
    pub hash_algorithm: String,
    /// The log's public key.
    pub public_key: TrustedPublicKey,
    /// The log id (for Rekor v1: SHA-256 of the DER public key).
    pub log_id: LogId,
}

/// A public key with its validity.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedPublicKey {
    /// DER SubjectPublicKeyInfo.
    #[serde(deserialize_with = "de_raw_bytes")]
    pub raw_bytes: Vec<u8>,
    /// Key algorithm enum name (`PKIX_ECDSA_P256_SHA_256`, `PKIX_ED25519`, …).
    #[serde(default)]
    pub key_details: String,
    /// When the key may be used.
    #[serde(default)]
    pub valid_for: Option<TimeRange>,
}

/// A certificate or timestamp authority.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateAuthority {
    /// Its subject, informational.
    #[serde(default)]
    pub subject: DistinguishedName,
    /// Its URI.
    #[serde(default)]
    pub uri: String,
    /// The chain, issuing certificate first, root last.
    pub cert_chain: CertificateChain,
    /// When certificates it issued may be trusted.
    #[serde(default)]
    pub valid_for: Option<TimeRange>,
}

/// An authority's subject.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DistinguishedName {
    /// Organization.
    #[serde(default)]
    pub organization: String,
    /// Common name.
    #[serde(default)]
    pub common_name: String,
}

/// DER certificates.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CertificateChain {
    /// The certificates.
    #[serde(default)]
    pub certificates: Vec<Certificate>,
}

/// One DER certificate.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    /// The DER bytes.
    #[serde(deserialize_with = "de_raw_bytes")]
    pub raw_bytes: Vec<u8>,
}

/// A validity window; either end may be open.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
pub struct TimeRange {
    /// Start (inclusive).
    #[serde(default)]
    pub start: Option<Rfc3339>,
    /// End (inclusive); `None` for "still valid".
    #[serde(default)]
    pub end: Option<Rfc3339>,
}

impl TimeRange {
    /// Whether the unix time falls in the window (ends inclusive; an end like `…59.999Z` covers its whole
    /// second).
    pub fn contains(&self, unix_seconds: i64) -> bool {
        self.start.as_ref().is_none_or(|s| s.unix_seconds() <= unix_seconds)
            && self.end.as_ref().is_none_or(|e| unix_seconds <= e.unix_seconds())
    }
}

named_field!(de_raw_bytes, pbjson::bytes, Vec<u8>, "rawBytes");

impl TrustedRoot {
    /// Parse `trusted_root.json`. Unknown media types are rejected rather than half-understood.
    pub fn parse(bytes: &[u8]) -> Result<TrustedRoot> {
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(Error::invalid_format("trusted root: not a JSON object"));
        }
        let root: TrustedRoot =
            serde_json::from_slice(bytes).map_err(|e| Error::invalid_format(format!("trusted root: {e}")))?;
        if root.media_type != MEDIA_TYPE_V01 && root.media_type != MEDIA_TYPE_V02 {
            let shown: String = root.media_type.chars().take(100).collect();
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("unsupported trusted root media type {shown:?} (expected {MEDIA_TYPE_V01})"),
            ));
        }
        Ok(root)
    }

    /// The transparency log with this log id (Rekor `logID` / bundle `logId.keyId`).
    pub fn tlog_by_id(&self, log_id: &[u8]) -> Option<&TransparencyLogInstance> {
        self.tlogs.iter().find(|t| t.log_id.key_id == log_id)
    }

    /// The certificate transparency log with this log id (SCT log id).
    pub fn ctlog_by_id(&self, log_id: &[u8]) -> Option<&TransparencyLogInstance> {
        self.ctlogs.iter().find(|t| t.log_id.key_id == log_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testdata;

    fn hex_id(hex_text: &str) -> Vec<u8> {
        hex::decode(hex_text).unwrap()
    }

    // The public-good Rekor key, named by the `logID` in every legacy bundle of the corpus.
    const REKOR_PGI: &str = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d";

    #[test]
    fn parses_public_good() {
        let root = TrustedRoot::parse(&testdata::read(testdata::PUBLIC_GOOD_ROOT)).unwrap();
        assert_eq!(root.media_type, MEDIA_TYPE_V01);
        let rekor = root.tlog_by_id(&hex_id(REKOR_PGI)).expect("public-good Rekor log");
        assert_eq!(rekor.base_url, "https://rekor.sigstore.dev");
        assert_eq!(rekor.public_key.key_details, "PKIX_ECDSA_P256_SHA_256");
        assert_eq!(rekor.hash_algorithm, "SHA2_256");
        let valid = rekor.public_key.valid_for.as_ref().unwrap();
        assert_eq!(valid.start.as_ref().unwrap().as_str(), "2021-01-12T11:53:27Z");
        assert!(valid.end.is_none());
        // The article's keyless signatures were logged on 2022-10-15.
        assert!(valid.contains(1_665_804_210));
        assert!(!valid.contains(1_600_000_000));
        assert!(!root.certificate_authorities.is_empty());
        assert!(root.certificate_authorities.iter().all(|ca| !ca.cert_chain.certificates.is_empty()));
        assert!(root.certificate_authorities.iter().all(|ca| ca.cert_chain.certificates[0].raw_bytes[0] == 0x30));
        let first_ca = &root.certificate_authorities[0];
        assert_eq!(first_ca.subject.organization, "sigstore.dev");
        assert_eq!(first_ca.valid_for.as_ref().unwrap().end.as_ref().unwrap().unix_seconds(), 1_672_531_199);
        assert!(!root.ctlogs.is_empty());
        assert!(!root.timestamp_authorities.is_empty());
        assert!(root.ctlog_by_id(&root.ctlogs[0].log_id.key_id).is_some());
    }

    #[test]
    fn parses_staging_and_cosign_snapshot() {
        let staging = TrustedRoot::parse(&testdata::read(testdata::STAGING_ROOT)).unwrap();
        assert!(!staging.tlogs.is_empty());
        assert!(staging.tlog_by_id(&hex_id(REKOR_PGI)).is_none(), "staging has its own logs");
        let pgi = TrustedRoot::parse(&testdata::read(testdata::COSIGN_TRUSTED_ROOT)).unwrap();
        assert!(pgi.tlog_by_id(&hex_id(REKOR_PGI)).is_some());
        assert!(pgi.timestamp_authorities.is_empty());
        // Millisecond spellings of the same instants parse to the same seconds.
        let start = pgi.tlogs[0].public_key.valid_for.as_ref().unwrap().start.as_ref().unwrap();
        assert_eq!((start.as_str(), start.unix_seconds()), ("2021-01-12T11:53:27.000Z", 1_610_452_407));
    }

    #[test]
    fn rejects_malformed_roots() {
        let tlog = |pk: &str| {
            format!(r#"{{"mediaType":"{MEDIA_TYPE_V01}","tlogs":[{{"publicKey":{pk},"logId":{{"keyId":"AQ"}}}}]}}"#)
        };
        let cases = [
            (tlog(r#"{"rawBytes":"AQ","validFor":{"start":"2021-13-01T00:00:00Z"}}"#), "invalid RFC 3339 time"),
            (tlog(r#"{"rawBytes":"!"}"#), "field `rawBytes`: invalid base64"),
            (tlog(r#"{"keyDetails":"x"}"#), "missing field `rawBytes`"),
            (tlog(r#"{"rawBytes":7}"#), "base64 text in `rawBytes`"),
            (format!(r#"{{"mediaType":"{MEDIA_TYPE_V01}","tlogs":{{}}}}"#), "invalid type"),
            (r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.9"}"#.to_owned(), "unsupported"),
            (r#"{"tlogs":[]}"#.to_owned(), "missing field `mediaType`"),
            (r#"{"mediaType":"#.to_owned(), "EOF"),
            ("[]".to_owned(), "not a JSON object"),
        ];
        for (json, want) in cases {
            let err = TrustedRoot::parse(json.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(want), "{json}\n  => {err}");
        }
        let ok = TrustedRoot::parse(tlog(r#"{"rawBytes":"AQ"}"#).as_bytes()).unwrap();
        assert!(ok.tlogs[0].public_key.valid_for.is_none());
    }
}
