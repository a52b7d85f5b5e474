//! Orphans: legacy tags, referrers and referrers indexes whose subject is absent from their own
//! repository — and the rule that keeps them.
//!
//! Absent from one repository is not gone. Cosign's `COSIGN_REPOSITORY` stores signatures and
//! attestations apart from their images, and a repository often holds its own images beside the
//! attachments of images kept elsewhere; a listing can also lag or be refused. So an orphan is kept
//! unless the caller opts in ([`OrphanPolicy::Delete`]), and even then it goes only when its subject
//! answers a definite not-found in the pruned repository and in every repository of the
//! [`SearchSet`]: the registry's whole catalog, or repositories the caller named. A denial, a server
//! error or a refused catalog keeps it as `could-not-check`; a subject found anywhere keeps it.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use serde::Serialize;

use crate::model::digest::Digest;
use crate::store::registry::RegistryRepository;
use crate::store::{AnyRepository, Repository};

/// Repositories asked at once while searching for one subject.
const SEARCH_CONCURRENCY: usize = 8;

/// What prune does with orphans.
#[derive(Clone, Debug, Default)]
pub enum OrphanPolicy {
    /// Report them and keep them (the default).
    #[default]
    Keep,
    /// Delete an orphan only when its subject is definitely absent from the pruned repository and from
    /// every repository of the set (checked when planning and again right before deleting).
    Delete(SearchSet),
}

/// How the repositories searched for a subject were chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SearchScope {
    /// Only the repository that holds the orphan (the default policy, and an OCI layout, which is a
    /// store of its own with no catalog).
    OwnRepository,
    /// Every repository of the registry's catalog (`/v2/_catalog`, all pages).
    Catalog,
    /// The repositories the caller named.
    Named,
}

/// Where, besides the pruned repository, a missing subject is looked for.
#[derive(Clone, Debug)]
pub struct SearchSet {
    /// How the repositories were chosen.
    pub scope: SearchScope,
    /// The registry whose catalog was listed ([`SearchScope::Catalog`] only).
    pub registry: Option<String>,
    /// The other repositories; `Err(why)` when the set could not be established (a refused or failed
    /// catalog): then no orphan may go.
    pub others: Result<Vec<AnyRepository>, String>,
    /// For a catalog: the repository it was listed for, to list it again ([`SearchSet::refreshed`]).
    home: Option<RegistryRepository>,
}

impl SearchSet {
    /// Search the pruned repository only.
    pub fn own_repository() -> SearchSet {
        SearchSet { scope: SearchScope::OwnRepository, registry: None, others: Ok(Vec::new()), home: None }
    }

    /// Search the pruned repository and `repositories`.
    pub fn named(repositories: Vec<AnyRepository>) -> SearchSet {
        SearchSet { scope: SearchScope::Named, registry: None, others: Ok(repositories), home: None }
    }

    /// Every repository of `repo`'s registry catalog, listed now (`repo` itself is searched anyway).
    pub async fn catalog_of(repo: &RegistryRepository) -> SearchSet {
        let host = repo.host().to_owned();
        let listed = repo
            .client()
            .catalog(&host)
            .await
            .map_err(|e| format!("the catalog of {host} could not be listed completely: {e}"));
        SearchSet::from_catalog(repo, listed)
    }

    fn from_catalog(repo: &RegistryRepository, listed: Result<impl AsRef<[String]>, String>) -> SearchSet {
        let host = repo.host().to_owned();
        let own = repo.repository_name();
        let others = listed.map(|names| {
            names
                .as_ref()
                .iter()
                .filter(|n| n.as_str() != own)
                .map(|n| AnyRepository::Registry(repo.client().repository(&host, n)))
                .collect()
        });
        SearchSet { scope: SearchScope::Catalog, registry: Some(host), others, home: Some(repo.clone()) }
    }

    /// The same set with its catalog listed again, so that a repository created since the first listing
    /// is searched too: `prune` calls this right before deleting. Other scopes are returned as they are.
    pub async fn refreshed(&self) -> SearchSet {
        match (&self.scope, &self.home) {
            (SearchScope::Catalog, Some(home)) => SearchSet::catalog_of(home).await,
            _ => self.clone(),
        }
    }
}

