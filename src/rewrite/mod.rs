//! Rewriting one image's legacy attestations as referrers: the per-image pipeline under `migrate` (in
//! place), `copy` (into another store) and `rollback` (which plans exactly what a migration wrote, to
//! find it again).
//!
//! [`prepare_image`] reads, verifies and converts without writing ([`plan`]); [`complete_image`] uploads
//! blobs and manifests and updates the referrers tag-schema index where the registry has no referrers API
//! ([`write`](mod@write)), then [`readback`] checks the result the way a consumer finds it (by default
//! without downloading the bundles again: see [`ReadBack`]); only then is the image `migrated`.
//! [`migrate_image`] is both halves. [`report`] holds the per-image outcome, [`rekor`] fetches and
//! verifies inclusion proofs. Within an image, requests that do not depend on each other run
//! concurrently (round trips, not bytes, bound a migration's time), and the CPU-bound work — decoding,
//! verifying, converting — runs on rayon's pool, one task per core, so the number of images in flight
//! bounds the requests without multiplying the multi-megabyte transient copies of large payloads.
//!
//! Traffic is the minimum: each legacy blob is read once, each bundle written once, and the default
//! read-back ([`ReadBack::Digest`]) confirms the written blobs by `HEAD` instead of downloading them again
//! (their exact bytes were verified before upload). Nothing is deleted here.
//!
//! Everything is deterministic: the same input gives byte-identical bundles and manifests, so a rerun
//! finds them all present and writes nothing, and a partial earlier run is completed. Legacy data is
//! never modified or deleted.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use att2ref::rewrite::{MigrateOptions, Outcome, migrate_image};
//! use att2ref::store::{Repository, layout::LayoutRepository};
//! use att2ref::verification::{Policy, PublicKey, Verifier};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> att2ref::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let scenario = att2ref::demo::demo()?; // a cosign 1.x store: one .att with an SBOM and a SLSA provenance
//! let repo = LayoutRepository::create(dir.path(), att2ref::Limits::default())?;
//! scenario.repo.push_to(&repo).await?;
//!
//! let key = PublicKey::from_pem(att2ref::demo::TestKey::Rsa4096.public_pem().as_bytes())?; // TEST-ONLY key
//! let verifier = Arc::new(Verifier::new(Policy::new().with_key(key).insecure_ignore_tlog(true))?);
//! let report = migrate_image(&repo, &scenario.image, &verifier, &MigrateOptions::default()).await?;
//! assert_eq!(report.outcome, Outcome::Migrated);
//! // One referrer per attestation, found the way any consumer finds them.
//! assert_eq!(repo.referrers(&scenario.image, None).await?.descriptors.len(), 2);
//! // Deterministic: a second run writes nothing.
//! let again = migrate_image(&repo, &scenario.image, &verifier, &MigrateOptions::default()).await?;
//! assert_eq!(again.outcome, Outcome::AlreadyMigrated);
//! # Ok(())
//! # }
//! ```

mod cpu;
mod equivalent;
mod gather;
pub mod plan;
pub mod readback;
pub mod rekor;
pub mod report;
pub mod write;

use std::sync::Arc;

use crate::convert::OutputFormat;
use crate::error::Result;
use crate::limits::Limits;
use crate::model::digest::Digest;
use crate::store::{Repository, tag_schema};
use crate::verification::Verifier;

pub use readback::ReadBack;
pub use rekor::RekorClient;
pub use report::{ImageMigration, MigratedReferrer, Outcome};

/// How to migrate.
#[derive(Clone, Debug)]
pub struct MigrateOptions {
    /// Referrer format.
    pub format: OutputFormat,
    /// Caps for everything read.
    pub limits: Limits,
    /// Migrate images whose legacy `.sig` does not verify under the policy.
    pub allow_signature_switch: bool,
    /// Also fill missing `artifactType`/annotations of other tools' tag-schema index entries
    /// (cosign#5098); att2ref's own are always filled in when found without them.
    pub repair_index: bool,
    /// Plan only: write nothing.
    pub dry_run: bool,
    /// Where to fetch inclusion proofs for logged entries.
    pub rekor: Option<RekorClient>,
    /// Images migrated at once.
    pub jobs: usize,
    /// Read-back-and-merge rounds for the tag-schema index after a lost update.
    pub index_retries: u32,
    /// How much of what was written is read back before an image counts as migrated.
    pub readback: ReadBack,
    /// How long read-back waits for the registry's listing to show referrers it accepted (see
    /// [`DEFAULT_LISTING_WAIT`]). Only a lagging listing costs any of it.
    pub listing_wait: std::time::Duration,
}

