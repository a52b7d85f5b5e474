//! DER parsing of RFC 3161 time-stamp responses and tokens, reduced to what verification reads.
//!
//! Hand-written over `der`'s reader (no `cms` crate): the few structures needed are walked element by
//! element, keeping the exact bytes that are hashed or signed (the TSTInfo, the signed attributes, the
//! embedded certificates). Only DER is accepted, as RFC 3161 tokens are DER in practice; anything else,
//! and any structure that is not what RFC 3161 / RFC 5652 define, is a `Malformed` failure.

use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Header, Reader, SliceReader};

use crate::model::time::Rfc3339;
use crate::verification::failure::{Failure, FailureReason, fail};

// Identifier octets of the few tags read here.
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const GENERALIZED_TIME: u8 = 0x18;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const CTX_0_PRIMITIVE: u8 = 0x80;
const CTX_0: u8 = 0xA0;
const CTX_1: u8 = 0xA1;

/// id-signedData (RFC 5652).
pub(crate) const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-ct-TSTInfo (RFC 3161).
pub(crate) const OID_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
/// id-contentType signed attribute.
const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
/// id-messageDigest signed attribute.
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");

/// PKIStatus values (RFC 3161 §2.4.2).
const STATUS_NAMES: [&str; 6] =
    ["granted", "grantedWithMods", "rejection", "waiting", "revocationWarning", "revocationNotification"];

/// An AlgorithmIdentifier's OID (parameters are not needed by any algorithm accepted here).
pub(crate) type AlgorithmOid = ObjectIdentifier;

/// The signer identifier of a SignerInfo.
#[derive(Debug)]
pub(crate) enum SignerId<'a> {
    /// issuerAndSerialNumber: the issuer Name (full DER) and the serial number's content octets.
    IssuerSerial { issuer: &'a [u8], serial: &'a [u8] },
    /// subjectKeyIdentifier.
    KeyId(&'a [u8]),
}

/// The one SignerInfo of a token.
#[derive(Debug)]
pub(crate) struct SignerInfo<'a> {
    pub sid: SignerId<'a>,
    pub digest_algorithm: AlgorithmOid,
    /// The signed attributes as the token carries them (`[0] IMPLICIT`, full DER).
    pub signed_attrs: &'a [u8],
    pub content_type: ObjectIdentifier,
    pub message_digest: &'a [u8],
    pub signature_algorithm: AlgorithmOid,
    pub signature: &'a [u8],
}

/// The TSTInfo fields verification reads.
#[derive(Debug)]
pub(crate) struct TstInfo<'a> {
    pub imprint_algorithm: AlgorithmOid,
    pub imprint: &'a [u8],
    /// The serial number's content octets.
    pub serial: &'a [u8],
    /// genTime in whole Unix seconds (a fraction is dropped).
    pub gen_time: i64,
}

/// A time-stamp token (CMS SignedData over a TSTInfo).
#[derive(Debug)]
pub(crate) struct Token<'a> {
    /// Certificates the token embeds (full DER each); other certificate choices are skipped.
    pub certificates: Vec<&'a [u8]>,
    pub signer: SignerInfo<'a>,
    /// The encapsulated TSTInfo DER, which the messageDigest attribute hashes.
    pub tst_info_der: &'a [u8],
    pub tst_info: TstInfo<'a>,
}

/// What a timestamp blob turned out to hold.
#[derive(Debug)]
pub(crate) enum Parsed<'a> {
    /// A TimeStampResp whose status is neither granted nor grantedWithMods.
    NotGranted { status: String, text: String },
    /// A granted response's token, or a bare token.
    Token(Box<Token<'a>>),
}

fn malformed<T>(what: impl std::fmt::Display) -> Result<T, Failure> {
    // Callers prefix which timestamp this is.
    fail(FailureReason::Malformed, what.to_string())
}

/// One DER element: its first identifier octet, its contents and its full encoding.
#[derive(Clone, Copy)]
struct Tlv<'a> {
    id: u8,
    value: &'a [u8],
    raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    fn expect(self, id: u8, what: &str) -> Result<Tlv<'a>, Failure> {
        if self.id == id { Ok(self) } else { malformed(format!("{what}: unexpected tag 0x{:02x}", self.id)) }
    }

    fn children(self, what: &'static str) -> Result<Elements<'a>, Failure> {
        Elements::new(self.value, what)
    }

    fn oid(self, what: &str) -> Result<ObjectIdentifier, Failure> {
        let t = self.expect(OID, what)?;
        ObjectIdentifier::from_der(t.raw).map_err(|e| Failure::new(FailureReason::Malformed, format!("{what}: {e}")))
    }

    fn small_uint(self, what: &str) -> Result<u64, Failure> {
        let t = self.expect(INTEGER, what)?;
        match t.value {
            [] => malformed(format!("{what}: empty INTEGER")),
            [first, ..] if first & 0x80 != 0 => malformed(format!("{what}: negative")),
            v if v.len() > 8 => malformed(format!("{what}: too large")),
            v => Ok(v.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))),
        }
    }
}

