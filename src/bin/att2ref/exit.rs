//! Exit codes (documented in the README): 0 success, 1 the data failed a check, 2 could not check.

use std::process::ExitCode;

use att2ref::{Error, ErrorKind};

/// The data failed a check: malformed, digest mismatch, oversized, bad signature or subject.
pub const CHECK_FAILED: u8 = 1;
/// Could not check: usage, network, auth, registry, file system, not found.
pub const COULD_NOT_CHECK: u8 = 2;

/// The exit code for a library error kind.
pub fn for_kind(kind: ErrorKind) -> u8 {
    if kind.is_bad_data() || kind == ErrorKind::VerificationFailed { CHECK_FAILED } else { COULD_NOT_CHECK }
}

/// The exit code for a whole run: 2 if anything could not be checked, else 1 if anything failed a check.
pub fn worst(kinds: impl IntoIterator<Item = ErrorKind>) -> ExitCode {
    let mut code = 0u8;
    for kind in kinds {
        code = match (code, for_kind(kind)) {
            (COULD_NOT_CHECK, _) | (_, COULD_NOT_CHECK) => COULD_NOT_CHECK,
            _ => CHECK_FAILED,
        };
    }
    ExitCode::from(code)
}

/// The exit code for an error that ended the run.
pub fn for_error(e: &anyhow::Error) -> ExitCode {
    let kind = e.chain().find_map(|c| c.downcast_ref::<Error>()).map(Error::kind);
    ExitCode::from(kind.map_or(COULD_NOT_CHECK, for_kind))
}

/// Writing to a closed pipe (`att2ref … | head`) is not an error.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}
