//! What converting one legacy layer produced, per DSSE signature: a referrer to write, or the typed
//! reason it cannot be written, plus notes on what did not carry over.

use std::fmt;

use serde::Serialize;

use crate::model::digest::Digest;

use super::created::Created;
use super::referrer::NewReferrer;

/// Where a referrer comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerSource {
    /// The legacy `.att` manifest.
    pub legacy_manifest: Digest,
    /// The layer's position in it.
    pub layer_index: usize,
    /// The layer digest.
    pub layer_digest: Digest,
    /// The layer size.
    pub layer_size: u64,
    /// The DSSE signature this outcome is about; `None` for DSSE-format referrers, which keep the whole
    /// envelope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_index: Option<usize>,
    /// How many signatures the envelope has.
    pub signature_count: usize,
}

/// The outcome for one signature (bundle format) or one layer (DSSE format).
#[derive(Clone, Debug)]
pub struct SignatureOutcome {
    /// Where it comes from.
    pub source: LayerSource,
    /// The predicate type of the signed statement.
    pub predicate_type: String,
    /// The creation time written as `org.opencontainers.image.created`, and where it came from.
    pub created: Option<Created>,
    /// The referrer, or why there is none.
    pub result: Conversion,
    /// What did not carry over, or is worth knowing.
    pub notes: Vec<Note>,
}

impl SignatureOutcome {
    /// The referrer, when converted.
    pub fn referrer(&self) -> Option<&NewReferrer> {
        match &self.result {
            Conversion::Converted(r) => Some(r),
            Conversion::Blocked(_) => None,
        }
    }

    /// The blocked reason, when blocked.
    pub fn blocked(&self) -> Option<&BlockedReason> {
        match &self.result {
            Conversion::Converted(_) => None,
            Conversion::Blocked(b) => Some(b),
        }
    }
}

/// A referrer, or why none can be written.
#[derive(Clone, Debug)]
pub enum Conversion {
    /// Ready to write.
    Converted(Box<NewReferrer>),
    /// Not convertible into something current verifiers accept.
    Blocked(BlockedReason),
}

/// Why a verified legacy attestation cannot become a bundle current verifiers accept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BlockedReason {
    /// The signature did not verify (or verification did not cover it); nothing is written for it.
    NotVerified,
    /// The layer's log entry has no inclusion proof: a v0.2+ bundle requires one (FORMATS finding 1),
    /// and the proof must be fetched from Rekor by log index and verified first.
    MissingInclusionProof {
        /// Global log index to fetch.
        log_index: i64,
    },
    /// The log entry is `intoto/0.0.1`, which sigstore-go (and so cosign v3) cannot verify
    /// (FORMATS finding 2).
    IntotoV001Entry {
        /// Global log index of the entry.
        log_index: i64,
    },
    /// The log entry kind is not one a DSSE bundle can carry (`dsse/0.0.1`, `intoto/0.0.2`).
    UnsupportedLogEntryKind {
        /// Body `kind`.
        kind: String,
        /// Body `apiVersion`.
        version: String,
    },
    /// A certificate-signed attestation without a usable log entry: verifiers need a verified signing
    /// time inside the certificate's validity, and the legacy RFC 3161 stamps do not carry over
    /// (FORMATS findings 2–3).
    MissingTransparencyLogEntry,
    /// The log entry lists this signature, but not first; verifiers compare only the entry's first
    /// signature with the bundle's.
    LogEntrySignatureNotFirst {
        /// Position of the signature in the entry.
        position: usize,
    },
}

impl fmt::Display for BlockedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockedReason::NotVerified => f.write_str("the signature did not verify"),
            BlockedReason::MissingInclusionProof { log_index } => write!(
                f,
                "log entry {log_index} has no inclusion proof; v0.3 bundles require one (fetch it from Rekor by log index)"
            ),
            BlockedReason::IntotoV001Entry { log_index } => write!(
                f,
                "log entry {log_index} is intoto/0.0.1, which current Sigstore verifiers cannot verify"
            ),
            BlockedReason::UnsupportedLogEntryKind { kind, version } => {
                write!(f, "log entry kind {kind}/{version} cannot be carried in a DSSE bundle")
            }
            BlockedReason::MissingTransparencyLogEntry => f.write_str(
                "certificate-signed without a log entry: no verifiable signing time (legacy RFC 3161 stamps do not carry over)",
            ),
            BlockedReason::LogEntrySignatureNotFirst { position } => write!(
                f,
                "the log entry lists this signature at position {position}; verifiers only compare the first"
            ),
        }
    }
}

/// Something about a conversion worth reporting that does not block it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Note {
    /// The layer's RFC 3161 timestamp was dropped: it covers the envelope bytes, bundles need one over
    /// the signature (FORMATS finding 3).
    Rfc3161TimestampDropped,
    /// The certificate chain annotation was dropped: v0.3 bundles carry the leaf only; intermediates
    /// and root belong in the verifier's trusted root.
    CertificateChainDropped,
    /// The layer has a legacy log entry that the engine did not pass on as verified, so the bundle
    /// carries no log entry.
    LogEntryNotCarried,
    /// The layer's unsigned `predicateType` annotation differs from the signed statement's; the signed
    /// value is used.
    PredicateTypeAnnotationIgnored {
        /// The annotation's value.
        annotation: String,
    },
    /// The layer's media type is not the DSSE envelope type; its bytes were read as an envelope all the
    /// same (as cosign reads every `.att` layer), and the referrer gets the proper types.
    LayerMediaTypeIgnored {
        /// The layer's media type.
        media_type: String,
    },
    /// The envelope has several signatures; each becomes its own bundle.
    EnvelopeSplit {
        /// How many.
        signatures: usize,
    },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Rfc3161TimestampDropped => {
                f.write_str("RFC 3161 timestamp dropped: it covers the envelope, bundles need one over the signature")
            }
            Note::CertificateChainDropped => f.write_str(
                "certificate chain dropped: v0.3 bundles carry the leaf; the chain belongs in the trusted root",
            ),
            Note::LogEntryNotCarried => f.write_str("the layer's legacy log entry is not carried into the bundle"),
            Note::PredicateTypeAnnotationIgnored { annotation } => {
                write!(f, "unsigned predicateType annotation {annotation:?} ignored; the signed statement's is used")
            }
            Note::EnvelopeSplit { signatures } => {
                write!(f, "envelope with {signatures} signatures: one bundle per signature")
            }
            Note::LayerMediaTypeIgnored { media_type } => write!(
                f,
                "layer media type {media_type:?} is not the DSSE envelope type; read as an envelope by its content, \
                 as cosign does"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_serialise_with_a_code_and_read_well() {
        let r = BlockedReason::MissingInclusionProof { log_index: 7 };
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"code":"missing_inclusion_proof","log_index":7}"#);
        assert!(r.to_string().contains("log entry 7 has no inclusion proof"));
        assert_eq!(serde_json::to_string(&BlockedReason::NotVerified).unwrap(), r#"{"code":"not_verified"}"#);
        let n = Note::PredicateTypeAnnotationIgnored { annotation: "x".into() };
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            r#"{"code":"predicate_type_annotation_ignored","annotation":"x"}"#
        );
        assert!(Note::Rfc3161TimestampDropped.to_string().starts_with("RFC 3161 timestamp dropped"));
    }
}