/// The elements of a constructed value, read in order.
struct Elements<'a> {
    reader: SliceReader<'a>,
    what: &'static str,
}

impl<'a> Elements<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Result<Elements<'a>, Failure> {
        let reader =
            SliceReader::new(bytes).map_err(|e| Failure::new(FailureReason::Malformed, format!("{what}: {e}")))?;
        Ok(Elements { reader, what })
    }

    fn at_end(&self) -> bool {
        self.reader.is_finished()
    }

    fn peek_id(&self) -> Option<u8> {
        self.reader.peek_byte()
    }

    fn next(&mut self) -> Result<Tlv<'a>, Failure> {
        let what = self.what;
        if self.at_end() {
            return malformed(format!("{what}: truncated (an element is missing)"));
        }
        let der_err = |e: x509_cert::der::Error| Failure::new(FailureReason::Malformed, format!("{what}: {e}"));
        let raw = self.reader.tlv_bytes().map_err(der_err)?;
        let mut inner = SliceReader::new(raw).map_err(der_err)?;
        let header = Header::decode(&mut inner).map_err(der_err)?;
        let value = inner.read_slice(header.length()).map_err(der_err)?;
        let id = raw.first().copied().unwrap_or_default();
        Ok(Tlv { id, value, raw })
    }

    /// The next element if it carries identifier `id`.
    fn next_if(&mut self, id: u8) -> Result<Option<Tlv<'a>>, Failure> {
        if self.peek_id() == Some(id) { self.next().map(Some) } else { Ok(None) }
    }

    fn finish(&self) -> Result<(), Failure> {
        if self.at_end() { Ok(()) } else { malformed(format!("{}: unexpected trailing data", self.what)) }
    }
}

/// Parse a DER TimeStampResp, or a bare TimeStampToken (some producers store the token alone).
pub(crate) fn parse(der: &[u8]) -> Result<Parsed<'_>, Failure> {
    let mut top = Elements::new(der, "response")?;
    let outer = top.next()?.expect(SEQUENCE, "response")?;
    top.finish()?;
    let mut fields = outer.children("response")?;
    match fields.peek_id() {
        // TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken OPTIONAL }
        Some(SEQUENCE) => {
            let status_info = fields.next()?;
            if let Some((status, text)) = not_granted(status_info)? {
                return Ok(Parsed::NotGranted { status, text });
            }
            if fields.at_end() {
                return malformed("the response is granted but carries no time-stamp token");
            }
            let token = fields.next()?.expect(SEQUENCE, "time-stamp token")?;
            fields.finish()?;
            parse_token(token).map(|t| Parsed::Token(Box::new(t)))
        }
        // ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY }
        Some(OID) => parse_token(outer).map(|t| Parsed::Token(Box::new(t))),
        _ => malformed("neither a TimeStampResp nor a time-stamp token"),
    }
}

// PKIStatusInfo ::= SEQUENCE { status INTEGER, statusString SEQUENCE OF UTF8String OPTIONAL, failInfo BIT STRING OPTIONAL }
fn not_granted(info: Tlv<'_>) -> Result<Option<(String, String)>, Failure> {
    let mut f = info.children("status")?;
    let status = f.next()?.small_uint("status")?;
    if status <= 1 {
        return Ok(None);
    }
    let name = usize::try_from(status)
        .ok()
        .and_then(|s| STATUS_NAMES.get(s))
        .map_or_else(|| format!("unknown status {status}"), |n| (*n).to_string());
    let mut text = Vec::new();
    if let Some(strings) = f.next_if(SEQUENCE)? {
        let mut s = strings.children("status text")?;
        while !s.at_end() {
            let t = s.next()?;
            text.push(String::from_utf8_lossy(t.value).chars().take(200).collect::<String>());
        }
    }
    if let Some(bits) = f.next_if(BIT_STRING)? {
        text.push(format!("failInfo bits {}", hex::encode(bits.value.get(1..).unwrap_or_default())));
    }
    Ok(Some((name, text.join("; "))))
}

