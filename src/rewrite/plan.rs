//! Planning one image: read its legacy `.att` (and `.sig`), verify every layer, convert, and verify the
//! converted bundles — all without writing anything.
//!
//! The decisions made here are the safety rules of a migration:
//! - no subject manifest served under the image digest → `orphaned`: a referrer is never written with a
//!   guessed subject; with an attachments repository apart from the images → `not-in-image-repository`
//!   (the `.att` is another repository's), left untouched as well;
//! - any layer not verified or not convertible → the whole image is `blocked`: cosign ≥ 3 stops reading
//!   `.att` as soon as one bundle referrer exists, so a partial migration would hide the rest;
//! - a `.sig` that does not verify under the same policy → `skipped-signature-switch` unless allowed:
//!   cosign ≥ 3 would switch the image to bundles and `verify` would change behaviour.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;

use crate::convert::{
    Conversion, ImagePlan, LegacyLayerInput, NewReferrer, OutputFormat, ReferrerSubject, SignatureOutcome, Verified,
    VerifiedKey, VerifiedSignature, convert_layer,
};
use crate::error::{Error, ErrorKind, Result};
use crate::model::bundle::Bundle;
use crate::model::cosign::{LegacyLayerAnnotations, TagKind};
use crate::model::digest::Digest;
use crate::model::oci::Descriptor;
use crate::model::rekor::RekorSpec;
use crate::read::legacy::LegacyManifest;
use crate::store::{Referrers, Repository};
use crate::verification::{Failure, SignedEntity, Signer, Verification, Verifier};

use super::MigrateOptions;
use super::gather::{self, AttestationLayer, LegacyLayers, Surroundings};
use super::rekor::verify_fetched;
use super::report::Outcome;

/// One referrer to write (or already written), with what read-back compares it against.
#[derive(Clone, Debug)]
pub struct Pending {
    /// The converted referrer. Its parsed `bundle` is not kept: its serialised blob is what counts.
    pub referrer: NewReferrer,
    /// SHA-256 of the legacy layer's DSSE payload: the written referrer must carry exactly those bytes.
    /// (A digest, not the bytes: a multi-megabyte payload is not kept alive through the upload for a
    /// comparison only the full read-back makes.)
    pub payload_digest: Digest,
    /// The legacy layer's annotations (DSSE-format referrers are re-verified with them).
    pub layer: Descriptor,
    /// The signed predicate type.
    pub predicate_type: String,
    /// Whether the referrer was already listed among the subject's referrers when planning, with its
    /// artifact type (what consumers filter the listing on).
    pub listed: bool,
    /// Listed by digest, but without its artifact type (another writer's stale merge of the tag
    /// schema's index dropped it): consumers filtering on it miss the referrer, so its entry is repaired.
    pub degraded: bool,
}

/// What planning decided for one image.
#[derive(Debug)]
pub struct Prepared {
    /// The outcome if the image stops here (`Planned` when it is ready to write).
    pub outcome: Outcome,
    /// Why it stops, in words.
    pub reasons: Vec<String>,
    /// The legacy `.att` manifest digest, when there is one.
    pub legacy_att: Option<Digest>,
    /// Number of legacy attestation layers.
    pub attestations: usize,
    /// The subject as served, when found.
    pub subject: Option<ReferrerSubject>,
    /// The plan (absent when the image stopped before conversion).
    pub plan: Option<ImagePlan>,
    /// The referrers, when every layer converted.
    pub pending: Vec<Pending>,
    /// Bytes of manifests and blobs read.
    pub bytes_read: u64,
}

impl Prepared {
    fn stop(outcome: Outcome, reason: impl Into<String>) -> Prepared {
        Prepared {
            outcome,
            reasons: vec![reason.into()],
            legacy_att: None,
            attestations: 0,
            subject: None,
            plan: None,
            pending: Vec::new(),
            bytes_read: 0,
        }
    }
}

