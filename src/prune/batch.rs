//! `prune` as a job of the batch engine ([`crate::batch`]): one unit per repository, `jobs`
//! repositories at once, reports in target order.
//!
//! Within a repository the plan and its application stay sequential (each removal re-checks what the
//! previous ones changed, and orphans and duplicates are decided over the whole repository), so the
//! unit is the repository; repositories are independent, so several are pruned at once while the next
//! ones are resolved (catalog pages). Targets that name one repository in different scopes (the
//! repository and one of its images, or two of its images) make several units of it: those take turns
//! ([`Turns`]), so two never decide on the same items at once, and an item a later one reports just as
//! an earlier one did is reported once. The journal is an audit trail: each
//! removal attempted is recorded as it happens ([`AuditEvent`]), through the [`Observer`] that `apply`
//! calls.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use super::report::{ItemKind, Status};
use super::{Item, Observer, OrphanPolicy, PruneOptions, Scope, SearchSets, prune_repository};
use crate::batch::{self, Job, Journal, Progress};
use crate::error::Result;
use crate::keyed_locks::KeyedLocks;
use crate::model::digest::Digest;
use crate::store::{AnyRepository, Repository};
use crate::targets::{RepositoryTarget, TargetError};
use crate::verification::Verifier;

/// One line of prune's journal: a removal attempted, with its outcome and the time (Unix seconds).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When it ran.
    pub at: u64,
    /// The item, with its final status and reasons.
    pub item: serde_json::Value,
}

impl Observer for Journal<AuditEvent> {
    fn acted(&self, item: &Item) {
        let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let item = serde_json::to_value(item).unwrap_or(serde_json::Value::Null);
        if let Err(e) = self.record(&AuditEvent { at, item }) {
            tracing::warn!("{e}");
        }
    }
}

/// Pruning repositories, as the batch engine runs it.
pub struct PruneJob<'a> {
    /// Verifies the referrers a `.att` is removed for.
    pub verifier: &'a Arc<Verifier>,
    /// How to prune.
    pub options: &'a PruneOptions,
    /// With it, orphans may be deleted after a search over each repository's
    /// [`SearchSets::for_repository`] set; without it `options.orphans` applies everywhere.
    pub orphan_search: Option<&'a SearchSets>,
    /// Hears of every removal as it runs (the audit journal).
    pub observer: &'a dyn Observer,
    /// Units of one repository take turns.
    pub turns: Turns,
}

/// The repositories with a unit at work, so that another unit of the same repository waits for it.
/// Two units deciding at once would each plan the same removals: one delete answered 404 would fail
/// the run for nothing, and its index edit put back an entry for a referrer the other just removed.
/// And what each repository's units reported so far, so that a later unit does not report the same
/// item again (a dry run plans what an earlier unit planned; a kept item stays kept).
#[derive(Debug, Default)]
pub struct Turns {
    repositories: KeyedLocks,
    reported: Mutex<HashMap<String, HashSet<ItemKey>>>,
}

/// What makes two reports of one repository the same: the item and what happened to it.
type ItemKey = (ItemKind, Option<Digest>, Option<Digest>, Option<String>, Status);

impl Turns {
    /// Run `work` once no other unit of `repository` is at work; the unit's `--jobs` place is given
    /// back while it waits for its turn ([`crate::slots::waiting`]).
    async fn take<F: std::future::Future>(&self, repository: &str, work: F) -> F::Output {
        let _turn = crate::slots::waiting(self.repositories.take(repository)).await;
        work.await
    }

    /// `items` without those an earlier unit of `repository` reported the same.
    fn first_reports(&self, repository: &str, items: Vec<Item>) -> Vec<Item> {
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        let seen = reported.entry(repository.to_owned()).or_default();
        items
            .into_iter()
            .filter(|i| seen.insert((i.kind, i.subject.clone(), i.digest.clone(), i.tag.clone(), i.status)))
            .collect()
    }

