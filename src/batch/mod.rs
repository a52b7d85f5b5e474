//! The batch engine: a command's work over every repository its targets name, in one bounded pool.
//!
//! A command describes its work as a [`Job`]: what one unit is (an image for `migrate`, a whole
//! repository for `prune`), how a repository is listed into units, how one unit is done and what runs
//! once per repository after its last unit (the settle pass of the referrers tag schema). [`run`] does
//! the rest, the same way for every command:
//!
//! - targets come from [`crate::targets::resolve`] as a stream, and each repository's units from
//!   [`Job::list`] page by page: the next page (or the next catalog page) is taken only while fewer
//!   units than `jobs` are queued, so work starts on the first page and the queue never holds more
//!   than one page ahead, whatever the size of the catalog or of a repository;
//! - the repositories after the one units are taken from are listed meanwhile, up to `jobs` of them at
//!   once (at most [`MAX_LISTED_AHEAD`]), each by a task of its own that reads its first page ahead
//!   and each later one when the engine asks: a registry of many small repositories is not listed one
//!   round trip after another, and what the listing side holds is that many first pages (a registry
//!   that serves every tag on one page: that many tag lists) besides the queue. Repositories that
//!   share the run's attachments listing claim images as they are listed, so they are listed one after
//!   another, in target order;
//! - at most `jobs` units work at once, across all repositories; a unit that waits on work others share
//!   gives its place back for the wait ([`crate::slots::waiting`]; the one shared read that they wait
//!   for runs meanwhile, see there), and at most [`MAX_WAITING`] units are started beyond `jobs`;
//! - [`Job::finish`] runs once per repository, as soon as its listing is complete and its last unit
//!   done, concurrently with the units of the repositories after it; a target naming a repository that
//!   is still being worked on adds to it, and a unit named twice is done once ([`Job::unit_key`]);
//! - each finished unit is recorded in the [`Journal`] (when the command gives one, and an event for
//!   it) before [`Progress`] hears of it, so an interrupted run can resume from what was recorded;
//! - reports come back grouped by repository in target order, units in listing order, and targets or
//!   listings that failed as [`TargetError`]s beside them: all at the end ([`run`]), or each
//!   repository's as soon as it and every repository before it are finished ([`run_streamed`]), so
//!   that a run over a whole registry holds the reports of a few repositories, not of all of them
//!   (about [`MAX_FINISHED_AHEAD`] finished ahead of a slow one, plus those already under way: then
//!   the next repository waits).
//!
//! # Example: a job that names every tag of every repository
//!
//! ```
//! use std::sync::Arc;
//! use att2ref::batch::{self, Job};
//! use att2ref::store::{AnyRepository, Repository, layout::LayoutRepository};
//! use att2ref::targets::{self, TargetOptions};
//! use att2ref::store::registry::{ClientConfig, RegistryClient};
//! use futures_util::StreamExt;
//!
//! struct NameTags;
//!
//! impl Job for NameTags {
//!     type Unit = String;
//!     type Report = String;
//!     type Event = ();
//!
//!     fn named(&self, images: Vec<att2ref::model::digest::Digest>) -> Vec<String> {
//!         images.iter().map(ToString::to_string).collect()
//!     }
//!     fn list(&self, repo: Arc<AnyRepository>) -> futures_util::stream::BoxStream<'static, att2ref::Result<Vec<String>>> {
//!         futures_util::stream::once(async move { repo.list_tags().await }).boxed()
//!     }
//!     async fn run(&self, repo: &AnyRepository, tag: &String) -> String {
//!         format!("{}:{tag}", repo.name())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> att2ref::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let layout = LayoutRepository::create(dir.path(), att2ref::Limits::default())?;
//! att2ref::demo::demo()?.repo.push_to(&layout).await?;
//!
//! let client = RegistryClient::new(ClientConfig::default())?;
//! let given = vec![format!("ocidir://{}", dir.path().display())];
//! let options = TargetOptions::default();
//! let outcome = batch::run(&NameTags, targets::resolve(&given, &options, &client), 4, None, &()).await;
//! assert!(outcome.errors.is_empty());
//! assert_eq!(outcome.reports.len(), layout.list_tags().await?.len());
//! # Ok(())
//! # }
//! ```

