//! A TEST-ONLY certificate authority shaped like Fulcio, and a trusted root naming it and the test
//! transparency logs, for keyless-style legacy entries.
//!
//! Everything is fixed (keys, serials, validity windows) and Ed25519-signed, so certificates are
//! byte-identical on every run. Deviations from real Fulcio certificates, because rcgen cannot or
//! determinism forbids: the CA and leaf keys are Ed25519 (Fulcio uses ECDSA P-384 / ephemeral P-256),
//! there is no intermediate, and the leaf has no embedded SCT (verifiers must not require CT logs).
//! The leaf also carries `basicConstraints CA:FALSE`, which rcgen writes with the subject key id.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ED25519, SanType, SerialNumber,
};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::keys::TestKey;
use super::pem;
use crate::error::{Error, Result};

/// Organisation of the test CA.
pub const CA_ORGANIZATION: &str = "att2ref TEST ONLY";
/// Common name of the test CA root.
pub const CA_COMMON_NAME: &str = "att2ref TEST ONLY root - never trust";
/// The CA's (fictitious) URL in the trusted root.
pub const CA_URI: &str = "https://fulcio.att2ref.test";
/// The Ed25519 test log's (fictitious) URL in the trusted root.
pub const LOG_URL: &str = "https://rekor.att2ref.test";
/// The ECDSA test log's (fictitious) URL in the trusted root.
pub const ECDSA_LOG_URL: &str = "https://rekor-ecdsa.att2ref.test";
/// Root validity: 2023-01-01T00:00:00Z …
pub const ROOT_NOT_BEFORE: &str = "2023-01-01T00:00:00Z";
/// … to 2033-01-01T00:00:00Z.
pub const ROOT_NOT_AFTER: &str = "2033-01-01T00:00:00Z";
/// Start of the leaf certificates' ten-minute windows, 2024-01-01T00:00:00Z (Unix seconds).
pub const LEAF_NOT_BEFORE_UNIX: i64 = 1_704_067_200;
/// Fulcio-like leaf lifetime.
pub const LEAF_LIFETIME_SECS: i64 = 600;

const OID_FULCIO_ISSUER_V1: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 1];
const OID_FULCIO_ISSUER_V2: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 8];

/// The identity a keyless leaf certificate asserts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// An email SAN (interactive OIDC sign-in).
    Email(String),
    /// A URI SAN (a CI workflow identity).
    Uri(String),
}

impl Identity {
    /// The SAN value.
    pub fn value(&self) -> &str {
        match self {
            Identity::Email(s) | Identity::Uri(s) => s,
        }
    }
}

/// A keyless signer: identity, OIDC issuer, and the leaf certificate's serial label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeylessIdentity {
    /// The certificate identity.
    pub identity: Identity,
    /// The OIDC issuer recorded in the Fulcio issuer extensions.
    pub issuer: String,
}

impl KeylessIdentity {
    /// The email identity the keyless scenario uses for attestations.
    pub fn email() -> KeylessIdentity {
        KeylessIdentity {
            identity: Identity::Email("keyless-signer@example.test".into()),
            issuer: "https://oidc.example.test".into(),
        }
    }

    /// The CI-workflow identity the keyless scenario uses for signatures.
    pub fn workflow() -> KeylessIdentity {
        KeylessIdentity {
            identity: Identity::Uri("https://git.example.test/demo/app/.ci/release.yml@refs/heads/main".into()),
            issuer: "https://ci-token.example.test".into(),
        }
    }
}

/// A certificate in both encodings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cert {
    /// DER bytes.
    pub der: Vec<u8>,
    /// PEM (`CERTIFICATE`, 64-column lines, `\n`).
    pub pem: String,
}

impl Cert {
    fn from_der(der: &[u8]) -> Cert {
        Cert { der: der.to_vec(), pem: pem::encode("CERTIFICATE", der) }
    }
}

fn rcgen_err(what: &str) -> impl Fn(rcgen::Error) -> Error + '_ {
    move |e| Error::invalid_input(format!("building the test CA: {what}: {e}"))
}

