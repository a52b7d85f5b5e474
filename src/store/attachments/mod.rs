//! Images in one repository, their attachments in another: cosign's `COSIGN_REPOSITORY`.
//!
//! Cosign keeps the legacy `sha256-<hex>.att/.sig/.sbom` tags and, since v3.0.3, the referrers it writes
//! in the repository the variable names, while the image itself stays where it is. [`SplitRepository`]
//! presents the pair as the one repository everything above this module expects, so no command has to
//! know: what is attached goes to the attachments repository, what is the image goes to the image's.
//!
//! What goes where:
//!
//! - a tag shaped like an attachment (`sha256-<hex>.<suffix>`, or the referrers tag-schema tag
//!   `sha256-<hex>`) is resolved in the attachments repository; any other tag names an image and is
//!   resolved in the image repository;
//! - a manifest digest goes to the attachments repository when this handle met it as an attachment (a
//!   tag above resolved to it, a referrers listing named it, or it was pushed here); any other digest is
//!   an image's;
//! - referrers are listed, and every manifest and blob is written and deleted, in the attachments
//!   repository: nothing is ever written beside the image;
//! - a blob is read from the image repository only when a manifest read there listed it (the layers of
//!   a BuildKit attestation manifest, say); every other blob is an attachment's, and whether a blob is
//!   present is always asked of the attachments repository, where referrers need it;
//! - the tag listing is the repository as it would look with its attachments in it: the attachment tags
//!   of the attachments repository and the other tags of the image repository. The attachments
//!   repository's own image tags are not part of it: those images belong to it, not to this one.
//!
//! Learning digests as they are met, rather than asking every caller where a digest lives, keeps the
//! commands' code the same for both layouts. A subject digest is never learnt this way: it is read from
//! a tag's name, not from what a tag resolves to.
//!
//! A run over many image repositories that share one attachments repository gives each of them a
//! [`SharedAttachments`]: the tag listing then holds only the attachments of the repository's own
//! images (see [`shared`]).

mod fresh;
pub mod shared;

pub use shared::{SharedAttachments, UnclaimedImage};

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;

use super::registry::RegistryRepository;
use super::{
    BlobPrefix, BlobState, DeleteSupport, HostFacts, Learnt, PutManifest, Referrers, ReferrersCapability, Repository,
};
use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::model::oci::{Descriptor, Manifest, RawManifest};
use crate::model::reference::ImageReference;

/// The variable cosign reads the attachments repository from.
pub const COSIGN_REPOSITORY: &str = "COSIGN_REPOSITORY";

/// Parse an attachments repository the way cosign parses `COSIGN_REPOSITORY` (go-containerregistry's
/// `name.NewRepository`): `[REGISTRY/]REPO` with no tag or digest; the first component is a registry
/// only when it contains `.` or `:` or is `localhost`, otherwise the registry is Docker Hub, where a
/// single-component name gains `library/`. Repository components follow the distribution grammar
/// (stricter than go-containerregistry, which lets through names that registries then refuse).
pub fn parse_repository(value: &str) -> Result<ImageReference> {
    let fail = |why: String| Error::invalid_input(format!("invalid repository {value:?}: {why}"));
    if value.is_empty() {
        return Err(fail("a repository name must be given".into()));
    }
    let (registry, path) = match value.split_once('/') {
        Some((first, rest)) if first == "localhost" || first.contains(['.', ':']) => (Some(first), rest),
        _ => (None, value),
    };
    if let Some(c) = path.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '-' | '.' | '/')) {
        let what = match c {
            ':' if registry.is_none() && !path.contains('/') => "a registry alone is not a repository".to_owned(),
            ':' | '@' => "a repository, not an image: it takes no tag or digest".to_owned(),
            _ => format!("{c:?} is not allowed (lowercase letters, digits, '_', '-', '.', '/')"),
        };
        return Err(fail(what));
    }
    let parsed = match registry {
        Some(r) => ImageReference::new(r, path),
        None => ImageReference::parse(path),
    };
    parsed.map_err(|e| fail(e.message().to_owned()))
}