/// Plan the migration of `image` in `repo`. Errors are for what could not be read or checked; every
/// decision about the data is an outcome in the result.
pub async fn plan_image<R: Repository>(
    repo: &R,
    image: &Digest,
    verifier: &Arc<Verifier>,
    options: &MigrateOptions,
) -> Result<Prepared> {
    // A shared attachments repository can hold far more images' tags than the image repository has
    // images: one HEAD settles whether an image is this run's before its attachments are read.
    if let Some(attachments) = repo.attachments_repository()
        && repo.head_manifest(&image.to_string()).await?.is_none()
    {
        return Ok(Prepared::stop(Outcome::NotInImageRepository, not_here(repo, image, &attachments)));
    }
    let Some(around) = gather::surroundings(repo, image, &options.limits).await? else {
        return Ok(Prepared::stop(Outcome::NothingToMigrate, format!("no legacy {} tag", TagKind::Attestation)));
    };
    let mut tally = Tally::new(&around.att);
    let Some(subject) = served_subject(&around, &mut tally)? else {
        if let Some(attachments) = repo.attachments_repository() {
            // Gone since the HEAD above: absent from the image repository is still not orphaned there.
            return Ok(tally.stop(Outcome::NotInImageRepository, vec![not_here(repo, image, &attachments)]));
        }
        let reason = format!("subject manifest missing: {} serves no manifest {image}", repo.name());
        return Ok(tally.stop(Outcome::Orphaned, vec![reason]));
    };

    let layers = gather::layers(repo, &around, &options.limits).await?;
    tally.bytes_read += layers.bytes_read;
    let checked = verify_layers(verifier, image, layers).await?;
    if let Some(reasons) = signature_switch(&checked, options) {
        return Ok(tally.stop(Outcome::SkippedSignatureSwitch, reasons));
    }

    let mut converted =
        convert(verifier, &subject, checked.layers, &checked.results, around.config_created, options).await?;
    let reasons = blocked_reasons(&converted, &checked.sig_failures, options);
    if !reasons.is_empty() {
        return Ok(tally.blocked(reasons, subject, converted.plan));
    }
    tally.bytes_read += adopt_listed(repo, verifier, &subject, &mut converted, &around.referrers, options).await?;
    Ok(tally.ready(subject, converted, &around.referrers))
}

/// What every outcome reports once the `.att` is found: its digest, its layer count and the bytes read
/// so far.
struct Tally {
    legacy_att: Digest,
    attestations: usize,
    bytes_read: u64,
}

impl Tally {
    fn new(att: &LegacyManifest) -> Tally {
        Tally {
            legacy_att: att.raw.digest.clone(),
            attestations: att.layers().len(),
            bytes_read: att.raw.bytes.len() as u64,
        }
    }

    /// Stopped before conversion.
    fn stop(&self, outcome: Outcome, reasons: Vec<String>) -> Prepared {
        Prepared {
            outcome,
            reasons,
            legacy_att: Some(self.legacy_att.clone()),
            attestations: self.attestations,
            subject: None,
            plan: None,
            pending: Vec::new(),
            bytes_read: self.bytes_read,
        }
    }

    /// Stopped after conversion: the plan shows exactly what is blocked.
    fn blocked(&self, reasons: Vec<String>, subject: ReferrerSubject, plan: ImagePlan) -> Prepared {
        Prepared { subject: Some(subject), plan: Some(plan), ..self.stop(Outcome::Blocked, reasons) }
    }

    /// Ready to write, each referrer marked when the subject lists it already.
    fn ready(self, subject: ReferrerSubject, converted: Converted, referrers: &Referrers) -> Prepared {
        let Converted { outcomes, layers, mut plan, .. } = converted;
        let listed: BTreeMap<Digest, Option<String>> =
            referrers.descriptors.iter().map(|d| (d.digest.clone(), d.artifact_type.clone())).collect();
        plan.mark_present(&listed.keys().cloned().collect());
        // Only a tag-schema index can be repaired: a registry's referrers API makes its own entries.
        let repairable = referrers.from_tag_schema();
        Prepared {
            outcome: Outcome::Planned,
            reasons: Vec::new(),
            legacy_att: Some(self.legacy_att),
            attestations: self.attestations,
            subject: Some(subject),
            plan: Some(plan),
            pending: pending(outcomes, &layers, &listed, repairable),
            bytes_read: self.bytes_read,
        }
    }
}

