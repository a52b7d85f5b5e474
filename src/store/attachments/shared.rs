//! One attachments repository shared by every image repository of a run.
//!
//! With `COSIGN_REPOSITORY` set for a whole registry, one repository holds the legacy tags of every image
//! of every repository, and a tag (`sha256-<hex>.att`) does not say which repository its image is in.
//! Looking for each of them in each repository of a run costs repositories × attachments requests, and
//! reports every other repository's image once per repository: a thousand repositories and ten thousand
//! attachments are ten million requests and rows.
//!
//! A [`SharedAttachments`] lists the attachments repository once for the whole run. Each image
//! repository's listing then holds its own image tags and the attachment tags of the images those tags
//! name (an image index's platform manifests included), plus those of the images a target named in it by
//! digest: one manifest HEAD per tag of the image repository (and a GET per index), instead of one
//! look-up per attachment. What no repository of the run tags or names — untagged images, repositories
//! outside the run or its shard — is nobody's here: it is left alone, and
//! [`SharedAttachments::unclaimed`] lists it for the run's report.
//!
//! An image tagged in several repositories of the run (promoted from one to the next) is the first
//! one's to list or name it: its attachments are listed there only, so that two repositories' listings
//! never both bring them. (A target naming the image by digest in another repository still works on it
//! there.) An image whose attachments no listing brings (referrers served by the registry's API, with no
//! tag) is the first one's to ask ([`SharedAttachments::claim`]): `prune` plans removals among an image's
//! referrers only in the repository that took it.
//!
//! This listing says what a repository works on, never what may be deleted: a delete by digest in the
//! attachments repository drops every tag there on that digest, so what guards a delete reads all of them
//! ([`Repository::delete_side_tags`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde::Serialize;

use super::fresh::FreshReads;
use super::is_attachment_tag;
use crate::error::Result;
use crate::model::cosign::TagKind;
use crate::model::digest::Digest;
use crate::model::media_type as mt;
use crate::model::oci::{Descriptor, Manifest};
use crate::store::Repository;

/// Manifests of an image repository read at once while its tags are resolved.
const RESOLVE_AHEAD: usize = 8;

/// The bit of a referrers tag-schema tag; the legacy kinds take the bits of their place in
/// [`TagKind::ALL`].
const REFERRERS_TAG: u8 = 1 << 7;

/// The attachments repository's listing, read once, and what the run's repositories took of it.
#[derive(Debug, Default)]
pub struct SharedAttachments {
    /// Every image with an attachment tag, with the kinds of its tags (a bit each).
    subjects: tokio::sync::OnceCell<HashMap<Digest, u8>>,
    /// Images some repository's listing or target took, with that repository. An image tagged in several
    /// repositories (promoted from one to the next) is the first one's: the attachments are one set in
    /// the attachments repository, and two repositories working on them at once would each plan the
    /// same deletes and index edits.
    claimed: Mutex<HashMap<Digest, String>>,
    /// Images targets named by digest, by image repository name.
    named: Mutex<HashMap<String, Vec<Digest>>>,
    /// Every tag of the attachments repository, resolved once for every repository's plan (see
    /// [`Repository::planning_side_tags`]); a read that failed is not kept, so the next plan tries again.
    side_tags: tokio::sync::OnceCell<Arc<BTreeMap<String, Descriptor>>>,
    /// The same, read for deletes: each read began after the repository that takes it asked (see
    /// [`Repository::delete_side_tags`]).
    fresh_side_tags: FreshReads<BTreeMap<String, Descriptor>>,
}

/// An image with attachments that no repository of the run tags or names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnclaimedImage {
    /// The image digest.
    pub image: Digest,
    /// Its attachment tags in the attachments repository.
    pub tags: Vec<String>,
}

impl SharedAttachments {
    /// Nothing listed yet; the first repository listed reads the attachments repository.
    pub fn new() -> Arc<SharedAttachments> {
        Arc::new(SharedAttachments::default())
    }

