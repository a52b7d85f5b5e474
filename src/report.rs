//! Records that several commands' reports share: an image that could not be handled, and what is
//! known of a subject manifest.

use serde::Serialize;

/// An image that could not be inspected or verified.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageError {
    /// The error kind, for exit codes.
    #[serde(skip)]
    pub kind: crate::ErrorKind,
    /// The image (reference or `repo@digest`).
    pub image: String,
    /// The error kind's name ([`crate::ErrorKind::name`]), the same field as in every report.
    pub error_kind: String,
    /// What failed and why.
    pub message: String,
}

impl ImageError {
    /// The record for `error` on `image`.
    pub fn new(image: &str, error: &crate::Error) -> ImageError {
        ImageError {
            kind: error.kind(),
            image: image.to_owned(),
            error_kind: error.kind().name().to_owned(),
            message: format!("{error:#}"),
        }
    }
}

/// The subject manifest.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectInfo {
    /// False when the registry definitely has no manifest with this digest (an orphan).
    pub present: bool,
    /// Media type as served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// `image`, `index` or `artifact`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// Registry client counters for the whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RequestStats {
    /// HTTP requests sent.
    pub requests: u64,
    /// Retries after throttling, server errors or connection errors.
    pub retries: u64,
    /// Bytes received.
    pub bytes_downloaded: u64,
    /// Bytes sent.
    pub bytes_uploaded: u64,
    /// 429 answers (each paused every request to that registry and lowered how many run at once).
    pub throttled: u64,
}

impl RequestStats {
    /// What `client` did so far; `None` when it sent nothing (a run on OCI layouts only).
    pub fn of(client: &crate::store::registry::RegistryClient) -> Option<RequestStats> {
        let s = client.stats();
        (s.requests > 0).then_some(RequestStats {
            requests: s.requests,
            retries: s.retries,
            bytes_downloaded: s.bytes_downloaded,
            bytes_uploaded: s.bytes_uploaded,
            throttled: s.throttled,
        })
    }
}