/// Why an image of a shared attachments repository is not this run's: its tag says nothing about which
/// repository the image is in, so absent from the image repository is not orphaned.
fn not_here<R: Repository>(repo: &R, image: &Digest, attachments: &str) -> String {
    format!(
        "{} serves no manifest {image}: its legacy tags in {attachments} are another repository's (or an image of \
         {attachments} itself); left untouched",
        repo.name()
    )
}

/// The subject exactly as served under the image digest, or `None` when nothing is served there.
fn served_subject(around: &Surroundings, tally: &mut Tally) -> Result<Option<ReferrerSubject>> {
    let Some(served) = &around.subject else {
        return Ok(None);
    };
    tally.bytes_read += served.bytes.len() as u64;
    ReferrerSubject::new(&served.media_type, served.digest.clone(), served.bytes.len() as u64).map(Some)
}

/// The `.att` layers with what verification said of each, and the `.sig` layers that do not verify, in
/// words.
struct Checked {
    layers: Vec<AttestationLayer>,
    results: Vec<std::result::Result<Verification, Failure>>,
    sig_failures: Vec<String>,
}

/// Verify the `.att` and `.sig` layers; the `.att` envelopes as parsed when they were read.
async fn verify_layers(verifier: &Arc<Verifier>, image: &Digest, layers: LegacyLayers) -> Result<Checked> {
    let LegacyLayers { attestations: layers, signatures, .. } = layers;
    let entities: Vec<SignedEntity> = layers
        .iter()
        .map(|l| {
            let annotations = LegacyLayerAnnotations::from_descriptor(&l.descriptor);
            SignedEntity::parsed_attestation(Arc::clone(&l.signed), annotations)
        })
        .collect();
    let (results, sig_results) = verify_off_runtime(verifier, image, entities, signatures).await?;
    let sig_failures = sig_results
        .iter()
        .filter_map(|(i, r)| r.as_ref().err().map(|f| format!("legacy .sig layer {i} does not verify: {f}")))
        .collect();
    Ok(Checked { layers, results, sig_failures })
}

/// Why the image is skipped, when its `.sig` does not verify under the policy and switching is not
/// allowed. Only when the attestations verify themselves: a wrong key blocks the image, which must not
/// pass for a mere skip.
fn signature_switch(checked: &Checked, options: &MigrateOptions) -> Option<Vec<String>> {
    let attestations_verify = checked.results.iter().all(Result::is_ok);
    if checked.sig_failures.is_empty() || options.allow_signature_switch || !attestations_verify {
        return None;
    }
    let mut reasons = vec![
        "the legacy .sig is signed by keys or identities this policy does not trust; cosign >= 3 would switch \
         the image to bundle referrers and `verify` would change behaviour (--allow-signature-switch migrates anyway)"
            .to_owned(),
    ];
    reasons.extend(checked.sig_failures.iter().cloned());
    Some(reasons)
}

/// Every layer converted, with why the image cannot be migrated (empty when it can).
struct Converted {
    outcomes: Vec<SignatureOutcome>,
    layers: Vec<AttestationLayer>,
    plan: ImagePlan,
    /// Blocked conversions (with the verification failure behind them), then converted bundles that do
    /// not verify.
    blocked: Vec<String>,
}

/// Adopt, in place of each referrer planned but not listed, a listed one written before for the same
/// attestation (from another revision of the `.att`, or with another inclusion proof; see
/// [`super::equivalent`]) once it verifies under the policy as a bundle to be written would. Returns the
/// bytes read.
async fn adopt_listed<R: Repository>(
    repo: &R,
    verifier: &Verifier,
    subject: &ReferrerSubject,
    converted: &mut Converted,
    referrers: &Referrers,
    options: &MigrateOptions,
) -> Result<u64> {
    let taken = converted.outcomes.iter().filter_map(|o| o.referrer()).map(|r| r.manifest.digest.clone()).collect();
    let mut adoption = Adoption { repo, verifier, image: subject.digest(), referrers, taken, limits: &options.limits };
    let (mut read, mut adopted) = (0, false);
    for o in &mut converted.outcomes {
        let Conversion::Converted(planned) = &mut o.result else { continue };
        let layer = converted.layers.iter().find(|l| l.index == o.source.layer_index);
        let payload = layer.map(|l| &l.signed.envelope().payload[..]);
        let (found, bytes) = adoption.equivalent(planned, |p| Some(p) == payload).await?;
        read += bytes;
        if let Some(found) = found {
            **planned = found;
            adopted = true;
        }
    }
    if adopted {
        converted.plan = ImagePlan::new(subject, options.format, &converted.outcomes);
    }
    Ok(read)
}

