//! RFC 3161 timestamps, verified offline against the timestamp authorities of a trusted root.
//!
//! A stamp verifies when: the TSA granted it; its CMS signed attributes name id-ct-TSTInfo and hash the
//! encapsulated TSTInfo; the signature over those attributes verifies under the certificate the SignerInfo
//! names (embedded in the token, or the TSA leaf of the trusted root); that certificate has the critical
//! timeStamping-only extended key usage RFC 3161 requires, was valid at genTime, is the leaf of a trusted
//! root TSA whose `validFor` covers genTime, and chains to that TSA's root at genTime; and the message
//! imprint is the hash of what the stamp is meant to cover.
//!
//! What the imprint covers depends on where the stamp lives (FORMATS.md finding 3): bundles and legacy
//! `.sig` layers stamp the signature bytes (sigstore-go, cosign); cosign's legacy `.att` verification
//! hashed the whole layer (the DSSE envelope JSON) instead, so for legacy `.att` layers both are accepted
//! and the result says which one matched.
//!
//! Policy (in the verifier): with timestamp authorities in the trusted root every stamp must verify; without
//! them stamps are reported as not checked and never serve as time.

pub(crate) mod token;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, SubjectKeyIdentifier};

use crate::model::cosign::LegacyLayerAnnotations;

use super::cert::fmt_time;
use super::entity::{Content, SignedEntity};
use super::failure::{Failure, FailureReason, fail};
use super::material::Authority;
use token::{Parsed, SignerId, SignerInfo, Token};

/// What a verified timestamp's message imprint is the hash of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImprintCovers {
    /// The signature bytes (bundles, legacy `.sig` layers; sigstore-go's and cosign's convention).
    Signature,
    /// The whole legacy `.att` layer, i.e. the DSSE envelope JSON (cosign's legacy attestation convention).
    Layer,
}

/// One RFC 3161 timestamp that verified against a timestamp authority of the trusted root.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedTimestamp {
    /// The timestamp authority: its trusted-root URI, else `organization/commonName`.
    pub authority: String,
    /// The time the TSA vouches for (`genTime`), Unix seconds (any fraction dropped).
    pub gen_time: i64,
    /// What the message imprint covers.
    pub covers: ImprintCovers,
    /// The imprint's hash algorithm: `sha256`, `sha384` or `sha512`.
    pub hash_algorithm: String,
    /// The TSA's serial number of the stamp, hex.
    pub serial_number: String,
}

/// Bytes a stamp's imprint may cover.
pub(crate) struct Covered<'a> {
    pub covers: ImprintCovers,
    /// For [`ImprintCovers::Signature`]: which DSSE signature (0 for message signatures).
    pub signature_index: Option<usize>,
    pub bytes: &'a [u8],
}

/// A verified stamp and the signature it is bound to (none when it covers the whole layer).
#[derive(Debug)]
pub(crate) struct Stamp {
    pub record: VerifiedTimestamp,
    pub signature_index: Option<usize>,
}

/// id-kp-timeStamping (1.3.6.1.5.5.7.3.8).
const OID_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
const DER_TIME_STAMPING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];

const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const OID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_RSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const OID_RSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_oid(oid: ObjectIdentifier, what: &str) -> Result<Hash, Failure> {
        match oid {
            o if o == OID_SHA256 => Ok(Hash::Sha256),
            o if o == OID_SHA384 => Ok(Hash::Sha384),
            o if o == OID_SHA512 => Ok(Hash::Sha512),
            o if o == OID_SHA1 => fail(FailureReason::Unsupported, format!("{what} is SHA-1, which is not accepted")),
            o => fail(FailureReason::Unsupported, format!("{what} {o} is not supported (SHA-256/384/512 are)")),
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            Hash::Sha256 => &digest::SHA256,
            Hash::Sha384 => &digest::SHA384,
            Hash::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }

    fn name(self) -> &'static str {
        match self {
            Hash::Sha256 => "sha256",
            Hash::Sha384 => "sha384",
            Hash::Sha512 => "sha512",
        }
    }
}

