//! Where manifests and blobs live: a registry ([`registry`]) or an OCI image layout ([`layout`]); in
//! tests, memory ([`memory`]). [`attachments`] pairs an image repository with the repository its
//! attachments are kept in (cosign's `COSIGN_REPOSITORY`) and presents the pair as one.
//!
//! All implement [`Repository`], so everything above this module works the same on any. The one
//! rule every implementation keeps: a *definite* not-found is `Ok(None)` (or [`ErrorKind::NotFound`]
//! for blobs); anything else that went wrong — 401, 403, 429, 5xx, a network error — is an `Err`.
//! In particular only a not-found on the referrers fallback tag means "no referrers"; reading a denial
//! as an empty list and merging into it would erase other tools' referrers.
//!
//! [`ErrorKind::NotFound`]: crate::ErrorKind::NotFound

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::error::Result;
use crate::model::digest::Digest;
use crate::model::oci::{Descriptor, RawManifest};

mod any;
pub mod attachments;
mod chunks;
pub mod facts;
pub mod layout;
pub mod memory;
pub mod registry;
pub mod tag_schema;

pub use any::AnyRepository;
pub use facts::{Answer, HostFacts, Learnt, RegistryFacts};

/// A blob's bytes in the order they arrive (see [`Repository::read_blob_stream`]).
pub type BlobChunks = futures_util::stream::BoxStream<'static, Result<Bytes>>;

/// Collect `chunks` into one buffer, checking that they are exactly the blob `descriptor` names: never more
/// than its size is buffered, and the result hashes to its digest.
pub async fn collect_chunks(descriptor: &Descriptor, mut chunks: BlobChunks) -> Result<Bytes> {
    use futures_util::StreamExt;
    let limit = descriptor.size;
    let mut buffer = bytes::BytesMut::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        if buffer.len() as u64 + chunk.len() as u64 > limit {
            return Err(crate::Error::new(
                crate::ErrorKind::DigestMismatch,
                format!("blob {}: more than the {limit} bytes its descriptor says", descriptor.digest),
            ));
        }
        buffer.extend_from_slice(&chunk);
    }
    let bytes = buffer.freeze();
    if bytes.len() as u64 != limit || descriptor.digest.verify(&bytes).is_err() {
        return Err(crate::Error::new(
            crate::ErrorKind::DigestMismatch,
            format!("blob {}: the bytes received are not the blob its descriptor names", descriptor.digest),
        ));
    }
    Ok(bytes)
}

/// Result of pushing a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutManifest {
    /// Digest of the bytes pushed (as confirmed by the registry when it says).
    pub digest: Digest,
    /// The `OCI-Subject` response header: present only on registries with the referrers API, which
    /// then index the referrer themselves.
    pub oci_subject: Option<Digest>,
}

/// How the referrers of a subject were discovered.
// One per listing; the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum ReferrersSource {
    /// The registry's referrers API. `filtered` is true when the registry applied the artifactType
    /// filter (`OCI-Filters-Applied`); otherwise the caller's filter was applied client-side.
    Api {
        /// Whether the registry applied the filter itself.
        filtered: bool,
    },
    /// The referrers tag schema (`sha256-<hex>` tag holding an index). `index` is `None` when the
    /// tag definitely does not exist.
    TagSchema {
        /// The fallback tag.
        tag: String,
        /// The index as served (raw bytes kept for read-modify-write).
        index: Option<RawManifest>,
    },
}

/// The referrers of one subject.
#[derive(Clone, Debug)]
pub struct Referrers {
    /// The subject digest.
    pub subject: Digest,
    /// Descriptors of referrer manifests (after the artifactType filter, if one was given).
    pub descriptors: Vec<Descriptor>,
    /// Where they came from.
    pub source: ReferrersSource,
}

impl Referrers {
    /// Whether they were read from a referrers tag-schema index (whose entries any writer makes, and a
    /// stale merge can strip), not from the registry's referrers API.
    pub fn from_tag_schema(&self) -> bool {
        matches!(self.source, ReferrersSource::TagSchema { .. })
    }
}

