//! Size and count caps, in one place so parsers, stores and verifiers agree.

/// Caps applied to everything read from a registry or layout. Defaults follow the registries and
/// peers: 4 MiB manifests (distribution's own limit and oras-go's), 1000 layers (cosign's `maxLayers`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest manifest or index accepted, in bytes.
    pub max_manifest_bytes: u64,
    /// Largest layer blob (DSSE envelope, bundle, simple-signing payload) accepted, in bytes.
    pub max_blob_bytes: u64,
    /// Largest total of one image's legacy `.att` and `.sig` layers, as their descriptors declare them:
    /// they are held together while the image is verified and converted, so this bounds the memory of
    /// one image (a manifest listing one large blob a thousand times stays within each blob's cap).
    pub max_legacy_bytes: u64,
    /// Most layers read from one legacy manifest.
    pub max_layers: usize,
    /// Most platform manifests inspected under one image index (each costs several requests).
    pub max_index_entries: usize,
    /// Most entries accepted in one referrers listing (all pages together).
    pub max_referrers: usize,
    /// Most tags accepted from one repository listing (all pages together).
    pub max_tags: usize,
    /// Most pages followed for one paginated listing.
    pub max_pages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_manifest_bytes: 4 * 1024 * 1024,
            max_blob_bytes: 64 * 1024 * 1024,
            max_legacy_bytes: 256 * 1024 * 1024,
            max_layers: 1000,
            max_index_entries: 1000,
            max_referrers: 100_000,
            max_tags: 1_000_000,
            max_pages: 10_000,
        }
    }
}