fn invalid<T>(message: impl Into<String>) -> Result<T, Failure> {
    fail(FailureReason::TimestampInvalid, message)
}

/// The DER timestamp blobs an entity carries: the legacy `dev.sigstore.cosign/rfc3161timestamp`
/// annotation, or the bundle's `timestampVerificationData.rfc3161Timestamps[].signedTimestamp`.
pub(crate) fn timestamps_of(entity: &SignedEntity) -> Vec<&[u8]> {
    // A malformed annotation already failed normalisation.
    fn legacy(a: &LegacyLayerAnnotations) -> Option<&[u8]> {
        a.rfc3161_timestamp.as_ref()?.as_ref().ok().map(|t| t.signed_rfc3161_timestamp.as_slice())
    }
    match entity {
        SignedEntity::LegacyAttestation(a) => legacy(&a.annotations).into_iter().collect(),
        SignedEntity::LegacySignature(s) => legacy(&s.annotations).into_iter().collect(),
        SignedEntity::Bundle(b) => b
            .bundle
            .verification_material
            .timestamp_verification_data
            .iter()
            .flat_map(|t| &t.rfc3161_timestamps)
            .map(|t| t.signed_timestamp.as_slice())
            .collect(),
    }
}

/// What a stamp over this content may cover: every signature, plus the whole layer for legacy `.att`.
pub(crate) fn covered_of<'a>(content: &'a Content<'_>) -> Vec<Covered<'a>> {
    match content {
        Content::Dsse { envelope, raw, .. } => {
            let mut out: Vec<Covered<'a>> = envelope
                .signatures
                .iter()
                .enumerate()
                .map(|(i, s)| Covered { covers: ImprintCovers::Signature, signature_index: Some(i), bytes: &s.sig })
                .collect();
            if let Some(layer) = raw {
                out.push(Covered { covers: ImprintCovers::Layer, signature_index: None, bytes: layer });
            }
            out
        }
        Content::Message { signature, .. } => {
            vec![Covered { covers: ImprintCovers::Signature, signature_index: Some(0), bytes: signature }]
        }
    }
}

/// Verify every stamp of an entity against the trusted root's timestamp authorities; `None` (not checked)
/// when there are none.
pub(crate) fn check_timestamps(
    tsas: &[Authority],
    entity: &SignedEntity,
    content: &Content<'_>,
) -> Result<Option<Vec<Stamp>>, Failure> {
    if tsas.is_empty() {
        return Ok(None);
    }
    let covered = covered_of(content);
    let blobs = timestamps_of(entity);
    let mut stamps = Vec::with_capacity(blobs.len());
    for (i, der) in blobs.iter().enumerate() {
        stamps.push(verify_stamp(tsas, der, &covered).map_err(|f| f.context(format!("RFC 3161 timestamp #{i}")))?);
    }
    Ok(Some(stamps))
}

/// The earliest verified genTime.
pub(crate) fn earliest(stamps: &[Stamp]) -> Option<i64> {
    stamps.iter().map(|s| s.record.gen_time).min()
}

/// Every stamp over a signature must cover the one that verified: a stamp over another signature of the
/// envelope says nothing about when the verified one existed.
pub(crate) fn check_covers_signature(stamps: &[Stamp], verified_index: usize) -> Result<(), Failure> {
    for (i, s) in stamps.iter().enumerate() {
        if let Some(index) = s.signature_index.filter(|index| *index != verified_index) {
            return invalid(format!(
                "RFC 3161 timestamp #{i}: it covers DSSE signature #{index}, but signature #{verified_index} is the \
                 one that verified"
            ));
        }
    }
    Ok(())
}

