//! Reads shared only between callers for whom they are fresh.
//!
//! Before it deletes, each repository of a run that shares one attachments repository must see every tag
//! of it as it is at that moment: a delete by digest there drops every tag on that digest, whichever image
//! the tag is for. Reading it once per repository costs (repositories that delete) × (its tags) requests;
//! reading it once for the run would let a tag that moved onto a digest after that read lose what it holds.
//!
//! [`FreshReads`] gives each caller the result of a read that *began after the caller asked*: never one
//! that was already under way, so what the caller gets is at least as recent as its own read would have
//! been. One read runs at a time, and every caller that asked while it ran shares the next one. How many
//! reads a run makes then follows how long its deletes go on, over how long one read takes, not how many
//! repositories delete. A read that fails is not shared: each caller still waiting starts its own.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::Result;

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
    /// The last read that succeeded, with its number.
    latest: Option<(u64, Arc<T>)>,
}

impl<T> Default for FreshReads<T> {
    fn default() -> Self {
        FreshReads { state: Mutex::new(State { begun: 0, latest: None }), turn: tokio::sync::Mutex::new(()) }
    }
}

impl<T> FreshReads<T> {
    /// The result of a read (`read`, or another caller's) that began after this call.
    pub(crate) async fn read<F, Fut>(&self, read: F) -> Result<Arc<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        // Any read numbered at least this one begins after now: numbers are only taken under `turn`,
        // and the one under way (if any) already has its number.
        let wanted = self.state().begun + 1;
        let _turn = self.turn.lock().await;
        if let Some((number, value)) = &self.state().latest
            && *number >= wanted
        {
            return Ok(value.clone());
        }
        let number = {
            let mut state = self.state();
            state.begun += 1;
            state.begun
        };
        // A read dropped half-way (its caller cancelled) leaves `latest` as it was; the next caller reads.
        let value = Arc::new(read().await?);
        self.state().latest = Some((number, value.clone()));
        Ok(value)
    }

    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
                true => Err(Error::new(ErrorKind::Network, format!("read {n} failed"))),
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

    #[tokio::test]
    async fn callers_that_ask_during_a_read_share_the_next_one_and_never_the_one_under_way() {
        let (source, mut begun) = Gated::new();
        let reads = Arc::new(FreshReads::default());
        let first = ask(&reads, &source);
        assert_eq!(next_read(&mut begun).await, 1);
        // Asked while read 1 runs: read 1 began before them, so it is not theirs.
        let (second, third) = (ask(&reads, &source), ask(&reads, &source));
        settle().await;
        release(&source);
        assert_eq!(answer(first).await.unwrap(), 1);
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

    #[tokio::test]
    async fn a_failed_read_is_not_shared_each_waiting_caller_reads_again() {
        let (source, mut begun) = Gated::new();
        source.fail_read(2);
        let reads = Arc::new(FreshReads::default());
        let first = ask(&reads, &source);
        assert_eq!(next_read(&mut begun).await, 1);
        let (second, third) = (ask(&reads, &source), ask(&reads, &source));
        settle().await;
        release(&source);
        assert_eq!(answer(first).await.unwrap(), 1);
        assert_eq!(next_read(&mut begun).await, 2);
        release(&source);
        // Read 2 fails for the caller that made it; the other makes read 3 rather than take read 1.
        assert_eq!(next_read(&mut begun).await, 3);
        release(&source);
        let mut got = [answer(second).await, answer(third).await];
        got.sort_by_key(|r| r.is_ok());
        assert_eq!(got, [Err(ErrorKind::Network), Ok(3)]);
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
