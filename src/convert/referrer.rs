//! Legacy layer → referrer(s): the Sigstore bundle v0.3 per signature (FORMATS §2.6) and its manifest
//! (§2.1–2.2), or the zero-copy DSSE referrer.

use bytes::Bytes;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::model::bundle::{
    Bundle, BundleContent, BundleVersion, PublicKeyIdentifier, VerificationKey, VerificationMaterial, X509Certificate,
};
use crate::model::cosign::LegacyLayerAnnotations;
use crate::model::digest::Digest;
use crate::model::dsse::Envelope;
use crate::model::intoto::Statement;
use crate::model::media_type::{self as mt, annotations as keys};
use crate::model::oci::{Annotations, Descriptor, ImageManifest, to_canonical_bytes};
use crate::model::predicate::{hint_predicate, predicate_outline};

use super::annotations as ours;
use super::created::{self, Created};
use super::input::{LegacyLayerInput, ReferrerSubject, Verified, VerifiedKey};
use super::outcome::{BlockedReason, Conversion, LayerSource, Note, SignatureOutcome};
use super::tlog::{self, Binding};
use crate::model::referrers_index::referrer_entry;

/// Which kind of referrer to write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// One Sigstore bundle v0.3 per DSSE signature (what cosign v3 and GitHub write and read).
    #[default]
    Bundle,
    /// Zero-copy: one referrer per layer pointing at the existing DSSE envelope blob
    /// (`artifactType: application/vnd.in-toto+json`, as cosign's DSSE referrer writer uses). Not read
    /// by cosign v3's bundle verification.
    Dsse,
}

/// A blob the referrer needs that does not exist yet.
#[derive(Clone, Debug, PartialEq)]
pub struct NewBlob {
    /// Its descriptor as the manifest lists it.
    pub descriptor: Descriptor,
    /// Its bytes.
    pub bytes: Bytes,
}

/// A manifest we write: the parsed form and its canonical bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct WrittenManifest {
    /// The manifest.
    pub manifest: ImageManifest,
    /// Its canonical bytes (what is pushed).
    pub bytes: Bytes,
    /// Digest of `bytes`.
    pub digest: Digest,
}

impl WrittenManifest {
    fn new(manifest: ImageManifest) -> WrittenManifest {
        let bytes = Bytes::from(to_canonical_bytes(&manifest));
        let digest = Digest::sha256(&bytes);
        WrittenManifest { manifest, bytes, digest }
    }

    /// The manifest's media type (always an OCI image manifest).
    pub fn media_type(&self) -> &'static str {
        mt::OCI_MANIFEST
    }

    /// Its descriptor (media type, digest, size).
    pub fn descriptor(&self) -> Descriptor {
        let mut d = Descriptor::of(mt::OCI_MANIFEST, b"");
        d.digest = self.digest.clone();
        d.size = self.bytes.len() as u64;
        d
    }
}

/// One referrer ready to write: push `blobs`, make sure `reused` blobs exist in the target repository,
/// then push `manifest` by digest.
#[derive(Clone, Debug)]
pub struct NewReferrer {
    /// Bundle or DSSE.
    pub format: OutputFormat,
    /// The referrer manifest.
    pub manifest: WrittenManifest,
    /// Blobs to upload, in manifest order (config, then the bundle).
    pub blobs: Vec<NewBlob>,
    /// Existing blobs the manifest refers to (the legacy envelope, for DSSE referrers).
    pub reused: Vec<Descriptor>,
    /// The bundle, for bundle referrers.
    pub bundle: Option<Bundle>,
}

impl NewReferrer {
    /// The manifest descriptor (media type, digest, size).
    pub fn descriptor(&self) -> Descriptor {
        self.manifest.descriptor()
    }

    /// The entry for the referrers tag-schema index: the descriptor with `artifactType` and all
    /// manifest annotations.
    pub fn index_entry(&self) -> Descriptor {
        referrer_entry(&self.descriptor(), &self.manifest.manifest)
    }