/// A blob measured against the descriptor that names it, as closely as the store can tell cheaply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobState {
    /// Not in the store.
    Missing,
    /// Present with another size than the descriptor's.
    WrongSize(u64),
    /// Present with the descriptor's size; its bytes were not read (a registry's `HEAD`).
    SizeMatches,
    /// Present, read, and its bytes hash to the descriptor's digest (a local layout).
    Verified,
    /// Present with the descriptor's size, but its bytes hash to something else (a local layout).
    Corrupted,
}

impl BlobState {
    /// Whether the blob can be taken as present and intact, as far as the check went.
    pub fn is_intact(self) -> bool {
        matches!(self, BlobState::SizeMatches | BlobState::Verified)
    }
}

/// The first bytes of a blob, read to decide whether the rest is worth reading. NEVER digest-checked (a
/// prefix cannot be): what it says may only choose what to read next, never what is trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobPrefix {
    /// At most the bytes asked for, from the start of the blob.
    pub bytes: Bytes,
    /// Whether `bytes` is the whole blob (the descriptor's size was no more than asked for).
    pub whole: bool,
    /// Body bytes that arrived to read it: a registry that ignores `Range` sends more than was asked for
    /// before the connection is dropped.
    pub transferred: u64,
    /// How it was read.
    pub read: PrefixRead,
}

/// How a [`BlobPrefix`] was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrefixRead {
    /// The registry answered the `Range` request with 206 and only the bytes asked for.
    Range,
    /// The registry ignored `Range` (200 with the whole blob): the read stopped after the prefix and the
    /// answer was dropped (over HTTP/1.1 that closes the connection; over HTTP/2 it resets the stream, and
    /// more may have arrived than [`BlobPrefix::transferred`] counts).
    RangeIgnored,
    /// A bounded read of a local file.
    Local,
    /// The store read the whole blob and kept its start (stores without partial reads).
    Whole,
}

/// Whether a store deletes manifests, as far as one harmless request can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeleteSupport {
    /// DELETE is accepted (a manifest that is not there is answered "unknown", not "unsupported").
    Allowed,
    /// The registry refuses manifest DELETE for every repository (405 or `UNSUPPORTED`: GHCR, whose
    /// deletion goes through the GitHub Packages API; distribution with deletes disabled). The message says
    /// what it answered.
    Refused(String),
    /// The answer said nothing certain (a denial for this repository, a server error): deletes are tried
    /// and fail or succeed on their own.
    Unknown,
}

/// Whether a repository's registry serves the referrers API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReferrersCapability {
    /// Not probed yet.
    Unknown,
    /// `GET /v2/<name>/referrers/<digest>` answers 200 with an index.
    Supported,
    /// It answers 404 (or a layout store): use the tag schema.
    Unsupported,
}

/// One repository of a registry, or one OCI image layout.
///
/// `reference` arguments are a tag or a digest string (`sha256:…`). Every method checks what it
/// reads: manifests and blobs fetched by digest are hashed and compared, and every read is capped by
/// the store's [`Limits`](crate::Limits).
pub trait Repository: Send + Sync {
    /// A human name for messages: `registry/repo` or `ocidir://path`.
    fn name(&self) -> String;

    /// The repository holding this one's attachments when it is another one (cosign's
    /// `COSIGN_REPOSITORY`, see [`attachments`]): then a legacy tag there whose image is not served here
    /// belongs to another repository, or to that repository's own images. `None` by default.
    fn attachments_repository(&self) -> Option<String> {
        None
    }

    /// Whether this repository is the one of the run to work on `image`'s attachments. A repository
    /// sharing its attachments repository with others of the run ([`attachments::SharedAttachments`])
    /// takes the image unless another one took it first, so that two repositories never both plan
    /// deletes among one image's attachments. `true` by default.
    fn claims_attachments_of(&self, image: &Digest) -> bool {
        let _ = image;
        true
    }

