//! Migrating many repositories as one batch: `jobs` images in flight across ALL repositories.
//!
//! Repositories come from a stream ([`crate::targets::resolve`]): the next one is resolved (catalog
//! page, tag listing) while images of the earlier ones are being migrated, so a registry of many small
//! repositories keeps every job busy instead of draining one repository at a time. Each image is still
//! all or nothing. The settle pass of the referrers tag schema runs once per repository, as soon as all
//! of that repository's images are done, concurrently with the images of the repositories after it.
//! Reports come back grouped by repository in the order the targets gave them, images in input order.

use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::stream::FuturesUnordered;
use futures_util::{Stream, StreamExt};

use super::{ImageMigration, Journal, MigrateOptions, Progress, images_with_attestations, migrate_one, settle_all};
use crate::model::digest::Digest;
use crate::store::{AnyRepository, Repository};
use crate::targets::{RepositoryTarget, TargetError};
use crate::verification::Verifier;

/// What a batch did: every image report, and the targets (or repositories) that could not be listed.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// One report per image, grouped by repository in target order.
    pub images: Vec<ImageMigration>,
    /// Targets that could not be resolved, and repositories whose tags could not be listed.
    pub errors: Vec<TargetError>,
}

/// One repository of the batch while it is being worked on.
struct RepoWork {
    repo: Arc<AnyRepository>,
    images: Vec<Digest>,
    reports: Vec<Option<ImageMigration>>,
    remaining: usize,
}

/// Migrate every image the targets name (a whole repository: every image with a `.att` tag), at most
/// `options.jobs` images at once across all repositories. `progress` hears of images as they are found
/// ([`Progress::images_found`]) and as they finish.
pub async fn migrate_batch<S>(
    targets: S,
    verifier: &Arc<Verifier>,
    options: &MigrateOptions,
    journal: Option<&Journal>,
    progress: &dyn Progress,
) -> BatchOutcome
where
    S: Stream<Item = Result<RepositoryTarget, TargetError>>,
{
    let jobs = options.jobs.max(1);
    // Resolve each repository's images inside the stream, so that listing the next repository overlaps
    // with migrating the images already queued.
    let listed = targets.then(|t| async move {
        let t = t?;
        match t.images {
            Some(images) => Ok((t.repo, images)),
            None => match images_with_attestations(&t.repo).await {
                Ok(images) => Ok((t.repo, images)),
                Err(e) => Err(TargetError::new(&t.target, &e.context(format!("listing tags of {}", t.repo.name())))),
            },
        }
    });
    let mut listed = std::pin::pin!(listed);
    let mut listing_done = false;

    let mut outcome = BatchOutcome::default();
    let mut repos: Vec<RepoWork> = Vec::new();
    let mut queue: VecDeque<(usize, usize)> = VecDeque::new();
    let mut running = FuturesUnordered::new();
    let mut settling = FuturesUnordered::new();
    let mut settled: Vec<Option<Vec<ImageMigration>>> = Vec::new();

    loop {
        while running.len() < jobs
            && let Some((r, i)) = queue.pop_front()
        {
            let repo = repos[r].repo.clone();
            let image = repos[r].images[i].clone();
            running.push(async move {
                let report = migrate_one(&*repo, &image, verifier, options, journal).await;
                if let Some(j) = journal.filter(|_| !options.dry_run)
                    && let Err(e) = j.record(&report)
                {
                    tracing::warn!("{e}");
                }
                progress.image_done(&report);
                (r, i, report)
            });
        }
        // Keep one repository's images queued ahead of the jobs, so no job waits for a listing.
        let want_more = !listing_done && queue.len() < jobs;
        if running.is_empty() && settling.is_empty() && !want_more {
            break;
        }
        tokio::select! {
            next = listed.next(), if want_more => match next {
                None => listing_done = true,
                Some(Err(e)) => outcome.errors.push(e),
                Some(Ok((repo, images))) => {
                    let index = repos.len();
                    progress.images_found(images.len() as u64);
                    queue.extend((0..images.len()).map(|i| (index, i)));
                    let remaining = images.len();
                    repos.push(RepoWork {
                        repo: Arc::new(repo),
                        reports: (0..remaining).map(|_| None).collect(),
                        images,
                        remaining,
                    });
                    settled.push(None);
                    if remaining == 0 {
                        settled[index] = Some(Vec::new());
                    }
                }
            },
            Some((r, i, report)) = running.next(), if !running.is_empty() => {
                let work = &mut repos[r];
                work.reports[i] = Some(report);
                work.remaining -= 1;
                if work.remaining == 0 {
                    let repo = work.repo.clone();
                    let mut reports: Vec<ImageMigration> = work.reports.iter_mut().filter_map(Option::take).collect();
                    settling.push(async move {
                        settle_all(&*repo, &mut reports, options, journal).await;
                        (r, reports)
                    });
                }
            },
            Some((r, reports)) = settling.next(), if !settling.is_empty() => {
                settled[r] = Some(reports);
            },
            else => break,
        }
    }
    outcome.images = settled.into_iter().flatten().flatten().collect();
    outcome
}
