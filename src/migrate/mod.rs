//! `migrate`: each image's legacy `.att` becomes one verified Sigstore-bundle referrer per attestation
//! (or one DSSE referrer per layer), safely.
//!
//! Per image: [`plan`] reads, verifies and converts without writing; [`write`](mod@write) uploads blobs and
//! manifests and updates the referrers tag-schema index where the registry has no referrers API;
//! [`readback`] checks the result the way a consumer finds it (by default without downloading the
//! bundles again: see [`ReadBack`]); only then is the image `migrated`.
//! [`report`] holds the outcomes, [`journal`] lets an interrupted run resume, [`rekor`] fetches and
//! verifies inclusion proofs. Images run with bounded concurrency ([`MigrateOptions::jobs`]); each holds
//! only its own envelopes in memory. Within an image, requests that do not depend on each other run
//! concurrently (round trips, not bytes, bound a migration's time), and the CPU-bound work — decoding,
//! verifying, converting — runs on rayon's pool, one task per core, so `jobs` bounds the requests in
//! flight without multiplying the multi-megabyte transient copies of large payloads.
//!
//! Traffic is the minimum: each legacy blob is read once, each bundle written once, and the default
//! read-back ([`ReadBack::Digest`]) confirms the written blobs by `HEAD` instead of downloading them again
//! (their exact bytes were verified before upload). Nothing is deleted here; `prune`, which deletes,
//! downloads and re-verifies every referrer first.
//!
//! Everything is deterministic: the same input gives byte-identical bundles and manifests, so a rerun
//! finds them all present and writes nothing, and a partial earlier run is completed. Legacy data is
//! never modified or deleted.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use att2ref::migrate::{MigrateOptions, migrate_image, report::Outcome};
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

pub mod batch;
mod cpu;
mod gather;
pub mod journal;
pub mod plan;
pub mod readback;
pub mod rekor;
pub mod report;
pub mod write;

use std::sync::Arc;

use futures_util::StreamExt;

use crate::convert::OutputFormat;
use crate::error::Result;
use crate::limits::Limits;
use crate::model::cosign::TagKind;
use crate::model::digest::Digest;
use crate::store::{ReferrersCapability, Repository, tag_schema};
use crate::verification::Verifier;

pub use batch::{MigrateJob, migrate_batch};
pub use journal::MigrateJournal;
pub use readback::ReadBack;
pub use rekor::RekorClient;
pub use report::{ImageMigration, MigrateReport, MigratedReferrer, Outcome};

