//! Pruning many repositories as one batch: `jobs` repositories at once, in target order in the report.
//!
//! Within a repository the plan and its application stay sequential (each removal re-checks what the
//! previous ones changed); repositories are independent, so several are pruned at once while the next
//! ones are resolved (catalog pages, tag listings).

use std::sync::Arc;

use futures_util::{Stream, StreamExt};

use super::{Item, Observer, OrphanPolicy, PruneOptions, Scope, SearchSets, prune_repository};
use crate::targets::{RepositoryTarget, TargetError};
use crate::verification::Verifier;

/// What a batch found and did: every item, and the targets that could not be resolved.
#[derive(Debug, Default)]
pub struct PruneBatch {
    /// Every item, grouped by repository in target order.
    pub items: Vec<Item>,
    /// Targets that could not be resolved.
    pub errors: Vec<TargetError>,
}

/// Prune every repository the targets name, `jobs` at once. With `orphan_search`, orphans may be
/// deleted after a search over each repository's [`SearchSets::for_repository`] set; without it,
/// `options.orphans` applies to every repository (keep, by default).
pub async fn prune_batch<S>(
    targets: S,
    verifier: &Arc<Verifier>,
    options: &PruneOptions,
    orphan_search: Option<&SearchSets>,
    observer: &dyn Observer,
    jobs: usize,
) -> PruneBatch
where
    S: Stream<Item = Result<RepositoryTarget, TargetError>>,
{
    let results: Vec<Result<Vec<Item>, TargetError>> = targets
        .map(|t| async move {
            let t = t?;
            let scope = t.images.map_or(Scope::Repository, Scope::Images);
            let mut options = options.clone();
            if let Some(sets) = orphan_search {
                options.orphans = OrphanPolicy::Delete(sets.for_repository(&t.repo).await);
            }
            Ok(prune_repository(&t.repo, &scope, verifier, &options, observer).await)
        })
        .buffered(jobs.max(1))
        .collect()
        .await;
    let mut batch = PruneBatch::default();
    for r in results {
        match r {
            Ok(items) => batch.items.extend(items),
            Err(e) => batch.errors.push(e),
        }
    }
    batch
}
