//! A repository of either kind, chosen by the reference: what the CLI and callers that accept any
//! target use, so nothing above has to branch on the backend.

use bytes::Bytes;

use super::attachments::{SharedAttachments, SplitRepository};
use super::layout::LayoutRepository;
use super::registry::RegistryRepository;
use super::{
    BlobPrefix, BlobState, DeleteSupport, HostFacts, Learnt, PutManifest, Referrers, ReferrersCapability, Repository,
};
use crate::error::Result;
use crate::model::digest::Digest;
use crate::model::oci::{Descriptor, RawManifest};

/// A registry repository or an OCI image layout.
#[derive(Clone, Debug)]
pub enum AnyRepository {
    /// A repository of an OCI distribution registry.
    Registry(RegistryRepository),
    /// An OCI image-layout directory.
    Layout(LayoutRepository),
    /// A registry repository whose attachments are kept in another repository.
    Split(std::sync::Arc<SplitRepository>),
}

macro_rules! delegate {
    ($self:ident, $r:ident => $call:expr) => {
        match $self {
            AnyRepository::Registry($r) => $call,
            AnyRepository::Layout($r) => $call,
            AnyRepository::Split($r) => $call,
        }
    };
}

impl AnyRepository {
    /// Whether its listing takes attachments from a listing shared by the run's repositories (see
    /// [`crate::store::attachments::shared`]): which repository an image tagged in several belongs to
    /// then depends on the order in which they are listed.
    pub fn shares_attachments(&self) -> bool {
        matches!(self, AnyRepository::Split(split) if split.is_sharing())
    }

    /// [`Repository::tag_pages`] for a repository shared by the caller: the stream holds its own handle,
    /// so it can outlive the borrow (a batch lists one repository while others are worked on).
    pub fn owned_tag_pages(
        self: std::sync::Arc<Self>,
    ) -> futures_util::stream::BoxStream<'static, Result<Vec<String>>> {
        use futures_util::StreamExt;
        match &*self {
            AnyRepository::Registry(r) => r.owned_tag_pages(),
            AnyRepository::Split(r) => r.owned_tag_pages(),
            AnyRepository::Layout(_) => futures_util::stream::once(async move { self.list_tags().await }).boxed(),
        }
    }

    /// `self` with its attachments in `attachments`, listing only those of its own images from the run's
    /// `shared` listing of that repository (see [`crate::store::attachments::shared`]) — the attachments
    /// repository itself included, whose own images' attachments are beside them.
    pub fn sharing_attachments_in(
        self,
        attachments: RegistryRepository,
        shared: std::sync::Arc<SharedAttachments>,
    ) -> Result<AnyRepository> {
        match self {
            AnyRepository::Registry(images) => {
                let split = SplitRepository::new(images, attachments).sharing(shared);
                Ok(AnyRepository::Split(std::sync::Arc::new(split)))
            }
            AnyRepository::Split(split) => {
                AnyRepository::Registry(split.images().clone()).sharing_attachments_in(attachments, shared)
            }
            layout @ AnyRepository::Layout(_) => layout.with_attachments_in(attachments),
        }
    }

    /// `self` with its attachments in `attachments`; unchanged when that is the same repository.
    /// Only a registry repository keeps its attachments apart: an OCI layout holds its own.
    pub fn with_attachments_in(self, attachments: RegistryRepository) -> Result<AnyRepository> {
        match self {
            AnyRepository::Registry(images) if images.name() == attachments.name() => {
                Ok(AnyRepository::Registry(images))
            }
            AnyRepository::Registry(images) => {
                Ok(AnyRepository::Split(std::sync::Arc::new(SplitRepository::new(images, attachments))))
            }
            AnyRepository::Split(split) => {
                AnyRepository::Registry(split.images().clone()).with_attachments_in(attachments)
            }
            AnyRepository::Layout(layout) => Err(crate::Error::invalid_input(format!(
                "{}: an OCI layout keeps its own attachments; an attachments repository ({}) applies to registry \
                 repositories only",
                layout.name(),
                attachments.name()
            ))),
        }
    }
}

impl Repository for AnyRepository {
    fn name(&self) -> String {
        delegate!(self, r => r.name())
    }

    fn attachments_repository(&self) -> Option<String> {
        delegate!(self, r => r.attachments_repository())
    }

    fn claims_attachments_of(&self, image: &Digest) -> bool {
        delegate!(self, r => r.claims_attachments_of(image))
    }

