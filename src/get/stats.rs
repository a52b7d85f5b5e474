//! What a `get` read, counted by the library on any store (the registry client's own counters add the
//! HTTP view: requests including auth, and every body byte).

use serde::Serialize;

use crate::model::digest::Digest;
use crate::store::PrefixRead;

/// Counts of one `get`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetStats {
    /// How referrers were listed (once, unfiltered): `api` or `tag-schema`; `unusable` when the registry can
    /// hold none (its referrers tag answers with the image itself: GitLab).
    pub discovery: String,
    /// Referrer entries listed that could be attestations: Sigstore bundles (v0.1–v0.3), DSSE envelopes
    /// (any of their artifactTypes) and entries without an artifactType. Other artifacts are not counted.
    pub referrers_listed: usize,
    /// Of those, entries with a predicate type annotation: `dev.sigstore.bundle.predicateType` on bundles,
    /// `in-toto.io/predicate-type` on DSSE envelopes.
    pub referrers_annotated: usize,
    /// Entries never fetched because their annotations named another type or content hint.
    pub referrers_skipped: usize,
    /// Entries without annotations (other writers).
    pub referrers_unannotated: usize,
    /// Of those, how many had to be fetched (only when nothing annotated matched).
    pub referrers_unannotated_fetched: usize,
    /// Entries listed whose manifest is gone, skipped: a listing that lags deletions (Artifact Registry
    /// kept deleted manifests listed for hours, chainguard-dev/terraform-provider-cosign#581).
    pub referrers_missing: usize,
    /// Manifests and indexes read (referrer listings from a tag-schema index included).
    pub manifests_read: usize,
    /// Their bytes.
    pub manifest_bytes: u64,
    /// Candidates read whose signed content turned out not to match the query (another type or content
    /// hint than their annotations said, or no in-toto statement).
    pub read_not_matching: usize,
    /// Blobs read whole (bundles, legacy layers).
    pub blobs_read: usize,
    /// Blob bytes that arrived: whole blobs and the starts of legacy layers
    /// ([`LegacyStats::prefix_bytes`]).
    pub blob_bytes: u64,
    /// The legacy `.att` path, when it was consulted.
    pub legacy: Option<LegacyStats>,
}

/// What the legacy `.att` path cost.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyStats {
    /// Whether the `.att` tag exists.
    pub found: bool,
    /// Its layers.
    pub layers: usize,
    /// Their declared bytes: what a reader that downloads everything (cosign) reads.
    pub layers_bytes: u64,
    /// Layers with a `predicateType` annotation (cosign ≥ 2.0), which can be skipped unread.
    pub layers_annotated: usize,
    /// Layers read.
    pub layers_read: usize,
    /// Their bytes.
    pub bytes_read: u64,
    /// Layers read whole only because nothing but their content says their type (no annotation: cosign
    /// < 2.0).
    pub layers_read_to_learn_type: usize,
    /// Layers of which only the start was read, to learn their type or content hint.
    pub layers_read_partially: usize,
    /// Bytes that arrived for those starts (more than asked for when a registry ignored `Range`).
    pub prefix_bytes: u64,
    /// Layers left unread because their start named another type or content.
    pub layers_skipped_by_prefix: usize,
    /// Each start read, in layer order.
    pub prefixes: Vec<PrefixStats>,
}

/// One legacy layer of which only the start was read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrefixStats {
    /// Layer position.
    pub layer: usize,
    /// The layer blob.
    pub blob: Digest,
    /// Its declared size.
    pub size: u64,
    /// Bytes of its start that were used.
    pub bytes: u64,
    /// Bytes that arrived.
    pub transferred: u64,
    /// How: `range` (206), `range-ignored` (200, cut and dropped), `local`, `whole`.
    pub read: PrefixRead,
    /// The predicate type the start names, when it holds the whole member (unsigned).
    pub predicate_type: Option<String>,
    /// The content hint the start names, when it names a format (unsigned).
    pub hint: Option<String>,
    /// `read-whole`, or why the layer was left unread.
    pub outcome: String,
}

/// What reading a legacy `.att` costs, for comparison when the answer came from referrers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyCost {
    /// The `.att` manifest's bytes.
    pub manifest_bytes: u64,
    /// Its layers.
    pub layers: usize,
    /// Their declared bytes: what downloading every layer reads (cosign `download attestation`).
    pub layers_bytes: u64,
    /// Layers with a `predicateType` annotation.
    pub layers_annotated: usize,
}
