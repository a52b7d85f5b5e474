//! Rule 1: a legacy `.att` may go only when every one of its layers survives as a migrated referrer that
//! a consumer finds (the same discovery `verify` uses), that verifies now under the caller's policy, and
//! whose DSSE payload is byte-identical to the layer's.
//!
//! Our provenance annotation (`dev.att2ref.legacy.layer.digest`) only says which referrers to look at;
//! the decision rests on content. A layer whose migration is missing, in flight (not yet listed) or
//! does not verify keeps the whole `.att`, so running this next to a live `migrate` is safe.

use std::sync::Arc;

use bytes::Bytes;

use crate::convert::annotations::LEGACY_LAYER_DIGEST;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::model::cosign::{LegacyLayerAnnotations, TagKind};
use crate::model::digest::Digest;
use crate::model::dsse::Envelope;
use crate::model::oci::Descriptor;
use crate::read::legacy::fetch_manifest;
use crate::read::referrers::{ReferrerContent, read_referrer};
use crate::store::{Referrers, Repository};
use crate::verification::{SignedEntity, Verifier};

/// Whether one image's legacy `.att` may be removed.
#[derive(Clone, Debug)]
pub struct RemovalAssessment {
    /// The `.att` tag.
    pub tag: String,
    /// The `.att` manifest digest (what a deletion would name).
    pub manifest: Digest,
    /// Manifest bytes plus declared layer sizes.
    pub size: u64,
    /// True when every layer is covered.
    pub removable: bool,
    /// Per layer: which referrer covers it, or why none does.
    pub reasons: Vec<String>,
}

/// One candidate referrer: its digest, the DSSE payload it carries, and what to verify.
struct Candidate {
    digest: Digest,
    payload: Option<Bytes>,
    entity: Arc<SignedEntity>,
}

/// Whether consumers, who filter a referrers listing on artifactType (cosign does), miss the entry
/// `listed` of a referrer whose own artifact type is `own`: a tag-schema entry that lost it or names
/// another (another writer's stale merge), or a referrers API that lists another (Harbor before 2.11
/// lists the config's media type, goharbor/harbor#19867). An API entry without one is the registry's
/// business: it applies the filter itself.
pub(crate) fn missed_by_consumers(listing: &Referrers, listed: &Descriptor, own: Option<&str>) -> bool {
    let listed_type = listed.artifact_type.as_deref();
    if listing.from_tag_schema() { listed_type != own } else { listed_type.is_some_and(|t| Some(t) != own) }
}

/// What attaches to the manifest `digest` itself — referrers of its own, or cosign legacy tags on it
/// (`cosign sign --attachment attestation` signs a `.att` manifest under `sha256-<it>.sig`) — if
/// anything: deleting that manifest would orphan them.
pub(crate) async fn attached_to<R: Repository>(repo: &R, digest: &Digest) -> Result<Option<String>> {
    let own = repo.referrers(digest, None).await?;
    if !own.descriptors.is_empty() {
        return Ok(Some(format!("{} referrer(s) of its own", own.descriptors.len())));
    }
    for kind in TagKind::ALL {
        let tag = kind.tag_for(digest);
        // A GET, not a HEAD: a HEAD's 404 has no body to tell a hidden denial from a real absence.
        if repo.get_manifest(&tag).await?.is_some() {
            return Ok(Some(format!("a legacy {tag} of its own")));
        }
    }
    Ok(None)
}

