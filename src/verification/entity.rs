//! The signed-entity abstraction: one shape for everything the verifier checks.
//!
//! Three adapters feed it: a legacy `.att` layer (DSSE envelope bytes plus cosign annotations), a legacy
//! `.sig` layer (simple-signing bytes plus annotations), and a Sigstore bundle. Each is reduced to the same
//! four things — what was signed, by which key or certificate, which log evidence, which timestamps — so
//! the verifier has one code path, as sigstore-go's `SignedEntity` interfaces do.

use std::borrow::Cow;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::model::bundle::{Bundle, BundleContent, BundleVersion, TransparencyLogEntry, VerificationKey};
use crate::model::cosign::LegacyLayerAnnotations;
use crate::model::dsse::Envelope;
use crate::model::intoto::Statement;
use crate::model::rekor::RekorBundle;
use crate::model::signed_statement::SignedStatement;

/// A legacy `.att` layer: the exact DSSE envelope bytes and the layer's annotations.
#[derive(Debug)]
pub struct LegacyAttestation {
    layer: AttestationBytes,
    /// The layer's cosign annotations.
    pub annotations: LegacyLayerAnnotations,
}

/// A legacy `.att` layer's blob, as given: bytes the verifier parses, or an envelope parsed already
/// (shared with the caller, who reads and converts the same layer).
#[derive(Debug)]
enum AttestationBytes {
    Raw(Vec<u8>),
    Parsed(Arc<SignedStatement>),
}

impl LegacyAttestation {
    /// The layer blob (the DSSE envelope JSON, byte-exact: log entries hash it).
    pub fn layer(&self) -> &[u8] {
        match &self.layer {
            AttestationBytes::Raw(bytes) => bytes,
            AttestationBytes::Parsed(signed) => signed.bytes(),
        }
    }
}

/// A legacy `.sig` layer: the exact simple-signing payload bytes and the layer's annotations (the
/// signature lives in `dev.cosignproject.cosign/signature`).
#[derive(Debug)]
pub struct LegacySignature {
    /// The layer blob (the simple-signing payload, byte-exact).
    pub layer: Vec<u8>,
    /// The layer's cosign annotations.
    pub annotations: LegacyLayerAnnotations,
}

/// A Sigstore bundle, with the signed artifact for message-signature bundles.
#[derive(Clone, Debug)]
pub struct BundleEntity {
    /// The parsed bundle.
    pub bundle: Bundle,
    /// For `messageSignature` bundles: the signed bytes (e.g. the simple-signing payload of a migrated
    /// `.sig`). Needed to bind the signature to an image; ignored for DSSE bundles.
    pub artifact: Option<Vec<u8>>,
}

/// Anything the verifier can check.
#[derive(Debug)]
pub enum SignedEntity {
    /// A legacy `.att` layer.
    LegacyAttestation(LegacyAttestation),
    /// A legacy `.sig` layer.
    LegacySignature(LegacySignature),
    /// A Sigstore bundle.
    Bundle(BundleEntity),
}

/// Which adapter an entity came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntityKind {
    /// Legacy `.att` layer.
    LegacyAttestation,
    /// Legacy `.sig` layer.
    LegacySignature,
    /// Sigstore bundle.
    Bundle,
}

impl SignedEntity {
    /// A legacy `.att` layer.
    pub fn legacy_attestation(layer: Vec<u8>, annotations: LegacyLayerAnnotations) -> SignedEntity {
        SignedEntity::LegacyAttestation(LegacyAttestation { layer: AttestationBytes::Raw(layer), annotations })
    }

    /// A legacy `.att` layer whose envelope the caller has parsed already: verified without parsing it
    /// again (what is checked is still what its bytes say: only [`SignedStatement::parse`] makes one).
    pub fn parsed_attestation(signed: Arc<SignedStatement>, annotations: LegacyLayerAnnotations) -> SignedEntity {
        SignedEntity::LegacyAttestation(LegacyAttestation { layer: AttestationBytes::Parsed(signed), annotations })
    }