fn parse_token(content_info: Tlv<'_>) -> Result<Token<'_>, Failure> {
    let mut ci = content_info.children("token")?;
    let content_type = ci.next()?.oid("token content type")?;
    if content_type != OID_SIGNED_DATA {
        return malformed(format!("token content type is {content_type}, not signedData"));
    }
    let explicit = ci.next()?.expect(CTX_0, "token content")?;
    ci.finish()?;
    let mut wrapper = explicit.children("token content")?;
    let signed_data = wrapper.next()?.expect(SEQUENCE, "SignedData")?;
    wrapper.finish()?;

    // SignedData ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo, [0] certificates OPTIONAL,
    //                           [1] crls OPTIONAL, signerInfos SET }
    let mut sd = signed_data.children("SignedData")?;
    sd.next()?.small_uint("SignedData version")?;
    sd.next()?.expect(SET, "SignedData digestAlgorithms")?;
    let encap = sd.next()?.expect(SEQUENCE, "encapsulated content")?;
    let mut certificates = Vec::new();
    if let Some(certs) = sd.next_if(CTX_0)? {
        let mut c = certs.children("certificates")?;
        while !c.at_end() {
            let cert = c.next()?;
            // Other CertificateChoices (attribute certificates, …) are tagged and irrelevant here.
            if cert.id == SEQUENCE {
                certificates.push(cert.raw);
            }
        }
    }
    sd.next_if(CTX_1)?;
    let signer_infos = sd.next()?.expect(SET, "signerInfos")?;
    sd.finish()?;

    let mut e = encap.children("encapsulated content")?;
    let e_content_type = e.next()?.oid("eContentType")?;
    if e_content_type != OID_TST_INFO {
        return malformed(format!("encapsulated content type is {e_content_type}, not id-ct-TSTInfo"));
    }
    let Some(e_content) = e.next_if(CTX_0)? else {
        return malformed("the token does not encapsulate its TSTInfo");
    };
    e.finish()?;
    let mut octets = e_content.children("eContent")?;
    let tst_info_der = octets.next()?.expect(OCTET_STRING, "eContent")?.value;
    octets.finish()?;

    let mut infos = signer_infos.children("signerInfos")?;
    let signer = parse_signer_info(infos.next()?)?;
    if !infos.at_end() {
        return malformed("the token has more than one SignerInfo (RFC 3161 allows only the TSA's)");
    }
    let tst_info = parse_tst_info(tst_info_der)?;
    Ok(Token { certificates, signer, tst_info_der, tst_info })
}

fn algorithm(t: Tlv<'_>, what: &'static str) -> Result<AlgorithmOid, Failure> {
    let mut a = t.expect(SEQUENCE, what)?.children(what)?;
    a.next()?.oid(what)
}

// SignerInfo ::= SEQUENCE { version, sid, digestAlgorithm, [0] signedAttrs OPTIONAL, signatureAlgorithm,
//                           signature OCTET STRING, [1] unsignedAttrs OPTIONAL }
fn parse_signer_info(t: Tlv<'_>) -> Result<SignerInfo<'_>, Failure> {
    let mut si = t.expect(SEQUENCE, "SignerInfo")?.children("SignerInfo")?;
    si.next()?.small_uint("SignerInfo version")?;
    let sid_tlv = si.next()?;
    let sid = match sid_tlv.id {
        SEQUENCE => {
            let mut ias = sid_tlv.children("issuerAndSerialNumber")?;
            let issuer = ias.next()?.expect(SEQUENCE, "signer issuer")?.raw;
            let serial = ias.next()?.expect(INTEGER, "signer serial number")?.value;
            ias.finish()?;
            SignerId::IssuerSerial { issuer, serial }
        }
        CTX_0_PRIMITIVE => SignerId::KeyId(sid_tlv.value),
        other => return malformed(format!("SignerInfo sid: unexpected tag 0x{other:02x}")),
    };
    let digest_algorithm = algorithm(si.next()?, "SignerInfo digestAlgorithm")?;
    let Some(attrs) = si.next_if(CTX_0)? else {
        return malformed("the SignerInfo has no signed attributes (RFC 3161 tokens must have them)");
    };
    let signature_algorithm = algorithm(si.next()?, "SignerInfo signatureAlgorithm")?;
    let signature = si.next()?.expect(OCTET_STRING, "signature")?.value;
    si.next_if(CTX_1)?;
    si.finish()?;

    let mut content_type = None;
    let mut message_digest = None;
    let mut a = attrs.children("signed attributes")?;
    while !a.at_end() {
        let mut attr = a.next()?.expect(SEQUENCE, "signed attribute")?.children("signed attribute")?;
        let kind = attr.next()?.oid("signed attribute type")?;
        let values = attr.next()?.expect(SET, "signed attribute values")?;
        let mut v = values.children("signed attribute values")?;
        let value = v.next()?;
        let single = v.at_end();
        let slot_taken = if kind == OID_CONTENT_TYPE {
            content_type.replace(value.oid("contentType attribute")?).is_some()
        } else if kind == OID_MESSAGE_DIGEST {
            message_digest.replace(value.expect(OCTET_STRING, "messageDigest attribute")?.value).is_some()
        } else {
            false
        };
        if (kind == OID_CONTENT_TYPE || kind == OID_MESSAGE_DIGEST) && (slot_taken || !single) {
            return malformed(format!("signed attribute {kind} must appear once with one value"));
        }
    }
    let (Some(content_type), Some(message_digest)) = (content_type, message_digest) else {
        return malformed("the signed attributes lack contentType or messageDigest");
    };
    Ok(SignerInfo {
        sid,
        digest_algorithm,
        signed_attrs: attrs.raw,
        content_type,
        message_digest,
        signature_algorithm,
        signature,
    })
}

// TSTInfo ::= SEQUENCE { version INTEGER, policy OID, messageImprint, serialNumber INTEGER,
//                        genTime GeneralizedTime, accuracy, ordering, nonce, tsa, extensions (all optional) }
fn parse_tst_info(der: &[u8]) -> Result<TstInfo<'_>, Failure> {
    let mut top = Elements::new(der, "TSTInfo")?;
    let seq = top.next()?.expect(SEQUENCE, "TSTInfo")?;
    top.finish()?;
    let mut f = seq.children("TSTInfo")?;
    let version = f.next()?.small_uint("TSTInfo version")?;
    if version != 1 {
        return malformed(format!("TSTInfo version {version} (only v1 exists)"));
    }
    f.next()?.oid("TSTInfo policy")?;
    let mut mi = f.next()?.expect(SEQUENCE, "messageImprint")?.children("messageImprint")?;
    let imprint_algorithm = algorithm(mi.next()?, "messageImprint hashAlgorithm")?;
    let imprint = mi.next()?.expect(OCTET_STRING, "messageImprint hashedMessage")?.value;
    mi.finish()?;
    let serial = f.next()?.expect(INTEGER, "TSTInfo serialNumber")?.value;
    let gen_time = generalized_time(f.next()?.expect(GENERALIZED_TIME, "genTime")?.value)?;
    Ok(TstInfo { imprint_algorithm, imprint, serial, gen_time })
}

/// `YYYYMMDDhhmmss[.f+]Z` (RFC 3161 §2.4.2 requires UTC) to Unix seconds.
fn generalized_time(value: &[u8]) -> Result<i64, Failure> {
    let text = std::str::from_utf8(value).ok().filter(|t| t.is_ascii());
    let parsed = text.and_then(|t| {
        let body = t.strip_suffix('Z')?;
        let (whole, fraction) = match body.split_once('.') {
            Some((w, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => (w, Some(f)),
            Some(_) => return None,
            None => (body, None),
        };
        if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let d = |r: std::ops::Range<usize>| whole.get(r).unwrap_or_default();
        let rfc3339 = format!(
            "{}-{}-{}T{}:{}:{}{}Z",
            d(0..4),
            d(4..6),
            d(6..8),
            d(8..10),
            d(10..12),
            d(12..14),
            fraction.map(|f| format!(".{f}")).unwrap_or_default()
        );
        Rfc3339::parse(&rfc3339).ok()
    });
    match parsed {
        Some(t) => Ok(t.unix_seconds()),
        None => malformed(format!(
            "genTime {:?} is not a UTC GeneralizedTime (YYYYMMDDhhmmss[.f]Z)",
            String::from_utf8_lossy(value).chars().take(40).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_times() {
        assert_eq!(generalized_time(b"20240101000000Z").unwrap(), 1_704_067_200);
        assert_eq!(generalized_time(b"20240101000000.999Z").unwrap(), 1_704_067_200);
        for bad in [&b"20240101000000"[..], b"2024010100000Z", b"20240101000000.Z", b"20241301000000Z", b"\xff"] {
            assert_eq!(generalized_time(bad).unwrap_err().reason, FailureReason::Malformed);
        }
    }

    #[test]
    fn hostile_der_never_panics() {
        let cases: [&[u8]; 8] = [
            b"",
            b"\x30",
            b"\x30\x80\x00\x00",
            b"\x30\x03\x02\x01\x00",
            b"\x30\x05\x30\x03\x02\x01\x00\x00",
            b"\x30\x02\x06\x00",
            b"\x30\x84\xff\xff\xff\xff",
            b"not DER at all",
        ];
        for c in cases {
            let r = parse(c);
            assert!(matches!(&r, Err(f) if f.reason == FailureReason::Malformed), "{c:?}: {r:?}");
        }
        // A status-only rejection parses as such.
        let rejected = b"\x30\x05\x30\x03\x02\x01\x02";
        assert!(matches!(parse(rejected), Ok(Parsed::NotGranted { ref status, .. }) if status == "rejection"));
    }
}
