//! One image's result: outcome and reason, what was written. `migrate`, `copy` and `rollback` reports
//! are built from it.

use serde::Serialize;

use crate::convert::ImagePlan;
use crate::model::digest::Digest;

/// What happened to one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Referrers written and read back verified.
    Migrated,
    /// Every referrer already existed (verified on read-back); nothing written.
    AlreadyMigrated,
    /// `--dry-run`: ready to migrate, nothing written.
    Planned,
    /// The image has no legacy `.att`.
    NothingToMigrate,
    /// The subject manifest is missing: nothing written, never a guessed subject.
    Orphaned,
    /// With an attachments repository apart from the images: a legacy `.att` there whose image the image
    /// repository does not serve. It belongs to another repository (or is the attachments repository's
    /// own image's): not this run's to migrate, and left untouched.
    NotInImageRepository,
    /// A layer did not verify or cannot be converted: nothing written for the image.
    Blocked,
    /// The legacy `.sig` does not verify under the policy (`--allow-signature-switch` to migrate anyway).
    SkippedSignatureSwitch,
    /// Something could not be read, written or checked.
    Failed,
}

impl Outcome {
    /// The name used in reports and journals.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Migrated => "migrated",
            Outcome::AlreadyMigrated => "already-migrated",
            Outcome::Planned => "planned",
            Outcome::NothingToMigrate => "nothing-to-migrate",
            Outcome::Orphaned => "orphaned",
            Outcome::NotInImageRepository => "not-in-image-repository",
            Outcome::Blocked => "blocked",
            Outcome::SkippedSignatureSwitch => "skipped-signature-switch",
            Outcome::Failed => "failed",
        }
    }

    /// True for the outcomes that leave the image in its final migrated state.
    pub fn is_done(self) -> bool {
        matches!(self, Outcome::Migrated | Outcome::AlreadyMigrated)
    }
}

/// One referrer of a migrated (or planned) image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MigratedReferrer {
    /// Manifest digest.
    pub digest: Digest,
    /// Manifest size.
    pub size: u64,
    /// The manifest's `artifactType`.
    pub artifact_type: String,
    /// The signed predicate type.
    pub predicate_type: String,
    /// Legacy layer position it came from.
    pub layer_index: usize,
    /// Whether it was listed among the subject's referrers before this run.
    pub existed: bool,
}

/// One image's result.
#[derive(Clone, Debug, Serialize)]
pub struct ImageMigration {
    /// The repository (`registry/repo` or `ocidir://path`).
    pub repository: String,
    /// The image digest.
    pub image: Digest,
    /// What happened.
    pub outcome: Outcome,
    /// Why, in words (empty when migrated).
    pub reasons: Vec<String>,
    /// For `failed`: the error kind (`not-found`, `network`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// For `failed`: the error kind itself (for exit codes).
    #[serde(skip)]
    pub kind: Option<crate::ErrorKind>,
    /// The legacy `.att` manifest digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_manifest: Option<Digest>,
    /// Legacy attestation layers.
    pub attestations: usize,
    /// Referrers (written, existing or planned).
    pub referrers: Vec<MigratedReferrer>,
    /// Bytes this image's migration read (manifests and blobs, read-back included).
    pub bytes_read: u64,
    /// Bytes uploaded for this image (blobs, manifests, index).
    pub bytes_written: u64,
    /// Write requests that changed something (blob uploads and manifest pushes).
    pub writes: u64,
    /// Index pushes repeated after a lost update.
    pub index_retries: u64,
    /// Existing index entries repaired.
    pub entries_repaired: u64,
    /// The plan, with `--dry-run` (and for blocked images, to show exactly what is blocked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<ImagePlan>,
    /// Referrers an earlier run wrote for an image this run skips on its journal's word: the settle
    /// pass still confirms them (that run may have been stopped before its own settle pass).
    #[serde(skip)]
    pub resumed_referrers: Vec<Digest>,
}

impl ImageMigration {
    /// A report with only the identity and outcome filled in.
    pub fn new(repository: String, image: Digest, outcome: Outcome) -> ImageMigration {
        ImageMigration {
            repository,
            image,
            outcome,
            reasons: Vec::new(),
            error_kind: None,
            kind: None,
            legacy_manifest: None,
            attestations: 0,
            referrers: Vec::new(),
            bytes_read: 0,
            bytes_written: 0,
            writes: 0,
            index_retries: 0,
            entries_repaired: 0,
            plan: None,
            resumed_referrers: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_serialise_as_their_names() {
        for o in [
            Outcome::Migrated,
            Outcome::AlreadyMigrated,
            Outcome::Planned,
            Outcome::NothingToMigrate,
            Outcome::Orphaned,
            Outcome::NotInImageRepository,
            Outcome::Blocked,
            Outcome::SkippedSignatureSwitch,
            Outcome::Failed,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        assert!(Outcome::AlreadyMigrated.is_done() && !Outcome::Planned.is_done());
    }
}
