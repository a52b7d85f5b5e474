//! cosign's legacy, tag-based storage: the `.sig` / `.att` / `.sbom` tag kinds, the annotations on their
//! layers, and the simple-signing payload of `.sig` layers.
//!
//! Annotations are hostile input like everything else a registry serves. Each one is read on its own: a
//! broken Rekor bundle is reported against its key and does not hide a good certificate next to it.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use super::digest::{Digest, parse_cosign_tag};
use super::media_type::{self as mt, annotations as keys};
use super::oci::{Annotations, Descriptor};
use super::pbjson::{self, named_field};
use super::pem;
use super::rekor::RekorBundle;
use crate::error::{Error, Result};

/// Which legacy attachment a tag holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TagKind {
    /// `.sig`: simple-signing payloads with detached signatures.
    Signature,
    /// `.att`: DSSE-signed in-toto statements.
    Attestation,
    /// `.sbom`: an attached (unsigned) SBOM.
    Sbom,
}

impl TagKind {
    /// Every kind, in the order att2ref reports them.
    pub const ALL: [TagKind; 3] = [TagKind::Signature, TagKind::Attestation, TagKind::Sbom];

    /// The tag suffix without the dot (`sig`, `att`, `sbom`).
    pub fn suffix(self) -> &'static str {
        match self {
            TagKind::Signature => "sig",
            TagKind::Attestation => "att",
            TagKind::Sbom => "sbom",
        }
    }

    /// The kind for a suffix (without the dot).
    pub fn from_suffix(suffix: &str) -> Option<TagKind> {
        TagKind::ALL.into_iter().find(|k| k.suffix() == suffix)
    }

    /// The legacy tag of this kind for an image: `sha256-<hex>.<suffix>`.
    pub fn tag_for(self, image: &Digest) -> String {
        image.cosign_tag(self.suffix())
    }

    /// Split a legacy tag into image digest and kind; `None` for any other tag.
    pub fn parse_tag(tag: &str) -> Option<(Digest, TagKind)> {
        let (digest, suffix) = parse_cosign_tag(tag)?;
        Some((digest, TagKind::from_suffix(suffix)?))
    }

    /// The layer media type this kind's layers carry (`.sbom` layers vary with the SBOM format).
    pub fn layer_media_type(self) -> Option<&'static str> {
        match self {
            TagKind::Signature => Some(mt::SIMPLE_SIGNING),
            TagKind::Attestation => Some(mt::DSSE_ENVELOPE),
            TagKind::Sbom => None,
        }
    }
}

impl fmt::Display for TagKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, ".{}", self.suffix())
    }
}

/// The `dev.sigstore.cosign/rfc3161timestamp` annotation.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Rfc3161Timestamp {
    /// DER `TimeStampResp` bytes.
    #[serde(rename = "SignedRFC3161Timestamp", deserialize_with = "de_rfc3161")]
    pub signed_rfc3161_timestamp: Vec<u8>,
}

named_field!(de_rfc3161, pbjson::bytes, Vec<u8>, "SignedRFC3161Timestamp");

impl Rfc3161Timestamp {
    /// Parse the annotation's JSON text.
    pub fn parse(json: &[u8]) -> Result<Rfc3161Timestamp> {
        if json.trim_ascii_start().first() != Some(&b'{') {
            return Err(Error::invalid_format("RFC 3161 timestamp: not a JSON object"));
        }
        serde_json::from_slice(json).map_err(|e| Error::invalid_format(format!("RFC 3161 timestamp: {e}")))
    }
}

/// The cosign annotations of one legacy layer, each read independently.
///
/// Text values are kept as given; the JSON ones are parsed, and a parse failure is kept in place of the
/// value (`Some(Err(..))`) with the annotation key in its message.
#[derive(Debug, Default)]
pub struct LegacyLayerAnnotations {
    /// `dev.cosignproject.cosign/signature`: base64 signature; `""` on `.att` layers; cosign refuses a layer
    /// without it.
    pub signature: Option<String>,
    /// `dev.sigstore.cosign/certificate`: PEM leaf certificate.
    pub certificate_pem: Option<String>,
    /// `dev.sigstore.cosign/chain`: PEM intermediates and root (possibly empty).
    pub chain_pem: Option<String>,
    /// `dev.sigstore.cosign/bundle`: the legacy Rekor bundle.
    pub bundle: Option<Result<RekorBundle>>,
    /// `dev.sigstore.cosign/rfc3161timestamp`.
    pub rfc3161_timestamp: Option<Result<Rfc3161Timestamp>>,
    /// `predicateType` (cosign ≥ 2.0 `attest`; unsigned, informational only).
    pub predicate_type: Option<String>,
    /// `dev.sigstore.sbom.scope`.
    pub sbom_scope: Option<String>,
    /// Every other annotation.
    pub other: BTreeMap<String, String>,
}

