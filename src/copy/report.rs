//! The copy report: per image what was copied, converted and left behind, and totals. Serialised as one
//! JSON document (`schemas/copy-report.schema.json`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::referrers::{CopiedReferrer, LeftBehind};
use super::transfer::TransferStats;
use crate::model::digest::Digest;
use crate::rewrite::ImageMigration;
use crate::targets::TargetError;

/// The report's `format` value.
pub const REPORT_FORMAT: &str = "att2ref.dev/copy/v1";

/// What happened to one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopyOutcome {
    /// Something was written, and everything the copy needed is in the destination.
    Copied,
    /// The destination already had everything: nothing written.
    AlreadyCopied,
    /// Skipped: the journal records it as copied and the destination still serves it under its tag.
    Resumed,
    /// A legacy attestation did not verify or cannot be converted: nothing written for the image.
    Blocked,
    /// Something could not be read, written or checked.
    Failed,
}

impl CopyOutcome {
    /// The name used in reports and journals.
    pub fn as_str(self) -> &'static str {
        match self {
            CopyOutcome::Copied => "copied",
            CopyOutcome::AlreadyCopied => "already-copied",
            CopyOutcome::Resumed => "resumed",
            CopyOutcome::Blocked => "blocked",
            CopyOutcome::Failed => "failed",
        }
    }
}

/// One image's result.
#[derive(Clone, Debug, Serialize)]
pub struct ImageCopy {
    /// Where it was read (`registry/repo` or `ocidir://path`).
    pub source: String,
    /// Where it was written.
    pub destination: String,
    /// The tag it is copied under (the first, when several; the source's tag for a repository's
    /// listing), or the digest when no tag was named. Resumed runs find it in the journal by this.
    pub reference: String,
    /// The image (an index, with every manifest it lists); absent when it is not known: a tag of the
    /// source that could not be read (or whose destination could not be opened first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<Digest>,
    /// Tags written in the destination.
    pub tags: Vec<String>,
    /// What happened.
    pub outcome: CopyOutcome,
    /// Why, in words.
    pub reasons: Vec<String>,
    /// For `failed`: the error kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// For `failed`: the error kind itself (for exit codes).
    #[serde(skip)]
    pub kind: Option<crate::ErrorKind>,
    /// Images whose attestations were looked for: the image and, for an index, its platform manifests.
    pub subjects: Vec<Digest>,
    /// Manifests and blobs of the image, its referrers and legacy tags.
    pub transfer: TransferStats,
    /// Legacy attestations converted into Sigstore-bundle referrers in the destination, per subject.
    pub converted: Vec<ImageMigration>,
    /// Referrers of the source copied as they are (and those the destination already listed).
    pub referrers: Vec<CopiedReferrer>,
    /// Legacy tags copied as they are (`.sig`, `.sbom`, and `.att` with `--legacy keep|both`).
    pub legacy_tags: Vec<String>,
    /// What was not carried over, and why.
    pub left_behind: Vec<LeftBehind>,
    /// For `resumed`: the referrers the journal recorded for the image, which the settle pass checks
    /// again (the run that wrote them may have stopped before its own).
    #[serde(skip)]
    pub resumed_entries: Vec<IndexEntries>,
}

/// Referrers written for one subject, as the settle pass and the journal take them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct IndexEntries {
    /// The image they refer to.
    pub subject: Digest,
    /// The referrers' manifest digests.
    pub referrers: Vec<Digest>,
}

impl ImageCopy {
    /// A report with the identity filled in, as `failed` until the copy completes.
    pub fn new(source: String, destination: String, reference: String, image: Option<Digest>) -> ImageCopy {
        ImageCopy {
            source,
            destination,
            reference,
            image,
            tags: Vec::new(),
            outcome: CopyOutcome::Failed,
            reasons: Vec::new(),
            error_kind: None,
            kind: None,
            subjects: Vec::new(),
            transfer: TransferStats::default(),
            converted: Vec::new(),
            referrers: Vec::new(),
            legacy_tags: Vec::new(),
            left_behind: Vec::new(),
            resumed_entries: Vec::new(),
        }
    }

    /// The source image as people read it: `source@digest`, or `source:tag` when the image could not be
    /// read (a tag of the source's listing: a named image is known by its digest from the start).
    pub fn source_image(&self) -> String {
        match &self.image {
            Some(image) => format!("{}@{image}", self.source),
            // A tag has no ':'; a digest that did not parse is still shown as one.
            None if self.reference.contains(':') => format!("{}@{}", self.source, self.reference),
            None => format!("{}:{}", self.source, self.reference),
        }
    }

