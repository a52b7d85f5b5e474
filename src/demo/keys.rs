//! The committed TEST-ONLY keys (`fixtures/keys/`, never to be trusted) and signing with them.
//!
//! Byte-stable data needs deterministic signatures: RSA PKCS#1 v1.5 and Ed25519 are; ECDSA and
//! RSA-PSS in aws-lc-rs draw fresh randomness per signature, so scenarios using them are marked
//! non-deterministic (still valid, just not byte-identical between runs).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};

use super::pem;
use crate::error::{Error, ErrorKind, Result};

macro_rules! key_files {
    ($name:literal) => {
        (
            include_str!(concat!("../../fixtures/keys/", $name, ".pkcs8.pem")),
            include_str!(concat!("../../fixtures/keys/", $name, ".pub.pem")),
        )
    };
}

/// One of the committed test keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TestKey {
    /// RSA 4096 bits (the article's key size).
    Rsa4096,
    /// RSA 2048 bits.
    Rsa2048,
    /// Ed25519.
    Ed25519,
    /// ECDSA on P-256.
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
    /// The test certificate authority's root key (Ed25519).
    CaRoot,
    /// The key of the Fulcio-like leaf certificate used by keyless-style entries (Ed25519).
    FulcioLeaf,
    /// The test transparency log's key (Ed25519; signs SETs deterministically).
    RekorEd25519,
    /// A test transparency log key of the kind the public Rekor v1 log uses (ECDSA P-256).
    RekorEcdsaP256,
}

impl TestKey {
    /// Every committed key.
    pub const ALL: [TestKey; 9] = [
        TestKey::Rsa4096,
        TestKey::Rsa2048,
        TestKey::Ed25519,
        TestKey::EcdsaP256,
        TestKey::EcdsaP384,
        TestKey::CaRoot,
        TestKey::FulcioLeaf,
        TestKey::RekorEd25519,
        TestKey::RekorEcdsaP256,
    ];

    /// The file stem under `fixtures/keys/`.
    pub fn name(self) -> &'static str {
        match self {
            TestKey::Rsa4096 => "rsa-4096",
            TestKey::Rsa2048 => "rsa-2048",
            TestKey::Ed25519 => "ed25519",
            TestKey::EcdsaP256 => "ecdsa-p256",
            TestKey::EcdsaP384 => "ecdsa-p384",
            TestKey::CaRoot => "ca-root-ed25519",
            TestKey::FulcioLeaf => "fulcio-leaf-ed25519",
            TestKey::RekorEd25519 => "rekor-ed25519",
            TestKey::RekorEcdsaP256 => "rekor-ecdsa-p256",
        }
    }

    fn files(self) -> (&'static str, &'static str) {
        match self {
            TestKey::Rsa4096 => key_files!("rsa-4096"),
            TestKey::Rsa2048 => key_files!("rsa-2048"),
            TestKey::Ed25519 => key_files!("ed25519"),
            TestKey::EcdsaP256 => key_files!("ecdsa-p256"),
            TestKey::EcdsaP384 => key_files!("ecdsa-p384"),
            TestKey::CaRoot => key_files!("ca-root-ed25519"),
            TestKey::FulcioLeaf => key_files!("fulcio-leaf-ed25519"),
            TestKey::RekorEd25519 => key_files!("rekor-ed25519"),
            TestKey::RekorEcdsaP256 => key_files!("rekor-ecdsa-p256"),
        }
    }

    /// The PKCS#8 private key, PEM (`PRIVATE KEY`). Test-only: never trust anything it signed.
    pub fn private_pkcs8_pem(self) -> &'static str {
        self.files().0
    }

    /// The public key as SPKI PEM (`PUBLIC KEY`), as `cosign verify --key` takes it.
    pub fn public_pem(self) -> &'static str {
        self.files().1
    }

    /// The public key as SPKI DER.
    pub fn public_spki_der(self) -> Vec<u8> {
        // The committed files are checked by a test, so decoding cannot fail at run time.
        pem::decode("PUBLIC KEY", self.public_pem()).unwrap_or_default()
    }

    /// The private key as PKCS#8 DER.
    pub(crate) fn private_pkcs8_der(self) -> Result<Vec<u8>> {
        pem::decode("PRIVATE KEY", self.private_pkcs8_pem()).map_err(|e| e.context(format!("test key {}", self.name())))
    }

    /// The schemes this key can sign with.
    pub fn schemes(self) -> &'static [Scheme] {
        match self {
            TestKey::Rsa4096 | TestKey::Rsa2048 => &[Scheme::RsaPkcs1Sha256, Scheme::RsaPssSha256],
            TestKey::EcdsaP256 | TestKey::RekorEcdsaP256 => &[Scheme::EcdsaP256Sha256],
            TestKey::EcdsaP384 => &[Scheme::EcdsaP384Sha384],
            TestKey::Ed25519 | TestKey::CaRoot | TestKey::FulcioLeaf | TestKey::RekorEd25519 => &[Scheme::Ed25519],
        }
    }

    /// The key with its first (default) scheme.
    pub fn signer(self) -> TestSigner {
        TestSigner { key: self, scheme: self.schemes()[0] }
    }
}