    /// Fetch a manifest by tag or digest. `Ok(None)` only when it definitely does not exist.
    fn get_manifest(&self, reference: &str) -> impl Future<Output = Result<Option<RawManifest>>> + Send;

    /// Resolve a tag or digest to a descriptor without the body. `Ok(None)` when definitely absent.
    fn head_manifest(&self, reference: &str) -> impl Future<Output = Result<Option<Descriptor>>> + Send;

    /// Push manifest bytes, by digest, or under `tag` when given.
    fn put_manifest(
        &self,
        bytes: Bytes,
        media_type: &str,
        tag: Option<&str>,
    ) -> impl Future<Output = Result<PutManifest>> + Send;

    /// Push manifest bytes under `tag` only if the tag still holds the version whose entity tag is `etag`
    /// (`If-Match`), for read-modify-write of the referrers tag-schema index. A concurrent change is
    /// [`ErrorKind::Conflict`](crate::ErrorKind::Conflict). Stores without entity tags push unconditionally.
    fn put_manifest_if_match(
        &self,
        bytes: Bytes,
        media_type: &str,
        tag: &str,
        etag: &str,
    ) -> impl Future<Output = Result<PutManifest>> + Send {
        let _ = etag;
        self.put_manifest(bytes, media_type, Some(tag))
    }

