//! Cosign's legacy tag-based layout: `sha256-<image>.sig`, `.att`, `.sbom`.

use bytes::Bytes;
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::limits::Limits;
use crate::model::cosign::{LegacyLayerAnnotations, SimpleSigning, TagKind};
use crate::model::digest::Digest;
use crate::model::media_type as mt;
use crate::model::oci::{Descriptor, ImageManifest, Manifest, RawManifest};
use crate::model::signed_statement::SignedStatement;
use crate::store::Repository;

/// Legacy layers no larger than this are read whole at once where only their kind is wanted (`get`,
/// `inspect`): a prefix would save at most a few KiB and cost a request more when the layer is needed whole.
pub const READ_WHOLE_UP_TO: u64 = 4096;
/// How much of a larger `.att` layer is read to learn what it is: cosign's envelope and statement put the
/// predicate type and the start of the predicate in its first ~1.5 KiB (docs/FORMATS.md §6.1).
pub const PREFIX_BYTES: u64 = 2048;

/// A legacy manifest found under a cosign tag.
#[derive(Clone, Debug)]
pub struct LegacyManifest {
    /// Which kind of attachment.
    pub kind: TagKind,
    /// The tag it was found under.
    pub tag: String,
    /// The manifest as served.
    pub raw: RawManifest,
    /// Its parsed form (legacy attachments are always image manifests).
    pub manifest: ImageManifest,
}

impl LegacyManifest {
    /// The layers, in manifest order.
    pub fn layers(&self) -> &[Descriptor] {
        &self.manifest.layers
    }

    /// Sum of the declared layer sizes.
    pub fn layers_size(&self) -> u64 {
        self.manifest.layers.iter().fold(0u64, |a, l| a.saturating_add(l.size))
    }

    /// Refuse, before any layer is read, legacy manifests whose layers declare more than
    /// [`Limits::max_legacy_bytes`] together: a reader holding every layer of an image at once (to verify
    /// and convert them together) stays within that budget, whatever one manifest repeats.
    pub fn check_budget(manifests: &[&LegacyManifest], limits: &Limits) -> Result<()> {
        let declared = manifests.iter().fold(0u64, |a, m| a.saturating_add(m.layers_size()));
        if declared <= limits.max_legacy_bytes {
            return Ok(());
        }
        let tags: Vec<&str> = manifests.iter().map(|m| m.tag.as_str()).collect();
        Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "the layers of {} declare {declared} bytes together, more than the limit of {} (--max-legacy-size)",
                tags.join(" and "),
                limits.max_legacy_bytes
            ),
        ))
    }

    /// Layer `index`, or an error naming the tag when the manifest has no such layer.
    pub fn layer(&self, index: usize) -> Result<&Descriptor> {
        self.layers().get(index).ok_or_else(|| Error::invalid_input(format!("{} has no layer {index}", self.tag)))
    }

    /// How errors about layer `index` name it: `layer 1 (sha256:abcd…) of sha256-….att`.
    fn layer_name(&self, index: usize, descriptor: &Descriptor) -> String {
        format!("layer {index} ({}) of {}", descriptor.digest.short(), self.tag)
    }
}

/// Fetch the legacy manifest of `kind` attached to `image`. `Ok(None)` when the tag does not exist.
pub async fn fetch_manifest<R: Repository>(
    repo: &R,
    image: &Digest,
    kind: TagKind,
    limits: &Limits,
) -> Result<Option<LegacyManifest>> {
    let tag = kind.tag_for(image);
    let Some(raw) = repo.get_manifest(&tag).await? else {
        return Ok(None);
    };
    let manifest = match &raw.manifest {
        Manifest::Image(m) => m.clone(),
        _ => {
            return Err(Error::invalid_format(format!(
                "tag {tag} holds a {}, not the image manifest cosign writes",
                raw.media_type
            )));
        }
    };
    if manifest.layers.len() > limits.max_layers {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!("tag {tag}: {} layers, more than the limit of {}", manifest.layers.len(), limits.max_layers),
        ));
    }
    Ok(Some(LegacyManifest { kind, tag, raw, manifest }))
}

/// What a legacy layer holds, once read.
#[derive(Clone, Debug)]
pub enum LayerContent {
    /// A DSSE envelope around an in-toto statement (`.att`).
    Attestation(SignedStatement),
    /// A simple-signing payload (`.sig`); the signature is in the layer annotation.
    SimpleSigning {
        /// Exact layer bytes (what was signed).
        bytes: Bytes,
        /// Parsed payload.
        payload: SimpleSigning,
    },
    /// Not fetched: an unsigned attachment such as a `.sbom` layer.
    NotRead,
}

/// One layer of a legacy manifest, read and parsed.
#[derive(Debug)]
pub struct LegacyLayer {
    /// Position in the manifest.
    pub index: usize,
    /// The layer descriptor.
    pub descriptor: Descriptor,
    /// Its cosign annotations.
    pub annotations: LegacyLayerAnnotations,
    /// Its content.
    pub content: LayerContent,
}

