//! Copying manifests and the blobs they reference from one store to another, exactly as served.
//!
//! Children before parents: every blob of a manifest, and every manifest of an index, is in the
//! destination before the manifest that names it is pushed, so the destination never serves a manifest
//! whose content it lacks (and a registry that checks references accepts every push). Blobs already in
//! the destination are not sent again, blobs of the same registry are mounted, the rest are streamed: a
//! layer of any size passes through in chunks, checked against its digest on the way.

use futures_util::StreamExt;

use crate::error::{Error, ErrorKind, Result};
use crate::model::digest::Digest;
use crate::model::oci::{Descriptor, Manifest, RawManifest};
use crate::store::Repository;

/// How deep image indexes may nest (an index of indexes of images is two levels).
const MAX_NESTING: usize = 4;

/// Blobs copied at once within one manifest.
const BLOBS_IN_FLIGHT: usize = 4;

/// Times a blob transfer broken by a transient failure is started again from the source: a streamed
/// upload cannot be replayed by the HTTP layer, so the copy opens the source anew.
const BLOB_ATTEMPTS: u32 = 3;

/// What a transfer did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TransferStats {
    /// Manifests pushed.
    pub manifests_written: u64,
    /// Manifests the destination already had.
    pub manifests_present: u64,
    /// Blobs streamed from the source.
    pub blobs_copied: u64,
    /// Blobs mounted from the source repository (same registry, no bytes transferred).
    pub blobs_mounted: u64,
    /// Blobs the destination already had.
    pub blobs_present: u64,
    /// Blobs not copied because they are not distributable (foreign layers that live at their `urls`).
    pub blobs_foreign: u64,
    /// Bytes read from the source (manifests and blobs).
    pub bytes_read: u64,
    /// Bytes written to the destination (manifests and blobs).
    pub bytes_written: u64,
}

impl TransferStats {
    /// Add another transfer's counts.
    pub fn add(&mut self, other: &TransferStats) {
        self.manifests_written += other.manifests_written;
        self.manifests_present += other.manifests_present;
        self.blobs_copied += other.blobs_copied;
        self.blobs_mounted += other.blobs_mounted;
        self.blobs_present += other.blobs_present;
        self.blobs_foreign += other.blobs_foreign;
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
    }

    /// Whether anything was written.
    pub fn wrote(&self) -> bool {
        self.manifests_written + self.blobs_copied + self.blobs_mounted > 0
    }
}

/// Where blobs may be mounted from: the source repository, when it is on the destination's registry.
#[derive(Clone, Copy, Debug)]
pub struct Mount<'a> {
    /// The source repository's path on the shared registry.
    pub from: Option<&'a str>,
}

/// Copy `raw` (read from `source`) and everything it references into `destination`, by digest. A
/// manifest the destination already serves is taken as complete (registries accept a manifest only once
/// what it references is there).
pub async fn copy_manifest<S: Repository, D: Repository>(
    source: &S,
    destination: &D,
    raw: &RawManifest,
    mount: Mount<'_>,
) -> Result<TransferStats> {
    copy_tree(source, destination, raw, mount, 0, None).await
}

/// [`copy_manifest`], pushing `raw` itself under `tag` (one request for the manifest and its tag). The
/// caller has found the tag absent, so `raw` is pushed even when the destination has it by digest.
pub async fn copy_tagged<S: Repository, D: Repository>(
    source: &S,
    destination: &D,
    raw: &RawManifest,
    mount: Mount<'_>,
    tag: &str,
) -> Result<TransferStats> {
    copy_tree(source, destination, raw, mount, 0, Some(tag)).await
}

/// Fetch `reference` from `source`; absent is [`ErrorKind::NotFound`].
pub async fn fetch<S: Repository>(source: &S, reference: &str) -> Result<RawManifest> {
    source
        .get_manifest(reference)
        .await?
        .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("{} serves no manifest {reference}", source.name())))
}

