//! Acting on a plan. Each action re-checks its precondition immediately before it deletes, against the
//! store as it is now, and a digest another tag still holds is never deleted. A refusal (405, 400, 401,
//! 403, …) fails that item only; the run goes on.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::model::digest::Digest;
use crate::model::oci::Descriptor;
use crate::model::oci::Manifest;
use crate::store::tag_schema::{self, IndexOptions, remove_entries, remove_entry};
use crate::store::{DeleteSupport, Learnt, Repository};
use crate::verification::Verifier;

use super::find::{self, needed_by_others, shared_reason, tag_map};
use super::orphans::{self, OrphanPolicy, SearchResult, SearchSet, SubjectSearch};
use super::report::{Item, Status};
use super::{Action, Observer, PruneOptions, Step, TagMap, attestation};

/// How an item whose deletion the registry refuses altogether is reported (see [`DeleteSupport`]).
pub const NOT_ATTEMPTED: &str = "not attempted: the registry refuses manifest DELETE";

/// What running one action did, when nothing failed.
enum Done {
    /// Deleted or edited; notes for the report.
    Removed(Vec<String>),
    /// The precondition no longer held; why.
    Skipped(String),
    /// Whether the precondition still holds could not be established; why.
    Unchecked(String),
}

/// Apply `steps` (from [`find`](super::find::find)) in order. Items without an action pass through.
pub async fn apply<R: Repository>(
    repo: &R,
    steps: Vec<Step>,
    verifier: &Arc<Verifier>,
    options: &PruneOptions,
    observer: &dyn Observer,
) -> Vec<Item> {
    // A fresh view of every tag a delete can drop, for the shared-digest guard; read only when something
    // is to be deleted (with the attachments apart it is every tag of the attachments repository).
    let deleting = steps.iter().any(|s| s.action.as_ref().is_some_and(Action::deletes));
    let map = if deleting { repo.delete_side_tags().await.map(|t| tag_map(&t)) } else { Ok(TagMap::new()) };
    let mut map = match map {
        Ok(m) => m,
        Err(e) => {
            return steps
                .into_iter()
                .map(|s| {
                    let mut item = s.item;
                    if s.action.is_some() {
                        item.status = Status::CouldNotCheck;
                        item.reasons.push(format!("could not check before acting: resolving the tags: {e}"));
                        item.error_kind = Some(e.kind().name().to_owned());
                    }
                    item
                })
                .collect();
        }
    };
    // A registry that refuses DELETE altogether (GHCR) is found out once, with one request of no
    // consequence, and every deletion is then reported as not attempted instead of failing one by one.
    let refused = match steps.iter().any(|s| s.action.as_ref().is_some_and(Action::deletes)) {
        true => match repo.delete_support().await {
            DeleteSupport::Refused(why) => Some(why),
            DeleteSupport::Allowed | DeleteSupport::Unknown => None,
        },
        false => None,
    };
    let mut items = Vec::with_capacity(steps.len());
    // Orphans go only on a search made right before each deletion, over a catalog listed again now
    // (a repository created since planning is searched too).
    let orphan_set = match &options.orphans {
        OrphanPolicy::Delete(set) if steps.iter().any(|s| s.action.as_ref().and_then(orphan_subject).is_some()) => {
            Some(set.refreshed().await)
        }
        _ => None,
    };
    let mut index_edits = IndexEdits::planned(&steps);
    // Subjects with an orphaned referrer that stays (its delete failed, could not be checked, or was
    // skipped): their referrers index, planned after it, stays too, or that referrer would be left listed
    // nowhere — as planning holds everything of a subject with a referrer it could not read.
    let mut referrer_stays: BTreeMap<Digest, String> = BTreeMap::new();
    for step in steps {
        let mut item = step.item;
        let Some(action) = step.action else {
            items.push(item);
            continue;
        };
        if let Action::OrphanIndex { subject, .. } = &action
            && let Some(why) = referrer_stays.get(subject)
        {
            item.status = Status::CouldNotCheck;
            item.reasons.push(format!("not removed: {why}; removing this would leave it listed nowhere"));
            observer.acted(&item);
            items.push(item);
            continue;
        }
        if let Some(why) = refused.as_ref().filter(|_| action.deletes()) {
            item.status = Status::Failed;
            item.reasons.push(format!("{NOT_ATTEMPTED}: {why}"));
            item.error_kind = Some(ErrorKind::Unsupported.name().to_owned());
            observer.acted(&item);
            items.push(item);
            continue;
        }
        let outcome = match orphan_subject(&action) {
            Some(subject) => {
                let search = recheck_orphan(repo, subject, orphan_set.as_ref()).await;
                item.subject_search = Some(search.clone());
                match search.result {
                    SearchResult::Absent => run(repo, &action, &mut map, &mut index_edits, verifier, options).await,
                    SearchResult::Present => Ok(Done::Skipped(format!("the subject {}", search.summary()))),
                    SearchResult::CouldNotCheck => Ok(Done::Unchecked(format!("the subject is {}", search.summary()))),
                }
            }
            None => run(repo, &action, &mut map, &mut index_edits, verifier, options).await,
        };
        match outcome {
            Ok(Done::Removed(notes)) => {
                item.status = Status::Removed;
                item.reasons.extend(notes);
            }
            Ok(Done::Skipped(why)) => {
                item.status = Status::Skipped;
                item.reasons.push(format!("re-checked before acting: {why}"));
            }
            Ok(Done::Unchecked(why)) => {
                item.status = Status::CouldNotCheck;
                item.reasons.push(format!("could not check before acting: {why}"));
            }
            Err(e) => {
                item.status = Status::Failed;
                item.reasons.push(format!("failed: {e}"));
                item.error_kind = Some(e.kind().name().to_owned());
            }
        }
        // Not removed, for whatever reason (failed, unchecked, kept for a tag that shares its digest):
        // unless it is gone, it stays. Gone only by a GET's definite not-found: a HEAD's 404 carries no
        // body to tell a hidden denial from an absence.
        if let Action::OrphanReferrer { subject, digest } = &action
            && item.status != Status::Removed
            && !matches!(repo.get_manifest(&digest.to_string()).await, Ok(None))
        {
            referrer_stays.insert(
                subject.clone(),
                format!("orphaned referrer {} stays ({})", digest.short(), item.status.as_str()),
            );
        }
        observer.acted(&item);
        items.push(item);
    }
    items
}

