//! An in-memory [`Repository`]: the test double for code written against the trait.
//!
//! It behaves like a registry without the referrers API (referrers come from the tag schema), keeps
//! every read and write checked the way real stores do, and has the few knobs tests need to provoke
//! what is hard to get from a real registry on demand: [`Limits`], entity tags for conditional pushes,
//! and a concurrent writer racing the next push under a tag.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use super::{PutManifest, Referrers, ReferrersCapability, ReferrersSource, Repository};
use crate::error::{Error, ErrorKind, Result};
use crate::limits::Limits;
use crate::model::digest::Digest;
use crate::model::oci::{Descriptor, Manifest, RawManifest};
use crate::model::reference::is_valid_tag;

/// A repository held in memory, for tests and examples.
///
/// Manifests are kept by digest and tags point at them, as in a registry: pushing under a tag moves
/// the tag, and deleting a manifest drops its tags. Reads are capped (manifests and listings by the
/// [`Limits`] given, blobs by the caller's cap), and a missing blob is
/// [`ErrorKind::NotFound`].
///
/// # Example
///
/// A demo store pushed into memory, inspected like any repository; then a concurrent writer that
/// overwrites the next push under a tag, as happens on a registry without entity tags.
///
/// ```
/// use att2ref::store::Repository;
/// use att2ref::store::memory::MemoryRepository;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> att2ref::Result<()> {
/// let repo = MemoryRepository::new("memory/demo");
/// let scenario = att2ref::demo::demo()?;
/// scenario.repo.push_to(&repo).await?;
/// assert_eq!(repo.blob_count(), scenario.repo.blobs.len());
///
/// let report = att2ref::inspect::inspect_image(&repo, &scenario.image.to_string(), &Default::default()).await?;
/// assert_eq!(report.legacy.attestations.expect("the demo store has a .att").layers.len(), 2);
///
/// let image = scenario.repo.manifest(&scenario.image).unwrap();
/// let theirs = scenario.repo.manifest_by_tag(&scenario.image.cosign_tag("att")).unwrap();
/// repo.race_next_tag_push(theirs.bytes.clone(), &theirs.media_type);
/// repo.put_manifest(image.bytes.clone(), &image.media_type, Some("latest")).await?;
/// assert_eq!(repo.get_manifest("latest").await?.unwrap().digest, theirs.digest, "our push was lost");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct MemoryRepository {
    name: String,
    limits: Limits,
    entity_tags: bool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    blobs: BTreeMap<Digest, Bytes>,
    /// By digest: the bytes and their media type.
    manifests: BTreeMap<Digest, (Bytes, String)>,
    tags: BTreeMap<String, Digest>,
    /// The concurrent writer's manifest and media type, until it has pushed.
    rival: Option<(Bytes, String)>,
    conditional_puts: u64,
}

impl Default for MemoryRepository {
    fn default() -> MemoryRepository {
        MemoryRepository::new("memory")
    }
}

impl MemoryRepository {
    /// An empty repository called `name` in messages, with default limits and no entity tags.
    pub fn new(name: impl Into<String>) -> MemoryRepository {
        MemoryRepository { name: name.into(), limits: Limits::default(), entity_tags: false, state: Mutex::default() }
    }

    /// Cap manifests (pushed and read), tag listings and referrers listings as `limits` says.
    pub fn with_limits(mut self, limits: Limits) -> MemoryRepository {
        self.limits = limits;
        self
    }

    /// Serve an entity tag with every manifest and honour conditional pushes
    /// ([`Repository::put_manifest_if_match`]); without this, manifests come without one and a
    /// conditional push is unconditional, like registries that send no `ETag`.
    pub fn with_entity_tags(mut self) -> MemoryRepository {
        self.entity_tags = true;
        self
    }

    /// Arm a concurrent writer: around the next push under a tag, it pushes `manifest` under that same
    /// tag, once. It lands just after an unconditional push, overwriting it (a lost update), and just
    /// before a conditional one, which then fails with [`ErrorKind::Conflict`].
    pub fn race_next_tag_push(&self, manifest: Bytes, media_type: &str) {
        self.state().rival = Some((manifest, media_type.to_owned()));
    }