/// A registry's catalog as listed once in a run, or why it could not be.
type Catalog = Result<Arc<Vec<String>>, String>;

/// Builds the [`SearchSet`] of each repository of a run: its registry's catalog, listed once per
/// registry and run while planning (and again right before deleting), or the repositories the caller
/// named.
#[derive(Debug)]
pub struct SearchSets {
    named: Option<Vec<AnyRepository>>,
    catalogs: tokio::sync::Mutex<HashMap<String, Catalog>>,
}

impl SearchSets {
    /// Search each registry repository's whole catalog (an OCI layout: itself only).
    pub fn catalog() -> SearchSets {
        SearchSets { named: None, catalogs: tokio::sync::Mutex::default() }
    }

    /// Search exactly these repositories (and the pruned one). Each must exist: a name that is
    /// mistyped would otherwise answer "not found" for every subject and pass for a search
    /// ([`check_named`]).
    pub fn named(repositories: Vec<AnyRepository>) -> SearchSets {
        SearchSets { named: Some(repositories), catalogs: tokio::sync::Mutex::default() }
    }

    /// The set for one pruned repository. A catalog that cannot be listed completely (401/403 on most
    /// public registries, 5xx, a registry that ignores paging) gives a set that keeps every orphan as
    /// `could-not-check`.
    pub async fn for_repository(&self, repo: &AnyRepository) -> SearchSet {
        if let Some(named) = &self.named {
            let own = repo.name();
            return SearchSet::named(named.iter().filter(|r| r.name() != own).cloned().collect());
        }
        let AnyRepository::Registry(registry_repo) = repo else {
            return SearchSet::own_repository();
        };
        let host = registry_repo.host().to_owned();
        let listed = {
            let mut catalogs = self.catalogs.lock().await;
            match catalogs.get(&host) {
                Some(listed) => listed.clone(),
                None => {
                    let listed = registry_repo
                        .client()
                        .catalog(&host)
                        .await
                        .map(Arc::new)
                        .map_err(|e| format!("the catalog of {host} could not be listed completely: {e}"));
                    catalogs.insert(host.clone(), listed.clone());
                    listed
                }
            }
        };
        SearchSet::from_catalog(registry_repo, listed.as_ref().map(|names| names.as_slice()).map_err(Clone::clone))
    }
}

/// Check that every repository the caller named exists: its tag listing answers and is not empty. A
/// mistyped name would answer "not found" for every subject, and an orphan would go on a search that
/// never looked; some registries list an unknown repository as one with no tags, so an empty listing
/// cannot tell the two apart and is refused too.
pub async fn check_named(repositories: &[AnyRepository]) -> crate::Result<()> {
    for repo in repositories {
        let tags = repo.list_tags().await.map_err(|e| {
            crate::Error::invalid_input(format!("the repository {} to search cannot be listed: {e}", repo.name()))
        })?;
        if tags.is_empty() {
            return Err(crate::Error::invalid_input(format!(
                "the repository {} to search cannot be listed: it has no tags, so a mistyped name cannot be told \
                 from it",
                repo.name()
            )));
        }
    }
    Ok(())
}

/// What the search for a subject concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SearchResult {
    /// A definite not-found everywhere searched.
    Absent,
    /// Found in a repository (`found_in`).
    Present,
    /// At least one repository (or the catalog) could not answer, and none had the subject.
    CouldNotCheck,
}

