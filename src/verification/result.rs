//! The typed outcome of a successful verification: who signed, what was checked, and what was not.

use super::cert::San;
use super::entity::EntityKind;
use super::keys::{KeyAlgorithm, RsaPadding, SignatureScheme};
use super::tlog::LogEntryCheck;
use super::tsa::VerifiedTimestamp;

/// Who made the signature.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum Signer {
    /// A trusted public key.
    Key {
        /// cosign key id: std-base64(SHA-256(SPKI DER)).
        key_id: String,
    },
    /// A certificate chaining to a trusted CA, matching a policy identity.
    Certificate {
        /// The SAN that matched the policy.
        identity: String,
        /// Every SAN of the certificate.
        sans: Vec<San>,
        /// The Fulcio OIDC issuer.
        issuer: String,
        /// The certificate authority the chain ended at (trusted-root URI or name).
        authority: String,
        /// SHA-256 (hex) of the DER certificate.
        certificate_sha256: String,
    },
}

/// What the log check established.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum LogCheck {
    /// The policy skipped the log (`insecure_ignore_tlog`): nothing about the log was checked.
    Skipped,
    /// Every log entry verified.
    Verified {
        /// One record per entry.
        entries: Vec<LogEntryCheck>,
    },
}

impl LogCheck {
    /// Whether a log entry was verified.
    pub fn is_verified(&self) -> bool {
        matches!(self, LogCheck::Verified { .. })
    }
}

/// What became of the RFC 3161 timestamps an attestation carries.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum TimestampCheck {
    /// The attestation carries no timestamps.
    None,
    /// Timestamps are present but were **not** checked, because the trusted root has no timestamp
    /// authorities (or no trusted root was given); they never count as verified time.
    NotChecked {
        /// How many.
        count: usize,
    },
    /// Every timestamp verified against a timestamp authority of the trusted root.
    Verified {
        /// One record per timestamp, in the order the attestation carries them.
        stamps: Vec<VerifiedTimestamp>,
    },
}

/// Where the subject binding held.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectMatch {
    /// The matching in-toto subject's name, or the simple-signing `docker-reference`.
    pub name: String,
    /// The image digest it matched (`sha256:…`).
    pub digest: String,
}

/// A verified attestation or signature.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// Which adapter the entity came through.
    pub entity: EntityKind,
    /// Who signed.
    pub signer: Signer,
    /// Index of the DSSE signature that verified (0 for message signatures).
    pub signature_index: usize,
    /// Algorithm and RSA padding of the signature that verified.
    pub scheme: SignatureScheme,
    /// The subject binding.
    pub subject: SubjectMatch,
    /// The in-toto predicate type (signed value), for DSSE content.
    pub predicate_type: Option<String>,
    /// The log check.
    pub log: LogCheck,
    /// The time certificates were checked at (Unix seconds): the log's integrated time, else the earliest
    /// verified RFC 3161 genTime, else the verification time when the log was skipped. `None` for
    /// key-signed content.
    pub verified_time: Option<i64>,
    /// RFC 3161 timestamps.
    pub timestamps: TimestampCheck,
}

impl Verification {
    /// The RSA padding that matched, for RSA signatures.
    pub fn rsa_padding(&self) -> Option<RsaPadding> {
        self.scheme.rsa_padding
    }

    /// The key id, for key-signed content.
    pub fn key_id(&self) -> Option<&str> {
        match &self.signer {
            Signer::Key { key_id } => Some(key_id),
            Signer::Certificate { .. } => None,
        }
    }

    /// The key algorithm of the signature.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.scheme.algorithm
    }
}
