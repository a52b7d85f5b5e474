//! The status report: every image with its state, counts per repository and in total (one JSON document,
//! `schemas/status-report.schema.json`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::ImageStatus;
use super::batch::UnitStatus;
use super::state::ImageState;
use crate::targets::TargetError;

/// The report's `format` value.
pub const REPORT_FORMAT: &str = "att2ref.dev/status/v1";

/// Images per state, and what a consumer of one attestation downloads summed over them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    /// Images.
    pub images: usize,
    /// Images per state (every state present, zeros included).
    pub states: BTreeMap<String, usize>,
    /// Sum over the images with a legacy `.att` of what a consumer of one attestation downloads from it.
    pub legacy_bytes: u64,
    /// Sum over the images with attestation referrers of the smallest referrer (manifest and bundle).
    pub referrer_bytes: u64,
}

impl Counts {
    fn with_every_state() -> Counts {
        Counts { states: ImageState::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect(), ..Counts::default() }
    }

    fn add(&mut self, image: &ImageStatus) {
        self.images += 1;
        *self.states.entry(image.state.as_str().to_owned()).or_default() += 1;
        self.legacy_bytes += image.bytes.legacy.unwrap_or(0);
        self.referrer_bytes += image.bytes.referrer_smallest.unwrap_or(0);
    }
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    /// [`REPORT_FORMAT`].
    pub format: &'static str,
    /// The targets, as given.
    pub targets: Vec<String>,
    /// Every image, grouped by repository.
    pub images: Vec<ImageStatus>,
    /// Counts per repository, by repository name.
    pub repositories: BTreeMap<String, Counts>,
    /// Counts over everything.
    pub totals: Counts,
    /// Targets, repositories and images that could not be read.
    pub errors: Vec<TargetError>,
    /// With an attachments repository shared by several repositories of the run: the images with
    /// attachments there that no repository of the run tags or names. Left alone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unclaimed_attachments: Vec<crate::store::attachments::UnclaimedImage>,
}

impl StatusReport {
    /// The report for `units` (a batch's reports) and the batch's `errors`.
    pub fn new(targets: Vec<String>, units: Vec<UnitStatus>, mut errors: Vec<TargetError>) -> StatusReport {
        let mut report = StatusReport {
            format: REPORT_FORMAT,
            targets,
            images: Vec::new(),
            repositories: BTreeMap::new(),
            totals: Counts::with_every_state(),
            errors: Vec::new(),
            unclaimed_attachments: Vec::new(),
        };
        for unit in units {
            let images = report.add(unit);
            report.images.extend(images);
        }
        errors.append(&mut report.errors);
        report.errors = errors;
        report
    }

    /// Count one unit in (its repository's counts, the totals, its error) and hand back its images,
    /// which are not kept: what a streamed report does as units arrive.
    pub fn add(&mut self, unit: UnitStatus) -> Vec<ImageStatus> {
        let counts = self.repositories.entry(unit.repository.clone()).or_insert_with(Counts::with_every_state);
        for image in &unit.images {
            counts.add(image);
            self.totals.add(image);
        }
        self.errors.extend(unit.error);
        unit.images
    }
}
