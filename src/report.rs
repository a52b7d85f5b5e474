//! Records that several commands' reports share: an image that could not be handled, and what is
//! known of a subject manifest.

use serde::Serialize;

/// An image that could not be inspected or verified.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageError {
    /// The error kind, for exit codes.
    #[serde(skip)]
    pub error_kind: crate::ErrorKind,
    /// The image (reference or `repo@digest`).
    pub image: String,
    /// Error kind (see [`crate::ErrorKind`]), kebab-case.
    pub kind: String,
    /// What failed and why.
    pub message: String,
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