    /// The bundle blob, for bundle referrers.
    pub fn bundle_blob(&self) -> Option<&NewBlob> {
        self.blobs.iter().find(|b| b.descriptor.media_type == mt::BUNDLE_V03)
    }
}

/// Convert one legacy `.att` layer.
///
/// Bundle format: one outcome per envelope signature, in envelope order (a bundle holds exactly one).
/// DSSE format: one outcome for the layer. Errors are reserved for inputs that are wrong rather than
/// unconvertible: bytes that are not the layer, an unparsable envelope, a statement about another image,
/// or a log entry that does not bind to the signature (FORMATS §2.6 cross-check).
pub fn convert_layer(
    subject: &ReferrerSubject,
    att: &LegacyLayerInput<'_>,
    verified: &Verified,
    format: OutputFormat,
) -> Result<Vec<SignatureOutcome>> {
    let what = || {
        format!(
            "converting layer {} ({}) of legacy manifest {}",
            att.layer_index,
            att.layer.digest.short(),
            att.legacy_manifest.short()
        )
    };
    let layer = Layer::read(subject, att, verified).map_err(|e| e.context(what()))?;
    match format {
        OutputFormat::Dsse => Ok(vec![layer.dsse_outcome(subject, att, verified)]),
        OutputFormat::Bundle => (0..layer.envelope.signatures.len())
            .map(|i| layer.bundle_outcome(subject, att, verified, i))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| e.context(what())),
    }
}

/// A legacy layer, checked once for all its signatures.
struct Layer<'a> {
    envelope: &'a Envelope,
    statement: &'a Statement,
    annotations: LegacyLayerAnnotations,
    created: Option<Created>,
    /// The content hint of the predicate (parsed once here, not once per signature).
    hint: String,
    /// The layer's media type when it is not the DSSE envelope type (read by content all the same).
    odd_media_type: Option<String>,
}

