use std::sync::Arc;

use super::*;
use crate::demo::{self, TestKey};
use crate::model::oci::Descriptor;
use crate::store::memory::MemoryRepository;
use crate::verification::{Policy, PublicKey};

fn verifier(key: TestKey) -> Arc<Verifier> {
    let key = PublicKey::from_pem(key.public_pem().as_bytes()).unwrap();
    Arc::new(Verifier::new(Policy::new().with_key(key).insecure_ignore_tlog(true)).unwrap())
}

async fn seeded(scenario: &demo::Scenario) -> MemoryRepository {
    let source = MemoryRepository::new("memory/source");
    scenario.repo.push_to(&source).await.unwrap();
    source
}

#[tokio::test]
async fn an_image_arrives_with_its_attestations_converted_and_its_tags_last() {
    let scenario = demo::demo().unwrap();
    let source = seeded(&scenario).await;
    let destination = MemoryRepository::new("memory/destination");
    let report = copy_image(
        &source,
        &destination,
        "v1",
        &["v1".to_owned()],
        &verifier(TestKey::Rsa4096),
        &CopyOptions::default(),
    )
    .await;
    assert_eq!(report.outcome, CopyOutcome::Copied, "{:?}", report.reasons);
    assert_eq!(report.image, Some(scenario.image.clone()));
    assert_eq!(report.converted.len(), 1);
    assert_eq!(report.converted[0].referrers.len(), 2);
    let mut tags = destination.list_tags().await.unwrap();
    tags.sort();
    // The image tag, the .sig as it is, and the referrers tag-schema index (memory has no referrers API);
    // no .att in convert mode.
    let mut expected =
        vec!["v1".to_owned(), format!("sha256-{}.sig", scenario.image.hex()), scenario.image.referrers_tag()];
    expected.sort();
    assert_eq!(tags, expected);
    assert_eq!(destination.referrers(&scenario.image, None).await.unwrap().descriptors.len(), 2);
}

#[tokio::test]
async fn an_attestation_that_does_not_verify_leaves_the_destination_empty() {
    let scenario = demo::demo().unwrap();
    let source = seeded(&scenario).await;
    let destination = MemoryRepository::new("memory/destination");
    let report = copy_image(
        &source,
        &destination,
        "v1",
        &["v1".to_owned()],
        &verifier(TestKey::Ed25519),
        &CopyOptions::default(),
    )
    .await;
    assert_eq!(report.outcome, CopyOutcome::Blocked, "{:?}", report.reasons);
    assert_eq!(destination.manifest_count(), 0);
    assert_eq!(destination.blob_count(), 0);
}

#[tokio::test]
async fn keep_copies_the_att_as_it_is_and_converts_nothing() {
    let scenario = demo::demo().unwrap();
    let source = seeded(&scenario).await;
    let destination = MemoryRepository::new("memory/destination");
    let options = CopyOptions { legacy: LegacyMode::Keep, ..CopyOptions::default() };
    // Nothing is verified in keep mode: a verifier that would refuse every layer changes nothing.
    let report = copy_image(&source, &destination, "v1", &[], &verifier(TestKey::Ed25519), &options).await;
    assert_eq!(report.outcome, CopyOutcome::Copied, "{:?}", report.reasons);
    assert!(report.converted.is_empty());
    let att = format!("sha256-{}.att", scenario.image.hex());
    assert_eq!(
        destination.head_manifest(&att).await.unwrap().unwrap().digest,
        source.head_manifest(&att).await.unwrap().unwrap().digest
    );
    assert!(report.tags.is_empty());
    assert_eq!(destination.head_manifest("v1").await.unwrap(), None, "no tag was asked for");
}

#[tokio::test]
async fn a_type_filter_names_what_it_leaves_behind() {
    let scenario = demo::demo().unwrap();
    let source = seeded(&scenario).await;
    let destination = MemoryRepository::new("memory/destination");
    // Both demo attestations are custom-wrapped: `spdx` matches neither, so both stay behind.
    let options = CopyOptions {
        filter: ReferrerFilter { predicate_type: Some("spdx".into()), artifact_type: None },
        ..CopyOptions::default()
    };
    let report = copy_image(&source, &destination, "v1", &[], &verifier(TestKey::Rsa4096), &options).await;
    assert_eq!(report.outcome, CopyOutcome::Copied, "{:?}", report.reasons);
    assert!(report.converted.is_empty());
    assert_eq!(report.left_behind.len(), 2, "{:?}", report.left_behind);
    assert!(report.left_behind.iter().all(|l| l.reason.ends_with("is not spdx")), "{:?}", report.left_behind);
    assert!(destination.referrers(&scenario.image, None).await.unwrap().descriptors.is_empty());
}

#[tokio::test]
async fn a_legacy_tag_with_other_content_in_the_destination_is_left_alone() {
    let scenario = demo::demo().unwrap();
    let source = seeded(&scenario).await;
    let destination = MemoryRepository::new("memory/destination");
    let sig = format!("sha256-{}.sig", scenario.image.hex());
    // The destination's own .sig for the same image: another manifest under the same tag.
    let other = demo::article_like_numbered("registry.test/other", 7, 1000).unwrap();
    other.repo.push_to(&destination).await.unwrap();
    let own_att = format!("sha256-{}.att", other.image.hex());
    let own = destination.get_manifest(&own_att).await.unwrap().unwrap();
    destination.put_manifest(own.bytes.clone(), &own.media_type, Some(&sig)).await.unwrap();
    let report =
        copy_image(&source, &destination, "v1", &[], &verifier(TestKey::Rsa4096), &CopyOptions::default()).await;
    assert_eq!(report.outcome, CopyOutcome::Copied, "{:?}", report.reasons);
    assert_eq!(destination.head_manifest(&sig).await.unwrap().unwrap().digest, own.digest, "never overwritten");
    assert_eq!(report.left_behind.len(), 1, "{:?}", report.left_behind);
    assert_eq!(report.left_behind[0].item, format!("legacy tag {sig}"));
}

#[tokio::test]
async fn only_foreign_media_types_stay_where_their_urls_say() {
    let blob = Descriptor::of("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", b"windows base");
    assert!(transfer::is_foreign(&blob));
    let nondistributable = Descriptor::of("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", b"x");
    assert!(transfer::is_foreign(&nondistributable));
    // An ordinary layer that also names `urls` is still the registry's to hold.
    let mut with_urls = Descriptor::of("application/vnd.oci.image.layer.v1.tar", b"x");
    with_urls.extra.insert("urls".into(), serde_json::json!(["https://example.test/layer"]));
    assert!(!transfer::is_foreign(&with_urls));
    assert!(!transfer::is_foreign(&Descriptor::of("application/vnd.oci.image.layer.v1.tar+gzip", b"x")));
}

#[tokio::test]
async fn dsse_referrers_bring_the_legacy_envelopes_they_reuse() {
    let scenario = demo::demo().unwrap();
    let source = seeded(&scenario).await;
    let destination = MemoryRepository::new("memory/destination");
    let mut options = CopyOptions::default();
    options.migrate.format = crate::convert::OutputFormat::Dsse;
    let report = copy_image(&source, &destination, "v1", &[], &verifier(TestKey::Rsa4096), &options).await;
    assert_eq!(report.outcome, CopyOutcome::Copied, "{:?}", report.reasons);
    assert_eq!(report.converted[0].referrers.len(), 2);
    assert_eq!(destination.referrers(&scenario.image, None).await.unwrap().descriptors.len(), 2);
}