fn key_pair(key: TestKey) -> Result<KeyPair> {
    KeyPair::from_pkcs8_pem_and_sign_algo(key.private_pkcs8_pem(), &PKCS_ED25519).map_err(rcgen_err(key.name()))
}

/// A fixed, positive 16-byte serial derived from a label.
fn serial(label: &str) -> SerialNumber {
    let mut bytes = Sha256::digest(label.as_bytes())[..16].to_vec();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

fn root_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.not_before = rcgen::date_time_ymd(2023, 1, 1);
    params.not_after = rcgen::date_time_ymd(2033, 1, 1);
    params.serial_number = Some(serial("att2ref test root"));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, CA_ORGANIZATION);
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// The self-signed test CA root.
pub fn root() -> Result<Cert> {
    let key = key_pair(TestKey::CaRoot)?;
    let cert = root_params().self_signed(&key).map_err(rcgen_err("root"))?;
    Ok(Cert::from_der(cert.der()))
}

/// A Fulcio-like code-signing leaf for `who`, valid for ten minutes from
/// [`LEAF_NOT_BEFORE_UNIX`], over the [`TestKey::FulcioLeaf`] key.
pub fn leaf(who: &KeylessIdentity) -> Result<Cert> {
    let root_key = key_pair(TestKey::CaRoot)?;
    let leaf_key = key_pair(TestKey::FulcioLeaf)?;
    let root = root_params();
    let issuer = Issuer::from_params(&root, &root_key);

    let mut params = CertificateParams::default();
    let start = rcgen::date_time_ymd(2024, 1, 1);
    params.not_before = start;
    params.not_after = start + Duration::from_secs(LEAF_LIFETIME_SECS as u64);
    params.serial_number = Some(serial(&format!("att2ref test leaf {}", who.identity.value())));
    // Fulcio leaves have an empty subject; rcgen then marks the SAN critical, as Fulcio does.
    params.distinguished_name = DistinguishedName::new();
    let san = who.identity.value().try_into().map_err(rcgen_err("identity"))?;
    params.subject_alt_names = vec![match who.identity {
        Identity::Email(_) => SanType::Rfc822Name(san),
        Identity::Uri(_) => SanType::URI(san),
    }];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    params.use_authority_key_identifier_extension = true;
    // 57264.1.1 holds the raw issuer string (deprecated form); 57264.1.8 a DER UTF8String.
    params.custom_extensions = vec![
        CustomExtension::from_oid_content(OID_FULCIO_ISSUER_V1, who.issuer.as_bytes().to_vec()),
        CustomExtension::from_oid_content(OID_FULCIO_ISSUER_V2, der_utf8_string(&who.issuer)),
    ];
    let cert = params.signed_by(&leaf_key, &issuer).map_err(rcgen_err("leaf"))?;
    Ok(Cert::from_der(cert.der()))
}

/// DER `UTF8String`.
fn der_utf8_string(s: &str) -> Vec<u8> {
    let mut out = vec![0x0c];
    let len = s.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(s.as_bytes());
    out
}

/// A log's id: SHA-256 of its DER public key.
pub fn log_id(key: TestKey) -> [u8; 32] {
    Sha256::digest(key.public_spki_der()).into()
}