    /// Images a target named in `repository` (its name as [`Repository::name`] gives it): its listing
    /// gives their attachments too, tagged there or not, and they are nobody else's leftovers.
    pub fn name_images(&self, repository: &str, images: &[Digest]) {
        let mut named = self.named.lock().unwrap_or_else(|p| p.into_inner());
        named.entry(repository.to_owned()).or_default().extend(images.iter().cloned());
        let mut claimed = self.claimed.lock().unwrap_or_else(|p| p.into_inner());
        for image in images {
            claimed.entry(image.clone()).or_insert_with(|| repository.to_owned());
        }
    }

    /// Whether `image`'s attachments are `repository`'s to work on: taken for it unless another
    /// repository of the run took them first (by listing a tag of the image, naming it, or asking here).
    pub fn claim(&self, image: &Digest, repository: &str) -> bool {
        let mut claimed = self.claimed.lock().unwrap_or_else(|p| p.into_inner());
        *claimed.entry(image.clone()).or_insert_with(|| repository.to_owned()) == repository
    }

    /// Images with attachment tags that no repository listed so far tags or names, by digest; `None`
    /// while no repository was listed (the attachments repository was never read).
    pub fn unclaimed(&self) -> Option<Vec<UnclaimedImage>> {
        let subjects = self.subjects.get()?;
        let claimed = self.claimed.lock().unwrap_or_else(|p| p.into_inner());
        let mut left: Vec<UnclaimedImage> = subjects
            .iter()
            .filter(|(image, _)| !claimed.contains_key(*image))
            .map(|(image, &kinds)| UnclaimedImage { image: image.clone(), tags: tags_of(image, kinds) })
            .collect();
        left.sort_by(|a, b| a.image.cmp(&b.image));
        Some(left)
    }

    /// Every tag of the attachments repository, resolved on the first call of the run (what each
    /// repository's plan takes as the tags its deletes could drop; acting reads them again, see
    /// [`SharedAttachments::fresh_side_tags`]).
    pub(super) async fn side_tags<R: Repository>(&self, attachments: &R) -> Result<Arc<BTreeMap<String, Descriptor>>> {
        self.side_tags
            .get_or_try_init(|| async { crate::store::resolve_tags(attachments).await.map(Arc::new) })
            .await
            .cloned()
    }

    /// Every tag of the attachments repository, from a read that began after this call: what a
    /// repository's deletes are guarded by. Repositories that ask while a read runs share the next one;
    /// they wait without a place in the batch pool, so that more of them share each read than `--jobs`
    /// (see [`crate::slots`]).
    pub(super) async fn fresh_side_tags<R: Repository>(
        &self,
        attachments: &R,
    ) -> Result<Arc<BTreeMap<String, Descriptor>>> {
        crate::slots::waiting(self.fresh_side_tags.read(|| crate::store::resolve_tags(attachments))).await
    }

    fn named_in(&self, repository: &str) -> Vec<Digest> {
        self.named.lock().unwrap_or_else(|p| p.into_inner()).get(repository).cloned().unwrap_or_default()
    }

    /// The attachments repository's images and the kinds of their tags, read on first use.
    async fn subjects<R: Repository>(&self, attachments: &R) -> Result<&HashMap<Digest, u8>> {
        self.subjects
            .get_or_try_init(|| async {
                let mut subjects: HashMap<Digest, u8> = HashMap::new();
                let mut pages = attachments.tag_pages();
                while let Some(page) = pages.next().await {
                    let page = page
                        .map_err(|e| e.context(format!("listing the attachments repository {}", attachments.name())))?;
                    for (image, kind) in page.iter().filter_map(|t| kind_of(t)) {
                        *subjects.entry(image).or_default() |= kind;
                    }
                }
                Ok(subjects)
            })
            .await
    }