/// Verify one DER TimeStampResp (or bare token) whose imprint must cover one of `covered`.
pub(crate) fn verify_stamp(tsas: &[Authority], der: &[u8], covered: &[Covered<'_>]) -> Result<Stamp, Failure> {
    let token = match token::parse(der)? {
        Parsed::NotGranted { status, text } => {
            return invalid(format!(
                "the timestamp authority did not grant it: status {status}{}",
                if text.is_empty() { String::new() } else { format!(" ({text})") }
            ));
        }
        Parsed::Token(t) => t,
    };
    let si = &token.signer;
    if si.content_type != token::OID_TST_INFO {
        return invalid(format!("the signed contentType attribute is {}, not id-ct-TSTInfo", si.content_type));
    }
    let digest_alg = Hash::from_oid(si.digest_algorithm, "the SignerInfo digest algorithm")?;
    if digest_alg.digest(token.tst_info_der) != si.message_digest {
        return invalid(format!(
            "the TSTInfo does not match the signed messageDigest attribute ({}); the token was altered",
            digest_alg.name()
        ));
    }
    let gen_time = token.tst_info.gen_time;
    let (signer_der, signer) = find_signer(&token, tsas)?;
    verify_signature(&signer, si, digest_alg)?;
    check_tsa_certificate(&signer, gen_time)?;
    let authority = match_authority(tsas, signer_der, &token.certificates, gen_time)?;

    let imprint_alg = Hash::from_oid(token.tst_info.imprint_algorithm, "the message imprint hash algorithm")?;
    let Some(hit) = covered.iter().find(|c| imprint_alg.digest(c.bytes) == token.tst_info.imprint) else {
        let what: Vec<&str> = covered
            .iter()
            .map(|c| match c.covers {
                ImprintCovers::Signature => "the signature",
                ImprintCovers::Layer => "the whole layer",
            })
            .collect();
        return invalid(format!(
            "the message imprint ({}:{}) is not the hash of {}; the stamp is for other data",
            imprint_alg.name(),
            hex::encode(token.tst_info.imprint),
            if what.is_empty() { "anything signed here".to_string() } else { what.join(" nor of ") }
        ));
    };
    Ok(Stamp {
        record: VerifiedTimestamp {
            authority: authority.name.clone(),
            gen_time,
            covers: hit.covers,
            hash_algorithm: imprint_alg.name().to_string(),
            serial_number: hex::encode(strip_zeros(token.tst_info.serial)),
        },
        signature_index: hit.signature_index,
    })
}

fn parse_certificate(der: &[u8], what: &str) -> Result<Certificate, Failure> {
    Certificate::from_der(der)
        .map_err(|e| Failure::new(FailureReason::Malformed, format!("{what} is not a DER X.509 certificate: {e}")))
}

fn strip_zeros(mut b: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = b {
        b = rest;
    }
    b
}

// The certificate the SignerInfo names: embedded in the token, else from a trusted-root TSA chain (tokens
// may leave the certificate out when the requester did not ask for it).
fn find_signer<'a>(token: &Token<'a>, tsas: &'a [Authority]) -> Result<(&'a [u8], Certificate), Failure> {
    let embedded = token.certificates.iter().map(|c| (*c, "a certificate embedded in the token"));
    let trusted = tsas.iter().flat_map(|t| t.chain.iter().map(|c| (c.as_slice(), "a trusted-root TSA certificate")));
    for (der, what) in embedded.chain(trusted) {
        let cert = parse_certificate(der, what)?;
        if names_signer(&token.signer.sid, &cert) {
            return Ok((der, cert));
        }
    }
    invalid(format!(
        "the certificate that signed it ({}) is neither embedded in the token nor a trusted-root TSA certificate",
        match token.signer.sid {
            SignerId::IssuerSerial { serial, .. } => format!("serial {}", hex::encode(strip_zeros(serial))),
            SignerId::KeyId(id) => format!("key id {}", hex::encode(id)),
        }
    ))
}