/// [`adopt_listed`] for referrers still to write, against what the subject lists now: for a caller that
/// has stored referrers since planning (`copy` copies the source's own before its conversions, and
/// those may be this very migration, done in the source earlier). Each adopted referrer takes the
/// place of the planned one, marked listed; returns the planned digest and position of each replaced.
pub(super) async fn adopt_listed_now<R: Repository>(
    repo: &R,
    verifier: &Verifier,
    image: &Digest,
    pending: &mut [Pending],
    limits: &crate::limits::Limits,
) -> Result<Vec<(Digest, usize)>> {
    let mut replaced = Vec::new();
    if pending.iter().all(|p| p.listed) {
        return Ok(replaced);
    }
    let referrers = repo.referrers(image, None).await?;
    let taken = pending.iter().map(|p| p.referrer.manifest.digest.clone()).collect();
    let mut adoption = Adoption { repo, verifier, image, referrers: &referrers, taken, limits };
    for (i, p) in pending.iter_mut().enumerate().filter(|(_, p)| !p.listed) {
        let digest = &p.payload_digest;
        let (found, _) = adoption.equivalent(&p.referrer, |payload| digest.compute_like(payload) == *digest).await?;
        if let Some(found) = found {
            replaced.push((std::mem::replace(&mut p.referrer, found).manifest.digest, i));
            p.listed = true;
        }
    }
    Ok(replaced)
}

/// Finding, for planned referrers, the listed ones that stand for them (see [`adopt_listed`]).
struct Adoption<'a, R> {
    repo: &'a R,
    verifier: &'a Verifier,
    image: &'a Digest,
    referrers: &'a Referrers,
    /// Planned digests and those adopted so far: one listed referrer stands for one planned (an `.att`
    /// listing one layer twice plans two).
    taken: BTreeSet<Digest>,
    limits: &'a crate::limits::Limits,
}

impl<R: Repository> Adoption<'_, R> {
    /// The listed referrer to take instead of `planned` (none when `planned` is listed itself, or nothing
    /// equivalent verifies with the legacy payload `is_payload` recognises), and the bytes read.
    async fn equivalent(
        &mut self,
        planned: &NewReferrer,
        is_payload: impl Fn(&[u8]) -> bool,
    ) -> Result<(Option<NewReferrer>, u64)> {
        let listed = &self.referrers.descriptors;
        if listed.iter().any(|d| d.digest == planned.manifest.digest) {
            return Ok((None, 0));
        }
        let (found, read) =
            super::equivalent::listed_equivalent(self.repo, self.image, planned, listed, self.limits).await?;
        let Some(found) = found.filter(|f| !self.taken.contains(&f.manifest.digest)) else { return Ok((None, read)) };
        if let Err(f) = check_bundle(self.verifier, &found, is_payload, self.image) {
            tracing::warn!("{}: the listed referrer {} is not adopted: {f}", self.repo.name(), found.manifest.digest);
            return Ok((None, read));
        }
        self.taken.insert(found.manifest.digest.clone());
        Ok((Some(found), read))
    }
}

/// Convert every layer (with inclusion proofs fetched and verified where needed), then verify every
/// converted bundle before anything is written.
async fn convert(
    verifier: &Arc<Verifier>,
    subject: &ReferrerSubject,
    layers: Vec<AttestationLayer>,
    results: &[std::result::Result<Verification, Failure>],
    config_created: Option<String>,
    options: &MigrateOptions,
) -> Result<Converted> {
    let (verified, failures) = conversion_inputs(&layers, results, verifier, options).await?;
    let (outcomes, layers, bundle_failures) =
        convert_off_runtime(verifier, subject, layers, verified, config_created, options.format).await?;
    let plan = ImagePlan::new(subject, options.format, &outcomes);
    let mut blocked = blocked_layers(&outcomes, &failures);
    blocked.extend(bundle_failures);
    blocked.extend(oversized(&outcomes, options.limits.max_manifest_bytes));
    Ok(Converted { outcomes, layers, plan, blocked })
}