/// The missing index entries planned for removal, by index tag, and those already removed together
/// with another one.
struct IndexEdits {
    planned: BTreeMap<String, Vec<Digest>>,
    /// (tag, entry) → the entry whose edit removed it.
    removed_with: BTreeMap<(String, Digest), Digest>,
}

impl IndexEdits {
    fn planned(steps: &[Step]) -> IndexEdits {
        let mut planned: BTreeMap<String, Vec<Digest>> = BTreeMap::new();
        for step in steps {
            if let Some(Action::IndexEntry { tag, entry, .. }) = &step.action {
                planned.entry(tag.clone()).or_default().push(entry.clone());
            }
        }
        IndexEdits { planned, removed_with: BTreeMap::new() }
    }
}

async fn run<R: Repository>(
    repo: &R,
    action: &Action,
    map: &mut TagMap,
    index_edits: &mut IndexEdits,
    verifier: &Arc<Verifier>,
    options: &PruneOptions,
) -> Result<Done> {
    match action {
        Action::LegacyAttestation { image, tag, manifest } => {
            let Some(a) = attestation::assess(repo, image, verifier, &options.limits).await? else {
                return Ok(Done::Skipped(format!("the tag {tag} no longer exists")));
            };
            if &a.manifest != manifest {
                return Ok(Done::Skipped(format!("{tag} now holds {}, not the manifest assessed", a.manifest.short())));
            }
            if !a.removable {
                return Ok(Done::Skipped(format!("no longer removable: {}", a.reasons.join("; "))));
            }
            delete(repo, map, manifest, Some(tag), false).await
        }
        // The subject was searched for again just before (see `apply`).
        Action::OrphanLegacy { tag, manifest, .. } | Action::OrphanIndex { tag, digest: manifest, .. } => {
            match repo.head_manifest(tag).await? {
                None => Ok(Done::Skipped(format!("the tag {tag} no longer exists"))),
                Some(d) if &d.digest != manifest => {
                    Ok(Done::Skipped(format!("{tag} now holds {}, not the manifest planned", d.digest.short())))
                }
                Some(_) => delete(repo, map, manifest, Some(tag), false).await,
            }
        }
        Action::OrphanReferrer { subject, digest } => {
            if repo.head_manifest(&digest.to_string()).await?.is_none() {
                return Ok(Done::Skipped("already gone".into()));
            }
            delete_referrer(repo, map, subject, digest, options).await
        }
        Action::DuplicateReferrer { subject, digest, keep, blob } => {
            let Some(duplicate) = repo.get_manifest(&digest.to_string()).await? else {
                return Ok(Done::Skipped("already gone".into()));
            };
            let Manifest::Image(duplicate) = &duplicate.manifest else {
                return Ok(Done::Skipped("no longer an image manifest".into()));
            };
            let identity = find::copy_identity(duplicate);
            if let Some(why) = kept_copy_problem(repo, subject, keep, blob, identity.as_deref()).await? {
                return Ok(Done::Skipped(why));
            }
            if let Some(what) = attestation::attached_to(repo, digest).await? {
                return Ok(Done::Skipped(format!("the duplicate has {what}")));
            }
            let done = delete_referrer(repo, map, subject, digest, options).await?;
            if let Done::Removed(mut notes) = done {
                let tag = subject.referrers_tag();
                let edited = remove_entry(repo, &tag, digest, options.index_retries).await.map_err(|e| {
                    e.context("the duplicate was deleted, but its index entry remains (the next run removes it)")
                })?;
                if edited {
                    notes.push(format!("its entry was removed from the referrers index {tag}"));
                }
                return Ok(Done::Removed(notes));
            }
            Ok(done)
        }
        Action::IndexEntry { tag, entry, .. } => {
            if let Some(with) = index_edits.removed_with.get(&(tag.clone(), entry.clone())) {
                return Ok(Done::Removed(vec![format!("entry removed from {tag} in one edit with {}", with.short())]));
            }
            if repo.get_manifest(&entry.to_string()).await?.is_some() {
                return Ok(Done::Skipped(format!("manifest {} exists again", entry.short())));
            }
            // Every other planned entry of this index that is still missing goes in the same edit: the
            // registry may refuse an index listing a manifest it lacks (distribution does), so removing
            // one dangling entry at a time would never succeed.
            let mut missing = vec![entry.clone()];
            for other in index_edits.planned.get(tag).into_iter().flatten().filter(|d| *d != entry) {
                if matches!(repo.get_manifest(&other.to_string()).await, Ok(None)) {
                    missing.push(other.clone());
                }
            }
            if !remove_entries(repo, tag, &missing, options.index_retries).await? {
                return Ok(Done::Skipped("no longer listed".into()));
            }
            for other in &missing[1..] {
                index_edits.removed_with.insert((tag.clone(), other.clone()), entry.clone());
            }
            let mut notes = vec![format!("entry removed from {tag}")];
            if missing.len() > 1 {
                notes.push(format!("with {} other missing entries in the same edit", missing.len() - 1));
            }
            Ok(Done::Removed(notes))
        }
        Action::EmptyIndex { tag, .. } => {
            let Some(raw) = repo.get_manifest(tag).await? else {
                return Ok(Done::Skipped(format!("the tag {tag} no longer exists")));
            };
            match &raw.manifest {
                Manifest::Index(i) if i.manifests.is_empty() => delete(repo, map, &raw.digest, Some(tag), true).await,
                Manifest::Index(_) => Ok(Done::Skipped("the index has entries again".into())),
                _ => Ok(Done::Skipped(format!("{tag} no longer holds an index"))),
            }
        }
    }
}