pub mod journal;
mod listing;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;

use futures_util::stream::{BoxStream, FuturesUnordered};
use futures_util::{Stream, StreamExt};

pub use journal::Journal;
pub use listing::MAX_LISTED_AHEAD;
use listing::{Listed, Listing, Step};

use crate::error::Result;
use crate::model::digest::Digest;
use crate::store::{AnyRepository, Repository};
use crate::targets::{RepositoryTarget, TargetError};

/// A command's work, as the engine runs it.
pub trait Job: Sync {
    /// One unit of work inside a repository.
    type Unit: Send + Sync + 'static;
    /// What one unit produces.
    type Report: Send;
    /// What the journal records of one finished unit.
    type Event: serde::Serialize + Send + Sync;

    /// The units for images a target named (`REPO:tag`, `REPO@digest`, an index and its platforms).
    fn named(&self, images: Vec<Digest>) -> Vec<Self::Unit>;

    /// The units of a whole repository, page by page; the listing ends at its first error. Called when
    /// the repository is about to be listed (possibly while earlier repositories are still worked on)
    /// and read by a task of its own.
    fn list(&self, repo: Arc<AnyRepository>) -> BoxStream<'static, Result<Vec<Self::Unit>>>;

    /// Do one unit. Failures are part of the report: a batch goes on.
    fn run(&self, repo: &AnyRepository, unit: &Self::Unit) -> impl Future<Output = Self::Report> + Send;

    /// Once per repository, after its last unit. Returns the positions of the reports it changed, which
    /// the journal records again.
    fn finish(&self, repo: &AnyRepository, reports: &mut [Self::Report]) -> impl Future<Output = Vec<usize>> + Send {
        let _ = (repo, reports);
        async { Vec::new() }
    }

    /// What makes two units the same work, so a repository named by several targets (`REPO:1.0` and
    /// `REPO:latest` on one digest, `REPO` and `REPO:tag`) does each unit once. `None`: never merged.
    fn unit_key(&self, unit: &Self::Unit) -> Option<String> {
        let _ = unit;
        None
    }

    /// The journal event for a finished unit, if it is to be recorded.
    fn event(&self, report: &Self::Report) -> Option<Self::Event> {
        let _ = report;
        None
    }
}

/// Told about units as they are found and as they finish (progress bars).
pub trait Progress<R>: Send + Sync {
    /// `count` more units were found (a batch finds them as repositories are listed).
    fn found(&self, count: u64) {
        let _ = count;
    }

    /// One unit finished.
    fn done(&self, report: &R) {
        let _ = report;
    }
}

impl<R> Progress<R> for () {}

/// What a batch did: every report, and the targets (or repository listings) that failed.
#[derive(Debug)]
pub struct BatchOutcome<R> {
    /// One report per unit, grouped by repository in target order, units in listing order.
    pub reports: Vec<R>,
    /// Targets that could not be resolved, and repositories that could not be listed (completely).
    pub errors: Vec<TargetError>,
}

/// One repository while it is worked on.
struct InProgress<R> {
    repo: Arc<AnyRepository>,
    reports: Vec<Option<R>>,
    /// Units queued or running.
    outstanding: usize,
    listed: bool,
    /// Keys of the units taken so far (see [`Job::unit_key`]).
    taken: HashSet<String>,
}

impl<R> InProgress<R> {
    fn ready_to_finish(&self) -> bool {
        self.listed && self.outstanding == 0
    }
}

/// How many finished (or finishing) repositories [`run_streamed`] holds while an earlier one is still
/// in progress (or `jobs`, if more), before it waits to start another; the repositories already under
/// way then still finish (at most about `2 × jobs + MAX_WAITING` more).
pub const MAX_FINISHED_AHEAD: usize = 64;

/// How many units [`run_streamed`] starts beyond `jobs`, for units that gave their place back while they
/// wait on work others share ([`crate::slots::waiting`]): each such wait can then be shared by this many
/// more units, and what the waiting units hold stays bounded.
pub const MAX_WAITING: usize = 64;

