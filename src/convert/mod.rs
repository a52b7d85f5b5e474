//! The pure conversion layer of a migration: one legacy `.att` layer plus what verification established
//! about it becomes one OCI 1.1 referrer per DSSE signature (Sigstore bundle v0.3, FORMATS §2.6), or
//! one DSSE referrer reusing the envelope blob. Also the referrers tag-schema index edits and the
//! `--dry-run` plan.
//!
//! Nothing here does I/O: the engine fetches, verifies and writes; this module only decides bytes. Every
//! output is deterministic — the same inputs give byte-identical bundles and manifests — so a re-run
//! produces the same digests and can tell "already migrated" from "new".
//!
//! Inputs ([`input`]) are filled by the engine from verification results: which envelope signatures
//! verified and under which key or certificate, the legacy Rekor entry whose SET was checked, and the
//! inclusion proof fetched from Rekor ([`rekor::RekorEntry`]) and verified. What cannot be converted
//! into a bundle current verifiers accept is reported as a typed [`BlockedReason`], never written.

pub mod created;
pub mod input;
pub mod outcome;
pub mod plan;
pub mod referrer;
pub mod rekor;
mod tlog;

#[cfg(test)]
mod tests;

pub use created::{Created, CreatedSource};
pub use input::{LegacyLayerInput, ReferrerSubject, Verified, VerifiedKey, VerifiedSignature};
pub use outcome::{BlockedReason, Conversion, LayerSource, Note, SignatureOutcome};
pub use plan::{ImagePlan, PlanItem, Verdict};
pub use referrer::{NewBlob, NewReferrer, OutputFormat, WrittenManifest, convert_layer};
pub use rekor::RekorEntry;

/// The annotation keys att2ref writes on the referrers it creates, recording where each came from.
///
/// All start with [`crate::ANNOTATION_PREFIX`].
pub mod annotations {
    /// Digest of the legacy `.att` manifest the attestation was read from.
    pub const LEGACY_MANIFEST: &str = "dev.att2ref.legacy.manifest";
    /// Position (0-based, decimal) of the layer in that manifest.
    pub const LEGACY_LAYER: &str = "dev.att2ref.legacy.layer";
    /// Digest of that layer (the exact DSSE envelope bytes).
    pub const LEGACY_LAYER_DIGEST: &str = "dev.att2ref.legacy.layer.digest";
    /// Position (0-based, decimal) of the DSSE signature this bundle carries; written only when the
    /// envelope had several signatures (a bundle holds exactly one).
    pub const SIGNATURE_INDEX: &str = "dev.att2ref.signature.index";
    /// An UNSIGNED guess at what the predicate holds ([`ContentHint::id`], e.g. `slsa-provenance-v0.2`),
    /// computed from the signed statement at conversion time. It lets a reader choose among referrers of
    /// the same signed predicate type (cosign's `custom` type is used for everything) without downloading
    /// each bundle; it never grants trust: what is chosen is still verified.
    ///
    /// [`ContentHint::id`]: crate::model::predicate::ContentHint::id
    pub const CONTENT_HINT: &str = "dev.att2ref.content.hint";

    /// Every key above.
    pub const ALL: [&str; 5] = [LEGACY_MANIFEST, LEGACY_LAYER, LEGACY_LAYER_DIGEST, SIGNATURE_INDEX, CONTENT_HINT];
}

/// `dev.sigstore.bundle.content` value for DSSE bundles.
pub const CONTENT_DSSE_ENVELOPE: &str = "dsse-envelope";
