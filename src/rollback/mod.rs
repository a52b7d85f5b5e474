//! `rollback`: remove the referrers `migrate` wrote, going back to the legacy layout — never losing an
//! attestation.
//!
//! A referrer is removed only when BOTH hold:
//! - **annotation**: its manifest carries att2ref's `dev.att2ref.legacy.layer.digest` annotation;
//! - **content**: its manifest digest is exactly what converting the image's legacy `.att` gives NOW
//!   ([`crate::rewrite::prepare_image`], in either referrer format: deterministic, or the listed referrer
//!   it adopts for the same layer, read and verified): the legacy layer it came from is still there,
//!   still verifies under the trust flags, and the referrer carries exactly its payload. A referrer whose
//!   legacy layer is gone or no longer verifies, or that another tool (or an edited copy) wrote, is `kept`
//!   with the reason.
//!
//! An image whose conversion is not completely listed is left alone (`kept`): a `migrate` may be writing
//! it right now. On a registry without the referrers API each removal takes its tag-schema entry out first
//! (then deletes the manifest; the entry is put back if that fails), and an index left empty is deleted:
//! the registry then serves the tags and manifests it served before the migration. Dry run unless
//! `apply`.

pub mod batch;
pub mod report;

use std::sync::Arc;

use crate::convert::{OutputFormat, annotations};
use crate::error::Result;
use crate::model::cosign::TagKind;
use crate::model::digest::Digest;
use crate::model::oci::{Descriptor, Manifest};
use crate::model::referrers_index::referrer_entry;
use crate::rewrite::{self, MigrateOptions, Outcome};
use crate::store::Repository;
use crate::store::tag_schema::{self, IndexOptions};
use crate::verification::Verifier;

pub use batch::{RollbackJob, rollback_batch, rollback_batch_streamed};
pub use report::{ImageRollback, RollbackOutcome, RollbackReport};

/// How to roll back.
#[derive(Clone, Debug)]
pub struct RollbackOptions {
    /// Remove. Without it, only the plan.
    pub apply: bool,
    /// The conversion settings the referrers were written with (trust, limits, Rekor); both formats are
    /// tried.
    pub migrate: MigrateOptions,
}

impl Default for RollbackOptions {
    fn default() -> RollbackOptions {
        RollbackOptions {
            apply: false,
            migrate: MigrateOptions { allow_signature_switch: true, ..MigrateOptions::default() },
        }
    }
}

/// What converting the image's legacy `.att` gives now, in each format: the referrer digests, or `None`
/// when it does not convert (no `.att`, a layer that no longer verifies, …) with the reason.
async fn expected<R: Repository>(
    repo: &R,
    image: &Digest,
    verifier: &Arc<Verifier>,
    options: &RollbackOptions,
) -> Result<std::result::Result<Vec<Vec<Digest>>, String>> {
    let mut sets = Vec::new();
    for format in [OutputFormat::Bundle, OutputFormat::Dsse] {
        let opts = MigrateOptions { format, dry_run: true, allow_signature_switch: true, ..options.migrate.clone() };
        let prepared = rewrite::prepare_image(repo, image, verifier, &opts).await?;
        match prepared.report.outcome {
            Outcome::Planned => sets.push(prepared.report.referrers.iter().map(|r| r.digest.clone()).collect()),
            other => {
                let why = prepared.report.reasons.join("; ");
                return Ok(Err(format!("the legacy .att does not convert now ({}): {why}", other.as_str())));
            }
        }
    }
    Ok(Ok(sets))
}

