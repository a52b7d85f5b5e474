//! `migrate`: each image's legacy `.att` becomes one verified Sigstore-bundle referrer per attestation
//! (or one DSSE referrer per layer), safely, over whole registries.
//!
//! Each image goes through [`crate::rewrite`] (read, verify, convert; write; read back), all or nothing.
//! Here: the batch ([`batch`]: `jobs` images in flight across all repositories, through
//! [`crate::batch`]), the settle pass of the referrers tag schema once per repository, the [`journal`]
//! that lets an interrupted run resume, and the run's [`report`]. Nothing is deleted here; `prune`,
//! which deletes, downloads and re-verifies every referrer first.

pub mod batch;
pub mod journal;
pub mod report;

use std::sync::Arc;

use futures_util::StreamExt;

use crate::model::cosign::TagKind;
use crate::model::digest::Digest;
use crate::rewrite::{ImageMigration, MigrateOptions, Outcome, migrate_image};
use crate::store::{ReferrersCapability, Repository, tag_schema};
use crate::verification::Verifier;

pub use batch::{MigrateJob, migrate_batch, migrate_batch_streamed};
pub use journal::MigrateJournal;
pub use report::MigrateReport;

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

/// The settle pass (see [`crate::store::tag_schema`]): once every image is done, re-check that the tag-schema
/// index of each image this run wrote still lists its referrers, and re-list any a concurrent writer
/// dropped (`options.jobs` images at once). An image whose entries cannot be restored becomes `failed`;
/// its position is returned, so that the journal records it and a resumed run does not skip it.
async fn settle_all<R: Repository>(repo: &R, reports: &mut [ImageMigration], options: &MigrateOptions) -> Vec<usize> {
    // What this run wrote, and what a run the journal resumes from wrote (it may have been stopped
    // before its settle pass).
    let to_settle = |r: &ImageMigration| -> Vec<Digest> {
        match r.outcome {
            Outcome::Migrated => r.referrers.iter().map(|x| x.digest.clone()).collect(),
            _ => r.resumed_referrers.clone(),
        }
    };
    let written = |r: &ImageMigration| !to_settle(r).is_empty();
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
            let digests = to_settle(r);
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
    let listing = repo.referrers(image, None).await?;
    if expected.is_empty() || !expected.iter().all(|e| listing.descriptors.iter().any(|l| l.digest.to_string() == *e)) {
        tracing::info!(%image, "recorded as migrated, but a referrer is no longer listed: migrating again");
        return Ok(None);
    }
    // Listed without an artifact type in a tag-schema index (another writer's stale merge dropped it):
    // consumers filtering on it miss the referrer; migrating again fills the entry in.
    let tag_schema = listing.from_tag_schema();
    if tag_schema
        && listing.descriptors.iter().any(|l| l.artifact_type.is_none() && expected.contains(&l.digest.to_string()))
    {
        tracing::info!(%image, "recorded as migrated, but a referrer is listed without its artifact type: migrating again");
        return Ok(None);
    }
    // Listed is not present: a registry whose listing lags deletions (Artifact Registry) still lists a
    // referrer removed since (by `rollback`, say).
    let present = futures_util::future::try_join_all(expected.iter().map(|e| repo.head_manifest(e))).await?;
    if present.iter().any(Option::is_none) {
        tracing::info!(%image, "recorded as migrated, but a listed referrer is gone: migrating again");
        return Ok(None);
    }
    let mut r = ImageMigration::new(name, image.clone(), Outcome::AlreadyMigrated);
    r.reasons.push("recorded as migrated in the journal; the legacy .att is unchanged".into());
    r.legacy_manifest = Some(att);
    r.resumed_referrers = expected.iter().filter_map(|e| e.parse().ok()).collect();
    Ok(Some(r))
}

