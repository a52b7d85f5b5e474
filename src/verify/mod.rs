//! Verifying everything attached to an image: reads it through [`crate::read`], hands each attestation
//! and signature to the pure [`Verifier`] (on rayon, off the async runtime), and reports per item.
//!
//! Checked: every layer of the legacy `.att` and `.sig`, and every referrer holding a DSSE Sigstore
//! bundle or a bare DSSE envelope. With a predicate-type filter, only attestations whose **signed**
//! statement has that type are checked (`.sig` signatures are then skipped).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use att2ref::verify::{VerifyOptions, verify_image};
//! use att2ref::store::layout::LayoutRepository;
//! use att2ref::verification::{LogCheck, Policy, PublicKey, Verifier};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> att2ref::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let scenario = att2ref::demo::demo()?;
//! let repo = LayoutRepository::create(dir.path(), att2ref::Limits::default())?;
//! scenario.repo.push_to(&repo).await?;
//!
//! // Signed with a key and never logged (like the article's KMS-signed store): only an explicit
//! // insecure_ignore_tlog accepts that, and every result records that no log was checked.
//! let key = PublicKey::from_pem(att2ref::demo::TestKey::Rsa4096.public_pem().as_bytes())?; // TEST-ONLY key
//! let verifier = Arc::new(Verifier::new(Policy::new().with_key(key).insecure_ignore_tlog(true))?);
//! let image = verify_image(&repo, &scenario.image.to_string(), &verifier, &VerifyOptions::default()).await?;
//! assert_eq!(image.results.len(), 3); // two .att layers and one .sig layer
//! for r in &image.results {
//!     assert!(r.verified);
//!     assert_eq!(r.verification.as_ref().unwrap().log, LogCheck::Skipped);
//! }
//! # Ok(())
//! # }
//! ```

pub mod report;

use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::limits::Limits;
use crate::model::bundle::BundleContent;
use crate::model::cosign::{LegacyLayerAnnotations, TagKind};
use crate::model::digest::Digest;
use crate::model::predicate::{check_type_query, predicate_matches};
use crate::read::legacy::{self, LayerContent, LegacyManifest};
use crate::read::referrers::{self, ReferrerContent};
use crate::report::SubjectInfo;
use crate::store::Repository;
use crate::verification::{FailureReason, SignedEntity, Verifier};

use report::{AttestationResult, FailureInfo, ImageVerification, Location, Skipped};

/// What to check.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Caps for everything read.
    pub limits: Limits,
    /// Only attestations of this predicate type: a cosign short name (`slsaprovenance`, `custom`, …) or a
    /// full URI (see [`check_type_query`]; anything else is an invalid-input error).
    pub predicate_type: Option<String>,
}

/// Verify every attestation and signature of the image `reference` (tag or digest) names.
pub async fn verify_image<R: Repository>(
    repo: &R,
    reference: &str,
    verifier: &Arc<Verifier>,
    options: &VerifyOptions,
) -> Result<ImageVerification> {
    if let Some(query) = &options.predicate_type {
        check_type_query(query)?;
    }
    // A tag resolves through its manifest, which is then present; a digest may name a manifest that is
    // gone while its `.att` remains. That still verifies (as in cosign), but the report says so.
    let (digest, found) = match reference.parse::<Digest>() {
        Ok(d) => (d, None),
        Err(_) => {
            let desc = repo.head_manifest(reference).await?.ok_or_else(|| {
                Error::new(ErrorKind::NotFound, format!("tag {reference:?} not found in {}", repo.name()))
            })?;
            (desc.digest.clone(), Some(desc))
        }
    };
    let name = format!("{}@{digest}", repo.name());
    let context = |e: Error| e.context(format!("verifying {name}"));
    let found = match found {
        Some(desc) => Some(desc),
        None => repo.head_manifest(reference).await.map_err(context)?,
    };
    let subject = match found {
        Some(desc) => SubjectInfo {
            present: true,
            media_type: Some(desc.media_type).filter(|m| !m.is_empty()),
            size: Some(desc.size),
            kind: None,
        },
        None => SubjectInfo { present: false, media_type: None, size: None, kind: None },
    };
    check_digest(repo, &digest, subject, verifier, options).await.map_err(context)
}