    /// How many blobs are stored.
    pub fn blob_count(&self) -> usize {
        self.state().blobs.len()
    }

    /// How many manifests are stored (by digest, whatever their tags).
    pub fn manifest_count(&self) -> usize {
        self.state().manifests.len()
    }

    /// How many conditional pushes were attempted, failed ones included.
    pub fn conditional_puts(&self) -> u64 {
        self.state().conditional_puts
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock left nothing half-written: every update is one
        // map operation.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn etag(&self, digest: &Digest) -> Option<String> {
        self.entity_tags.then(|| format!("\"{digest}\""))
    }

    /// Check and store a manifest, moving `tag` to it.
    fn store(&self, state: &mut State, bytes: Bytes, media_type: &str, tag: Option<&str>) -> Result<Digest> {
        if let Some(t) = tag.filter(|t| !is_valid_tag(t)) {
            return Err(Error::invalid_input(format!("invalid tag {t:?}")));
        }
        self.check_manifest_size(bytes.len())?;
        let (_, parsed_type) = Manifest::parse(&bytes, Some(media_type).filter(|t| !t.is_empty()))?;
        let digest = Digest::sha256(&bytes);
        state.manifests.insert(digest.clone(), (bytes, parsed_type));
        if let Some(t) = tag {
            state.tags.insert(t.to_owned(), digest.clone());
        }
        Ok(digest)
    }

    /// The rival's push under `tag`, if one is armed.
    fn rival_push(&self, state: &mut State, tag: &str) -> Result<()> {
        match state.rival.take() {
            Some((bytes, media_type)) => self.store(state, bytes, &media_type, Some(tag)).map(drop),
            None => Ok(()),
        }
    }

    fn check_manifest_size(&self, len: usize) -> Result<()> {
        let max = self.limits.max_manifest_bytes;
        if len as u64 > max {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!("the manifest is {len} bytes, more than the limit of {max}"),
            ));
        }
        Ok(())
    }

    fn lookup(&self, reference: &str) -> Result<Option<RawManifest>> {
        let state = self.state();
        // Tags cannot hold a `:`, so anything with one is a digest and must parse as one.
        let digest = if reference.contains(':') {
            reference.parse::<Digest>()?
        } else {
            match state.tags.get(reference) {
                Some(d) => d.clone(),
                None => return Ok(None),
            }
        };
        let Some((bytes, media_type)) = state.manifests.get(&digest) else {
            return Ok(None);
        };
        self.check_manifest_size(bytes.len())?;
        let mut raw = RawManifest::parse(bytes.clone(), Some(media_type))?;
        raw.etag = self.etag(&digest);
        Ok(Some(raw))
    }
}

impl Repository for MemoryRepository {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn get_manifest(&self, reference: &str) -> Result<Option<RawManifest>> {
        self.lookup(reference)
    }

    async fn head_manifest(&self, reference: &str) -> Result<Option<Descriptor>> {
        Ok(self.lookup(reference)?.map(|raw| raw.descriptor()))
    }

    async fn put_manifest(&self, bytes: Bytes, media_type: &str, tag: Option<&str>) -> Result<PutManifest> {
        let mut state = self.state();
        let digest = self.store(&mut state, bytes, media_type, tag)?;
        if let Some(t) = tag {
            self.rival_push(&mut state, t)?;
        }
        Ok(PutManifest { digest, oci_subject: None })
    }

    async fn put_manifest_if_match(
        &self,
        bytes: Bytes,
        media_type: &str,
        tag: &str,
        etag: &str,
    ) -> Result<PutManifest> {
        if !self.entity_tags {
            return self.put_manifest(bytes, media_type, Some(tag)).await;
        }
        let mut state = self.state();
        state.conditional_puts += 1;
        self.rival_push(&mut state, tag)?;
        let current = state.tags.get(tag).and_then(|d| self.etag(d));
        if current.as_deref() != Some(etag) {
            return Err(Error::new(ErrorKind::Conflict, format!("{tag}: 412 Precondition Failed")));
        }
        let digest = self.store(&mut state, bytes, media_type, Some(tag))?;
        Ok(PutManifest { digest, oci_subject: None })
    }