fn failed(repository: String, image: &Digest, e: &crate::Error) -> ImageMigration {
    let mut r = ImageMigration::new(repository, image.clone(), Outcome::Failed);
    r.reasons.push(e.to_string());
    r.error_kind = Some(e.kind().name().to_owned());
    r.kind = Some(e.kind());
    r
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::model::media_type as mt;
    use crate::model::oci::{Descriptor, ImageManifest, Index, to_canonical_bytes};
    use crate::store::memory::MemoryRepository;

    /// A bundle referrer of `subject`, with no layers (what the tests need is its digest and subject).
    fn referrer_of(subject: &Digest) -> ImageManifest {
        ImageManifest {
            schema_version: 2,
            media_type: Some(mt::OCI_MANIFEST.into()),
            artifact_type: Some(mt::BUNDLE_V03.into()),
            config: Descriptor::empty_config(),
            layers: Vec::new(),
            subject: Some(Descriptor { digest: subject.clone(), ..Descriptor::of(mt::OCI_MANIFEST, b"image") }),
            annotations: Default::default(),
            extra: Default::default(),
        }
    }

    /// An image a resumed run skips on its journal's word is settled like one it migrated: the run the
    /// journal comes from may have been stopped between its last index push and its settle pass, and a
    /// stale writer may have dropped an entry after the resumed run's one read.
    #[tokio::test]
    async fn images_skipped_on_the_journals_word_are_settled_too() {
        let repo = MemoryRepository::new("app");
        let subject = Digest::sha256(b"image");
        repo.put_blob(Bytes::from_static(b"{}")).await.unwrap();
        let manifest = referrer_of(&subject);
        let ours = repo.put_manifest(Bytes::from(to_canonical_bytes(&manifest)), mt::OCI_MANIFEST, None).await.unwrap();
        // The index as a stale writer left it: without our entry.
        let tag = subject.referrers_tag();
        repo.put_manifest(Bytes::from(to_canonical_bytes(&Index::empty())), mt::OCI_INDEX, Some(&tag)).await.unwrap();

        let mut skipped = ImageMigration::new("app".into(), subject.clone(), Outcome::AlreadyMigrated);
        skipped.resumed_referrers = vec![ours.digest.clone()];
        let other = Digest::sha256(b"other");
        let mut reports = [skipped, ImageMigration::new("app".into(), other.clone(), Outcome::AlreadyMigrated)];
        let changed = settle_all(&repo, &mut reports, &MigrateOptions::default()).await;
        assert!(changed.is_empty());
        let listed = repo.referrers(&subject, None).await.unwrap().descriptors;
        assert_eq!(listed.iter().map(|d| &d.digest).collect::<Vec<_>>(), [&ours.digest], "re-listed");
        assert_eq!(reports[0].writes, 1, "one index push");
        assert_eq!(reports[1].writes, 0, "an image with nothing recorded is left alone");
        assert!(repo.get_manifest(&other.referrers_tag()).await.unwrap().is_none());
    }

    /// A journaled image is skipped while its referrers are listed and there; one still listed after
    /// its manifest was deleted (a listing that lags deletions) is migrated again.
    #[tokio::test]
    async fn a_journaled_image_whose_listed_referrer_is_gone_is_migrated_again() {
        let repo = MemoryRepository::new("app");
        let subject = Digest::sha256(b"image");
        let att_tag = TagKind::Attestation.tag_for(&subject);
        let att = repo.put_manifest(Bytes::from(to_canonical_bytes(&Index::empty())), mt::OCI_INDEX, Some(&att_tag));
        let att = att.await.unwrap();
        repo.put_blob(Bytes::from_static(b"{}")).await.unwrap();
        let manifest = referrer_of(&subject);
        let bytes = to_canonical_bytes(&manifest);
        let listed =
            Descriptor { artifact_type: manifest.artifact_type.clone(), ..Descriptor::of(mt::OCI_MANIFEST, &bytes) };
        let ours = repo.put_manifest(Bytes::from(bytes), mt::OCI_MANIFEST, None).await.unwrap().digest;
        assert_eq!(ours, listed.digest);
        let mut index = Index::empty();
        index.manifests.push(listed);
        let tag = subject.referrers_tag();
        repo.put_manifest(Bytes::from(to_canonical_bytes(&index)), mt::OCI_INDEX, Some(&tag)).await.unwrap();

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let line = serde_json::json!({
            "repository": "app", "image": subject.to_string(), "outcome": "migrated",
            "legacy_manifest": att.digest.to_string(), "referrers": [ours.to_string()], "settings": "s",
        });
        std::fs::write(&path, format!("{line}\n")).unwrap();
        let journal = MigrateJournal::open(&path, "s").unwrap();
        let skipped = resume_from_journal(&repo, &subject, &journal).await.unwrap().expect("skipped while there");
        assert_eq!(skipped.outcome, Outcome::AlreadyMigrated);

        // Listed without its artifact type (a stale writer's merge): consumers miss it, so migrated again.
        index.manifests[0].artifact_type = None;
        repo.put_manifest(Bytes::from(to_canonical_bytes(&index)), mt::OCI_INDEX, Some(&tag)).await.unwrap();
        assert!(resume_from_journal(&repo, &subject, &journal).await.unwrap().is_none(), "degraded: migrated again");
        index.manifests[0].artifact_type = manifest.artifact_type.clone();
        repo.put_manifest(Bytes::from(to_canonical_bytes(&index)), mt::OCI_INDEX, Some(&tag)).await.unwrap();
        assert!(resume_from_journal(&repo, &subject, &journal).await.unwrap().is_some(), "repaired: skipped");

        repo.delete_manifest(&ours).await.unwrap();
        assert_eq!(repo.referrers(&subject, None).await.unwrap().descriptors.len(), 1, "still listed");
        assert!(resume_from_journal(&repo, &subject, &journal).await.unwrap().is_none(), "gone: migrated again");
    }
}