impl<'a> Layer<'a> {
    fn read(subject: &ReferrerSubject, att: &LegacyLayerInput<'a>, verified: &Verified) -> Result<Layer<'a>> {
        let bytes = att.signed.bytes();
        if bytes.len() as u64 != att.layer.size {
            return Err(Error::new(
                ErrorKind::DigestMismatch,
                format!("the bytes given are {} long, the layer descriptor says {}", bytes.len(), att.layer.size),
            ));
        }
        att.layer.digest.verify(bytes)?;
        let (envelope, statement) = (att.signed.envelope(), att.signed.statement());
        if envelope.signatures.is_empty() {
            return Err(Error::invalid_format("the DSSE envelope has no signatures"));
        }
        if !statement.matches(subject.digest()) {
            return Err(Error::new(
                ErrorKind::VerificationFailed,
                format!(
                    "the signed statement is not about the subject {}: no statement subject has its digest",
                    subject.digest()
                ),
            ));
        }
        let count = envelope.signatures.len();
        for (n, v) in verified.signatures.iter().enumerate() {
            if v.index >= count {
                return Err(Error::invalid_input(format!(
                    "verified signature {} does not exist: the envelope has {count}",
                    v.index
                )));
            }
            if verified.signatures[..n].iter().any(|w| w.index == v.index) {
                return Err(Error::invalid_input(format!("signature {} is listed as verified twice", v.index)));
            }
        }
        let annotations = LegacyLayerAnnotations::from_descriptor(att.layer);
        let integrated_time = verified.rekor_bundle.as_ref().map(|b| b.payload.integrated_time);
        let outline = predicate_outline(statement);
        let created =
            created::derive_outlined(integrated_time, &statement.predicate_type, outline.as_ref(), att.config_created);
        let odd_media_type = (att.layer.media_type != crate::model::media_type::DSSE_ENVELOPE)
            .then(|| att.layer.media_type.chars().take(200).collect());
        let hint = hint_predicate(&statement.predicate_type, outline.as_ref()).id();
        Ok(Layer { envelope, statement, annotations, created, hint, odd_media_type })
    }

    fn source(&self, att: &LegacyLayerInput<'_>, signature_index: Option<usize>) -> LayerSource {
        LayerSource {
            legacy_manifest: att.legacy_manifest.clone(),
            layer_index: att.layer_index,
            layer_digest: att.layer.digest.clone(),
            layer_size: att.layer.size,
            signature_index,
            signature_count: self.envelope.signatures.len(),
        }
    }

    fn outcome(&self, source: LayerSource, result: Conversion, notes: Vec<Note>) -> SignatureOutcome {
        SignatureOutcome {
            source,
            predicate_type: self.statement.predicate_type.clone(),
            created: self.created.clone(),
            result,
            notes,
        }
    }

    fn common_notes(&self) -> Vec<Note> {
        let mut notes = Vec::new();
        if let Some(media_type) = &self.odd_media_type {
            notes.push(Note::LayerMediaTypeIgnored { media_type: media_type.clone() });
        }
        match &self.annotations.predicate_type {
            Some(a) if *a != self.statement.predicate_type => {
                notes.push(Note::PredicateTypeAnnotationIgnored { annotation: a.chars().take(200).collect() })
            }
            _ => {}
        }
        notes
    }

    fn bundle_notes(&self, verified: &Verified) -> Vec<Note> {
        let mut notes = self.common_notes();
        if self.annotations.rfc3161_timestamp.is_some() {
            notes.push(Note::Rfc3161TimestampDropped);
        }
        if self.annotations.chain_pem.as_deref().is_some_and(|c| !c.trim().is_empty()) {
            notes.push(Note::CertificateChainDropped);
        }
        if self.annotations.bundle.is_some() && verified.rekor_bundle.is_none() {
            notes.push(Note::LogEntryNotCarried);
        }
        let count = self.envelope.signatures.len();
        if count > 1 {
            notes.push(Note::EnvelopeSplit { signatures: count });
        }
        notes
    }

    /// The manifest annotations shared by both formats: created time and provenance.
    fn base_annotations(&self, att: &LegacyLayerInput<'_>, signature_index: Option<usize>) -> Annotations {
        let mut a = Annotations::new();
        if let Some(c) = &self.created {
            a.insert(keys::OCI_CREATED.into(), c.time.clone());
        }
        a.insert(ours::LEGACY_MANIFEST.into(), att.legacy_manifest.to_string());
        a.insert(ours::LEGACY_LAYER.into(), att.layer_index.to_string());
        a.insert(ours::LEGACY_LAYER_DIGEST.into(), att.layer.digest.to_string());
        if let Some(i) = signature_index.filter(|_| self.envelope.signatures.len() > 1) {
            a.insert(ours::SIGNATURE_INDEX.into(), i.to_string());
        }
        a.insert(ours::CONTENT_HINT.into(), self.hint.clone());
        a
    }

    fn bundle_outcome(
        &self,
        subject: &ReferrerSubject,
        att: &LegacyLayerInput<'_>,
        verified: &Verified,
        index: usize,
    ) -> Result<SignatureOutcome> {
        let source = self.source(att, Some(index));
        let notes = self.bundle_notes(verified);
        let blocked =
            |reason| Ok(self.outcome(self.source(att, Some(index)), Conversion::Blocked(reason), notes.clone()));
        let Some(key) = verified.signatures.iter().find(|v| v.index == index).map(|v| &v.key) else {
            return blocked(BlockedReason::NotVerified);
        };
        let signature = &self.envelope.signatures[index];
        let tlog_entries = match &verified.rekor_bundle {
            None if key.is_certificate() => return blocked(BlockedReason::MissingTransparencyLogEntry),
            None => Vec::new(),
            Some(legacy) => {
                let binding = Binding {
                    layer_digest: &att.layer.digest,
                    payload: &self.envelope.payload,
                    signature: &signature.sig,
                    key,
                };
                match tlog::map_entry(legacy, verified.inclusion_proof.as_ref(), &binding)
                    .map_err(|e| e.context(format!("signature {index}")))?
                {
                    Ok(entry) => vec![entry],
                    Err(reason) => return blocked(reason),
                }
            }
        };
        let bundle = Bundle {
            version: BundleVersion::V0_3,
            verification_material: VerificationMaterial {
                key: verification_key(key),
                tlog_entries,
                timestamp_verification_data: None,
            },
            content: BundleContent::DsseEnvelope(Envelope {
                payload_type: self.envelope.payload_type.clone(),
                payload: self.envelope.payload.clone(),
                signatures: vec![signature.clone()],
            }),
        };
        let bundle_bytes = Bytes::from(bundle.to_json());
        let mut layer = Descriptor::of(mt::BUNDLE_V03, &bundle_bytes);
        let title = format!("{}-{}.sigstore.json", layer.digest.algorithm().as_str(), layer.digest.hex());
        layer.annotations.insert(keys::OCI_TITLE.into(), title);

        let mut annotations = self.base_annotations(att, Some(index));
        annotations.insert(keys::BUNDLE_CONTENT.into(), super::CONTENT_DSSE_ENVELOPE.into());
        annotations.insert(keys::BUNDLE_PREDICATE_TYPE.into(), self.statement.predicate_type.clone());
        let config = Descriptor::empty_config();
        let manifest = artifact_manifest(mt::BUNDLE_V03, &config, &layer, subject, annotations);
        let referrer = NewReferrer {
            format: OutputFormat::Bundle,
            manifest,
            blobs: vec![
                NewBlob { descriptor: config, bytes: Bytes::from_static(b"{}") },
                NewBlob { descriptor: layer, bytes: bundle_bytes },
            ],
            reused: Vec::new(),
            bundle: Some(bundle),
        };
        Ok(self.outcome(source, Conversion::Converted(Box::new(referrer)), notes))
    }

    fn dsse_outcome(
        &self,
        subject: &ReferrerSubject,
        att: &LegacyLayerInput<'_>,
        verified: &Verified,
    ) -> SignatureOutcome {
        let source = self.source(att, None);
        let notes = self.common_notes();
        if verified.signatures.is_empty() {
            return self.outcome(source, Conversion::Blocked(BlockedReason::NotVerified), notes);
        }
        // The legacy layer exactly as listed, annotations included: they are the envelope's legacy
        // verification material (certificate, Rekor bundle), as cosign's own DSSE referrer writer keeps them.
        let mut layer = Descriptor::of(mt::DSSE_ENVELOPE, b"");
        layer.digest = att.layer.digest.clone();
        layer.size = att.layer.size;
        layer.annotations = att.layer.annotations.clone();

        let mut annotations = self.base_annotations(att, None);
        annotations.insert(keys::IN_TOTO_PREDICATE_TYPE.into(), self.statement.predicate_type.clone());
        let config = Descriptor::empty_config();
        let manifest = artifact_manifest(mt::IN_TOTO, &config, &layer, subject, annotations);
        let referrer = NewReferrer {
            format: OutputFormat::Dsse,
            manifest,
            blobs: vec![NewBlob { descriptor: config, bytes: Bytes::from_static(b"{}") }],
            reused: vec![layer],
            bundle: None,
        };
        self.outcome(source, Conversion::Converted(Box::new(referrer)), notes)
    }
}

fn verification_key(key: &VerifiedKey) -> VerificationKey {
    match key {
        VerifiedKey::PublicKey { .. } => {
            VerificationKey::PublicKey(PublicKeyIdentifier { hint: key.hint().unwrap_or_default() })
        }
        VerifiedKey::Certificate { der } => VerificationKey::Certificate(X509Certificate { raw_bytes: der.clone() }),
    }
}

/// An OCI 1.1 artifact manifest around one layer, pointing at `subject` (image-spec's artifact guidance:
/// `artifactType` set, empty config).
fn artifact_manifest(
    artifact_type: &str,
    config: &Descriptor,
    layer: &Descriptor,
    subject: &ReferrerSubject,
    annotations: Annotations,
) -> WrittenManifest {
    WrittenManifest::new(ImageManifest {
        schema_version: 2,
        media_type: Some(mt::OCI_MANIFEST.into()),
        artifact_type: Some(artifact_type.into()),
        config: config.clone(),
        layers: vec![layer.clone()],
        subject: Some(subject.descriptor().clone()),
        annotations,
        extra: Default::default(),
    })
}
