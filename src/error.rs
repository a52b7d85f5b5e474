//! The library's one error type.
//!
//! Every failure carries a [`ErrorKind`] that callers branch on (the CLI maps kinds to exit codes), a
//! human context naming what was being done ("fetching manifest sha256:… of registry/repo"), and the
//! underlying cause when there is one. Dependency error types never leak into the public API.

use std::fmt;

/// What went wrong, independent of where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The object definitely does not exist (a registry 404 / `*_UNKNOWN`, a missing layout entry).
    NotFound,
    /// The registry refused our credentials (401) or the operation (403).
    Unauthorized,
    /// The registry throttled us (429) and retries were exhausted.
    RateLimited,
    /// The server or layout does not support the operation (405, `UNSUPPORTED`, …).
    Unsupported,
    /// Bytes did not hash to the digest that named them.
    DigestMismatch,
    /// A size cap was exceeded (declared or actual).
    TooLarge,
    /// Bytes that should be a known format are not (malformed JSON, bad base64, wrong media type, …).
    InvalidFormat,
    /// A user-supplied argument or reference is wrong.
    InvalidInput,
    /// A signature, certificate, log entry or subject did not verify.
    VerificationFailed,
    /// A concurrent writer changed something we were updating.
    Conflict,
    /// The registry answered with an unexpected status (5xx after retries, odd 4xx).
    Registry,
    /// The network failed (connect, TLS, timeout, reset) after retries.
    Network,
    /// Local file-system I/O failed.
    Io,
}

impl ErrorKind {
    /// True for content that is there but unusable — malformed, not matching its digest, oversized —
    /// as opposed to a store that could not be reached or read. Callers fail the one item and go on.
    pub fn is_bad_data(self) -> bool {
        matches!(self, ErrorKind::InvalidFormat | ErrorKind::DigestMismatch | ErrorKind::TooLarge)
    }

    /// True when the store itself could not be read — a denial, a throttle, a dead network or disk — which
    /// any other read of it would meet too, as opposed to one item that is missing, refused or bad. A
    /// caller that can fall back to another read of the same store (a whole blob after a failed prefix)
    /// does so for every other kind.
    pub fn is_access_failure(self) -> bool {
        matches!(self, ErrorKind::Unauthorized | ErrorKind::RateLimited | ErrorKind::Network | ErrorKind::Io)
    }

    /// The kind's name in every report (`error_kind`): kebab-case, stable.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not-found",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::RateLimited => "rate-limited",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::DigestMismatch => "digest-mismatch",
            ErrorKind::TooLarge => "too-large",
            ErrorKind::InvalidFormat => "invalid-format",
            ErrorKind::InvalidInput => "invalid-input",
            ErrorKind::VerificationFailed => "verification-failed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Registry => "registry-error",
            ErrorKind::Network => "network-error",
            ErrorKind::Io => "io-error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::DigestMismatch => "digest mismatch",
            ErrorKind::TooLarge => "too large",
            ErrorKind::InvalidFormat => "invalid format",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::VerificationFailed => "verification failed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Registry => "registry error",
            ErrorKind::Network => "network error",
            ErrorKind::Io => "I/O error",
        };
        f.write_str(s)
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An att2ref error: a kind, a message saying what failed, and an optional cause.
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<BoxError>,
    /// The HTTP status of a registry answer the error stands for, when it is one.
    status: Option<u16>,
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message describing what failed.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), source: None, status: None }
    }

    /// Record the HTTP status of the registry answer this error stands for.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The HTTP status of the registry answer this error stands for, when it is one (a refusal can then be
    /// told from a server failure of the same kind).
    pub fn http_status(&self) -> Option<u16> {
        self.status
    }

    /// Attach the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Prefix the message with what the caller was doing, keeping the kind.
    ///
    /// `err.context("inspecting reg/repo@sha256:…")` reads as `"inspecting reg/repo@sha256:…: <message>"`.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// The kind, for branching.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the cause chain.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True for [`ErrorKind::NotFound`].
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    pub(crate) fn invalid_format(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidFormat, message)
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    pub(crate) fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        let kind = if err.kind() == std::io::ErrorKind::NotFound { ErrorKind::NotFound } else { ErrorKind::Io };
        Error::new(kind, format!("{what}: {err}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        // `{:#}` prints the whole cause chain, as anyhow does.
        if f.alternate() {
            let mut cause = self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static));
            while let Some(c) = cause {
                write!(f, ": {c}")?;
                cause = c.source();
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?}, {:#})", self.kind, self)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::new(ErrorKind::InvalidFormat, format!("invalid JSON: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_kebab_case_of_the_display_text() {
        use ErrorKind::*;
        let all = [
            NotFound,
            Unauthorized,
            RateLimited,
            Unsupported,
            DigestMismatch,
            TooLarge,
            InvalidFormat,
            InvalidInput,
            VerificationFailed,
            Conflict,
            Registry,
            Network,
            Io,
        ];
        for kind in all {
            // The names reports used before they came from the kind itself.
            let derived = kind.to_string().replace(' ', "-").replace("I/O", "io").to_lowercase();
            assert_eq!(kind.name(), derived, "{kind:?}");
        }
        assert_eq!(Io.name(), "io-error");
    }

    #[test]
    fn context_prefixes_and_keeps_kind() {
        let e = Error::new(ErrorKind::NotFound, "manifest unknown").context("fetching r/x:tag");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.to_string(), "fetching r/x:tag: manifest unknown");
    }

    #[test]
    fn alternate_display_shows_cause_chain() {
        let io = std::io::Error::other("disk on fire");
        let e = Error::new(ErrorKind::Io, "writing index.json").with_source(io);
        assert_eq!(format!("{e:#}"), "writing index.json: disk on fire");
        assert_eq!(e.to_string(), "writing index.json");
    }
}
