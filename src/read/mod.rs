//! Readers: what is attached to an image digest, in every layout, over any [`Repository`].
//!
//! - [`listing`]: the images of a repository that have a legacy `.att`, page by page;
//! - [`legacy`]: cosign's tag-based `.sig`, `.att` and `.sbom` manifests and their layers;
//! - [`referrers`]: OCI 1.1 referrers (Sigstore bundles, DSSE referrers, `config.mediaType`-typed and
//!   obsolete artifact manifests) and BuildKit attestation manifests inside an index.
//!
//! Readers fetch, digest-check and parse; they decide nothing. Verification, migration and reports
//! are built on what they return.
//!
//! [`Repository`]: crate::store::Repository

pub mod legacy;
pub mod listing;
pub mod referrers;