/// A signature scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (deterministic).
    RsaPkcs1Sha256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, salt length 32 (randomised).
    RsaPssSha256,
    /// ECDSA P-256 with SHA-256, ASN.1 DER signature (randomised).
    EcdsaP256Sha256,
    /// ECDSA P-384 with SHA-384, ASN.1 DER signature (randomised).
    EcdsaP384Sha384,
    /// Ed25519 (deterministic).
    Ed25519,
}

impl Scheme {
    /// Whether the same key and message always give the same signature bytes.
    pub fn is_deterministic(self) -> bool {
        matches!(self, Scheme::RsaPkcs1Sha256 | Scheme::Ed25519)
    }

    /// A short human name.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::RsaPkcs1Sha256 => "RSA PKCS#1 v1.5 SHA-256",
            Scheme::RsaPssSha256 => "RSA-PSS SHA-256",
            Scheme::EcdsaP256Sha256 => "ECDSA P-256 SHA-256",
            Scheme::EcdsaP384Sha384 => "ECDSA P-384 SHA-384",
            Scheme::Ed25519 => "Ed25519",
        }
    }

    /// The trusted-root `keyDetails` name (sigstore protobuf-specs `PublicKeyDetails`).
    pub fn key_details(self, key: TestKey) -> &'static str {
        match (self, key) {
            (Scheme::RsaPkcs1Sha256, TestKey::Rsa4096) => "PKIX_RSA_PKCS1V15_4096_SHA256",
            (Scheme::RsaPkcs1Sha256, _) => "PKIX_RSA_PKCS1V15_2048_SHA256",
            (Scheme::RsaPssSha256, TestKey::Rsa4096) => "PKIX_RSA_PSS_4096_SHA256",
            (Scheme::RsaPssSha256, _) => "PKIX_RSA_PSS_2048_SHA256",
            (Scheme::EcdsaP256Sha256, _) => "PKIX_ECDSA_P256_SHA_256",
            (Scheme::EcdsaP384Sha384, _) => "PKIX_ECDSA_P384_SHA_384",
            (Scheme::Ed25519, _) => "PKIX_ED25519",
        }
    }
}

/// A test key paired with the scheme it signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TestSigner {
    key: TestKey,
    scheme: Scheme,
}

impl TestSigner {
    /// Pair `key` with `scheme`; fails when the key cannot sign that way.
    pub fn new(key: TestKey, scheme: Scheme) -> Result<TestSigner> {
        if key.schemes().contains(&scheme) {
            Ok(TestSigner { key, scheme })
        } else {
            Err(Error::invalid_input(format!("test key {} cannot sign with {}", key.name(), scheme.name())))
        }
    }

