//! Distribution error bodies (`{"errors":[{"code","message","detail"}]}`) and the mapping from an
//! HTTP answer to an [`ErrorKind`].

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, ErrorKind};

/// One entry of a distribution error body.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub(crate) struct ErrorEntry {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub detail: Option<Value>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

/// Most characters of a server's text kept in one of our messages: enough to read, not a whole page.
const MAX_QUOTED: usize = 300;

/// The entries of a distribution error body; empty when the body is something else (plain text,
/// HTML, an empty 404).
pub(crate) fn parse_error_body(body: &[u8]) -> Vec<ErrorEntry> {
    serde_json::from_slice::<ErrorBody>(body).map(|b| b.errors).unwrap_or_default()
}

/// True when the answer says, for certain, that the named object does not exist: a distribution
/// `*_UNKNOWN` error code, or a 404 with no body at all (HEAD answers carry none).
///
/// A 404 with any other body — a proxy's HTML page, a `DENIED` some registries use to hide private
/// repositories — is NOT a definite not-found: reading it as "absent" would let a caller overwrite a
/// referrers index it could not see.
pub(crate) fn is_not_found(status: StatusCode, body: &[u8]) -> bool {
    if !status.is_client_error() || matches!(status.as_u16(), 401 | 403 | 429) {
        return false;
    }
    let unknown = parse_error_body(body)
        .iter()
        .any(|e| matches!(e.code.as_str(), "MANIFEST_UNKNOWN" | "NAME_UNKNOWN" | "BLOB_UNKNOWN"));
    unknown || (status == StatusCode::NOT_FOUND && body.iter().all(u8::is_ascii_whitespace))
}

/// The kind for a failed answer: the status decides, the error code refines the ambiguous 400.
pub(crate) fn kind_for(status: StatusCode, body: &[u8]) -> ErrorKind {
    let entries = parse_error_body(body);
    let has = |code: &str| entries.iter().any(|e| e.code == code);
    match status.as_u16() {
        401 | 403 => ErrorKind::Unauthorized,
        _ if is_not_found(status, body) => ErrorKind::NotFound,
        405 => ErrorKind::Unsupported,
        413 => ErrorKind::TooLarge,
        429 => ErrorKind::RateLimited,
        500..=599 => ErrorKind::Registry,
        _ if has("DENIED") || has("UNAUTHORIZED") => ErrorKind::Unauthorized,
        _ if has("TOOMANYREQUESTS") => ErrorKind::RateLimited,
        _ if has("UNSUPPORTED") => ErrorKind::Unsupported,
        _ if has("DIGEST_INVALID") => ErrorKind::DigestMismatch,
        _ if has("SIZE_INVALID") => ErrorKind::TooLarge,
        _ => ErrorKind::Registry,
    }
}

/// An error for an unexpected answer. `what` names the method, repository and reference
/// ("GET manifest reg/repo:tag"); the message adds the status and what the server said.
pub(crate) fn status_error(what: &str, status: StatusCode, body: &[u8]) -> Error {
    let entries = parse_error_body(body);
    let mut message = format!("{what}: registry answered HTTP {status}");
    if entries.is_empty() {
        let text = quote(&String::from_utf8_lossy(body));
        if !text.is_empty() {
            message.push_str(&format!(": {text}"));
        }
    } else {
        for e in &entries {
            message.push_str(&format!(": {}", e.code));
            if !e.message.is_empty() {
                message.push_str(&format!(" ({})", quote(&e.message)));
            }
            if let Some(detail) = e.detail.as_ref().filter(|d| !d.is_null()) {
                message.push_str(&format!(" [detail: {}]", quote(&detail.to_string())));
            }
        }
    }
    Error::new(kind_for(status, body), message).with_status(status.as_u16())
}

