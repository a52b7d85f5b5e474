//! OCI 1.1 referrers of an image digest, and BuildKit attestation manifests inside an index.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::model::bundle::Bundle;
use crate::model::digest::Digest;
use crate::model::dsse::Envelope;
use crate::model::intoto::Statement;
use crate::model::media_type::{self as mt, annotations as ann};
use crate::model::oci::{Descriptor, Manifest, RawManifest};
use crate::store::Repository;

/// What kind of referrer a manifest is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReferrerFormat {
    /// One Sigstore bundle layer (Cosign Bundle Specification; what att2ref writes).
    SigstoreBundle,
    /// A bare DSSE envelope layer: a single `application/vnd.dsse.envelope.v1+json` layer, or an
    /// artifactType DSSE referrers are written with ([`mt::is_dsse_artifact_type`]).
    DsseEnvelope,
    /// An artifact typed only by `config.mediaType` (written before image-spec 1.1 was final).
    ConfigTyped,
    /// The obsolete `application/vnd.oci.artifact.manifest.v1+json` (read-only).
    ArtifactManifest,
    /// Anything else (BuildKit attestations, signatures of other tools, …).
    Other,
}

impl ReferrerFormat {
    /// Stable kebab-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ReferrerFormat::SigstoreBundle => "sigstore-bundle",
            ReferrerFormat::DsseEnvelope => "dsse-envelope",
            ReferrerFormat::ConfigTyped => "config-typed",
            ReferrerFormat::ArtifactManifest => "artifact-manifest",
            ReferrerFormat::Other => "other",
        }
    }
}

/// Classify a referrer manifest by its shape (pure).
pub fn classify(manifest: &Manifest) -> ReferrerFormat {
    match manifest {
        Manifest::Artifact(_) => ReferrerFormat::ArtifactManifest,
        Manifest::Index(_) => ReferrerFormat::Other,
        Manifest::Image(m) => {
            let single = (m.layers.len() == 1).then(|| m.layers[0].media_type.as_str());
            if single.is_some_and(mt::is_bundle) {
                ReferrerFormat::SigstoreBundle
            } else if single == Some(mt::DSSE_ENVELOPE)
                || m.artifact_type.as_deref().is_some_and(mt::is_dsse_artifact_type)
            {
                ReferrerFormat::DsseEnvelope
            } else if m.artifact_type.is_none()
                && !m.config.media_type.is_empty()
                && ![mt::OCI_CONFIG, mt::DOCKER_CONFIG, mt::OCI_EMPTY].contains(&m.config.media_type.as_str())
            {
                ReferrerFormat::ConfigTyped
            } else {
                ReferrerFormat::Other
            }
        }
    }
}

/// Guess which tool wrote a referrer, from unsigned clues (for display only).
pub fn writer_hint(manifest: &Manifest) -> Option<&'static str> {
    let annotations = manifest.annotations();
    if annotations.keys().any(|k| k.starts_with(crate::ANNOTATION_PREFIX)) {
        return Some("att2ref");
    }
    match manifest {
        Manifest::Image(m) => {
            if m.artifact_type.as_deref() == Some(mt::DOCKER_ATTESTATION_MANIFEST) {
                return Some("buildkit");
            }
            if m.config.media_type.starts_with("application/vnd.dev.cosign.artifact.") {
                return Some("cosign (oci-1-1 mode)");
            }
            if !mt::is_bundle(m.artifact_type.as_deref().unwrap_or("")) {
                return None;
            }
            // cosign's WriteReferrer also puts artifactType on the config descriptor.
            if m.config.artifact_type.is_some() {
                return Some("cosign");
            }
            // JavaScript's Date.toISOString() always writes milliseconds; cosign writes seconds.
            let created = annotations.get(ann::OCI_CREATED).map(String::as_str).unwrap_or("");
            let millis = created.len() == 24 && created.as_bytes().get(19) == Some(&b'.') && created.ends_with('Z');
            if millis {
                Some("@sigstore/oci")
            } else if created.len() == 20 {
                Some("cosign")
            } else {
                None
            }
        }
        _ => None,
    }
}

/// A referrer manifest, and its content when it was read.
#[derive(Clone, Debug)]
pub struct Referrer {
    /// The descriptor from the listing (carries the listing's artifactType and annotations).
    pub listed: Descriptor,
    /// The manifest as served.
    pub raw: RawManifest,
    /// Its format.
    pub format: ReferrerFormat,
    /// Parsed content, when read.
    pub content: Option<ReferrerContent>,
}

