//! What a `get` read, counted by the library on any store (the registry client's own counters add the
//! HTTP view: requests including auth, and every body byte).

use serde::Serialize;

/// Counts of one `get`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetStats {
    /// How referrers were listed (once, unfiltered): `api` or `tag-schema`.
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
    /// Manifests and indexes read (referrer listings from a tag-schema index included).
    pub manifests_read: usize,
    /// Their bytes.
    pub manifest_bytes: u64,
    /// Candidates read whose signed content turned out not to match the query (another type or content
    /// hint than their annotations said, or no in-toto statement).
    pub read_not_matching: usize,
    /// Blobs read (bundles, legacy layers).
    pub blobs_read: usize,
    /// Their bytes.
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
    /// Layers read only because nothing but their content says their type (no annotation: cosign < 2.0).
    pub layers_read_to_learn_type: usize,
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
