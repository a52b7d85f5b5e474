//! Minimal PEM encoding and decoding for the test keys and certificates (one block at a time).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::{Error, Result};

/// Encode DER as PEM the way Go's `pem.Encode` does: 64-character lines, `\n` endings.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Decode the first PEM block with the given label.
pub fn decode(label: &str, pem: &str) -> Result<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start =
        pem.find(&begin).ok_or_else(|| Error::invalid_format(format!("PEM block {label:?} not found")))? + begin.len();
    let stop = pem[start..]
        .find(&end)
        .ok_or_else(|| Error::invalid_format(format!("PEM block {label:?} is not terminated")))?
        + start;
    let body: String = pem[start..stop].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(body).map_err(|e| Error::invalid_format(format!("PEM block {label:?} is not valid base64: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_64_char_lines() {
        let der: Vec<u8> = (0..=255u8).collect();
        let pem = encode("CERTIFICATE", &der);
        assert!(pem.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
        assert_eq!(decode("CERTIFICATE", &pem).unwrap(), der);
        let err = decode("PUBLIC KEY", &pem).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidFormat, "{err}");
        assert_eq!(err.to_string(), r#"PEM block "PUBLIC KEY" not found"#);
    }
}
