//! Pure data: the formats att2ref reads and writes. No I/O, no async; parsing, hashing and
//! serialising only.

pub mod digest;
pub mod media_type;
pub mod oci;
pub mod reference;
