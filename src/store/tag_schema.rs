//! The referrers tag schema (distribution-spec 1.1, "Pushing Manifests with Subject"): on a registry
//! without the referrers API, the referrers of a subject are listed in an image index under the tag
//! `sha256-<hex>`, which every writer rewrites. This module is the one place that reads, merges,
//! conditionally writes, reads back, retries, settles and edits that index, for every command.
//!
//! The update is a read-modify-write on a tag. distribution 2.8.2 cannot make it conditional: it
//! ignores `If-Match` on manifest PUTs, so two writers that read the same index and push their own
//! merges overwrite each other's entries (a lost update). What this module does about it:
//!
//! - **Tight window.** The merge between our GET and our PUT is pure, except with `repair` (which
//!   fetches manifests); then the index is read again right before the PUT and the merge restarts if it
//!   moved.
//! - **Read-back and re-merge.** After each PUT the index is read back; if any of our entries is
//!   missing it is merged again and pushed, with jittered backoff, a bounded number of times. Entries
//!   are keyed by digest, so a merge never lists a referrer twice and never drops a foreign entry.
//! - **Delayed confirmation.** A writer that read the index just before our PUT and pushes just after
//!   our read-back erases us silently. [`add_to_index`] and [`settle`] therefore read once more after
//!   a jittered delay ([`CONFIRM_DELAY`]) that is far longer than a well-behaved writer's GET-to-PUT
//!   window, and merge again if needed.
//! - **Settle pass.** `migrate` and `copy` call [`settle`] once per repository, for every image they wrote
//!   there, as soon as that repository's last image is done and a full confirmation delay (with jitter)
//!   after that moment, re-listing anything a concurrent writer dropped. On a registry with the referrers
//!   API there is no index to settle and no delay.
//! - **Removal** ([`remove_entry`]) is the same conditional read-modify-write with read-back, in the
//!   other direction.
//!
//! Residual risk, without compare-and-swap: an entry can still be lost when another writer's GET
//! precedes our last read and its PUT lands after it — a writer that holds an index for longer than the
//! confirmation delay, or one that pushes a stale index without reading it back (e.g. a tool killed
//! between GET and PUT and later resumed). Our own entries are then re-listed by the next run (a rerun
//! is cheap: everything else is present); a third-party tool's entry lost this way is only recovered by
//! that tool. Registries that honour `If-Match` (412 on a changed index) or that serve the referrers
//! API have no such window.

use std::time::Duration;

use bytes::Bytes;

use super::{ReferrersCapability, Repository};
use crate::error::{Error, ErrorKind, Result};
use crate::model::digest::Digest;
use crate::model::media_type as mt;
use crate::model::oci::{Descriptor, Index, Manifest, RawManifest, to_canonical_bytes};
use crate::model::referrers_index::{IndexChange, add_referrer, referrer_entry, remove_referrers, repair_entries};

/// What an index update did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Index manifests pushed.
    pub manifests_written: u64,
    /// Bytes of index manifests pushed.
    pub bytes_written: u64,
    /// Index pushes repeated after a lost update.
    pub index_retries: u64,
    /// Whether the index was written.
    pub index_updated: bool,
    /// Existing entries repaired (`repair`).
    pub entries_repaired: u64,
    /// Whether a read of the index after the last push listed every entry: the consumer's discovery
    /// path on a registry without the referrers API, so a read-back need not list them again.
    pub index_confirmed: bool,
}

/// How the tag-schema index update behaves.
#[derive(Clone, Copy, Debug)]
pub struct IndexOptions {
    /// Fill missing `artifactType`/annotations of existing entries too.
    pub repair: bool,
    /// Read-back-and-merge rounds after the first push.
    pub max_retries: u32,
}

/// List `entries` in `subject`'s referrers tag-schema index, merging them into whatever it holds and
/// keeping every other entry: for tools that push their own referrers to a registry without the
/// referrers API. Safe to race with other writers that use it (see the module docs for what remains).
pub async fn add_to_index<R: Repository>(
    repo: &R,
    subject: &Digest,
    entries: &[Descriptor],
    options: IndexOptions,
) -> Result<IndexStats> {
    update_index(repo, subject, entries, options, true).await
}

