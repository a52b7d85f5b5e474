//! The inspection report: plain data, serialised as `att2ref inspect -o json`
//! (`schemas/inspect.schema.json`) and rendered as a tree for people.

use serde::Serialize;

pub use crate::report::{ImageError, SubjectInfo};

use crate::model::digest::Digest;

/// Version of the JSON report format; bumped on incompatible changes.
pub const REPORT_FORMAT: &str = "att2ref.dev/inspect/v1";

/// Everything `inspect` found for one target.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InspectReport {
    /// Always [`REPORT_FORMAT`].
    pub format: &'static str,
    /// The target as given.
    pub target: String,
    /// One entry per image digest inspected (children of an index are nested).
    pub images: Vec<ImageReport>,
    /// Images that could not be inspected, with the reason.
    pub errors: Vec<ImageError>,
    /// The repository the attachments (legacy tags, referrers) were read from and written to, when not the
    /// images' own (`--attachments-repository`, cosign's `COSIGN_REPOSITORY`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments_repository: Option<String>,
}

impl InspectReport {
    /// An empty report for `target`, naming the attachments repository when it is not the images' own.
    pub fn new(target: &str, attachments_repository: Option<String>) -> InspectReport {
        InspectReport {
            format: REPORT_FORMAT,
            target: target.to_owned(),
            images: Vec::new(),
            errors: Vec::new(),
            attachments_repository,
        }
    }
}

/// Everything attached to one image digest.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageReport {
    /// `registry/repo@digest` or `ocidir://path@digest`.
    pub reference: String,
    /// The image digest everything below is attached to.
    pub digest: Digest,
    /// Tags that point at this digest, when known (`--all-tags`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The image manifest itself, or why it is absent.
    pub subject: SubjectInfo,
    /// Platform, for a child of an index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Legacy cosign attachments (`.sig`, `.att`, `.sbom` tags).
    pub legacy: LegacyReport,
    /// OCI 1.1 referrers of this digest.
    pub referrers: ReferrersReport,
    /// BuildKit attestation manifests stored inside the parent index for this digest (read-only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub buildkit_attestations: Vec<BuildkitAttestationReport>,
    /// Platform manifests of an index, each with its own attachments.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ImageReport>,
    /// Things that are odd or wrong but did not stop the inspection.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<Anomaly>,
}

/// Legacy tag-based attachments of one digest.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyReport {
    /// `sha256-<hex>.sig`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signatures: Option<LegacyArtifact>,
    /// `sha256-<hex>.att`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestations: Option<LegacyArtifact>,
    /// `sha256-<hex>.sbom`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sboms: Option<LegacyArtifact>,
}

/// One legacy manifest (`.sig`, `.att` or `.sbom`).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyArtifact {
    /// The tag it lives under.
    pub tag: String,
    /// Manifest digest.
    pub digest: Digest,
    /// Manifest media type.
    pub media_type: String,
    /// Manifest size in bytes.
    pub size: u64,
    /// Sum of the layer sizes: what a consumer downloads to read any one of them.
    pub layers_size: u64,
    /// The config's `created` field when it is a real time (cosign ~1.10 to 2.1 wrote the signing time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_created: Option<String>,
    /// One entry per layer, in manifest order.
    pub layers: Vec<LegacyLayerReport>,
}

/// One layer of a legacy manifest.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyLayerReport {
    /// Position in the manifest.
    pub index: usize,
    /// Layer digest.
    pub digest: Digest,
    /// Layer size in bytes.
    pub size: u64,
    /// Layer media type.
    pub media_type: String,
    /// `dsse-envelope`, `simple-signing`, `sbom` or `unknown`.
    pub content: String,
    /// Predicate type from the signed statement (the only trustworthy source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    /// The cosign short name of the predicate type, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_short_name: Option<String>,
    /// The unsigned `predicateType` layer annotation (cosign ≥ 2.0), when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type_annotation: Option<String>,
    /// in-toto statement `_type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement_type: Option<String>,
    /// Subject digests named by the statement (or the simple-signing payload).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subject_digests: Vec<String>,
    /// Whether a subject digest equals the image digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_matches: Option<bool>,
    /// `key` (no certificate) or `certificate` (keyless or user certificate).
    pub signer: String,
    /// Identity from the certificate SAN, when there is one (unverified: `verify` checks it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_identity: Option<String>,
    /// OIDC issuer from the certificate's Fulcio extension, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_issuer: Option<String>,
    /// Number of signatures (DSSE envelopes may carry several).
    pub signatures: usize,
    /// Transparency-log entry from the legacy Rekor bundle annotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_entry: Option<LogEntryInfo>,
    /// Whether an RFC 3161 timestamp annotation is present.
    pub rfc3161_timestamp: bool,
    /// What the attested content looks like: an UNSIGNED guess for display only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<ContentHintReport>,
    /// The `Timestamp` of a v1 custom-wrapped predicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_timestamp: Option<String>,
    /// How much of the layer was read: `whole` (read and digest-checked), or `prefix`: only its first
    /// `prefixBytes` bytes, unchecked, which name the predicate type and the hint; the statement's subjects,
    /// signatures and timestamp are then not reported (`signatures` is 0). `inspect --full` reads every
    /// layer whole.
    pub read: String,
    /// The bytes read of a `prefix` layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_bytes: Option<u64>,
}

