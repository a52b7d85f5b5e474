//! The referrers path: list Sigstore-bundle referrers, fetch only those whose index annotations match.

use crate::error::Result;
use crate::model::bundle::BundleContent;
use crate::model::cosign::LegacyLayerAnnotations;
use crate::model::media_type::{self as mt, annotations as ann};
use crate::model::oci::{Descriptor, Manifest};
use crate::read::referrers::{self, ReferrerContent, ReferrerFormat};
use crate::store::{ReferrersSource, Repository};
use crate::verification::SignedEntity;

use super::attestation::{AnswerSource, Attestation};
use super::engine::Run;
use super::select::{ReferrerKind, plan_referrers_of};

/// Sigstore-bundle referrers first; bare DSSE referrers (`migrate --format dsse`) only when no bundle
/// gave an answer, so the common case costs one listing.
pub(super) async fn search<R: Repository>(run: &mut Run<'_, R>) -> Result<()> {
    search_kind(run, ReferrerKind::Bundle).await?;
    if run.accepted.is_empty() || run.options.all {
        search_kind(run, ReferrerKind::Dsse).await?;
    }
    Ok(())
}

async fn search_kind<R: Repository>(run: &mut Run<'_, R>, kind: ReferrerKind) -> Result<()> {
    let artifact_type = match kind {
        ReferrerKind::Bundle => mt::BUNDLE_V03,
        ReferrerKind::Dsse => mt::IN_TOTO,
    };
    let listing = run.repo.referrers(&run.image, Some(artifact_type)).await?;
    let mut entries = listing.descriptors.clone();
    run.stats.discovery = match &listing.source {
        ReferrersSource::Api { filtered: true } => "api (filtered by the registry)".into(),
        ReferrersSource::Api { filtered: false } => "api".into(),
        ReferrersSource::TagSchema { index, .. } => {
            if let Some(raw) = index {
                run.stats.manifests_read += 1;
                run.stats.manifest_bytes += raw.bytes.len() as u64;
                // Entries that lost their artifactType (go-containerregistry < 0.22.1) may still be bundles.
                if let Manifest::Index(i) = &raw.manifest {
                    entries.extend(i.manifests.iter().filter(|d| d.artifact_type.is_none()).cloned());
                }
            }
            "tag-schema".into()
        }
    };
    let plan = plan_referrers_of(kind, &entries, &run.query());
    run.stats.referrers_listed += entries.len();
    run.stats.referrers_annotated += plan.annotated_count;
    run.stats.referrers_skipped += plan.skipped_type + plan.skipped_hint;
    run.stats.referrers_unannotated += plan.unannotated.len();
    for listed in &plan.annotated {
        try_one(run, listed).await?;
        if run.done() {
            return Ok(());
        }
    }
    if !run.accepted.is_empty() {
        return Ok(());
    }
    for listed in &plan.unannotated {
        run.stats.referrers_unannotated_fetched += 1;
        try_one(run, listed).await?;
        if run.done() {
            return Ok(());
        }
    }
    Ok(())
}

async fn try_one<R: Repository>(run: &mut Run<'_, R>, listed: &Descriptor) -> Result<()> {
    let unread =
        AnswerSource::Referrer { manifest: listed.digest.clone(), bundle: listed.digest.clone(), writer: None };
    let referrer = match referrers::read_referrer(run.repo, &run.image, listed, true, run.limits()).await {
        Ok(r) => r,
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
        // Not a bundle after all (the listing said it was): nothing of ours to read.
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