    /// One page of an image repository's tags as its listing reads with the shared attachments: the
    /// attachment tags of the images its tags name (and of `named`), then its own image tags, with what
    /// each own tag held when this page asked (`None`: gone; a tag whose answer could not be taken is
    /// left out). `seen` carries the images given so far across the pages of one listing.
    async fn page<R: Repository>(
        &self,
        images: &R,
        attachments: &R,
        tags: Vec<String>,
        named: Vec<Digest>,
        seen: &mut HashSet<Digest>,
    ) -> Result<ResolvedPage> {
        let subjects = self.subjects(attachments).await?;
        let own: Vec<String> = tags.into_iter().filter(|t| !is_attachment_tag(t)).collect();
        // HEADs: registries that meter pulls (Docker Hub) count manifest GETs, not HEADs.
        let heads: Vec<Result<Option<Descriptor>>> = futures_util::stream::iter(own.clone())
            .map(|tag| async move { images.head_manifest(&tag).await })
            .buffered(RESOLVE_AHEAD)
            .collect()
            .await;
        // Each image once per listing, in the order met; an index is read once however many tags hold it.
        let mut found: Vec<Digest> = named.into_iter().filter(|d| seen.insert(d.clone())).collect();
        let mut heads_of_own = HashMap::new();
        for (tag, head) in own.iter().zip(heads) {
            let head = match head {
                Ok(head) => head,
                // A manifest that cannot be taken only leaves its images' attachments unclaimed.
                Err(e) if e.kind().is_bad_data() => {
                    tracing::warn!("{}: tag {tag} is not listed: {e}", images.name());
                    continue;
                }
                Err(e) => return Err(e.context(format!("resolving tag {tag} of {}", images.name()))),
            };
            heads_of_own.insert(tag.clone(), head.clone());
            // Gone since it was listed.
            let Some(head) = head else { continue };
            if !seen.insert(head.digest.clone()) {
                continue;
            }
            found.push(head.digest.clone());
            // An index's platform manifests are images too. The body decides: any Content-Type but an
            // image manifest's is read (a registry may answer a generic type, or none); one that says
            // image when the body is an index would leave the platforms' attachments unclaimed,
            // reported, never touched.
            if !matches!(head.media_type.as_str(), mt::OCI_MANIFEST | mt::DOCKER_MANIFEST) {
                let platforms = match images.get_manifest(&head.digest.to_string()).await {
                    Ok(Some(raw)) => match raw.manifest {
                        Manifest::Index(index) => index.manifests,
                        _ => Vec::new(),
                    },
                    Ok(None) => Vec::new(),
                    // An index that cannot be taken (over the size limit, not valid, not what its digest
                    // says) only leaves its platforms' attachments unclaimed: reported, never touched.
                    Err(e) if e.kind().is_bad_data() => {
                        tracing::warn!("{}: tag {tag}: its platform manifests are not listed: {e}", images.name());
                        Vec::new()
                    }
                    Err(e) => return Err(e.context(format!("reading the index tag {tag} of {}", images.name()))),
                };
                let platforms = platforms.into_iter().filter(|e| !e.is_buildkit_attestation()).map(|e| e.digest);
                found.extend(platforms.filter(|d| seen.insert(d.clone())).collect::<Vec<_>>());
            }
        }
        let name = images.name();
        let mut claimed = self.claimed.lock().unwrap_or_else(|p| p.into_inner());
        let mut listing = Vec::new();
        for image in found {
            if let Some(&kinds) = subjects.get(&image) {
                // Another repository of the run took it first: its attachments are that one's to work on.
                if *claimed.entry(image.clone()).or_insert_with(|| name.clone()) == name {
                    listing.extend(tags_of(&image, kinds));
                }
            }
        }
        listing.extend(own);
        Ok((listing, heads_of_own))
    }
}

/// A page of tags, with what some of them held when the listing asked (see [`SharedAttachments::page`]).
pub(super) type ResolvedPage = (Vec<String>, HashMap<String, Option<Descriptor>>);

/// The image and kind bit of an attachment tag; `None` for any other tag.
pub(super) fn kind_of(tag: &str) -> Option<(Digest, u8)> {
    if let Some((image, kind)) = TagKind::parse_tag(tag) {
        let place = TagKind::ALL.iter().position(|k| *k == kind)?;
        return Some((image, 1 << place));
    }
    Digest::from_referrers_tag(tag).map(|image| (image, REFERRERS_TAG))
}

/// The attachment tags of `image` that `kinds` records.
fn tags_of(image: &Digest, kinds: u8) -> Vec<String> {
    let legacy =
        TagKind::ALL.iter().enumerate().filter(|(place, _)| kinds & (1 << place) != 0).map(|(_, k)| k.tag_for(image));
    legacy.chain((kinds & REFERRERS_TAG != 0).then(|| image.referrers_tag())).collect()
}