/// Where a missing subject was searched and what was found; carried by every orphan item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubjectSearch {
    /// How the repositories were chosen.
    pub scope: SearchScope,
    /// The registry whose catalog was searched ([`SearchScope::Catalog`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// Repositories that answered or failed, the pruned one first. With a catalog the list is the
    /// catalog itself; it is left out here (it can be thousands of names) and only counted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<String>,
    /// How many repositories were asked, the pruned one included.
    pub repositories_searched: u64,
    /// The conclusion.
    pub result: SearchResult,
    /// The repository that has the subject ([`SearchResult::Present`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found_in: Option<String>,
    /// Why a repository (or the catalog) could not answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl SubjectSearch {
    /// The record for a subject already seen missing from `repo`, with nothing else searched.
    pub fn own_repository_only<R: Repository>(repo: &R) -> SubjectSearch {
        SubjectSearch {
            scope: SearchScope::OwnRepository,
            registry: None,
            repositories: vec![repo.name()],
            repositories_searched: 1,
            result: SearchResult::Absent,
            found_in: None,
            errors: Vec::new(),
        }
    }

    /// One line for a report's reasons.
    pub fn summary(&self) -> String {
        let place = match (self.scope, &self.registry) {
            (SearchScope::Catalog, Some(r)) => format!(
                "every repository of the catalog of {r} ({} repositories, this one included; no other registry)",
                self.repositories_searched
            ),
            _ => self.repositories.join(", "),
        };
        match self.result {
            SearchResult::Absent => format!("definitely absent (not found) from {place}"),
            SearchResult::Present => {
                format!(
                    "exists in {}: these are attachments of an image stored there",
                    self.found_in.as_deref().unwrap_or("?")
                )
            }
            SearchResult::CouldNotCheck => {
                format!(
                    "not found where an answer came, but not every repository could be searched ({place}): {}",
                    self.errors.join("; ")
                )
            }
        }
    }
}

/// Search for `subject` in `own` and every repository of `set`, stopping at the first that has it.
pub async fn search<R: Repository>(own: &R, subject: &Digest, set: &SearchSet) -> SubjectSearch {
    let reference = subject.to_string();
    let mut record = SubjectSearch {
        scope: set.scope,
        registry: set.registry.clone(),
        repositories: Vec::new(),
        repositories_searched: 0,
        result: SearchResult::Absent,
        found_in: None,
        errors: Vec::new(),
    };
    let listed = set.scope == SearchScope::Catalog;
    let own_name = own.name();
    record.repositories_searched += 1;
    if !listed {
        record.repositories.push(own_name.clone());
    }
    // A GET, not a HEAD: only a not-found whose body says so (`MANIFEST_UNKNOWN`, or an empty 404)
    // counts as absent, and a HEAD answer has no body to tell a hidden denial from a real absence.
    match own.get_manifest(&reference).await {
        Ok(Some(_)) => {
            record.result = SearchResult::Present;
            record.found_in = Some(own_name);
            return record;
        }
        Ok(None) => {}
        Err(e) => record.errors.push(format!("{own_name}: {e}")),
    }
    let others = match &set.others {
        Ok(others) => others,
        Err(why) => {
            record.errors.push(why.clone());
            record.result = SearchResult::CouldNotCheck;
            return record;
        }
    };
    // The questions are built first (lazily: none runs before it is polled), which keeps the future
    // `Send` for any caller; a closure mapping the stream would tie it to one borrow's lifetime.
    let questions: Vec<_> = others.iter().map(|repo| ask(repo, &reference)).collect();
    let mut answers = futures_util::stream::iter(questions).buffer_unordered(SEARCH_CONCURRENCY);
    let mut asked = Vec::new();
    while let Some((name, answer)) = answers.next().await {
        record.repositories_searched += 1;
        match answer {
            Ok(true) => {
                asked.push(name.clone());
                record.found_in = Some(name);
                break;
            }
            Ok(false) => asked.push(name),
            Err(e) => {
                record.errors.push(format!("{name}: {e}"));
                asked.push(name);
            }
        }
    }
    if !listed {
        asked.sort();
        record.repositories.extend(asked);
    }
    record.errors.sort();
    record.result = match (&record.found_in, record.errors.is_empty()) {
        (Some(_), _) => SearchResult::Present,
        (None, true) => SearchResult::Absent,
        (None, false) => SearchResult::CouldNotCheck,
    };
    record
}

/// Whether `repo` holds the manifest `reference`, named for the record.
async fn ask(repo: &AnyRepository, reference: &str) -> (String, crate::Result<bool>) {
    (repo.name(), repo.get_manifest(reference).await.map(|m| m.is_some()))
}