/// After a run: make sure `subject`'s tag-schema index still lists every referrer in `referrers` (all
/// written earlier by this run), re-listing any that a concurrent writer dropped. Their entries are
/// rebuilt from the manifests themselves; every other entry is kept. Does nothing on a registry that
/// indexes referrers itself; an index deleted since the run is rebuilt.
pub async fn settle<R: Repository>(
    repo: &R,
    subject: &Digest,
    referrers: &[Digest],
    options: IndexOptions,
) -> Result<IndexStats> {
    let stats = IndexStats::default();
    if repo.referrers_capability() == ReferrersCapability::Supported || referrers.is_empty() {
        return Ok(stats);
    }
    let tag = subject.referrers_tag();
    let what = || format!("re-checking the referrers index tag {tag} of {} after the run", repo.name());
    // An index that is gone lost every entry: rebuild it, rather than leave the referrers undiscoverable.
    let listed: Vec<Digest> = match fetch_index(repo, &tag).await.map_err(|e| e.context(what()))? {
        (Some(index), _) => index.manifests.into_iter().map(|m| m.digest).collect(),
        (None, _) => Vec::new(),
    };
    let mut entries = Vec::new();
    for digest in referrers.iter().filter(|d| !listed.contains(d)) {
        let lost = || format!("{}: referrer {digest} was dropped by a concurrent writer", what());
        let raw = repo.get_manifest(&digest.to_string()).await.map_err(|e| e.context(lost()))?.ok_or_else(|| {
            Error::new(ErrorKind::NotFound, format!("{}, and its manifest is no longer served", lost()))
        })?;
        let Manifest::Image(manifest) = &raw.manifest else {
            return Err(Error::invalid_format(format!("{}, and it is no longer an image manifest", lost())));
        };
        if manifest.subject.as_ref().map(|s| &s.digest) != Some(subject) {
            return Err(Error::invalid_format(format!("{}, and it does not name {subject} as its subject", lost())));
        }
        tracing::info!(subject = %subject, referrer = %digest, "re-listing a referrer a concurrent writer dropped");
        entries.push(referrer_entry(&raw.descriptor(), manifest));
    }
    if entries.is_empty() {
        return Ok(stats);
    }
    update_index(repo, subject, &entries, options, true).await
}

/// How long after a successful index push [`add_to_index`] and [`settle`] read the index once more
/// (plus up to as much again of jitter): far longer than a well-behaved writer needs between reading
/// the index and pushing its merge, so such a writer's overwrite of ours has landed by then.
pub const CONFIRM_DELAY: Duration = Duration::from_millis(200);

/// [`CONFIRM_DELAY`] plus jitter, so writers that collided do not confirm in lockstep.
pub(crate) fn confirm_delay() -> Duration {
    CONFIRM_DELAY + jitter(CONFIRM_DELAY)
}

/// Whether an index PUT got no usable answer — throttled, a server error, or no answer at all — so the
/// merge is read and pushed again (the client never resends one by itself: it could land late over
/// another writer's change). A 4xx refusal is another matter (see `update_index`).
fn is_unanswered(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::RateLimited | ErrorKind::Network) || e.http_status().is_some_and(|s| s >= 500)
}

/// Whether a refused manifest or index PUT may succeed when repeated (a concurrent writer was midway).
pub(crate) fn is_transient(kind: ErrorKind) -> bool {
    !matches!(kind, ErrorKind::Unauthorized | ErrorKind::Unsupported | ErrorKind::TooLarge | ErrorKind::InvalidInput)
}

/// Times a refused index PUT is merged and pushed again: a referrer another writer is still storing
/// shows up within milliseconds; an entry the registry lost for good never does.
const INDEX_REFUSED_RETRIES: u32 = 2;

