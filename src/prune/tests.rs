//! Prune over stores that are not a plain repository.

use std::sync::Arc;

use super::report::{ItemKind, Status};
use super::{PruneOptions, Scope};
use crate::demo::TestKey;
use crate::model::digest::Digest;
use crate::rewrite::{self, MigrateOptions, Outcome};
use crate::store::Repository;
use crate::verification::{Policy, PublicKey, Verifier};

fn verifier() -> Arc<Verifier> {
    let key = PublicKey::from_pem(TestKey::Rsa4096.public_pem().as_bytes()).unwrap();
    Arc::new(Verifier::new(Policy::new().with_key(key).insecure_ignore_tlog(true)).unwrap())
}

#[tokio::test]
async fn migrate_and_prune_write_and_delete_only_in_the_attachments_repository() {
    let (split, image, own) = crate::demo::attachments_apart().await.unwrap();
    let verifier = verifier();
    let options = MigrateOptions::default();
    let (app_manifests, app_blobs) = (split.images().manifest_count(), split.images().blob_count());

    let report = rewrite::migrate_image(&split, &image, &verifier, &options).await.unwrap();
    assert_eq!(report.outcome, Outcome::Migrated, "{:?}", report.reasons);
    assert_eq!(report.repository, "app");
    let mut written: Vec<Digest> = report.referrers.iter().map(|r| r.digest.clone()).collect();
    written.sort();
    let mut listed: Vec<Digest> =
        split.attachments().referrers(&image, None).await.unwrap().descriptors.into_iter().map(|d| d.digest).collect();
    listed.sort();
    assert_eq!((written.len(), &listed), (2, &written));
    assert_eq!((split.images().manifest_count(), split.images().blob_count()), (app_manifests, app_blobs));

    // sigs's own image is not app's: nothing of it read, nothing written.
    let sigs_manifests = split.attachments().manifest_count();
    let report = rewrite::migrate_image(&split, &own, &verifier, &options).await.unwrap();
    assert_eq!(report.outcome, Outcome::NotInImageRepository, "{:?}", report.reasons);
    assert_eq!((report.bytes_read, report.legacy_manifest.as_ref()), (0, None), "its attachments are not read");
    assert_eq!(split.attachments().manifest_count(), sigs_manifests);

    let steps = super::find::find(&split, &Scope::Repository, &verifier, &PruneOptions::default()).await.unwrap();
    let of = |kind: ItemKind, tag: &str| {
        steps.iter().find(|s| s.item.kind == kind && s.item.tag.as_deref() == Some(tag)).map(|s| &s.item)
    };
    let removable = of(ItemKind::LegacyAttestation, &image.cosign_tag("att")).expect("app's .att");
    assert_eq!(removable.status, Status::Planned, "{:?}", removable.reasons);
    let foreign = of(ItemKind::ForeignLegacy, &own.cosign_tag("att")).expect("sigs's own .att");
    assert_eq!(foreign.status, Status::Kept);
    assert!(steps.iter().filter(|s| s.action.is_some()).all(|s| s.item.subject.as_ref() == Some(&image)));
}