/// The content of a referrer that was read.
#[derive(Clone, Debug)]
pub enum ReferrerContent {
    /// A Sigstore bundle.
    Bundle {
        /// Exact blob bytes.
        bytes: Bytes,
        /// The bundle.
        bundle: Box<Bundle>,
        /// The in-toto statement of a DSSE bundle.
        statement: Option<Statement>,
    },
    /// A bare DSSE envelope.
    Dsse {
        /// Exact blob bytes.
        bytes: Bytes,
        /// The envelope.
        envelope: Envelope,
        /// The statement inside.
        statement: Statement,
    },
}

impl Referrer {
    /// The predicate type: from the signed statement when the content was read (`None` when it holds
    /// no in-toto statement), else the unsigned manifest annotation.
    pub fn predicate_type(&self) -> Option<&str> {
        match &self.content {
            Some(ReferrerContent::Bundle { statement, .. }) => statement.as_ref().map(|s| s.predicate_type.as_str()),
            Some(ReferrerContent::Dsse { statement, .. }) => Some(statement.predicate_type.as_str()),
            None => self.predicate_type_annotation(),
        }
    }

    /// The `dev.sigstore.bundle.predicateType` annotation (manifest, else listing).
    pub fn predicate_type_annotation(&self) -> Option<&str> {
        self.raw
            .manifest
            .annotations()
            .get(ann::BUNDLE_PREDICATE_TYPE)
            .or_else(|| self.listed.annotations.get(ann::BUNDLE_PREDICATE_TYPE))
            .map(String::as_str)
    }

    /// Layer descriptors (blobs for artifact manifests).
    pub fn layers(&self) -> &[Descriptor] {
        match &self.raw.manifest {
            Manifest::Image(m) => &m.layers,
            Manifest::Artifact(a) => &a.blobs,
            Manifest::Index(_) => &[],
        }
    }
}

/// Fetch a listed referrer manifest and, when `read_content` is set and it is a bundle or DSSE
/// referrer, its single layer. Whether the manifest's own `subject` names `subject` is left to the
/// caller (inspect reports a mismatch; verification binds through the signed statement's subject).
pub async fn read_referrer<R: Repository>(
    repo: &R,
    subject: &Digest,
    listed: &Descriptor,
    read_content: bool,
    limits: &Limits,
) -> Result<Referrer> {
    let what = format!("referrer {} of {}", listed.digest.short(), subject.short());
    let raw =
        repo.get_manifest(&listed.digest.to_string()).await.map_err(|e| e.context(&what))?.ok_or_else(|| {
            Error::new(crate::ErrorKind::NotFound, format!("{what}: listed but its manifest is missing"))
        })?;
    let format = classify(&raw.manifest);
    let mut referrer = Referrer { listed: listed.clone(), raw, format, content: None };
    if !read_content || !matches!(format, ReferrerFormat::SigstoreBundle | ReferrerFormat::DsseEnvelope) {
        return Ok(referrer);
    }
    let Some(layer) = referrer.layers().first().cloned() else {
        return Ok(referrer);
    };
    let bytes = repo.get_blob(&layer, limits.max_blob_bytes).await.map_err(|e| e.context(&what))?;
    referrer.content = Some(match format {
        ReferrerFormat::SigstoreBundle => {
            let bundle = Bundle::parse(&bytes).map_err(|e| e.context(&what))?;
            let statement = match bundle.dsse_envelope() {
                Some(env) if env.is_in_toto() => Some(Statement::parse(&env.payload).map_err(|e| e.context(&what))?),
                _ => None,
            };
            ReferrerContent::Bundle { bytes, bundle: Box::new(bundle), statement }
        }
        _ => {
            let envelope = Envelope::parse(&bytes).map_err(|e| e.context(&what))?;
            let statement = Statement::parse(&envelope.payload).map_err(|e| e.context(&what))?;
            ReferrerContent::Dsse { bytes, envelope, statement }
        }
    });
    Ok(referrer)
}

/// A BuildKit attestation manifest stored inside an image index.
#[derive(Clone, Debug)]
pub struct BuildkitAttestation {
    /// The index entry.
    pub descriptor: Descriptor,
    /// The platform manifest it describes (`vnd.docker.reference.digest`).
    pub describes: Option<Digest>,
    /// The manifest as served.
    pub raw: RawManifest,
    /// `in-toto.io/predicate-type` of each in-toto layer.
    pub predicate_types: Vec<String>,
}