fn names_signer(sid: &SignerId<'_>, cert: &Certificate) -> bool {
    let tbs = cert.tbs_certificate();
    match sid {
        SignerId::IssuerSerial { issuer, serial } => {
            strip_zeros(tbs.serial_number().as_bytes()) == strip_zeros(serial)
                && tbs.issuer().to_der().is_ok_and(|der| der == *issuer)
        }
        SignerId::KeyId(id) => {
            matches!(tbs.get_extension::<SubjectKeyIdentifier>(), Ok(Some((_, ski))) if ski.0.as_bytes() == *id)
        }
    }
}

// RFC 5652 §5.4: the signature covers the DER of the signed attributes with their EXPLICIT SET OF tag,
// not the `[0] IMPLICIT` tag they are carried under.
fn verify_signature(cert: &Certificate, si: &SignerInfo<'_>, digest_alg: Hash) -> Result<(), Failure> {
    let spki = cert.tbs_certificate().subject_public_key_info();
    let Some(key) = spki.subject_public_key.as_bytes() else {
        return fail(FailureReason::Malformed, "the TSA certificate's public key bit string has unused bits");
    };
    let sig_oid = si.signature_algorithm;
    let alg = signature_algorithm(spki.algorithm.oid, spki.algorithm.parameters.as_ref(), sig_oid, digest_alg)?;
    let mut message = si.signed_attrs.to_vec();
    if let Some(tag) = message.first_mut() {
        *tag = 0x31;
    }
    UnparsedPublicKey::new(alg, key).verify(&message, si.signature).or_else(|_| {
        invalid(format!(
            "its signature ({sig_oid}) does not verify under the key of the certificate that signed it; the \
             signed attributes or the signature were altered"
        ))
    })
}

// The signature's hash is named by signatureAlgorithm, or is the digestAlgorithm when signatureAlgorithm
// names only the key type (common in CMS: rsaEncryption, id-ecPublicKey).
fn signature_algorithm(
    key_oid: ObjectIdentifier,
    key_params: Option<&x509_cert::der::Any>,
    sig_oid: ObjectIdentifier,
    digest_alg: Hash,
) -> Result<&'static dyn VerificationAlgorithm, Failure> {
    let mismatch =
        || invalid(format!("signature algorithm {sig_oid} does not fit the TSA certificate's key type {key_oid}"));
    if key_oid == OID_EC_PUBLIC_KEY {
        let hash = match sig_oid {
            o if o == OID_EC_PUBLIC_KEY => digest_alg,
            o if o == OID_ECDSA_SHA256 => Hash::Sha256,
            o if o == OID_ECDSA_SHA384 => Hash::Sha384,
            o if o == OID_ECDSA_SHA512 => Hash::Sha512,
            _ => return mismatch(),
        };
        let curve: ObjectIdentifier = key_params
            .and_then(|p| p.decode_as().ok())
            .ok_or_else(|| Failure::new(FailureReason::Malformed, "the TSA's EC key names no curve"))?;
        Ok(match (curve, hash) {
            (c, Hash::Sha256) if c == OID_P256 => &signature::ECDSA_P256_SHA256_ASN1,
            (c, Hash::Sha384) if c == OID_P256 => &signature::ECDSA_P256_SHA384_ASN1,
            (c, Hash::Sha512) if c == OID_P256 => &signature::ECDSA_P256_SHA512_ASN1,
            (c, Hash::Sha256) if c == OID_P384 => &signature::ECDSA_P384_SHA256_ASN1,
            (c, Hash::Sha384) if c == OID_P384 => &signature::ECDSA_P384_SHA384_ASN1,
            (c, Hash::Sha512) if c == OID_P384 => &signature::ECDSA_P384_SHA512_ASN1,
            (c, Hash::Sha256) if c == OID_P521 => &signature::ECDSA_P521_SHA256_ASN1,
            (c, Hash::Sha384) if c == OID_P521 => &signature::ECDSA_P521_SHA384_ASN1,
            (c, Hash::Sha512) if c == OID_P521 => &signature::ECDSA_P521_SHA512_ASN1,
            (c, _) => return fail(FailureReason::Unsupported, format!("TSA key curve {c} is not supported")),
        })
    } else if key_oid == OID_RSA {
        let hash = match sig_oid {
            o if o == OID_RSA => digest_alg,
            o if o == OID_RSA_SHA256 => Hash::Sha256,
            o if o == OID_RSA_SHA384 => Hash::Sha384,
            o if o == OID_RSA_SHA512 => Hash::Sha512,
            o => {
                return fail(
                    FailureReason::Unsupported,
                    format!("RSA signature algorithm {o} is not supported (PKCS#1 v1.5 with SHA-256/384/512 is)"),
                );
            }
        };
        Ok(match hash {
            Hash::Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Hash::Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Hash::Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        })
    } else if key_oid == OID_ED25519 {
        if sig_oid == OID_ED25519 { Ok(&signature::ED25519) } else { mismatch() }
    } else {
        fail(FailureReason::Unsupported, format!("TSA key type {key_oid} is not supported (ECDSA, RSA, Ed25519 are)"))
    }
}