    /// A legacy `.sig` layer.
    pub fn legacy_signature(layer: Vec<u8>, annotations: LegacyLayerAnnotations) -> SignedEntity {
        SignedEntity::LegacySignature(LegacySignature { layer, annotations })
    }

    /// A bundle (DSSE, or message signature without its artifact).
    pub fn bundle(bundle: Bundle) -> SignedEntity {
        SignedEntity::Bundle(BundleEntity { bundle, artifact: None })
    }

    /// A message-signature bundle with the bytes it signs.
    pub fn bundle_with_artifact(bundle: Bundle, artifact: Vec<u8>) -> SignedEntity {
        SignedEntity::Bundle(BundleEntity { bundle, artifact: Some(artifact) })
    }

    /// Which adapter this is.
    pub fn kind(&self) -> EntityKind {
        match self {
            SignedEntity::LegacyAttestation(_) => EntityKind::LegacyAttestation,
            SignedEntity::LegacySignature(_) => EntityKind::LegacySignature,
            SignedEntity::Bundle(_) => EntityKind::Bundle,
        }
    }
}

/// What was signed.
pub(crate) enum Content<'a> {
    /// A DSSE envelope; `raw` is the exact envelope bytes when known (legacy layers), `statement` the
    /// payload's statement when it was parsed already.
    Dsse { envelope: Cow<'a, Envelope>, raw: Option<&'a [u8]>, statement: Option<&'a Statement> },
    /// A signature over a message, known by its bytes (legacy `.sig`, bundle with artifact) and/or its
    /// SHA-256 digest.
    Message { payload: Option<&'a [u8]>, sha256: Vec<u8>, signature: Vec<u8> },
}

/// Who signed, as the entity claims it.
pub(crate) enum Material {
    /// A public key, optionally named by a hint.
    Key { hint: Option<String> },
    /// A certificate (DER). Intermediates the entity carries are not kept: chains are built only from
    /// the trusted root (see the verifier).
    Certificate { leaf: Vec<u8> },
}

/// The log evidence carried.
pub(crate) enum LogEvidence<'a> {
    None,
    /// The legacy `dev.sigstore.cosign/bundle` annotation (SET only).
    Legacy(&'a RekorBundle),
    /// Bundle entries, with the bundle's version (v0.2+ require proofs).
    Bundle {
        version: BundleVersion,
        entries: &'a [TransparencyLogEntry],
    },
}

/// The normalised view of one entity.
pub(crate) struct Normalized<'a> {
    pub kind: EntityKind,
    pub content: Content<'a>,
    pub material: Material,
    pub log: LogEvidence<'a>,
    /// Number of RFC 3161 timestamps carried (reported, not verified).
    pub timestamps: usize,
}

impl SignedEntity {
    /// Reduce to the common shape. Fails only on malformed input.
    pub(crate) fn normalize(&self) -> Result<Normalized<'_>> {
        match self {
            SignedEntity::LegacyAttestation(a) => {
                let content = match &a.layer {
                    AttestationBytes::Raw(bytes) => Content::Dsse {
                        envelope: Cow::Owned(
                            Envelope::parse(bytes).map_err(|e| e.context("legacy attestation layer"))?,
                        ),
                        raw: Some(bytes),
                        statement: None,
                    },
                    AttestationBytes::Parsed(signed) => Content::Dsse {
                        envelope: Cow::Borrowed(signed.envelope()),
                        raw: Some(signed.bytes()),
                        statement: Some(signed.statement()),
                    },
                };
                Ok(Normalized {
                    kind: EntityKind::LegacyAttestation,
                    content,
                    material: legacy_material(&a.annotations)?,
                    log: legacy_log(&a.annotations)?,
                    timestamps: legacy_timestamps(&a.annotations)?,
                })
            }
            SignedEntity::LegacySignature(s) => {
                let signature = s.annotations.signature_bytes()?.ok_or_else(|| {
                    Error::invalid_format("legacy signature layer: signature annotation is missing or empty")
                })?;
                Ok(Normalized {
                    kind: EntityKind::LegacySignature,
                    content: Content::Message {
                        payload: Some(&s.layer),
                        sha256: Sha256::digest(&s.layer).to_vec(),
                        signature,
                    },
                    material: legacy_material(&s.annotations)?,
                    log: legacy_log(&s.annotations)?,
                    timestamps: legacy_timestamps(&s.annotations)?,
                })
            }
            SignedEntity::Bundle(b) => normalize_bundle(b),
        }
    }
}