/// The listing of an image repository whose attachments are in a shared repository, page by page (see
/// the module documentation). `images` and `attachments` are the two repositories (borrowed, or owned
/// handles for a listing that outlives its caller); `own` is the image repository's own tag listing.
/// The listing ends at its first error.
pub(super) fn pages<'a, R, H>(
    images: H,
    attachments: H,
    shared: Arc<SharedAttachments>,
    own: BoxStream<'a, Result<Vec<String>>>,
) -> BoxStream<'a, Result<Vec<String>>>
where
    R: Repository + 'a,
    H: Deref<Target = R> + Send + Sync + 'a,
{
    resolved_pages(images, attachments, shared, own).map(|page| page.map(|(tags, _)| tags)).boxed()
}

/// [`pages`], each page with what its own image tags held when the listing asked (it asks to find the
/// images they name): a caller resolving every tag need not ask again.
pub(super) fn resolved_pages<'a, R, H>(
    images: H,
    attachments: H,
    shared: Arc<SharedAttachments>,
    own: BoxStream<'a, Result<Vec<String>>>,
) -> BoxStream<'a, Result<ResolvedPage>>
where
    R: Repository + 'a,
    H: Deref<Target = R> + Send + Sync + 'a,
{
    let start = Listing { own, images, attachments, shared, seen: HashSet::new(), started: false, over: false };
    futures_util::stream::unfold(start, next_page).boxed()
}

/// Where [`pages`] is.
struct Listing<'a, H> {
    own: BoxStream<'a, Result<Vec<String>>>,
    images: H,
    attachments: H,
    shared: Arc<SharedAttachments>,
    seen: HashSet<Digest>,
    started: bool,
    over: bool,
}