    /// Delete a manifest by digest. Registries then drop every tag on it. A manifest that is not there is
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound), except when the request was repeated after an
    /// attempt that got a server error or no answer: that attempt deleted it, and the delete succeeds.
    fn delete_manifest(&self, digest: &Digest) -> impl Future<Output = Result<()>> + Send;

    /// Whether this store deletes manifests. A registry learns it once per host and run, by deleting a
    /// digest nobody stored; other stores delete.
    fn delete_support(&self) -> impl Future<Output = DeleteSupport> + Send {
        async { DeleteSupport::Allowed }
    }

    /// Record something a command learnt by acting on this store's registry (kept for the host and the
    /// run, reported, and acted on by the next repository there). Other stores forget it.
    fn learn(&self, fact: Learnt) {
        let _ = fact;
    }

    /// What has been learnt about this store's registry so far (see [`Repository::learn`]).
    fn facts(&self) -> HostFacts {
        HostFacts::default()
    }

    /// Size of a blob if present, `None` when definitely absent.
    fn blob_size(&self, digest: &Digest) -> impl Future<Output = Result<Option<u64>>> + Send;

    /// How the blob `descriptor` names stands, as cheaply as the store can tell: a registry compares the
    /// size (`HEAD`, never downloading), a layout also hashes the local file.
    fn blob_state(&self, descriptor: &Descriptor) -> impl Future<Output = Result<BlobState>> + Send {
        async move {
            Ok(match self.blob_size(&descriptor.digest).await? {
                None => BlobState::Missing,
                Some(size) if size == descriptor.size => BlobState::SizeMatches,
                Some(size) => BlobState::WrongSize(size),
            })
        }
    }

    /// Fetch a blob, refusing more than `max_bytes` (declared or actual) and checking its digest
    /// against `descriptor`. A missing blob is [`ErrorKind::NotFound`](crate::ErrorKind::NotFound).
    fn get_blob(&self, descriptor: &Descriptor, max_bytes: u64) -> impl Future<Output = Result<Bytes>> + Send;

    /// The first `max_bytes` of the blob `descriptor` names (all of it when it is no larger), NOT checked
    /// against its digest: for choosing what to read whole, never for what is returned or trusted. A
    /// missing blob is [`ErrorKind::NotFound`](crate::ErrorKind::NotFound). By default the whole blob is
    /// read (checked) and its start kept.
    fn get_blob_prefix(
        &self,
        descriptor: &Descriptor,
        max_bytes: u64,
    ) -> impl Future<Output = Result<BlobPrefix>> + Send {
        async move {
            let bytes = self.get_blob(descriptor, descriptor.size).await?;
            let transferred = bytes.len() as u64;
            let whole = transferred <= max_bytes;
            let bytes = bytes.slice(..(max_bytes.min(transferred) as usize));
            Ok(BlobPrefix { bytes, whole, transferred, read: PrefixRead::Whole })
        }
    }

    /// Upload a blob unless it is already there. Returns its digest.
    fn put_blob(&self, bytes: Bytes) -> impl Future<Output = Result<Digest>> + Send;

    /// Upload a blob the caller has just found missing (with [`Repository::blob_state`]) and whose digest
    /// it computed: the store may skip its own presence check and hash. The digest is still checked where
    /// the bytes land (a registry refuses a final `PUT` whose content does not match it). Returns the
    /// digest stored. By default the same as [`Repository::put_blob`].
    fn put_missing_blob(&self, bytes: Bytes, digest: &Digest) -> impl Future<Output = Result<Digest>> + Send {
        let _ = digest;
        self.put_blob(bytes)
    }

    /// A blob's bytes as they arrive, for copying blobs too large to hold in memory: the stream yields
    /// chunks and ends with an error when more than `descriptor.size` bytes arrive, when fewer arrive, or
    /// when they do not hash to `descriptor.digest` (checked as they pass; a consumer must not commit what
    /// it wrote before the stream ended without error). A missing blob is
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound), returned before any chunk. By default the
    /// whole blob is read (checked) and given as one chunk.
    fn read_blob_stream(&self, descriptor: &Descriptor) -> impl Future<Output = Result<BlobChunks>> + Send {
        async move {
            use futures_util::StreamExt;
            let bytes = self.get_blob(descriptor, descriptor.size).await?;
            Ok(futures_util::stream::once(async move { Ok(bytes) }).boxed())
        }
    }

    /// Store the blob `descriptor` names from `chunks` (typically another store's
    /// [`Repository::read_blob_stream`]), for a blob the caller found missing. Nothing is kept unless
    /// exactly `descriptor.size` bytes arrived, hashing to `descriptor.digest`, and the stream ended
    /// without error. By default the chunks are collected (at most `descriptor.size` bytes) and stored
    /// with [`Repository::put_missing_blob`].
    fn put_blob_stream(
        &self,
        descriptor: &Descriptor,
        chunks: BlobChunks,
    ) -> impl Future<Output = Result<Digest>> + Send {
        async move {
            let bytes = collect_chunks(descriptor, chunks).await?;
            self.put_missing_blob(bytes, &descriptor.digest).await
        }
    }

    /// [`Repository::put_blob_stream`] from a source that is opened only once its bytes have somewhere to
    /// go: `open` (typically another store's [`Repository::read_blob_stream`]) is awaited when this store
    /// is ready to take them — on a registry, once the upload session exists, and not at all when the
    /// blob is mounted instead. A source opened first would sit idle, its transfer time running, while
    /// the upload waits for a request slot, a token or a 429 pause. By default `open` is awaited first.
    fn put_blob_stream_from<F>(&self, descriptor: &Descriptor, open: F) -> impl Future<Output = Result<Digest>> + Send
    where
        F: Future<Output = Result<BlobChunks>> + Send,
    {
        async move {
            let chunks = open.await?;
            self.put_blob_stream(descriptor, chunks).await
        }
    }

    /// Make the blob `descriptor` names present here by mounting it from `from`, another repository of
    /// the same registry, without transferring its bytes. `Ok(false)` when the store cannot or the
    /// registry declined (then upload it). By default `Ok(false)`.
    fn mount_blob(&self, descriptor: &Descriptor, from: &str) -> impl Future<Output = Result<bool>> + Send {
        let _ = (descriptor, from);
        async { Ok(false) }
    }

    /// Every tag of the repository (all pages).
    fn list_tags(&self) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Every tag that deleting a manifest here can drop, resolved to its descriptor: all the tags of the
    /// repository deletes go to, whatever [`Repository::list_tags`] shows of it. They differ only when
    /// attachments are kept apart: deletes go to the attachments repository, whose tags for other
    /// repositories' images (and for its own images) the listing leaves out. A tag that cannot be
    /// resolved fails the call. What is returned was read after the call began: repositories sharing one
    /// attachments repository in a run may share a read, but never one that began before they asked.
    fn delete_side_tags(&self) -> impl Future<Output = Result<Arc<BTreeMap<String, Descriptor>>>> + Send
    where
        Self: Sized,
    {
        async { resolve_tags(self).await.map(Arc::new) }
    }

    /// What a plan may take as [`Repository::delete_side_tags`]: the same, except that repositories
    /// sharing one attachments repository in a run share one read of it, taken by the first of them to
    /// plan a delete. Only for deciding what to propose: whatever deletes reads
    /// [`Repository::delete_side_tags`] again right before, so a tag that moved since the shared read
    /// keeps what it holds all the same.
    fn planning_side_tags(&self) -> impl Future<Output = Result<Arc<BTreeMap<String, Descriptor>>>> + Send
    where
        Self: Sized,
    {
        self.delete_side_tags()
    }

    /// Every tag resolved to its descriptor; a tag gone since it was listed is left out. A tag that cannot
    /// be resolved fails the call, and every answer is read during this call, never before it (the
    /// default [`Repository::delete_side_tags`] relies on both). A store whose listing already asked what
    /// some tags hold may answer those from that listing, made during this call, without asking again.
    fn resolved_tags(&self) -> impl Future<Output = Result<BTreeMap<String, Descriptor>>> + Send
    where
        Self: Sized,
    {
        async { resolve_listed(self, self.list_tags().await?, &HashMap::new()).await }
    }

    /// The tags page by page, as the store serves them, for work that starts before a long listing is
    /// complete and keeps only one page in memory. Entries are not repeated from one page to the next;
    /// the listing stops at its first error. Stores without pages give every tag as one page.
    fn tag_pages(&self) -> futures_util::stream::BoxStream<'_, Result<Vec<String>>> {
        use futures_util::StreamExt;
        futures_util::stream::once(self.list_tags()).boxed()
    }

    /// Referrers of `subject`, optionally filtered by artifactType: the API when the registry has
    /// it, else the tag schema.
    fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> impl Future<Output = Result<Referrers>> + Send;

    /// What the store knows about referrers API support so far.
    fn referrers_capability(&self) -> ReferrersCapability;
}

