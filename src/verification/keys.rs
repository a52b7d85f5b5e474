//! Public keys as cosign users hand them over: PEM `PUBLIC KEY` (SPKI) files.
//!
//! The algorithm is taken from the SPKI, and the hash from the curve, as cosign does: P-256 with SHA-256,
//! P-384 with SHA-384, P-521 with SHA-512; RSA always with SHA-256, trying PKCS#1 v1.5 first and then PSS
//! (cosign's RSA verifier accepts either); Ed25519 as pure EdDSA. Every parsed key is checked once so a
//! bad key fails when loaded, not on first use.

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};
use x509_cert::der::Decode;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::spki::SubjectPublicKeyInfoRef;

use crate::error::{Error, ErrorKind, Result};
use crate::model::pem;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// URI schemes cosign resolves through a cloud KMS; we never call a KMS, the user exports the key instead.
const KMS_SCHEMES: [&str; 4] = ["awskms://", "gcpkms://", "azurekms://", "hashivault://"];

/// The key type and the hash cosign pairs with it. Serialised as a short string: `ecdsa-p256`,
/// `ecdsa-p384`, `ecdsa-p521`, `ed25519`, `rsa-<bits>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256, verified with SHA-256.
    EcdsaP256,
    /// ECDSA on P-384, verified with SHA-384.
    EcdsaP384,
    /// ECDSA on P-521, verified with SHA-512.
    EcdsaP521,
    /// Ed25519 (pure EdDSA over the message).
    Ed25519,
    /// RSA with SHA-256 (PKCS#1 v1.5 or PSS); the modulus size in bits.
    Rsa {
        /// Modulus size in bits (2048–8192 accepted).
        bits: usize,
    },
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyAlgorithm::EcdsaP256 => f.write_str("ECDSA P-256/SHA-256"),
            KeyAlgorithm::EcdsaP384 => f.write_str("ECDSA P-384/SHA-384"),
            KeyAlgorithm::EcdsaP521 => f.write_str("ECDSA P-521/SHA-512"),
            KeyAlgorithm::Ed25519 => f.write_str("Ed25519"),
            KeyAlgorithm::Rsa { bits } => write!(f, "RSA-{bits}/SHA-256"),
        }
    }
}

impl serde::Serialize for KeyAlgorithm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            KeyAlgorithm::EcdsaP256 => s.serialize_str("ecdsa-p256"),
            KeyAlgorithm::EcdsaP384 => s.serialize_str("ecdsa-p384"),
            KeyAlgorithm::EcdsaP521 => s.serialize_str("ecdsa-p521"),
            KeyAlgorithm::Ed25519 => s.serialize_str("ed25519"),
            KeyAlgorithm::Rsa { bits } => s.collect_str(&format_args!("rsa-{bits}")),
        }
    }
}

/// The RSA signature encoding that matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RsaPadding {
    /// RSASSA-PKCS1-v1_5.
    Pkcs1v15,
    /// RSASSA-PSS (MGF1 with the same hash, salt length = hash length).
    Pss,
}

impl fmt::Display for RsaPadding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RsaPadding::Pkcs1v15 => "PKCS#1 v1.5",
            RsaPadding::Pss => "PSS",
        })
    }
}

/// What verified a signature: the key's algorithm and, for RSA, the padding that matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureScheme {
    /// The key's algorithm.
    pub algorithm: KeyAlgorithm,
    /// The RSA padding that matched; `None` for non-RSA keys.
    pub rsa_padding: Option<RsaPadding>,
    /// The message hash that matched (`sha256`, `sha384`, `sha512`); `None` for Ed25519.
    pub hash: Option<&'static str>,
}