/// Merge `entries` into the subject's tag-schema index until a read-back lists all of them.
pub(crate) async fn update_index<R: Repository>(
    repo: &R,
    subject: &Digest,
    entries: &[Descriptor],
    options: IndexOptions,
    confirm: bool,
) -> Result<IndexStats> {
    let mut stats = IndexStats::default();
    let tag = subject.referrers_tag();
    let what = || format!("updating the referrers index tag {tag} of {}", repo.name());
    let mut attempt = 0u32;
    let mut refused = 0u32;
    // Whether a push of ours may have landed: taken, or sent without an answer.
    let mut pushed = false;
    loop {
        // The push of this round, when the registry did not take it.
        let mut not_taken: Option<Error> = None;
        // distribution answers a read of a tag another writer is rewriting with a 500 now and then; under
        // contention the client's own retries can all meet it: read again, later, within the bound.
        let (current, etag) = match fetch_index(repo, &tag).await {
            Ok(read) => read,
            Err(e) if is_unanswered(&e) && attempt < options.max_retries => {
                attempt += 1;
                stats.index_retries += 1;
                tracing::info!(tag = %tag, attempt, error = %e, "index not read; reading again");
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            Err(e) => return Err(e.context(what())),
        };
        let read = current.as_ref().map(to_canonical_bytes);
        let (next, changed) =
            merge(repo, current, entries, options.repair, &mut stats).await.map_err(|e| e.context(what()))?;
        let mut lost = false;
        if changed && options.repair {
            // Repairing fetched manifests between our read and our push: read again right before the
            // push, so the window in which another writer's change would be overwritten stays short.
            let (again, _) = fetch_index(repo, &tag).await.map_err(|e| e.context(what()))?;
            if again.as_ref().map(to_canonical_bytes) != read {
                lost = true;
            }
        }
        if changed && !lost {
            let bytes = Bytes::from(to_canonical_bytes(&next));
            let len = bytes.len() as u64;
            // Conditional when the registry gave an entity tag: a concurrent change then fails the PUT
            // (412) instead of being overwritten, and we merge again.
            let put = match &etag {
                Some(etag) => repo.put_manifest_if_match(bytes, mt::OCI_INDEX, &tag, etag).await,
                None => repo.put_manifest(bytes, mt::OCI_INDEX, Some(&tag)).await,
            };
            match put {
                Ok(_) => {
                    stats.manifests_written += 1;
                    stats.bytes_written += len;
                    stats.index_updated = true;
                    pushed = true;
                }
                Err(e) if e.kind() == ErrorKind::Conflict => lost = true,
                // Not sent again by the client (it would push this merge late): read, merge and push anew,
                // after the registry's pause.
                Err(e) if is_unanswered(&e) => {
                    tracing::info!(tag = %tag, attempt, error = %e, "index push not taken; merging again");
                    lost = true;
                    pushed = true;
                    not_taken = Some(e);
                }
                // distribution 2.8.2 checks that every entry of an index exists, and answers "blob
                // unknown" for a referrer another writer is still storing: transient, so merge again.
                Err(e) if is_transient(e.kind()) && refused < INDEX_REFUSED_RETRIES.min(options.max_retries) => {
                    refused += 1;
                    tracing::info!(tag = %tag, attempt, error = %e, "index refused; merging again");
                    lost = true;
                }
                Err(e) => {
                    let hint = if refused > 0 {
                        format!(
                            " (refused {} times; if the index lists referrers the registry no longer has, \
                             distribution refuses every update of it until those entries are removed)",
                            refused + 1
                        )
                    } else {
                        String::new()
                    };
                    return Err(e.context(format!("{}{hint}", what())));
                }
            }
        }
        // Read back: without entity tags another writer may have replaced the index between our GET and PUT.
        // A read-back that gets no answer proves nothing either way: the round is done again.
        let read_back = |after: Result<(Option<Index>, Option<String>)>| match after {
            Ok((after, _)) => Ok(missing_entries(after.as_ref(), entries).len()),
            Err(e) if is_unanswered(&e) => Ok(entries.len()),
            Err(e) => Err(e.context(what())),
        };
        let mut missing = if lost { entries.len() } else { read_back(fetch_index(repo, &tag).await)? };
        // Also when this round found nothing to change because an earlier push that got no answer had
        // landed after all: that push needs the same confirmation.
        if missing == 0 && pushed && confirm {
            // A writer that read the index just before our push may push its stale merge just after
            // our read-back: look once more, later.
            tokio::time::sleep(confirm_delay()).await;
            missing = read_back(fetch_index(repo, &tag).await)?;
        }
        if missing == 0 {
            stats.index_confirmed = true;
            return Ok(stats);
        }
        if attempt >= options.max_retries {
            if let Some(e) = not_taken {
                return Err(e.context(format!("{}: the last of {} pushes was not taken", what(), attempt + 1)));
            }
            let state = if lost {
                "the index kept changing between our read and our push".to_owned()
            } else {
                format!("the index still lacks {missing} of our entries")
            };
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "{}: after {} attempts {state} (concurrent writers keep replacing it); rerun to complete",
                    what(),
                    attempt + 1,
                ),
            ));
        }
        attempt += 1;
        stats.index_retries += 1;
        tracing::info!(tag = %tag, attempt, "lost update on the referrers index; merging again");
        tokio::time::sleep(backoff(attempt)).await;
    }
}