    async fn get_manifest(&self, reference: &str) -> Result<Option<RawManifest>> {
        delegate!(self, r => r.get_manifest(reference).await)
    }

    async fn head_manifest(&self, reference: &str) -> Result<Option<Descriptor>> {
        delegate!(self, r => r.head_manifest(reference).await)
    }

    async fn put_manifest(&self, bytes: Bytes, media_type: &str, tag: Option<&str>) -> Result<PutManifest> {
        delegate!(self, r => r.put_manifest(bytes, media_type, tag).await)
    }

    async fn put_manifest_if_match(
        &self,
        bytes: Bytes,
        media_type: &str,
        tag: &str,
        etag: &str,
    ) -> Result<PutManifest> {
        delegate!(self, r => r.put_manifest_if_match(bytes, media_type, tag, etag).await)
    }

    async fn delete_manifest(&self, digest: &Digest) -> Result<()> {
        delegate!(self, r => r.delete_manifest(digest).await)
    }

    async fn delete_support(&self) -> DeleteSupport {
        delegate!(self, r => r.delete_support().await)
    }

    fn learn(&self, fact: Learnt) {
        delegate!(self, r => r.learn(fact))
    }

    fn facts(&self) -> HostFacts {
        delegate!(self, r => r.facts())
    }

    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        delegate!(self, r => r.blob_size(digest).await)
    }

    async fn blob_state(&self, descriptor: &Descriptor) -> Result<BlobState> {
        delegate!(self, r => r.blob_state(descriptor).await)
    }

    async fn get_blob(&self, descriptor: &Descriptor, max_bytes: u64) -> Result<Bytes> {
        delegate!(self, r => r.get_blob(descriptor, max_bytes).await)
    }

    async fn get_blob_prefix(&self, descriptor: &Descriptor, max_bytes: u64) -> Result<BlobPrefix> {
        delegate!(self, r => r.get_blob_prefix(descriptor, max_bytes).await)
    }

    async fn put_blob(&self, bytes: Bytes) -> Result<Digest> {
        delegate!(self, r => r.put_blob(bytes).await)
    }

    async fn put_missing_blob(&self, bytes: Bytes, digest: &Digest) -> Result<Digest> {
        delegate!(self, r => r.put_missing_blob(bytes, digest).await)
    }

    async fn read_blob_stream(&self, descriptor: &Descriptor) -> Result<super::BlobChunks> {
        delegate!(self, r => r.read_blob_stream(descriptor).await)
    }

    async fn put_blob_stream(&self, descriptor: &Descriptor, chunks: super::BlobChunks) -> Result<Digest> {
        delegate!(self, r => r.put_blob_stream(descriptor, chunks).await)
    }

    async fn put_blob_stream_from<F>(&self, descriptor: &Descriptor, open: F) -> Result<Digest>
    where
        F: Future<Output = Result<super::BlobChunks>> + Send,
    {
        delegate!(self, r => r.put_blob_stream_from(descriptor, open).await)
    }

    async fn mount_blob(&self, descriptor: &Descriptor, from: &str) -> Result<bool> {
        match self {
            AnyRepository::Registry(r) => Repository::mount_blob(r, descriptor, from).await,
            AnyRepository::Layout(r) => Repository::mount_blob(r, descriptor, from).await,
            AnyRepository::Split(r) => Repository::mount_blob(&**r, descriptor, from).await,
        }
    }

    async fn delete_side_tags(&self) -> Result<std::sync::Arc<std::collections::BTreeMap<String, Descriptor>>> {
        delegate!(self, r => r.delete_side_tags().await)
    }

    async fn planning_side_tags(&self) -> Result<std::sync::Arc<std::collections::BTreeMap<String, Descriptor>>> {
        delegate!(self, r => r.planning_side_tags().await)
    }

    async fn resolved_tags(&self) -> Result<std::collections::BTreeMap<String, Descriptor>> {
        delegate!(self, r => r.resolved_tags().await)
    }

    async fn list_tags(&self) -> Result<Vec<String>> {
        delegate!(self, r => r.list_tags().await)
    }

    fn tag_pages(&self) -> futures_util::stream::BoxStream<'_, Result<Vec<String>>> {
        delegate!(self, r => r.tag_pages())
    }

    async fn referrers(&self, subject: &Digest, artifact_type: Option<&str>) -> Result<Referrers> {
        delegate!(self, r => r.referrers(subject, artifact_type).await)
    }

    fn referrers_capability(&self) -> ReferrersCapability {
        delegate!(self, r => r.referrers_capability())
    }
}
