//! OCI image-spec and Docker schema 2 manifests, indexes and descriptors.
//!
//! Two directions, two rules. Manifests we *read* keep their raw bytes ([`RawManifest`]): the digest
//! is always of those bytes and they are never re-serialised. Manifests we *write* are built from these
//! structs, whose field order is fixed and whose maps are ordered, so the same input always gives the
//! same bytes and digest. Unknown fields are kept in `extra`, so an index we read, extend and write back
//! (the referrers tag schema) loses nothing another tool put there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::digest::Digest;
use super::media_type as mt;
use crate::error::{Error, Result};

/// Ordered string map used for annotations.
pub type Annotations = BTreeMap<String, String>;

/// A content descriptor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content. Optional in Docker-era data.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes of the referenced content.
    pub size: u64,
    /// Artifact type (image-spec 1.1; index entries and referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: Annotations,
    /// Platform (index entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Embedded content (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Anything else, kept so a read-modify-write round trip loses nothing.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Descriptor {
    /// A descriptor of `bytes` with the given media type.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: Digest::sha256(bytes),
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: Annotations::new(),
            platform: None,
            data: None,
            extra: BTreeMap::new(),
        }
    }

    /// The OCI empty descriptor (`{}`), used as the config of artifacts.
    pub fn empty_config() -> Descriptor {
        Descriptor::of(mt::OCI_EMPTY, b"{}")
    }

    /// An annotation value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }

    /// Whether this index entry is a BuildKit attestation manifest (not a platform image).
    pub fn is_buildkit_attestation(&self) -> bool {
        self.annotation(mt::annotations::DOCKER_REFERENCE_TYPE) == Some("attestation-manifest")
    }
}

/// Platform of an index entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture (`amd64`, `arm64`, or `unknown` for BuildKit attestations).
    #[serde(default)]
    pub architecture: String,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// CPU variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Anything else (`os.version`, `os.features`).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// Media type; optional in OCI (then taken from the transport).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Artifact type (image-spec 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Config descriptor.
    pub config: Descriptor,
    /// Layers.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Subject (image-spec 1.1 referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: Annotations,
    /// Anything else.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// Media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Artifact type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Entries.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// Subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: Annotations,
    /// Anything else.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Index {
    /// An empty OCI index, the starting point of a referrers tag-schema index.
    pub fn empty() -> Index {
        Index {
            schema_version: 2,
            media_type: Some(mt::OCI_INDEX.to_owned()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: Annotations::new(),
            extra: BTreeMap::new(),
        }
    }
}

/// The obsolete `application/vnd.oci.artifact.manifest.v1+json` (read only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactManifest {
    /// Media type.
    #[serde(default)]
    pub media_type: Option<String>,
    /// Artifact type.
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// Blobs.
    #[serde(default)]
    pub blobs: Vec<Descriptor>,
    /// Subject.
    #[serde(default)]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default)]
    pub annotations: Annotations,
}

/// A parsed manifest of any kind we understand.
// Variants differ in size, but a manifest is parsed once per fetch and never stored in bulk: boxing would
// only add indirection to every match.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Manifest {
    /// An image manifest (OCI or Docker schema 2).
    Image(ImageManifest),
    /// An index or manifest list.
    Index(Index),
    /// An obsolete artifact manifest.
    Artifact(ArtifactManifest),
}

impl Manifest {
    /// Parse manifest bytes. `declared` is the media type the transport gave (Content-Type or the
    /// referring descriptor); the body's own `mediaType` wins when present, and the shape decides when
    /// neither says (OCI allows `mediaType` to be absent).
    pub fn parse(bytes: &[u8], declared: Option<&str>) -> Result<(Manifest, String)> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid_format(format!("manifest is not valid JSON: {e}")))?;
        let obj = value.as_object().ok_or_else(|| Error::invalid_format("manifest is not a JSON object"))?;
        let body_type = obj.get("mediaType").and_then(Value::as_str);
        let media_type = match (body_type, declared) {
            (Some(t), _) => t.to_owned(),
            (None, Some(d)) if !d.is_empty() && d != "application/json" && d != "application/octet-stream" => {
                d.to_owned()
            }
            _ if obj.contains_key("manifests") => mt::OCI_INDEX.to_owned(),
            _ if obj.contains_key("blobs") => mt::OCI_ARTIFACT_MANIFEST.to_owned(),
            _ if obj.contains_key("config") => mt::OCI_MANIFEST.to_owned(),
            _ => return Err(Error::invalid_format("manifest has no mediaType and an unknown shape")),
        };
        let parsed = match media_type.as_str() {
            mt::OCI_INDEX | mt::DOCKER_MANIFEST_LIST => Manifest::Index(
                serde_json::from_value(value)
                    .map_err(|e| Error::invalid_format(format!("invalid image index: {e}")))?,
            ),
            mt::OCI_MANIFEST | mt::DOCKER_MANIFEST => Manifest::Image(
                serde_json::from_value(value)
                    .map_err(|e| Error::invalid_format(format!("invalid image manifest: {e}")))?,
            ),
            mt::OCI_ARTIFACT_MANIFEST => Manifest::Artifact(
                serde_json::from_value(value)
                    .map_err(|e| Error::invalid_format(format!("invalid artifact manifest: {e}")))?,
            ),
            other => return Err(Error::invalid_format(format!("unsupported manifest media type {other:?}"))),
        };
        Ok((parsed, media_type))
    }

    /// The subject, if any.
    pub fn subject(&self) -> Option<&Descriptor> {
        match self {
            Manifest::Image(m) => m.subject.as_ref(),
            Manifest::Index(i) => i.subject.as_ref(),
            Manifest::Artifact(a) => a.subject.as_ref(),
        }
    }

    /// The manifest-level annotations.
    pub fn annotations(&self) -> &Annotations {
        match self {
            Manifest::Image(m) => &m.annotations,
            Manifest::Index(i) => &i.annotations,
            Manifest::Artifact(a) => &a.annotations,
        }
    }

    /// The artifact type as a referrers listing would report it: `artifactType`, else the config
    /// media type (image-spec 1.1 guidance for older artifacts).
    pub fn effective_artifact_type(&self) -> Option<&str> {
        match self {
            Manifest::Image(m) => {
                m.artifact_type.as_deref().or(Some(m.config.media_type.as_str()).filter(|s| !s.is_empty()))
            }
            Manifest::Index(i) => i.artifact_type.as_deref(),
            Manifest::Artifact(a) => a.artifact_type.as_deref(),
        }
    }
}