    /// The referrers this copy wrote (not found already listed), by subject: what its settle pass
    /// checks the destination's indexes for.
    pub fn written_entries(&self) -> Vec<IndexEntries> {
        let mut by_subject: Vec<IndexEntries> = Vec::new();
        let mut add = |subject: &Digest, digest: &Digest| match by_subject.iter_mut().find(|e| e.subject == *subject) {
            Some(e) => e.referrers.push(digest.clone()),
            None => by_subject.push(IndexEntries { subject: subject.clone(), referrers: vec![digest.clone()] }),
        };
        for c in self.converted.iter().filter(|c| c.outcome == crate::rewrite::Outcome::Migrated) {
            for referrer in &c.referrers {
                add(&c.image, &referrer.digest);
            }
        }
        for referrer in self.referrers.iter().filter(|x| !x.existed) {
            add(&referrer.subject, &referrer.digest);
        }
        by_subject
    }

    /// Every referrer the image has in the destination from this copy, by subject: those it wrote and
    /// those it found there (converted attestations adopted, the source's referrers already listed).
    /// Other tools' referrers of the destination alone are not among them.
    pub fn destination_entries(&self) -> Vec<IndexEntries> {
        let mut by_subject: Vec<IndexEntries> = Vec::new();
        let mut add = |subject: &Digest, digest: &Digest| match by_subject.iter_mut().find(|e| e.subject == *subject) {
            Some(e) if e.referrers.contains(digest) => {}
            Some(e) => e.referrers.push(digest.clone()),
            None => by_subject.push(IndexEntries { subject: subject.clone(), referrers: vec![digest.clone()] }),
        };
        for c in &self.converted {
            for referrer in &c.referrers {
                add(&c.image, &referrer.digest);
            }
        }
        for referrer in &self.referrers {
            add(&referrer.subject, &referrer.digest);
        }
        by_subject
    }

    /// Mark it failed with `error`.
    pub fn fail(&mut self, error: &crate::Error) {
        self.outcome = CopyOutcome::Failed;
        self.reasons.push(format!("{error:#}"));
        self.error_kind = Some(error.kind().name().to_owned());
        self.kind = Some(error.kind());
    }

    /// Bytes written for this image, conversions included.
    pub fn bytes_written(&self) -> u64 {
        self.transfer.bytes_written + self.converted.iter().map(|c| c.bytes_written).sum::<u64>()
    }

    /// Bytes read for this image, conversions included.
    pub fn bytes_read(&self) -> u64 {
        self.transfer.bytes_read + self.converted.iter().map(|c| c.bytes_read).sum::<u64>()
    }
}

/// Totals over a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CopyTotals {
    /// Images.
    pub images: usize,
    /// Images per outcome.
    pub outcomes: BTreeMap<String, usize>,
    /// Referrers written by converting legacy attestations.
    pub referrers_converted: usize,
    /// Referrers copied as they are (new in the destination).
    pub referrers_copied: usize,
    /// Items left behind.
    pub left_behind: usize,
    /// Blobs streamed, mounted and found present.
    pub blobs_copied: u64,
    /// Blobs mounted.
    pub blobs_mounted: u64,
    /// Blobs the destination had.
    pub blobs_present: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Bytes written.
    pub bytes_written: u64,
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct CopyReport {
    /// [`REPORT_FORMAT`].
    pub format: &'static str,
    /// The source, as given.
    pub source: String,
    /// The destination, as given.
    pub destination: String,
    /// What happened to legacy `.att` tags (`convert`, `keep`, `both`).
    pub legacy: &'static str,
    /// One entry per image.
    pub images: Vec<ImageCopy>,
    /// Sources that could not be resolved or listed.
    pub errors: Vec<TargetError>,
    /// Totals.
    pub totals: CopyTotals,
    /// What the registry client did (absent when no registry was involved).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<crate::report::RequestStats>,
}

impl CopyReport {
    /// An empty report.
    pub fn new(source: String, destination: String, legacy: &'static str) -> CopyReport {
        CopyReport {
            format: REPORT_FORMAT,
            source,
            destination,
            legacy,
            images: Vec::new(),
            errors: Vec::new(),
            totals: CopyTotals::default(),
            requests: None,
        }
    }

    /// Recompute the totals from the images.
    pub fn recount(&mut self) {
        let mut t = CopyTotals::default();
        for i in &self.images {
            t.add(i);
        }
        self.totals = t;
    }
}

impl CopyTotals {
    /// Count one more image (what a streamed report does as images arrive).
    pub fn add(&mut self, i: &ImageCopy) {
        self.images += 1;
        *self.outcomes.entry(i.outcome.as_str().to_owned()).or_default() += 1;
        self.referrers_converted += i.converted.iter().flat_map(|c| &c.referrers).filter(|r| !r.existed).count();
        self.referrers_copied += i.referrers.iter().filter(|r| !r.existed).count();
        self.left_behind += i.left_behind.len();
        self.blobs_copied += i.transfer.blobs_copied;
        self.blobs_mounted += i.transfer.blobs_mounted;
        self.blobs_present += i.transfer.blobs_present;
        self.bytes_read += i.bytes_read();
        self.bytes_written += i.bytes_written();
    }
}
