//! Pure data: the formats att2ref reads and writes. No I/O, no async; parsing, hashing and
//! serialising only.

pub mod bundle;
pub mod cosign;
pub mod digest;
pub mod dsse;
pub mod envelope_prefix;
pub mod intoto;
pub(crate) mod json_outline;
pub mod json_prefix;
pub mod media_type;
pub mod oci;
mod pbjson;
pub mod pem;
pub mod predicate;
pub mod reference;
pub mod referrers_index;
pub mod rekor;
pub mod signed_statement;
pub mod time;
pub mod trust;

#[cfg(test)]
pub(crate) mod testdata;
