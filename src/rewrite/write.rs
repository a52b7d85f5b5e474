//! Writing one image's referrers: blobs (skipped when present), manifests by digest (skipped when
//! present), and — on registries without the referrers API — their entries in the tag-schema index
//! ([`crate::store::tag_schema`], which keeps other writers' entries and reads its write back).

use crate::convert::NewBlob;
use crate::error::{Error, ErrorKind, Result};
use crate::model::digest::Digest;
use crate::model::media_type as mt;
use crate::model::oci::Descriptor;
use crate::store::tag_schema::{self, IndexOptions, IndexStats, backoff, is_transient};
use crate::store::{Learnt, ReferrersCapability, ReferrersSource, Repository};

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

impl WriteStats {
    /// Count what a tag-schema index update did.
    pub fn add_index(&mut self, index: IndexStats) {
        self.manifests_written += index.manifests_written;
        self.bytes_written += index.bytes_written;
        self.index_retries += index.index_retries;
        self.index_updated |= index.index_updated;
        self.entries_repaired += index.entries_repaired;
        self.index_confirmed |= index.index_confirmed;
    }
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
    let index_subject = pending
        .first()
        .and_then(|p| p.referrer.manifest.manifest.subject.as_ref())
        .is_some_and(|s| mt::is_index(&s.media_type));
    // Learnt from the first index refused on this registry: the next ones are not uploaded at all.
    if let Some(why) = index_subject.then(|| repo.facts().index_subject_refused().map(str::to_owned)).flatten() {
        return Err(index_subject_refused(subject, &format!("not attempted: an earlier one was refused: {why}")));
    }
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
    let pushed = match puts.await {
        Ok(pushed) => pushed,
        Err(e) if index_subject && crate::store::facts::refuses_index_subjects(&e) => {
            repo.learn(Learnt::IndexSubjectRefused(e.to_string()));
            return Err(index_subject_refused(subject, &e.to_string()));
        }
        Err(e) => return Err(e),
    };
    // Accepted only when a referrer naming the index was actually pushed (not merely found present).
    if index_subject && pushed.iter().any(Option::is_some) {
        repo.learn(Learnt::IndexSubjectAccepted);
    }
    let mut api_confirmed = false;
    for (len, oci_subject) in pushed.into_iter().flatten() {
        stats.manifests_written += 1;
        stats.bytes_written += len;
        api_confirmed |= oci_subject.as_ref() == Some(subject);
    }
    // With a working referrers API the registry indexes referrers itself. An `OCI-Subject` header alone
    // is not proof: ECR (sigstore-js#1183) and Docker Hub (hub-feedback#2372) sent it while their listing
    // did not work, and a referrer left out of the tag schema there is one nobody finds. The header counts
    // only when the listing is not known to be broken, and is then confirmed by listing once.
    match repo.referrers_capability() {
        ReferrersCapability::Supported => return Ok(stats),
        ReferrersCapability::Unknown if api_confirmed && listed_by_api(repo, subject, pending).await? => {
            return Ok(stats);
        }
        _ => {}
    }
    let entries: Vec<Descriptor> = pending.iter().map(|p| p.referrer.index_entry()).collect();
    stats.add_index(tag_schema::update_index(repo, subject, &entries, index, false).await?);
    Ok(stats)
}

/// The diagnosis of a registry that will not store a referrer whose subject is an image index (ECR:
/// aws/containers-roadmap#2783). Nothing of the image is listed anywhere, so nothing is lost: its legacy
/// `.att` stays the only copy, and its platform manifests are migrated on their own.
fn index_subject_refused(subject: &Digest, answer: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!(
            "writing the referrers of {subject}: the registry refuses referrers whose subject is an image index \
             ({answer}); the legacy .att of this index is kept, its platform manifests are migrated on their own"
        ),
    )
}

/// Whether the registry's referrers API lists every referrer just written (after an `OCI-Subject` header
/// on a registry whose API support was not known yet). A listing that does not come from the API, or
/// misses one, means the tag schema is needed.
async fn listed_by_api<R: Repository>(repo: &R, subject: &Digest, pending: &[Pending]) -> Result<bool> {
    let listing =
        repo.referrers(subject, None).await.map_err(|e| e.context(format!("listing referrers of {subject}")))?;
    let from_api = matches!(listing.source, ReferrersSource::Api { .. });
    let all = pending.iter().all(|p| listing.descriptors.iter().any(|d| d.digest == p.referrer.manifest.digest));
    Ok(from_api && all)
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
            Err(e) if attempt < MANIFEST_PUT_RETRIES && is_transient(e.kind()) => {
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
    // On a layout a same-size file of other bytes is not intact: it is written again.
    if repo.blob_state(&blob.descriptor).await?.is_intact() {
        return Ok(None);
    }
    let digest = repo.put_missing_blob(blob.bytes.clone(), &blob.descriptor.digest).await?;
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
