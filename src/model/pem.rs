//! PEM (RFC 7468) decoding: the certificates and keys cosign stores as PEM text in annotations and log
//! entries.

use super::dsse::decode_base64_any;
use crate::error::{Error, Result};

/// One PEM block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PemBlock {
    /// The label (`CERTIFICATE`, `PUBLIC KEY`, …).
    pub label: String,
    /// The decoded DER bytes.
    pub der: Vec<u8>,
}

/// Decode every PEM block in `text`, in order. Text between blocks is ignored, as RFC 7468 allows;
/// a block without its END line, or with a mismatched END label, is an error.
pub fn decode_all(text: &str) -> Result<Vec<PemBlock>> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some((label, body)) = current.as_mut() {
            if let Some(end) = pem_marker(line, "END") {
                if end != label {
                    return Err(Error::invalid_format(format!(
                        "PEM line {}: END label {:?} does not match BEGIN label {label:?}",
                        n + 1,
                        short(end)
                    )));
                }
                let der = decode_base64_any(body).map_err(|e| e.context(format!("PEM block {label:?}")))?;
                blocks.push(PemBlock { label: label.clone(), der });
                current = None;
            } else {
                body.push_str(line);
            }
        } else if let Some(label) = pem_marker(line, "BEGIN") {
            current = Some((label.to_owned(), String::new()));
        }
    }
    if let Some((label, _)) = current {
        return Err(Error::invalid_format(format!("PEM block {label:?} has no END line")));
    }
    Ok(blocks)
}

/// Decode the `CERTIFICATE` blocks of `text` (a leaf, or a concatenated chain). Any other block is an
/// error, so a key where a certificate belongs is noticed.
pub fn decode_certificates(text: &str) -> Result<Vec<Vec<u8>>> {
    decode_all(text)?
        .into_iter()
        .map(|b| {
            if b.label == "CERTIFICATE" {
                Ok(b.der)
            } else {
                Err(Error::invalid_format(format!("expected a PEM CERTIFICATE, found {:?}", short(&b.label))))
            }
        })
        .collect()
}

fn pem_marker<'a>(line: &'a str, which: &str) -> Option<&'a str> {
    line.strip_prefix("-----")?.strip_prefix(which)?.strip_prefix(' ')?.strip_suffix("-----")
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMAMC\nAQE=\n-----END CERTIFICATE-----\n";

    #[test]
    fn decodes_blocks_and_chains() {
        assert_eq!(decode_certificates(CERT).unwrap(), vec![vec![0x30, 0x03, 0x02, 0x01, 0x01]]);
        let chain = format!("explanatory text\r\n{CERT}{}", CERT.replace('\n', "\r\n"));
        assert_eq!(decode_certificates(&chain).unwrap().len(), 2);
        let key = "-----BEGIN PUBLIC KEY-----\nAQ==\n-----END PUBLIC KEY-----";
        assert_eq!(decode_all(key).unwrap(), vec![PemBlock { label: "PUBLIC KEY".into(), der: vec![1] }]);
        assert!(decode_certificates(key).unwrap_err().to_string().contains("PUBLIC KEY"));
        assert!(decode_certificates("").unwrap().is_empty());
    }

    #[test]
    fn rejects_broken_blocks() {
        for (bad, want) in [
            ("-----BEGIN CERTIFICATE-----\nAQ==\n", "no END line"),
            ("-----BEGIN CERTIFICATE-----\nAQ==\n-----END KEY-----", "does not match"),
            ("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----", "invalid base64"),
        ] {
            assert!(decode_all(bad).unwrap_err().to_string().contains(want), "{bad}");
        }
    }
}