/// A transparency-log entry as recorded next to a legacy layer.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntryInfo {
    /// Body kind and version (`dsse/0.0.1`, `intoto/0.0.1`, `hashedrekord/0.0.1`).
    pub kind: String,
    /// Global log index.
    pub log_index: i64,
    /// Integration time, RFC 3339.
    pub integrated_time: String,
    /// Log id (hex).
    pub log_id: String,
}

/// An unsigned guess at what attested content is.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentHintReport {
    /// Stable id (`spdx-2.2`, `slsa-provenance-v0.2`, …).
    pub id: String,
    /// For people ("looks like SPDX-2.2").
    pub label: String,
    /// Always true: hints come from unsigned sniffing, never from a signature.
    pub unsigned: bool,
    /// True when the hint was read from the first bytes of the content only (`inspect` without `--full`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub from_prefix: bool,
}

/// The referrers of one digest.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrersReport {
    /// `api`, `tag-schema`, or `unusable` (the registry can hold no referrers: anomaly
    /// `referrers-unusable`).
    pub discovery: String,
    /// The fallback tag and its index digest (tag schema only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_schema_index: Option<String>,
    /// One per referrer manifest.
    pub entries: Vec<ReferrerReport>,
}

/// One referrer manifest.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrerReport {
    /// Manifest digest.
    pub digest: Digest,
    /// Manifest size.
    pub size: u64,
    /// Manifest media type.
    pub media_type: String,
    /// artifactType (from the listing, else the manifest, else its config media type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// `sigstore-bundle`, `dsse-envelope`, `config-typed`, `artifact-manifest` (obsolete) or `other`.
    pub format: String,
    /// Bundle version for Sigstore bundles (`v0.3`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_version: Option<String>,
    /// `dsse-envelope` or `message-signature` for bundles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_content: Option<String>,
    /// Predicate type: from the content when read, else from the annotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    /// The `dev.sigstore.bundle.predicateType` annotation, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type_annotation: Option<String>,
    /// `key` or `certificate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// Identity from the certificate SAN (unverified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_identity: Option<String>,
    /// OIDC issuer from the certificate (unverified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_issuer: Option<String>,
    /// Number of transparency-log entries in the bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_entries: Option<usize>,
    /// Whether every log entry carries an inclusion proof.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inclusion_proofs: Option<bool>,
    /// `org.opencontainers.image.created`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Sum of the layer sizes.
    pub layers_size: u64,
    /// Who probably wrote it (`att2ref`, `cosign`, `@sigstore/oci`, `buildkit`), from unsigned clues.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writer_hint: Option<String>,
    /// Content hint for the attested predicate (unsigned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<ContentHintReport>,
}

/// A BuildKit attestation manifest found inside an image index (unsigned statements).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildkitAttestationReport {
    /// Attestation manifest digest.
    pub digest: Digest,
    /// Manifest size.
    pub size: u64,
    /// Predicate types of its layers (`in-toto.io/predicate-type` annotations).
    pub predicate_types: Vec<String>,
    /// Sum of the layer sizes.
    pub layers_size: u64,
}

/// Something odd found while inspecting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Anomaly {
    /// Stable kebab-case code (`subject-missing`, `predicate-type-annotation-mismatch`, …).
    pub code: String,
    /// What and where, for people.
    pub message: String,
}

impl Anomaly {
    /// A new anomaly.
    pub fn new(code: &str, message: impl Into<String>) -> Anomaly {
        Anomaly { code: code.to_owned(), message: message.into() }
    }
}
