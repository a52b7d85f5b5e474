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
