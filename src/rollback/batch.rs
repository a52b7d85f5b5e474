//! `rollback` as a job of the batch engine ([`crate::batch`]): one unit per image with a legacy `.att`
//! (only those can be rolled back: a referrer is removed only while its legacy layer is there), each
//! removal recorded in the journal.

use std::sync::Arc;

use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use super::{ImageRollback, RollbackOptions, RollbackOutcome, rollback_image};
use crate::batch::{self, BatchOutcome, Job, Journal, Progress};
use crate::error::Result;
use crate::model::digest::Digest;
use crate::store::{AnyRepository, Repository};
use crate::targets::{RepositoryTarget, TargetError};
use crate::verification::Verifier;

/// What the journal records: each image some of whose referrers were removed, and which.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackEvent {
    /// The repository.
    pub repository: String,
    /// The image.
    pub image: Digest,
    /// The referrers removed.
    pub removed: Vec<Digest>,
}

/// Rolling back, as the batch engine runs it.
pub struct RollbackJob<'a> {
    /// Verifies each legacy layer before its referrer is taken as att2ref's conversion of it.
    pub verifier: &'a Arc<Verifier>,
    /// How to roll back.
    pub options: &'a RollbackOptions,
}

impl Job for RollbackJob<'_> {
    type Unit = Digest;
    type Report = ImageRollback;
    type Event = RollbackEvent;

    fn named(&self, images: Vec<Digest>) -> Vec<Digest> {
        images
    }

    fn list(&self, repo: Arc<AnyRepository>) -> BoxStream<'static, Result<Vec<Digest>>> {
        crate::read::listing::attestation_pages(repo).boxed()
    }

    async fn run(&self, repo: &AnyRepository, image: &Digest) -> ImageRollback {
        match rollback_image(repo, image, self.verifier, self.options).await {
            Ok(r) => r,
            Err(e) => {
                let mut r = ImageRollback::new(repo.name(), image.clone());
                r.fail(&e);
                r
            }
        }
    }

    // Every removal is recorded, also those of an image that failed midway (partly rolled back).
    fn unit_key(&self, image: &Digest) -> Option<String> {
        Some(image.to_string())
    }

    fn event(&self, report: &ImageRollback) -> Option<RollbackEvent> {
        (report.outcome == RollbackOutcome::RolledBack || !report.removed.is_empty()).then(|| RollbackEvent {
            repository: report.repository.clone(),
            image: report.image.clone(),
            removed: report.removed.clone(),
        })
    }
}

/// Roll back every image the targets name, `jobs` at once across all repositories.
pub async fn rollback_batch<S>(
    targets: S,
    verifier: &Arc<Verifier>,
    options: &RollbackOptions,
    jobs: usize,
    journal: Option<&Journal<RollbackEvent>>,
    progress: &dyn Progress<ImageRollback>,
) -> BatchOutcome<ImageRollback>
where
    S: Stream<Item = std::result::Result<RepositoryTarget, TargetError>> + Send,
{
    batch::run(&RollbackJob { verifier, options }, targets, jobs, journal, progress).await
}

/// [`rollback_batch`], handing each repository's image reports to `deliver` as soon as they are final
/// (target order, see [`batch::run_streamed`]). Returns the targets and listings that failed.
pub async fn rollback_batch_streamed<S>(
    targets: S,
    verifier: &Arc<Verifier>,
    options: &RollbackOptions,
    jobs: usize,
    journal: Option<&Journal<RollbackEvent>>,
    progress: &dyn Progress<ImageRollback>,
    deliver: &mut (dyn FnMut(Vec<ImageRollback>) + Send),
) -> Vec<TargetError>
where
    S: Stream<Item = std::result::Result<RepositoryTarget, TargetError>> + Send,
{
    batch::run_streamed(&RollbackJob { verifier, options }, targets, jobs, journal, progress, deliver).await
}
