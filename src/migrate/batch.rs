//! `migrate` as a job of the batch engine ([`crate::batch`]): one unit per image, `jobs` images in
//! flight across ALL repositories, the settle pass of the referrers tag schema once per repository as
//! soon as its images are done, each finished image recorded in the journal.
//!
//! A whole repository is listed page by page ([`crate::store::Repository::tag_pages`]): the images of its first
//! page are migrated while the next page is read. Each image is still all or nothing.

use std::sync::Arc;

use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};

use super::journal::{JournalEvent, MigrateJournal};
use super::{migrate_one, settle_all};
use crate::batch::{self, BatchOutcome, Job, Progress};
use crate::error::Result;
use crate::model::digest::Digest;
use crate::rewrite::{ImageMigration, MigrateOptions};
use crate::store::AnyRepository;
use crate::targets::{RepositoryTarget, TargetError};
use crate::verification::Verifier;

/// Migrating images, as the batch engine runs it.
pub struct MigrateJob<'a> {
    /// Verifies every legacy layer before it is converted.
    pub verifier: &'a Arc<Verifier>,
    /// How to migrate.
    pub options: &'a MigrateOptions,
    /// What earlier runs completed (skipped while still true).
    pub journal: Option<&'a MigrateJournal>,
}

impl Job for MigrateJob<'_> {
    type Unit = Digest;
    type Report = ImageMigration;
    type Event = JournalEvent;

    fn named(&self, images: Vec<Digest>) -> Vec<Digest> {
        images
    }

    fn list(&self, repo: Arc<AnyRepository>) -> BoxStream<'static, Result<Vec<Digest>>> {
        crate::read::listing::attestation_pages(repo).boxed()
    }

    async fn run(&self, repo: &AnyRepository, image: &Digest) -> ImageMigration {
        migrate_one(repo, image, self.verifier, self.options, self.journal).await
    }

    async fn finish(&self, repo: &AnyRepository, reports: &mut [ImageMigration]) -> Vec<usize> {
        settle_all(repo, reports, self.options).await
    }

    fn unit_key(&self, image: &Digest) -> Option<String> {
        Some(image.to_string())
    }

    fn event(&self, report: &ImageMigration) -> Option<JournalEvent> {
        self.journal.filter(|_| !self.options.dry_run).map(|j| j.event(report))
    }
}

/// Migrate every image the targets name (a whole repository: every image with a `.att` tag), at most
/// `options.jobs` images at once across all repositories (see [`crate::batch`]).
///
/// ```no_run
/// use std::sync::Arc;
/// use att2ref::migrate::migrate_batch;
/// use att2ref::rewrite::MigrateOptions;
/// use att2ref::store::registry::{ClientConfig, RegistryClient};
/// use att2ref::targets::{self, Shard, TargetOptions};
/// use att2ref::verification::{Policy, PublicKey, Verifier};
///
/// # async fn example(pem: &[u8]) -> att2ref::Result<()> {
/// let client = RegistryClient::new(ClientConfig::default())?;
/// let verifier = Arc::new(Verifier::new(Policy::new().with_key(PublicKey::from_pem(pem)?))?);
/// // What `att2ref migrate --all-repos registry.example:5000 --shard 0/4 --jobs 8` does.
/// let given = vec!["registry.example:5000".to_owned()];
/// let options = TargetOptions { all_repos: true, shard: Some(Shard::new(0, 4)?), ..TargetOptions::default() };
/// let resolved = targets::resolve(&given, &options, &client);
/// let migrate = MigrateOptions { jobs: 8, ..MigrateOptions::default() };
/// let outcome = migrate_batch(resolved, &verifier, &migrate, None, &()).await;
/// println!("{} images, {} targets failed", outcome.reports.len(), outcome.errors.len());
/// # Ok(())
/// # }
/// ```
pub async fn migrate_batch<S>(
    targets: S,
    verifier: &Arc<Verifier>,
    options: &MigrateOptions,
    journal: Option<&MigrateJournal>,
    progress: &dyn Progress<ImageMigration>,
) -> BatchOutcome<ImageMigration>
where
    S: Stream<Item = std::result::Result<RepositoryTarget, TargetError>> + Send,
{
    let job = MigrateJob { verifier, options, journal };
    batch::run(&job, targets, options.jobs, journal.map(|j| &j.events), progress).await
}

/// [`migrate_batch`], handing each repository's image reports to `deliver` as soon as they are final
/// (target order, see [`batch::run_streamed`]) instead of holding every report until the end: for
/// runs over whole registries. Returns the targets and listings that failed.
pub async fn migrate_batch_streamed<S>(
    targets: S,
    verifier: &Arc<Verifier>,
    options: &MigrateOptions,
    journal: Option<&MigrateJournal>,
    progress: &dyn Progress<ImageMigration>,
    deliver: &mut (dyn FnMut(Vec<ImageMigration>) + Send),
) -> Vec<TargetError>
where
    S: Stream<Item = std::result::Result<RepositoryTarget, TargetError>> + Send,
{
    let job = MigrateJob { verifier, options, journal };
    batch::run_streamed(&job, targets, options.jobs, journal.map(|j| &j.events), progress, deliver).await
}
