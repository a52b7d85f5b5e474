//! Recognising a listed referrer that already carries the attestation a plan would write.
//!
//! A referrer's manifest digest covers more than the attestation inside it: its annotations name the
//! legacy `.att` manifest and the layer's position there, its created time may come from the `.att`'s
//! config (cosign rewrites both on every `cosign attest` that appends), and a bundle carries the inclusion
//! proof the log served at migration time (against the log's size then). So the same layer, planned again
//! after cosign appended to the `.att`, or with a proof fetched anew, has another digest than the referrer
//! written for it before; writing it would list every attestation twice.
//!
//! Before a referrer is written, the subject's listing is searched for one written for the same legacy
//! layer and signature in the same format. The listing only picks the candidates: each is read from the
//! registry and taken when its manifest says the same (subject, artifact type, config, layer digest and
//! signature of the legacy layer) and it carries the same signed content — the same envelope blob and
//! layer annotations for a DSSE referrer (what it is verified with); for a bundle, the same bundle but
//! for the inclusion proofs. The caller then verifies the bundle under the policy before adopting it in
//! place of the one planned.

use bytes::Bytes;

use crate::convert::annotations::{LEGACY_LAYER_DIGEST, SIGNATURE_INDEX};
use crate::convert::{NewBlob, NewReferrer, OutputFormat, WrittenManifest};
use crate::error::Result;
use crate::limits::Limits;
use crate::model::digest::Digest;
use crate::model::oci::{Annotations, Descriptor, ImageManifest, Manifest};
use crate::store::Repository;

/// The first listed referrer (by digest) that carries the attestation `planned` would, read and
/// checked, in the form a plan takes; with the bytes read. `None` when none does.
pub(super) async fn listed_equivalent<R: Repository>(
    repo: &R,
    image: &Digest,
    planned: &NewReferrer,
    listed: &[Descriptor],
    limits: &Limits,
) -> Result<(Option<NewReferrer>, u64)> {
    let wanted = planned.index_entry();
    if !wanted.annotations.contains_key(LEGACY_LAYER_DIGEST) {
        return Ok((None, 0));
    }
    let mut candidates: Vec<&Descriptor> =
        listed.iter().filter(|d| d.digest != wanted.digest && same_key(d, &wanted)).collect();
    candidates.sort_by(|a, b| a.digest.cmp(&b.digest));
    candidates.dedup_by(|a, b| a.digest == b.digest);
    let mut read = 0u64;
    for candidate in candidates {
        let raw = match repo.get_manifest(&candidate.digest.to_string()).await {
            Ok(Some(raw)) => raw,
            // Listed but gone, or not what its digest says: nothing to adopt.
            Ok(None) => continue,
            Err(e) if e.kind().is_bad_data() => continue,
            Err(e) => return Err(e.context(format!("reading the listed referrer {}", candidate.digest))),
        };
        read += raw.bytes.len() as u64;
        let Manifest::Image(found) = &raw.manifest else { continue };
        if !same_shape(found, &planned.manifest.manifest, image) {
            continue;
        }
        let layer = &found.layers[0];
        let blobs = match planned.format {
            // The layer is the legacy envelope itself: the same digest is the same signed bytes, and the
            // layer's annotations (certificate, log entry) are what it is verified with. (A bundle's
            // layer annotations only name its file after its digest.)
            OutputFormat::Dsse
                if layer.digest == planned.manifest.manifest.layers[0].digest
                    && layer.annotations == planned.manifest.manifest.layers[0].annotations =>
            {
                planned.blobs.clone()
            }
            OutputFormat::Dsse => continue,
            OutputFormat::Bundle => {
                let Some(ours) = planned.bundle_blob() else { continue };
                let theirs = if layer.digest == ours.descriptor.digest {
                    ours.bytes.clone()
                } else {
                    let bytes = match repo.get_blob(layer, limits.max_blob_bytes).await {
                        Ok(bytes) => bytes,
                        Err(e) if e.kind().is_bad_data() || e.is_not_found() => continue,
                        Err(e) => {
                            return Err(e.context(format!("reading the bundle of the listed referrer {}", raw.digest)));
                        }
                    };
                    read += bytes.len() as u64;
                    if !same_but_proofs(&bytes, &ours.bytes) {
                        continue;
                    }
                    bytes
                };
                let mut blobs: Vec<NewBlob> =
                    planned.blobs.iter().filter(|b| b.descriptor.digest != ours.descriptor.digest).cloned().collect();
                blobs.push(NewBlob { descriptor: layer.clone(), bytes: theirs });
                blobs
            }
        };
        let manifest =
            WrittenManifest { manifest: found.clone(), bytes: raw.bytes.clone(), digest: raw.digest.clone() };
        let adopted =
            NewReferrer { format: planned.format, manifest, blobs, reused: planned.reused.clone(), bundle: None };
        return Ok((Some(adopted), read));
    }
    Ok((None, read))
}