/// Default of [`MigrateOptions::listing_wait`]: longer than the 60 s Quay kept a referrers listing cached
/// (quay#6510), so a migration there succeeds on its first run.
pub const DEFAULT_LISTING_WAIT: std::time::Duration = std::time::Duration::from_secs(75);

impl Default for MigrateOptions {
    fn default() -> MigrateOptions {
        MigrateOptions {
            format: OutputFormat::Bundle,
            limits: Limits::default(),
            allow_signature_switch: false,
            repair_index: false,
            dry_run: false,
            rekor: None,
            jobs: 4,
            index_retries: 8,
            readback: ReadBack::default(),
            listing_wait: DEFAULT_LISTING_WAIT,
        }
    }
}

impl MigrateOptions {
    /// A digest of the settings that decide what "migrated" means for an image: the referrer format,
    /// the verification policy ([`crate::verification::Policy::fingerprint`]), `.sig` switching, the
    /// read-back and index repair. migrate's journal records it with each image and skips an image on
    /// resume only under the same settings, so a rerun with another format or policy does the work.
    pub fn settings_fingerprint(&self, verifier: &Verifier) -> String {
        let text = format!(
            "format {:?}\npolicy {}\nallow-signature-switch {}\nreadback {:?}\nrepair-index {}\n",
            self.format,
            verifier.policy().fingerprint(),
            self.allow_signature_switch,
            self.readback,
            self.repair_index
        );
        Digest::sha256(text.as_bytes()).to_string()
    }
}

/// Migrate one image: plan, write, read back. Errors are for what could not be read, written or
/// checked; decisions about the data are outcomes in the report.
pub async fn migrate_image<R: Repository>(
    repo: &R,
    image: &Digest,
    verifier: &Arc<Verifier>,
    options: &MigrateOptions,
) -> Result<ImageMigration> {
    let prepared = prepare_image(repo, image, verifier, options).await?;
    complete_image(repo, prepared, verifier, options).await
}

/// An image whose legacy attestations are read, verified and converted, nothing written yet (see
/// [`prepare_image`]).
#[derive(Debug)]
pub struct PreparedImage {
    /// The report so far: `planned` when ready to write, else the outcome it stops at.
    pub report: ImageMigration,
    pending: Vec<plan::Pending>,
}

impl PreparedImage {
    /// The signed predicate type of each referrer to write, in order.
    pub fn predicate_types(&self) -> impl Iterator<Item = &str> {
        self.pending.iter().map(|p| p.predicate_type.as_str())
    }

    /// Blobs of the legacy layout that the referrers reuse instead of carrying their own copy (the
    /// envelope of a DSSE-format referrer): a store that is not the legacy one must be given them first.
    pub fn reused_blobs(&self) -> Vec<crate::model::oci::Descriptor> {
        let mut blobs: Vec<crate::model::oci::Descriptor> = Vec::new();
        for r in self.pending.iter().flat_map(|p| &p.referrer.reused) {
            if !blobs.iter().any(|b| b.digest == r.digest) {
                blobs.push(r.clone());
            }
        }
        blobs
    }

    /// Take, in place of each referrer still to write, an equivalent one that the subject lists in `repo`
    /// now (the same attestation converted earlier, under another inclusion proof or from an earlier
    /// revision of the `.att`), verified under the policy as a bundle to be written is. For a caller that
    /// has stored referrers since planning: `copy` copies the source's own first, and when the source was
    /// migrated before, writing the conversion as well would list each attestation twice.
    pub async fn adopt_listed<R: Repository>(&mut self, repo: &R, verifier: &Verifier, limits: &Limits) -> Result<()> {
        let image = self.report.image.clone();
        for (planned, i) in plan::adopt_listed_now(repo, verifier, &image, &mut self.pending, limits).await? {
            if let Some(r) = self.report.referrers.iter_mut().find(|r| r.digest == planned) {
                let adopted = &self.pending[i].referrer.manifest;
                r.size = adopted.bytes.len() as u64;
                r.digest = adopted.digest.clone();
                r.existed = true;
            }
        }
        Ok(())
    }

