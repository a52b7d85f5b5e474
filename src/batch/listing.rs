//! The listing side of the engine: targets in order, each repository followed by its units page by page,
//! with the next few repositories listed while the engine still takes units from an earlier one.
//!
//! Listing one repository costs at least one round trip, and most repositories of a registry hold few
//! images (or none with attestations): listed one after another, a run over a remote registry would
//! spend a round trip per repository in a row, whatever `--jobs` says. So up to `jobs` repositories
//! (at most [`MAX_LISTED_AHEAD`]) are listed at once, each by a task of its own that reads its first
//! page ahead and each later one when the engine asks for it. Nothing the engine does not poll is
//! ever left half done: a listing task always runs, and the targets stream (whose next item may be a
//! catalog page) is polled again until it yields whenever it was polled once (see
//! [`Listing::discovering`]).

use std::collections::VecDeque;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::{Stream, StreamExt};
use tokio::sync::{Notify, mpsc};

use super::Job;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{AnyRepository, Repository};
use crate::targets::{RepositoryTarget, TargetError};

/// The most repositories listed at once (the one units are taken from and those after it).
pub const MAX_LISTED_AHEAD: usize = 16;

/// What the listing side produces, in order.
pub(super) enum Listed<U> {
    /// A repository starts; the units that follow are its own.
    Start(Arc<AnyRepository>),
    /// More units of the current repository.
    Units(Vec<U>),
    /// The current repository's listing is complete.
    End,
    /// A target failed, or the current repository's listing did (then `End` follows).
    Failed(TargetError),
}

/// What one step of the listing side gave.
pub(super) enum Step<U> {
    /// The next item (`None`: the listing is over).
    Item(Option<Listed<U>>),
    /// No item was asked for; a repository was added to those listed ahead.
    Discovered,
}

/// The targets, resolved and listed up to `most_ahead` repositories ahead.
pub(super) struct Listing<'j, J: Job, S> {
    job: &'j J,
    targets: Pin<Box<S>>,
    targets_done: bool,
    ahead: VecDeque<Ahead<J::Unit>>,
    most_ahead: usize,
    /// A repository whose listing must not start before those ahead of it are listed (see
    /// [`AnyRepository::shares_attachments`]).
    deferred: Option<RepositoryTarget>,
}