/// A parsed, usable public key with its cosign key id.
#[derive(Clone)]
pub struct PublicKey {
    spki_der: Vec<u8>,
    algorithm: KeyAlgorithm,
    key_id: String,
    // RSA needs one parsed key per padding; other algorithms use only the first.
    verifiers: Vec<(ParsedPublicKey, Option<RsaPadding>, Option<&'static str>)>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey").field("algorithm", &self.algorithm).field("key_id", &self.key_id).finish()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}

impl Eq for PublicKey {}

/// cosign's key hint: std-base64(SHA-256(SPKI DER)).
pub fn key_id_of(spki_der: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(spki_der))
}

/// Reject key references cosign would resolve through a KMS, with instructions to export the key.
///
/// Returns `Ok(())` for anything that is not a KMS URI (a path, PEM text, …).
pub fn reject_kms_reference(reference: &str) -> Result<()> {
    let trimmed = reference.trim();
    if let Some(scheme) = KMS_SCHEMES.iter().find(|s| trimmed.starts_with(**s)) {
        return Err(Error::invalid_input(format!(
            "key `{trimmed}` is a {} KMS reference; att2ref verifies offline and never calls a KMS. Export \
             the public key once with `cosign public-key --key {trimmed} > key.pub` and pass key.pub instead",
            scheme.trim_end_matches("://")
        )));
    }
    Ok(())
}

impl PublicKey {
    /// Parse PEM text holding one `PUBLIC KEY` block (cosign's `key.pub` / `cosign public-key` output).
    pub fn from_pem(text: &[u8]) -> Result<PublicKey> {
        let text = std::str::from_utf8(text).map_err(|_| Error::invalid_format("public key: PEM text is not UTF-8"))?;
        reject_kms_reference(text)?;
        let blocks = pem::decode_all(text).map_err(|e| e.context("public key"))?;
        let Some(block) = blocks.first() else {
            return Err(Error::invalid_format(
                "public key: no PEM block found (expected `-----BEGIN PUBLIC KEY-----`)",
            ));
        };
        match block.label.as_str() {
            "PUBLIC KEY" => PublicKey::from_spki_der(&block.der),
            "RSA PUBLIC KEY" => Err(Error::invalid_format(
                "public key: PKCS#1 `RSA PUBLIC KEY` PEM is not accepted; convert it to SPKI with \
                 `openssl rsa -RSAPublicKey_in -pubout`",
            )),
            other => Err(Error::invalid_format(format!(
                "public key: PEM label is `{other}`, expected `PUBLIC KEY` (an SPKI public key)"
            ))),
        }
    }