/// HEAD requests in flight while resolving tags.
const RESOLVE_CONCURRENCY: usize = 8;

/// Every tag of `repo` resolved to its descriptor ([`Repository::resolved_tags`]). A tag that cannot be
/// resolved fails the whole call: without knowing what it holds, no digest can be shown to be unneeded.
pub async fn resolve_tags<R: Repository>(repo: &R) -> Result<BTreeMap<String, Descriptor>> {
    repo.resolved_tags().await
}

/// `tags` of `repo` resolved to their descriptors: from `known` when the listing already asked (`None`:
/// the tag was gone), else by a `HEAD` now. A tag gone since it was listed is left out.
pub(crate) async fn resolve_listed<R: Repository>(
    repo: &R,
    tags: Vec<String>,
    known: &HashMap<String, Option<Descriptor>>,
) -> Result<BTreeMap<String, Descriptor>> {
    let resolved: Vec<(String, Result<Option<Descriptor>>)> = futures_util::stream::iter(tags)
        .map(|t| async move {
            let d = match known.get(&t) {
                Some(d) => Ok(d.clone()),
                None => repo.head_manifest(&t).await,
            };
            (t, d)
        })
        .buffered(RESOLVE_CONCURRENCY)
        .collect()
        .await;
    let mut out = BTreeMap::new();
    for (tag, d) in resolved {
        match d {
            Ok(Some(d)) => {
                out.insert(tag, d);
            }
            Ok(None) => {}
            Err(e) => return Err(e.context(format!("resolving tag {tag} of {}", repo.name()))),
        }
    }
    Ok(out)
}