/// With the attachments in another repository, the entries of a tag-schema index are looked for where
/// the index is — even when the referrers listing that would otherwise have shown where they are fails
/// (here: more referrers than the limit). Looked for in the image repository, each would read "not
/// found" and be planned for removal, and the index with it.
#[tokio::test]
async fn index_entries_are_looked_for_beside_the_index_whatever_the_listing_did() {
    use crate::model::media_type as mt;
    use crate::model::oci::{Descriptor, ImageManifest, Index, to_canonical_bytes};
    use crate::store::attachments::SplitRepository;
    use crate::store::memory::MemoryRepository;
    use bytes::Bytes;

    let scenario = crate::demo::demo().unwrap();
    let limits = crate::Limits { max_referrers: 1, ..crate::Limits::default() };
    let (app, sigs) = (MemoryRepository::new("app"), MemoryRepository::new("sigs").with_limits(limits));
    scenario.push_split(&app, &sigs).await.unwrap();
    let subject = app.head_manifest(&scenario.image.to_string()).await.unwrap().expect("the image");
    sigs.put_blob(Bytes::from_static(b"{}")).await.unwrap();
    let mut entries = Vec::new();
    for n in 0..2 {
        let layer = Bytes::from(format!("{{\"scan\":{n}}}"));
        sigs.put_blob(layer.clone()).await.unwrap();
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(mt::OCI_MANIFEST.into()),
            artifact_type: Some("application/vnd.example.scan+json".into()),
            config: Descriptor::empty_config(),
            layers: vec![Descriptor::of("application/json", &layer)],
            subject: Some(subject.clone()),
            annotations: Default::default(),
            extra: Default::default(),
        };
        let bytes = Bytes::from(to_canonical_bytes(&manifest));
        sigs.put_manifest(bytes.clone(), mt::OCI_MANIFEST, None).await.unwrap();
        entries.push(Descriptor::of(mt::OCI_MANIFEST, &bytes));
    }
    let index = Index { manifests: entries.clone(), ..Index::empty() };
    let tag = scenario.image.referrers_tag();
    sigs.put_manifest(Bytes::from(to_canonical_bytes(&index)), mt::OCI_INDEX, Some(&tag)).await.unwrap();

    let split = SplitRepository::new(app, sigs);
    let steps = super::find::find(&split, &Scope::Repository, &verifier(), &PruneOptions::default()).await.unwrap();
    let on_index: Vec<_> = steps
        .iter()
        .filter(|s| matches!(s.item.kind, ItemKind::IndexEntry | ItemKind::EmptyIndex))
        .map(|s| (s.item.kind, s.item.digest.clone(), s.action.is_some(), s.item.reasons.clone()))
        .collect();
    assert!(on_index.is_empty(), "{on_index:?}");
    // The listing did fail: the limit is what hid the entries' whereabouts.
    let unchecked: Vec<_> = steps.iter().filter(|s| s.item.status == Status::CouldNotCheck).collect();
    assert!(
        unchecked.iter().any(|s| s.item.reasons.iter().any(|r| r.contains("more than the limit of 1"))),
        "{:?}",
        steps.iter().map(|s| (&s.item.kind, &s.item.status, &s.item.reasons)).collect::<Vec<_>>()
    );
}

/// Another writer's stale merge of the tag schema's index can drop the artifact type of att2ref's entries:
/// consumers that filter on it (cosign) no longer find the referrers. `prune` does not count them for the
/// `.att`, and a rerun of `migrate` fills the entries in again (without `--repair-index`), after which the
/// `.att` may go.
#[tokio::test]
async fn referrers_listed_without_their_artifact_type_are_repaired_and_not_counted_until_then() {
    use crate::model::media_type as mt;
    use crate::model::oci::{Manifest, to_canonical_bytes};
    let (_dir, scenario, repo, verifier) = crate::demo::demo_in_layout().await;
    let options = MigrateOptions::default();
    let report = rewrite::migrate_image(&repo, &scenario.image, &verifier, &options).await.unwrap();
    assert_eq!(report.outcome, Outcome::Migrated, "{:?}", report.reasons);
    let found = |repo: &crate::store::layout::LayoutRepository| {
        let repo = repo.clone();
        let image = scenario.image.clone();
        async move { repo.referrers(&image, Some(mt::BUNDLE_V03)).await.unwrap().descriptors.len() }
    };
    assert_eq!(found(&repo).await, 2);

    let tag = scenario.image.referrers_tag();
    let Manifest::Index(mut index) = repo.get_manifest(&tag).await.unwrap().unwrap().manifest else { panic!("index") };
    for entry in &mut index.manifests {
        entry.artifact_type = None;
        entry.annotations.clear();
    }
    repo.put_manifest(to_canonical_bytes(&index).into(), mt::OCI_INDEX, Some(&tag)).await.unwrap();
    assert_eq!(found(&repo).await, 0, "consumers filtering on the artifact type miss both");

    let att_planned = |steps: &[super::Step]| {
        let att = steps.iter().find(|s| s.item.kind == ItemKind::LegacyAttestation).expect("the .att");
        (att.item.status == Status::Planned, att.item.reasons.join("; "))
    };
    let steps = super::find::find(&repo, &Scope::Repository, &verifier, &PruneOptions::default()).await.unwrap();
    let (planned, why) = att_planned(&steps);
    assert!(!planned && why.contains("consumers filtering on it miss it"), "{why}");

    let rerun = rewrite::migrate_image(&repo, &scenario.image, &verifier, &options).await.unwrap();
    assert_eq!(rerun.entries_repaired, 2, "{rerun:?}");
    assert_eq!(found(&repo).await, 2, "found again");
    let steps = super::find::find(&repo, &Scope::Repository, &verifier, &PruneOptions::default()).await.unwrap();
    let (planned, why) = att_planned(&steps);
    assert!(planned, "{why}");
}
