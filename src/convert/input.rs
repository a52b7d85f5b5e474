//! What the engine hands to the conversion: the subject as served, the legacy layer as stored, and the
//! facts verification established about it.
//!
//! These types are deliberately small and independent of the verifier: the engine fills them from
//! whatever verification reported. Conversion trusts them for what only a verifier can check (signatures,
//! SETs, Merkle proofs) and re-checks everything cheap and pure (digests, subject, log-entry binding).

use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::model::media_type as mt;
use crate::model::oci::Descriptor;
use crate::model::rekor::RekorBundle;
use crate::model::signed_statement::SignedStatement;

use super::rekor::RekorEntry;

/// The image (or index) a referrer points at, exactly as the registry serves it.
///
/// Conversion takes a `&ReferrerSubject`, so it cannot run without one; and a `ReferrerSubject` is only
/// made from a served manifest's media type, digest and size, never guessed from a tag name.
#[derive(Clone, Debug, PartialEq)]
pub struct ReferrerSubject(Descriptor);

impl ReferrerSubject {
    /// A subject from the media type, digest and size the registry served. The media type must be a
    /// manifest or index type (a referrer's subject is a manifest), and the size non-zero.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Result<ReferrerSubject> {
        const MANIFEST_TYPES: [&str; 4] =
            [mt::OCI_MANIFEST, mt::OCI_INDEX, mt::DOCKER_MANIFEST, mt::DOCKER_MANIFEST_LIST];
        if !MANIFEST_TYPES.contains(&media_type) {
            let shown: String = media_type.chars().take(100).collect();
            return Err(Error::invalid_input(format!(
                "subject {digest}: media type {shown:?} is not a manifest or index media type; the subject must be \
                 described exactly as the registry serves it"
            )));
        }
        if size == 0 {
            return Err(Error::invalid_input(format!("subject {digest}: size 0 cannot describe a served manifest")));
        }
        let mut d = Descriptor::of(media_type, b"");
        d.digest = digest;
        d.size = size;
        Ok(ReferrerSubject(d))
    }

    /// A subject from a descriptor of the served manifest; only its media type, digest and size are kept.
    pub fn from_descriptor(descriptor: &Descriptor) -> Result<ReferrerSubject> {
        ReferrerSubject::new(&descriptor.media_type, descriptor.digest.clone(), descriptor.size)
    }

    /// The descriptor written as `subject`.
    pub fn descriptor(&self) -> &Descriptor {
        &self.0
    }

    /// The subject's digest.
    pub fn digest(&self) -> &Digest {
        &self.0.digest
    }
}

/// One legacy `.att` layer, as stored.
#[derive(Clone, Copy, Debug)]
pub struct LegacyLayerInput<'a> {
    /// Digest of the legacy `.att` manifest holding the layer.
    pub legacy_manifest: &'a Digest,
    /// Position of the layer in that manifest.
    pub layer_index: usize,
    /// The layer descriptor as the manifest lists it (with its cosign annotations).
    pub layer: &'a Descriptor,
    /// The layer's envelope, parsed from its exact bytes (which are checked against `layer`'s digest and
    /// size here), so the predicate type always comes from the signed payload.
    pub signed: &'a SignedStatement,
    /// The legacy config's `created` field, when the engine read it (cosign ~1.10–2.1 wrote the signing
    /// time there). Used only as the last source of the creation annotation.
    pub config_created: Option<&'a str>,
}

/// What verification established about one legacy layer.
#[derive(Clone, Debug, Default)]
pub struct Verified {
    /// The envelope signatures that verified, each with the key or certificate that verified it.
    /// Signatures not listed are reported as not verified and never converted.
    pub signatures: Vec<VerifiedSignature>,
    /// The layer's legacy Rekor entry (`dev.sigstore.cosign/bundle`) whose SET verified and which the
    /// verifier bound to this layer. `None` when the layer has none or the engine chose not to carry it.
    pub rekor_bundle: Option<RekorBundle>,
    /// That entry as fetched from Rekor (`GET /api/v1/log/entries?logIndex=N`), with an inclusion proof
    /// the engine has verified against the log's checkpoint. Required to carry a log entry into a v0.3
    /// bundle (FORMATS finding 1).
    pub inclusion_proof: Option<RekorEntry>,
}

/// One verified DSSE signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// Position of the signature in the envelope's `signatures`.
    pub index: usize,
    /// What verified it.
    pub key: VerifiedKey,
}

/// The verification material of a signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifiedKey {
    /// A public key the user supplied (`cosign --key`).
    PublicKey {
        /// The key's SubjectPublicKeyInfo DER.
        spki_der: Vec<u8>,
    },
    /// A certificate (keyless/Fulcio, or a user certificate): the leaf only; chains belong in the
    /// verifier's trusted root for v0.3 bundles.
    Certificate {
        /// The leaf certificate DER.
        der: Vec<u8>,
    },
}

impl VerifiedKey {
    /// The cosign/sigstore-go key hint: standard base64 of SHA-256 over the SPKI DER. `None` for
    /// certificates.
    pub fn hint(&self) -> Option<String> {
        match self {
            VerifiedKey::PublicKey { spki_der } => {
                Some(crate::model::dsse::encode_base64(&Digest::sha256(spki_der).raw()))
            }
            VerifiedKey::Certificate { .. } => None,
        }
    }

    /// True for certificates, which need a verified signing time (a log entry) to verify later.
    pub fn is_certificate(&self) -> bool {
        matches!(self, VerifiedKey::Certificate { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_needs_a_served_manifest_descriptor() {
        let digest = Digest::sha256(b"image");
        let s = ReferrerSubject::new(mt::OCI_MANIFEST, digest.clone(), 345).unwrap();
        assert_eq!(s.digest(), &digest);
        assert_eq!(s.descriptor().size, 345);
        assert!(ReferrerSubject::new(mt::DOCKER_MANIFEST, digest.clone(), 1).is_ok());

        for (media_type, size, want) in [
            ("", 345, "not a manifest or index media type"),
            (mt::OCI_CONFIG, 345, "not a manifest or index media type"),
            (mt::OCI_MANIFEST, 0, "size 0"),
        ] {
            let err = ReferrerSubject::new(media_type, digest.clone(), size).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
            assert!(err.to_string().contains(want), "{err}");
        }

        // Only media type, digest and size are kept from a descriptor.
        let mut d = Descriptor::of(mt::OCI_INDEX, b"{}");
        d.annotations.insert("x".into(), "y".into());
        d.artifact_type = Some("a/b".into());
        let s = ReferrerSubject::from_descriptor(&d).unwrap();
        assert!(s.descriptor().annotations.is_empty() && s.descriptor().artifact_type.is_none());
    }

    #[test]
    fn key_hint_is_base64_sha256_of_spki() {
        // The key of the corpus writer bundle is checked against its real hint in `convert::tests`.
        let key = VerifiedKey::PublicKey { spki_der: b"spki".to_vec() };
        assert_eq!(key.hint().unwrap(), "b+7MjBbFVR2f6z61934tp3O/aL2e+cUpJ86yyG5WiSs=");
        assert!(!key.is_certificate());
        let cert = VerifiedKey::Certificate { der: vec![0x30] };
        assert!(cert.hint().is_none() && cert.is_certificate());
    }
}