/// The missing subject an orphan action depends on.
fn orphan_subject(action: &Action) -> Option<&Digest> {
    match action {
        Action::OrphanLegacy { image: subject, .. }
        | Action::OrphanIndex { subject, .. }
        | Action::OrphanReferrer { subject, .. } => Some(subject),
        _ => None,
    }
}

/// Search for an orphan's subject again, over `set` (`None`: the policy keeps orphans, so nothing may go).
async fn recheck_orphan<R: Repository>(repo: &R, subject: &Digest, set: Option<&SearchSet>) -> SubjectSearch {
    match set {
        Some(set) => orphans::search(repo, subject, set).await,
        // Planned orphan actions exist only under `Delete`; answer "could not check" rather than act.
        None => {
            let mut s = SubjectSearch::own_repository_only(repo);
            s.result = SearchResult::CouldNotCheck;
            s.errors.push("deleting orphans was not enabled".into());
            s
        }
    }
}

/// `Some(why)` unless the copy to keep still exists, names the subject, carries `blob`, and is listed
/// among the subject's referrers (where consumers look) with its own artifact type (what they filter on).
async fn kept_copy_problem<R: Repository>(
    repo: &R,
    subject: &Digest,
    keep: &Digest,
    blob: &Digest,
    identity: Option<&str>,
) -> Result<Option<String>> {
    let Some(raw) = repo.get_manifest(&keep.to_string()).await? else {
        return Ok(Some(format!("the copy to keep, {}, is gone", keep.short())));
    };
    let Manifest::Image(m) = &raw.manifest else {
        return Ok(Some(format!("the copy to keep, {}, is not an image manifest", keep.short())));
    };
    // What consumers find and verify of the two must be the same: the duplicate goes only for a copy
    // that serves them equally.
    let same = m.subject.as_ref().is_some_and(|s| &s.digest == subject)
        && matches!(m.layers.as_slice(), [l] if &l.digest == blob)
        && identity.is_some()
        && find::copy_identity(m).as_deref() == identity;
    if !same {
        return Ok(Some(format!("the copy to keep, {}, no longer carries the same content", keep.short())));
    }
    let listing = repo.referrers(subject, None).await?;
    let Some(entry) = listing.descriptors.iter().find(|d| &d.digest == keep) else {
        return Ok(Some(format!("the copy to keep, {}, is not listed among the referrers", keep.short())));
    };
    if attestation::missed_by_consumers(&listing, entry, raw.manifest.effective_artifact_type()) {
        return Ok(Some(format!(
            "the copy to keep, {}, is listed without its own artifact type, so consumers filtering on it miss it \
             ({})",
            keep.short(),
            if listing.from_tag_schema() {
                "a `migrate` rerun restores the index entry"
            } else {
                "the registry's referrers API lists it so; Harbor before 2.11 does, goharbor/harbor#19867"
            }
        )));
    }
    Ok(None)
}

