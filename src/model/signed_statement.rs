//! A DSSE envelope around an in-toto statement, parsed once and kept with the exact bytes it came from.
//!
//! Reading, verifying and converting a legacy `.att` layer each need the envelope (its payload decoded
//! from base64) and the statement inside; for a 1.5 MB SBOM every parse costs milliseconds. A
//! [`SignedStatement`] is parsed once and handed to all three. Its parts are private and only
//! [`SignedStatement::parse`] makes one, so whoever is given one sees exactly what its bytes say.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::model::dsse::Envelope;
use crate::model::intoto::Statement;

/// A DSSE-enveloped in-toto statement with its exact bytes.
#[derive(Clone, Debug)]
pub struct SignedStatement {
    bytes: Bytes,
    envelope: Envelope,
    statement: Statement,
}

impl SignedStatement {
    /// Parse envelope bytes; the payload type must be in-toto's and the payload a statement.
    pub fn parse(bytes: Bytes) -> Result<SignedStatement> {
        let envelope = Envelope::parse(&bytes)?;
        if !envelope.is_in_toto() {
            return Err(Error::invalid_format(format!(
                "DSSE payloadType is {:?}, not an in-toto statement",
                envelope.payload_type.chars().take(100).collect::<String>()
            )));
        }
        let statement = Statement::parse(&envelope.payload)?;
        Ok(SignedStatement { bytes, envelope, statement })
    }

    /// The envelope bytes exactly as stored (log entries hash them).
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The envelope, its payload decoded.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The statement the payload holds.
    pub fn statement(&self) -> &Statement {
        &self.statement
    }

    /// The bytes, the envelope and the statement, for a caller that keeps them apart.
    pub fn into_parts(self) -> (Bytes, Envelope, Statement) {
        (self.bytes, self.envelope, self.statement)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn envelope(payload_type: &str, payload: &str) -> Bytes {
        let payload = base64::engine::general_purpose::STANDARD.encode(payload);
        Bytes::from(format!(
            r#"{{"payloadType":"{payload_type}","payload":"{payload}","signatures":[{{"keyid":"","sig":"AA=="}}]}}"#
        ))
    }

    #[test]
    fn the_parts_come_from_the_bytes() {
        let statement = r#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://example.com/p","subject":[{"name":"x","digest":{"sha256":"00"}}],"predicate":{}}"#;
        let bytes = envelope("application/vnd.in-toto+json", statement);
        let signed = SignedStatement::parse(bytes.clone()).unwrap();
        assert_eq!(signed.bytes(), &bytes);
        assert_eq!(signed.envelope().payload, statement.as_bytes());
        assert_eq!(signed.statement().predicate_type, "https://example.com/p");
        let (_, envelope, _) = signed.into_parts();
        assert_eq!(envelope.signatures.len(), 1);
    }

    #[test]
    fn another_payload_type_or_no_statement_is_refused() {
        let err = SignedStatement::parse(envelope("text/plain", "{}")).unwrap_err();
        assert!(err.to_string().contains("\"text/plain\", not an in-toto statement"), "{err}");
        let err = SignedStatement::parse(envelope("application/vnd.in-toto+json", "[]")).unwrap_err();
        assert!(err.to_string().contains("in-toto statement"), "{err}");
    }
}
