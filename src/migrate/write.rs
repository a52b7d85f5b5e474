//! Writing one image's referrers: blobs (skipped when present), manifests by digest (skipped when
//! present), and — on registries without the referrers API — the tag-schema index.
//!
//! The index update is a read-modify-write on a tag, which distribution 2.8.2 cannot make conditional
//! (no ETag on manifests). Two migrators can therefore overwrite each other's entries. The loop here
//! makes them converge: after each PUT the index is read back, and if any of our entries is missing
//! (a lost update) the current index is merged again and pushed, with jittered backoff, a bounded
//! number of times. Entries are keyed by digest, so a merge never lists a referrer twice.

use std::time::Duration;

use bytes::Bytes;

use crate::convert::{NewBlob, add_referrer, referrer_entry, repair_entries};
use crate::error::{Error, ErrorKind, Result};
use crate::model::digest::Digest;
use crate::model::media_type as mt;
use crate::model::oci::{Descriptor, Index, Manifest, to_canonical_bytes};
use crate::store::{ReferrersCapability, Repository};

use super::plan::Pending;

/// What writing did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Blobs uploaded.
    pub blobs_written: u64,
    /// Manifests pushed (referrers and index).
    pub manifests_written: u64,
    /// Bytes uploaded (blobs and manifests).
    pub bytes_written: u64,
    /// Index pushes repeated after a lost update.
    pub index_retries: u64,
    /// Whether the tag-schema index was written.
    pub index_updated: bool,
    /// Existing index entries repaired (`--repair-index`).
    pub entries_repaired: u64,
    /// Whether a read of the tag-schema index after the last push listed every referrer: the consumer's
    /// discovery path on a registry without the referrers API, so read-back need not list them again.
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

/// Write every pending referrer of `subject`, then make sure the tag-schema index lists them (when the
/// registry does not index them itself).
///
/// Three rounds, each done concurrently within itself: every distinct blob (the shared `{}` config once),
/// then every manifest, then the index. A manifest is pushed only after all its blobs are confirmed.
pub async fn write_image<R: Repository>(
    repo: &R,
    subject: &Digest,
    pending: &[Pending],
    index: IndexOptions,
) -> Result<WriteStats> {
    let mut stats = WriteStats::default();
    let what = || format!("writing the referrers of {subject}");
    let mut blobs: Vec<&NewBlob> = Vec::new();
    let mut reused: Vec<&Descriptor> = Vec::new();
    for p in pending {
        for b in &p.referrer.blobs {
            if !blobs.iter().any(|x| x.descriptor.digest == b.descriptor.digest) {
                blobs.push(b);
            }
        }
        for r in &p.referrer.reused {
            if !reused.iter().any(|x| x.digest == r.digest) {
                reused.push(r);
            }
        }
    }
    let uploads = futures_util::future::try_join_all(blobs.iter().map(|b| ensure_blob(repo, b)));
    let checks = futures_util::future::try_join_all(reused.iter().map(|r| ensure_reused(repo, r)));
    let (uploaded, _) = tokio::try_join!(uploads, checks).map_err(|e| e.context(what()))?;
    for size in uploaded.into_iter().flatten() {
        stats.blobs_written += 1;
        stats.bytes_written += size;
    }

    let puts = futures_util::future::try_join_all(pending.iter().map(|p| push_manifest(repo, subject, p)));
    let mut api_confirmed = false;
    for (len, oci_subject) in puts.await?.into_iter().flatten() {
        stats.manifests_written += 1;
        stats.bytes_written += len;
        api_confirmed |= oci_subject.as_ref() == Some(subject);
    }
    // With the referrers API the registry indexes referrers itself (`OCI-Subject` says so).
    if api_confirmed || repo.referrers_capability() == ReferrersCapability::Supported {
        return Ok(stats);
    }
    let entries: Vec<Descriptor> = pending.iter().map(|p| p.referrer.index_entry()).collect();
    update_index(repo, subject, &entries, index, &mut stats).await?;
    Ok(stats)
}