/// True for index entries that are BuildKit attestation manifests.
pub fn is_buildkit_attestation(entry: &Descriptor) -> bool {
    entry.is_buildkit_attestation()
}

/// Fetch a BuildKit attestation manifest named by an index entry.
pub async fn read_buildkit_attestation<R: Repository>(repo: &R, entry: &Descriptor) -> Result<BuildkitAttestation> {
    let what = format!("BuildKit attestation manifest {}", entry.digest.short());
    let raw =
        repo.get_manifest(&entry.digest.to_string()).await.map_err(|e| e.context(&what))?.ok_or_else(|| {
            Error::new(crate::ErrorKind::NotFound, format!("{what}: listed in the index but missing"))
        })?;
    let predicate_types = match &raw.manifest {
        Manifest::Image(m) => m
            .layers
            .iter()
            .filter(|l| l.media_type == mt::IN_TOTO)
            .filter_map(|l| l.annotation(ann::IN_TOTO_PREDICATE_TYPE).map(str::to_owned))
            .collect(),
        _ => return Err(Error::invalid_format(format!("{what}: not an image manifest"))),
    };
    let describes = entry.annotation(ann::DOCKER_REFERENCE_DIGEST).and_then(|d| d.parse().ok());
    Ok(BuildkitAttestation { descriptor: entry.clone(), describes, raw, predicate_types })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::oci::ImageManifest;

    fn corpus(path: &str) -> Vec<u8> {
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus").join(path);
        std::fs::read(&full).unwrap_or_else(|e| {
            panic!(
                "this test reads the shared corpus ({}): {e}; ../shared must sit beside the repository",
                full.display()
            )
        })
    }

    fn manifest(path: &str) -> Manifest {
        Manifest::parse(&corpus(path), None).unwrap().0
    }

    /// DSSE referrers of other tools name the envelope by their artifactType whatever their layer says.
    #[test]
    fn classifies_dsse_referrers_by_artifact_type() {
        let with = |artifact_type: &str, layer: &str| {
            let m = ImageManifest {
                schema_version: 2,
                media_type: Some(mt::OCI_MANIFEST.into()),
                artifact_type: Some(artifact_type.into()),
                config: Descriptor::empty_config(),
                layers: vec![Descriptor::of(layer, b"{}")],
                subject: None,
                annotations: Default::default(),
                extra: Default::default(),
            };
            classify(&Manifest::Image(m))
        };
        for t in [mt::IN_TOTO, mt::DSSE_ENVELOPE, "application/vnd.in-toto.provenance+dsse"] {
            assert_eq!(with(t, "application/json"), ReferrerFormat::DsseEnvelope, "{t}");
        }
        assert_eq!(with(mt::BUNDLE_V02, mt::BUNDLE_V02), ReferrerFormat::SigstoreBundle);
        assert_eq!(with("application/spdx+json", "application/spdx+json"), ReferrerFormat::Other);
        assert_eq!(with("application/vnd.in-toto.provenance+json", "application/json"), ReferrerFormat::Other);
    }

    #[test]
    fn classifies_real_referrers() {
        let bundle = manifest("sigstore-oci-writer/referrer-manifest-03947ef44bf6.json");
        assert_eq!(classify(&bundle), ReferrerFormat::SigstoreBundle);
        assert_eq!(writer_hint(&bundle), Some("@sigstore/oci"));
        let ghcr = manifest(
            "toddysm-cssc-pipeline/oci/reference-types/ghcr/manifest-sha256-3509574b5d31278498e5b0b3b5452ae30eb40478e02794173f6539ec5a8a5fca.json",
        );
        assert_eq!(classify(&ghcr), ReferrerFormat::ConfigTyped);
        let zot = manifest(
            "toddysm-cssc-pipeline/oci/reference-types/zot/manifest-sha256-1cc2ea6a8c4005d6bca78d210dc8ae1ff2c8184bfb16f0a107fff2a0a8fda871.json",
        );
        assert_eq!(classify(&zot), ReferrerFormat::ArtifactManifest);
        let legacy = manifest("sigstore-oci-writer/legacy-att-manifest.json");
        assert_eq!(classify(&legacy), ReferrerFormat::Other);
    }
}