/// Roll back one image (see the module documentation). Errors are for what could not be read or
/// written; decisions are in the report.
pub async fn rollback_image<R: Repository>(
    repo: &R,
    image: &Digest,
    verifier: &Arc<Verifier>,
    options: &RollbackOptions,
) -> Result<ImageRollback> {
    let mut report = ImageRollback::new(repo.name(), image.clone());
    let listing = repo.referrers(image, None).await?;
    // Candidates: listed referrers whose manifest carries att2ref's provenance annotation.
    let mut candidates: Vec<Candidate> = Vec::new();
    for listed in &listing.descriptors {
        let Some(raw) = repo.get_manifest(&listed.digest.to_string()).await? else {
            report.keep(&listed.digest, "listed, but its manifest is not served");
            continue;
        };
        if raw.manifest.annotations().contains_key(annotations::LEGACY_LAYER_DIGEST) {
            candidates.push(Candidate { digest: raw.digest.clone(), listed: listed.clone(), raw });
        } else {
            report.keep(&listed.digest, "not written by att2ref (no dev.att2ref.legacy.layer.digest annotation)");
        }
    }
    if candidates.is_empty() {
        report.outcome = RollbackOutcome::NothingToRollBack;
        return Ok(report);
    }
    // Referrers kept so far are not att2ref's (or not served): they never block the image's rollback.
    let not_ours = report.kept.len();
    let legacy = repo.head_manifest(&TagKind::Attestation.tag_for(image)).await?.map(|d| d.digest);
    let sets = match expected(repo, image, verifier, options).await? {
        Ok(sets) => sets,
        Err(why) => {
            for c in &candidates {
                report.keep(&c.digest, &why);
            }
            report.outcome = RollbackOutcome::Kept;
            return Ok(report);
        }
    };
    let listed: Vec<&Digest> = listing.descriptors.iter().map(|d| &d.digest).collect();
    // A conversion only partly listed may be a migration in flight: leave the image alone.
    for set in &sets {
        let ours = candidates.iter().any(|c| set.contains(&c.digest));
        if ours && !set.iter().all(|d| listed.contains(&d)) {
            for c in &candidates {
                report.keep(&c.digest, "not every referrer of this conversion is listed: a migrate may be in flight");
            }
            report.outcome = RollbackOutcome::Kept;
            return Ok(report);
        }
    }
    let mut removable = Vec::new();
    for c in candidates {
        if sets.iter().any(|s| s.contains(&c.digest)) {
            // Something attached to the referrer itself (a signature of the bundle, a referrer of it) would
            // be orphaned, or deleted with it by registries that cascade: it has no legacy copy.
            if let Some(why) = attached_to(repo, &c.digest).await? {
                report.keep(&c.digest, &why);
                continue;
            }
            removable.push(c);
        } else {
            report.keep(
                &c.digest,
                "not what the legacy .att converts to now: its layer is gone or changed, or another writer made it",
            );
        }
    }
    // All or nothing per image, as `migrate`: removing some of att2ref's referrers and keeping others
    // would leave bundles that cosign v3 reads instead of the whole .att.
    let kept_ours = report.kept.len() > not_ours;
    if removable.is_empty() || kept_ours {
        for c in &removable {
            report.keep(&c.digest, "kept with the image's other att2ref referrers: a partial rollback would hide attestations from cosign v3");
        }
        report.outcome = RollbackOutcome::Kept;
        return Ok(report);
    }
    let tag_schema = listing.from_tag_schema();
    if !options.apply {
        report.planned = removable.iter().map(|d| d.digest.clone()).collect();
        report.outcome = RollbackOutcome::Planned;
        return Ok(report);
    }
    let index = IndexOptions { repair: false, max_retries: options.migrate.index_retries };
    for referrer in &removable {
        if let Err(e) = remove(repo, image, referrer, tag_schema, index).await {
            // What was removed stays in the report and the journal: the image is partly rolled back, and
            // `migrate` writes the removed referrers again.
            report.fail(&e.context("the image is partly rolled back: run migrate on it to restore the rest"));
            return Ok(report);
        }
        report.removed.push(referrer.digest.clone());
    }
    // A prune that read the referrers before this run removed them may have deleted the .att meanwhile:
    // then the removed referrers are its only attestations, and they go back.
    let now = repo.head_manifest(&TagKind::Attestation.tag_for(image)).await?.map(|d| d.digest);
    if now != legacy {
        restore(repo, image, &removable, tag_schema, index).await?;
        report.removed.clear();
        report.fail(&crate::Error::new(
            crate::ErrorKind::Conflict,
            "the legacy .att changed while rolling back (a concurrent prune or migrate?): the referrers were \
             pushed back; run rollback again once nothing else is running",
        ));
        return Ok(report);
    }
    if tag_schema {
        report.index_removed = remove_empty_index(repo, image).await?;
    }
    report.outcome = RollbackOutcome::RolledBack;
    Ok(report)
}

