//! Signing certificates: what a keyless policy matches (SANs, Fulcio OIDC issuer) and the chain check.
//!
//! The chain is built with rustls-webpki against the certificate authorities of the trusted root that were
//! valid at the signing time, and every certificate on the path must be valid at that time (the log's
//! integrated time, since Fulcio certificates live for ten minutes).

use rustls_pki_types::{CertificateDer, UnixTime};
use x509_cert::Certificate;
use x509_cert::der::asn1::{ObjectIdentifier, Utf8StringRef};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};

use super::failure::{Failure, FailureReason, fail};
use super::keys::PublicKey;
use crate::error::{Error, Result};

/// id-kp-codeSigning (1.3.6.1.5.5.7.3.3).
const OID_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const DER_CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
/// Fulcio OIDC issuer, deprecated form: the raw string as the extension value.
const OID_FULCIO_ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// Fulcio OIDC issuer, current form: a DER UTF8String.
const OID_FULCIO_ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");

/// One subject alternative name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", content = "value", rename_all = "kebab-case")]
pub enum San {
    /// rfc822Name (e-mail identities).
    Email(String),
    /// uniformResourceIdentifier (workflow and SPIFFE identities).
    Uri(String),
    /// dNSName.
    Dns(String),
    /// otherName with a UTF8String value (Fulcio's username SAN, 1.3.6.1.4.1.57264.1.7).
    Other {
        /// The otherName type OID, dotted.
        oid: String,
        /// The UTF-8 value.
        value: String,
    },
}

impl San {
    /// The identity text a policy compares against.
    pub fn value(&self) -> &str {
        match self {
            San::Email(s) | San::Uri(s) | San::Dns(s) => s,
            San::Other { value, .. } => value,
        }
    }
}

/// What the verifier needs from a signing certificate.
#[derive(Clone, Debug)]
pub struct CertificateInfo {
    /// The DER certificate.
    pub der: Vec<u8>,
    /// Its public key.
    pub public_key: PublicKey,
    /// Subject alternative names, in certificate order.
    pub sans: Vec<San>,
    /// Fulcio OIDC issuer (1.3.6.1.4.1.57264.1.8, else the deprecated .1.1), if present.
    pub oidc_issuer: Option<String>,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// Whether the extended key usage includes code signing.
    pub code_signing: bool,
}

impl CertificateInfo {
    /// Parse a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertificateInfo> {
        let cert = Certificate::from_der(der)
            .map_err(|e| Error::invalid_format(format!("certificate: not a DER X.509 certificate: {e}")))?;
        let tbs = cert.tbs_certificate();
        let spki = tbs
            .subject_public_key_info()
            .to_der()
            .map_err(|e| Error::invalid_format(format!("certificate: cannot re-encode its public key: {e}")))?;
        let public_key = PublicKey::from_spki_der(&spki).map_err(|e| e.context("certificate public key"))?;
        let mut sans = Vec::new();
        let mut issuer_v1 = None;
        let mut issuer_v2 = None;
        let mut code_signing = false;
        for ext in tbs.extensions().map(|e| e.as_slice()).unwrap_or_default() {
            let value = ext.extn_value.as_bytes();
            if ext.extn_id == <SubjectAltName as x509_cert::der::oid::AssociatedOid>::OID {
                let san = SubjectAltName::from_der(value)
                    .map_err(|e| Error::invalid_format(format!("certificate: malformed SAN extension: {e}")))?;
                sans.extend(san.0.iter().filter_map(san_of));
            } else if ext.extn_id == <ExtendedKeyUsage as x509_cert::der::oid::AssociatedOid>::OID {
                let eku = ExtendedKeyUsage::from_der(value)
                    .map_err(|e| Error::invalid_format(format!("certificate: malformed EKU extension: {e}")))?;
                code_signing = eku.0.contains(&OID_CODE_SIGNING);
            } else if ext.extn_id == OID_FULCIO_ISSUER_V1 {
                issuer_v1 = Some(String::from_utf8_lossy(value).into_owned());
            } else if ext.extn_id == OID_FULCIO_ISSUER_V2 {
                let s = Utf8StringRef::from_der(value).map_err(|e| {
                    Error::invalid_format(format!("certificate: Fulcio issuer extension is not a UTF8String: {e}"))
                })?;
                issuer_v2 = Some(s.as_str().to_string());
            }
        }
        let validity = tbs.validity();
        Ok(CertificateInfo {
            der: der.to_vec(),
            public_key,
            sans,
            oidc_issuer: issuer_v2.or(issuer_v1),
            not_before: unix(validity.not_before.to_unix_duration()),
            not_after: unix(validity.not_after.to_unix_duration()),
            code_signing,
        })
    }

    /// Check that the certificate was valid at `at` (Unix seconds) and is fit for code signing.
    pub fn check_usable_at(&self, at: i64) -> Result<(), Failure> {
        if at < self.not_before || at > self.not_after {
            return fail(
                FailureReason::CertificateExpired,
                format!(
                    "signing certificate was valid from {} to {}, not at {} (the log's integrated time, or the \
                     verification time when the log is skipped)",
                    fmt_time(self.not_before),
                    fmt_time(self.not_after),
                    fmt_time(at)
                ),
            );
        }
        if !self.code_signing {
            return fail(
                FailureReason::CertificateUnusable,
                "signing certificate lacks the code-signing extended key usage",
            );
        }
        Ok(())
    }
}