/// The error for a registry that answers the referrers tag of a subject with the subject itself: it
/// resolves a `sha256-<hex>` tag as the digest `sha256:<hex>` (GitLab: oras-project/oras#2148,
/// oras-project/oras-go#1396), so the tag schema can neither be read nor written there. `None` for any
/// other answer. Saying so beats reporting "not an index", or writing an index nobody can read back.
pub(crate) fn fallback_is_subject(repo_name: &str, tag: &str, raw: &RawManifest) -> Option<Error> {
    (raw.digest.referrers_tag() == tag).then(|| {
        Error::new(
            ErrorKind::Unsupported,
            format!(
                "{repo_name}: the referrers tag {tag} answers with the image {} itself, not an index: this \
                 registry resolves sha256-<hex> tags as digests (GitLab does; oras-project/oras#2148), so the \
                 referrers tag schema cannot be used here and it has no referrers API",
                raw.digest
            ),
        )
    })
}

/// The index under `tag` and its entity tag: `None` when the tag does not exist; an error when it holds
/// something else.
pub(crate) async fn fetch_index<R: Repository>(repo: &R, tag: &str) -> Result<(Option<Index>, Option<String>)> {
    let Some(raw) = repo.get_manifest(tag).await? else {
        return Ok((None, None));
    };
    if let Some(e) = fallback_is_subject(&repo.name(), tag, &raw) {
        return Err(e);
    }
    match raw.manifest {
        Manifest::Index(index) => Ok((Some(index), raw.etag)),
        _ => Err(Error::invalid_format(format!(
            "tag {tag} holds a {}, not the image index the referrers tag schema requires; not touching it",
            raw.media_type
        ))),
    }
}

/// Our entries added, or filled in where listed without their artifact type or annotations (another
/// writer's stale merge can drop them, and consumers filter on the artifact type); with `repair`, every
/// other entry whose manifest we can read is filled in too.
async fn merge<R: Repository>(
    repo: &R,
    current: Option<Index>,
    entries: &[Descriptor],
    repair: bool,
    stats: &mut IndexStats,
) -> Result<(Index, bool)> {
    let mut changed = current.is_none();
    let mut index = current.unwrap_or_else(Index::empty);
    for entry in entries {
        let update = add_referrer(Some(index), entry, true);
        if let IndexChange::Repaired { entries } = update.change {
            stats.entries_repaired += entries as u64;
        }
        changed |= !update.is_noop();
        index = update.index;
    }
    if repair {
        let mut known = Vec::new();
        let incomplete: Vec<Descriptor> = index
            .manifests
            .iter()
            .filter(|m| m.artifact_type.is_none() || m.annotations.is_empty())
            .filter(|m| !entries.iter().any(|e| e.digest == m.digest))
            .cloned()
            .collect();
        for m in incomplete {
            if let Some(raw) = repo.get_manifest(&m.digest.to_string()).await?
                && let Manifest::Image(image) = &raw.manifest
            {
                known.push(referrer_entry(&raw.descriptor(), image));
            }
        }
        let update = repair_entries(index, &known);
        if let IndexChange::Repaired { entries } = update.change {
            stats.entries_repaired += entries as u64;
            changed = true;
        }
        index = update.index;
    }
    Ok((index, changed))
}

fn missing_entries<'a>(index: Option<&Index>, entries: &'a [Descriptor]) -> Vec<&'a Digest> {
    entries
        .iter()
        .map(|e| &e.digest)
        .filter(|d| !index.is_some_and(|i| i.manifests.iter().any(|m| &m.digest == *d)))
        .collect()
}

/// Exponential backoff with jitter, so two migrators that collided do not collide again in lockstep.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(50u64 << attempt.min(6));
    base + jitter(base)
}

/// A pseudo-random duration below `max`, different per process and moment.
fn jitter(max: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let seed = u64::from(nanos) ^ u64::from(std::process::id()).rotate_left(17);
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(seed % max_ms)
}

/// Remove `entry` from the index under `tag` until a read-back no longer lists it. Returns whether an
/// edit was pushed. A missing tag or an entry not listed is a no-op.
pub async fn remove_entry<R: Repository>(repo: &R, tag: &str, entry: &Digest, max_retries: u32) -> Result<bool> {
    remove_entries(repo, tag, std::slice::from_ref(entry), max_retries).await
}