async fn next_page<'a, R, H>(mut l: Listing<'a, H>) -> Option<(Result<ResolvedPage>, Listing<'a, H>)>
where
    R: Repository + 'a,
    H: Deref<Target = R> + Send + Sync + 'a,
{
    if l.over {
        return None;
    }
    // The images targets named come first: a repository whose tags list none of them still has them.
    let (tags, named) = if l.started {
        match l.own.next().await? {
            Ok(tags) => (tags, Vec::new()),
            Err(e) => {
                l.over = true;
                return Some((Err(e), l));
            }
        }
    } else {
        l.started = true;
        (Vec::new(), l.shared.named_in(&l.images.name()))
    };
    let page = l.shared.page(&*l.images, &*l.attachments, tags, named, &mut l.seen).await;
    l.over = page.is_err();
    Some((page, l))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo;
    use crate::store::attachments::SplitRepository;
    use crate::store::memory::MemoryRepository;

    async fn listing(split: &SplitRepository<MemoryRepository>) -> Vec<String> {
        let mut tags = split.list_tags().await.unwrap();
        tags.sort();
        tags
    }

    #[tokio::test]
    async fn each_repository_lists_the_attachments_of_its_own_images_and_the_rest_is_unclaimed() {
        let sigs = MemoryRepository::new("sigs");
        let mut images = Vec::new();
        let mut repos = Vec::new();
        for i in 1..=3 {
            let repo = MemoryRepository::new(format!("app{i}"));
            let scenario = demo::article_like_numbered(&format!("registry.test/app{i}"), i, 500).unwrap();
            scenario.push_split(&repo, &sigs).await.unwrap();
            images.push(scenario.image);
            repos.push(repo);
        }
        let all = sigs.list_tags().await.unwrap();
        let attached = |image: &Digest, own: &str| {
            let mut tags: Vec<String> =
                all.iter().filter(|t| kind_of(t).is_some_and(|(d, _)| &d == image)).cloned().collect();
            assert_eq!(tags, [image.cosign_tag("att")], "each image has a .att");
            tags.push(own.to_owned());
            tags.sort();
            tags
        };
        let (app1, app2) = (repos.remove(0), repos.remove(0));
        let shared = SharedAttachments::new();
        assert_eq!(shared.unclaimed(), None, "nothing listed yet");

        let first = SplitRepository::new(app1, sigs).sharing(shared.clone());
        assert_eq!(listing(&first).await, attached(&images[0], "v1"));
        // The attachments repository was read once: the next repository's handle to it is empty, and its
        // listing still has its image's attachments.
        let second = SplitRepository::new(app2, MemoryRepository::new("sigs")).sharing(shared.clone());
        assert_eq!(listing(&second).await, attached(&images[1], "v2"));

        let left = shared.unclaimed().unwrap();
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0].image, images[2]);
        let mut tags = attached(&images[2], "v3");
        tags.retain(|t| t != "v3");
        assert_eq!(left[0].tags, tags);

        // An image a target named by digest is its repository's, tagged there or not.
        shared.name_images("app3", &images[2..]);
        assert_eq!(shared.unclaimed().unwrap(), []);
        let untagged = SplitRepository::new(MemoryRepository::new("app3"), MemoryRepository::new("sigs"));
        let mut expected = attached(&images[2], "v3");
        expected.retain(|t| t != "v3");
        assert_eq!(listing(&untagged.sharing(shared.clone())).await, expected);
    }

    /// An image promoted from one repository to another is tagged in both: its attachments are listed in
    /// the first repository listed only (two units working on them at once would plan the same deletes).
    #[tokio::test]
    async fn an_image_tagged_in_two_repositories_is_the_first_ones() {
        let sigs = MemoryRepository::new("sigs");
        let (staging, prod) = (MemoryRepository::new("staging"), MemoryRepository::new("prod"));
        let scenario = demo::article_like_numbered("registry.test/app", 1, 500).unwrap();
        scenario.push_split(&staging, &sigs).await.unwrap();
        scenario.push_split(&prod, &MemoryRepository::new("unused")).await.unwrap();
        let attachments: Vec<String> = sigs.list_tags().await.unwrap();
        assert!(!attachments.is_empty());
        let shared = SharedAttachments::new();
        let first = SplitRepository::new(staging, sigs).sharing(shared.clone());
        let second = SplitRepository::new(prod, MemoryRepository::new("sigs")).sharing(shared.clone());
        let mut expected = [attachments, vec!["v1".to_owned()]].concat();
        expected.sort();
        assert_eq!(listing(&first).await, expected, "staging's: the image's attachments and its tag");
        assert_eq!(listing(&second).await, ["v1"], "prod's: its tag only");
        assert_eq!(shared.unclaimed().unwrap(), []);
    }

    #[tokio::test]
    async fn resolving_every_tag_from_the_listing_gives_what_asking_for_each_gives() {
        let (app, sigs) = (MemoryRepository::new("app"), MemoryRepository::new("sigs"));
        let scenario = demo::multi_arch().unwrap();
        scenario.push_split(&app, &sigs).await.unwrap();
        let split = SplitRepository::new(app, sigs).sharing(SharedAttachments::new());
        let resolved = split.resolved_tags().await.unwrap();
        let asked = crate::store::resolve_listed(&split, split.list_tags().await.unwrap(), &HashMap::new()).await;
        assert_eq!(resolved, asked.unwrap());
        let own = resolved.keys().filter(|t| !is_attachment_tag(t)).count();
        assert!(own >= 1 && resolved.len() > own, "image tags and attachment tags: {resolved:?}");
    }

    #[tokio::test]
    async fn an_index_brings_the_attachments_of_its_platforms() {
        let (app, sigs) = (MemoryRepository::new("app"), MemoryRepository::new("sigs"));
        let scenario = demo::multi_arch().unwrap();
        scenario.push_split(&app, &sigs).await.unwrap();
        let mut expected = sigs.list_tags().await.unwrap();
        let subjects: HashSet<Digest> = expected.iter().filter_map(|t| kind_of(t)).map(|(d, _)| d).collect();
        assert!(subjects.len() >= 2 && subjects.contains(&scenario.image), "the index and a platform: {subjects:?}");
        expected.extend(app.list_tags().await.unwrap());
        expected.sort();

        let shared = SharedAttachments::new();
        let split = SplitRepository::new(app, sigs).sharing(shared.clone());
        assert_eq!(listing(&split).await, expected);
        assert_eq!(shared.unclaimed().unwrap(), []);
    }

    #[tokio::test]
    async fn a_tag_that_cannot_be_taken_leaves_its_images_unclaimed_and_the_listing_goes_on() {
        let (app, sigs) = (MemoryRepository::new("app"), MemoryRepository::new("sigs"));
        let scenario = demo::multi_arch().unwrap();
        scenario.push_split(&app, &sigs).await.unwrap();
        let other = demo::article_like_numbered("registry.test/app", 7, 500).unwrap();
        other.push_split(&app, &sigs).await.unwrap();
        let index_size = app.get_manifest(&scenario.image.to_string()).await.unwrap().unwrap().bytes.len() as u64;
        let all = sigs.list_tags().await.unwrap();
        let subjects: HashSet<Digest> = all.iter().filter_map(|t| kind_of(t)).map(|(d, _)| d).collect();
        let mut expected = vec![other.image.cosign_tag("att")];
        expected.extend(app.list_tags().await.unwrap());
        expected.sort();

        // The index is over the size limit: its tag is skipped, the other image's is listed.
        let limits = crate::Limits { max_manifest_bytes: index_size - 1, ..crate::Limits::default() };
        let shared = SharedAttachments::new();
        let split = SplitRepository::new(app.with_limits(limits), sigs).sharing(shared.clone());
        assert_eq!(listing(&split).await, expected);
        let left: HashSet<Digest> = shared.unclaimed().unwrap().into_iter().map(|u| u.image).collect();
        assert_eq!(left.len(), subjects.len() - 1, "the index and its platforms");
        assert!(left.contains(&scenario.image) && !left.contains(&other.image));
        // Resolving every tag still asks for that one again, and fails as it did before the listing's
        // answers were reused: no plan is made from a tag whose content is unknown.
        let err = split.resolved_tags().await.unwrap_err();
        assert!(err.kind().is_bad_data(), "{err:#}");
    }

    #[tokio::test]
    async fn plans_share_one_read_of_the_attachments_repository_and_deletes_read_it_afresh() {
        // The attachments repository as the first plan reads it, and as it is later (two handles: the
        // in-memory repositories share no state).
        let (sigs, sigs_later) = (MemoryRepository::new("sigs"), MemoryRepository::new("sigs"));
        let one = demo::article_like_numbered("registry.test/app1", 1, 500).unwrap();
        let two = demo::article_like_numbered("registry.test/app2", 2, 500).unwrap();
        one.push_split(&MemoryRepository::new("app1"), &sigs).await.unwrap();
        one.push_split(&MemoryRepository::new("app1"), &sigs_later).await.unwrap();
        two.push_split(&MemoryRepository::new("app2"), &sigs_later).await.unwrap();
        let late = two.image.cosign_tag("att");

        let shared = SharedAttachments::new();
        let first = SplitRepository::new(MemoryRepository::new("app1"), sigs).sharing(shared.clone());
        let planned = first.planning_side_tags().await.unwrap();
        assert_eq!(planned.keys().cloned().collect::<Vec<_>>(), [one.image.cosign_tag("att")]);
        let second = SplitRepository::new(MemoryRepository::new("app2"), sigs_later).sharing(shared);
        assert!(Arc::ptr_eq(&second.planning_side_tags().await.unwrap(), &planned), "the run's one read");
        assert!(second.delete_side_tags().await.unwrap().contains_key(&late), "what acts reads afresh");
        // Outside a shared run, a plan reads the attachments repository itself.
        let alone = SplitRepository::new(MemoryRepository::new("app2"), second.attachments);
        assert!(alone.planning_side_tags().await.unwrap().contains_key(&late));
    }

    #[test]
    fn kinds_give_back_the_tags_they_came_from() {
        let image: Digest = format!("sha256:{}", "c".repeat(64)).parse().unwrap();
        let tags = [image.cosign_tag("att"), image.cosign_tag("sig"), image.cosign_tag("sbom"), image.referrers_tag()];
        let kinds = tags.iter().map(|t| kind_of(t).unwrap()).fold(0, |k, (d, bit)| {
            assert_eq!(d, image);
            k | bit
        });
        let mut expected = tags.to_vec();
        expected.sort();
        let mut got = tags_of(&image, kinds);
        got.sort();
        assert_eq!(got, expected);
        assert_eq!(tags_of(&image, 1 << 1), [image.cosign_tag(TagKind::ALL[1].suffix())]);
        assert_eq!(kind_of("latest"), None);
    }
}