/// Push one referrer manifest by digest: its size and the registry's `OCI-Subject`, or `None` when it was
/// there already. Only a referrer that planning found listed is looked for first: an unlisted one is
/// almost never there, and pushing identical bytes again is harmless.
async fn push_manifest<R: Repository>(
    repo: &R,
    subject: &Digest,
    p: &Pending,
) -> Result<Option<(u64, Option<Digest>)>> {
    let r = &p.referrer;
    let what = || format!("writing referrer {} of {subject}", r.manifest.digest.short());
    if p.listed && repo.head_manifest(&r.manifest.digest.to_string()).await.map_err(|e| e.context(what()))?.is_some() {
        return Ok(None);
    }
    // A concurrent writer uploading the same blob can make the registry briefly answer "blob unknown"
    // to our manifest (distribution 2.8.2 does); the PUT is idempotent, so check the blobs and retry.
    let mut attempt = 0u32;
    let put = loop {
        match repo.put_manifest(r.manifest.bytes.clone(), mt::OCI_MANIFEST, None).await {
            Ok(put) => break put,
            Err(e)
                if attempt < MANIFEST_PUT_RETRIES
                    && !matches!(
                        e.kind(),
                        ErrorKind::Unauthorized
                            | ErrorKind::Unsupported
                            | ErrorKind::TooLarge
                            | ErrorKind::InvalidInput
                    ) =>
            {
                attempt += 1;
                tracing::info!(attempt, error = %e, "manifest refused; checking its blobs and retrying");
                tokio::time::sleep(backoff(attempt)).await;
                for b in &r.blobs {
                    ensure_blob(repo, b).await.map_err(|e| e.context(what()))?;
                }
                for reused in &r.reused {
                    ensure_reused(repo, reused).await.map_err(|e| e.context(what()))?;
                }
            }
            Err(e) => return Err(e.context(what())),
        }
    };
    if put.digest != r.manifest.digest {
        return Err(Error::new(
            ErrorKind::DigestMismatch,
            format!("{}: the store reports manifest {}, expected {}", what(), put.digest, r.manifest.digest),
        ));
    }
    Ok(Some((r.manifest.bytes.len() as u64, put.oci_subject)))
}

/// Times a refused manifest PUT is retried after re-checking its blobs.
const MANIFEST_PUT_RETRIES: u32 = 3;

/// Upload a new blob unless it is present with its size. Returns the bytes uploaded, if any.
async fn ensure_blob<R: Repository>(repo: &R, blob: &NewBlob) -> Result<Option<u64>> {
    if repo.blob_size(&blob.descriptor.digest).await? == Some(blob.descriptor.size) {
        return Ok(None);
    }
    let digest = repo.put_blob(blob.bytes.clone()).await?;
    if digest != blob.descriptor.digest {
        return Err(Error::new(
            ErrorKind::DigestMismatch,
            format!("the store stored blob {digest}, expected {}", blob.descriptor.digest),
        ));
    }
    Ok(Some(blob.descriptor.size))
}

/// A legacy blob a referrer reuses must be there.
async fn ensure_reused<R: Repository>(repo: &R, reused: &Descriptor) -> Result<()> {
    if repo.blob_size(&reused.digest).await?.is_none() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("the legacy layer blob {} it reuses is missing", reused.digest),
        ));
    }
    Ok(())
}

/// Merge `entries` into the subject's tag-schema index until a read-back lists all of them.
async fn update_index<R: Repository>(
    repo: &R,
    subject: &Digest,
    entries: &[Descriptor],
    options: IndexOptions,
    stats: &mut WriteStats,
) -> Result<()> {
    let tag = subject.referrers_tag();
    let what = || format!("updating the referrers index tag {tag} of {}", repo.name());
    let mut attempt = 0u32;
    loop {
        let (current, etag) = fetch_index(repo, &tag).await.map_err(|e| e.context(what()))?;
        let (next, changed) = merge(repo, current, entries, options.repair, stats).await?;
        let mut lost = false;
        if changed {
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
                }
                Err(e) if e.kind() == ErrorKind::Conflict => lost = true,
                Err(e) => return Err(e.context(what())),
            }
        }
        // Read back: without entity tags another writer may have replaced the index between our GET and PUT.
        let missing = if lost {
            entries.len()
        } else {
            let (after, _) = fetch_index(repo, &tag).await.map_err(|e| e.context(what()))?;
            missing_entries(after.as_ref(), entries).len()
        };
        if missing == 0 {
            stats.index_confirmed = true;
            return Ok(());
        }
        if attempt >= options.max_retries {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "{}: after {} attempts the index still lacks {} of our entries (concurrent writers keep \
                     replacing it); rerun to complete",
                    what(),
                    attempt + 1,
                    missing
                ),
            ));
        }
        attempt += 1;
        stats.index_retries += 1;
        tracing::info!(tag = %tag, attempt, "lost update on the referrers index; merging again");
        tokio::time::sleep(backoff(attempt)).await;
    }
}