/// Assess `image`'s legacy `.att`; `Ok(None)` when it has none.
pub async fn assess<R: Repository>(
    repo: &R,
    image: &Digest,
    verifier: &Arc<Verifier>,
    limits: &Limits,
) -> Result<Option<RemovalAssessment>> {
    let Some(att) = fetch_manifest(repo, image, TagKind::Attestation, limits).await? else {
        return Ok(None);
    };
    let mut a = RemovalAssessment {
        tag: att.tag.clone(),
        manifest: att.raw.digest.clone(),
        size: (att.raw.bytes.len() as u64).saturating_add(att.layers_size()),
        removable: false,
        reasons: Vec::new(),
    };
    if att.layers().is_empty() {
        a.removable = true;
        a.reasons.push("the .att has no layers: it holds no attestation".into());
        return Ok(Some(a));
    }
    if let Some(what) = attached_to(repo, &a.manifest).await? {
        a.reasons.push(format!("the .att manifest has {what}; keeping it"));
        return Ok(Some(a));
    }

    let listing = repo.referrers(image, None).await?;
    let layer_digests: Vec<&Digest> = att.layers().iter().map(|l| &l.digest).collect();
    let mut candidates: Vec<(Digest, Candidate)> = Vec::new();
    let mut unreadable = Vec::new();
    for listed in &listing.descriptors {
        let Some(raw) = repo.get_manifest(&listed.digest.to_string()).await? else {
            // Listed is not present: Artifact Registry's listing lags deletions by hours
            // (chainguard-dev/terraform-provider-cosign#581).
            unreadable.push(format!(
                "referrer {}: listed, but its manifest is gone (a listing that lags a deletion); not counted",
                listed.digest.short()
            ));
            continue;
        };
        let Some(from) = raw.manifest.annotations().get(LEGACY_LAYER_DIGEST).and_then(|v| v.parse::<Digest>().ok())
        else {
            continue;
        };
        // Listed under this image by an index, but naming another subject: the referrers API of this image
        // would never show it, so it replaces nothing here.
        let subject = raw.manifest.subject().map(|s| &s.digest);
        if subject != Some(image) {
            unreadable.push(format!(
                "referrer {}: listed for this image, but its manifest names {} as its subject; not counted",
                listed.digest.short(),
                subject.map_or_else(|| "no subject".to_owned(), |d| d.to_string())
            ));
            continue;
        }
        if !layer_digests.contains(&&from) {
            continue;
        }
        let own_type = raw.manifest.effective_artifact_type();
        if missed_by_consumers(&listing, listed, own_type) {
            let why = if listing.from_tag_schema() {
                "`migrate` restores the entry"
            } else {
                "the registry's referrers API lists it so; Harbor before 2.11 lists the config's media type, \
                 goharbor/harbor#19867"
            };
            unreadable.push(format!(
                "referrer {}: listed with artifactType {}, not its own {}: consumers filtering on it miss it ({why}); \
                 not counted",
                listed.digest.short(),
                listed.artifact_type.as_deref().unwrap_or("(none)"),
                own_type.unwrap_or("(none)")
            ));
            continue;
        }
        match read_candidate(repo, image, listed, limits).await {
            Ok(c) => candidates.push((from, c)),
            Err(e) => unreadable.push(format!("referrer {}: {e}", listed.digest.short())),
        }
    }

    let mut covered = 0usize;
    for (index, layer) in att.layers().iter().enumerate() {
        let legacy = repo.get_blob(layer, limits.max_blob_bytes).await?;
        let Ok(envelope) = Envelope::parse(&legacy) else {
            a.reasons.push(format!("layer {index}: not a DSSE envelope; kept"));
            continue;
        };
        let mine: Vec<&Candidate> = candidates.iter().filter(|(d, _)| d == &layer.digest).map(|(_, c)| c).collect();
        if mine.is_empty() {
            a.reasons.push(format!(
                "layer {index} ({}): no migrated referrer is listed for it (not migrated yet, or in flight)",
                layer.digest.short()
            ));
            continue;
        }
        let mut why = Vec::new();
        let mut ok = None;
        for c in mine {
            if c.payload.as_deref() != Some(&envelope.payload[..]) {
                why.push(format!("{}: its DSSE payload differs from the layer's", c.digest.short()));
                continue;
            }
            match crate::verification::verify_off_thread(verifier, &c.entity, image).await? {
                Ok(()) => {
                    ok = Some(c.digest.clone());
                    break;
                }
                Err(f) => why.push(format!("{}: does not verify now: {f}", c.digest.short())),
            }
        }
        match ok {
            Some(d) => {
                covered += 1;
                a.reasons.push(format!("layer {index}: referrer {} verifies and carries the same payload", d.short()));
            }
            None => a.reasons.push(format!("layer {index}: no referrer qualifies ({})", why.join("; "))),
        }
    }
    a.reasons.extend(unreadable);
    a.removable = covered == att.layers().len();
    Ok(Some(a))
}

