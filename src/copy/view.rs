//! The repository a conversion during `copy` works on: the source's legacy attestations, the
//! destination's referrers.
//!
//! The per-image migration ([`crate::rewrite::prepare_image`] and [`crate::rewrite::complete_image`])
//! reads the legacy `.att` and `.sig`, the subject manifest and the subject's referrers, then writes and
//! reads back referrers, all through one [`Repository`]. For a copy, the legacy tags, their blobs and
//! the subject live in the source, while the referrers are listed, written and read back in the
//! destination. [`ConversionView`] routes each request to the side that holds it, so the migration's
//! safety rules (all-or-nothing per image, read-back before success) hold unchanged across two stores.

use std::collections::HashSet;
use std::sync::Mutex;

use bytes::Bytes;

use crate::error::Result;
use crate::model::cosign::TagKind;
use crate::model::digest::Digest;
use crate::model::oci::{Descriptor, Manifest, RawManifest};
use crate::store::{
    BlobChunks, BlobPrefix, BlobState, DeleteSupport, HostFacts, Learnt, PutManifest, Referrers, ReferrersCapability,
    Repository,
};

/// Source for what a migration reads of the legacy layout and the subject; destination for everything
/// else (see the module documentation).
#[derive(Debug)]
pub struct ConversionView<'a, S, D> {
    source: &'a S,
    destination: &'a D,
    /// Manifest digests read from the source: the subjects, and the legacy manifests met.
    source_manifests: Mutex<HashSet<Digest>>,
    /// Blob digests listed by the legacy manifests read from the source.
    source_blobs: Mutex<HashSet<Digest>>,
    /// Set once the conversion is planned: from then on every blob is read where it was written (a
    /// DSSE-format referrer reuses a legacy layer's digest, and its read-back must read the destination).
    writing: std::sync::atomic::AtomicBool,
}

impl<'a, S: Repository, D: Repository> ConversionView<'a, S, D> {
    /// A view reading the legacy layout of `subjects` in `source`, writing referrers to `destination`.
    pub fn new(source: &'a S, destination: &'a D, subjects: impl IntoIterator<Item = Digest>) -> Self {
        ConversionView {
            source,
            destination,
            source_manifests: Mutex::new(subjects.into_iter().collect()),
            source_blobs: Mutex::new(HashSet::new()),
            writing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// From now on read every blob from the destination (call after planning, before writing).
    pub fn read_blobs_from_destination(&self) {
        self.writing.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn is_source_side(&self, reference: &str) -> bool {
        if TagKind::parse_tag(reference).is_some() {
            return true;
        }
        reference.parse::<Digest>().is_ok_and(|d| lock(&self.source_manifests).contains(&d))
    }

    fn note_source_manifest(&self, raw: &RawManifest) {
        lock(&self.source_manifests).insert(raw.digest.clone());
        let blobs: Vec<Digest> = match &raw.manifest {
            Manifest::Image(m) => m.layers.iter().chain([&m.config]).map(|d| d.digest.clone()).collect(),
            Manifest::Artifact(a) => a.blobs.iter().map(|d| d.digest.clone()).collect(),
            Manifest::Index(_) => Vec::new(),
        };
        lock(&self.source_blobs).extend(blobs);
    }

    fn blob_is_source(&self, digest: &Digest) -> bool {
        !self.writing.load(std::sync::atomic::Ordering::SeqCst) && lock(&self.source_blobs).contains(digest)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<S: Repository, D: Repository> Repository for ConversionView<'_, S, D> {
    fn name(&self) -> String {
        self.destination.name()
    }

    async fn get_manifest(&self, reference: &str) -> Result<Option<RawManifest>> {
        if !self.is_source_side(reference) {
            return self.destination.get_manifest(reference).await;
        }
        let raw = self.source.get_manifest(reference).await?;
        if let Some(raw) = &raw {
            self.note_source_manifest(raw);
        }
        Ok(raw)
    }

    async fn head_manifest(&self, reference: &str) -> Result<Option<Descriptor>> {
        if self.is_source_side(reference) {
            self.source.head_manifest(reference).await
        } else {
            self.destination.head_manifest(reference).await
        }
    }

    async fn put_manifest(&self, bytes: Bytes, media_type: &str, tag: Option<&str>) -> Result<PutManifest> {
        self.destination.put_manifest(bytes, media_type, tag).await
    }

    async fn put_manifest_if_match(
        &self,
        bytes: Bytes,
        media_type: &str,
        tag: &str,
        etag: &str,
    ) -> Result<PutManifest> {
        self.destination.put_manifest_if_match(bytes, media_type, tag, etag).await
    }

    async fn delete_manifest(&self, digest: &Digest) -> Result<()> {
        self.destination.delete_manifest(digest).await
    }

    async fn delete_support(&self) -> DeleteSupport {
        self.destination.delete_support().await
    }

    fn learn(&self, fact: Learnt) {
        self.destination.learn(fact)
    }

    fn facts(&self) -> HostFacts {
        self.destination.facts()
    }

    // Presence decides what is uploaded and whether a referrer reads back whole: always asked where the
    // referrers go, even for a blob the legacy layout also holds (a DSSE referrer reuses its layer).
    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        self.destination.blob_size(digest).await
    }

    async fn blob_state(&self, descriptor: &Descriptor) -> Result<BlobState> {
        self.destination.blob_state(descriptor).await
    }

    async fn get_blob(&self, descriptor: &Descriptor, max_bytes: u64) -> Result<Bytes> {
        if self.blob_is_source(&descriptor.digest) {
            self.source.get_blob(descriptor, max_bytes).await
        } else {
            self.destination.get_blob(descriptor, max_bytes).await
        }
    }

    async fn get_blob_prefix(&self, descriptor: &Descriptor, max_bytes: u64) -> Result<BlobPrefix> {
        if self.blob_is_source(&descriptor.digest) {
            self.source.get_blob_prefix(descriptor, max_bytes).await
        } else {
            self.destination.get_blob_prefix(descriptor, max_bytes).await
        }
    }

    async fn put_blob(&self, bytes: Bytes) -> Result<Digest> {
        self.destination.put_blob(bytes).await
    }

    async fn put_missing_blob(&self, bytes: Bytes, digest: &Digest) -> Result<Digest> {
        self.destination.put_missing_blob(bytes, digest).await
    }

    async fn read_blob_stream(&self, descriptor: &Descriptor) -> Result<BlobChunks> {
        if self.blob_is_source(&descriptor.digest) {
            self.source.read_blob_stream(descriptor).await
        } else {
            self.destination.read_blob_stream(descriptor).await
        }
    }

    async fn put_blob_stream(&self, descriptor: &Descriptor, chunks: BlobChunks) -> Result<Digest> {
        self.destination.put_blob_stream(descriptor, chunks).await
    }

    async fn list_tags(&self) -> Result<Vec<String>> {
        self.destination.list_tags().await
    }

    async fn delete_side_tags(&self) -> Result<std::sync::Arc<std::collections::BTreeMap<String, Descriptor>>> {
        self.destination.delete_side_tags().await
    }

    async fn planning_side_tags(&self) -> Result<std::sync::Arc<std::collections::BTreeMap<String, Descriptor>>> {
        self.destination.planning_side_tags().await
    }

    async fn referrers(&self, subject: &Digest, artifact_type: Option<&str>) -> Result<Referrers> {
        self.destination.referrers(subject, artifact_type).await
    }

    fn referrers_capability(&self) -> ReferrersCapability {
        self.destination.referrers_capability()
    }
}
