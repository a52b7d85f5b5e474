//! Reads shared only between callers for whom they are fresh.
//!
//! Before it deletes, each repository of a run that shares one attachments repository must see every tag
//! of it as it is at that moment: a delete by digest there drops every tag on that digest, whichever image
//! the tag is for. Reading it once per repository costs (repositories that delete) × (its tags) requests;
//! reading it once for the run would let a tag that moved onto a digest after that read lose what it holds.
//!
//! [`FreshReads`] gives each caller the outcome of a read that *began after the caller asked*: never one
//! that was already under way, so what the caller gets is at least as recent as its own read would have
//! been. One read runs at a time, and every caller that asked while it ran shares the next one. How many
//! reads a run makes is then at most the number of repositories that delete, and about the time over
//! which they ask divided by the time of one read when that is fewer. A read that fails fails every
//! caller it was fresh for, as their own reads at that moment would likely have (they delete nothing
//! then); callers that ask later read again. So a registry that fails or hangs costs the run one failed
//! read per round of waiting repositories, not one per repository, one after another.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};

/// Coalesced reads of one value; see the module docs.
#[derive(Debug)]
pub(crate) struct FreshReads<T> {
    state: Mutex<State<T>>,
    /// Held for the whole of a read, so that reads never overlap and callers queue in order.
    turn: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct State<T> {
    /// Reads begun so far; a read's number is the count once it began.
    begun: u64,
    /// The last read that ended, with its number.
    latest: Option<(u64, Outcome<T>)>,
}

/// How a read ended, as every caller it was for gets it.
type Outcome<T> = std::result::Result<Arc<T>, Arc<Error>>;

impl<T> Default for FreshReads<T> {
    fn default() -> Self {
        FreshReads { state: Mutex::new(State { begun: 0, latest: None }), turn: tokio::sync::Mutex::new(()) }
    }
}

impl<T> FreshReads<T> {
    /// The outcome of a read (`read`, or another caller's) that began after this call.
    pub(crate) async fn read<F, Fut>(&self, read: F) -> Result<Arc<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        // `begun` is raised under `state` before a read is first polled, so any read numbered above what
        // it is now begins after now. (A caller that asks between a raise and that read's first poll
        // waits for one read more than it needs: never less fresh.)
        let wanted = self.state().begun + 1;
        let _turn = self.turn.lock().await;
        if let Some((number, outcome)) = &self.state().latest
            && *number >= wanted
        {
            return outcome.clone().map_err(|e| shared_failure(&e));
        }
        let number = {
            let mut state = self.state();
            state.begun += 1;
            state.begun
        };
        // A read dropped half-way (its caller cancelled) leaves `latest` as it was; the next caller reads.
        match read().await {
            Ok(value) => {
                let value = Arc::new(value);
                self.state().latest = Some((number, Ok(value.clone())));
                Ok(value)
            }
            Err(e) => {
                let e = Arc::new(e);
                self.state().latest = Some((number, Err(e.clone())));
                Err(shared_failure(&e))
            }
        }
    }

    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The failure of a shared read, for one of the callers it was for: the same kind, status and words
/// (cause chain included), since an error is not `Clone`.
fn shared_failure(e: &Error) -> Error {
    let copy = Error::new(e.kind(), format!("{e:#}"));
    match e.http_status() {
        Some(status) => copy.with_status(status),
        None => copy,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use tokio::sync::{Semaphore, mpsc};

    use super::*;
    use crate::error::{Error, ErrorKind};

    /// A source whose reads each take a permit of `gate` before they finish, and say when they begin.
    struct Gated {
        reads: AtomicU64,
        gate: Semaphore,
        begun: mpsc::UnboundedSender<u64>,
        fail: Mutex<Vec<u64>>,
    }

    impl Gated {
        fn new() -> (Arc<Gated>, mpsc::UnboundedReceiver<u64>) {
            let (begun, rx) = mpsc::unbounded_channel();
            let gated =
                Gated { reads: AtomicU64::new(0), gate: Semaphore::new(0), begun, fail: Mutex::new(Vec::new()) };
            (Arc::new(gated), rx)
        }

        /// Read number n (from 1) fails.
        fn fail_read(&self, n: u64) {
            self.fail.lock().unwrap().push(n);
        }

        async fn read(&self) -> Result<u64> {
            let n = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
            self.begun.send(n).unwrap();
            self.gate.acquire().await.unwrap().forget();
            match self.fail.lock().unwrap().contains(&n) {
                true => Err(Error::new(ErrorKind::Registry, format!("read {n} failed")).with_status(503)),
                false => Ok(n),
            }
        }
    }

    /// Let one read of `source` finish.
    fn release(source: &Gated) {
        source.gate.add_permits(1);
    }

    fn ask(reads: &Arc<FreshReads<u64>>, source: &Arc<Gated>) -> tokio::task::JoinHandle<Result<u64>> {
        let (reads, source) = (reads.clone(), source.clone());
        tokio::spawn(async move { reads.read(|| async { source.read().await }).await.map(|v| *v) })
    }

    /// The number of the next read to begin; a wait that never ends fails the test instead.
    async fn next_read(begun: &mut mpsc::UnboundedReceiver<u64>) -> u64 {
        let next = tokio::time::timeout(Duration::from_secs(10), begun.recv()).await;
        next.expect("no read began").unwrap()
    }

    /// What a caller got; a caller that never gets an answer fails the test instead.
    async fn answer(caller: tokio::task::JoinHandle<Result<u64>>) -> std::result::Result<u64, ErrorKind> {
        let got = tokio::time::timeout(Duration::from_secs(10), caller).await.expect("the caller got no answer");
        got.unwrap().map_err(|e| e.kind())
    }

    /// Lets the callers spawned so far run until each waits (for its turn or for a release): the test
    /// runtime has one thread, so they run only while this yields.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    /// A first caller's read begins; two more callers ask while it runs (it began before them, so it is
    /// not theirs); then it ends and the first caller gets it. The two are still waiting.
    async fn two_asking_during_the_first_read(
        reads: &Arc<FreshReads<u64>>,
        source: &Arc<Gated>,
        begun: &mut mpsc::UnboundedReceiver<u64>,
    ) -> (tokio::task::JoinHandle<Result<u64>>, tokio::task::JoinHandle<Result<u64>>) {
        let first = ask(reads, source);
        assert_eq!(next_read(begun).await, 1);
        let (second, third) = (ask(reads, source), ask(reads, source));
        settle().await;
        release(source);
        assert_eq!(answer(first).await, Ok(1));
        (second, third)
    }

    #[tokio::test]
    async fn callers_that_ask_during_a_read_share_the_next_one_and_never_the_one_under_way() {
        let (source, mut begun) = Gated::new();
        let reads = Arc::new(FreshReads::default());
        let (second, third) = two_asking_during_the_first_read(&reads, &source, &mut begun).await;
        assert_eq!(next_read(&mut begun).await, 2, "one read for both");
        // Asked while read 2 runs: it waits for read 3.
        let fourth = ask(&reads, &source);
        settle().await;
        release(&source);
        assert_eq!((answer(second).await.unwrap(), answer(third).await.unwrap()), (2, 2));
        assert_eq!(next_read(&mut begun).await, 3);
        release(&source);
        assert_eq!(answer(fourth).await.unwrap(), 3);
        assert_eq!(source.reads.load(Ordering::SeqCst), 3, "four callers, three reads");
        // Nothing under way: a caller still reads afresh rather than take read 3.
        let fifth = ask(&reads, &source);
        assert_eq!(next_read(&mut begun).await, 4);
        release(&source);
        assert_eq!(answer(fifth).await.unwrap(), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn on_many_threads_every_caller_gets_a_read_begun_after_it_asked() {
        // Reads numbered as they begin; each caller notes how many had begun before it asked, so the
        // read it gets must have a larger number.
        let begun = Arc::new(AtomicU64::new(0));
        let reads = Arc::new(FreshReads::default());
        let callers: Vec<_> = (0..200u64)
            .map(|i| {
                let (begun, reads) = (begun.clone(), reads.clone());
                tokio::spawn(async move {
                    // Arrivals spread over many polls (the timer's 1 ms would bunch them).
                    for _ in 0..(i * 37 % 50) {
                        tokio::task::yield_now().await;
                    }
                    let before = begun.load(Ordering::SeqCst);
                    let got = reads
                        .read(|| async {
                            let n = begun.fetch_add(1, Ordering::SeqCst) + 1;
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            Ok(n)
                        })
                        .await
                        .unwrap();
                    (before, *got)
                })
            })
            .collect();
        for caller in callers {
            let (before, got) = caller.await.unwrap();
            assert!(got > before, "a caller that asked after {before} reads began got read {got}");
        }
        assert!(begun.load(Ordering::SeqCst) < 200, "callers shared reads");
    }

    #[tokio::test]
    async fn a_failed_read_fails_the_callers_it_was_fresh_for_and_later_ones_read_again() {
        let (source, mut begun) = Gated::new();
        source.fail_read(2);
        let reads = Arc::new(FreshReads::default());
        let (second, third) = two_asking_during_the_first_read(&reads, &source, &mut begun).await;
        assert_eq!(next_read(&mut begun).await, 2);
        release(&source);
        // Read 2 began after both asked: its failure is both callers' (neither takes read 1 instead), with
        // what reports and exit codes are made of: kind, status and words.
        for caller in [second, third] {
            let e = tokio::time::timeout(Duration::from_secs(10), caller).await.unwrap().unwrap().unwrap_err();
            assert_eq!(
                (e.kind(), e.http_status(), e.to_string()),
                (ErrorKind::Registry, Some(503), "read 2 failed".into())
            );
        }
        assert_eq!(source.reads.load(Ordering::SeqCst), 2, "one failed read for both");
        // Asked after it: a failure from before is not theirs either.
        let fourth = ask(&reads, &source);
        assert_eq!(next_read(&mut begun).await, 3);
        release(&source);
        assert_eq!(answer(fourth).await, Ok(3));
    }

    #[tokio::test]
    async fn a_read_dropped_half_way_leaves_the_next_caller_to_read() {
        let (source, mut begun) = Gated::new();
        let reads = Arc::new(FreshReads::default());
        let first = ask(&reads, &source);
        assert_eq!(next_read(&mut begun).await, 1);
        let second = ask(&reads, &source);
        settle().await;
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        assert_eq!(next_read(&mut begun).await, 2);
        release(&source);
        assert_eq!(answer(second).await, Ok(2));
    }
}