async fn check_digest<R: Repository>(
    repo: &R,
    digest: &Digest,
    subject: SubjectInfo,
    verifier: &Arc<Verifier>,
    options: &VerifyOptions,
) -> Result<ImageVerification> {
    // Without a filter everything is checked (a bundle without an in-toto statement then fails
    // verification, loudly); with one, only signed statements of that type.
    let wanted = |predicate_type: Option<&str>| match (options.predicate_type.as_deref(), predicate_type) {
        (None, _) => true,
        (Some(q), Some(t)) => predicate_matches(q, t),
        (Some(_), None) => false,
    };
    let mut unreadable: Vec<AttestationResult> = Vec::new();
    let mut pending: Vec<(Location, Option<String>, SignedEntity)> = Vec::new();
    let mut skipped = Vec::new();

    // Every layer read is held until all are verified together: the two manifests' layers must fit the
    // image's budget before the first is read.
    let (att, sig) = tokio::try_join!(
        legacy::fetch_manifest(repo, digest, TagKind::Attestation, &options.limits),
        legacy::fetch_manifest(repo, digest, TagKind::Signature, &options.limits),
    )?;
    let manifests: Vec<(TagKind, LegacyManifest)> = [(TagKind::Attestation, att), (TagKind::Signature, sig)]
        .into_iter()
        .filter_map(|(k, m)| Some((k, m?)))
        .collect();
    LegacyManifest::check_budget(&manifests.iter().map(|(_, m)| m).collect::<Vec<_>>(), &options.limits)?;
    for (kind, manifest) in manifests {
        for index in 0..manifest.layers().len() {
            let layer = match legacy::read_layer(repo, &manifest, index, &options.limits).await {
                Ok(layer) => layer,
                Err(e) if e.kind().is_bad_data() => {
                    let location = Location {
                        source: if kind == TagKind::Attestation { "legacy-attestation" } else { "legacy-signature" }
                            .into(),
                        manifest: manifest.raw.digest.clone(),
                        tag: Some(manifest.tag.clone()),
                        layer: Some(index),
                        blob: manifest.layers()[index].digest.clone(),
                    };
                    unreadable.push(malformed(location, &e));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let location = Location {
                source: if kind == TagKind::Attestation { "legacy-attestation" } else { "legacy-signature" }.into(),
                manifest: manifest.raw.digest.clone(),
                tag: Some(manifest.tag.clone()),
                layer: Some(index),
                blob: layer.descriptor.digest.clone(),
            };
            match layer.content {
                LayerContent::Attestation(att) => {
                    let predicate_type = att.statement().predicate_type.clone();
                    if !wanted(Some(predicate_type.as_str())) {
                        skipped.push(Skipped { location, reason: format!("predicate type {predicate_type}") });
                        continue;
                    }
                    let entity = SignedEntity::parsed_attestation(Arc::new(att), layer.annotations);
                    pending.push((location, Some(predicate_type), entity));
                }
                LayerContent::SimpleSigning { bytes, .. } => {
                    if options.predicate_type.is_some() {
                        skipped.push(Skipped { location, reason: "a signature, not an attestation".into() });
                        continue;
                    }
                    pending.push((location, None, SignedEntity::legacy_signature(bytes.to_vec(), layer.annotations)));
                }
                LayerContent::NotRead => {}
            }
        }
    }

    let listing = repo.referrers(digest, None).await?;
    for listed in &listing.descriptors {
        let r = match referrers::read_referrer(repo, digest, listed, true, &options.limits).await {
            Ok(r) => r,
            Err(e) if e.kind().is_bad_data() => {
                let location = Location {
                    source: "referrer".into(),
                    manifest: listed.digest.clone(),
                    tag: None,
                    layer: None,
                    blob: listed.digest.clone(),
                };
                unreadable.push(malformed(location, &e));
                continue;
            }
            Err(e) => return Err(e),
        };
        let location = Location {
            source: "referrer".into(),
            manifest: r.raw.digest.clone(),
            tag: None,
            layer: None,
            blob: r.layers().first().map(|l| l.digest.clone()).unwrap_or_else(|| r.raw.digest.clone()),
        };
        let predicate_type = r.predicate_type().map(str::to_owned);
        match r.content {
            Some(ReferrerContent::Bundle { bundle, .. })
                if matches!(bundle.content, BundleContent::DsseEnvelope(_)) =>
            {
                if !wanted(predicate_type.as_deref()) {
                    skipped.push(Skipped {
                        location,
                        reason: format!("predicate type {}", predicate_type.unwrap_or_default()),
                    });
                    continue;
                }
                pending.push((location, predicate_type, SignedEntity::bundle(*bundle)));
            }
            Some(ReferrerContent::Dsse { bytes, .. }) => {
                if !wanted(predicate_type.as_deref()) {
                    skipped.push(Skipped {
                        location,
                        reason: format!("predicate type {}", predicate_type.unwrap_or_default()),
                    });
                    continue;
                }
                let entity = SignedEntity::legacy_attestation(bytes.to_vec(), LegacyLayerAnnotations::default());
                pending.push((location, predicate_type, entity));
            }
            Some(ReferrerContent::Bundle { .. }) => {
                skipped.push(Skipped { location, reason: "message-signature bundle (no signed statement)".into() })
            }
            None => skipped
                .push(Skipped { location, reason: format!("{} referrer, not an attestation", r.format.as_str()) }),
        }
    }

    // Signature checks are CPU work: run them on rayon, off the async runtime's threads.
    let verifier = Arc::clone(verifier);
    let image = digest.clone();
    let filter = options.predicate_type.clone();
    let results = tokio::task::spawn_blocking(move || {
        use rayon::prelude::*;
        pending
            .into_par_iter()
            .map(|(location, predicate_type, entity)| match verifier.verify(&entity, &image) {
                // The filter chose by the statement read before verification; the verified statement must
                // agree, or the choice rested on something unsigned.
                Ok(v)
                    if filter
                        .as_deref()
                        .is_some_and(|q| !v.predicate_type.as_deref().is_some_and(|t| predicate_matches(q, t))) =>
                {
                    AttestationResult {
                        location,
                        predicate_type: v.predicate_type.clone(),
                        verified: false,
                        verification: None,
                        failure: Some(FailureInfo {
                            reason: FailureReason::Malformed,
                            message: "the verified statement is not of the requested predicate type".into(),
                        }),
                    }
                }
                Ok(v) => AttestationResult {
                    location,
                    predicate_type: v.predicate_type.clone().or(predicate_type),
                    verified: true,
                    verification: Some(v),
                    failure: None,
                },
                Err(f) => AttestationResult {
                    location,
                    predicate_type,
                    verified: false,
                    verification: None,
                    failure: Some(FailureInfo { reason: f.reason, message: f.message }),
                },
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| Error::new(ErrorKind::Io, format!("verification task failed: {e}")))?;

    let mut results = results;
    results.extend(unreadable);
    Ok(ImageVerification {
        reference: format!("{}@{digest}", repo.name()),
        digest: digest.clone(),
        subject,
        results,
        skipped,
    })
}

fn malformed(location: Location, e: &Error) -> AttestationResult {
    AttestationResult {
        location,
        predicate_type: None,
        verified: false,
        verification: None,
        failure: Some(FailureInfo { reason: FailureReason::Malformed, message: format!("{e:#}") }),
    }
}
