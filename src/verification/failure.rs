//! Typed verification failures.
//!
//! Every failure names one [`FailureReason`] plus a message with the specifics. The reason decides
//! whether the attestation was *checked and rejected* ([`ErrorKind::VerificationFailed`]) or *could not be
//! checked* because the input is malformed or unsupported ([`ErrorKind::InvalidFormat`] /
//! [`ErrorKind::Unsupported`]), so callers (and the CLI's exit codes) can tell the two apart.

use std::fmt;

use crate::error::{Error, ErrorKind};

/// Why an attestation did not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FailureReason {
    /// A signature does not verify under the key or certificate that should have made it (includes a
    /// payload changed after signing).
    SignatureInvalid,
    /// The attestation names a key (bundle hint, log entry key) that is not among the trusted keys, or it
    /// carries no certificate and the policy has no keys.
    UnknownKey,
    /// No statement subject (or simple-signing digest) equals the image digest.
    SubjectMismatch,
    /// The signing certificate was not valid at the log's integrated time.
    CertificateExpired,
    /// The certificate does not chain to a certificate authority of the trusted root valid at signing time.
    UntrustedChain,
    /// The certificate lacks the code-signing extended key usage or is otherwise unfit for signing.
    CertificateUnusable,
    /// No certificate identity (SAN) matches the policy.
    IdentityMismatch,
    /// The certificate's OIDC issuer does not match the policy.
    IssuerMismatch,
    /// A certificate-signed attestation was given to a policy without any identity to match.
    NoIdentityPolicy,
    /// The log entry names a log that is not in the trusted root (or not valid at that time).
    UnknownLog,
    /// The signed entry timestamp does not verify under the log key.
    SetInvalid,
    /// The log entry body does not describe this attestation (hash, signature or key differ).
    BodyMismatch,
    /// A bundle of v0.2 or later has a log entry without an inclusion proof.
    MissingInclusionProof,
    /// The inclusion proof or its checkpoint does not verify.
    InclusionProofInvalid,
    /// The log entry has neither a promise nor a proof usable here.
    MissingInclusionPromise,
    /// There is no log entry and the policy does not allow skipping the log.
    NoLogEntry,
    /// A certificate-signed attestation has no verified time (no usable log entry or timestamp) to check it
    /// at.
    NoTrustedTime,
    /// An RFC 3161 timestamp did not verify against the trusted root's timestamp authorities (not granted,
    /// altered, unknown or untrusted TSA, outside the TSA's validity, or an imprint over other data).
    TimestampInvalid,
    /// The input could not be parsed (bad JSON, base64, DER, PEM, missing fields).
    Malformed,
    /// The input uses something this verifier does not support (log entry kind, key type, …).
    Unsupported,
}

impl FailureReason {
    /// The error kind this reason maps to: checked-and-rejected versus could-not-check.
    pub fn kind(self) -> ErrorKind {
        match self {
            FailureReason::Malformed => ErrorKind::InvalidFormat,
            FailureReason::Unsupported => ErrorKind::Unsupported,
            _ => ErrorKind::VerificationFailed,
        }
    }

    /// A short stable name (snake case), e.g. for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::SignatureInvalid => "signature-invalid",
            FailureReason::UnknownKey => "unknown-key",
            FailureReason::SubjectMismatch => "subject-mismatch",
            FailureReason::CertificateExpired => "certificate-expired",
            FailureReason::UntrustedChain => "untrusted-chain",
            FailureReason::CertificateUnusable => "certificate-unusable",
            FailureReason::IdentityMismatch => "identity-mismatch",
            FailureReason::IssuerMismatch => "issuer-mismatch",
            FailureReason::NoIdentityPolicy => "no-identity-policy",
            FailureReason::UnknownLog => "unknown-log",
            FailureReason::SetInvalid => "set-invalid",
            FailureReason::BodyMismatch => "body-mismatch",
            FailureReason::MissingInclusionProof => "missing-inclusion-proof",
            FailureReason::InclusionProofInvalid => "inclusion-proof-invalid",
            FailureReason::MissingInclusionPromise => "missing-inclusion-promise",
            FailureReason::NoLogEntry => "no-log-entry",
            FailureReason::NoTrustedTime => "no-trusted-time",
            FailureReason::TimestampInvalid => "timestamp-invalid",
            FailureReason::Malformed => "malformed",
            FailureReason::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed verification: the reason and what exactly was wrong.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// The typed reason.
    pub reason: FailureReason,
    /// Human message naming what failed and why.
    pub message: String,
}

impl Failure {
    /// A failure with `reason` and `message`.
    pub fn new(reason: FailureReason, message: impl Into<String>) -> Failure {
        Failure { reason, message: message.into() }
    }

    /// [`FailureReason::kind`] of the reason.
    pub fn kind(&self) -> ErrorKind {
        self.reason.kind()
    }

    /// Prefix the message with what was being checked.
    pub fn context(mut self, what: impl fmt::Display) -> Failure {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.reason)
    }
}

impl std::error::Error for Failure {}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        Error::new(f.kind(), f.to_string())
    }
}

/// Input errors from the model layer become `Malformed` (or `Unsupported`) failures, keeping the message.
impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let reason = match e.kind() {
            ErrorKind::Unsupported => FailureReason::Unsupported,
            ErrorKind::VerificationFailed => FailureReason::SignatureInvalid,
            _ => FailureReason::Malformed,
        };
        Failure::new(reason, format!("{e:#}"))
    }
}

/// Shorthand for `Err(Failure::new(..))`.
pub(crate) fn fail<T>(reason: FailureReason, message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::new(reason, message))
}