/// The index under `tag` and its entity tag: `None` when the tag does not exist; an error when it holds
/// something else.
pub(crate) async fn fetch_index<R: Repository>(repo: &R, tag: &str) -> Result<(Option<Index>, Option<String>)> {
    let Some(raw) = repo.get_manifest(tag).await? else {
        return Ok((None, None));
    };
    match raw.manifest {
        Manifest::Index(index) => Ok((Some(index), raw.etag)),
        _ => Err(Error::invalid_format(format!(
            "tag {tag} holds a {}, not the image index the referrers tag schema requires; not touching it",
            raw.media_type
        ))),
    }
}

/// Our entries added (and, with `repair`, every entry whose manifest we can read repaired).
async fn merge<R: Repository>(
    repo: &R,
    current: Option<Index>,
    entries: &[Descriptor],
    repair: bool,
    stats: &mut WriteStats,
) -> Result<(Index, bool)> {
    let mut changed = current.is_none();
    let mut index = current.unwrap_or_else(Index::empty);
    for entry in entries {
        let update = add_referrer(Some(index), entry, repair);
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
        if let crate::convert::IndexChange::Repaired { entries } = update.change {
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
    let base = 50u64 << attempt.min(6);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let seed = u64::from(nanos) ^ u64::from(std::process::id()).rotate_left(17);
    Duration::from_millis(base + seed % base.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A layout with a concurrent writer that pushes its own index once, just around our first index
    /// push. Without entity tags (`etags: false`, like distribution 2.8.2) it overwrites our push: a lost
    /// update. With them, it lands first and our conditional PUT fails with 412.
    struct Contended {
        inner: crate::store::layout::LayoutRepository,
        etags: bool,
        raced: std::sync::atomic::AtomicBool,
        foreign: Index,
        conditional_puts: std::sync::atomic::AtomicU32,
    }

    impl Contended {
        fn new(inner: crate::store::layout::LayoutRepository, etags: bool, foreign: Index) -> Contended {
            Contended { inner, etags, raced: false.into(), foreign, conditional_puts: 0.into() }
        }

        /// The concurrent writer's push, once.
        async fn race(&self, tag: &str) -> Result<()> {
            if !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
                let theirs = Bytes::from(to_canonical_bytes(&self.foreign));
                self.inner.put_manifest(theirs, mt::OCI_INDEX, Some(tag)).await?;
            }
            Ok(())
        }
    }

    impl Repository for Contended {
        fn name(&self) -> String {
            self.inner.name()
        }
        async fn get_manifest(&self, r: &str) -> Result<Option<crate::model::oci::RawManifest>> {
            Ok(self.inner.get_manifest(r).await?.map(|mut m| {
                m.etag = self.etags.then(|| format!("\"{}\"", m.digest));
                m
            }))
        }
        async fn head_manifest(&self, r: &str) -> Result<Option<Descriptor>> {
            self.inner.head_manifest(r).await
        }
        async fn put_manifest(&self, b: Bytes, t: &str, tag: Option<&str>) -> Result<crate::store::PutManifest> {
            let put = self.inner.put_manifest(b, t, tag).await?;
            if let Some(tag) = tag {
                self.race(tag).await?;
            }
            Ok(put)
        }
        async fn put_manifest_if_match(
            &self,
            b: Bytes,
            t: &str,
            tag: &str,
            etag: &str,
        ) -> Result<crate::store::PutManifest> {
            self.conditional_puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.race(tag).await?;
            let current = self.get_manifest(tag).await?.and_then(|m| m.etag);
            if current.as_deref() != Some(etag) {
                return Err(Error::new(ErrorKind::Conflict, "412 Precondition Failed"));
            }
            self.inner.put_manifest(b, t, Some(tag)).await
        }
        async fn delete_manifest(&self, d: &Digest) -> Result<()> {
            self.inner.delete_manifest(d).await
        }
        async fn blob_size(&self, d: &Digest) -> Result<Option<u64>> {
            self.inner.blob_size(d).await
        }
        async fn get_blob(&self, d: &Descriptor, max: u64) -> Result<Bytes> {
            self.inner.get_blob(d, max).await
        }
        async fn put_blob(&self, b: Bytes) -> Result<Digest> {
            self.inner.put_blob(b).await
        }
        async fn list_tags(&self) -> Result<Vec<String>> {
            self.inner.list_tags().await
        }
        async fn referrers(&self, s: &Digest, a: Option<&str>) -> Result<crate::store::Referrers> {
            self.inner.referrers(s, a).await
        }
        fn referrers_capability(&self) -> ReferrersCapability {
            ReferrersCapability::Unsupported
        }
    }

    #[tokio::test]
    async fn a_lost_update_is_merged_again() {
        let dir = tempfile::tempdir().unwrap();
        let inner = crate::store::layout::LayoutRepository::create(dir.path(), crate::Limits::default()).unwrap();
        let mut foreign = Index::empty();
        foreign.manifests.push(entry("theirs"));
        let repo = Contended::new(inner, false, foreign);
        let subject = Digest::sha256(b"image");
        let ours = vec![entry("a"), entry("b")];
        let mut stats = WriteStats::default();
        let options = IndexOptions { repair: false, max_retries: 3 };
        update_index(&repo, &subject, &ours, options, &mut stats).await.unwrap();
        assert_eq!(stats.index_retries, 1);
        assert_eq!(stats.manifests_written, 2);
        let index = fetch_index(&repo, &subject.referrers_tag()).await.unwrap().0.unwrap();
        let listed: Vec<&Digest> = index.manifests.iter().map(|m| &m.digest).collect();
        assert_eq!(listed, vec![&entry("theirs").digest, &ours[0].digest, &ours[1].digest], "each once, theirs kept");

        // Nothing left to do: no push at all.
        let mut stats = WriteStats::default();
        update_index(&repo, &subject, &ours, options, &mut stats).await.unwrap();
        assert_eq!((stats.manifests_written, stats.index_retries), (0, 0));
    }

    #[tokio::test]
    async fn a_failed_conditional_put_is_merged_again() {
        let dir = tempfile::tempdir().unwrap();
        let inner = crate::store::layout::LayoutRepository::create(dir.path(), crate::Limits::default()).unwrap();
        let subject = Digest::sha256(b"image");
        // An index exists already, so our update is conditional.
        let mut existing = Index::empty();
        existing.manifests.push(entry("first"));
        inner
            .put_manifest(Bytes::from(to_canonical_bytes(&existing)), mt::OCI_INDEX, Some(&subject.referrers_tag()))
            .await
            .unwrap();
        let mut foreign = existing.clone();
        foreign.manifests.push(entry("theirs"));
        let repo = Contended::new(inner, true, foreign);
        let ours = vec![entry("a")];
        let mut stats = WriteStats::default();
        let options = IndexOptions { repair: false, max_retries: 3 };
        update_index(&repo, &subject, &ours, options, &mut stats).await.unwrap();
        assert_eq!(repo.conditional_puts.load(std::sync::atomic::Ordering::SeqCst), 2, "412, then success");
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
        let err = update_index(&repo, &subject, &[entry("a")], options, &mut WriteStats::default()).await.unwrap_err();
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

        let mut stats = WriteStats::default();
        let options = IndexOptions { repair: true, max_retries: 0 };
        update_index(&repo, &subject, &[entry("ours")], options, &mut stats).await.unwrap();
        assert_eq!(stats.entries_repaired, 1);
        let index = fetch_index(&repo, &tag).await.unwrap().0.unwrap();
        assert_eq!(index.manifests.len(), 2);
        assert_eq!(index.manifests[0].artifact_type.as_deref(), Some("application/x-theirs"));
        assert_eq!(index.manifests[0].annotation("k"), Some("v"));

        // Without --repair-index the bare entry would have been left as it was; with it, a second pass is a no-op.
        let mut stats = WriteStats::default();
        update_index(&repo, &subject, &[entry("ours")], options, &mut stats).await.unwrap();
        assert_eq!((stats.entries_repaired, stats.manifests_written), (0, 0));
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