    /// Parse a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey> {
        let spki = SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| Error::invalid_format(format!("public key: not a DER SubjectPublicKeyInfo: {e}")))?;
        let bits = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| Error::invalid_format("public key: SubjectPublicKeyInfo key bit string has unused bits"))?;
        let oid = spki.algorithm.oid;
        let (algorithm, verifiers) = if oid == OID_EC_PUBLIC_KEY {
            let curve: ObjectIdentifier = spki
                .algorithm
                .parameters
                .as_ref()
                .ok_or_else(|| Error::invalid_format("public key: EC key without curve parameters"))?
                .decode_as()
                .map_err(|e| Error::invalid_format(format!("public key: EC curve is not a named curve: {e}")))?;
            // The curve's own hash first (sigstore-go, the spec's key details); then SHA-256, which cosign's
            // key-file verifiers use on every curve, so legacy P-384/P-521 signatures verify too.
            type Alg = &'static signature::EcdsaVerificationAlgorithm;
            let (alg, params): (KeyAlgorithm, [(Alg, &'static str); 2]) = match curve {
                c if c == OID_P256 => (
                    KeyAlgorithm::EcdsaP256,
                    [(&signature::ECDSA_P256_SHA256_ASN1, "sha256"), (&signature::ECDSA_P256_SHA256_ASN1, "sha256")],
                ),
                c if c == OID_P384 => (
                    KeyAlgorithm::EcdsaP384,
                    [(&signature::ECDSA_P384_SHA384_ASN1, "sha384"), (&signature::ECDSA_P384_SHA256_ASN1, "sha256")],
                ),
                c if c == OID_P521 => (
                    KeyAlgorithm::EcdsaP521,
                    [(&signature::ECDSA_P521_SHA512_ASN1, "sha512"), (&signature::ECDSA_P521_SHA256_ASN1, "sha256")],
                ),
                c => {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!("public key: EC curve {c} is not supported (P-256, P-384, P-521 are)"),
                    ));
                }
            };
            let mut verifiers = vec![(parse(params[0].0, bits)?, None, Some(params[0].1))];
            if params[1].1 != params[0].1 {
                verifiers.push((parse(params[1].0, bits)?, None, Some(params[1].1)));
            }
            (alg, verifiers)
        } else if oid == OID_ED25519 {
            (KeyAlgorithm::Ed25519, vec![(parse(&signature::ED25519, bits)?, None, None)])
        } else if oid == OID_RSA {
            let pkcs1 = parse(&signature::RSA_PKCS1_2048_8192_SHA256, bits)?;
            let pss = parse(&signature::RSA_PSS_2048_8192_SHA256, bits)?;
            let size = rsa_modulus_bits(bits)?;
            if !(2048..=8192).contains(&size) {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!("public key: RSA modulus of {size} bits is outside the accepted 2048–8192"),
                ));
            }
            (
                KeyAlgorithm::Rsa { bits: size },
                vec![(pkcs1, Some(RsaPadding::Pkcs1v15), Some("sha256")), (pss, Some(RsaPadding::Pss), Some("sha256"))],
            )
        } else {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("public key: algorithm {oid} is not supported (ECDSA, Ed25519 and RSA are)"),
            ));
        };
        Ok(PublicKey { spki_der: der.to_vec(), algorithm, key_id: key_id_of(der), verifiers })
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The key type.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// cosign's key id: std-base64(SHA-256(SPKI DER)), the bundle `publicKey.hint`.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Verify `signature` over `message`; `None` if it does not verify under this key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Option<SignatureScheme> {
        self.verifiers
            .iter()
            .find(|(key, _, _)| key.verify_sig(message, signature).is_ok())
            .map(|(_, padding, hash)| SignatureScheme { algorithm: self.algorithm, rsa_padding: *padding, hash: *hash })
    }

    /// Verify `signature` over a message known only by its SHA-256 digest (a bundle `messageSignature`
    /// without the artifact). Every key type but Ed25519 (which signs the message itself) can do this;
    /// Ed25519 returns `None`.
    pub fn verify_sha256_prehashed(&self, sha256: &[u8], signature: &[u8]) -> Option<SignatureScheme> {
        if self.algorithm == KeyAlgorithm::Ed25519 {
            return None;
        }
        let digest = digest::Digest::import_less_safe(sha256, &digest::SHA256).ok()?;
        self.verifiers
            .iter()
            .filter(|(_, _, hash)| *hash == Some("sha256"))
            .find(|(key, _, _)| key.verify_digest_sig(&digest, signature).is_ok())
            .map(|(_, padding, hash)| SignatureScheme { algorithm: self.algorithm, rsa_padding: *padding, hash: *hash })
    }
}

fn parse(alg: &'static dyn signature::VerificationAlgorithm, bits: &[u8]) -> Result<ParsedPublicKey> {
    ParsedPublicKey::new(alg, bits).map_err(|e| Error::invalid_format(format!("public key: rejected: {e}")))
}

