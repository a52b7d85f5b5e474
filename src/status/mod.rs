//! `status`: where each image of a registry stands in a migration — `legacy-only`, `migrated`,
//! `partly-migrated`, `referrers-only`, `orphaned` or `nothing-attached` — with counts per repository and
//! in total, the bytes a consumer of one attestation downloads before and after, and what each consumer
//! sees in that state.
//!
//! Read-only, and manifests only: per image the image manifest (`HEAD`), the legacy `.att` manifest, the
//! referrers listing and each referrer's manifest. [`state`] decides from that (pure); [`batch`] runs it
//! over repositories and registries through the batch engine. With a verifier ([`status_image_verified`],
//! `status --verify`) each referrer that claims to convert a legacy layer is also downloaded, verified,
//! and its payload compared with the layer's: only then does the layer count as migrated.
//!
//! # Example
//!
//! ```
//! use att2ref::status::{status_image, state::ImageState};
//! use att2ref::store::layout::LayoutRepository;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> att2ref::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let scenario = att2ref::demo::demo()?;
//! let repo = LayoutRepository::create(dir.path(), att2ref::Limits::default())?;
//! scenario.repo.push_to(&repo).await?;
//! let status = status_image(&repo, &scenario.image).await?;
//! assert_eq!(status.state, ImageState::LegacyOnly);
//! assert_eq!(status.unmigrated.len(), 2); // an SBOM and a SLSA provenance, not migrated yet
//! # Ok(())
//! # }
//! ```

pub mod batch;
pub mod report;
pub mod state;

use std::sync::Arc;

use serde::Serialize;

use crate::convert::annotations::LEGACY_LAYER_DIGEST;
use crate::error::Result;
use crate::limits::Limits;
use crate::model::cosign::LegacyLayerAnnotations;
use crate::model::cosign::TagKind;
use crate::model::digest::Digest;
use crate::model::dsse::Envelope;
use crate::model::oci::Descriptor;
use crate::model::oci::Manifest;
use crate::read::referrers::{ReferrerContent, read_referrer};
use crate::store::Repository;
use crate::verification::{SignedEntity, Verifier, verify_off_thread};

pub use batch::{StatusJob, status_batch, status_batch_streamed};
pub use report::StatusReport;
use state::{ConsumerBytes, ConsumerView, ImageState, Observed, ReferrerFacts, UnmigratedLayer};

/// One image's status.
#[derive(Clone, Debug, Serialize)]
pub struct ImageStatus {
    /// The repository.
    pub repository: String,
    /// The image.
    pub image: Digest,
    /// Its state.
    pub state: ImageState,
    /// The legacy `.att` manifest digest, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_manifest: Option<Digest>,
    /// Layers of the legacy `.att`.
    pub legacy_layers: usize,
    /// Attestation referrers (Sigstore bundles and DSSE envelopes).
    pub attestation_referrers: usize,
    /// Legacy layers without an equivalent referrer.
    pub unmigrated: Vec<UnmigratedLayer>,
    /// What a consumer of one attestation downloads.
    pub bytes: ConsumerBytes,
    /// What each consumer sees.
    pub consumers: Vec<ConsumerView>,
    /// With `--verify`: referrers whose claim to convert a legacy layer did not hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unverified: Vec<UnverifiedReferrer>,
}

/// A referrer whose claim to convert a legacy layer did not hold under `--verify`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnverifiedReferrer {
    /// Its manifest digest.
    pub digest: Digest,
    /// Why its claim does not hold.
    pub reason: String,
}

/// Read what decides the state of `image` in `repo`, and decide it (manifests only).
pub async fn status_image<R: Repository>(repo: &R, image: &Digest) -> Result<ImageStatus> {
    status_image_verified(repo, image, None, &Limits::default()).await
}