/// A server's text reduced to one bounded line, so an HTML page cannot flood a message.
fn quote(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > MAX_QUOTED {
        format!("{}…", line.chars().take(MAX_QUOTED).collect::<String>())
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_distribution_error_body() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v1"}}]}"#;
        let entries = parse_error_body(body);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].code, "MANIFEST_UNKNOWN");
        assert!(is_not_found(StatusCode::NOT_FOUND, body));
        let err = status_error("GET manifest r/x:v1", StatusCode::NOT_FOUND, body);
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.message().contains("GET manifest r/x:v1"), "{err}");
        assert!(err.message().contains("MANIFEST_UNKNOWN (manifest unknown)"), "{err}");
        assert!(err.message().contains("\"Tag\":\"v1\""), "{err}");
    }

    #[test]
    fn non_json_bodies_are_quoted_briefly() {
        assert!(parse_error_body(b"404 page not found\n").is_empty());
        let err = status_error("GET referrers", StatusCode::NOT_FOUND, b"404 page not found\n");
        assert!(err.message().ends_with(": 404 page not found"), "{err}");
        let html = "<html>".repeat(1000);
        let err = status_error("GET x", StatusCode::BAD_GATEWAY, html.as_bytes());
        assert_eq!(err.kind(), ErrorKind::Registry);
        assert!(err.message().len() < 500);
    }

    #[test]
    fn maps_statuses_and_codes() {
        let entry = |code: &str| format!(r#"{{"errors":[{{"code":"{code}","message":""}}]}}"#).into_bytes();
        assert_eq!(kind_for(StatusCode::UNAUTHORIZED, b""), ErrorKind::Unauthorized);
        assert_eq!(kind_for(StatusCode::FORBIDDEN, b""), ErrorKind::Unauthorized);
        assert_eq!(kind_for(StatusCode::METHOD_NOT_ALLOWED, b""), ErrorKind::Unsupported);
        assert_eq!(kind_for(StatusCode::TOO_MANY_REQUESTS, b""), ErrorKind::RateLimited);
        assert_eq!(kind_for(StatusCode::SERVICE_UNAVAILABLE, b""), ErrorKind::Registry);
        assert_eq!(kind_for(StatusCode::BAD_REQUEST, &entry("DIGEST_INVALID")), ErrorKind::DigestMismatch);
        assert_eq!(kind_for(StatusCode::BAD_REQUEST, &entry("DENIED")), ErrorKind::Unauthorized);
        assert_eq!(kind_for(StatusCode::BAD_REQUEST, &entry("MANIFEST_UNKNOWN")), ErrorKind::NotFound);
        assert_eq!(kind_for(StatusCode::BAD_REQUEST, &entry("MANIFEST_INVALID")), ErrorKind::Registry);
        assert!(!is_not_found(StatusCode::FORBIDDEN, &entry("NAME_UNKNOWN")));
    }

    #[test]
    fn only_a_definite_404_is_not_found() {
        let entry = |code: &str| format!(r#"{{"errors":[{{"code":"{code}","message":""}}]}}"#).into_bytes();
        assert!(is_not_found(StatusCode::NOT_FOUND, b""), "HEAD answers have no body");
        assert!(is_not_found(StatusCode::NOT_FOUND, &entry("MANIFEST_UNKNOWN")));
        // Registries that hide private repositories behind a 404, and proxies' HTML pages.
        assert!(!is_not_found(StatusCode::NOT_FOUND, &entry("DENIED")));
        assert_eq!(kind_for(StatusCode::NOT_FOUND, &entry("DENIED")), ErrorKind::Unauthorized);
        assert!(!is_not_found(StatusCode::NOT_FOUND, b"<html><body>Not Found</body></html>"));
        assert_eq!(kind_for(StatusCode::NOT_FOUND, b"<html>Not Found</html>"), ErrorKind::Registry);
        assert_eq!(kind_for(StatusCode::NOT_FOUND, &entry("TOOMANYREQUESTS")), ErrorKind::RateLimited);
    }
}