/// Whether a tag names an attachment rather than an image: a legacy cosign tag or a referrers
/// tag-schema tag.
pub fn is_attachment_tag(tag: &str) -> bool {
    shared::kind_of(tag).is_some()
}

/// An image repository whose attachments live in another repository (see the module documentation).
/// Registry repositories in practice; any store in tests.
#[derive(Debug)]
pub struct SplitRepository<R = RegistryRepository> {
    images: R,
    attachments: R,
    /// Manifest digests met as attachments.
    attached: Mutex<HashSet<Digest>>,
    /// Blob digests listed by manifests read from the image repository.
    image_blobs: Mutex<HashSet<Digest>>,
    /// The run's shared listing of the attachments repository, when the run covers several repositories.
    shared: Option<Arc<SharedAttachments>>,
}

impl<R: Repository> SplitRepository<R> {
    /// `images`, with its attachments in `attachments`.
    pub fn new(images: R, attachments: R) -> SplitRepository<R> {
        SplitRepository {
            images,
            attachments,
            attached: Mutex::new(HashSet::new()),
            image_blobs: Mutex::new(HashSet::new()),
            shared: None,
        }
    }

    /// `self` listing only the attachments of its own images, from the run's one listing of the
    /// attachments repository (see [`shared`]). Without it, the tag listing holds every attachment tag
    /// of the attachments repository, and callers look for each image in the image repository.
    pub fn sharing(mut self, shared: Arc<SharedAttachments>) -> SplitRepository<R> {
        self.shared = Some(shared);
        self
    }

    /// Whether its attachments are listed from a listing shared with other repositories of the run
    /// ([`SplitRepository::sharing`]).
    pub fn is_sharing(&self) -> bool {
        self.shared.is_some()
    }

    /// The repository the images are in.
    pub fn images(&self) -> &R {
        &self.images
    }

    /// The repository the attachments are in.
    pub fn attachments(&self) -> &R {
        &self.attachments
    }

    fn note_attached(&self, digests: impl IntoIterator<Item = Digest>) {
        self.attached.lock().unwrap_or_else(|p| p.into_inner()).extend(digests);
    }

    fn is_attached(&self, digest: &str) -> bool {
        digest.parse::<Digest>().is_ok_and(|d| self.attached.lock().unwrap_or_else(|p| p.into_inner()).contains(&d))
    }

    /// Whether `reference` is read from the attachments repository.
    fn attachment_side(&self, reference: &str) -> bool {
        if reference.contains(':') { self.is_attached(reference) } else { is_attachment_tag(reference) }
    }

    fn note_image_manifest(&self, raw: &RawManifest) {
        let blobs: Vec<Digest> = match &raw.manifest {
            Manifest::Image(m) => m.layers.iter().chain(std::iter::once(&m.config)).map(|d| d.digest.clone()).collect(),
            Manifest::Artifact(a) => a.blobs.iter().map(|d| d.digest.clone()).collect(),
            Manifest::Index(_) => Vec::new(),
        };
        self.image_blobs.lock().unwrap_or_else(|p| p.into_inner()).extend(blobs);
    }

    fn blob_side(&self, digest: &Digest) -> &R {
        if self.image_blobs.lock().unwrap_or_else(|p| p.into_inner()).contains(digest) {
            &self.images
        } else {
            &self.attachments
        }
    }
}

impl SplitRepository<RegistryRepository> {
    /// [`Repository::tag_pages`] holding its own handles (see [`joined_pages`]).
    pub(crate) fn owned_tag_pages(&self) -> futures_util::stream::BoxStream<'static, Result<Vec<String>>> {
        match &self.shared {
            Some(shared) => shared::pages(
                Arc::new(self.images.clone()),
                Arc::new(self.attachments.clone()),
                shared.clone(),
                self.images.owned_tag_pages(),
            ),
            None => joined_pages(self.attachments.owned_tag_pages(), self.images.owned_tag_pages()),
        }
    }
}