impl<'j, J, S> Listing<'j, J, S>
where
    J: Job,
    S: Stream<Item = std::result::Result<RepositoryTarget, TargetError>> + Send,
{
    /// `targets`, with up to `most_ahead` repositories listed at once (at least one, at most
    /// [`MAX_LISTED_AHEAD`]).
    pub(super) fn new(job: &'j J, targets: S, most_ahead: usize) -> Self {
        let most_ahead = most_ahead.clamp(1, MAX_LISTED_AHEAD);
        Listing {
            job,
            targets: Box::pin(targets),
            targets_done: false,
            ahead: VecDeque::new(),
            most_ahead,
            deferred: None,
        }
    }

    /// Whether the listing side has targets to resolve and room for them: it must then be polled
    /// ([`Listing::step`]) even when no item is wanted, so that a target look-up or catalog page it has
    /// started runs to its end instead of holding what the running units wait for.
    pub(super) fn discovering(&self) -> bool {
        !self.targets_done && self.deferred.is_none() && self.ahead.len() < self.most_ahead
    }

    /// The next item when `want_item`; otherwise, resolve targets into repositories listed ahead until
    /// one is added (or never, when there is nothing to resolve or no room).
    pub(super) async fn step(&mut self, want_item: bool) -> Step<J::Unit> {
        std::future::poll_fn(|cx| self.poll_step(cx, want_item)).await
    }

    fn poll_step(&mut self, cx: &mut Context<'_>, want_item: bool) -> Poll<Step<J::Unit>> {
        let discovered = self.poll_discover(cx);
        if !want_item {
            return if discovered { Poll::Ready(Step::Discovered) } else { Poll::Pending };
        }
        loop {
            let Some(front) = self.ahead.front_mut() else {
                let over = self.targets_done && self.deferred.is_none();
                return if over { Poll::Ready(Step::Item(None)) } else { Poll::Pending };
            };
            match front.poll_item(cx) {
                Poll::Ready(Some(item)) => return Poll::Ready(Step::Item(Some(item))),
                Poll::Ready(None) => {
                    self.ahead.pop_front();
                    // Its place goes to the next target.
                    self.poll_discover(cx);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Take targets while there is room; whether any was added.
    fn poll_discover(&mut self, cx: &mut Context<'_>) -> bool {
        let mut added = false;
        loop {
            if self.ahead.is_empty()
                && let Some(target) = self.deferred.take()
            {
                self.ahead.push_back(Ahead::new(self.job, Ok(target)));
                added = true;
            }
            if !self.discovering() {
                return added;
            }
            match self.targets.as_mut().poll_next(cx) {
                // A repository sharing the run's attachments listing claims the images its tags name
                // as it lists them, and an image tagged in several is the first one's: such
                // repositories wait until nothing is listed ahead of them, so they are listed one
                // after another, in target order, and the owner is the same in every run.
                Poll::Ready(Some(Ok(target))) if target.images.is_none() && target.repo.shares_attachments() => {
                    self.deferred = Some(target);
                }
                Poll::Ready(Some(target)) => {
                    self.ahead.push_back(Ahead::new(self.job, target));
                    added = true;
                }
                Poll::Ready(None) => self.targets_done = true,
                Poll::Pending => return added,
            }
        }
    }
}

/// One target while it is listed ahead or taken from.
enum Ahead<U> {
    /// It could not be resolved.
    Failed(Option<TargetError>),
    /// A repository.
    Repository { repo: Arc<AnyRepository>, started: bool, units: Units<U> },
}

/// Where a repository's units come from.
enum Units<U> {
    /// The images a target named, not yet taken.
    Named(Option<Vec<U>>),
    /// The repository's listing, read by a task of its own.
    Listed(ListingTask<U>),
    /// Everything was taken, `End` included.
    Ended,
}

impl<U: Send + Sync + 'static> Ahead<U> {
    fn new<J: Job<Unit = U>>(job: &J, target: std::result::Result<RepositoryTarget, TargetError>) -> Ahead<U> {
        let target = match target {
            Ok(t) => t,
            Err(e) => return Ahead::Failed(Some(e)),
        };
        let repo = Arc::new(target.repo);
        let units = match target.images {
            Some(images) => Units::Named(Some(job.named(images))),
            None => Units::Listed(ListingTask::start(target.target, repo.clone(), job.list(repo.clone()))),
        };
        Ahead::Repository { repo, started: false, units }
    }

    /// The next item of this target; `None` once all were taken.
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Listed<U>>> {
        let (repo, started, units) = match self {
            Ahead::Failed(e) => return Poll::Ready(e.take().map(Listed::Failed)),
            Ahead::Repository { repo, started, units } => (repo, started, units),
        };
        if !*started {
            *started = true;
            return Poll::Ready(Some(Listed::Start(repo.clone())));
        }
        match units {
            Units::Named(named) => {
                let item = match named.take() {
                    Some(units) => Listed::Units(units),
                    None => {
                        *units = Units::Ended;
                        Listed::End
                    }
                };
                Poll::Ready(Some(item))
            }
            Units::Listed(task) => match task.poll_page(cx) {
                Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
                Poll::Ready(None) => {
                    *units = Units::Ended;
                    Poll::Ready(Some(Listed::End))
                }
                Poll::Pending => Poll::Pending,
            },
            Units::Ended => Poll::Ready(None),
        }
    }
}

/// A repository's listing, read by a task of its own: its first page at once, each later page when the
/// engine asks for one and none is waiting, so a listing is read no further ahead than the engine's own
/// read-ahead. It stops after the first error, and is cancelled when dropped.
struct ListingTask<U> {
    target: String,
    repo: String,
    pages: mpsc::Receiver<Result<Vec<U>>>,
    /// A page was asked for and has not arrived yet.
    asked: bool,
    ask: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
    /// The task has ended and was awaited.
    joined: bool,
}

impl<U: Send + 'static> ListingTask<U> {
    fn start(
        target: String,
        repo: Arc<AnyRepository>,
        mut listing: futures_util::stream::BoxStream<'static, Result<Vec<U>>>,
    ) -> ListingTask<U> {
        let (sender, pages) = mpsc::channel(1);
        let ask = Arc::new(Notify::new());
        // The first page is asked for now: that is what reading ahead is for.
        ask.notify_one();
        let asked = ask.clone();
        let task = tokio::spawn(async move {
            loop {
                asked.notified().await;
                let Some(page) = listing.next().await else { return };
                let failed = page.is_err();
                // At most one page is asked for at a time, so the channel has room for it.
                if sender.send(page).await.is_err() || failed {
                    return;
                }
            }
        });
        ListingTask { target, repo: repo.name(), pages, asked: true, ask, task, joined: false }
    }

    /// The next page as an item; `None` once the listing ended.
    fn poll_page(&mut self, cx: &mut Context<'_>) -> Poll<Option<Listed<U>>> {
        if self.joined {
            return Poll::Ready(None);
        }
        let received = self.pages.poll_recv(cx);
        if let Poll::Ready(Some(_)) = received {
            self.asked = false;
        }
        match received {
            Poll::Ready(Some(Ok(units))) => Poll::Ready(Some(Listed::Units(units))),
            Poll::Ready(Some(Err(e))) => {
                let e = e.context(format!("listing tags of {}", self.repo));
                Poll::Ready(Some(Listed::Failed(TargetError::new(&self.target, &e))))
            }
            // The task let go of its end: it returned (the listing is complete), panicked or was cancelled.
            Poll::Ready(None) => Pin::new(&mut self.task).poll(cx).map(|ended| {
                self.joined = true;
                match ended {
                    Ok(()) => None,
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(e) => {
                        let e = Error::new(ErrorKind::Io, format!("listing tags of {}: {e}", self.repo));
                        Some(Listed::Failed(TargetError::new(&self.target, &e)))
                    }
                }
            }),
            // Nothing received: ask for the next page, unless the one asked for is still on its way
            // (pages are sent only when asked for, so a page can wait in the channel only then).
            Poll::Pending => {
                if !self.asked {
                    self.asked = true;
                    self.ask.notify_one();
                }
                Poll::Pending
            }
        }
    }
}

impl<U> Drop for ListingTask<U> {
    fn drop(&mut self) {
        self.task.abort();
    }
}
