//! One holder at a time per key — a token scope being fetched, a registry host being probed, a
//! repository being pruned — with any number of keys held at once, and only the keys in use kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::OwnedMutexGuard;

/// Per-key locks, created on first use and forgotten once nobody holds or waits for them.
#[derive(Debug, Default)]
pub(crate) struct KeyedLocks {
    keys: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The turn of one holder of a key; the next waiter's begins when it is dropped.
pub(crate) struct Turn<'a> {
    locks: &'a KeyedLocks,
    key: String,
    held: Option<OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    /// Wait until nobody else holds `key`, then hold it until the turn is dropped.
    pub(crate) async fn take(&self, key: &str) -> Turn<'_> {
        let lock = self.keys().entry(key.to_owned()).or_default().clone();
        Turn { locks: self, key: key.to_owned(), held: Some(lock.lock_owned().await) }
    }

    fn keys(&self) -> MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.held.take());
        let mut keys = self.locks.keys();
        // Only the map holds it now: nobody holds the key or waits for it.
        if keys.get(&self.key).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            keys.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_holder_per_key_and_only_keys_in_use_are_kept() {
        let locks = KeyedLocks::default();
        let a = locks.take("a").await;
        tokio::time::timeout(Duration::from_millis(50), locks.take("b")).await.expect("another key is free");
        assert!(tokio::time::timeout(Duration::from_millis(50), locks.take("a")).await.is_err(), "a is held");
        assert_eq!(locks.keys().len(), 1, "b was forgotten once its turn ended");
        drop(a);
        let again = tokio::time::timeout(Duration::from_millis(50), locks.take("a")).await.expect("a came back");
        drop(again);
        assert!(locks.keys().is_empty());
    }
}