async fn read_candidate<R: Repository>(
    repo: &R,
    image: &Digest,
    listed: &crate::model::oci::Descriptor,
    limits: &Limits,
) -> Result<Candidate> {
    let r = read_referrer(repo, image, listed, true, limits).await?;
    let first_layer = r.layers().first().cloned();
    let (payload, entity) = match r.content {
        Some(ReferrerContent::Bundle { bundle, .. }) => {
            let payload = bundle.dsse_envelope().map(|e| Bytes::from(e.payload.clone()));
            (payload, SignedEntity::bundle(*bundle))
        }
        Some(ReferrerContent::Dsse { bytes, envelope, .. }) => {
            // Only what survives the deletion counts: the annotations on the referrer's own layer, never
            // the legacy layer's (which go with the .att).
            let annotations = first_layer.as_ref().map(LegacyLayerAnnotations::from_descriptor).unwrap_or_default();
            (Some(Bytes::from(envelope.payload)), SignedEntity::legacy_attestation(bytes.to_vec(), annotations))
        }
        None => {
            return Err(Error::invalid_format(format!(
                "not a Sigstore bundle or DSSE referrer ({})",
                r.format.as_str()
            )));
        }
    };
    Ok(Candidate { digest: listed.digest.clone(), payload, entity: Arc::new(entity) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::media_type as mt;
    use crate::model::oci::{Index, Manifest, to_canonical_bytes};
    use crate::model::referrers_index::{referrer_entry, remove_referrer};
    use crate::rewrite::{MigrateOptions, migrate_image};
    use crate::store::layout::LayoutRepository;
    use crate::verification::{Policy, PublicKey};

    fn verifier(key: &str) -> Arc<Verifier> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys").join(key);
        let key = PublicKey::from_pem(&std::fs::read(path).unwrap()).unwrap();
        Arc::new(Verifier::new(Policy::new().with_key(key).insecure_ignore_tlog(true)).unwrap())
    }

    async fn migrated() -> (tempfile::TempDir, LayoutRepository, Digest) {
        let scenario = crate::demo::demo().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let repo = crate::demo::write_layout(&scenario, dir.path()).await.unwrap();
        let report = migrate_image(&repo, &scenario.image, &verifier("rsa-4096.pub.pem"), &MigrateOptions::default())
            .await
            .unwrap();
        assert!(report.outcome.is_done(), "{report:?}");
        (dir, repo, scenario.image)
    }

    #[tokio::test]
    async fn removable_only_when_every_referrer_verifies_now() {
        let (_dir, repo, image) = migrated().await;
        let limits = Limits::default();
        let a = assess(&repo, &image, &verifier("rsa-4096.pub.pem"), &limits).await.unwrap().unwrap();
        assert!(a.removable, "{:?}", a.reasons);
        // Under a policy the referrers do not satisfy (another key), nothing qualifies.
        let a = assess(&repo, &image, &verifier("ed25519.pub.pem"), &limits).await.unwrap().unwrap();
        assert!(!a.removable);
        assert!(a.reasons.iter().all(|r| r.contains("does not verify now")), "{:?}", a.reasons);
    }

    /// A referrer labelled as layer 0's migration but carrying layer 1's statement does not count:
    /// the annotation only pairs, the bytes decide.
    #[tokio::test]
    async fn the_annotation_pairs_but_the_payload_decides() {
        let (_dir, repo, image) = migrated().await;
        let tag = image.referrers_tag();
        let Manifest::Index(index) = repo.get_manifest(&tag).await.unwrap().unwrap().manifest else { panic!() };
        let mut by_layer = Vec::new();
        for e in &index.manifests {
            let raw = repo.get_manifest(&e.digest.to_string()).await.unwrap().unwrap();
            let Manifest::Image(m) = raw.manifest else { panic!() };
            let layer: usize = m.annotations[crate::convert::annotations::LEGACY_LAYER].parse().unwrap();
            by_layer.push((layer, e.digest.clone(), m));
        }
        by_layer.sort_by_key(|(l, ..)| *l);
        let layer0 = by_layer[0].2.annotations[LEGACY_LAYER_DIGEST].clone();
        let mut relabelled = by_layer[1].2.clone();
        relabelled.annotations.insert(LEGACY_LAYER_DIGEST.into(), layer0);
        let bytes = Bytes::from(to_canonical_bytes(&relabelled));
        let put = repo.put_manifest(bytes.clone(), mt::OCI_MANIFEST, None).await.unwrap();
        let mut d = crate::model::oci::Descriptor::of(mt::OCI_MANIFEST, &bytes);
        d.digest = put.digest;
        let mut next: Index = remove_referrer(Some(index), &by_layer[0].1).index;
        next.manifests.push(referrer_entry(&d, &relabelled));
        repo.put_manifest(Bytes::from(to_canonical_bytes(&next)), mt::OCI_INDEX, Some(&tag)).await.unwrap();

        let a = assess(&repo, &image, &verifier("rsa-4096.pub.pem"), &Limits::default()).await.unwrap().unwrap();
        assert!(!a.removable);
        assert!(a.reasons[0].starts_with("layer 0: no referrer qualifies"), "{:?}", a.reasons);
        assert!(a.reasons[0].contains("payload differs"), "{:?}", a.reasons);
        assert!(a.reasons[1].contains("layer 1: referrer"), "{:?}", a.reasons);
    }

    /// A referrer the index lists under this image but whose manifest names another subject does not
    /// count, however well its payload verifies: the referrers API of this image would not show it.
    #[tokio::test]
    async fn a_referrer_naming_another_subject_replaces_nothing() {
        let (_dir, repo, image) = migrated().await;
        let tag = image.referrers_tag();
        let Manifest::Index(index) = repo.get_manifest(&tag).await.unwrap().unwrap().manifest else { panic!() };
        let first = index.manifests[0].digest.clone();
        let Manifest::Image(mut moved) = repo.get_manifest(&first.to_string()).await.unwrap().unwrap().manifest else {
            panic!()
        };
        let elsewhere = Digest::sha256(b"another image");
        moved.subject.as_mut().expect("a subject").digest = elsewhere.clone();
        let bytes = Bytes::from(to_canonical_bytes(&moved));
        let put = repo.put_manifest(bytes.clone(), mt::OCI_MANIFEST, None).await.unwrap();
        let mut d = crate::model::oci::Descriptor::of(mt::OCI_MANIFEST, &bytes);
        d.digest = put.digest;
        let mut next: Index = remove_referrer(Some(index), &first).index;
        next.manifests.push(referrer_entry(&d, &moved));
        repo.put_manifest(Bytes::from(to_canonical_bytes(&next)), mt::OCI_INDEX, Some(&tag)).await.unwrap();

        let a = assess(&repo, &image, &verifier("rsa-4096.pub.pem"), &Limits::default()).await.unwrap().unwrap();
        assert!(!a.removable, "{:?}", a.reasons);
        let note = format!("names {elsewhere} as its subject; not counted");
        assert_eq!(a.reasons.iter().filter(|r| r.contains(&note)).count(), 1, "{:?}", a.reasons);
        assert_eq!(
            a.reasons.iter().filter(|r| r.contains("no migrated referrer is listed")).count(),
            1,
            "{:?}",
            a.reasons
        );
    }
}