/// Manifest bytes as fetched, with their digest and the parsed form. The bytes are the truth.
#[derive(Clone, Debug)]
pub struct RawManifest {
    /// Exact bytes as served.
    pub bytes: bytes::Bytes,
    /// Digest of `bytes` (checked against the reference and `Docker-Content-Digest`).
    pub digest: Digest,
    /// Media type (body, else transport, else shape).
    pub media_type: String,
    /// Parsed form.
    pub manifest: Manifest,
    /// The entity tag the registry sent with it, for a conditional update (`If-Match`); transport
    /// metadata, not part of the content.
    pub etag: Option<String>,
}

impl RawManifest {
    /// Parse bytes that were already digest-checked.
    pub fn parse(bytes: bytes::Bytes, declared: Option<&str>) -> Result<RawManifest> {
        let digest = Digest::sha256(&bytes);
        let (manifest, media_type) = Manifest::parse(&bytes, declared)?;
        Ok(RawManifest { bytes, digest, media_type, manifest, etag: None })
    }

    /// A descriptor for this manifest as served.
    pub fn descriptor(&self) -> Descriptor {
        let mut d = Descriptor::of(&self.media_type, &self.bytes);
        d.digest = self.digest.clone();
        d
    }
}

/// Serialise a value we write (manifest, index, bundle) to its canonical bytes: compact JSON in our
/// structs' fixed field order with ordered maps, so equal inputs give equal digests.
pub fn to_canonical_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("our own types always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_may_be_absent() {
        let m = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
        let (parsed, media_type) = Manifest::parse(m, None).unwrap();
        assert_eq!(media_type, mt::OCI_MANIFEST);
        assert!(matches!(parsed, Manifest::Image(_)));
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let i = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"x","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"future":{"b":1,"a":2}}],"zzz":true}"#;
        let (parsed, _) = Manifest::parse(i, None).unwrap();
        let Manifest::Index(index) = parsed else { panic!() };
        let out = String::from_utf8(to_canonical_bytes(&index)).unwrap();
        assert!(out.contains(r#""future":{"b":1,"a":2}"#), "{out}");
        assert!(out.contains(r#""zzz":true"#), "{out}");
    }

    // Found by the `manifest` fuzz target: without serde_json's `float_roundtrip` feature, numbers in unknown
    // fields go through a float parser that is not correctly rounded, so a read-modify-write changed them
    // (this one became 4.44444444444e+35, the next double up). `cargo test` cannot see the bug by itself:
    // a dev-dependency (jsonschema) turns the feature on for test builds, so the fuzz smoke run, built
    // without dev-dependencies, replays this input too (scripts/fuzz, hand-made seeds).
    #[test]
    fn unknown_float_fields_survive_rewrites() {
        let m = br#"{"schemaVersion":2,"manifests":[],"y":4.4444444444399996e+35}"#;
        let (parsed, media_type) = Manifest::parse(m, None).unwrap();
        let Manifest::Index(once) = parsed else { panic!() };
        let once = to_canonical_bytes(&once);
        assert_eq!(String::from_utf8_lossy(&once), String::from_utf8_lossy(m));
        let (again, _) = Manifest::parse(&once, Some(&media_type)).unwrap();
        let Manifest::Index(again) = again else { panic!() };
        assert_eq!(to_canonical_bytes(&again), once);
    }

    #[test]
    fn empty_config_is_the_spec_descriptor() {
        let d = Descriptor::empty_config();
        assert_eq!(d.digest.to_string(), "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        assert_eq!(d.size, 2);
    }
}