fn legacy_material(annotations: &LegacyLayerAnnotations) -> Result<Material> {
    Ok(match annotations.certificate_der()? {
        Some(leaf) => Material::Certificate { leaf },
        None => Material::Key { hint: None },
    })
}

fn legacy_log(annotations: &LegacyLayerAnnotations) -> Result<LogEvidence<'_>> {
    match &annotations.bundle {
        None => Ok(LogEvidence::None),
        Some(Ok(b)) => Ok(LogEvidence::Legacy(b)),
        Some(Err(e)) => Err(Error::new(e.kind(), e.to_string())),
    }
}

fn legacy_timestamps(annotations: &LegacyLayerAnnotations) -> Result<usize> {
    match &annotations.rfc3161_timestamp {
        None => Ok(0),
        Some(Ok(_)) => Ok(1),
        Some(Err(e)) => Err(Error::new(e.kind(), e.to_string())),
    }
}

fn normalize_bundle(b: &BundleEntity) -> Result<Normalized<'_>> {
    let bundle = &b.bundle;
    let vm = &bundle.verification_material;
    let material = match &vm.key {
        VerificationKey::PublicKey(k) => Material::Key { hint: (!k.hint.is_empty()).then(|| k.hint.clone()) },
        VerificationKey::Certificate(c) => Material::Certificate { leaf: c.raw_bytes.clone() },
        VerificationKey::X509CertificateChain(chain) => {
            let leaf = chain
                .certificates
                .first()
                .map(|c| c.raw_bytes.clone())
                .ok_or_else(|| Error::invalid_format("Sigstore bundle: x509CertificateChain is empty"))?;
            Material::Certificate { leaf }
        }
    };
    let content = match &bundle.content {
        BundleContent::DsseEnvelope(envelope) => {
            Content::Dsse { envelope: Cow::Borrowed(envelope), raw: None, statement: None }
        }
        BundleContent::MessageSignature(m) => {
            let artifact_digest = b.artifact.as_deref().map(|a| Sha256::digest(a).to_vec());
            // With the artifact at hand its own digest counts: `messageDigest` is not signed, and a wrong
            // artifact then fails the signature check.
            let sha256 = match (artifact_digest, &m.message_digest) {
                (Some(actual), _) => actual,
                (None, Some(d)) if d.algorithm == "SHA2_256" => d.digest.clone(),
                (None, Some(d)) => {
                    return Err(Error::invalid_format(format!(
                        "Sigstore bundle: messageDigest algorithm {:?} is not SHA2_256 and no artifact was given",
                        d.algorithm
                    )));
                }
                (None, None) => {
                    return Err(Error::invalid_format(
                        "Sigstore bundle: messageSignature has no messageDigest and no artifact was given",
                    ));
                }
            };
            Content::Message { payload: b.artifact.as_deref(), sha256, signature: m.signature.clone() }
        }
    };
    let timestamps = vm.timestamp_verification_data.as_ref().map_or(0, |t| t.rfc3161_timestamps.len());
    let log = if vm.tlog_entries.is_empty() {
        LogEvidence::None
    } else {
        LogEvidence::Bundle { version: bundle.version, entries: &vm.tlog_entries }
    };
    Ok(Normalized { kind: EntityKind::Bundle, content, material, log, timestamps })
}