/// The tag pages of the pair: the attachment tags of the attachments repository, then the image tags of
/// the image repository.
fn joined_pages<'a>(
    attachments: futures_util::stream::BoxStream<'a, Result<Vec<String>>>,
    images: futures_util::stream::BoxStream<'a, Result<Vec<String>>>,
) -> futures_util::stream::BoxStream<'a, Result<Vec<String>>> {
    let attached = attachments.map(|page| page.map(|tags| tags.into_iter().filter(|t| is_attachment_tag(t)).collect()));
    let images = images.map(|page| page.map(|tags| tags.into_iter().filter(|t| !is_attachment_tag(t)).collect()));
    attached.chain(images).boxed()
}

impl<R: Repository> Repository for SplitRepository<R> {
    fn name(&self) -> String {
        self.images.name()
    }

    fn attachments_repository(&self) -> Option<String> {
        Some(self.attachments.name())
    }

    fn claims_attachments_of(&self, image: &Digest) -> bool {
        self.shared.as_ref().is_none_or(|shared| shared.claim(image, &self.images.name()))
    }

    async fn get_manifest(&self, reference: &str) -> Result<Option<RawManifest>> {
        if self.attachment_side(reference) {
            let raw = self.attachments.get_manifest(reference).await?;
            if let Some(r) = &raw {
                self.note_attached([r.digest.clone()]);
                // What an attachment-side index lists (a tag-schema index lists referrers) is stored beside
                // it: looked for in the image repository, every entry would read as missing.
                if let Manifest::Index(index) = &r.manifest {
                    self.note_attached(index.manifests.iter().map(|m| m.digest.clone()));
                }
            }
            Ok(raw)
        } else {
            let raw = self.images.get_manifest(reference).await?;
            if let Some(r) = &raw {
                self.note_image_manifest(r);
            }
            Ok(raw)
        }
    }

    async fn head_manifest(&self, reference: &str) -> Result<Option<Descriptor>> {
        if self.attachment_side(reference) {
            let found = self.attachments.head_manifest(reference).await?;
            self.note_attached(found.iter().map(|d| d.digest.clone()));
            Ok(found)
        } else {
            self.images.head_manifest(reference).await
        }
    }

    async fn put_manifest(&self, bytes: Bytes, media_type: &str, tag: Option<&str>) -> Result<PutManifest> {
        let put = self.attachments.put_manifest(bytes, media_type, tag).await?;
        self.note_attached([put.digest.clone()]);
        Ok(put)
    }

    async fn put_manifest_if_match(
        &self,
        bytes: Bytes,
        media_type: &str,
        tag: &str,
        etag: &str,
    ) -> Result<PutManifest> {
        let put = self.attachments.put_manifest_if_match(bytes, media_type, tag, etag).await?;
        self.note_attached([put.digest.clone()]);
        Ok(put)
    }

    async fn delete_manifest(&self, digest: &Digest) -> Result<()> {
        self.attachments.delete_manifest(digest).await
    }

    async fn delete_support(&self) -> DeleteSupport {
        self.attachments.delete_support().await
    }

    // What a registry refused or delayed was learnt where attachments are written and deleted.
    fn learn(&self, fact: Learnt) {
        self.attachments.learn(fact)
    }

    fn facts(&self) -> HostFacts {
        self.attachments.facts()
    }