/// Each referrer manifest larger than the manifest limit, in words. Such a manifest could only fail at
/// its push, after the image's other referrers had been pushed beside it: all or nothing means it
/// blocks the image before anything is written. (Its annotations copy signed strings of any length,
/// such as the predicate type.)
fn oversized(outcomes: &[SignatureOutcome], limit: u64) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|o| {
            let size = o.referrer()?.manifest.bytes.len() as u64;
            (size > limit).then(|| {
                format!(
                    "layer {} ({}): its referrer manifest would be {size} bytes, more than the manifest limit of \
                     {limit} (--max-manifest-size)",
                    o.source.layer_index,
                    o.source.layer_digest.short()
                )
            })
        })
        .collect()
}

/// What conversion takes for each layer, and for each layer that did not verify, why.
async fn conversion_inputs(
    layers: &[AttestationLayer],
    results: &[std::result::Result<Verification, Failure>],
    verifier: &Verifier,
    options: &MigrateOptions,
) -> Result<(Vec<Verified>, BTreeMap<usize, String>)> {
    let mut verified = Vec::with_capacity(layers.len());
    let mut failures = BTreeMap::new();
    for (layer, result) in layers.iter().zip(results) {
        match result {
            Ok(v) => verified.push(verified_for(layer, v, verifier, options).await?),
            Err(f) => {
                failures.insert(layer.index, f.to_string());
                verified.push(Verified::default());
            }
        }
    }
    Ok((verified, failures))
}

/// Each blocked conversion in words, with the verification failure behind it when there is one.
fn blocked_layers(outcomes: &[SignatureOutcome], failures: &BTreeMap<usize, String>) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|o| {
            let reason = o.blocked()?;
            let sig = o.source.signature_index.map(|i| format!(" signature {i}")).unwrap_or_default();
            let detail = failures.get(&o.source.layer_index).map(|f| format!(": {f}")).unwrap_or_default();
            Some(format!("layer {} ({}){sig}: {reason}{detail}", o.source.layer_index, o.source.layer_digest.short()))
        })
        .collect()
}

/// Why the image is blocked, all or nothing: its blocked layers and, unless a signature switch is
/// allowed, its `.sig` layers that do not verify. Empty when nothing blocks it.
fn blocked_reasons(converted: &Converted, sig_failures: &[String], options: &MigrateOptions) -> Vec<String> {
    if converted.blocked.is_empty() {
        return Vec::new();
    }
    let mut reasons = converted.blocked.clone();
    if !options.allow_signature_switch {
        reasons.extend_from_slice(sig_failures);
    }
    reasons
}

/// The referrers to write. They move out of the outcomes and their parsed bundles are dropped: what is
/// written and read back are the serialised blobs, verified before.
fn pending(
    outcomes: Vec<SignatureOutcome>,
    layers: &[AttestationLayer],
    listed: &BTreeMap<Digest, Option<String>>,
    repairable: bool,
) -> Vec<Pending> {
    outcomes
        .into_iter()
        .filter_map(|o| {
            let layer = layers.iter().find(|l| l.index == o.source.layer_index)?;
            let Conversion::Converted(mut referrer) = o.result else {
                return None;
            };
            referrer.bundle = None;
            for blob in &mut referrer.blobs {
                blob.bytes = compact(std::mem::take(&mut blob.bytes));
            }
            let listed_as = listed.get(&referrer.manifest.digest);
            let degraded = repairable && listed_as.is_some_and(|t| *t != referrer.manifest.manifest.artifact_type);
            Some(Pending {
                listed: listed_as.is_some() && !degraded,
                degraded,
                referrer: *referrer,
                payload_digest: Digest::sha256(&layer.signed.envelope().payload),
                layer: layer.descriptor.clone(),
                predicate_type: o.predicate_type,
            })
        })
        .collect()
}

/// The same bytes in an allocation of exactly their size: a serialiser's buffer has slack (a doubling one
/// can hold a 2.1 MB bundle in 4 MiB), and the bundle waits in it for its upload.
fn compact(bytes: Bytes) -> Bytes {
    let mut v = Vec::from(bytes);
    v.shrink_to_fit();
    Bytes::from(v)
}

