//! Content digests (`sha256:<hex>`) and the tag names derived from them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha512};

use crate::error::{Error, Result};

/// A validated OCI content digest. Only `sha256` and `sha512` are accepted: they are the only
/// algorithms registries and cosign use, and accepting unknown ones would let a hostile registry name
/// content we cannot check.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// A digest algorithm we can compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, 64 lowercase hex characters.
    Sha256,
    /// SHA-512, 128 lowercase hex characters.
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as written in digests.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl Digest {
    /// The SHA-256 digest of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Digest {
        Digest { algorithm: Algorithm::Sha256, hex: hex::encode(Sha256::digest(bytes)) }
    }

    /// Build a digest from an algorithm and raw hash bytes.
    pub fn from_raw(algorithm: Algorithm, raw: &[u8]) -> Result<Digest> {
        let hex = hex::encode(raw);
        if hex.len() != algorithm.hex_len() {
            return Err(Error::invalid_format(format!(
                "{} hash must be {} bytes",
                algorithm.as_str(),
                algorithm.hex_len() / 2
            )));
        }
        Ok(Digest { algorithm, hex })
    }

    /// The digest of `bytes` with this digest's algorithm.
    pub fn compute_like(&self, bytes: &[u8]) -> Digest {
        match self.algorithm {
            Algorithm::Sha256 => Digest::sha256(bytes),
            Algorithm::Sha512 => Digest { algorithm: Algorithm::Sha512, hex: hex::encode(Sha512::digest(bytes)) },
        }
    }

    /// Check that `bytes` hash to this digest; the error names both digests.
    pub fn verify(&self, bytes: &[u8]) -> Result<()> {
        let actual = self.compute_like(bytes);
        if &actual == self {
            Ok(())
        } else {
            Err(Error::new(
                crate::error::ErrorKind::DigestMismatch,
                format!("content digest mismatch: expected {self}, got {actual}"),
            ))
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex encoding of the hash.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The raw hash bytes.
    pub fn raw(&self) -> Vec<u8> {
        hex::decode(&self.hex).expect("validated hex")
    }

    /// The OCI referrers tag-schema tag for this digest: `<alg>-<hex>` (distribution-spec 1.1,
    /// "Referrers Tag Schema"; both parts already fit the 32/64-character truncation for sha256).
    pub fn referrers_tag(&self) -> String {
        let alg: String = self.algorithm.as_str().chars().take(32).collect();
        let hex: String = self.hex.chars().take(64).collect();
        format!("{alg}-{hex}")
    }

    /// The subject a referrers tag-schema tag (`<alg>-<hex>`, no suffix) stands for; `None` for any other
    /// tag, cosign's `sha256-<hex>.att` included.
    pub fn from_referrers_tag(tag: &str) -> Option<Digest> {
        if tag.contains('.') {
            return None;
        }
        let (alg, hex) = tag.split_once('-')?;
        let d: Digest = format!("{alg}:{hex}").parse().ok()?;
        (d.referrers_tag() == tag).then_some(d)
    }

    /// A cosign legacy tag for this digest with the given suffix (`sig`, `att`, `sbom`).
    pub fn cosign_tag(&self, suffix: &str) -> String {
        format!("{}-{}.{suffix}", self.algorithm.as_str(), self.hex)
    }

    /// A short form for humans: `sha256:9bd049b6b470`.
    pub fn short(&self) -> String {
        format!("{}:{}", self.algorithm.as_str(), &self.hex[..12])
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Digest> {
        let (alg, hex) =
            s.split_once(':').ok_or_else(|| Error::invalid_format(format!("digest {s:?} has no algorithm prefix")))?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => return Err(Error::invalid_format(format!("unsupported digest algorithm {other:?} in {s:?}"))),
        };
        if hex.len() != algorithm.hex_len() || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(Error::invalid_format(format!(
                "digest {s:?} must have {} lowercase hex characters",
                algorithm.hex_len()
            )));
        }
        Ok(Digest { algorithm, hex: hex.to_owned() })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A digest computed as bytes pass, for content too large to hold at once.
pub(crate) enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    /// A hasher for `algorithm`.
    pub(crate) fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    /// Add the next bytes.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of every byte added.
    pub(crate) fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest { algorithm: Algorithm::Sha256, hex: hex::encode(h.finalize()) },
            Hasher::Sha512(h) => Digest { algorithm: Algorithm::Sha512, hex: hex::encode(h.finalize()) },
        }
    }
}

/// Parse a cosign legacy tag (`sha256-<hex>.att`) into the image digest and suffix.
pub fn parse_cosign_tag(tag: &str) -> Option<(Digest, &str)> {
    let (stem, suffix) = tag.rsplit_once('.')?;
    let (alg, hex) = stem.split_once('-')?;
    let digest = format!("{alg}:{hex}").parse().ok()?;
    Some((digest, suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let d: Digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a".parse().unwrap();
        assert_eq!(d, Digest::sha256(b"{}"));
        assert_eq!(d.referrers_tag(), "sha256-44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        assert_eq!(d.cosign_tag("att"), "sha256-44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a.att");
        assert_eq!(parse_cosign_tag(&d.cosign_tag("sig")), Some((d.clone(), "sig")));
    }

    #[test]
    fn rejects_bad_digests() {
        // input, fragment the message must contain
        for (bad, want) in [
            ("sha256:ABC", "must have 64 lowercase hex characters"),
            ("md5:00", "unsupported digest algorithm \"md5\""),
            ("sha256", "has no algorithm prefix"),
            // The right length, so only the case check can refuse it (both checks share one message).
            ("sha256:44136FA355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "must have 64 lowercase hex"),
            ("sha512:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "must have 128 lowercase"),
        ] {
            let err = bad.parse::<Digest>().unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidFormat, "{bad}: {err}");
            assert!(err.to_string().contains(want), "{bad}: {want:?} not in {err}");
        }
    }

    #[test]
    fn verify_names_both() {
        let d = Digest::sha256(b"a");
        let err = d.verify(b"b").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::DigestMismatch, "{err}");
        assert!(err.to_string().contains(&d.to_string()));
        assert!(err.to_string().contains(&Digest::sha256(b"b").to_string()), "{err}");
        assert!(parse_cosign_tag("latest").is_none());
        assert!(parse_cosign_tag("sha256-zz.att").is_none());
    }

    #[test]
    fn hashing_in_pieces_matches_hashing_at_once() {
        let bytes = b"several pieces of one blob";
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let mut hasher = Hasher::new(algorithm);
            for piece in bytes.chunks(5) {
                hasher.update(piece);
            }
            let whole = match algorithm {
                Algorithm::Sha256 => Digest::sha256(bytes),
                Algorithm::Sha512 => Digest { algorithm, hex: hex::encode(Sha512::digest(bytes)) },
            };
            assert_eq!(hasher.finish(), whole, "{}", algorithm.as_str());
        }
    }
}