/// The same legacy layer and signature in the same format, as a listing entry says (a hint only).
fn same_key(entry: &Descriptor, wanted: &Descriptor) -> bool {
    entry.artifact_type == wanted.artifact_type && same_pairing(&entry.annotations, &wanted.annotations)
}

/// The same legacy layer and signature, as att2ref's pairing annotations name them.
fn same_pairing(a: &Annotations, b: &Annotations) -> bool {
    [LEGACY_LAYER_DIGEST, SIGNATURE_INDEX].iter().all(|k| a.get(*k) == b.get(*k))
}

/// What the manifest read says matches what the plan would write, but for the annotations that vary
/// from one migration of the same layer to the next.
fn same_shape(found: &ImageManifest, planned: &ImageManifest, image: &Digest) -> bool {
    found.subject.as_ref().is_some_and(|s| s.digest == *image)
        && found.artifact_type == planned.artifact_type
        && found.config.digest == planned.config.digest
        && found.config.media_type == planned.config.media_type
        && found.layers.len() == 1
        && planned.layers.len() == 1
        && found.layers[0].media_type == planned.layers[0].media_type
        && same_pairing(&found.annotations, &planned.annotations)
}

/// Two bundles that are the same JSON once every transparency-log entry's inclusion proof is taken out:
/// the same envelope, verification material and log entries, proven against other tree sizes.
fn same_but_proofs(a: &Bytes, b: &Bytes) -> bool {
    let without_proofs = |bytes: &Bytes| -> Option<serde_json::Value> {
        let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        if let Some(entries) =
            value.pointer_mut("/verificationMaterial/tlogEntries").and_then(serde_json::Value::as_array_mut)
        {
            for entry in entries {
                entry.as_object_mut()?.remove("inclusionProof");
            }
        }
        Some(value)
    };
    matches!((without_proofs(a), without_proofs(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cosign::TagKind;
    use crate::model::oci::to_canonical_bytes;
    use crate::rewrite::{MigrateOptions, Outcome, migrate_image};

    /// cosign rewrites the `.att` when it appends an attestation: every layer migrated before now sits in
    /// another manifest, and the referrers planned for them have other digests. A rerun adopts the ones
    /// written before, in both formats: nothing written, the same two referrers listed.
    #[tokio::test(flavor = "current_thread")]
    async fn a_rerun_after_the_att_was_rewritten_adopts_the_referrers_written_before() {
        for format in [OutputFormat::Bundle, OutputFormat::Dsse] {
            let (_dir, scenario, repo, verifier) = crate::demo::demo_in_layout().await;
            let options = MigrateOptions { format, ..MigrateOptions::default() };
            let first = migrate_image(&repo, &scenario.image, &verifier, &options).await.unwrap();
            assert_eq!(first.outcome, Outcome::Migrated, "{format:?}: {:?}", first.reasons);
            let written: Vec<Digest> = first.referrers.iter().map(|r| r.digest.clone()).collect();
            assert_eq!(written.len(), 2);

            let tag = TagKind::Attestation.tag_for(&scenario.image);
            let raw = repo.get_manifest(&tag).await.unwrap().unwrap();
            let Manifest::Image(mut att) = raw.manifest else { panic!("the .att is an image manifest") };
            att.annotations.insert("rewritten-by".into(), "a later cosign attest".into());
            let rewritten = Bytes::from(to_canonical_bytes(&att));
            repo.put_manifest(rewritten, &raw.media_type, Some(&tag)).await.unwrap();

            let second = migrate_image(&repo, &scenario.image, &verifier, &options).await.unwrap();
            assert_eq!(second.outcome, Outcome::AlreadyMigrated, "{format:?}: {:?}", second.reasons);
            assert_eq!(second.writes, 0, "{format:?}");
            let adopted: Vec<Digest> = second.referrers.iter().map(|r| r.digest.clone()).collect();
            assert_eq!(adopted, written, "{format:?}: the referrers written before");
            assert!(second.referrers.iter().all(|r| r.existed), "{format:?}");
            let listed = repo.referrers(&scenario.image, None).await.unwrap().descriptors;
            assert_eq!(listed.len(), 2, "{format:?}: {listed:?}");
        }
    }

    fn bundle(signature: &str, tree_size: Option<&str>) -> Bytes {
        let mut entry = serde_json::json!({"logIndex": "7", "canonicalizedBody": "Ym9keQ=="});
        if let Some(size) = tree_size {
            entry["inclusionProof"] = serde_json::json!({"treeSize": size, "rootHash": size, "hashes": [size]});
        }
        let bundle = serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {"publicKey": {"hint": "k"}, "tlogEntries": [entry]},
            "dsseEnvelope": {"payload": "cGF5bG9hZA==", "payloadType": "application/vnd.in-toto+json",
                             "signatures": [{"sig": signature}]},
        });
        Bytes::from(serde_json::to_vec(&bundle).unwrap())
    }

    /// A DSSE referrer is verified with its layer's annotations: a listed one with the same envelope and
    /// pairing but other layer annotations is not adopted, and a good one is written beside it.
    #[tokio::test(flavor = "current_thread")]
    async fn a_dsse_referrer_with_other_layer_annotations_is_not_adopted() {
        let (_dir, scenario, repo, verifier) = crate::demo::demo_in_layout().await;
        let options = MigrateOptions { format: OutputFormat::Dsse, ..MigrateOptions::default() };
        let first = migrate_image(&repo, &scenario.image, &verifier, &options).await.unwrap();
        let written: Vec<Digest> = first.referrers.iter().map(|r| r.digest.clone()).collect();

        // The first referrer, stored anew with a layer annotation changed, in place of the one written.
        let raw = repo.get_manifest(&written[0].to_string()).await.unwrap().unwrap();
        let Manifest::Image(mut altered) = raw.manifest else { panic!("a referrer is an image manifest") };
        altered.layers[0].annotations.insert("dev.sigstore.cosign/certificate".into(), "not the signer's".into());
        let bytes = Bytes::from(to_canonical_bytes(&altered));
        let altered_digest = repo.put_manifest(bytes, &raw.media_type, None).await.unwrap().digest;
        let tag = scenario.image.referrers_tag();
        let Manifest::Index(mut index) = repo.get_manifest(&tag).await.unwrap().unwrap().manifest else { panic!() };
        index.manifests.iter_mut().find(|e| e.digest == written[0]).unwrap().digest = altered_digest.clone();
        repo.put_manifest(Bytes::from(to_canonical_bytes(&index)), crate::model::media_type::OCI_INDEX, Some(&tag))
            .await
            .unwrap();
        // And the `.att` rewritten, so that nothing planned has the digest of what was written.
        let att_tag = TagKind::Attestation.tag_for(&scenario.image);
        let raw = repo.get_manifest(&att_tag).await.unwrap().unwrap();
        let Manifest::Image(mut att) = raw.manifest else { panic!("the .att is an image manifest") };
        att.annotations.insert("rewritten-by".into(), "a later cosign attest".into());
        repo.put_manifest(Bytes::from(to_canonical_bytes(&att)), &raw.media_type, Some(&att_tag)).await.unwrap();

        let second = migrate_image(&repo, &scenario.image, &verifier, &options).await.unwrap();
        assert_eq!(second.outcome, Outcome::Migrated, "{:?}", second.reasons);
        let now: Vec<(Digest, bool)> = second.referrers.iter().map(|r| (r.digest.clone(), r.existed)).collect();
        assert!(!now.iter().any(|(d, _)| *d == altered_digest), "the altered one adopted: {now:?}");
        assert!(!now[0].1, "a new one written for the first layer: {now:?}");
        assert_eq!(now[1], (written[1].clone(), true), "the intact one adopted");
    }

    #[test]
    fn bundles_that_differ_only_in_their_inclusion_proofs_are_the_same_attestation() {
        assert!(same_but_proofs(&bundle("c2ln", Some("5")), &bundle("c2ln", Some("6"))));
        assert!(same_but_proofs(&bundle("c2ln", Some("5")), &bundle("c2ln", None)));
        assert!(!same_but_proofs(&bundle("c2ln", Some("5")), &bundle("b3RoZXI=", Some("5"))), "another signature");
        assert!(!same_but_proofs(&bundle("c2ln", None), &Bytes::from_static(b"not json")));
    }
}