/// A referrer to remove: its manifest as served and its listing entry.
struct Candidate {
    digest: Digest,
    listed: Descriptor,
    raw: crate::model::oci::RawManifest,
}

/// Why `referrer` must stay because something is attached to it, if something is.
async fn attached_to<R: Repository>(repo: &R, referrer: &Digest) -> Result<Option<String>> {
    let listing = repo.referrers(referrer, None).await?;
    if let Some(first) = listing.descriptors.first() {
        return Ok(Some(format!("referrer {} refers to it: removing it would orphan that", first.digest)));
    }
    let sig = TagKind::Signature.tag_for(referrer);
    if repo.head_manifest(&sig).await?.is_some() {
        return Ok(Some(format!("{sig} signs it: removing it would orphan that")));
    }
    Ok(None)
}

/// Push `removed` back and list them again (their blobs are still there: only manifests were deleted).
async fn restore<R: Repository>(
    repo: &R,
    image: &Digest,
    removed: &[Candidate],
    tag_schema: bool,
    index: IndexOptions,
) -> Result<()> {
    for c in removed {
        repo.put_manifest(c.raw.bytes.clone(), &c.raw.media_type, None).await?;
    }
    if tag_schema {
        let entries: Vec<Descriptor> = removed.iter().map(entry_of).collect();
        tag_schema::add_to_index(repo, image, &entries, index).await?;
    }
    Ok(())
}

/// The tag-schema entry of a candidate: rebuilt from its manifest, else its listing entry.
fn entry_of(c: &Candidate) -> Descriptor {
    match &c.raw.manifest {
        Manifest::Image(m) => referrer_entry(&c.raw.descriptor(), m),
        _ => c.listed.clone(),
    }
}

/// Take `referrer` out: its tag-schema entry first (a registry may refuse to delete a listed manifest),
/// then the manifest; the entry is put back if the delete fails, so nothing is left unlisted.
async fn remove<R: Repository>(
    repo: &R,
    image: &Digest,
    referrer: &Candidate,
    tag_schema: bool,
    index: IndexOptions,
) -> Result<()> {
    if !tag_schema {
        return repo.delete_manifest(&referrer.digest).await;
    }
    let tag = image.referrers_tag();
    let deleted = match tag_schema::remove_entry(repo, &tag, &referrer.digest, index.max_retries).await {
        Ok(_) => repo.delete_manifest(&referrer.digest).await,
        Err(e) => Err(e),
    };
    if let Err(e) = deleted {
        tag_schema::add_to_index(repo, image, &[entry_of(referrer)], index).await.map_err(|restore| {
            restore.context(format!("{} could not be removed ({e}) and its index entry not restored", referrer.digest))
        })?;
        return Err(e.context(format!("removing referrer {}", referrer.digest)));
    }
    Ok(())
}

/// Delete the image's tag-schema index when it lists nothing any more. Returns whether it did.
async fn remove_empty_index<R: Repository>(repo: &R, image: &Digest) -> Result<bool> {
    let Some(raw) = repo.get_manifest(&image.referrers_tag()).await? else {
        return Ok(false);
    };
    match &raw.manifest {
        Manifest::Index(index) if index.manifests.is_empty() => {
            repo.delete_manifest(&raw.digest).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}
