//! Pacing per registry host: a cap on the requests in flight to one host, and one shared pause when it
//! answers 429 Too Many Requests.
//!
//! A batch runs many jobs against one registry. Without a shared view, each job that meets a 429 waits on
//! its own while the others keep sending, so the registry keeps refusing and requests run out of
//! attempts: the batch fails where it should have slowed down. Here a 429 pauses every request to that
//! host until the wait it asked for (its `Retry-After`, else our backoff) has passed, and halves how many
//! requests may be in flight at once — once per burst: the 429s of requests that were already in flight
//! when it was halved do not halve it again; answers that are not 429 let that number grow back by one
//! per window of successes (additive increase, multiplicative decrease), up to the configured cap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Every host's pace, created on first use.
pub(crate) struct Pacing {
    cap: usize,
    hosts: Mutex<HashMap<String, Arc<HostPace>>>,
}

impl Pacing {
    /// At most `cap` requests in flight per host (at least one).
    pub(crate) fn new(cap: usize) -> Pacing {
        Pacing { cap: cap.max(1), hosts: Mutex::default() }
    }

    /// The pace of `host` (an origin such as `registry.example:5000`).
    pub(crate) fn host(&self, host: &str) -> Arc<HostPace> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts.entry(host.to_owned()).or_insert_with(|| Arc::new(HostPace::new(self.cap))).clone()
    }
}

/// One host: its permits and what the last 429s decided.
pub(crate) struct HostPace {
    cap: usize,
    permits: Arc<Semaphore>,
    state: Mutex<PaceState>,
}

struct PaceState {
    /// Requests allowed in flight now (1..=cap).
    limit: usize,
    /// Permits to retire as they come back, after the limit was lowered below what was in flight.
    debt: usize,
    /// Answers other than 429 since the limit last changed.
    successes: usize,
    /// No request starts before this instant.
    paused_until: Option<Instant>,
    /// When the limit was last halved.
    lowered_at: Option<Instant>,
}

/// The right to have one request in flight; returned (or retired) on drop.
pub(crate) struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    pace: Arc<HostPace>,
    started: Instant,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.pace.state();
        // A permit owed to a lowered limit is retired instead of returned.
        if state.debt > 0
            && let Some(permit) = self.permit.take()
        {
            state.debt -= 1;
            permit.forget();
        }
    }
}

