//! Removing entries from a referrers tag-schema index: the same conditional read-modify-write with
//! read-back as migration's index update, in the other direction.

use bytes::Bytes;

use crate::convert::remove_referrer;
use crate::error::{Error, ErrorKind, Result};
use crate::migrate::write::{backoff, fetch_index};
use crate::model::digest::Digest;
use crate::model::media_type as mt;
use crate::store::Repository;

/// Remove `entry` from the index under `tag` until a read-back no longer lists it. Returns whether an
/// edit was pushed. A missing tag or an entry not listed is a no-op.
pub(crate) async fn remove_entry<R: Repository>(repo: &R, tag: &str, entry: &Digest, max_retries: u32) -> Result<bool> {
    let what = || format!("removing {} from the referrers index tag {tag} of {}", entry.short(), repo.name());
    let mut pushed = false;
    let mut attempt = 0u32;
    loop {
        let (current, etag) = fetch_index(repo, tag).await.map_err(|e| e.context(what()))?;
        let Some(current) = current else {
            return Ok(pushed);
        };
        let update = remove_referrer(Some(current), entry);
        if update.is_noop() {
            return Ok(pushed);
        }
        let bytes = Bytes::from(update.to_bytes());
        // Conditional when the registry gave an entity tag, so a concurrent migrate's addition is not lost.
        let put = match &etag {
            Some(etag) => repo.put_manifest_if_match(bytes, mt::OCI_INDEX, tag, etag).await,
            None => repo.put_manifest(bytes, mt::OCI_INDEX, Some(tag)).await,
        };
        let mut conflict = false;
        match put {
            Ok(_) => pushed = true,
            Err(e) if e.kind() == ErrorKind::Conflict => conflict = true,
            Err(e) => return Err(e.context(what())),
        }
        // The loop's next read is the read-back: a concurrent writer that merged a stale copy brings the
        // entry back, and it is removed again.
        if attempt >= max_retries {
            let (after, _) = fetch_index(repo, tag).await.map_err(|e| e.context(what()))?;
            if after.is_none_or(|i| i.manifests.iter().all(|m| &m.digest != entry)) {
                return Ok(pushed);
            }
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "{}: still listed after {} attempts (concurrent writers); rerun to complete",
                    what(),
                    attempt + 1
                ),
            ));
        }
        attempt += 1;
        if conflict {
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
}