type Results = Vec<std::result::Result<Verification, Failure>>;
type VerifiedBoth = (Results, Vec<(usize, std::result::Result<Verification, Failure>)>);

/// Verify the attestation and signature layers on rayon, off the async runtime's threads.
async fn verify_off_runtime(
    verifier: &Arc<Verifier>,
    image: &Digest,
    attestations: Vec<SignedEntity>,
    signatures: Vec<(usize, SignedEntity)>,
) -> Result<VerifiedBoth> {
    let verifier = Arc::clone(verifier);
    let image = image.clone();
    super::cpu::run("verifying the legacy layers", move || {
        let att = verifier.verify_all(&attestations, &image);
        let sig = signatures.iter().map(|(i, e)| (*i, verifier.verify(e, &image))).collect();
        (att, sig)
    })
    .await
}

/// The conversion input for a verified layer: the key or certificate that verified, the legacy log
/// entry when the log was checked, and its inclusion proof when a Rekor URL was given.
async fn verified_for(
    layer: &AttestationLayer,
    v: &Verification,
    verifier: &Verifier,
    options: &MigrateOptions,
) -> Result<Verified> {
    let what = || format!("layer {} ({})", layer.index, layer.descriptor.digest.short());
    let key = match &v.signer {
        Signer::Key { key_id } => {
            let key = verifier.policy().keys().iter().find(|k| k.key_id() == key_id).ok_or_else(|| {
                Error::new(ErrorKind::VerificationFailed, format!("{}: verified by unknown key {key_id}", what()))
            })?;
            VerifiedKey::PublicKey { spki_der: key.spki_der().to_vec() }
        }
        Signer::Certificate { .. } => {
            let der = layer.annotations.certificate_der().map_err(|e| e.context(what()))?.ok_or_else(|| {
                Error::new(ErrorKind::VerificationFailed, format!("{}: verified by a certificate it lacks", what()))
            })?;
            VerifiedKey::Certificate { der }
        }
    };
    let mut verified = Verified {
        signatures: vec![VerifiedSignature { index: v.signature_index, key }],
        rekor_bundle: None,
        inclusion_proof: None,
    };
    // An envelope may carry several signatures; each one made by a trusted key becomes its own bundle.
    // The verifier stops at the first; the others are checked here over the same PAE. Only when the log
    // was not checked: a log entry binds one signature, so with the log checked the others stay
    // unverified and block the image (all or nothing).
    if matches!(v.signer, Signer::Key { .. }) && !v.log.is_verified() && layer.signed.envelope().signatures.len() > 1 {
        let signed = Arc::clone(&layer.signed);
        let (index, keys) = (v.signature_index, verifier.policy().keys().to_vec());
        let others = super::cpu::run("checking the envelope's other signatures", move || {
            other_key_signatures(signed.envelope(), index, &keys)
        })
        .await?;
        verified.signatures.extend(others);
        verified.signatures.sort_by_key(|s| s.index);
    }
    // A log entry is carried only when verification checked it (not with --insecure-ignore-tlog).
    let Some(legacy) = layer.annotations.rekor_bundle().filter(|_| v.log.is_verified()) else {
        return Ok(verified);
    };
    verified.rekor_bundle = Some(legacy.clone());
    let carriable = matches!(legacy.body.spec, RekorSpec::DsseV001(_) | RekorSpec::IntotoV002(_));
    if let (Some(rekor), true) = (&options.rekor, carriable) {
        let index = legacy.payload.log_index;
        let fetched = rekor.fetch(index).await.map_err(|e| e.context(what()))?;
        verify_fetched(&fetched, legacy, verifier.policy().trusted_root()).map_err(|e| e.context(what()))?;
        verified.inclusion_proof = Some(fetched);
    }
    Ok(verified)
}

type ConvertedLayers = (Vec<SignatureOutcome>, Vec<AttestationLayer>, Vec<String>);