// The modulus size of a PKCS#1 RSAPublicKey (SEQUENCE { modulus INTEGER, exponent INTEGER }).
fn rsa_modulus_bits(rsa_public_key: &[u8]) -> Result<usize> {
    use x509_cert::der::asn1::UintRef;
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }: a SEQUENCE OF two INTEGERs.
    let key = Vec::<UintRef<'_>>::from_der(rsa_public_key)
        .map_err(|e| Error::invalid_format(format!("public key: malformed RSA public key: {e}")))?;
    let m = key
        .first()
        .filter(|_| key.len() == 2)
        .ok_or_else(|| Error::invalid_format("public key: RSA public key is not (modulus, exponent)"))?
        .as_bytes();
    let lead = m.first().map_or(0, |b| 8 - b.leading_zeros() as usize);
    Ok(m.len().saturating_sub(1) * 8 + lead)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p384_signatures_hashed_with_sha256_verify_as_cosign_key_files_make_them() {
        // openssl dgst -sha256 -sign fixtures/keys/ecdsa-p384.pkcs8.pem (test-only key).
        let pem = include_bytes!("../../fixtures/keys/ecdsa-p384.pub.pem");
        let sig = crate::model::dsse::decode_base64_any(
            "MGUCMEkKTwzUZEZ7sNN7itolXExm3HW7ziaKznnsETJ/CtpsGsVIwMrNqOZW3rNyOos7iwIxAKrWu2AYhinKBVrPRhGd/WAjg92S2y1XSf+J3wSFydAC6LUJlGie78boOE5zTSghuA==",
        )
        .unwrap();
        let key = PublicKey::from_pem(pem).unwrap();
        let scheme = key.verify(b"cosign signs with SHA-256 on every curve", &sig).expect("verifies");
        assert_eq!(scheme.hash, Some("sha256"));
        assert!(key.verify(b"another message", &sig).is_none());
    }
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
    use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};

    fn pem_of(der: &[u8]) -> Vec<u8> {
        use x509_cert::der::pem::{LineEnding, encode_string};
        encode_string("PUBLIC KEY", LineEnding::LF, der).unwrap().into_bytes()
    }

    #[test]
    fn ecdsa_curves_use_cosign_hashes() {
        let rng = SystemRandom::new();
        for (signing, alg) in [
            (&signature::ECDSA_P256_SHA256_ASN1_SIGNING, KeyAlgorithm::EcdsaP256),
            (&signature::ECDSA_P384_SHA384_ASN1_SIGNING, KeyAlgorithm::EcdsaP384),
            (&signature::ECDSA_P521_SHA512_ASN1_SIGNING, KeyAlgorithm::EcdsaP521),
        ] {
            let kp = EcdsaKeyPair::generate(signing).unwrap();
            let spki =
                aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(kp.public_key()).unwrap();
            let key = PublicKey::from_pem(&pem_of(spki.as_ref())).unwrap();
            assert_eq!(key.algorithm(), alg);
            let sig = kp.sign(&rng, b"hello").unwrap();
            let scheme = key.verify(b"hello", sig.as_ref()).unwrap();
            assert_eq!(scheme.rsa_padding, None);
            assert!(key.verify(b"hellO", sig.as_ref()).is_none());
            assert_eq!(key.key_id(), key_id_of(spki.as_ref()));
        }
    }

    #[test]
    fn ed25519_and_rsa_paddings() {
        let rng = SystemRandom::new();
        let ed = Ed25519KeyPair::generate().unwrap();
        let spki =
            aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(ed.public_key()).unwrap();
        let key = PublicKey::from_spki_der(spki.as_ref()).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Ed25519);
        assert!(key.verify(b"m", ed.sign(b"m").as_ref()).is_some());

        let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let spki =
            aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(rsa.public_key()).unwrap();
        let key = PublicKey::from_spki_der(spki.as_ref()).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Rsa { bits: 2048 });
        let mut sig = vec![0; rsa.public_modulus_len()];
        rsa.sign(&signature::RSA_PKCS1_SHA256, &rng, b"m", &mut sig).unwrap();
        assert_eq!(key.verify(b"m", &sig).unwrap().rsa_padding, Some(RsaPadding::Pkcs1v15));
        let prehash = Sha256::digest(b"m");
        assert!(key.verify_sha256_prehashed(&prehash, &sig).is_some());
        rsa.sign(&signature::RSA_PSS_SHA256, &rng, b"m", &mut sig).unwrap();
        assert_eq!(key.verify(b"m", &sig).unwrap().rsa_padding, Some(RsaPadding::Pss));
        assert!(key.verify(b"n", &sig).is_none());
    }

    #[test]
    fn kms_references_explain_export() {
        for uri in ["awskms://arn:aws:kms:us-west-2:1:key/abc", "gcpkms://projects/p/keys/k", "hashivault://k"] {
            let err = PublicKey::from_pem(uri.as_bytes()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.message().contains("cosign public-key --key"), "{err}");
        }
        assert!(reject_kms_reference("key.pub").is_ok());
    }

    #[test]
    fn hostile_input_is_an_error() {
        let cases = [
            (PublicKey::from_pem(b""), "no PEM block found"),
            (
                PublicKey::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
                "PEM label is `CERTIFICATE`, expected `PUBLIC KEY`",
            ),
            (PublicKey::from_spki_der(&[0x30, 0x03, 0x02, 0x01, 0x00]), "not a DER SubjectPublicKeyInfo"),
        ];
        for (result, want) in cases {
            let err = result.err().unwrap();
            assert_eq!(err.kind(), ErrorKind::InvalidFormat, "{err}");
            assert!(err.to_string().contains(want), "{want:?} not in {err}");
        }
    }
}