/// Delete the referrer `digest` of `subject`. Where the registry refuses to delete a manifest that a
/// referrers index still lists (Artifact Registry: 400 `GOOGLE_MANIFEST_DANGLING_PARENT_IMAGE`,
/// chainguard-dev/terraform-provider-cosign#577), its entry in the tag-schema index is removed first and
/// the delete made again; the order is learnt for the host, so the next referrers there go entry first.
/// Should the delete still fail, the entry is put back: a referrer is never left unlisted.
async fn delete_referrer<R: Repository>(
    repo: &R,
    map: &mut TagMap,
    subject: &Digest,
    digest: &Digest,
    options: &PruneOptions,
) -> Result<Done> {
    let others = needed_by_others(map, digest, None, false);
    if !others.is_empty() {
        return Ok(Done::Skipped(shared_reason(&others)));
    }
    if !repo.facts().entry_before_delete() {
        match delete(repo, map, digest, None, false).await {
            Err(e) if may_be_refused_while_listed(&e) => {
                let Some(entry) = index_entry(repo, subject, digest).await? else { return Err(e) };
                let done = delete_unlisted(repo, map, subject, entry, options).await;
                // Learnt only when the other order worked: any other failure says nothing about order.
                if matches!(done, Ok(Done::Removed(_))) {
                    repo.learn(Learnt::DeleteWhileListedRefused(e.to_string()));
                }
                return done;
            }
            done => return done,
        }
    }
    match index_entry(repo, subject, digest).await? {
        Some(entry) => delete_unlisted(repo, map, subject, entry, options).await,
        None => delete(repo, map, digest, None, false).await,
    }
}