/// How to migrate.
#[derive(Clone, Debug)]
pub struct MigrateOptions {
    /// Referrer format.
    pub format: OutputFormat,
    /// Caps for everything read.
    pub limits: Limits,
    /// Migrate images whose legacy `.sig` does not verify under the policy.
    pub allow_signature_switch: bool,
    /// Also fill missing `artifactType`/annotations of existing tag-schema index entries (cosign#5098).
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

/// Every image of `repo` with a legacy `.att` tag, in tag order.
pub async fn images_with_attestations<R: Repository>(repo: &R) -> Result<Vec<Digest>> {
    let mut images: Vec<Digest> = repo
        .list_tags()
        .await?
        .iter()
        .filter_map(|t| TagKind::parse_tag(t))
        .filter(|(_, kind)| *kind == TagKind::Attestation)
        .map(|(d, _)| d)
        .collect();
    images.dedup();
    Ok(images)
}

/// Migrate `images` of `repo`, at most `options.jobs` at once; reports come back in input order.
pub async fn migrate_images<R: Repository>(
    repo: &R,
    images: &[Digest],
    verifier: &Arc<Verifier>,
    options: &MigrateOptions,
    journal: Option<&MigrateJournal>,
    progress: &dyn crate::batch::Progress<ImageMigration>,
) -> Vec<ImageMigration> {
    let record = |report: &ImageMigration| {
        if let Some(j) = journal.filter(|_| !options.dry_run)
            && let Err(e) = j.record(report)
        {
            tracing::warn!("{e}");
        }
    };
    let mut reports = futures_util::stream::iter(images)
        .map(|image| async move {
            let report = migrate_one(repo, image, verifier, options, journal).await;
            record(&report);
            progress.done(&report);
            report
        })
        .buffered(options.jobs.max(1))
        .collect::<Vec<_>>()
        .await;
    for changed in settle_all(repo, &mut reports, options).await {
        record(&reports[changed]);
    }
    reports
}

/// The settle pass (see [`write`](mod@write)): once every image is done, re-check that the tag-schema
/// index of each image this run wrote still lists its referrers, and re-list any a concurrent writer
/// dropped (`options.jobs` images at once). An image whose entries cannot be restored becomes `failed`;
/// its position is returned, so that the journal records it and a resumed run does not skip it.
async fn settle_all<R: Repository>(repo: &R, reports: &mut [ImageMigration], options: &MigrateOptions) -> Vec<usize> {
    let written = |r: &ImageMigration| r.outcome == Outcome::Migrated && !r.referrers.is_empty();
    // A registry that indexes referrers itself has no tag-schema index to settle.
    if options.dry_run || repo.referrers_capability() == ReferrersCapability::Supported || !reports.iter().any(written)
    {
        return Vec::new();
    }
    // A writer that read an index just before this run's last push may push its stale merge well after
    // it: a full confirmation delay (with jitter) from now, as before, keeps the widest window.
    tokio::time::sleep(tag_schema::confirm_delay()).await;
    let index = tag_schema::IndexOptions { repair: false, max_retries: options.index_retries };
    let changed = std::sync::Mutex::new(Vec::new());
    let changed_ref = &changed;
    futures_util::stream::iter(reports.iter_mut().enumerate().filter(|(_, r)| written(r)))
        .for_each_concurrent(options.jobs.max(1), |(i, r)| async move {
            let digests: Vec<Digest> = r.referrers.iter().map(|x| x.digest.clone()).collect();
            match tag_schema::settle(repo, &r.image, &digests, index).await {
                Ok(stats) => {
                    r.writes += stats.manifests_written;
                    r.bytes_written += stats.bytes_written;
                    r.index_retries += stats.index_retries + u64::from(stats.index_updated);
                }
                Err(e) => {
                    let failed = failed(r.repository.clone(), &r.image, &e);
                    r.outcome = failed.outcome;
                    r.reasons.extend(failed.reasons);
                    r.error_kind = failed.error_kind;
                    r.kind = failed.kind;
                    changed_ref.lock().unwrap_or_else(|p| p.into_inner()).push(i);
                }
            }
        })
        .await;
    let mut changed = changed.into_inner().unwrap_or_else(|p| p.into_inner());
    changed.sort_unstable();
    changed
}

async fn migrate_one<R: Repository>(
    repo: &R,
    image: &Digest,
    verifier: &Arc<Verifier>,
    options: &MigrateOptions,
    journal: Option<&MigrateJournal>,
) -> ImageMigration {
    let name = repo.name();
    let result = match journal {
        Some(j) => resume_from_journal(repo, image, j).await,
        None => Ok(None),
    };
    let result = match result {
        Ok(Some(skipped)) => return skipped,
        Ok(None) => migrate_image(repo, image, verifier, options).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(|e| failed(name, image, &e))
}

/// The report for an image the journal says is done, or `None` when it must be migrated (again). It is
/// skipped only while its `.att` is still the one that was migrated and the referrers recorded with it
/// are still listed: one could have been dropped by a concurrent writer since; migrating again re-lists it.
async fn resume_from_journal<R: Repository>(
    repo: &R,
    image: &Digest,
    journal: &MigrateJournal,
) -> crate::Result<Option<ImageMigration>> {
    let name = repo.name();
    let Some(recorded) = journal.migrated(&name, image) else {
        return Ok(None);
    };
    let att = match repo.head_manifest(&TagKind::Attestation.tag_for(image)).await? {
        Some(d) if d.digest.to_string() == recorded => d.digest,
        _ => return Ok(None),
    };
    let expected = journal.recorded_referrers(&name, image);
    if !expected.is_empty() {
        let listing = repo.referrers(image, None).await?;
        if !expected.iter().all(|e| listing.descriptors.iter().any(|l| l.digest.to_string() == *e)) {
            tracing::info!(%image, "recorded as migrated, but a referrer is no longer listed: migrating again");
            return Ok(None);
        }
    }
    let mut r = ImageMigration::new(name, image.clone(), Outcome::AlreadyMigrated);
    r.reasons.push("recorded as migrated in the journal; the legacy .att is unchanged".into());
    r.legacy_manifest = Some(att);
    Ok(Some(r))
}

fn failed(repository: String, image: &Digest, e: &crate::Error) -> ImageMigration {
    let mut r = ImageMigration::new(repository, image.clone(), Outcome::Failed);
    r.reasons.push(e.to_string());
    r.error_kind = Some(e.kind().name().to_owned());
    r.kind = Some(e.kind());
    r
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
    // Planning has just listed them all, or the index update's own read lists them: either way the
    // consumer's discovery path was read after the last write.
    let mut seen = readback::Seen { listing: all_listed && !options.repair_index, blobs: false };
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