    /// The key.
    pub fn key(&self) -> TestKey {
        self.key
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Whether signatures are byte-stable.
    pub fn is_deterministic(&self) -> bool {
        self.scheme.is_deterministic()
    }

    /// Sign `message` (the scheme hashes it).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let der = self.key.private_pkcs8_der()?;
        let what = || format!("signing with test key {} ({})", self.key.name(), self.scheme.name());
        let rejected =
            |e: aws_lc_rs::error::KeyRejected| Error::invalid_input(format!("key rejected: {e}")).context(what());
        let failed = |_| Error::new(ErrorKind::InvalidInput, "signing failed").context(what());
        let rng = SystemRandom::new();
        match self.scheme {
            Scheme::RsaPkcs1Sha256 | Scheme::RsaPssSha256 => {
                let pair = RsaKeyPair::from_pkcs8(&der).map_err(rejected)?;
                let padding: &'static dyn signature::RsaEncoding = if self.scheme == Scheme::RsaPkcs1Sha256 {
                    &signature::RSA_PKCS1_SHA256
                } else {
                    &signature::RSA_PSS_SHA256
                };
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(padding, &rng, message, &mut sig).map_err(failed)?;
                Ok(sig)
            }
            Scheme::EcdsaP256Sha256 | Scheme::EcdsaP384Sha384 => {
                let alg = if self.scheme == Scheme::EcdsaP256Sha256 {
                    &signature::ECDSA_P256_SHA256_ASN1_SIGNING
                } else {
                    &signature::ECDSA_P384_SHA384_ASN1_SIGNING
                };
                let pair = EcdsaKeyPair::from_pkcs8(alg, &der).map_err(rejected)?;
                Ok(pair.sign(&rng, message).map_err(failed)?.as_ref().to_vec())
            }
            Scheme::Ed25519 => {
                let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(rejected)?;
                Ok(pair.sign(message).as_ref().to_vec())
            }
        }
    }

    /// The public key as SPKI DER, derived from the private key (tests compare it with the file).
    #[cfg(test)]
    pub(crate) fn derived_public_spki_der(&self) -> Result<Vec<u8>> {
        use aws_lc_rs::encoding::AsDer as _;
        use aws_lc_rs::signature::KeyPair as _;
        let der = self.key.private_pkcs8_der()?;
        let bad = |e: &dyn std::fmt::Display| Error::invalid_input(format!("test key {}: {e}", self.key.name()));
        let spki = match self.scheme {
            Scheme::RsaPkcs1Sha256 | Scheme::RsaPssSha256 => {
                let pair = RsaKeyPair::from_pkcs8(&der).map_err(|e| bad(&e))?;
                pair.public_key().as_der().map_err(|e| bad(&e))?.as_ref().to_vec()
            }
            Scheme::EcdsaP256Sha256 | Scheme::EcdsaP384Sha384 => {
                let alg = if self.scheme == Scheme::EcdsaP256Sha256 {
                    &signature::ECDSA_P256_SHA256_ASN1_SIGNING
                } else {
                    &signature::ECDSA_P384_SHA384_ASN1_SIGNING
                };
                let pair = EcdsaKeyPair::from_pkcs8(alg, &der).map_err(|e| bad(&e))?;
                pair.public_key().as_der().map_err(|e| bad(&e))?.as_ref().to_vec()
            }
            Scheme::Ed25519 => {
                let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(|e| bad(&e))?;
                pair.public_key().as_der().map_err(|e| bad(&e))?.as_ref().to_vec()
            }
        };
        Ok(spki)
    }
}

/// Test-only check of a signature under an SPKI public key; the real verifier lives elsewhere.
#[cfg(test)]
pub(crate) fn verify(scheme: Scheme, spki_der: &[u8], message: &[u8], sig: &[u8]) -> bool {
    let alg: &dyn signature::VerificationAlgorithm = match scheme {
        Scheme::RsaPkcs1Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Scheme::RsaPssSha256 => &signature::RSA_PSS_2048_8192_SHA256,
        Scheme::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_ASN1,
        Scheme::EcdsaP384Sha384 => &signature::ECDSA_P384_SHA384_ASN1,
        Scheme::Ed25519 => &signature::ED25519,
    };
    signature::UnparsedPublicKey::new(alg, spki_der).verify(message, sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_public_keys_match_private_keys() {
        for key in TestKey::ALL {
            for &scheme in key.schemes() {
                let signer = TestSigner::new(key, scheme).unwrap();
                assert_eq!(signer.derived_public_spki_der().unwrap(), key.public_spki_der(), "{}", key.name());
                let sig = signer.sign(b"att2ref test message").unwrap();
                assert!(
                    verify(scheme, &key.public_spki_der(), b"att2ref test message", &sig),
                    "{} {}",
                    key.name(),
                    scheme.name()
                );
                assert!(!verify(scheme, &key.public_spki_der(), b"another message", &sig));
            }
        }
    }

    #[test]
    fn deterministic_schemes_repeat_their_bytes() {
        for signer in [TestKey::Rsa2048.signer(), TestKey::Ed25519.signer()] {
            assert!(signer.is_deterministic());
            assert_eq!(signer.sign(b"m").unwrap(), signer.sign(b"m").unwrap());
        }
        let ecdsa = TestKey::EcdsaP256.signer();
        assert!(!ecdsa.is_deterministic());
        assert_ne!(ecdsa.sign(b"m").unwrap(), ecdsa.sign(b"m").unwrap());
    }

    #[test]
    fn rejects_incompatible_scheme() {
        let err = TestSigner::new(TestKey::Ed25519, Scheme::RsaPkcs1Sha256).unwrap_err();
        assert!(err.to_string().contains("ed25519"), "{err}");
    }
}