    /// The repository is finished: what it reported goes (a target naming it again starts it anew).
    fn finished(&self, repository: &str) {
        self.reported.lock().unwrap_or_else(|p| p.into_inner()).remove(repository);
    }
}

impl Job for PruneJob<'_> {
    type Unit = Scope;
    type Report = Vec<Item>;
    type Event = AuditEvent;

    fn named(&self, images: Vec<Digest>) -> Vec<Scope> {
        vec![Scope::Images(images)]
    }

    fn list(&self, _repo: Arc<AnyRepository>) -> BoxStream<'static, Result<Vec<Scope>>> {
        futures_util::stream::once(async { Ok(vec![Scope::Repository]) }).boxed()
    }

    fn unit_key(&self, scope: &Scope) -> Option<String> {
        Some(match scope {
            Scope::Repository => "the whole repository".to_owned(),
            Scope::Images(images) => images.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
        })
    }

    async fn run(&self, repo: &AnyRepository, scope: &Scope) -> Vec<Item> {
        let name = repo.name();
        self.turns
            .take(&name, async {
                let mut options = self.options.clone();
                if let Some(sets) = self.orphan_search {
                    options.orphans = OrphanPolicy::Delete(sets.for_repository(repo).await);
                }
                let items = prune_repository(repo, scope, self.verifier, &options, self.observer).await;
                self.turns.first_reports(&name, items)
            })
            .await
    }

    async fn finish(&self, repo: &AnyRepository, _reports: &mut [Vec<Item>]) -> Vec<usize> {
        self.turns.finished(&repo.name());
        Vec::new()
    }
}

/// What a batch found and did: every item, and the targets that could not be resolved.
#[derive(Debug, Default)]
pub struct PruneBatch {
    /// Every item, grouped by repository in target order.
    pub items: Vec<Item>,
    /// Targets that could not be resolved.
    pub errors: Vec<TargetError>,
}

/// Prune every repository the targets name, `jobs` at once; with a journal, every removal attempted is
/// recorded in it as it runs.
pub async fn prune_batch<S>(
    targets: S,
    verifier: &Arc<Verifier>,
    options: &PruneOptions,
    orphan_search: Option<&SearchSets>,
    journal: Option<&Journal<AuditEvent>>,
    progress: &dyn Progress<Vec<Item>>,
    jobs: usize,
) -> PruneBatch
where
    S: Stream<Item = std::result::Result<RepositoryTarget, TargetError>> + Send,
{
    let mut items = Vec::new();
    let errors = prune_batch_streamed(
        targets,
        verifier,
        options,
        orphan_search,
        journal,
        progress,
        jobs,
        &mut |repositories: Vec<Vec<Item>>| items.extend(repositories.into_iter().flatten()),
    )
    .await;
    PruneBatch { items, errors }
}

/// [`prune_batch`], handing each repository's items to `deliver` as soon as they are final (target
/// order, see [`batch::run_streamed`]; one `Vec<Item>` per unit: the repository, or the images a target
/// named in it). Returns the targets that could not be resolved.
#[allow(clippy::too_many_arguments)]
pub async fn prune_batch_streamed<S>(
    targets: S,
    verifier: &Arc<Verifier>,
    options: &PruneOptions,
    orphan_search: Option<&SearchSets>,
    journal: Option<&Journal<AuditEvent>>,
    progress: &dyn Progress<Vec<Item>>,
    jobs: usize,
    deliver: &mut (dyn FnMut(Vec<Vec<Item>>) + Send),
) -> Vec<TargetError>
where
    S: Stream<Item = std::result::Result<RepositoryTarget, TargetError>> + Send,
{
    let observer: &dyn Observer = match journal {
        Some(j) => j,
        None => &(),
    };
    let job = PruneJob { verifier, options, orphan_search, observer, turns: Turns::default() };
    batch::run_streamed(&job, targets, jobs, None, progress, deliver).await
}