fn unix(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

pub(crate) fn fmt_time(t: i64) -> String {
    crate::model::time::format_unix(t).unwrap_or_else(|_| format!("unix {t}"))
}

fn san_of(name: &GeneralName) -> Option<San> {
    match name {
        GeneralName::Rfc822Name(s) => Some(San::Email(s.to_string())),
        GeneralName::UniformResourceIdentifier(s) => Some(San::Uri(s.to_string())),
        GeneralName::DnsName(s) => Some(San::Dns(s.to_string())),
        GeneralName::OtherName(other) => {
            let value = other.value.decode_as::<Utf8StringRef<'_>>().ok()?.as_str().to_string();
            Some(San::Other { oid: other.type_id.to_string(), value })
        }
        _ => None,
    }
}

/// Verify that `leaf` chains to one of `authorities` at time `at`.
///
/// Each authority is its chain as a trusted root lists it: intermediates first, the self-signed root last.
/// The roots become trust anchors and the authorities' intermediates the only candidate path elements:
/// certificates an attestation carries never join a path. Certificates on the path must be valid at `at`.
pub fn verify_chain(leaf: &CertificateInfo, authorities: &[&[Vec<u8>]], at: i64) -> Result<(), Failure> {
    leaf.check_usable_at(at)?;
    if authorities.is_empty() {
        return fail(
            FailureReason::UntrustedChain,
            format!("the trusted root has no certificate authority valid at {}", fmt_time(at)),
        );
    }
    let root_ders: Vec<CertificateDer<'_>> =
        authorities.iter().filter_map(|chain| chain.last()).map(|der| CertificateDer::from(der.as_slice())).collect();
    let mut anchors = Vec::with_capacity(root_ders.len());
    for der in &root_ders {
        let anchor = webpki::anchor_from_trusted_cert(der).map_err(|e| {
            Failure::new(FailureReason::Malformed, format!("trusted root CA certificate is unusable: {e}"))
        })?;
        anchors.push(anchor);
    }
    let intermediates: Vec<CertificateDer<'_>> = authorities
        .iter()
        .flat_map(|chain| chain.split_last().map_or(&[][..], |(_, rest)| rest))
        .map(|der| CertificateDer::from(der.as_slice()))
        .collect();
    let leaf_der = CertificateDer::from(leaf.der.as_slice());
    let ee = webpki::EndEntityCert::try_from(&leaf_der).map_err(|e| {
        Failure::new(FailureReason::Malformed, format!("signing certificate is not a usable end-entity: {e}"))
    })?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(u64::try_from(at).unwrap_or(0)));
    // Intermediates without an EKU are fine; the leaf's code-signing EKU was checked above.
    let usage = webpki::KeyUsage::required_if_present(DER_CODE_SIGNING);
    match ee.verify_for_usage(webpki::ALL_VERIFICATION_ALGS, &anchors, &intermediates, time, usage, None, None) {
        Ok(_) => Ok(()),
        Err(e @ (webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. })) => fail(
            FailureReason::CertificateExpired,
            format!("a certificate on the chain was not valid at {}: {e}", fmt_time(at)),
        ),
        #[allow(deprecated)]
        Err(e @ (webpki::Error::RequiredEkuNotFound | webpki::Error::RequiredEkuNotFoundContext(_))) => fail(
            FailureReason::CertificateUnusable,
            format!("a certificate on the chain does not allow code signing: {e}"),
        ),
        Err(e) => fail(
            FailureReason::UntrustedChain,
            format!("signing certificate does not chain to a trusted certificate authority: {e}"),
        ),
    }
}