/// A refusal that may be the registry protecting a manifest an index lists: a 4xx answer (Artifact Registry
/// sends 400 `GOOGLE_MANIFEST_DANGLING_PARENT_IMAGE`) that is not a missing manifest, a registry refusing
/// every DELETE, a denial or a throttle. A server error (5xx), a dead network or a local failure says
/// nothing about order, and is never learnt as one.
fn may_be_refused_while_listed(e: &Error) -> bool {
    e.http_status().is_some_and(|s| (400..500).contains(&s))
        && !matches!(
            e.kind(),
            ErrorKind::NotFound | ErrorKind::Unsupported | ErrorKind::Unauthorized | ErrorKind::RateLimited
        )
}

/// The entry of the tag-schema index of `subject` that lists `digest`, if that index exists and lists it.
async fn index_entry<R: Repository>(repo: &R, subject: &Digest, digest: &Digest) -> Result<Option<Descriptor>> {
    let Some(raw) = repo.get_manifest(&subject.referrers_tag()).await? else { return Ok(None) };
    let Manifest::Index(index) = &raw.manifest else { return Ok(None) };
    Ok(index.manifests.iter().find(|d| &d.digest == digest).cloned())
}

/// Remove `entry` from the index of `subject`, then delete the manifest it names; put the entry back if
/// the delete does not happen.
async fn delete_unlisted<R: Repository>(
    repo: &R,
    map: &mut TagMap,
    subject: &Digest,
    entry: Descriptor,
    options: &PruneOptions,
) -> Result<Done> {
    let tag = subject.referrers_tag();
    // A removal that failed may still have taken effect (its read-back failed, say): put the entry back
    // then too (adding is idempotent), so the referrer is never left unlisted.
    let outcome = match remove_entry(repo, &tag, &entry.digest, options.index_retries).await {
        Ok(_) => delete(repo, map, &entry.digest, None, false).await,
        Err(e) => Err(e),
    };
    if !matches!(outcome, Ok(Done::Removed(_))) {
        let restore = IndexOptions { repair: false, max_retries: options.index_retries };
        tag_schema::add_to_index(repo, subject, std::slice::from_ref(&entry), restore).await.map_err(|e| {
            // Both failures, or the reason the delete did not happen would be lost.
            let why = match &outcome {
                Err(first) => format!("{first}"),
                Ok(Done::Skipped(why) | Done::Unchecked(why)) => why.clone(),
                Ok(Done::Removed(_)) => String::new(),
            };
            e.context(format!(
                "the referrer {} could not be deleted ({why}) and its index entry not restored",
                entry.digest
            ))
        })?;
    }
    let mut notes = match outcome? {
        Done::Removed(notes) => notes,
        other => return Ok(other),
    };
    notes.push(format!(
        "its entry was removed from the referrers index {tag} first: the registry refuses to delete a listed manifest"
    ));
    Ok(Done::Removed(notes))
}