/// RFC 3161 §2.3: the TSA's certificate has exactly one extended key usage, timeStamping, marked critical;
/// and it must have been valid when it stamped.
pub(crate) fn check_tsa_certificate(cert: &Certificate, gen_time: i64) -> Result<(), Failure> {
    let tbs = cert.tbs_certificate();
    match tbs.get_extension::<ExtendedKeyUsage>() {
        Err(e) => return fail(FailureReason::Malformed, format!("the TSA certificate's extended key usage: {e}")),
        Ok(None) => return invalid("the TSA certificate has no extended key usage (RFC 3161 requires timeStamping)"),
        Ok(Some((critical, eku))) => {
            if eku.0 != [OID_TIME_STAMPING] {
                let listed: Vec<String> = eku.0.iter().map(ToString::to_string).collect();
                return invalid(format!(
                    "the TSA certificate's extended key usage is [{}], not timeStamping alone (RFC 3161)",
                    listed.join(", ")
                ));
            }
            if !critical {
                return invalid("the TSA certificate's timeStamping extended key usage is not critical (RFC 3161)");
            }
        }
    }
    let validity = tbs.validity();
    let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let (from, to) = (secs(validity.not_before.to_unix_duration()), secs(validity.not_after.to_unix_duration()));
    if gen_time < from || gen_time > to {
        return invalid(format!(
            "the TSA certificate was valid from {} to {}, not at the stamp's genTime {}",
            fmt_time(from),
            fmt_time(to),
            fmt_time(gen_time)
        ));
    }
    Ok(())
}

fn is_ca(der: &[u8]) -> bool {
    Certificate::from_der(der)
        .ok()
        .and_then(|c| c.tbs_certificate().get_extension::<BasicConstraints>().ok().flatten())
        .is_some_and(|(_, bc)| bc.ca)
}

// The first trusted-root TSA that vouches for this signer at genTime: its validity window covers genTime,
// its leaf (when the chain lists one) is the signer, and the signer chains to its root at genTime.
fn match_authority<'t>(
    tsas: &'t [Authority],
    signer_der: &[u8],
    embedded: &[&[u8]],
    gen_time: i64,
) -> Result<&'t Authority, Failure> {
    let mut reasons = Vec::with_capacity(tsas.len());
    for tsa in tsas {
        let Some((root, below)) = tsa.chain.split_last() else {
            continue;
        };
        if tsa.valid_for.as_ref().is_some_and(|v| !v.contains(gen_time)) {
            reasons.push(format!("{}: genTime {} is outside its validFor window", tsa.name, fmt_time(gen_time)));
            continue;
        }
        let (leaf, intermediates) = match below.split_first() {
            Some((first, rest)) if !is_ca(first) => (Some(first), rest),
            _ => (None, below),
        };
        if leaf.is_some_and(|l| l.as_slice() != signer_der) {
            reasons.push(format!("{}: signed by another certificate than this TSA's", tsa.name));
            continue;
        }
        match chain_to(signer_der, root, intermediates, embedded, gen_time) {
            Ok(()) => return Ok(tsa),
            Err(e) => reasons.push(format!("{}: {e}", tsa.name)),
        }
    }
    invalid(format!(
        "it was not issued by a timestamp authority of the trusted root valid at {} ({})",
        fmt_time(gen_time),
        reasons.join("; ")
    ))
}

