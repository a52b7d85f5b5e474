//! What surrounds an image whose migration is planned: its legacy `.att` and `.sig`, the subject
//! manifest as served and the referrers it has already; then the layers of both legacy manifests.
//!
//! Reading only, through the readers of [`crate::read::legacy`]; every decision is the plan's. Requests
//! that do not depend on each other go out together: round trips, not bytes, bound a migration's time.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::try_join_all;

use crate::error::Result;
use crate::limits::Limits;
use crate::model::cosign::{LegacyLayerAnnotations, TagKind};
use crate::model::digest::Digest;
use crate::model::oci::{Descriptor, RawManifest};
use crate::model::signed_statement::SignedStatement;
use crate::read::legacy::{self, LayerContent, LegacyManifest};
use crate::store::{Referrers, Repository};
use crate::verification::SignedEntity;

/// What surrounds one image that has a legacy `.att`.
pub(super) struct Surroundings {
    /// The legacy `.att`.
    pub att: LegacyManifest,
    /// The subject manifest exactly as served under the image digest (the store checks the digest), or
    /// `None` when nothing is served there.
    pub subject: Option<RawManifest>,
    /// The signing time the `.att` config records, when it does.
    pub config_created: Option<String>,
    /// The legacy `.sig`, when there is one.
    pub sig: Option<LegacyManifest>,
    /// The image's referrers, discovered the way consumers discover them.
    pub referrers: Referrers,
}

/// Read what surrounds `image`; `Ok(None)` when it has no legacy `.att`.
pub(super) async fn surroundings<R: Repository>(
    repo: &R,
    image: &Digest,
    limits: &Limits,
) -> Result<Option<Surroundings>> {
    let Some(att) = legacy::fetch_manifest(repo, image, TagKind::Attestation, limits).await? else {
        return Ok(None);
    };
    let image_ref = image.to_string();
    let (subject, config_created, sig, referrers) = tokio::try_join!(
        repo.get_manifest(&image_ref),
        legacy::config_created(repo, &att),
        legacy::fetch_manifest(repo, image, TagKind::Signature, limits),
        repo.referrers(image, None),
    )?;
    Ok(Some(Surroundings { att, subject, config_created, sig, referrers }))
}

/// One `.att` layer, read and parsed once: the read, the verification and the conversion share it.
pub(super) struct AttestationLayer {
    /// The `.att` manifest digest.
    pub manifest: Digest,
    /// Position in the manifest.
    pub index: usize,
    /// The layer descriptor.
    pub descriptor: Descriptor,
    /// Its cosign annotations.
    pub annotations: LegacyLayerAnnotations,
    /// Its exact bytes, the envelope parsed from them and the statement inside.
    pub signed: Arc<SignedStatement>,
}

/// The layers of an image's legacy `.att` and `.sig`.
pub(super) struct LegacyLayers {
    /// The `.att` layers, parsed, in manifest order.
    pub attestations: Vec<AttestationLayer>,
    /// The `.sig` simple-signing layers by index, ready to verify.
    pub signatures: Vec<(usize, SignedEntity)>,
    /// Bytes read: the `.sig` manifest and every layer.
    pub bytes_read: u64,
}

/// Fetch every layer of the `.att` and the `.sig` at once, then parse the `.att` envelopes off the async
/// threads. The `.sig` layers are read because they must keep verifying under the same policy once
/// bundles exist.
pub(super) async fn layers<R: Repository>(repo: &R, around: &Surroundings, limits: &Limits) -> Result<LegacyLayers> {
    let att = &around.att;
    // Every layer is held until the image is converted: their declared sizes (each read is capped at its
    // own) must fit the image's budget before the first is read.
    let manifests: Vec<&LegacyManifest> = std::iter::once(att).chain(around.sig.as_ref()).collect();
    LegacyManifest::check_budget(&manifests, limits)?;
    let att_blobs = try_join_all((0..att.layers().len()).map(|i| legacy::fetch_layer(repo, att, i, limits)));
    let sig_layers = async {
        match &around.sig {
            Some(sig) => try_join_all((0..sig.layers().len()).map(|i| legacy::read_layer(repo, sig, i, limits))).await,
            None => Ok(Vec::new()),
        }
    };
    let (att_blobs, sig_layers) = tokio::try_join!(att_blobs, sig_layers)?;
    let mut bytes_read = around.sig.as_ref().map_or(0, |sig| sig.raw.bytes.len() as u64);
    let mut signatures = Vec::new();
    for layer in sig_layers {
        bytes_read += layer.descriptor.size;
        if let LayerContent::SimpleSigning { bytes, .. } = layer.content {
            signatures.push((layer.index, SignedEntity::legacy_signature(bytes.to_vec(), layer.annotations)));
        }
    }
    bytes_read += att_blobs.iter().map(|b| b.len() as u64).sum::<u64>();
    let attestations = parse_off_runtime(att, att_blobs).await?;
    Ok(LegacyLayers { attestations, signatures, bytes_read })
}

/// Parse the `.att` envelopes (payload decoded, statement checked) on rayon, off the runtime's threads.
async fn parse_off_runtime(att: &LegacyManifest, blobs: Vec<Bytes>) -> Result<Vec<AttestationLayer>> {
    let att = att.clone();
    super::cpu::run("parsing the legacy layers", move || {
        blobs
            .into_iter()
            .enumerate()
            .map(|(index, bytes)| {
                let signed = Arc::new(legacy::parse_attestation_layer(&att, index, bytes)?);
                let descriptor = att.layers()[index].clone();
                Ok(AttestationLayer {
                    manifest: att.raw.digest.clone(),
                    index,
                    annotations: LegacyLayerAnnotations::from_descriptor(&descriptor),
                    descriptor,
                    signed,
                })
            })
            .collect()
    })
    .await?
}