    /// Keep only the referrers whose signed predicate type satisfies `keep`; returns how many were left
    /// out. (Attestations chosen this way are no longer all-or-nothing per image: for callers that
    /// write to a store without the image's other legacy attestations, like `copy --type`.)
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) -> usize {
        let before = self.pending.len();
        self.pending.retain(|p| keep(&p.predicate_type));
        let digests: Vec<Digest> = self.pending.iter().map(|p| p.referrer.manifest.digest.clone()).collect();
        self.report.referrers.retain(|r| digests.contains(&r.digest));
        before - self.pending.len()
    }
}

/// The first half of [`migrate_image`]: read, verify and convert, writing nothing. When the report's
/// outcome is [`Outcome::Planned`] (and not a dry run), [`complete_image`] writes and reads back.
pub async fn prepare_image<R: Repository>(
    repo: &R,
    image: &Digest,
    verifier: &Arc<Verifier>,
    options: &MigrateOptions,
) -> Result<PreparedImage> {
    let prepared = plan::plan_image(repo, image, verifier, options).await?;
    let mut report = ImageMigration::new(repo.name(), image.clone(), prepared.outcome);
    report.reasons = prepared.reasons;
    report.legacy_manifest = prepared.legacy_att;
    report.attestations = prepared.attestations;
    report.bytes_read = prepared.bytes_read;
    report.referrers = prepared
        .pending
        .iter()
        .map(|p| MigratedReferrer {
            digest: p.referrer.manifest.digest.clone(),
            size: p.referrer.manifest.bytes.len() as u64,
            artifact_type: p.referrer.manifest.manifest.artifact_type.clone().unwrap_or_default(),
            predicate_type: p.predicate_type.clone(),
            layer_index: p
                .referrer
                .manifest
                .manifest
                .annotations
                .get(crate::convert::annotations::LEGACY_LAYER)
                .and_then(|v| v.parse().ok())
                .unwrap_or_default(),
            existed: p.listed,
        })
        .collect();
    let keep_plan = options.dry_run || prepared.outcome == Outcome::Blocked;
    report.plan = prepared.plan.filter(|_| keep_plan);
    Ok(PreparedImage { report, pending: prepared.pending })
}

/// The second half of [`migrate_image`]: write what [`prepare_image`] planned and read it back. A report
/// that is not `planned`, or a dry run, is returned as it is.
pub async fn complete_image<R: Repository>(
    repo: &R,
    prepared: PreparedImage,
    verifier: &Arc<Verifier>,
    options: &MigrateOptions,
) -> Result<ImageMigration> {
    let PreparedImage { mut report, pending } = prepared;
    if report.outcome != Outcome::Planned || options.dry_run {
        return Ok(report);
    }
    let image = report.image.clone();
    let all_listed = pending.iter().all(|p| p.listed);
    // An entry of ours that lost its artifact type is filled in by the index update.
    let repair = options.repair_index || pending.iter().any(|p| p.degraded);
    // Planning has just listed them all, or the index update's own read lists them: either way the
    // consumer's discovery path was read after the last write.
    let mut seen = readback::Seen { listing: all_listed && !repair, blobs: false };
    if seen.listing {
        // Nothing to write, unless a listed referrer or one of its blobs is gone or damaged: then this run
        // writes it again rather than report the image migrated (or fail its read-back forever).
        seen.blobs = readback::listed_intact(repo, &pending).await?;
    }
    if !seen.listing || !seen.blobs {
        let stats = write::write_image(
            repo,
            &image,
            &pending,
            tag_schema::IndexOptions { repair: options.repair_index, max_retries: options.index_retries },
        )
        .await?;
        report.bytes_written = stats.bytes_written;
        report.writes = stats.blobs_written + stats.manifests_written;
        report.index_retries = stats.index_retries;
        report.entries_repaired = stats.entries_repaired;
        seen = readback::Seen { listing: stats.index_confirmed, blobs: false };
    }
    report.bytes_read += readback::read_back(
        repo,
        &image,
        &pending,
        verifier,
        &options.limits,
        options.readback,
        seen,
        options.listing_wait,
    )
    .await?;
    report.outcome = if report.writes == 0 { Outcome::AlreadyMigrated } else { Outcome::Migrated };
    Ok(report)
}