/// [`status_image`], and with `verifier` each referrer claiming to convert a legacy layer is verified and
/// must carry exactly that layer's payload; one that does not counts as converting nothing.
pub async fn status_image_verified<R: Repository>(
    repo: &R,
    image: &Digest,
    verifier: Option<&Arc<Verifier>>,
    limits: &Limits,
) -> Result<ImageStatus> {
    let (digest, att, sig, sbom) = (
        image.to_string(),
        TagKind::Attestation.tag_for(image),
        TagKind::Signature.tag_for(image),
        TagKind::Sbom.tag_for(image),
    );
    let (present, legacy, sig, sbom, listing) = tokio::try_join!(
        repo.head_manifest(&digest),
        repo.get_manifest(&att),
        repo.head_manifest(&sig),
        repo.head_manifest(&sbom),
        repo.referrers(image, None),
    )?;
    let legacy = legacy.map(|raw| {
        let layers = match &raw.manifest {
            Manifest::Image(m) => m.layers.clone(),
            _ => Vec::new(),
        };
        (raw.digest.clone(), raw.bytes.len() as u64, layers)
    });
    let reads = listing.descriptors.iter().map(|listed| async move {
        let raw = repo.get_manifest(&listed.digest.to_string()).await?;
        Ok::<_, crate::Error>(raw.map(|raw| {
            let (layers, annotations) = match &raw.manifest {
                Manifest::Image(m) => (m.layers.clone(), m.annotations.clone()),
                Manifest::Artifact(a) => (a.blobs.clone(), a.annotations.clone()),
                Manifest::Index(i) => (Vec::new(), i.annotations.clone()),
            };
            ReferrerFacts { listed: listed.clone(), layers, annotations: annotations.into_iter().collect() }
        }))
    });
    // A listed referrer whose manifest is gone is nobody's attestation: not counted.
    let referrers: Vec<ReferrerFacts> =
        futures_util::future::try_join_all(reads).await?.into_iter().flatten().collect();
    let mut observed = Observed {
        image_present: present.is_some(),
        legacy,
        other_legacy_tags: sig.is_some() || sbom.is_some(),
        referrers,
    };
    let mut unverified = Vec::new();
    if let Some(verifier) = verifier {
        unverified = verify_claims(repo, image, &mut observed, verifier, limits).await?;
    }
    let assessment = state::assess(&observed);
    Ok(ImageStatus {
        repository: repo.name(),
        image: image.clone(),
        state: assessment.state,
        legacy_manifest: observed.legacy.as_ref().map(|(d, _, _)| d.clone()),
        legacy_layers: assessment.legacy_layers,
        attestation_referrers: assessment.attestation_referrers,
        consumers: state::consumers(assessment.state, assessment.unmigrated.len()),
        unmigrated: if assessment.state == ImageState::PartlyMigrated || assessment.state == ImageState::LegacyOnly {
            assessment.unmigrated
        } else {
            Vec::new()
        },
        bytes: assessment.bytes,
        unverified,
    })
}

/// Check every referrer's claim to convert a layer of the current `.att` (its
/// `dev.att2ref.legacy.layer.digest` annotation): it must verify, and carry that layer's payload. A claim
/// that does not hold is dropped from `observed` (the referrer then converts nothing) and returned.
async fn verify_claims<R: Repository>(
    repo: &R,
    image: &Digest,
    observed: &mut Observed,
    verifier: &Arc<Verifier>,
    limits: &Limits,
) -> Result<Vec<UnverifiedReferrer>> {
    let layers: Vec<Descriptor> = observed.legacy.as_ref().map(|(_, _, l)| l.clone()).unwrap_or_default();
    let mut failed = Vec::new();
    for referrer in &mut observed.referrers {
        let Some(claimed) = referrer.annotations.get(LEGACY_LAYER_DIGEST).cloned() else { continue };
        let Some(layer) = layers.iter().find(|l| l.digest.to_string() == claimed) else { continue };
        if let Err(reason) = check_claim(repo, image, referrer, layer, verifier, limits).await? {
            referrer.annotations.remove(LEGACY_LAYER_DIGEST);
            referrer.listed.annotations.remove(LEGACY_LAYER_DIGEST);
            failed.push(UnverifiedReferrer { digest: referrer.listed.digest.clone(), reason });
        }
    }
    Ok(failed)
}

/// `Ok(Err(reason))` when `referrer` does not verify or does not carry `layer`'s payload.
async fn check_claim<R: Repository>(
    repo: &R,
    image: &Digest,
    referrer: &ReferrerFacts,
    layer: &Descriptor,
    verifier: &Arc<Verifier>,
    limits: &Limits,
) -> Result<std::result::Result<(), String>> {
    let legacy = repo.get_blob(layer, limits.max_blob_bytes).await?;
    let legacy_payload = match Envelope::parse(&legacy) {
        Ok(envelope) => envelope.payload,
        Err(e) => return Ok(Err(format!("the legacy layer is not a DSSE envelope: {e}"))),
    };
    let read = match read_referrer(repo, image, &referrer.listed, true, limits).await {
        Ok(read) => read,
        Err(e) if e.kind().is_bad_data() => return Ok(Err(format!("unreadable: {e}"))),
        Err(e) => return Err(e),
    };
    let (payload, entity) = match read.content {
        Some(ReferrerContent::Bundle { bundle, .. }) => {
            (bundle.dsse_envelope().map(|e| e.payload.clone()), SignedEntity::bundle(*bundle))
        }
        Some(ReferrerContent::Dsse { bytes, envelope, .. }) => {
            let annotations = referrer.layers.first().map(LegacyLayerAnnotations::from_descriptor).unwrap_or_default();
            (Some(envelope.payload), SignedEntity::legacy_attestation(bytes.to_vec(), annotations))
        }
        None => return Ok(Err("not a Sigstore bundle or DSSE envelope".to_owned())),
    };
    if payload.as_deref() != Some(legacy_payload.as_slice()) {
        return Ok(Err("it does not carry the legacy layer's payload".to_owned()));
    }
    Ok(verify_off_thread(verifier, &Arc::new(entity), image).await?.map_err(|f| format!("does not verify: {f}")))
}