/// A trusted root (`application/vnd.dev.sigstore.trustedroot+json;version=0.1`, the layout of the
/// public-good one) naming both test logs and the test CA, pretty-printed. TEST-ONLY.
pub fn trusted_root_json() -> Result<Vec<u8>> {
    let tlog = |key: TestKey, url: &str| {
        json!({
            "baseUrl": url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": STANDARD.encode(key.public_spki_der()),
                "keyDetails": key.signer().scheme().key_details(key),
                "validFor": {"start": ROOT_NOT_BEFORE},
            },
            "logId": {"keyId": STANDARD.encode(log_id(key))},
        })
    };
    let root = root()?;
    let doc = json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [tlog(TestKey::RekorEd25519, LOG_URL), tlog(TestKey::RekorEcdsaP256, ECDSA_LOG_URL)],
        "certificateAuthorities": [{
            "subject": {"organization": CA_ORGANIZATION, "commonName": CA_COMMON_NAME},
            "uri": CA_URI,
            "certChain": {"certificates": [{"rawBytes": STANDARD.encode(&root.der)}]},
            "validFor": {"start": ROOT_NOT_BEFORE, "end": ROOT_NOT_AFTER},
        }],
        "ctlogs": [],
        "timestampAuthorities": [],
    });
    let mut out = serde_json::to_vec_pretty(&doc).map_err(Error::from)?;
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::keys::{Scheme, verify};

    /// The signed part and signature of a certificate, found by walking the outer DER sequence.
    fn tbs_and_signature(der: &[u8]) -> (&[u8], &[u8]) {
        fn header(b: &[u8]) -> (usize, usize) {
            // (header length, content length)
            if b[1] < 0x80 {
                (2, b[1] as usize)
            } else {
                let n = (b[1] & 0x7f) as usize;
                (2 + n, b[2..2 + n].iter().fold(0, |acc, &x| (acc << 8) | x as usize))
            }
        }
        let (h, _) = header(der);
        let body = &der[h..];
        let (th, tl) = header(body);
        let tbs = &body[..th + tl];
        let rest = &body[th + tl..];
        let (ah, al) = header(rest);
        let bits = &rest[ah + al..];
        let (bh, bl) = header(bits);
        (tbs, &bits[bh + 1..bh + bl]) // skip the unused-bits byte
    }

    #[test]
    fn certificates_are_deterministic_and_chain() {
        let root_a = root().unwrap();
        assert_eq!(root_a, root().unwrap());
        let leaf_a = leaf(&KeylessIdentity::email()).unwrap();
        assert_eq!(leaf_a, leaf(&KeylessIdentity::email()).unwrap());
        assert_ne!(leaf_a, leaf(&KeylessIdentity::workflow()).unwrap());
        let root_spki = TestKey::CaRoot.public_spki_der();
        for cert in [&root_a, &leaf_a] {
            let (tbs, sig) = tbs_and_signature(&cert.der);
            assert!(verify(Scheme::Ed25519, &root_spki, tbs, sig), "signed by the test root");
        }
        // The leaf embeds the Fulcio-leaf key and both issuer extensions.
        let leaf_raw_key = &TestKey::FulcioLeaf.public_spki_der()[12..];
        assert!(leaf_a.der.windows(32).any(|w| w == leaf_raw_key));
        let issuer = b"https://oidc.example.test";
        assert!(
            leaf_a
                .der
                .windows(issuer.len() + 2)
                .any(|w| w[0] == 0x0c && w[1] as usize == issuer.len() && &w[2..] == issuer)
        );
        assert!(leaf_a.der.windows(b"keyless-signer@example.test".len()).any(|w| w == b"keyless-signer@example.test"));
        assert!(leaf_a.pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    }

    #[test]
    fn trusted_root_names_logs_and_ca() {
        let bytes = trusted_root_json().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["tlogs"][0]["keyDetails"], serde_json::Value::Null);
        assert_eq!(v["tlogs"][0]["publicKey"]["keyDetails"], "PKIX_ED25519");
        assert_eq!(v["tlogs"][1]["publicKey"]["keyDetails"], "PKIX_ECDSA_P256_SHA_256");
        assert_eq!(v["tlogs"][0]["logId"]["keyId"], STANDARD.encode(log_id(TestKey::RekorEd25519)));
        let root_b64 = STANDARD.encode(root().unwrap().der);
        assert_eq!(v["certificateAuthorities"][0]["certChain"]["certificates"][0]["rawBytes"], root_b64);
        assert_eq!(bytes, trusted_root_json().unwrap());
    }

    #[test]
    fn utf8_string_lengths() {
        assert_eq!(der_utf8_string("ab"), vec![0x0c, 2, b'a', b'b']);
        assert_eq!(&der_utf8_string(&"x".repeat(200))[..3], &[0x0c, 0x81, 200]);
    }
}
