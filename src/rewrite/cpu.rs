//! CPU-bound work (verification, conversion) off the async runtime, on rayon's pool.
//!
//! Not `spawn_blocking`: its pool grows to hundreds of threads, so with `--jobs 8` eight images would
//! decode, hash and serialise their multi-megabyte payloads at once on a two-core machine — no faster,
//! but with eight sets of transient copies alive and spread over as many allocator arenas (that was most
//! of the peak RSS). Rayon runs one task per core; the other images wait, holding only their input.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{Error, ErrorKind, Result};

/// Run `work` on rayon's global pool and await its result. A panic in `work` is an error, not an abort.
pub(crate) async fn run<T: Send + 'static>(what: &'static str, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        // The receiver may be gone (the image's task was cancelled): nothing to report then.
        let _ = tx.send(catch_unwind(AssertUnwindSafe(work)));
    });
    match rx.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(Error::new(ErrorKind::Io, format!("{what}: the task panicked"))),
        Err(_) => Err(Error::new(ErrorKind::Io, format!("{what}: the task was dropped"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn results_and_panics_come_back() {
        assert_eq!(run("adding", || 2 + 2).await.unwrap(), 4);
        let err = run("panicking", || -> u8 { panic!("boom") }).await.unwrap_err();
        assert!(err.to_string().contains("panicking: the task panicked"), "{err}");
    }
}