/// Run `job` over every repository `targets` name, at most `jobs` units working at once across all of them
/// (see the module documentation), and return every report at the end. Poll it within a tokio runtime:
/// repositories are listed by tasks of their own.
pub async fn run<J, S>(
    job: &J,
    targets: S,
    jobs: usize,
    journal: Option<&Journal<J::Event>>,
    progress: &dyn Progress<J::Report>,
) -> BatchOutcome<J::Report>
where
    J: Job,
    S: Stream<Item = std::result::Result<RepositoryTarget, TargetError>> + Send,
{
    let mut reports = Vec::new();
    let errors = run_streamed(job, targets, jobs, journal, progress, &mut |done| reports.extend(done)).await;
    BatchOutcome { reports, errors }
}

/// [`run`], handing each repository's reports to `deliver` as soon as that repository and every one
/// before it in target order are finished (its [`Job::finish`] included), and dropping them: what the
/// engine holds is the repositories in progress and about [`MAX_FINISHED_AHEAD`] (or `jobs`) finished
/// ahead of an earlier one, never the whole run. Returns the targets and listings that failed.
pub async fn run_streamed<J, S>(
    job: &J,
    targets: S,
    jobs: usize,
    journal: Option<&Journal<J::Event>>,
    progress: &dyn Progress<J::Report>,
    deliver: &mut (dyn FnMut(Vec<J::Report>) + Send),
) -> Vec<TargetError>
where
    J: Job,
    S: Stream<Item = std::result::Result<RepositoryTarget, TargetError>> + Send,
{
    // The pool cannot hold more places than a semaphore can count; no machine runs that many units.
    let jobs = jobs.clamp(1, tokio::sync::Semaphore::MAX_PERMITS - MAX_WAITING);
    let max_ahead = MAX_FINISHED_AHEAD.max(jobs);
    // A place per unit working; units waiting on shared work give theirs back (see `crate::slots`).
    let pool = Arc::new(tokio::sync::Semaphore::new(jobs));
    let most_started = jobs + MAX_WAITING;
    let mut spare_place = None;
    let record = |report: &J::Report| {
        if let (Some(journal), Some(event)) = (journal, job.event(report))
            && let Err(e) = journal.record(&event)
        {
            tracing::warn!("{e}");
        }
    };
    let mut listed = Listing::new(job, targets, jobs);
    let mut listing_done = false;
    // The listing's next item, read ahead (see the loop).
    let mut peeked: Option<Option<Listed<J::Unit>>> = None;
    let mut errors = Vec::new();
    // Repositories being worked on, by position in target order; each leaves when its finishing
    // step starts.
    let mut repos: HashMap<usize, InProgress<J::Report>> = HashMap::new();
    let mut started = 0usize;
    // Repositories still taking units, by name: a later target naming one adds to it, so its units are
    // done once and its `finish` runs once, after all of them.
    let mut open: HashMap<String, usize> = HashMap::new();
    // The repository the listing is in.
    let mut current = 0usize;
    // Finished repositories waiting for an earlier one, and the next position to deliver.
    let mut finished: BTreeMap<usize, Vec<J::Report>> = BTreeMap::new();
    let mut delivered = 0usize;
    let mut queue: VecDeque<(usize, usize, J::Unit)> = VecDeque::new();
    let mut running = FuturesUnordered::new();
    let mut finishing = FuturesUnordered::new();

    loop {
        while running.len() < most_started
            && !queue.is_empty()
            && let Some(place) = spare_place.take().or_else(|| pool.clone().try_acquire_owned().ok())
        {
            let (r, i, unit) = queue.pop_front().expect("the queue was not empty");
            let repo = repos[&r].repo.clone();
            running.push(crate::slots::in_place(pool.clone(), place, async move {
                let report = job.run(&repo, &unit).await;
                record(&report);
                progress.done(&report);
                (r, i, report)
            }));
        }
        // Keep up to `jobs` units queued ahead of the pool, so no job waits for a listing; but start no
        // further repository while too many finished (or finishing) ones wait for an earlier one (their
        // reports are held until it is delivered). Only between repositories: the earliest one then
        // needs no more listing to finish, so the wait always ends (and with nothing under way there
        // would be nothing to wait for: the listing goes on rather than end the run).
        let between = repos.get(&current).is_none_or(|p| p.listed);
        let under_way = !running.is_empty() || !finishing.is_empty();
        let held_back = between && under_way && finished.len() + finishing.len() >= max_ahead;
        let want_more = !listing_done && queue.len() < jobs && !held_back;
        let mut ready = None;
        if want_more && let Some(next) = peeked.take() {
            match next {
                None => listing_done = true,
                Some(Listed::Start(repo)) => match open.get(&repo.name()) {
                    Some(&r) => {
                        if let Some(p) = repos.get_mut(&r) {
                            p.listed = false;
                        }
                        current = r;
                    }
                    None => {
                        open.insert(repo.name(), started);
                        current = started;
                        let taken = HashSet::new();
                        let p = InProgress { repo, reports: Vec::new(), outstanding: 0, listed: false, taken };
                        repos.insert(started, p);
                        started += 1;
                    }
                },
                Some(Listed::Units(units)) => {
                    let r = current;
                    let p = repos.get_mut(&r).expect("the listing's repository is in progress until its listing ends");
                    let units: Vec<J::Unit> =
                        units.into_iter().filter(|u| job.unit_key(u).is_none_or(|k| p.taken.insert(k))).collect();
                    progress.found(units.len() as u64);
                    let first = p.reports.len();
                    p.reports.extend(units.iter().map(|_| None));
                    p.outstanding += units.len();
                    queue.extend(units.into_iter().enumerate().map(|(k, u)| (r, first + k, u)));
                }
                Some(Listed::End) => {
                    if let Some(p) = repos.get_mut(&current) {
                        p.listed = true;
                    }
                    ready = Some(current);
                }
                Some(Listed::Failed(e)) => errors.push(e),
            }
        } else {
            if running.is_empty() && finishing.is_empty() && !want_more {
                break;
            }
            // A place given back by a waiting unit (or freed by one that ended) starts the next unit.
            let can_start = running.len() < most_started && !queue.is_empty() && spare_place.is_none();
            tokio::select! {
                place = pool.clone().acquire_owned(), if can_start => {
                    spare_place = Some(place.expect("the engine never closes its pool"));
                },
                // Read ahead by one item even while no more is wanted, and resolve targets into the
                // repositories listed ahead whenever there is room for them, so that what the listing
                // side has in flight (a catalog page, a look-up) runs to its end instead of holding a
                // request slot or a token fetch's turn that the running units wait for.
                step = listed.step(peeked.is_none()), if (peeked.is_none() && !listing_done) || listed.discovering() => {
                    if let Step::Item(next) = step {
                        peeked = Some(next);
                    }
                },
                Some((r, i, report)) = running.next(), if !running.is_empty() => {
                    let p = repos.get_mut(&r).expect("a repository with a unit running is in progress");
                    p.reports[i] = Some(report);
                    p.outstanding -= 1;
                    ready = Some(r);
                },
                Some((r, reports)) = finishing.next(), if !finishing.is_empty() => {
                    finished.insert(r, reports);
                    while let Some(reports) = finished.remove(&delivered) {
                        deliver(reports);
                        delivered += 1;
                    }
                },
                else => break,
            }
        }
        // Exactly once per repository: at the end of its listing, or when its last unit is done.
        if let Some(r) = ready.filter(|r| repos.get(r).is_some_and(InProgress::ready_to_finish)) {
            let Some(p) = repos.remove(&r) else { continue };
            // A target naming this repository from now on starts it anew (and finishes it again).
            if open.get(&p.repo.name()) == Some(&r) {
                open.remove(&p.repo.name());
            }
            let repo = p.repo;
            let mut reports: Vec<J::Report> = p.reports.into_iter().flatten().collect();
            finishing.push(async move {
                for changed in job.finish(&repo, &mut reports).await {
                    if let Some(report) = reports.get(changed) {
                        record(report);
                    }
                }
                (r, reports)
            });
        }
    }
    debug_assert!(finished.is_empty() && repos.is_empty(), "every repository started was finished and delivered");
    errors
}

#[cfg(test)]
mod tests;
