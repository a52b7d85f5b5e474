//! Pure data: the formats att2ref reads and writes. No I/O, no async; parsing, hashing and
//! serialising only.

pub mod digest;
pub mod media_type;
pub mod oci;
pub mod reference;

pub mod bundle;
pub mod cosign;
pub mod dsse;
pub mod intoto;
mod pbjson;
pub mod pem;
pub mod predicate;
pub mod rekor;
pub mod time;
pub mod trust;

#[cfg(test)]
mod testdata;
