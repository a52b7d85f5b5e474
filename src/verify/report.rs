//! The verification report: `att2ref verify -o json` (`schemas/verify.schema.json`).

use serde::Serialize;

use crate::model::digest::Digest;
use crate::report::{ImageError, SubjectInfo};
use crate::verification::{FailureReason, Verification};

/// Version of the JSON report format.
pub const REPORT_FORMAT: &str = "att2ref.dev/verify/v1";

/// Everything `verify` checked for one target.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// Always [`REPORT_FORMAT`].
    pub format: &'static str,
    /// The target as given.
    pub target: String,
    /// What the policy trusts.
    pub policy: PolicySummary,
    /// One entry per image.
    pub images: Vec<ImageVerification>,
    /// Images that could not be checked (network, auth, malformed manifests…).
    pub errors: Vec<ImageError>,
    /// The repository the attachments (legacy tags, referrers) were read from and written to, when not the
    /// images' own (`--attachments-repository`, cosign's `COSIGN_REPOSITORY`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments_repository: Option<String>,
}

impl VerifyReport {
    /// Attestations checked, over all images.
    pub fn checked(&self) -> usize {
        self.images.iter().map(|i| i.results.len()).sum()
    }

    /// Attestations that failed, over all images.
    pub fn failed(&self) -> usize {
        self.images.iter().map(|i| i.failed()).sum()
    }
}

/// The trust the report was made with.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySummary {
    /// Key ids (std-base64 SHA-256 of SPKI) of the trusted keys.
    pub keys: Vec<String>,
    /// Whether a Sigstore trusted root was given.
    pub trusted_root: bool,
    /// Identity/issuer requirements, as given.
    pub identities: Vec<String>,
    /// True when `--insecure-ignore-tlog` skipped the transparency log.
    pub insecure_ignore_tlog: bool,
    /// The `--type` filter, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
}

/// The results for one image.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageVerification {
    /// `registry/repo@digest`.
    pub reference: String,
    /// The image digest.
    pub digest: Digest,
    /// Whether the registry serves the image manifest itself (as in `inspect`). When `present` is false,
    /// what was verified is attached to a digest that is gone (orphaned); `kind` is never set here.
    pub subject: SubjectInfo,
    /// One result per attestation or signature checked.
    pub results: Vec<AttestationResult>,
    /// Content that was found but is not checked, with why (e.g. other predicate types with `--type`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

impl ImageVerification {
    /// How many results failed.
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| !r.verified).count()
    }
}

/// Where an attestation lives.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// `legacy-attestation`, `legacy-signature` or `referrer`.
    pub source: String,
    /// Manifest digest (the legacy manifest or the referrer).
    pub manifest: Digest,
    /// Legacy tag, for legacy content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Layer position, for legacy content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    /// Digest of the blob that holds the signed content.
    pub blob: Digest,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.tag, self.layer) {
            (Some(tag), Some(layer)) => {
                let suffix = tag.rsplit('.').next().unwrap_or("");
                write!(f, ".{suffix} layer {layer}")
            }
            _ => write!(f, "referrer {}", self.manifest.short()),
        }
    }
}

/// The result for one attestation or signature.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestationResult {
    /// Where it is.
    pub location: Location,
    /// Predicate type from the signed statement (absent for `.sig`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    /// Whether it verified.
    pub verified: bool,
    /// What was established, when it verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// Why not, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureInfo>,
}

/// A verification failure.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureInfo {
    /// Typed reason.
    pub reason: FailureReason,
    /// What exactly was wrong.
    pub message: String,
}

/// Something found but not checked.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// Where it is.
    pub location: Location,
    /// Why it was not checked.
    pub reason: String,
}