/// Fetch and parse layer `index` of `manifest`. `.sbom` layers are not fetched (they are unsigned raw
/// documents that can be large); `.sig` and `.att` layers are, with the blob cap of `limits`.
pub async fn read_layer<R: Repository>(
    repo: &R,
    manifest: &LegacyManifest,
    index: usize,
    limits: &Limits,
) -> Result<LegacyLayer> {
    let descriptor = manifest.layer(index)?.clone();
    let annotations = LegacyLayerAnnotations::from_descriptor(&descriptor);
    // Every `.att` layer is an envelope whatever its media type, as cosign reads it (docs/FORMATS.md §6);
    // that arm comes before the simple-signing one so a mislabelled layer is not read as a signature.
    let content = match (manifest.kind, descriptor.media_type.as_str()) {
        (TagKind::Sbom, _) => LayerContent::NotRead,
        (TagKind::Attestation, _) | (_, mt::DSSE_ENVELOPE) => {
            let bytes = fetch_layer(repo, manifest, index, limits).await?;
            LayerContent::Attestation(parse_attestation_layer(manifest, index, bytes)?)
        }
        (_, mt::SIMPLE_SIGNING) => {
            let bytes = fetch_layer(repo, manifest, index, limits).await?;
            let payload =
                SimpleSigning::parse(&bytes).map_err(|e| e.context(manifest.layer_name(index, &descriptor)))?;
            LayerContent::SimpleSigning { bytes, payload }
        }
        (TagKind::Signature, other) => {
            let what = manifest.layer_name(index, &descriptor);
            return Err(Error::invalid_format(format!("{what}: unexpected media type {other:?} in a .sig")));
        }
    };
    Ok(LegacyLayer { index, descriptor, annotations, content })
}

/// Fetch the blob of layer `index` of `manifest`, refusing more than `limits.max_blob_bytes`; the store
/// checks it against the layer's digest. Errors name the layer.
pub async fn fetch_layer<R: Repository>(
    repo: &R,
    manifest: &LegacyManifest,
    index: usize,
    limits: &Limits,
) -> Result<Bytes> {
    let descriptor = manifest.layer(index)?;
    repo.get_blob(descriptor, limits.max_blob_bytes)
        .await
        .map_err(|e| e.context(manifest.layer_name(index, descriptor)))
}

/// Parse the fetched bytes of layer `index` of `manifest` as an attestation: a DSSE envelope around an
/// in-toto statement. Errors name the layer.
///
/// Separate from [`fetch_layer`] because decoding a multi-megabyte envelope is CPU work: a caller reading
/// many layers fetches them all at once and parses them off the async threads.
pub fn parse_attestation_layer(manifest: &LegacyManifest, index: usize, bytes: Bytes) -> Result<SignedStatement> {
    let descriptor = manifest.layer(index)?;
    SignedStatement::parse(bytes).map_err(|e| e.context(manifest.layer_name(index, descriptor)))
}

/// The signing time cosign ~1.10–2.1 recorded in the config's `created` field, when it is a real time
/// (later versions write the zero time `0001-01-01T00:00:00Z`).
pub async fn config_created<R: Repository>(repo: &R, manifest: &LegacyManifest) -> Result<Option<String>> {
    const MAX_CONFIG: u64 = 64 * 1024;
    let config = &manifest.manifest.config;
    if config.media_type == mt::OCI_EMPTY || config.size > MAX_CONFIG {
        return Ok(None);
    }
    let bytes = repo
        .get_blob(config, MAX_CONFIG)
        .await
        .map_err(|e| e.context(format!("config {} of {}", config.digest.short(), manifest.tag)))?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid_format(format!("config of {} is not JSON: {e}", manifest.tag)))?;
    Ok(value.get("created").and_then(Value::as_str).filter(|c| !c.starts_with("0001-01-01")).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryRepository;

    #[tokio::test(flavor = "current_thread")]
    async fn layer_reads_are_capped_and_name_the_layer() {
        let scenario = crate::demo::demo().unwrap();
        let repo = MemoryRepository::default();
        scenario.repo.push_to(&repo).await.unwrap();
        let limits = Limits::default();
        let att = fetch_manifest(&repo, &scenario.image, TagKind::Attestation, &limits).await.unwrap().unwrap();
        let bytes = fetch_layer(&repo, &att, 1, &limits).await.unwrap();
        let signed = parse_attestation_layer(&att, 1, bytes).unwrap();
        assert_eq!(signed.statement().predicate_type, "cosign.sigstore.dev/attestation/v1");

        let name = att.layer_name(1, att.layer(1).unwrap());
        let tiny = Limits { max_blob_bytes: 10, ..Limits::default() };
        let err = fetch_layer(&repo, &att, 1, &tiny).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TooLarge);
        assert!(err.to_string().starts_with(&name), "{err}");
        let err = parse_attestation_layer(&att, 1, Bytes::from_static(b"{}")).unwrap_err();
        assert!(err.to_string().starts_with(&name), "{err}");
        let err = fetch_layer(&repo, &att, 9, &limits).await.unwrap_err();
        assert_eq!(err.to_string(), format!("{} has no layer 9", att.tag));
    }
}