/// A problem with one annotation, for reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnotationProblem {
    /// The annotation key.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

impl LegacyLayerAnnotations {
    /// Read a layer descriptor's annotations.
    pub fn from_descriptor(layer: &Descriptor) -> LegacyLayerAnnotations {
        LegacyLayerAnnotations::from_annotations(&layer.annotations)
    }

    /// Read an annotation map.
    pub fn from_annotations(annotations: &Annotations) -> LegacyLayerAnnotations {
        let mut out = LegacyLayerAnnotations::default();
        for (key, value) in annotations {
            match key.as_str() {
                keys::COSIGN_SIGNATURE => out.signature = Some(value.clone()),
                keys::COSIGN_CERTIFICATE => out.certificate_pem = Some(value.clone()),
                keys::COSIGN_CHAIN => out.chain_pem = Some(value.clone()),
                keys::COSIGN_BUNDLE => {
                    out.bundle = Some(
                        RekorBundle::parse(value.as_bytes())
                            .map_err(|e| e.context(format!("annotation `{}`", keys::COSIGN_BUNDLE))),
                    )
                }
                keys::COSIGN_RFC3161 => {
                    out.rfc3161_timestamp = Some(
                        Rfc3161Timestamp::parse(value.as_bytes())
                            .map_err(|e| e.context(format!("annotation `{}`", keys::COSIGN_RFC3161))),
                    )
                }
                keys::COSIGN_PREDICATE_TYPE => out.predicate_type = Some(value.clone()),
                keys::SBOM_SCOPE => out.sbom_scope = Some(value.clone()),
                _ => {
                    out.other.insert(key.clone(), value.clone());
                }
            }
        }
        out
    }

    /// The decoded `.sig` signature; `None` when the annotation is absent or empty (`.att` layers).
    pub fn signature_bytes(&self) -> Result<Option<Vec<u8>>> {
        match self.signature.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => super::dsse::decode_base64_any(text)
                .map(Some)
                .map_err(|e| e.context(format!("annotation `{}`", keys::COSIGN_SIGNATURE))),
        }
    }

    /// The DER leaf certificate; `None` when absent or empty. More than one certificate is an error.
    pub fn certificate_der(&self) -> Result<Option<Vec<u8>>> {
        let ctx = || format!("annotation `{}`", keys::COSIGN_CERTIFICATE);
        match self.certificate_pem.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => {
                let mut certs = pem::decode_certificates(text).map_err(|e| e.context(ctx()))?;
                match certs.len() {
                    1 => Ok(certs.pop()),
                    n => Err(Error::invalid_format(format!("{}: expected one certificate, found {n}", ctx()))),
                }
            }
        }
    }

    /// The DER chain certificates in order (empty when absent or empty).
    pub fn chain_der(&self) -> Result<Vec<Vec<u8>>> {
        match self.chain_pem.as_deref() {
            None => Ok(Vec::new()),
            Some(text) => {
                pem::decode_certificates(text).map_err(|e| e.context(format!("annotation `{}`", keys::COSIGN_CHAIN)))
            }
        }
    }

    /// The Rekor bundle when present and valid.
    pub fn rekor_bundle(&self) -> Option<&RekorBundle> {
        self.bundle.as_ref().and_then(|b| b.as_ref().ok())
    }

    /// Every annotation that is present but unusable, with the reason. Empty for a healthy layer.
    pub fn problems(&self) -> Vec<AnnotationProblem> {
        let mut out = Vec::new();
        let mut note = |key: &'static str, err: &Error| out.push(AnnotationProblem { key, message: err.to_string() });
        if let Err(e) = self.signature_bytes() {
            note(keys::COSIGN_SIGNATURE, &e);
        }
        if let Err(e) = self.certificate_der() {
            note(keys::COSIGN_CERTIFICATE, &e);
        }
        if let Err(e) = self.chain_der() {
            note(keys::COSIGN_CHAIN, &e);
        }
        if let Some(Err(e)) = &self.bundle {
            note(keys::COSIGN_BUNDLE, e);
        }
        if let Some(Err(e)) = &self.rfc3161_timestamp {
            note(keys::COSIGN_RFC3161, e);
        }
        out
    }
}

