//! The rollback report (`schemas/rollback-report.schema.json`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::digest::Digest;
use crate::targets::TargetError;

/// The report's `format` value.
pub const REPORT_FORMAT: &str = "att2ref.dev/rollback/v1";

/// What happened to one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackOutcome {
    /// Dry run: these referrers would be removed.
    Planned,
    /// Removed.
    RolledBack,
    /// No referrer att2ref wrote is listed.
    NothingToRollBack,
    /// att2ref's referrers are there, but none may be removed (see each one's reason).
    Kept,
    /// Something could not be read or written.
    Failed,
}

impl RollbackOutcome {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RollbackOutcome::Planned => "planned",
            RollbackOutcome::RolledBack => "rolled-back",
            RollbackOutcome::NothingToRollBack => "nothing-to-roll-back",
            RollbackOutcome::Kept => "kept",
            RollbackOutcome::Failed => "failed",
        }
    }
}

/// A referrer left in place, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeptReferrer {
    /// Its manifest digest.
    pub digest: Digest,
    /// Why it stays.
    pub reason: String,
}

/// One image's result.
#[derive(Clone, Debug, Serialize)]
pub struct ImageRollback {
    /// The repository.
    pub repository: String,
    /// The image.
    pub image: Digest,
    /// What happened.
    pub outcome: RollbackOutcome,
    /// Why, for `failed`.
    pub reasons: Vec<String>,
    /// For `failed`: the error kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// Referrers that would be removed (dry run).
    pub planned: Vec<Digest>,
    /// Referrers removed.
    pub removed: Vec<Digest>,
    /// Referrers kept, with the reason.
    pub kept: Vec<KeptReferrer>,
    /// Whether the image's tag-schema index, left empty, was deleted.
    pub index_removed: bool,
}

impl ImageRollback {
    /// An empty result for `image`.
    pub fn new(repository: String, image: Digest) -> ImageRollback {
        ImageRollback {
            repository,
            image,
            outcome: RollbackOutcome::NothingToRollBack,
            reasons: Vec::new(),
            error_kind: None,
            planned: Vec::new(),
            removed: Vec::new(),
            kept: Vec::new(),
            index_removed: false,
        }
    }

    pub(crate) fn keep(&mut self, digest: &Digest, reason: &str) {
        self.kept.push(KeptReferrer { digest: digest.clone(), reason: reason.to_owned() });
    }

    /// Mark it failed with `error`.
    pub fn fail(&mut self, error: &crate::Error) {
        self.outcome = RollbackOutcome::Failed;
        self.reasons.push(format!("{error:#}"));
        self.error_kind = Some(error.kind().name().to_owned());
    }
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct RollbackReport {
    /// [`REPORT_FORMAT`].
    pub format: &'static str,
    /// The targets, as given.
    pub targets: Vec<String>,
    /// Whether removals were made.
    pub apply: bool,
    /// One entry per image.
    pub images: Vec<ImageRollback>,
    /// Images per outcome.
    pub outcomes: BTreeMap<String, usize>,
    /// Referrers removed (or planned), and kept.
    pub referrers_removed: usize,
    /// Referrers kept.
    pub referrers_kept: usize,
    /// Targets that could not be resolved or listed.
    pub errors: Vec<TargetError>,
    /// With an attachments repository shared by several repositories of the run: the images with
    /// attachments there that no repository of the run tags or names. Left alone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unclaimed_attachments: Vec<crate::store::attachments::UnclaimedImage>,
}

impl RollbackReport {
    /// The report for `images` and the batch's `errors`.
    pub fn new(
        targets: Vec<String>,
        apply: bool,
        images: Vec<ImageRollback>,
        errors: Vec<TargetError>,
    ) -> RollbackReport {
        let mut report = RollbackReport {
            format: REPORT_FORMAT,
            targets,
            apply,
            images: Vec::new(),
            outcomes: BTreeMap::new(),
            referrers_removed: 0,
            referrers_kept: 0,
            errors,
            unclaimed_attachments: Vec::new(),
        };
        for i in &images {
            report.count(i);
        }
        report.images = images;
        report
    }

    /// Count one more image in the totals, without keeping it (what a streamed report does as images
    /// arrive).
    pub fn count(&mut self, i: &ImageRollback) {
        *self.outcomes.entry(i.outcome.as_str().to_owned()).or_default() += 1;
        self.referrers_removed += i.removed.len() + i.planned.len();
        self.referrers_kept += i.kept.len();
    }
}