async fn convert_off_runtime(
    verifier: &Arc<Verifier>,
    subject: &ReferrerSubject,
    layers: Vec<AttestationLayer>,
    verified: Vec<Verified>,
    config_created: Option<String>,
    format: OutputFormat,
) -> Result<ConvertedLayers> {
    let verifier = Arc::clone(verifier);
    let subject = subject.clone();
    super::cpu::run("converting", move || -> Result<ConvertedLayers> {
        let mut outcomes = Vec::new();
        for (layer, v) in layers.iter().zip(&verified) {
            let att = LegacyLayerInput {
                legacy_manifest: &layer.manifest,
                layer_index: layer.index,
                layer: &layer.descriptor,
                signed: &layer.signed,
                config_created: config_created.as_deref(),
            };
            outcomes.extend(convert_layer(&subject, &att, v, format)?);
        }
        // A bundle we would write must verify under the same policy, or it is not written: the exact bytes
        // that will be uploaded, parsed again, not the structure they were serialised from. (A DSSE
        // referrer uploads no new signed bytes: it reuses the legacy blob verified above.)
        let mut failures = Vec::new();
        for o in &outcomes {
            let Some(referrer) = o.referrer() else { continue };
            let layer = layers.iter().find(|l| l.index == o.source.layer_index);
            let payload = layer.map(|l| &l.signed.envelope().payload[..]);
            if let Err(f) = check_upload(&verifier, referrer, payload, subject.digest()) {
                failures.push(format!(
                    "layer {} ({}): the converted bundle does not verify under the policy: {f}",
                    o.source.layer_index,
                    o.source.layer_digest.short()
                ));
            }
        }
        Ok((outcomes, layers, failures))
    })
    .await?
}

/// Parse the bundle blob exactly as it will be uploaded, check it carries the legacy layer's payload byte
/// for byte, and verify it under the policy.
fn check_upload(
    verifier: &Verifier,
    referrer: &NewReferrer,
    legacy_payload: Option<&[u8]>,
    image: &Digest,
) -> std::result::Result<(), String> {
    check_bundle(verifier, referrer, |payload| Some(payload) == legacy_payload, image)
}

/// [`check_upload`], the payload recognised by `is_legacy_payload`.
fn check_bundle(
    verifier: &Verifier,
    referrer: &NewReferrer,
    is_legacy_payload: impl Fn(&[u8]) -> bool,
    image: &Digest,
) -> std::result::Result<(), String> {
    let Some(blob) = referrer.bundle_blob() else {
        return Ok(());
    };
    let bundle = Bundle::parse(&blob.bytes).map_err(|e| format!("the serialised bundle does not parse: {e}"))?;
    if !bundle.dsse_envelope().is_some_and(|e| is_legacy_payload(&e.payload)) {
        return Err("the serialised bundle does not carry the legacy layer's DSSE payload".into());
    }
    verifier.verify(&SignedEntity::bundle(bundle), image).map(|_| ()).map_err(|f| f.to_string())
}