impl HostPace {
    fn new(cap: usize) -> HostPace {
        HostPace {
            cap,
            permits: Arc::new(Semaphore::new(cap)),
            state: Mutex::new(PaceState { limit: cap, debt: 0, successes: 0, paused_until: None, lowered_at: None }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PaceState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait until the host is not paused and a request may start.
    pub(crate) async fn start(self: &Arc<Self>) -> Slot {
        loop {
            let paused = self.state().paused_until.filter(|until| *until > Instant::now());
            if let Some(until) = paused {
                tokio::time::sleep_until(until).await;
                continue;
            }
            let permit = self.permits.clone().acquire_owned().await.expect("the semaphore is never closed");
            // A 429 may have come while this request waited for its permit.
            if self.state().paused_until.is_some_and(|until| until > Instant::now()) {
                drop(Slot { permit: Some(permit), pace: self.clone(), started: Instant::now() });
                continue;
            }
            return Slot { permit: Some(permit), pace: self.clone(), started: Instant::now() };
        }
    }

    /// The host answered 429 to the request of `slot` and asked for `wait` (or we chose it): pause every
    /// request to it that long and halve the requests allowed in flight, unless that request was already
    /// in flight when the limit was last halved (that halving answered the same burst).
    pub(crate) fn throttled(&self, slot: &Slot, wait: Duration) {
        let mut state = self.state();
        let now = Instant::now();
        let until = now + wait;
        state.paused_until = Some(state.paused_until.map_or(until, |u| u.max(until)));
        state.successes = 0;
        if state.lowered_at.is_some_and(|at| slot.started < at) {
            return;
        }
        state.lowered_at = Some(now);
        let lower = (state.limit / 2).max(1);
        let retire = state.limit - lower;
        state.limit = lower;
        // Permits not in use are retired at once; those in flight as they come back.
        let idle = self.permits.forget_permits(retire);
        state.debt += retire - idle;
    }

    /// The host answered something other than 429: after a window of such answers as long as the
    /// current limit, one more request may be in flight (up to the cap).
    pub(crate) fn answered(&self) {
        let mut state = self.state();
        if state.limit >= self.cap {
            return;
        }
        state.successes += 1;
        if state.successes >= state.limit {
            state.successes = 0;
            state.limit += 1;
            if state.debt > 0 {
                state.debt -= 1;
            } else {
                self.permits.add_permits(1);
            }
        }
    }

    /// Requests allowed in flight now.
    #[cfg(test)]
    fn limit(&self) -> usize {
        self.state().limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_most_the_cap_in_flight() {
        let pace = Pacing::new(2).host("r.example");
        let a = pace.start().await;
        let _b = pace.start().await;
        let third = tokio::time::timeout(Duration::from_millis(50), pace.start()).await;
        assert!(third.is_err(), "a third request waits while two are in flight");
        drop(a);
        tokio::time::timeout(Duration::from_millis(50), pace.start()).await.expect("a slot came back");
    }

    #[tokio::test]
    async fn hosts_are_paced_apart() {
        let pacing = Pacing::new(1);
        let _a = pacing.host("a.example").start().await;
        tokio::time::timeout(Duration::from_millis(50), pacing.host("b.example").start())
            .await
            .expect("another host has its own slots");
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_every_request_to_the_host() {
        let pace = Pacing::new(8).host("r.example");
        let begun = Instant::now();
        let refused = pace.start().await;
        pace.throttled(&refused, Duration::from_secs(3));
        drop(refused);
        let slot = pace.start().await;
        assert_eq!(begun.elapsed().as_secs(), 3, "no request starts before the wait the registry asked for");
        // A shorter second wait does not cut the first one short.
        pace.throttled(&slot, Duration::from_secs(5));
        pace.throttled(&slot, Duration::from_secs(1));
        drop(slot);
        let started = Instant::now();
        let _slot = pace.start().await;
        assert_eq!(started.elapsed().as_secs(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_halves_on_429_and_grows_back_by_one_per_window() {
        let pace = Pacing::new(8).host("r.example");
        let in_flight: Vec<Slot> = futures_util::future::join_all((0..8).map(|_| pace.start())).await;
        tokio::time::advance(Duration::from_millis(1)).await;
        pace.throttled(&in_flight[0], Duration::ZERO);
        assert_eq!(pace.limit(), 4);
        pace.throttled(&in_flight[1], Duration::ZERO);
        assert_eq!(pace.limit(), 4, "a burst of 429s to requests sent together halves the limit once");
        // Eight were in flight; as they come back, four are retired and four remain usable.
        drop(in_flight);
        // A request sent after the halving and refused too halves it again.
        let refused = pace.start().await;
        tokio::time::advance(Duration::from_millis(1)).await;
        pace.throttled(&refused, Duration::ZERO);
        assert_eq!(pace.limit(), 2);
        let _a = refused;
        let _b = pace.start().await;
        assert!(tokio::time::timeout(Duration::from_millis(50), pace.start()).await.is_err(), "only 2 now");
        pace.answered();
        assert_eq!(pace.limit(), 2, "a window is as many answers as the limit");
        pace.answered();
        assert_eq!(pace.limit(), 3);
        tokio::time::timeout(Duration::from_millis(50), pace.start()).await.expect("a third slot");
        for _ in 0..100 {
            pace.answered();
        }
        assert_eq!(pace.limit(), 8, "never above the cap");
    }

    #[tokio::test(start_paused = true)]
    async fn never_below_one() {
        let pace = Pacing::new(3).host("r.example");
        for _ in 0..5 {
            let refused = pace.start().await;
            tokio::time::advance(Duration::from_millis(1)).await;
            pace.throttled(&refused, Duration::ZERO);
        }
        assert_eq!(pace.limit(), 1);
        let _slot = pace.start().await;
    }
}