    async fn delete_manifest(&self, digest: &Digest) -> Result<()> {
        let mut state = self.state();
        if state.manifests.remove(digest).is_none() {
            return Err(Error::new(ErrorKind::NotFound, format!("manifest {digest} not found in {}", self.name)));
        }
        state.tags.retain(|_, d| d != digest);
        Ok(())
    }

    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        Ok(self.state().blobs.get(digest).map(|b| b.len() as u64))
    }

    async fn get_blob(&self, descriptor: &Descriptor, max_bytes: u64) -> Result<Bytes> {
        let digest = &descriptor.digest;
        if descriptor.size > max_bytes {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!("blob {digest} is declared as {} bytes, more than the limit of {max_bytes}", descriptor.size),
            ));
        }
        let bytes = self.state().blobs.get(digest).cloned();
        let bytes = bytes.ok_or_else(|| Error::new(ErrorKind::NotFound, format!("blob {digest} not found")))?;
        if bytes.len() as u64 != descriptor.size {
            return Err(Error::new(
                ErrorKind::DigestMismatch,
                format!("blob {digest} has {} bytes but its descriptor says {}", bytes.len(), descriptor.size),
            ));
        }
        Ok(bytes)
    }

    async fn put_blob(&self, bytes: Bytes) -> Result<Digest> {
        let digest = Digest::sha256(&bytes);
        self.state().blobs.insert(digest.clone(), bytes);
        Ok(digest)
    }

    async fn list_tags(&self) -> Result<Vec<String>> {
        let tags: Vec<String> = self.state().tags.keys().cloned().collect();
        let max = self.limits.max_tags;
        if tags.len() > max {
            return Err(Error::new(ErrorKind::TooLarge, format!("{} tags, more than the limit of {max}", tags.len())));
        }
        Ok(tags)
    }

    async fn referrers(&self, subject: &Digest, artifact_type: Option<&str>) -> Result<Referrers> {
        let tag = subject.referrers_tag();
        let index = self.lookup(&tag)?;
        let listed = match index.as_ref().map(|raw| &raw.manifest) {
            None => Vec::new(),
            Some(Manifest::Index(i)) => i.manifests.clone(),
            Some(_) => return Err(Error::invalid_format(format!("referrers tag {tag} does not hold an image index"))),
        };
        let max = self.limits.max_referrers;
        if listed.len() > max {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!("referrers tag {tag} lists {} referrers, more than the limit of {max}", listed.len()),
            ));
        }
        let descriptors = listed
            .into_iter()
            .filter(|d| artifact_type.is_none_or(|t| d.artifact_type.as_deref() == Some(t)))
            .collect();
        Ok(Referrers { subject: subject.clone(), descriptors, source: ReferrersSource::TagSchema { tag, index } })
    }

    fn referrers_capability(&self) -> ReferrersCapability {
        ReferrersCapability::Unsupported
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::media_type as mt;
    use crate::model::oci::{Index, to_canonical_bytes};

    fn index(entries: &[&str]) -> Bytes {
        let mut index = Index::empty();
        for e in entries {
            index.manifests.push(Descriptor::of(mt::OCI_MANIFEST, e.as_bytes()));
        }
        Bytes::from(to_canonical_bytes(&index))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn tags_move_and_deletes_drop_them() {
        let repo = MemoryRepository::default();
        let (a, b) = (index(&["a"]), index(&["b"]));
        let da = repo.put_manifest(a.clone(), mt::OCI_INDEX, Some("t")).await.unwrap().digest;
        let db = repo.put_manifest(b, mt::OCI_INDEX, Some("t")).await.unwrap().digest;
        assert_eq!(repo.get_manifest("t").await.unwrap().unwrap().digest, db);
        assert_eq!(repo.get_manifest(&da.to_string()).await.unwrap().unwrap().bytes, a);
        assert_eq!(repo.manifest_count(), 2);
        repo.delete_manifest(&db).await.unwrap();
        assert!(repo.get_manifest("t").await.unwrap().is_none());
        assert!(repo.list_tags().await.unwrap().is_empty());
        assert_eq!(repo.delete_manifest(&db).await.unwrap_err().kind(), ErrorKind::NotFound);
        let err = repo.put_manifest(index(&[]), mt::OCI_INDEX, Some("../x")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn reads_are_capped_and_checked() {
        let limits = Limits { max_manifest_bytes: 100, max_tags: 1, ..Limits::default() };
        let repo = MemoryRepository::new("capped").with_limits(limits);
        let d = repo.put_blob(Bytes::from_static(b"hello")).await.unwrap();
        let mut desc = Descriptor::of("application/octet-stream", b"hello");
        assert_eq!(repo.get_blob(&desc, 5).await.unwrap(), "hello");
        assert_eq!(repo.get_blob(&desc, 4).await.unwrap_err().kind(), ErrorKind::TooLarge);
        desc.size = 4;
        assert_eq!(repo.get_blob(&desc, 5).await.unwrap_err().kind(), ErrorKind::DigestMismatch);
        desc.digest = Digest::sha256(b"absent");
        assert_eq!(repo.get_blob(&desc, 5).await.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!((repo.blob_count(), repo.blob_size(&d).await.unwrap()), (1, Some(5)));

        let big = index(&["a", "b", "c"]);
        assert_eq!(repo.put_manifest(big, mt::OCI_INDEX, None).await.unwrap_err().kind(), ErrorKind::TooLarge);
        repo.put_manifest(index(&[]), mt::OCI_INDEX, Some("one")).await.unwrap();
        repo.put_manifest(index(&[]), mt::OCI_INDEX, Some("two")).await.unwrap();
        assert_eq!(repo.list_tags().await.unwrap_err().kind(), ErrorKind::TooLarge);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn referrers_come_from_the_tag_schema() {
        let repo = MemoryRepository::default();
        let subject = Digest::sha256(b"image");
        let none = repo.referrers(&subject, None).await.unwrap();
        assert!(none.descriptors.is_empty());
        assert!(matches!(none.source, ReferrersSource::TagSchema { index: None, .. }));
        let mut listing = Index::empty();
        let mut typed = Descriptor::of(mt::OCI_MANIFEST, b"typed");
        typed.artifact_type = Some("application/x-typed".into());
        listing.manifests = vec![Descriptor::of(mt::OCI_MANIFEST, b"other"), typed.clone()];
        let bytes = Bytes::from(to_canonical_bytes(&listing));
        repo.put_manifest(bytes, mt::OCI_INDEX, Some(&subject.referrers_tag())).await.unwrap();
        assert_eq!(repo.referrers(&subject, None).await.unwrap().descriptors.len(), 2);
        let filtered = repo.referrers(&subject, Some("application/x-typed")).await.unwrap();
        assert_eq!(filtered.descriptors, vec![typed]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_rival_lands_after_a_plain_push_and_before_a_conditional_one() {
        let (ours, theirs) = (index(&["ours"]), index(&["theirs"]));
        let plain = MemoryRepository::default();
        plain.race_next_tag_push(theirs.clone(), mt::OCI_INDEX);
        plain.put_manifest(ours.clone(), mt::OCI_INDEX, None).await.unwrap();
        plain.put_manifest(ours.clone(), mt::OCI_INDEX, Some("t")).await.unwrap();
        let current = plain.get_manifest("t").await.unwrap().unwrap();
        assert_eq!((current.bytes, current.etag), (theirs.clone(), None), "an untagged push is not raced");

        let conditional = MemoryRepository::default().with_entity_tags();
        conditional.put_manifest(ours.clone(), mt::OCI_INDEX, Some("t")).await.unwrap();
        let etag = conditional.get_manifest("t").await.unwrap().unwrap().etag.unwrap();
        conditional.race_next_tag_push(theirs, mt::OCI_INDEX);
        let err = conditional.put_manifest_if_match(index(&[]), mt::OCI_INDEX, "t", &etag).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        let etag = conditional.get_manifest("t").await.unwrap().unwrap().etag.unwrap();
        conditional.put_manifest_if_match(index(&[]), mt::OCI_INDEX, "t", &etag).await.unwrap();
        assert_eq!(conditional.conditional_puts(), 2);
    }
}
