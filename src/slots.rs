//! The places of the batch engine's pool, and giving one back while a unit waits on work others share.
//!
//! `--jobs N` bounds the units working at once ([`crate::batch`]). Some waits are not work: every
//! repository of a run that is about to delete in a shared attachments repository waits for a read of it
//! that began after it asked, and one read serves every repository waiting at that moment. A unit that
//! kept its place while it waited would let at most N repositories share each read, so a run over R
//! repositories would read the whole attachments repository about R / N times. [`waiting`] gives the
//! place back for such a wait and takes one again, in turn with the others, before the unit goes on:
//! `jobs` still bounds the units working, and the engine bounds how many more it starts
//! ([`crate::batch::MAX_WAITING`]).
//!
//! The shared work itself runs inside the wait of the unit that started it, without a place: at most
//! `jobs` units work, plus that one shared read (the store's reads run one at a time, their requests
//! under the registry's request cap like any others). Every unit waiting depends on it, so it is not
//! made to queue for a place behind the work that does not.
//!
//! This module sits below the store so that the store's shared reads can use it; the engine is the only
//! one to give out places.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

tokio::task_local! {
    static PLACE: Place;
}

/// A unit's place in the pool: its permit while it works, none while it waits.
struct Place {
    pool: Arc<Semaphore>,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
}

/// Run `unit` in the place `permit` of `pool` gives it; [`waiting`] inside `unit` gives the place back
/// for a while. The permit is released when `unit` ends or is dropped.
pub(crate) async fn in_place<F: Future>(pool: Arc<Semaphore>, permit: OwnedSemaphorePermit, unit: F) -> F::Output {
    PLACE.scope(Place { pool, permit: Mutex::new(Some(permit)) }, unit).await
}

/// Await `shared` (work that other units share, or wait for) without a place in the batch engine's pool,
/// then take a place again before returning, waiting for one if every place is taken. Outside a unit of
/// the engine, inside a wait that already gave its place back, or in a task the unit spawned, it only
/// awaits `shared`.
///
/// A unit waits for one thing at a time: two `waiting` calls polled side by side in one unit (in a
/// `join`) would give the place back once, and the unit would go on without one if the second ended
/// first.
pub async fn waiting<F: Future>(shared: F) -> F::Output {
    let given_back = PLACE
        .try_with(|place| {
            let permit = place.permit.lock().unwrap_or_else(|p| p.into_inner()).take();
            permit.map(|permit| (place.pool.clone(), permit))
        })
        .ok()
        .flatten();
    let Some((pool, permit)) = given_back else { return shared.await };
    drop(permit);
    let out = shared.await;
    // Tokio's semaphore serves waiters in order: a unit coming back queues behind those before it. The
    // engine asks for a place for the next new unit at most once at a time, so that one may come first;
    // no unit coming back is passed by more than one new unit.
    let permit = pool.acquire_owned().await.expect("the engine never closes its pool");
    let _ = PLACE.try_with(|place| *place.permit.lock().unwrap_or_else(|p| p.into_inner()) = Some(permit));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiting_unit_gives_its_place_back_and_takes_one_again() {
        let pool = Arc::new(Semaphore::new(1));
        let permit = pool.clone().acquire_owned().await.unwrap();
        let seen = pool.clone();
        let during = in_place(pool.clone(), permit, async move {
            let before = seen.available_permits();
            let during = waiting(async { seen.available_permits() }).await;
            let nested = waiting(async { waiting(async { seen.available_permits() }).await }).await;
            (before, during, nested, seen.available_permits())
        })
        .await;
        assert_eq!(during, (0, 1, 1, 0), "held, given back, given back once when nested, held again");
        assert_eq!(pool.available_permits(), 1, "released when the unit ends");
    }

    #[tokio::test]
    async fn outside_a_unit_it_only_awaits() {
        assert_eq!(waiting(async { 7 }).await, 7);
    }
}