fn chain_to(signer: &[u8], root: &[u8], intermediates: &[Vec<u8>], embedded: &[&[u8]], at: i64) -> Result<(), String> {
    let root_der = CertificateDer::from(root);
    let anchor = webpki::anchor_from_trusted_cert(&root_der).map_err(|e| format!("its root is unusable: {e}"))?;
    let pool: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .chain(embedded.iter().map(|c| CertificateDer::from(*c)))
        .collect();
    let leaf_der = CertificateDer::from(signer);
    let ee = webpki::EndEntityCert::try_from(&leaf_der).map_err(|e| format!("signing certificate unusable: {e}"))?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(u64::try_from(at).unwrap_or(0)));
    // The leaf's EKU was checked strictly already; CA certificates may omit it.
    let usage = webpki::KeyUsage::required_if_present(DER_TIME_STAMPING);
    ee.verify_for_usage(webpki::ALL_VERIFICATION_ALGS, &[anchor], &pool, time, usage, None, None)
        .map(|_| ())
        .map_err(|e| format!("the signing certificate does not chain to its root at that time: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pem::decode_certificates;
    use crate::model::time::Rfc3339;
    use crate::model::trust::TimeRange;

    // Test vectors made once by fixtures/tsa/generate.sh (see fixtures/tsa/README.md).
    const MESSAGE: &[u8] = b"att2ref RFC 3161 test message\n";
    const EC: &[u8] = include_bytes!("../../fixtures/tsa/ec.tsr");
    const EC_NOCERT: &[u8] = include_bytes!("../../fixtures/tsa/ec-nocert.tsr");
    const RSA: &[u8] = include_bytes!("../../fixtures/tsa/rsa.tsr");
    const EXPIRED: &[u8] = include_bytes!("../../fixtures/tsa/expired.tsr");
    const ROGUE: &[u8] = include_bytes!("../../fixtures/tsa/rogue.tsr");
    const REJECTED: &[u8] = include_bytes!("../../fixtures/tsa/rejected.tsr");
    const ROOT: &str = include_str!("../../fixtures/tsa/root.pem");
    const TSA_EC: &str = include_str!("../../fixtures/tsa/tsa-ec.pem");
    const TSA_RSA: &str = include_str!("../../fixtures/tsa/tsa-rsa.pem");
    const TSA_EXPIRED: &str = include_str!("../../fixtures/tsa/tsa-expired.pem");
    const TSA_NONCRITICAL: &str = include_str!("../../fixtures/tsa/tsa-noncritical.pem");
    const ROGUE_ROOT: &str = include_str!("../../fixtures/tsa/rogue-root.pem");

    fn der(pem: &str) -> Vec<u8> {
        decode_certificates(pem).unwrap().remove(0)
    }

    fn authority(name: &str, chain: &[&str], valid_for: Option<TimeRange>) -> Authority {
        Authority { name: name.into(), chain: chain.iter().map(|p| der(p)).collect(), valid_for }
    }

    fn trusted() -> Vec<Authority> {
        vec![
            authority("https://tsa-ec.test", &[TSA_EC, ROOT], None),
            authority("https://tsa-rsa.test", &[TSA_RSA, ROOT], None),
            authority("https://tsa-expired.test", &[TSA_EXPIRED, ROOT], None),
        ]
    }

    fn signature(bytes: &[u8]) -> Vec<Covered<'_>> {
        vec![Covered { covers: ImprintCovers::Signature, signature_index: Some(0), bytes }]
    }

    fn range(start: &str, end: &str) -> Option<TimeRange> {
        Some(TimeRange { start: Some(Rfc3339::parse(start).unwrap()), end: Some(Rfc3339::parse(end).unwrap()) })
    }

    #[track_caller]
    fn rejected(tsas: &[Authority], der: &[u8], covered: &[Covered<'_>], reason: FailureReason, says: &str) {
        let f = verify_stamp(tsas, der, covered).unwrap_err();
        assert_eq!(f.reason, reason, "{f}");
        assert!(f.message.contains(says), "expected {says:?} in: {f}");
    }

    #[test]
    fn ecdsa_stamp_over_the_signature_verifies() {
        let s = verify_stamp(&trusted(), EC, &signature(MESSAGE)).unwrap();
        assert_eq!(s.record.authority, "https://tsa-ec.test");
        assert_eq!(s.record.covers, ImprintCovers::Signature);
        assert_eq!(s.record.hash_algorithm, "sha256");
        assert_eq!(s.signature_index, Some(0));
        assert!(!s.record.serial_number.is_empty());
        // Generated after the certificates' 2020 start, before their 2050 end.
        assert!((1_700_000_000..2_524_608_000).contains(&s.record.gen_time), "{}", s.record.gen_time);
        // The same TSA listed by its root only: the embedded leaf chains to it.
        let root_only = [authority("root-only", &[ROOT], None)];
        assert_eq!(verify_stamp(&root_only, EC, &signature(MESSAGE)).unwrap().record.authority, "root-only");
    }

    #[test]
    fn rsa_stamp_with_sha512_imprint_verifies() {
        let s = verify_stamp(&trusted(), RSA, &signature(MESSAGE)).unwrap();
        assert_eq!(s.record.authority, "https://tsa-rsa.test");
        assert_eq!(s.record.hash_algorithm, "sha512");
    }

    #[test]
    fn token_without_certificates_uses_the_trusted_leaf() {
        let s = verify_stamp(&trusted(), EC_NOCERT, &signature(MESSAGE)).unwrap();
        assert_eq!(s.record.authority, "https://tsa-ec.test");
        let root_only = [authority("root-only", &[ROOT], None)];
        rejected(&root_only, EC_NOCERT, &signature(MESSAGE), FailureReason::TimestampInvalid, "neither embedded");
    }

    #[test]
    fn imprint_over_other_bytes_is_invalid() {
        rejected(&trusted(), EC, &signature(b"another signature"), FailureReason::TimestampInvalid, "imprint");
        rejected(&trusted(), EC, &[], FailureReason::TimestampInvalid, "anything signed here");
    }

    #[test]
    fn legacy_layer_imprint_is_reported_as_such() {
        let covered = [
            Covered { covers: ImprintCovers::Signature, signature_index: Some(0), bytes: b"the DSSE signature" },
            Covered { covers: ImprintCovers::Layer, signature_index: None, bytes: MESSAGE },
        ];
        let s = verify_stamp(&trusted(), EC, &covered).unwrap();
        assert_eq!((s.record.covers, s.signature_index), (ImprintCovers::Layer, None));
        assert!(check_covers_signature(&[s], 3).is_ok(), "a layer stamp covers every signature");
    }

    #[test]
    fn stamp_over_another_dsse_signature_does_not_count() {
        let covered = [
            Covered { covers: ImprintCovers::Signature, signature_index: Some(0), bytes: b"signature 0" },
            Covered { covers: ImprintCovers::Signature, signature_index: Some(1), bytes: MESSAGE },
        ];
        let s = verify_stamp(&trusted(), EC, &covered).unwrap();
        assert_eq!(s.signature_index, Some(1));
        let stamps = [s];
        assert!(check_covers_signature(&stamps, 1).is_ok());
        let f = check_covers_signature(&stamps, 0).unwrap_err();
        assert_eq!(f.reason, FailureReason::TimestampInvalid);
        assert_eq!(earliest(&stamps), Some(stamps[0].record.gen_time));
    }

    #[test]
    fn tampered_tst_info_or_signature_fails() {
        // The policy OID 1.2.3.4.1 occurs only inside the TSTInfo.
        let policy = [0x06, 0x04, 0x2a, 0x03, 0x04, 0x01];
        let at: Vec<usize> =
            EC.windows(policy.len()).enumerate().filter(|(_, w)| *w == policy).map(|(i, _)| i).collect();
        assert_eq!(at.len(), 1);
        let mut tampered = EC.to_vec();
        tampered[at[0] + 5] = 0x02;
        rejected(&trusted(), &tampered, &signature(MESSAGE), FailureReason::TimestampInvalid, "messageDigest");
        // The ECDSA signature is the token's last element.
        let mut tampered = EC.to_vec();
        if let Some(last) = tampered.last_mut() {
            *last ^= 0x01;
        }
        rejected(&trusted(), &tampered, &signature(MESSAGE), FailureReason::TimestampInvalid, "does not verify");
    }

    #[test]
    fn tsa_outside_the_trusted_root_is_invalid() {
        rejected(&trusted(), ROGUE, &signature(MESSAGE), FailureReason::TimestampInvalid, "another certificate");
        let roots_only = [authority("root-only", &[ROOT], None)];
        rejected(&roots_only, ROGUE, &signature(MESSAGE), FailureReason::TimestampInvalid, "does not chain");
        // Trusting the rogue root makes it verify: the failure above is about trust, not the token.
        let rogue_root = [authority("rogue", &[ROGUE_ROOT], None)];
        assert!(verify_stamp(&rogue_root, ROGUE, &signature(MESSAGE)).is_ok());
    }

    #[test]
    fn gen_time_outside_valid_for_or_certificate_validity() {
        let old = [authority("old", &[TSA_EC, ROOT], range("2000-01-01T00:00:00Z", "2001-01-01T00:00:00Z"))];
        rejected(&old, EC, &signature(MESSAGE), FailureReason::TimestampInvalid, "outside its validFor");
        let current = [authority("current", &[TSA_EC, ROOT], range("2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z"))];
        assert!(verify_stamp(&current, EC, &signature(MESSAGE)).is_ok());
        // The expired TSA certificate (2020–2021) still signed; genTime is after its end.
        rejected(&trusted(), EXPIRED, &signature(MESSAGE), FailureReason::TimestampInvalid, "was valid from");
    }

    #[test]
    fn tsa_certificate_usage_is_strict() {
        let now = 1_800_000_000;
        let noncritical = Certificate::from_der(&der(TSA_NONCRITICAL)).unwrap();
        let f = check_tsa_certificate(&noncritical, now).unwrap_err();
        assert!(f.message.contains("not critical"), "{f}");
        let root = Certificate::from_der(&der(ROOT)).unwrap();
        let f = check_tsa_certificate(&root, now).unwrap_err();
        assert!(f.message.contains("no extended key usage"), "{f}");
        assert!(check_tsa_certificate(&Certificate::from_der(&der(TSA_EC)).unwrap(), now).is_ok());
    }

    #[test]
    fn status_not_granted_is_invalid() {
        rejected(&trusted(), REJECTED, &signature(MESSAGE), FailureReason::TimestampInvalid, "status rejection");
    }

    #[test]
    fn garbage_is_malformed_and_never_panics() {
        for bad in [&b""[..], b"garbage", &EC[..EC.len() / 2], &[0x30, 0x00]] {
            rejected(&trusted(), bad, &signature(MESSAGE), FailureReason::Malformed, "");
        }
        // Every single-byte corruption is handled (most fail; a few touch unsigned, unchecked fields).
        for i in 0..EC.len() {
            let mut m = EC.to_vec();
            m[i] ^= 0x5a;
            let _ = verify_stamp(&trusted(), &m, &signature(MESSAGE));
        }
    }
}