    // Presence decides what is uploaded and whether a referrer reads back whole: it is always asked where
    // the referrers are. An image can list a blob a referrer also needs (an artifact's empty config).
    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        self.attachments.blob_size(digest).await
    }

    async fn blob_state(&self, descriptor: &Descriptor) -> Result<BlobState> {
        self.attachments.blob_state(descriptor).await
    }

    async fn get_blob(&self, descriptor: &Descriptor, max_bytes: u64) -> Result<Bytes> {
        self.blob_side(&descriptor.digest).get_blob(descriptor, max_bytes).await
    }

    async fn get_blob_prefix(&self, descriptor: &Descriptor, max_bytes: u64) -> Result<BlobPrefix> {
        self.blob_side(&descriptor.digest).get_blob_prefix(descriptor, max_bytes).await
    }

    async fn put_blob(&self, bytes: Bytes) -> Result<Digest> {
        self.attachments.put_blob(bytes).await
    }

    async fn put_missing_blob(&self, bytes: Bytes, digest: &Digest) -> Result<Digest> {
        self.attachments.put_missing_blob(bytes, digest).await
    }

    async fn read_blob_stream(&self, descriptor: &Descriptor) -> Result<super::BlobChunks> {
        self.blob_side(&descriptor.digest).read_blob_stream(descriptor).await
    }

    async fn put_blob_stream(&self, descriptor: &Descriptor, chunks: super::BlobChunks) -> Result<Digest> {
        self.attachments.put_blob_stream(descriptor, chunks).await
    }

    async fn put_blob_stream_from<F>(&self, descriptor: &Descriptor, open: F) -> Result<Digest>
    where
        F: Future<Output = Result<super::BlobChunks>> + Send,
    {
        self.attachments.put_blob_stream_from(descriptor, open).await
    }

    async fn mount_blob(&self, descriptor: &Descriptor, from: &str) -> Result<bool> {
        Repository::mount_blob(&self.attachments, descriptor, from).await
    }

    // Deletes go to the attachments repository and drop its tags, whichever images they are for. In a
    // shared run, repositories about to delete share reads of it that began after they asked.
    async fn delete_side_tags(&self) -> Result<Arc<std::collections::BTreeMap<String, Descriptor>>> {
        match &self.shared {
            Some(shared) => shared.fresh_side_tags(&self.attachments).await,
            None => super::resolve_tags(&self.attachments).await.map(Arc::new),
        }
    }

    // Repositories sharing the attachments repository plan from one read of it: without it, a run over
    // R repositories would resolve every tag of it R times before acting (and R times more when acting).
    async fn planning_side_tags(&self) -> Result<Arc<std::collections::BTreeMap<String, Descriptor>>> {
        match &self.shared {
            Some(shared) => shared.side_tags(&self.attachments).await,
            None => self.delete_side_tags().await,
        }
    }

    async fn list_tags(&self) -> Result<Vec<String>> {
        if self.shared.is_some() {
            let pages: Vec<Result<Vec<String>>> = self.tag_pages().collect().await;
            return pages.into_iter().collect::<Result<Vec<Vec<String>>>>().map(|p| p.concat());
        }
        let (attached, images) = tokio::try_join!(self.attachments.list_tags(), self.images.list_tags())?;
        Ok(attached
            .into_iter()
            .filter(|t| is_attachment_tag(t))
            .chain(images.into_iter().filter(|t| !is_attachment_tag(t)))
            .collect())
    }

    // In a shared run the listing asks what each image tag holds, to find the images: resolving every
    // tag takes those answers instead of asking twice.
    async fn resolved_tags(&self) -> Result<std::collections::BTreeMap<String, Descriptor>> {
        let Some(shared) = &self.shared else {
            return super::resolve_listed(self, self.list_tags().await?, &std::collections::HashMap::new()).await;
        };
        let pages = shared::resolved_pages(&self.images, &self.attachments, shared.clone(), self.images.tag_pages());
        let pages: Vec<Result<shared::ResolvedPage>> = pages.collect().await;
        let (mut tags, mut known) = (Vec::new(), std::collections::HashMap::new());
        for page in pages {
            let (page_tags, page_known) = page?;
            tags.extend(page_tags);
            known.extend(page_known);
        }
        super::resolve_listed(self, tags, &known).await
    }

    fn tag_pages(&self) -> futures_util::stream::BoxStream<'_, Result<Vec<String>>> {
        match &self.shared {
            Some(shared) => shared::pages(&self.images, &self.attachments, shared.clone(), self.images.tag_pages()),
            None => joined_pages(self.attachments.tag_pages(), self.images.tag_pages()),
        }
    }

    async fn referrers(&self, subject: &Digest, artifact_type: Option<&str>) -> Result<Referrers> {
        let listing = self.attachments.referrers(subject, artifact_type).await?;
        self.note_attached(listing.descriptors.iter().map(|d| d.digest.clone()));
        Ok(listing)
    }

    fn referrers_capability(&self) -> ReferrersCapability {
        self.attachments.referrers_capability()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryRepository;

    async fn shared() -> (SplitRepository<MemoryRepository>, Digest, Digest) {
        crate::demo::attachments_apart().await.unwrap()
    }

    #[tokio::test]
    async fn images_are_read_beside_themselves_and_attachments_where_they_are_kept() {
        let (split, image, own) = shared().await;
        assert_eq!(split.name(), "app");
        assert_eq!(split.attachments_repository().as_deref(), Some("sigs"));
        let mut tags = split.list_tags().await.unwrap();
        tags.sort();
        let mut expected = vec![image.cosign_tag("att"), image.cosign_tag("sig"), own.cosign_tag("att"), "v1".into()];
        expected.sort();
        assert_eq!(tags, expected, "sigs's own v1 is not part of app");
        let paged: Vec<String> = split.tag_pages().map(|p| p.unwrap()).concat().await;
        assert_eq!(paged.len(), 4);

        // An image tag and an image digest: app's, even where sigs has the same tag or the digest.
        assert_eq!(split.get_manifest("v1").await.unwrap().unwrap().digest, image);
        assert!(split.get_manifest(&own.to_string()).await.unwrap().is_none());
        assert!(split.attachments().get_manifest(&own.to_string()).await.unwrap().is_some());

        // A legacy manifest digest is found once a tag led to it, not before.
        let att = split.attachments().head_manifest(&image.cosign_tag("att")).await.unwrap().unwrap().digest;
        assert!(split.get_manifest(&att.to_string()).await.unwrap().is_none());
        assert_eq!(split.head_manifest(&image.cosign_tag("att")).await.unwrap().unwrap().digest, att);
        assert_eq!(split.get_manifest(&att.to_string()).await.unwrap().unwrap().digest, att);
    }

    #[test]
    fn repositories_parse_as_cosign_parses_them() {
        let name = |v: &str| parse_repository(v).map(|r| r.name());
        assert_eq!(name("localhost:5001/hello").unwrap(), "localhost:5001/hello");
        assert_eq!(name("localhost/sigs").unwrap(), "localhost/sigs");
        assert_eq!(name("gcr.io/my-new-repo").unwrap(), "gcr.io/my-new-repo");
        assert_eq!(name("us-docker.pkg.dev/p/r/demo").unwrap(), "us-docker.pkg.dev/p/r/demo");
        assert_eq!(name("sigs").unwrap(), "docker.io/library/sigs");
        assert_eq!(name("team/sigs").unwrap(), "docker.io/team/sigs");
        assert_eq!(name("index.docker.io/sigs").unwrap(), "docker.io/library/sigs");
        for bad in ["", "bad$repo", "Team/sigs", "localhost:5001", "localhost:5001/hello:v1", "r/x@sha256:00", "a//b"] {
            assert!(parse_repository(bad).is_err(), "{bad:?}");
        }
        let e = parse_repository("localhost:5001/hello:v1").unwrap_err();
        assert_eq!(
            e.message(),
            "invalid repository \"localhost:5001/hello:v1\": a repository, not an image: it takes no tag or digest"
        );
        assert!(
            parse_repository("localhost:5001").unwrap_err().message().ends_with("a registry alone is not a repository")
        );
    }

    #[test]
    fn attachment_tags_are_legacy_and_referrers_tags() {
        let hex = "a".repeat(64);
        for tag in [
            format!("sha256-{hex}.att"),
            format!("sha256-{hex}.sig"),
            format!("sha256-{hex}.sbom"),
            format!("sha256-{hex}"),
        ] {
            assert!(is_attachment_tag(&tag), "{tag}");
        }
        for tag in
            ["latest".to_owned(), format!("sha256-{hex}.tar"), format!("sha256-{}", &hex[1..]), "sha256-".to_owned()]
        {
            assert!(!is_attachment_tag(&tag), "{tag}");
        }
    }
}
