//! The migration plan for one image: what would be written (blobs and manifests, with digests and
//! sizes) and what is blocked, as data. `--dry-run` prints it as JSON; a real run executes it.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::model::digest::Digest;
use crate::model::oci::Descriptor;

use super::created::Created;
use super::input::ReferrerSubject;
use super::outcome::{BlockedReason, Conversion, LayerSource, Note, SignatureOutcome};
use super::referrer::OutputFormat;

/// The plan for one image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImagePlan {
    /// The image, as served.
    pub subject: Descriptor,
    /// The referrer format.
    pub format: OutputFormat,
    /// One item per outcome, in legacy order (manifest, layer, signature).
    pub items: Vec<PlanItem>,
    /// Totals over the items.
    pub totals: PlanTotals,
}

/// One planned referrer, or a blocked one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanItem {
    /// Where it comes from.
    pub source: LayerSource,
    /// The signed predicate type.
    pub predicate_type: String,
    /// The creation time the manifest carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<Created>,
    /// What happens.
    pub verdict: Verdict,
    /// Blobs the referrer refers to (empty when blocked).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blobs: Vec<PlannedBlob>,
    /// The referrer manifest (absent when blocked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<PlannedManifest>,
    /// What did not carry over.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
}

/// What happens to one item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Verdict {
    /// The referrer will be written.
    Write,
    /// An identical referrer (same manifest digest) already exists: nothing to do.
    AlreadyPresent,
    /// Cannot be converted.
    Blocked {
        /// Why.
        reason: BlockedReason,
        /// The reason in words.
        message: String,
    },
}

/// A blob of a planned referrer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedBlob {
    /// Its role.
    pub role: BlobRole,
    /// Media type.
    pub media_type: String,
    /// Digest.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// True when the blob already exists (the legacy envelope a DSSE referrer reuses).
    pub existing: bool,
}

/// What a blob is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobRole {
    /// The empty `{}` config.
    Config,
    /// The Sigstore bundle.
    Bundle,
    /// The legacy DSSE envelope.
    Envelope,
}

/// A planned referrer manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedManifest {
    /// Media type.
    pub media_type: String,
    /// Its `artifactType`.
    pub artifact_type: String,
    /// Digest.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
}

/// Totals of a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PlanTotals {
    /// Referrers to write.
    pub write: usize,
    /// Referrers already present.
    pub already_present: usize,
    /// Blocked items.
    pub blocked: usize,
    /// Distinct new blobs to upload for the referrers to write.
    pub new_blobs: usize,
    /// Their total size.
    pub new_blob_bytes: u64,
    /// Total size of the manifests to write.
    pub manifest_bytes: u64,
}

impl PlanItem {
    /// Summarise one conversion outcome (verdict [`Verdict::Write`] when converted).
    pub fn from_outcome(outcome: &SignatureOutcome) -> PlanItem {
        let (verdict, blobs, manifest) = match &outcome.result {
            Conversion::Blocked(reason) => {
                (Verdict::Blocked { reason: reason.clone(), message: reason.to_string() }, Vec::new(), None)
            }
            Conversion::Converted(r) => {
                let role = |d: &Descriptor| match d.media_type.as_str() {
                    crate::model::media_type::OCI_EMPTY => BlobRole::Config,
                    crate::model::media_type::BUNDLE_V03 => BlobRole::Bundle,
                    _ => BlobRole::Envelope,
                };
                let planned = |d: &Descriptor, existing| PlannedBlob {
                    role: role(d),
                    media_type: d.media_type.clone(),
                    digest: d.digest.clone(),
                    size: d.size,
                    existing,
                };
                let blobs = r
                    .blobs
                    .iter()
                    .map(|b| planned(&b.descriptor, false))
                    .chain(r.reused.iter().map(|d| planned(d, true)))
                    .collect();
                let manifest = PlannedManifest {
                    media_type: r.manifest.media_type().to_owned(),
                    artifact_type: r.manifest.manifest.artifact_type.clone().unwrap_or_default(),
                    digest: r.manifest.digest.clone(),
                    size: r.manifest.bytes.len() as u64,
                };
                (Verdict::Write, blobs, Some(manifest))
            }
        };
        PlanItem {
            source: outcome.source.clone(),
            predicate_type: outcome.predicate_type.clone(),
            created: outcome.created.clone(),
            verdict,
            blobs,
            manifest,
            notes: outcome.notes.clone(),
        }
    }
}

impl ImagePlan {
    /// The plan for `outcomes` (all layers of all legacy manifests of one image).
    pub fn new(subject: &ReferrerSubject, format: OutputFormat, outcomes: &[SignatureOutcome]) -> ImagePlan {
        let items = outcomes.iter().map(PlanItem::from_outcome).collect();
        let mut plan =
            ImagePlan { subject: subject.descriptor().clone(), format, items, totals: PlanTotals::default() };
        plan.recount();
        plan
    }

    /// Mark the items whose manifest digest is in `present` (found among the existing referrers) as
    /// [`Verdict::AlreadyPresent`].
    pub fn mark_present(&mut self, present: &BTreeSet<Digest>) {
        for item in &mut self.items {
            if item.verdict == Verdict::Write && item.manifest.as_ref().is_some_and(|m| present.contains(&m.digest)) {
                item.verdict = Verdict::AlreadyPresent;
            }
        }
        self.recount();
    }

    fn recount(&mut self) {
        let mut totals = PlanTotals::default();
        let mut seen = BTreeSet::new();
        for item in &self.items {
            match item.verdict {
                Verdict::Write => totals.write += 1,
                Verdict::AlreadyPresent => totals.already_present += 1,
                Verdict::Blocked { .. } => totals.blocked += 1,
            }
            if item.verdict != Verdict::Write {
                continue;
            }
            totals.manifest_bytes += item.manifest.as_ref().map_or(0, |m| m.size);
            for b in item.blobs.iter().filter(|b| !b.existing) {
                if seen.insert(b.digest.clone()) {
                    totals.new_blobs += 1;
                    totals.new_blob_bytes += b.size;
                }
            }
        }
        self.totals = totals;
    }

    /// Pretty JSON for `--dry-run`.
    pub fn to_json(&self) -> Vec<u8> {
        // Every field is a string, integer, or a map with string keys: serialising cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}
