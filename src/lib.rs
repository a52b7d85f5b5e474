//! att2ref reads cosign's legacy attestation storage (`sha256-<digest>.att` and friends), verifies it,
//! and rewrites each attestation as its own OCI 1.1 referrer holding a Sigstore bundle.
//!
//! Layers, bottom up: [`model`] (pure formats), [`store`] (registries and OCI layouts behind one
//! [`store::Repository`] trait), [`inspect`] (discovery and reporting). The library never prints or
//! exits; everything returns [`Result`] with a typed [`ErrorKind`].

#![warn(missing_docs)]

pub mod demo;
pub mod error;
pub mod inspect;
pub mod limits;
pub mod model;
pub mod read;
pub mod store;
pub mod verify;

pub use error::{Error, ErrorKind, Result};
pub use limits::Limits;

/// Prefix of the annotations att2ref writes on the referrers it creates (provenance of a migration).
pub const ANNOTATION_PREFIX: &str = "dev.att2ref.";