/// The envelope's other signatures that verify under one of `keys`.
fn other_key_signatures(
    envelope: &crate::model::dsse::Envelope,
    verified_index: usize,
    keys: &[crate::verification::PublicKey],
) -> Vec<VerifiedSignature> {
    let pae = envelope.pae();
    envelope
        .signatures
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != verified_index)
        .filter_map(|(i, sig)| {
            keys.iter().find(|k| k.verify(&pae, &sig.sig).is_some()).map(|k| VerifiedSignature {
                index: i,
                key: VerifiedKey::PublicKey { spki_der: k.spki_der().to_vec() },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pre-upload check reads the serialised bytes: a blob that does not parse, carries another payload
    /// or no longer verifies is refused, whatever structure it was made from.
    #[tokio::test(flavor = "current_thread")]
    async fn the_bytes_to_upload_are_what_is_verified() {
        let (_dir, scenario, repo, verifier) = crate::demo::demo_in_layout().await;
        let prepared = plan_image(&repo, &scenario.image, &verifier, &MigrateOptions::default()).await.unwrap();
        assert_eq!(prepared.outcome, Outcome::Planned, "{:?}", prepared.reasons);
        let [a, b] = &prepared.pending[..] else { panic!("two referrers expected") };
        let payload = |r: &NewReferrer| {
            Bundle::parse(&r.bundle_blob().unwrap().bytes).unwrap().dsse_envelope().unwrap().payload.clone()
        };
        let (pa, pb) = (payload(&a.referrer), payload(&b.referrer));
        assert_eq!(Digest::sha256(&pa), a.payload_digest);
        assert!(a.referrer.bundle.is_none(), "the parsed bundle is not kept");
        let image = &scenario.image;
        check_upload(&verifier, &a.referrer, Some(&pa), image).unwrap();
        let err = check_upload(&verifier, &a.referrer, Some(&pb), image).unwrap_err();
        assert!(err.contains("does not carry the legacy layer's DSSE payload"), "{err}");

        let with_blob = |bytes: Vec<u8>| {
            let mut r = a.referrer.clone();
            r.blobs
                .iter_mut()
                .find(|x| x.descriptor.media_type == crate::model::media_type::BUNDLE_V03)
                .unwrap()
                .bytes = Bytes::from(bytes);
            r
        };
        let text = String::from_utf8(a.referrer.bundle_blob().unwrap().bytes.to_vec()).unwrap();
        // Another signature value: still a well-formed bundle, no longer a valid signature.
        let sig_at = text.find("\"sig\":\"").unwrap() + 7;
        let mut forged = text.clone().into_bytes();
        forged[sig_at] = if forged[sig_at] == b'A' { b'B' } else { b'A' };
        let err = check_upload(&verifier, &with_blob(forged), Some(&pa), image).unwrap_err();
        assert!(!err.is_empty());
        let err = check_upload(&verifier, &with_blob(b"{}".to_vec()), Some(&pa), image).unwrap_err();
        assert!(err.contains("does not parse"), "{err}");
    }

    /// A referrer manifest over the manifest limit blocks the image before anything is written, rather
    /// than fail at its push beside the image's other referrers.
    #[tokio::test(flavor = "current_thread")]
    async fn a_referrer_manifest_over_the_limit_blocks_the_image() {
        let (_dir, scenario, repo, verifier) = crate::demo::demo_in_layout().await;
        let planned = plan_image(&repo, &scenario.image, &verifier, &MigrateOptions::default()).await.unwrap();
        let sizes: Vec<u64> = planned.pending.iter().map(|p| p.referrer.manifest.bytes.len() as u64).collect();
        let (smaller, larger) = (*sizes.iter().min().unwrap(), *sizes.iter().max().unwrap());
        assert!(smaller < larger, "the demo's two referrers differ in size: {sizes:?}");
        let mut options = MigrateOptions::default();
        options.limits.max_manifest_bytes = larger - 1;
        let prepared = plan_image(&repo, &scenario.image, &verifier, &options).await.unwrap();
        assert_eq!(prepared.outcome, Outcome::Blocked, "{:?}", prepared.reasons);
        assert!(prepared.pending.is_empty());
        let expected = format!("would be {larger} bytes, more than the manifest limit of {}", larger - 1);
        assert_eq!(prepared.reasons.iter().filter(|r| r.contains(&expected)).count(), 1, "{:?}", prepared.reasons);
    }

    /// The legacy layers of one image are held together: their declared total must fit the budget before
    /// the first is read (a manifest may list one large blob many times, each within the blob cap).
    #[tokio::test(flavor = "current_thread")]
    async fn legacy_layers_over_the_image_budget_are_refused_before_they_are_read() {
        use crate::model::cosign::TagKind;
        use crate::model::oci::Manifest;
        let (_dir, scenario, repo, verifier) = crate::demo::demo_in_layout().await;
        let mut declared = 0;
        for kind in [TagKind::Attestation, TagKind::Signature] {
            if let Some(raw) = repo.get_manifest(&kind.tag_for(&scenario.image)).await.unwrap()
                && let Manifest::Image(m) = raw.manifest
            {
                declared += m.layers.iter().map(|l| l.size).sum::<u64>();
            }
        }
        let mut options = MigrateOptions::default();
        options.limits.max_legacy_bytes = declared;
        let fits = plan_image(&repo, &scenario.image, &verifier, &options).await.unwrap();
        assert_eq!(fits.outcome, Outcome::Planned, "{:?}", fits.reasons);
        options.limits.max_legacy_bytes = declared - 1;
        let e = plan_image(&repo, &scenario.image, &verifier, &options).await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::TooLarge, "{e}");
        let expected = format!("declare {declared} bytes together, more than the limit of {}", declared - 1);
        assert!(e.to_string().contains(&expected), "{e}");
    }
}