/// Remove every one of `entries` from the index under `tag`, in one edit, until a read-back lists none
/// of them. Returns whether an edit was pushed. A missing tag or entries not listed are a no-op.
///
/// One edit, not one per entry: distribution refuses any index that lists a manifest it does not have,
/// so with two dangling entries, removing either alone pushes an index that still lists the other.
pub async fn remove_entries<R: Repository>(repo: &R, tag: &str, entries: &[Digest], max_retries: u32) -> Result<bool> {
    let names: Vec<String> = entries.iter().map(|e| e.short().to_string()).collect();
    let what = || format!("removing {} from the referrers index tag {tag} of {}", names.join(", "), repo.name());
    let listed = |index: &Index| index.manifests.iter().any(|m| entries.contains(&m.digest));
    let mut pushed = false;
    // A push that got no answer may have landed: if the entries are gone afterwards, it counts as ours.
    let mut unanswered = false;
    let mut attempt = 0u32;
    loop {
        let (current, etag) = fetch_index(repo, tag).await.map_err(|e| e.context(what()))?;
        let Some(current) = current else {
            return Ok(pushed || unanswered);
        };
        let update = remove_referrers(Some(current), entries);
        if update.is_noop() {
            return Ok(pushed || unanswered);
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
            Err(e) if e.kind() == ErrorKind::Conflict || is_unanswered(&e) => {
                conflict = true;
                unanswered |= e.kind() != ErrorKind::Conflict;
            }
            Err(e) => return Err(e.context(what())),
        }
        // The loop's next read is the read-back: a concurrent writer that merged a stale copy brings an
        // entry back, and it is removed again.
        if attempt >= max_retries {
            let (after, _) = fetch_index(repo, tag).await.map_err(|e| e.context(what()))?;
            if after.is_none_or(|i| !listed(&i)) {
                return Ok(pushed || unanswered);
            }
            let why = if unanswered { "the registry did not take our pushes" } else { "concurrent writers" };
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("{}: still listed after {} attempts ({why}); rerun to complete", what(), attempt + 1),
            ));
        }
        attempt += 1;
        if conflict {
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryRepository;

    fn entry(name: &str) -> Descriptor {
        let mut d = Descriptor::of(mt::OCI_MANIFEST, name.as_bytes());
        d.artifact_type = Some(mt::BUNDLE_V03.into());
        d
    }

    #[test]
    fn missing_entries_are_found_by_digest() {
        let (a, b) = (entry("a"), entry("b"));
        let entries = vec![a.clone(), b.clone()];
        assert_eq!(missing_entries(None, &entries).len(), 2);
        let mut index = Index::empty();
        index.manifests.push(a);
        assert_eq!(missing_entries(Some(&index), &entries), vec![&b.digest]);
        index.manifests.push(b);
        assert!(missing_entries(Some(&index), &entries).is_empty());
    }

    /// A concurrent writer pushes its own index once, just around our first index push. Without entity
    /// tags (like distribution 2.8.2) it overwrites our push: a lost update.
    #[tokio::test]
    async fn a_lost_update_is_merged_again() {
        let mut foreign = Index::empty();
        foreign.manifests.push(entry("theirs"));
        let repo = MemoryRepository::default();
        repo.race_next_tag_push(Bytes::from(to_canonical_bytes(&foreign)), mt::OCI_INDEX);
        let subject = Digest::sha256(b"image");
        let ours = vec![entry("a"), entry("b")];
        let options = IndexOptions { repair: false, max_retries: 3 };
        let stats = update_index(&repo, &subject, &ours, options, false).await.unwrap();
        assert_eq!(stats.index_retries, 1);
        assert_eq!(stats.manifests_written, 2);
        let index = fetch_index(&repo, &subject.referrers_tag()).await.unwrap().0.unwrap();
        let listed: Vec<&Digest> = index.manifests.iter().map(|m| &m.digest).collect();
        assert_eq!(listed, vec![&entry("theirs").digest, &ours[0].digest, &ours[1].digest], "each once, theirs kept");

        // Nothing left to do: no push at all.
        let stats = update_index(&repo, &subject, &ours, options, false).await.unwrap();
        assert_eq!((stats.manifests_written, stats.index_retries), (0, 0));
    }

    /// With entity tags, the concurrent writer's push lands first and our conditional push fails with 412.
    #[tokio::test]
    async fn a_failed_conditional_put_is_merged_again() {
        let repo = MemoryRepository::default().with_entity_tags();
        let subject = Digest::sha256(b"image");
        // An index exists already, so our update is conditional.
        let mut existing = Index::empty();
        existing.manifests.push(entry("first"));
        repo.put_manifest(Bytes::from(to_canonical_bytes(&existing)), mt::OCI_INDEX, Some(&subject.referrers_tag()))
            .await
            .unwrap();
        let mut foreign = existing.clone();
        foreign.manifests.push(entry("theirs"));
        repo.race_next_tag_push(Bytes::from(to_canonical_bytes(&foreign)), mt::OCI_INDEX);
        let ours = vec![entry("a")];
        let options = IndexOptions { repair: false, max_retries: 3 };
        let stats = update_index(&repo, &subject, &ours, options, false).await.unwrap();
        assert_eq!(repo.conditional_puts(), 2, "412, then success");
        assert_eq!(stats.index_retries, 1);
        let index = fetch_index(&repo, &subject.referrers_tag()).await.unwrap().0.unwrap();
        let listed: Vec<&Digest> = index.manifests.iter().map(|m| &m.digest).collect();
        assert_eq!(listed, vec![&entry("first").digest, &entry("theirs").digest, &ours[0].digest]);
    }

    #[tokio::test]
    async fn a_tag_holding_a_non_index_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let repo = crate::store::layout::LayoutRepository::create(dir.path(), crate::Limits::default()).unwrap();
        let subject = Digest::sha256(b"image");
        let config = repo.put_blob(Bytes::from_static(b"{}")).await.unwrap();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{config}","size":2}},"layers":[]}}"#,
            mt::OCI_MANIFEST,
            mt::OCI_EMPTY
        );
        repo.put_manifest(Bytes::from(manifest), mt::OCI_MANIFEST, Some(&subject.referrers_tag())).await.unwrap();
        let options = IndexOptions { repair: false, max_retries: 3 };
        let err = update_index(&repo, &subject, &[entry("a")], options, false).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidFormat);
        assert!(err.to_string().contains("not the image index"), "{err}");
    }

    #[tokio::test]
    async fn repair_fills_entries_other_tools_left_bare() {
        let dir = tempfile::tempdir().unwrap();
        let repo = crate::store::layout::LayoutRepository::create(dir.path(), crate::Limits::default()).unwrap();
        let subject = Digest::sha256(b"image");
        repo.put_blob(Bytes::from_static(b"{}")).await.unwrap();
        // Another tool's referrer, listed without artifactType or annotations (cosign#5098).
        let theirs = format!(
            r#"{{"schemaVersion":2,"mediaType":"{m}","artifactType":"application/x-theirs","config":{{"mediaType":"{e}","digest":"{d}","size":2}},"layers":[],"annotations":{{"k":"v"}}}}"#,
            m = mt::OCI_MANIFEST,
            e = mt::OCI_EMPTY,
            d = Digest::sha256(b"{}")
        );
        let put = repo.put_manifest(Bytes::from(theirs.clone()), mt::OCI_MANIFEST, None).await.unwrap();
        let mut bare = Descriptor::of(mt::OCI_MANIFEST, theirs.as_bytes());
        bare.digest = put.digest.clone();
        let mut index = Index::empty();
        index.manifests.push(bare);
        let tag = subject.referrers_tag();
        repo.put_manifest(Bytes::from(to_canonical_bytes(&index)), mt::OCI_INDEX, Some(&tag)).await.unwrap();

        let options = IndexOptions { repair: true, max_retries: 0 };
        let stats = update_index(&repo, &subject, &[entry("ours")], options, false).await.unwrap();
        assert_eq!(stats.entries_repaired, 1);
        let index = fetch_index(&repo, &tag).await.unwrap().0.unwrap();
        assert_eq!(index.manifests.len(), 2);
        assert_eq!(index.manifests[0].artifact_type.as_deref(), Some("application/x-theirs"));
        assert_eq!(index.manifests[0].annotation("k"), Some("v"));

        // Without --repair-index the bare entry would have been left as it was; with it, a second pass is a no-op.
        let stats = update_index(&repo, &subject, &[entry("ours")], options, false).await.unwrap();
        assert_eq!((stats.entries_repaired, stats.manifests_written), (0, 0));
    }

    #[tokio::test]
    async fn settle_relists_a_dropped_referrer_and_keeps_foreign_entries() {
        let dir = tempfile::tempdir().unwrap();
        let repo = crate::store::layout::LayoutRepository::create(dir.path(), crate::Limits::default()).unwrap();
        let subject = Digest::sha256(b"image");
        repo.put_blob(Bytes::from_static(b"{}")).await.unwrap();
        let ours = format!(
            r#"{{"schemaVersion":2,"mediaType":"{m}","artifactType":"{b}","config":{{"mediaType":"{e}","digest":"{d}","size":2}},"layers":[],"subject":{{"mediaType":"{m}","digest":"{subject}","size":100}},"annotations":{{"k":"v"}}}}"#,
            m = mt::OCI_MANIFEST,
            b = mt::BUNDLE_V03,
            e = mt::OCI_EMPTY,
            d = Digest::sha256(b"{}")
        );
        let ours = repo.put_manifest(Bytes::from(ours), mt::OCI_MANIFEST, None).await.unwrap().digest;
        // A concurrent writer replaced the index with one holding only its own entry.
        let mut theirs = Index::empty();
        theirs.manifests.push(entry("theirs"));
        let tag = subject.referrers_tag();
        repo.put_manifest(Bytes::from(to_canonical_bytes(&theirs)), mt::OCI_INDEX, Some(&tag)).await.unwrap();

        let options = IndexOptions { repair: false, max_retries: 3 };
        let stats = settle(&repo, &subject, std::slice::from_ref(&ours), options).await.unwrap();
        assert!(stats.index_updated);
        let index = fetch_index(&repo, &tag).await.unwrap().0.unwrap();
        assert_eq!(index.manifests.len(), 2);
        assert_eq!(index.manifests[0].digest, entry("theirs").digest, "the foreign entry is kept first");
        assert_eq!(index.manifests[1].digest, ours);
        assert_eq!(index.manifests[1].artifact_type.as_deref(), Some(mt::BUNDLE_V03), "rebuilt from the manifest");
        assert_eq!(index.manifests[1].annotation("k"), Some("v"));

        // Listed now: nothing to do.
        let stats = settle(&repo, &subject, std::slice::from_ref(&ours), options).await.unwrap();
        assert_eq!(stats, IndexStats::default());
        // A referrer is never listed under a subject it does not name.
        let other = Digest::sha256(b"other image");
        let err = settle(&repo, &other, std::slice::from_ref(&ours), options).await.unwrap_err();
        assert!(err.to_string().contains("does not name"), "{err}");
        assert!(repo.get_manifest(&other.referrers_tag()).await.unwrap().is_none());
        // An index deleted after the run lost every entry: it is rebuilt.
        let current = repo.head_manifest(&tag).await.unwrap().unwrap().digest;
        repo.delete_manifest(&current).await.unwrap();
        let stats = settle(&repo, &subject, std::slice::from_ref(&ours), options).await.unwrap();
        assert!(stats.index_updated);
        let index = fetch_index(&repo, &tag).await.unwrap().0.unwrap();
        assert_eq!(index.manifests.iter().map(|m| &m.digest).collect::<Vec<_>>(), vec![&ours]);
    }

    #[tokio::test]
    async fn settle_reports_a_dropped_referrer_that_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let repo = crate::store::layout::LayoutRepository::create(dir.path(), crate::Limits::default()).unwrap();
        let subject = Digest::sha256(b"image");
        let tag = subject.referrers_tag();
        repo.put_manifest(Bytes::from(to_canonical_bytes(&Index::empty())), mt::OCI_INDEX, Some(&tag)).await.unwrap();
        let gone = Digest::sha256(b"gone");
        let options = IndexOptions { repair: false, max_retries: 3 };
        let err = settle(&repo, &subject, std::slice::from_ref(&gone), options).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.to_string().contains(&gone.to_string()) && err.to_string().contains("dropped"), "{err}");
    }

    #[test]
    fn confirmation_waits_longer_than_a_merge_takes() {
        for _ in 0..20 {
            let d = confirm_delay();
            assert!(d >= CONFIRM_DELAY && d < 2 * CONFIRM_DELAY, "{d:?}");
        }
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        for attempt in 1..10 {
            let d = backoff(attempt).as_millis() as u64;
            let base = 50u64 << attempt.min(6);
            assert!(d >= base && d < 2 * base, "{attempt}: {d}");
        }
    }
}
