//! Read-back: what a consumer would find after the write, checked before an image counts as migrated.
//!
//! Each referrer must be listed by the same discovery a consumer uses (`Repository::referrers`: the API,
//! else the tag schema), its manifest must come back byte-identical (fetched by digest), and its content —
//! the bundle, or the reused DSSE envelope — must verify again under the same policy and carry exactly the
//! legacy layer's payload bytes.

use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::model::bundle::Bundle;
use crate::model::cosign::LegacyLayerAnnotations;
use crate::model::digest::Digest;
use crate::model::dsse::Envelope;
use crate::model::media_type as mt;
use crate::model::oci::Manifest;
use crate::store::Repository;
use crate::verify::{SignedEntity, Verifier};

use super::plan::Pending;

/// Check every pending referrer of `subject` as a consumer would see it. Returns the bytes read.
pub async fn read_back<R: Repository>(
    repo: &R,
    subject: &Digest,
    pending: &[Pending],
    verifier: &Arc<Verifier>,
    max_blob_bytes: u64,
) -> Result<u64> {
    let listing = repo.referrers(subject, None).await?;
    let mut bytes_read = 0u64;
    let mut checks = Vec::with_capacity(pending.len());
    for p in pending {
        let digest = &p.referrer.manifest.digest;
        let failed = |msg: String| {
            Error::new(ErrorKind::VerificationFailed, format!("read-back of referrer {digest} of {subject}: {msg}"))
        };
        if !listing.descriptors.iter().any(|d| &d.digest == digest) {
            return Err(failed(format!(
                "not listed among the subject's referrers (read through the {})",
                listing.source_name()
            )));
        }
        let raw = repo
            .get_manifest(&digest.to_string())
            .await?
            .ok_or_else(|| failed("the manifest is listed but not served".into()))?;
        bytes_read += raw.bytes.len() as u64;
        if raw.bytes != p.referrer.manifest.bytes {
            return Err(failed("the manifest served differs from the one written".into()));
        }
        let Manifest::Image(manifest) = &raw.manifest else {
            return Err(failed("not an image manifest".into()));
        };
        let layer = manifest.layers.first().ok_or_else(|| failed("the manifest has no layer".into()))?;
        let blob = repo.get_blob(layer, max_blob_bytes).await?;
        bytes_read += blob.len() as u64;
        let (entity, payload) = if layer.media_type == mt::BUNDLE_V03 {
            let bundle = Bundle::parse(&blob).map_err(|e| e.context(format!("bundle of referrer {digest}")))?;
            let payload = bundle.dsse_envelope().map(|e| e.payload.clone());
            (SignedEntity::bundle(bundle), payload)
        } else {
            let payload = Envelope::parse(&blob).ok().map(|e| e.payload);
            let annotations = LegacyLayerAnnotations::from_descriptor(&p.layer);
            (SignedEntity::legacy_attestation(blob.to_vec(), annotations), payload)
        };
        if payload.as_deref() != Some(&p.payload[..]) {
            return Err(failed("its DSSE payload differs from the legacy layer's".into()));
        }
        checks.push((digest.clone(), entity));
    }
    let verifier = Arc::clone(verifier);
    let image = subject.clone();
    let failures = tokio::task::spawn_blocking(move || {
        checks
            .into_iter()
            .filter_map(|(digest, entity)| verifier.verify(&entity, &image).err().map(|f| format!("{digest}: {f}")))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| Error::new(ErrorKind::Io, format!("verification task failed: {e}")))?;
    if !failures.is_empty() {
        return Err(Error::new(
            ErrorKind::VerificationFailed,
            format!("read-back of {subject}: written referrers do not verify: {}", failures.join("; ")),
        ));
    }
    Ok(bytes_read)
}

trait SourceName {
    fn source_name(&self) -> &'static str;
}

impl SourceName for crate::store::Referrers {
    fn source_name(&self) -> &'static str {
        match self.source {
            crate::store::ReferrersSource::Api { .. } => "referrers API",
            crate::store::ReferrersSource::TagSchema { .. } => "referrers tag schema",
        }
    }
}
