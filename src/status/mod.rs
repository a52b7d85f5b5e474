//! `status`: where each image of a registry stands in a migration — `legacy-only`, `migrated`,
//! `partly-migrated`, `referrers-only`, `orphaned` or `nothing-attached` — with counts per repository and
//! in total, the bytes a consumer of one attestation downloads before and after, and what each consumer
//! sees in that state.
//!
//! Read-only, and manifests only: per image the image manifest (`HEAD`), the legacy `.att` manifest, the
//! referrers listing and each referrer's manifest. [`state`] decides from that (pure); [`batch`] runs it
//! over repositories and registries through the batch engine.
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

use serde::Serialize;

use crate::error::Result;
use crate::model::cosign::TagKind;
use crate::model::digest::Digest;
use crate::model::oci::Manifest;
use crate::store::Repository;

pub use batch::{StatusJob, status_batch};
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
}

/// Read what decides the state of `image` in `repo`, and decide it.
pub async fn status_image<R: Repository>(repo: &R, image: &Digest) -> Result<ImageStatus> {
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
    let observed = Observed {
        image_present: present.is_some(),
        legacy,
        other_legacy_tags: sig.is_some() || sbom.is_some(),
        referrers,
    };
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
    })
}
