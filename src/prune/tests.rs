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
