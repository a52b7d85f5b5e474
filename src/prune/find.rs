//! Finding what may be removed, without writing anything.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::convert::annotations::LEGACY_LAYER_DIGEST;
use crate::error::{Error, Result};
use crate::model::cosign::TagKind;
use crate::model::digest::Digest;
use crate::model::media_type::annotations::OCI_CREATED;
use crate::model::oci::{Descriptor, Manifest};
use crate::read::referrers::{ReferrerFormat, classify};
use crate::store::Repository;
use crate::store::resolve_tags;
use crate::verification::Verifier;

use super::orphans::{self, OrphanPolicy, SearchResult, SubjectSearch};
use super::report::{Item, ItemKind, Status};
use super::{Action, PruneOptions, Scope, Step, TagMap, attestation};

/// Group resolved tags by digest.
pub fn tag_map(tags: &BTreeMap<String, Descriptor>) -> TagMap {
    let mut map = TagMap::new();
    for (tag, d) in tags {
        map.entry(d.digest.clone()).or_default().push(tag.clone());
    }
    map
}

/// The tags other than `own_tag` that would be dropped with `digest` and still need it. With
/// `empty_index`, other referrers-index tags are not counted: they hold the same empty index, which says
/// exactly what no index says.
pub fn needed_by_others(map: &TagMap, digest: &Digest, own_tag: Option<&str>, empty_index: bool) -> Vec<String> {
    map.get(digest)
        .map(|tags| {
            tags.iter()
                .filter(|t| Some(t.as_str()) != own_tag)
                .filter(|t| !(empty_index && Digest::from_referrers_tag(t).is_some()))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// A `could-not-check` item.
pub fn could_not_check<R: Repository>(repo: &R, subject: Option<&Digest>, e: &Error, doing: &str) -> Item {
    Item {
        repository: repo.name(),
        kind: ItemKind::Subject,
        subject: subject.cloned(),
        digest: None,
        tag: None,
        size: 0,
        status: Status::CouldNotCheck,
        reasons: vec![format!("could not check: {doing}: {e}")],
        error_kind: Some(e.kind().name().to_owned()),
        subject_search: None,
    }
}

struct Ctx<'a, R> {
    repo: &'a R,
    tags: &'a BTreeMap<String, Descriptor>,
    verifier: &'a Arc<Verifier>,
    options: &'a PruneOptions,
}

impl<R: Repository> Ctx<'_, R> {
    fn item(&self, kind: ItemKind, subject: &Digest, digest: Option<Digest>, tag: Option<String>, size: u64) -> Item {
        Item {
            repository: self.repo.name(),
            kind,
            subject: Some(subject.clone()),
            digest,
            tag,
            size,
            status: Status::Planned,
            reasons: Vec::new(),
            error_kind: None,
            subject_search: None,
        }
    }

    fn unchecked(&self, subject: &Digest, e: &Error, doing: &str) -> Step {
        Step { item: could_not_check(self.repo, Some(subject), e, doing), action: None }
    }

    /// Manifest bytes plus the blobs it lists; the descriptor size when it cannot be read.
    async fn size_of(&self, reference: &str, fallback: u64) -> u64 {
        match self.repo.get_manifest(reference).await {
            Ok(Some(raw)) => raw_size(&raw),
            _ => fallback,
        }
    }
}

fn raw_size(raw: &crate::model::oci::RawManifest) -> u64 {
    let blobs: u64 = match &raw.manifest {
        Manifest::Image(m) => m.layers.iter().chain(std::iter::once(&m.config)).map(|l| l.size).sum(),
        Manifest::Artifact(a) => a.blobs.iter().map(|b| b.size).sum(),
        Manifest::Index(_) => 0,
    };
    (raw.bytes.len() as u64).saturating_add(blobs)
}

/// Plan the prune of one repository (nothing is written). Steps come in the order they must be applied.
pub async fn find<R: Repository>(
    repo: &R,
    scope: &Scope,
    verifier: &Arc<Verifier>,
    options: &PruneOptions,
) -> Result<Vec<Step>> {
    let tags = resolve_tags(repo).await?;
    let ctx = Ctx { repo, tags: &tags, verifier, options };

    // Subjects known to exist (an ordinary tag resolves to them) and every subject a tag names.
    let mut existing = BTreeSet::new();
    let mut subjects: Vec<Digest> = Vec::new();
    for (tag, d) in &tags {
        if let Some((image, _)) = TagKind::parse_tag(tag) {
            subjects.push(image);
        } else if let Some(s) = Digest::from_referrers_tag(tag) {
            subjects.push(s);
        } else {
            existing.insert(d.digest.clone());
            subjects.push(d.digest.clone());
        }
    }
    if let Scope::Images(images) = scope {
        subjects = images.clone();
    }
    let mut seen = BTreeSet::new();
    subjects.retain(|s| seen.insert(s.clone()));

    let mut steps = Vec::new();
    for subject in &subjects {
        let exists = if existing.contains(subject) {
            Ok(true)
        } else {
            repo.get_manifest(&subject.to_string()).await.map(|m| m.is_some())
        };
        match exists {
            Ok(true) => present_subject(&ctx, subject, &mut steps).await,
            Ok(false) => missing_subject(&ctx, subject, &mut steps).await,
            Err(e) => steps.push(ctx.unchecked(subject, &e, "whether the subject manifest exists")),
        }
    }
    // With the attachments apart, deletes drop tags the listing does not show (other repositories'
    // images' attachments, the attachments repository's own images): the guard sees all of them, read
    // only when something is to be deleted (once per run when repositories share them; apply takes a
    // read of them that began after it asked, before acting).
    let deleting = steps.iter().any(|s| s.action.as_ref().and_then(deletes).is_some());
    let map = if deleting && repo.attachments_repository().is_some() {
        repo.planning_side_tags().await.map(|t| tag_map(&t))
    } else {
        Ok(tag_map(&tags))
    };
    match map {
        Ok(map) => steps.iter_mut().for_each(|step| guard_shared(&map, step)),
        // Without every tag a delete could drop, no delete is planned; the rest of the plan stands.
        Err(e) => {
            for step in steps.iter_mut().filter(|s| s.action.as_ref().and_then(deletes).is_some()) {
                step.item.status = Status::CouldNotCheck;
                step.item.reasons.push(format!("could not check whether other tags hold it: {e}"));
                step.item.error_kind = Some(e.kind().name().to_owned());
                step.action = None;
            }
        }
    }
    steps.sort_by_key(|s| s.action.as_ref().map_or(u8::MAX, Action::phase));
    Ok(steps)
}

/// The digest an action deletes and the tag it is expected under.
pub(crate) fn deletes(action: &Action) -> Option<(&Digest, Option<&str>)> {
    match action {
        Action::LegacyAttestation { manifest, tag, .. } | Action::OrphanLegacy { manifest, tag, .. } => {
            Some((manifest, Some(tag)))
        }
        Action::OrphanIndex { digest, tag, .. } => Some((digest, Some(tag))),
        Action::OrphanReferrer { digest, .. } | Action::DuplicateReferrer { digest, .. } => Some((digest, None)),
        Action::IndexEntry { .. } | Action::EmptyIndex { .. } => None,
    }
}

/// A removal whose digest another tag still needs is kept, with the tags named.
fn guard_shared(map: &TagMap, step: &mut Step) {
    let Some((digest, own)) = step.action.as_ref().and_then(deletes) else {
        return;
    };
    let others = needed_by_others(map, digest, own, false);
    if !others.is_empty() {
        step.item.status = Status::Kept;
        step.item.reasons.push(shared_reason(&others));
        step.action = None;
    }
}

/// Why a digest is kept when other tags hold it.
pub(crate) fn shared_reason(others: &[String]) -> String {
    format!("other tag(s) hold the same manifest digest and a delete would drop them too: {}", others.join(", "))
}

/// The orphans of a subject absent from this repository: found and reported always, removable only
/// under [`OrphanPolicy::Delete`] once the search says the subject is absent everywhere it looked.
async fn missing_subject<R: Repository>(ctx: &Ctx<'_, R>, subject: &Digest, steps: &mut Vec<Step>) {
    if let Some(attachments) = ctx.repo.attachments_repository() {
        return foreign(ctx, subject, &attachments, steps);
    }
    let search = match &ctx.options.orphans {
        OrphanPolicy::Keep => SubjectSearch::own_repository_only(ctx.repo),
        OrphanPolicy::Delete(set) => orphans::search(ctx.repo, subject, set).await,
    };
    let mut found = Vec::new();
    let mut unchecked = false;
    for kind in TagKind::ALL {
        let tag = kind.tag_for(subject);
        let Some(d) = ctx.tags.get(&tag) else { continue };
        let size = ctx.size_of(&tag, d.size).await;
        let mut item = ctx.item(ItemKind::OrphanLegacy, subject, Some(d.digest.clone()), Some(tag.clone()), size);
        item.reasons.push(format!("legacy .{} whose image is absent from this repository", kind.suffix()));
        let action = Action::OrphanLegacy { image: subject.clone(), tag, manifest: d.digest.clone() };
        found.push(Step { item, action: Some(action) });
    }
    match ctx.repo.referrers(subject, None).await {
        Ok(listing) => {
            for listed in &listing.descriptors {
                match ctx.repo.get_manifest(&listed.digest.to_string()).await {
                    // Listed but already gone: the index is reported as a whole below.
                    Ok(None) => {}
                    Ok(Some(raw)) if raw.manifest.subject().is_some_and(|s| &s.digest == subject) => {
                        let mut item = ctx.item(
                            ItemKind::OrphanReferrer,
                            subject,
                            Some(listed.digest.clone()),
                            None,
                            raw_size(&raw),
                        );
                        item.reasons.push("referrer whose subject is absent from this repository".into());
                        let action = Action::OrphanReferrer { subject: subject.clone(), digest: listed.digest.clone() };
                        found.push(Step { item, action: Some(action) });
                    }
                    Ok(Some(_)) => {
                        let mut item =
                            ctx.item(ItemKind::OrphanReferrer, subject, Some(listed.digest.clone()), None, 0);
                        item.status = Status::Kept;
                        item.reasons.push("listed for this subject but its manifest names another subject".into());
                        steps.push(Step { item, action: None });
                    }
                    Err(e) => {
                        unchecked = true;
                        steps.push(ctx.unchecked(subject, &e, &format!("reading referrer {}", listed.digest)));
                    }
                }
            }
        }
        Err(e) => {
            unchecked = true;
            steps.push(ctx.unchecked(subject, &e, "listing the referrers of a missing subject"));
        }
    }
    let tag = subject.referrers_tag();
    if let Some(d) = ctx.tags.get(&tag) {
        let mut item = ctx.item(ItemKind::OrphanIndex, subject, Some(d.digest.clone()), Some(tag.clone()), d.size);
        item.reasons.push("referrers index whose subject is absent from this repository".into());
        let action = Action::OrphanIndex { subject: subject.clone(), tag, digest: d.digest.clone() };
        found.push(Step { item, action: Some(action) });
    }
    for mut step in found {
        judge_orphan(&ctx.options.orphans, &search, &mut step);
        // Removing the index or the legacy tags while a referrer could not be read could leave that
        // referrer in the registry but listed nowhere.
        if unchecked && step.action.take().is_some() {
            step.item.status = Status::CouldNotCheck;
            step.item.reasons.push("not removed: another attachment of this subject could not be checked".into());
        }
        steps.push(step);
    }
}

/// The legacy tags of an image the image repository does not serve, when the attachments are kept apart:
/// the attachments repository is shared (other repositories' images, its own images), so its tags are
/// reported and never acted on, whatever the orphan policy. Its referrers and indexes are left unread.
fn foreign<R: Repository>(ctx: &Ctx<'_, R>, subject: &Digest, attachments: &str, steps: &mut Vec<Step>) {
    for kind in TagKind::ALL {
        let tag = kind.tag_for(subject);
        let Some(d) = ctx.tags.get(&tag) else { continue };
        let mut item = ctx.item(ItemKind::ForeignLegacy, subject, Some(d.digest.clone()), Some(tag), d.size);
        item.status = Status::Kept;
        item.reasons.push(format!(
            "kept: {} serves no image {subject}; this legacy .{} in {attachments} is another repository's or an \
             image of {attachments} itself",
            ctx.repo.name(),
            kind.suffix()
        ));
        steps.push(Step { item, action: None });
    }
}

/// Keep an orphan unless the policy allows deleting orphans and the search found its subject absent
/// everywhere; the search goes into the item either way.
pub(crate) fn judge_orphan(policy: &OrphanPolicy, search: &SubjectSearch, step: &mut Step) {
    step.item.subject_search = Some(search.clone());
    let item = &mut step.item;
    match (policy, search.result) {
        (OrphanPolicy::Keep, _) => {
            item.status = Status::Kept;
            item.reasons.push(
                "kept: absent from this repository is not gone — the image may be stored in another repository \
                 (cosign's COSIGN_REPOSITORY); --delete-orphans searches the registry first"
                    .into(),
            );
            step.action = None;
        }
        (OrphanPolicy::Delete(_), SearchResult::Absent) => {
            item.reasons.push(format!("the subject is {}", search.summary()));
        }
        (OrphanPolicy::Delete(_), SearchResult::Present) => {
            item.status = Status::Kept;
            item.reasons.push(format!("kept: the subject {}", search.summary()));
            step.action = None;
        }
        (OrphanPolicy::Delete(_), SearchResult::CouldNotCheck) => {
            item.status = Status::CouldNotCheck;
            item.reasons.push(format!("could not check: the subject is {}", search.summary()));
            step.action = None;
        }
    }
}

async fn present_subject<R: Repository>(ctx: &Ctx<'_, R>, subject: &Digest, steps: &mut Vec<Step>) {
    if ctx.tags.contains_key(&TagKind::Attestation.tag_for(subject)) {
        match attestation::assess(ctx.repo, subject, ctx.verifier, &ctx.options.limits).await {
            Ok(Some(a)) => {
                let mut item = ctx.item(
                    ItemKind::LegacyAttestation,
                    subject,
                    Some(a.manifest.clone()),
                    Some(a.tag.clone()),
                    a.size,
                );
                item.reasons = a.reasons;
                let action = if a.removable {
                    item.reasons.insert(0, "every layer is migrated, verified now, with the same payload".into());
                    Some(Action::LegacyAttestation { image: subject.clone(), tag: a.tag, manifest: a.manifest })
                } else {
                    item.status = Status::Kept;
                    None
                };
                steps.push(Step { item, action });
            }
            Ok(None) => {}
            Err(e) => steps.push(ctx.unchecked(subject, &e, "assessing the legacy .att")),
        }
    }
    // With an attachments repository shared by several repositories of the run, an image tagged in two
    // of them has one set of referrers there: only the repository that took it plans removals among them.
    if ctx.repo.claims_attachments_of(subject)
        && let Err(e) = duplicates(ctx, subject, steps).await
    {
        steps.push(ctx.unchecked(subject, &e, "looking for duplicate referrers"));
    }
    index_entries(ctx, subject, steps).await;
}

/// What a consumer finds and verifies of a referrer: its artifact type (what listings are filtered on),
/// its config, and its one layer with the layer's annotations (a DSSE referrer's certificate and log
/// entry sit there). Two referrers of one subject with the same are interchangeable; `None` for a
/// manifest that is not one layer.
pub(super) fn copy_identity(m: &crate::model::oci::ImageManifest) -> Option<String> {
    let [layer] = m.layers.as_slice() else { return None };
    let identity = serde_json::json!([
        m.artifact_type,
        m.config.media_type,
        m.config.digest.to_string(),
        layer.media_type,
        layer.digest.to_string(),
        layer.annotations,
    ]);
    Some(identity.to_string())
}

async fn duplicates<R: Repository>(ctx: &Ctx<'_, R>, subject: &Digest, steps: &mut Vec<Step>) -> Result<()> {
    let listing = ctx.repo.referrers(subject, None).await?;
    // Keyed by what consumers see of a copy (its identity), with its content blob; each copy as (whether
    // consumers filtering on its artifact type miss it, whether it lacks att2ref's pairing with a legacy
    // layer, created, digest, size).
    type Copy = (bool, bool, Option<String>, Digest, u64);
    let mut groups: BTreeMap<(String, Digest), Vec<Copy>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for listed in &listing.descriptors {
        if !seen.insert(listed.digest.clone()) {
            continue;
        }
        let Some(raw) = ctx.repo.get_manifest(&listed.digest.to_string()).await? else {
            continue;
        };
        let Manifest::Image(m) = &raw.manifest else { continue };
        let ours = m.subject.as_ref().is_some_and(|s| &s.digest == subject);
        let format = classify(&raw.manifest);
        if !ours || !matches!(format, ReferrerFormat::SigstoreBundle | ReferrerFormat::DsseEnvelope) {
            continue;
        }
        let (Some(identity), [layer]) = (copy_identity(m), m.layers.as_slice()) else { continue };
        // A copy listed without its own artifact type is hidden from consumers that filter on it, as cosign
        // does: such a copy is never the one kept.
        let missed = attestation::missed_by_consumers(&listing, listed, raw.manifest.effective_artifact_type());
        let unpaired = !m.annotations.contains_key(LEGACY_LAYER_DIGEST);
        let created = m.annotations.get(OCI_CREATED).cloned();
        let copy = (missed, unpaired, created, raw.digest.clone(), raw.bytes.len() as u64);
        groups.entry((identity, layer.digest.clone())).or_default().push(copy);
    }
    for ((_, blob), mut copies) in groups {
        if copies.len() < 2 {
            continue;
        }
        // The copy kept is one that consumers find, then one `migrate` pairs with its legacy layer if there
        // is one (a rerun would otherwise write it again, and the next prune remove it again), then the
        // first created.
        copies.sort_by(|a, b| {
            (a.0, a.1, a.2.is_none(), &a.2, a.3.to_string()).cmp(&(b.0, b.1, b.2.is_none(), &b.2, b.3.to_string()))
        });
        if copies[0].0 {
            // Consumers miss every copy: none is removed for another, and the report says why.
            let remedy = if listing.from_tag_schema() {
                "a `migrate` rerun restores the index entries"
            } else {
                "the registry's referrers API lists them so (Harbor before 2.11 lists the config's media type, \
                 goharbor/harbor#19867: upgrade it)"
            };
            for (_, _, _, digest, size) in copies.into_iter().skip(1) {
                let mut item = ctx.item(ItemKind::DuplicateReferrer, subject, Some(digest), None, size);
                item.status = Status::Kept;
                item.reasons.push(format!(
                    "carries the same blob {} as other copies, but consumers filtering on the artifact type miss \
                     every copy, so none is removed for another ({remedy})",
                    blob.short()
                ));
                steps.push(Step { item, action: None });
            }
            continue;
        }
        let keep = copies[0].3.clone();
        for (_, _, _, digest, size) in copies.into_iter().skip(1) {
            let mut item = ctx.item(ItemKind::DuplicateReferrer, subject, Some(digest.clone()), None, size);
            item.reasons.push(format!(
                "carries the same blob {}, with the same artifact type, config and layer annotations, as referrer \
                 {}, which is kept (first one listed with its artifact type, then paired with a legacy layer, then \
                 by created time, then digest)",
                blob.short(),
                keep.short()
            ));
            let action =
                Action::DuplicateReferrer { subject: subject.clone(), digest, keep: keep.clone(), blob: blob.clone() };
            steps.push(Step { item, action: Some(action) });
        }
    }
    Ok(())
}

async fn index_entries<R: Repository>(ctx: &Ctx<'_, R>, subject: &Digest, steps: &mut Vec<Step>) {
    let tag = subject.referrers_tag();
    if !ctx.tags.contains_key(&tag) {
        return;
    }
    let raw = match ctx.repo.get_manifest(&tag).await {
        Ok(Some(raw)) => raw,
        Ok(None) => return,
        Err(e) => return steps.push(ctx.unchecked(subject, &e, &format!("reading the referrers index {tag}"))),
    };
    let Manifest::Index(index) = &raw.manifest else {
        let mut item = ctx.item(ItemKind::EmptyIndex, subject, Some(raw.digest.clone()), Some(tag), 0);
        item.status = Status::Kept;
        item.reasons.push(format!("the tag holds a {}, not a referrers index; not touching it", raw.media_type));
        return steps.push(Step { item, action: None });
    };
    let mut present = 0usize;
    let mut checked = BTreeSet::new();
    for entry in &index.manifests {
        if !checked.insert(entry.digest.clone()) {
            continue;
        }
        match ctx.repo.get_manifest(&entry.digest.to_string()).await {
            Ok(None) => {
                let mut item =
                    ctx.item(ItemKind::IndexEntry, subject, Some(entry.digest.clone()), Some(tag.clone()), 0);
                item.reasons.push("the index lists a manifest that definitely does not exist (not found)".into());
                let action =
                    Action::IndexEntry { subject: subject.clone(), tag: tag.clone(), entry: entry.digest.clone() };
                steps.push(Step { item, action: Some(action) });
            }
            Ok(Some(_)) => present += 1,
            Err(e) => {
                present += 1;
                steps.push(ctx.unchecked(subject, &e, &format!("whether index entry {} exists", entry.digest)));
            }
        }
    }
    if present == 0 {
        let size = raw.bytes.len() as u64;
        let mut item = ctx.item(ItemKind::EmptyIndex, subject, Some(raw.digest.clone()), Some(tag.clone()), size);
        item.reasons.push(if index.manifests.is_empty() {
            "the referrers index has no entries".into()
        } else {
            "the referrers index is left with no entries once missing ones are removed".into()
        });
        steps.push(Step { item, action: Some(Action::EmptyIndex { subject: subject.clone(), tag }) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrers_tags_are_recognised_exactly() {
        let d = Digest::sha256(b"x");
        assert_eq!(Digest::from_referrers_tag(&d.referrers_tag()), Some(d.clone()));
        assert_eq!(Digest::from_referrers_tag(&d.cosign_tag("att")), None);
        assert_eq!(Digest::from_referrers_tag("latest"), None);
        assert_eq!(Digest::from_referrers_tag("sha256-abc"), None);
    }

    #[test]
    fn other_tags_on_a_digest_block_its_deletion() {
        let d = Digest::sha256(b"m");
        let e = Digest::sha256(b"other");
        let mut map = TagMap::new();
        map.insert(d.clone(), vec![d.cosign_tag("att"), "v1".into(), e.referrers_tag()]);
        assert_eq!(
            needed_by_others(&map, &d, Some(&d.cosign_tag("att")), false),
            vec!["v1".to_owned(), e.referrers_tag()]
        );
        assert_eq!(needed_by_others(&map, &d, Some(&d.cosign_tag("att")), true), vec!["v1".to_owned()]);
        assert!(needed_by_others(&map, &e, None, false).is_empty());

        let mut step = Step {
            item: Item {
                repository: "r".into(),
                kind: ItemKind::LegacyAttestation,
                subject: None,
                digest: Some(d.clone()),
                tag: Some(d.cosign_tag("att")),
                size: 1,
                status: Status::Planned,
                reasons: vec![],
                error_kind: None,
                subject_search: None,
            },
            action: Some(Action::LegacyAttestation { image: e, tag: d.cosign_tag("att"), manifest: d.clone() }),
        };
        guard_shared(&map, &mut step);
        assert!(step.action.is_none());
        assert_eq!(step.item.status, Status::Kept);
        assert!(step.item.reasons[0].contains("v1"), "{:?}", step.item.reasons);
    }
}
