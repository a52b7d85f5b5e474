//! The referrers path: list an image's referrers once, fetch only those whose index annotations match.

use crate::error::{ErrorKind, Result};
use crate::model::bundle::BundleContent;
use crate::model::cosign::LegacyLayerAnnotations;
use crate::model::media_type::annotations as ann;
use crate::model::oci::{Descriptor, Manifest};
use crate::read::referrers::{self, ReferrerContent, ReferrerFormat};
use crate::store::{ReferrersSource, Repository};
use crate::verification::SignedEntity;

use super::attestation::{AnswerSource, Attestation};
use super::engine::Run;
use super::select::{ReferrerKind, ReferrerPlan, plan_referrers_of};

/// Sigstore-bundle referrers (any version) and bare DSSE referrers (any writer), from one listing.
/// Annotations choose first, across both kinds (bundles first); entries without a predicate type
/// annotation are fetched, to learn their type from their content, only when nothing annotated matched.
pub(super) async fn search<R: Repository>(run: &mut Run<'_, R>) -> Result<()> {
    let entries = list(run).await?;
    let query = run.query();
    let plans = ReferrerKind::ALL.map(|kind| plan_referrers_of(kind, &entries, &query));
    for plan in &plans {
        count(run, plan);
    }
    for listed in plans.iter().flat_map(|p| &p.annotated) {
        try_one(run, listed).await?;
        if run.done() {
            return Ok(());
        }
    }
    if !run.accepted.is_empty() {
        return Ok(());
    }
    for listed in plans.iter().flat_map(|p| &p.unannotated) {
        run.stats.referrers_unannotated_fetched += 1;
        try_one(run, listed).await?;
        if run.done() {
            return Ok(());
        }
    }
    Ok(())
}

/// Every referrer of the image, unfiltered. One listing serves every kind and spelling: bundles come
/// as `…bundle.v0.3+json` and `…bundle+json;version=0.x`, DSSE envelopes under three artifactTypes, and
/// entries without an artifactType can be either. Filtering by artifactType would cost one API request
/// per type (the tag schema is one index read either way), and a registry may not match a filter value
/// with parameters (`;version=0.2`) at all.
async fn list<R: Repository>(run: &mut Run<'_, R>) -> Result<Vec<Descriptor>> {
    let listing = match run.repo.referrers(&run.image, None).await {
        Ok(l) => l,
        // A registry that can hold no referrers (GitLab's fallback tag answers with the image itself) has
        // none to offer: the legacy `.att` is still read, and the stats say why referrers were not.
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            tracing::warn!(error = %e, "no referrers can be listed here; reading the legacy layout only");
            run.stats.discovery = "unusable".into();
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    };
    run.stats.discovery = match &listing.source {
        ReferrersSource::Api { .. } => "api".into(),
        ReferrersSource::TagSchema { index, .. } => {
            if let Some(raw) = index {
                run.stats.manifests_read += 1;
                run.stats.manifest_bytes += raw.bytes.len() as u64;
            }
            "tag-schema".into()
        }
    };
    Ok(listing.descriptors)
}

fn count<R>(run: &mut Run<'_, R>, plan: &ReferrerPlan) {
    run.stats.referrers_listed += plan.listed;
    run.stats.referrers_annotated += plan.annotated_count;
    run.stats.referrers_skipped += plan.skipped_type + plan.skipped_hint;
    run.stats.referrers_unannotated += plan.unannotated.len();
}

async fn try_one<R: Repository>(run: &mut Run<'_, R>, listed: &Descriptor) -> Result<()> {
    let unread =
        AnswerSource::Referrer { manifest: listed.digest.clone(), bundle: listed.digest.clone(), writer: None };
    let referrer = match referrers::read_referrer(run.repo, &run.image, listed, true, run.limits()).await {
        Ok(r) => r,
        // Listed is not present: a listing may lag deletions. What else there is (other referrers, the
        // legacy `.att`) is still searched.
        // Only a manifest that is gone: a referrer whose blob is missing is damage, and stays an error.
        Err(e)
            if e.kind() == ErrorKind::NotFound
                && run.repo.head_manifest(&listed.digest.to_string()).await?.is_none() =>
        {
            tracing::warn!(error = %e, "skipping a listed referrer whose manifest is gone");
            run.stats.referrers_missing += 1;
            return Ok(());
        }
        Err(e) => return run.unreadable(unread, e),
    };
    run.stats.manifests_read += 1;
    run.stats.manifest_bytes += referrer.raw.bytes.len() as u64;
    let bundle_digest = referrer.layers().first().map(|l| l.digest.clone()).unwrap_or_else(|| listed.digest.clone());
    let layer_annotations = referrer.layers().first().map(LegacyLayerAnnotations::from_descriptor).unwrap_or_default();
    let (bytes, bundle, statement) = match (referrer.format, referrer.content) {
        (ReferrerFormat::SigstoreBundle, Some(ReferrerContent::Bundle { bytes, bundle, statement })) => {
            (bytes, bundle, statement)
        }
        (ReferrerFormat::DsseEnvelope, Some(ReferrerContent::Dsse { bytes, envelope, statement })) => {
            run.stats.blobs_read += 1;
            run.stats.blob_bytes += bytes.len() as u64;
            // The layer keeps the legacy verification material (certificate, Rekor bundle) as annotations.
            let annotations = layer_annotations;
            let candidate = Attestation {
                source: AnswerSource::Referrer {
                    manifest: referrer.raw.digest.clone(),
                    bundle: bundle_digest,
                    writer: referrers::writer_hint(&referrer.raw.manifest),
                },
                predicate_type: statement.predicate_type.clone(),
                created: created_of(&referrer.raw.manifest, listed),
                hint: String::new(),
                verification: None,
                envelope,
                statement,
                envelope_bytes: Some(bytes.clone()),
                bundle_bytes: None,
            };
            run.consider(candidate, SignedEntity::legacy_attestation(bytes.to_vec(), annotations)).await?;
            return Ok(());
        }
        // Neither a bundle nor a DSSE envelope after all (the listing's artifactType is unsigned, and
        // an entry without one is a guess): nothing of ours to read.
        _ => {
            run.stats.read_not_matching += 1;
            return Ok(());
        }
    };
    run.stats.blobs_read += 1;
    run.stats.blob_bytes += bytes.len() as u64;
    let (Some(statement), BundleContent::DsseEnvelope(envelope)) = (statement, &bundle.content) else {
        run.stats.read_not_matching += 1;
        return Ok(());
    };
    let created = created_of(&referrer.raw.manifest, listed);
    let candidate = Attestation {
        source: AnswerSource::Referrer {
            manifest: referrer.raw.digest.clone(),
            bundle: bundle_digest,
            writer: referrers::writer_hint(&referrer.raw.manifest),
        },
        predicate_type: statement.predicate_type.clone(),
        created,
        hint: String::new(),
        verification: None,
        envelope: envelope.clone(),
        statement,
        envelope_bytes: None,
        bundle_bytes: Some(bytes),
    };
    run.consider(candidate, SignedEntity::bundle(*bundle)).await?;
    Ok(())
}

fn created_of(manifest: &Manifest, listed: &Descriptor) -> Option<String> {
    manifest.annotations().get(ann::OCI_CREATED).or_else(|| listed.annotations.get(ann::OCI_CREATED)).cloned()
}