/// The `type` cosign writes in, and requires of, simple-signing payloads.
pub const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";

/// A parsed simple-signing payload (the `.sig` layer blob).
#[derive(Clone, Debug, PartialEq)]
pub struct SimpleSigning {
    /// `critical.identity.docker-reference` (ignored by verifiers; empty when absent).
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest`: the signed image.
    pub image_digest: Digest,
    /// `critical.type` (empty when absent).
    pub signature_type: String,
    /// `optional`: user annotations (and, in `cosign verify` output, more); `None` when null or absent.
    pub optional: Option<Value>,
}

impl SimpleSigning {
    /// Parse the payload bytes.
    pub fn parse(bytes: &[u8]) -> Result<SimpleSigning> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid_format(format!("simple-signing payload: invalid JSON: {e}")))?;
        SimpleSigning::from_value(&value)
    }

    /// Build from parsed JSON.
    pub fn from_value(value: &Value) -> Result<SimpleSigning> {
        let bad = |m: &str| Error::invalid_format(format!("simple-signing payload: {m}"));
        let critical = match value.get("critical") {
            Some(Value::Object(c)) => c,
            Some(_) => return Err(bad("field `critical` is not an object")),
            None if value.is_object() => return Err(bad("missing field `critical`")),
            None => return Err(bad("not a JSON object")),
        };
        let text_at = |path: &[&str], name: &str| -> Result<Option<String>> {
            let mut cur = critical.get(path[0]);
            for p in &path[1..] {
                cur = match cur {
                    Some(Value::Object(o)) => o.get(*p),
                    Some(Value::Null) | None => None,
                    Some(_) => return Err(bad(&format!("field `{name}` is not inside an object"))),
                };
            }
            match cur {
                Some(Value::String(s)) => Ok(Some(s.clone())),
                None | Some(Value::Null) => Ok(None),
                Some(_) => Err(bad(&format!("field `{name}` is not a string"))),
            }
        };
        let digest_text = text_at(&["image", "docker-manifest-digest"], "critical.image.docker-manifest-digest")?
            .ok_or_else(|| bad("missing field `critical.image.docker-manifest-digest`"))?;
        let image_digest = digest_text
            .parse::<Digest>()
            .map_err(|e| e.context("simple-signing payload field `critical.image.docker-manifest-digest`"))?;
        let docker_reference =
            text_at(&["identity", "docker-reference"], "critical.identity.docker-reference")?.unwrap_or_default();
        let signature_type = text_at(&["type"], "critical.type")?.unwrap_or_default();
        let optional = match value.get("optional") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.clone()),
        };
        Ok(SimpleSigning { docker_reference, image_digest, signature_type, optional })
    }

    /// True when `critical.type` is cosign's.
    pub fn is_cosign_type(&self) -> bool {
        self.signature_type == SIMPLE_SIGNING_TYPE
    }

    /// True when the payload signs this image.
    pub fn matches(&self, image: &Digest) -> bool {
        &self.image_digest == image
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::dsse::encode_base64;
    use crate::model::oci::ImageManifest;
    use crate::model::rekor::RekorSpec;
    use crate::model::testdata;

    fn manifest(path: &str) -> ImageManifest {
        serde_json::from_slice(&testdata::read(path)).unwrap()
    }

    #[test]
    fn tag_kinds() {
        let d: Digest = testdata::CSSC_IMAGE.parse().unwrap();
        for kind in TagKind::ALL {
            let tag = kind.tag_for(&d);
            assert_eq!(TagKind::parse_tag(&tag), Some((d.clone(), kind)));
            assert_eq!(tag, format!("sha256-{}.{}", d.hex(), kind.suffix()));
        }
        assert_eq!(TagKind::from_suffix("att"), Some(TagKind::Attestation));
        assert_eq!(TagKind::from_suffix("sbom"), Some(TagKind::Sbom));
        assert_eq!(TagKind::parse_tag(&d.cosign_tag("foo")), None);
        assert_eq!(TagKind::parse_tag(&d.referrers_tag()), None);
        assert_eq!(TagKind::Attestation.to_string(), ".att");
        assert_eq!(TagKind::Attestation.layer_media_type(), Some(mt::DSSE_ENVELOPE));
    }

    #[test]
    fn article_signature_layer() {
        let m = manifest(testdata::CSSC_SIG_MANIFEST);
        let a = LegacyLayerAnnotations::from_descriptor(&m.layers[0]);
        assert_eq!(a.signature_bytes().unwrap().map(|s| s.len()), Some(512), "RSA-4096");
        assert!(a.certificate_pem.is_none() && a.bundle.is_none());
        assert!(a.problems().is_empty());

        let payload = testdata::read(testdata::CSSC_SIG_PAYLOAD);
        m.layers[0].digest.verify(&payload).unwrap();
        let ss = SimpleSigning::parse(&payload).unwrap();
        assert!(ss.is_cosign_type());
        assert!(ss.matches(&testdata::CSSC_IMAGE.parse().unwrap()));
        assert_eq!(ss.docker_reference, "562077019569.dkr.ecr.us-west-2.amazonaws.com/flasksample");
        assert_eq!(ss.optional, None);
    }

    #[test]
    fn article_attestation_layers_have_only_an_empty_signature() {
        let m = manifest(testdata::CSSC_ATT_MANIFEST);
        for layer in &m.layers {
            let a = LegacyLayerAnnotations::from_descriptor(layer);
            assert_eq!(a.signature.as_deref(), Some(""));
            assert_eq!(a.signature_bytes().unwrap(), None);
            assert_eq!(a.predicate_type, None, "cosign 1.x wrote no predicateType annotation");
            assert!(a.problems().is_empty());
        }
        let m = manifest(testdata::WRITER_LEGACY_MANIFEST);
        let types: Vec<_> =
            m.layers.iter().map(|l| LegacyLayerAnnotations::from_descriptor(l).predicate_type.unwrap()).collect();
        assert_eq!(
            types,
            ["https://slsa.dev/provenance/v1", "https://spdx.dev/Document", "https://slsa.dev/provenance/v0.2"]
        );
    }

    // `cosign verify` prints the keyless layer's annotations back: the Rekor bundle as an object and the
    // certificate inside the logged body. Rebuild the annotation map a registry would have served.
    #[test]
    fn article_keyless_annotations() {
        for n in 1..=3 {
            let out: Value = serde_json::from_slice(&testdata::read(&testdata::cssc_keyless_verification(n))).unwrap();
            let item = &out[0];
            let bundle_json = serde_json::to_string(&item["optional"]["Bundle"]).unwrap();
            let pre = RekorBundle::parse(bundle_json.as_bytes()).unwrap();
            let RekorSpec::HashedRekordV001(h) = &pre.body.spec else { panic!() };
            let cert_pem = String::from_utf8(h.public_key_pem.clone()).unwrap();
            let annotations: Annotations = [
                (keys::COSIGN_SIGNATURE.to_owned(), encode_base64(&h.signature)),
                (keys::COSIGN_CERTIFICATE.to_owned(), cert_pem),
                (keys::COSIGN_CHAIN.to_owned(), String::new()),
                (keys::COSIGN_BUNDLE.to_owned(), bundle_json),
                ("x".to_owned(), "y".to_owned()),
            ]
            .into();
            let a = LegacyLayerAnnotations::from_annotations(&annotations);
            assert!(a.problems().is_empty(), "{:?}", a.problems());
            assert_eq!(a.rekor_bundle(), Some(&pre));
            assert_eq!(a.signature_bytes().unwrap().as_deref(), Some(h.signature.as_slice()));
            assert_eq!(a.certificate_der().unwrap().unwrap()[0], 0x30);
            assert!(a.chain_der().unwrap().is_empty());
            assert_eq!(a.other.get("x").map(String::as_str), Some("y"));
            // Each output is for its own image version; the first is the article's image.
            let ss = SimpleSigning::from_value(item).unwrap();
            assert_eq!(ss.matches(&testdata::CSSC_IMAGE.parse().unwrap()), n == 1);
            assert!(ss.optional.is_some());
        }
    }

    #[test]
    fn broken_annotations_are_reported_per_key() {
        let annotations: Annotations = [
            (keys::COSIGN_SIGNATURE.to_owned(), "not base64!".to_owned()),
            (keys::COSIGN_CERTIFICATE.to_owned(), "-----BEGIN CERTIFICATE-----\nAQ==\n".to_owned()),
            (keys::COSIGN_CHAIN.to_owned(), "-----BEGIN PUBLIC KEY-----\nAQ==\n-----END PUBLIC KEY-----".to_owned()),
            (keys::COSIGN_BUNDLE.to_owned(), "{\"SignedEntryTimestamp\":".to_owned()),
            (keys::COSIGN_RFC3161.to_owned(), r#"{"SignedRFC3161Timestamp":"%"}"#.to_owned()),
            (keys::COSIGN_PREDICATE_TYPE.to_owned(), "p".to_owned()),
            (keys::SBOM_SCOPE.to_owned(), "all".to_owned()),
        ]
        .into();
        let a = LegacyLayerAnnotations::from_annotations(&annotations);
        let problems = a.problems();
        let keys_hit: Vec<_> = problems.iter().map(|p| p.key).collect();
        assert_eq!(
            keys_hit,
            [
                keys::COSIGN_SIGNATURE,
                keys::COSIGN_CERTIFICATE,
                keys::COSIGN_CHAIN,
                keys::COSIGN_BUNDLE,
                keys::COSIGN_RFC3161
            ]
        );
        for p in &problems {
            assert!(p.message.contains(p.key), "{p:?}");
        }
        assert!(problems[4].message.contains("SignedRFC3161Timestamp"));
        assert_eq!((a.predicate_type.as_deref(), a.sbom_scope.as_deref()), (Some("p"), Some("all")));
        assert!(a.rekor_bundle().is_none());

        let two = "-----BEGIN CERTIFICATE-----\nAQ==\n-----END CERTIFICATE-----\n".repeat(2);
        let a = LegacyLayerAnnotations::from_annotations(&[(keys::COSIGN_CERTIFICATE.to_owned(), two)].into());
        assert!(a.certificate_der().unwrap_err().to_string().contains("found 2"));

        let ts = Rfc3161Timestamp::parse(br#"{"SignedRFC3161Timestamp":"MAA="}"#).unwrap();
        assert_eq!(ts.signed_rfc3161_timestamp, [0x30, 0]);
        assert!(Rfc3161Timestamp::parse(b"{}").unwrap_err().to_string().contains("missing field"));
        let err = Rfc3161Timestamp::parse(b"\"x\"").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidFormat, "{err}");
        assert!(err.to_string().contains("RFC 3161 timestamp: not a JSON object"), "{err}");
    }

    #[test]
    fn simple_signing_errors() {
        let d = testdata::CSSC_IMAGE;
        let cases = [
            ("[]".to_owned(), "not a JSON object"),
            ("{".to_owned(), "invalid JSON"),
            ("{}".to_owned(), "missing field `critical`"),
            (r#"{"critical":[]}"#.to_owned(), "`critical` is not an object"),
            (r#"{"critical":{"image":{}}}"#.to_owned(), "missing field `critical.image.docker-manifest-digest`"),
            (r#"{"critical":{"image":{"docker-manifest-digest":5}}}"#.to_owned(), "is not a string"),
            (r#"{"critical":{"image":"x"}}"#.to_owned(), "not inside an object"),
            (
                r#"{"critical":{"image":{"docker-manifest-digest":"sha256:XYZ"}}}"#.to_owned(),
                "docker-manifest-digest`: digest",
            ),
            (format!(r#"{{"critical":{{"image":{{"docker-manifest-digest":"{d}"}},"type":1}}}}"#), "`critical.type`"),
        ];
        for (json, want) in cases {
            let err = SimpleSigning::parse(json.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(want), "{json}\n  => {err}");
        }
        let ss = SimpleSigning::parse(
            format!(r#"{{"critical":{{"image":{{"docker-manifest-digest":"{d}"}}}}}}"#).as_bytes(),
        )
        .unwrap();
        assert!(!ss.is_cosign_type());
        assert_eq!(ss.docker_reference, "");
    }
}