fn copy_tree<'a, S: Repository, D: Repository>(
    source: &'a S,
    destination: &'a D,
    raw: &'a RawManifest,
    mount: Mount<'a>,
    depth: usize,
    tag: Option<&'a str>,
) -> futures_util::future::BoxFuture<'a, Result<TransferStats>> {
    Box::pin(async move {
        let mut stats = TransferStats::default();
        if tag.is_none()
            && destination.head_manifest(&raw.digest.to_string()).await?.is_some_and(|d| d.digest == raw.digest)
        {
            stats.manifests_present += 1;
            return Ok(stats);
        }
        match &raw.manifest {
            Manifest::Index(index) => {
                if depth >= MAX_NESTING {
                    return Err(Error::invalid_format(format!(
                        "index {} nests indexes more than {MAX_NESTING} deep",
                        raw.digest
                    )));
                }
                // One child at a time: each child already copies its blobs concurrently.
                for entry in &index.manifests {
                    let child = fetch(source, &entry.digest.to_string()).await?;
                    stats.bytes_read += child.bytes.len() as u64;
                    stats.add(&copy_tree(source, destination, &child, mount, depth + 1, None).await?);
                }
            }
            Manifest::Image(m) => {
                let blobs: Vec<&Descriptor> = std::iter::once(&m.config).chain(&m.layers).collect();
                stats.add(&copy_blobs(source, destination, &blobs, mount).await?);
            }
            Manifest::Artifact(a) => {
                let blobs: Vec<&Descriptor> = a.blobs.iter().collect();
                stats.add(&copy_blobs(source, destination, &blobs, mount).await?);
            }
        }
        destination.put_manifest(raw.bytes.clone(), &raw.media_type, tag).await?;
        stats.manifests_written += 1;
        stats.bytes_written += raw.bytes.len() as u64;
        Ok(stats)
    })
}

/// Copy each distinct blob of one manifest, a few at once.
pub(super) async fn copy_blobs<S: Repository, D: Repository>(
    source: &S,
    destination: &D,
    blobs: &[&Descriptor],
    mount: Mount<'_>,
) -> Result<TransferStats> {
    let mut distinct: Vec<&Descriptor> = Vec::new();
    for b in blobs {
        if !distinct.iter().any(|d| d.digest == b.digest) {
            distinct.push(b);
        }
    }
    let copies: Vec<_> = distinct.into_iter().map(|blob| copy_blob(source, destination, blob, mount)).collect();
    let mut done = futures_util::stream::iter(copies).buffer_unordered(BLOBS_IN_FLIGHT);
    let mut total = TransferStats::default();
    while let Some(one) = done.next().await {
        total.add(&one?);
    }
    Ok(total)
}

/// Whether a layer is not distributable (a foreign or non-distributable media type): it lives at its
/// `urls` and registries do not hold it. A `urls` field on an ordinary layer does not make it foreign.
pub(super) fn is_foreign(blob: &Descriptor) -> bool {
    blob.media_type.contains("foreign.diff") || blob.media_type.contains("nondistributable")
}

async fn copy_blob<S: Repository, D: Repository>(
    source: &S,
    destination: &D,
    blob: &Descriptor,
    mount: Mount<'_>,
) -> Result<TransferStats> {
    let mut stats = TransferStats::default();
    if is_foreign(blob) {
        stats.blobs_foreign += 1;
        return Ok(stats);
    }
    if destination.blob_state(blob).await?.is_intact() {
        stats.blobs_present += 1;
        return Ok(stats);
    }
    if let Some(from) = mount.from
        && destination.mount_blob(blob, from).await?
    {
        stats.blobs_mounted += 1;
        return Ok(stats);
    }
    let mut attempt = 1;
    loop {
        match stream_blob(source, destination, blob).await {
            Ok(()) => break,
            Err(e) if attempt < BLOB_ATTEMPTS && is_transient(e.kind()) => {
                tracing::debug!(digest = %blob.digest, error = %e, attempt, "copying a blob again");
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt))).await;
            }
            Err(e) => return Err(e.context(format!("copying blob {}", blob.digest))),
        }
    }
    stats.blobs_copied += 1;
    stats.bytes_read += blob.size;
    stats.bytes_written += blob.size;
    Ok(stats)
}

async fn stream_blob<S: Repository, D: Repository>(source: &S, destination: &D, blob: &Descriptor) -> Result<()> {
    // The source is opened once the destination can take its bytes (see `put_blob_stream_from`).
    let stored: Digest = destination.put_blob_stream_from(blob, source.read_blob_stream(blob)).await?;
    if stored != blob.digest {
        return Err(Error::new(
            ErrorKind::DigestMismatch,
            format!("{} stored {stored} for blob {}", destination.name(), blob.digest),
        ));
    }
    Ok(())
}

fn is_transient(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::Network | ErrorKind::Registry | ErrorKind::RateLimited)
}