/// Delete `digest` unless a tag other than `own_tag` holds it.
async fn delete<R: Repository>(
    repo: &R,
    map: &mut TagMap,
    digest: &Digest,
    own_tag: Option<&str>,
    empty_index: bool,
) -> Result<Done> {
    let others = needed_by_others(map, digest, own_tag, empty_index);
    if !others.is_empty() {
        return Ok(Done::Skipped(shared_reason(&others)));
    }
    repo.delete_manifest(digest)
        .await
        .map_err(|e: Error| e.context(format!("the registry refused to delete {digest}")))?;
    map.remove(digest);
    Ok(Done::Removed(vec![format!("deleted manifest {}", digest.short())]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy kept in place of a duplicate must be one consumers find: listed in the tag-schema index with
    /// its own artifact type, which another writer's stale merge can drop.
    #[tokio::test]
    async fn a_copy_listed_without_its_artifact_type_is_not_kept_in_place_of_a_duplicate() {
        use crate::model::media_type as mt;
        use crate::model::oci::{Descriptor, ImageManifest, Index, to_canonical_bytes};
        use crate::model::referrers_index::referrer_entry;
        use crate::store::memory::MemoryRepository;
        use bytes::Bytes;

        let repo = MemoryRepository::new("app");
        let subject = Digest::sha256(b"an image");
        let bundle = Bytes::from_static(b"a bundle");
        repo.put_blob(bundle.clone()).await.unwrap();
        let layer = Descriptor::of(mt::BUNDLE_V03, &bundle);
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(mt::OCI_MANIFEST.to_owned()),
            artifact_type: Some(mt::BUNDLE_V03.to_owned()),
            config: Descriptor::empty_config(),
            layers: vec![layer.clone()],
            subject: Some(Descriptor { digest: subject.clone(), ..Descriptor::of(mt::OCI_MANIFEST, b"an image") }),
            annotations: Default::default(),
            extra: Default::default(),
        };
        let bytes = Bytes::from(to_canonical_bytes(&manifest));
        let keep = repo.put_manifest(bytes.clone(), mt::OCI_MANIFEST, None).await.unwrap().digest;
        let identity = find::copy_identity(&manifest);
        let list = |artifact_type: Option<String>| {
            let mut entry = referrer_entry(&Descriptor::of(mt::OCI_MANIFEST, &bytes), &manifest);
            entry.artifact_type = artifact_type;
            let index = Index { manifests: vec![entry], ..Index::empty() };
            let (repo, tag) = (&repo, subject.referrers_tag());
            async move {
                repo.put_manifest(Bytes::from(to_canonical_bytes(&index)), mt::OCI_INDEX, Some(&tag)).await.unwrap();
            }
        };

        list(Some(mt::BUNDLE_V03.to_owned())).await;
        let problem = kept_copy_problem(&repo, &subject, &keep, &layer.digest, identity.as_deref()).await.unwrap();
        assert_eq!(problem, None);
        list(None).await;
        let problem = kept_copy_problem(&repo, &subject, &keep, &layer.digest, identity.as_deref()).await.unwrap();
        assert!(problem.as_deref().is_some_and(|p| p.contains("without its own artifact type")), "{problem:?}");
    }

    #[test]
    fn only_a_4xx_refusal_may_mean_the_delete_must_wait_for_the_index() {
        let answered = |kind, status| Error::new(kind, "DELETE refused").with_status(status);
        assert!(may_be_refused_while_listed(&answered(ErrorKind::Registry, 400)));
        assert!(may_be_refused_while_listed(&answered(ErrorKind::Conflict, 409)));
        for status in [500, 502, 503] {
            assert!(!may_be_refused_while_listed(&answered(ErrorKind::Registry, status)), "{status}");
        }
        assert!(!may_be_refused_while_listed(&answered(ErrorKind::NotFound, 404)));
        assert!(!may_be_refused_while_listed(&answered(ErrorKind::Unsupported, 405)));
        assert!(!may_be_refused_while_listed(&answered(ErrorKind::Unauthorized, 403)));
        assert!(!may_be_refused_while_listed(&answered(ErrorKind::RateLimited, 429)));
        assert!(!may_be_refused_while_listed(&Error::new(ErrorKind::Network, "connection reset")));
    }
}
