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

/// The exit code for an error that ended the run. A usage error is 2 whatever the library said: a
/// malformed `--key` is `invalid format` to the library, but it is the command line that is wrong, not the
/// data being checked.
pub fn for_error(e: &anyhow::Error) -> ExitCode {
    if e.downcast_ref::<Usage>().is_some() {
        return ExitCode::from(COULD_NOT_CHECK);
    }
    let kind = e.chain().find_map(|c| c.downcast_ref::<Error>()).map(Error::kind);
    ExitCode::from(kind.map_or(COULD_NOT_CHECK, for_kind))
}

/// Context marking an error as a mistake on the command line (a flag's file unreadable or malformed).
/// It reads as the flag it names (`--key PATH`), so the message is unchanged.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `result` with its error marked as a usage error about `what` (a flag and its value).
pub fn usage<T, E>(result: Result<T, E>, what: impl FnOnce() -> String) -> anyhow::Result<T>
where
    Result<T, E>: anyhow::Context<T, E>,
{
    anyhow::Context::with_context(result, || Usage(what()))
}

/// Writing to a closed pipe (`att2ref … | head`) is not an error.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usage_error_is_2_under_any_context_and_whatever_the_library_kind() {
        let bad_data = || Err::<(), _>(Error::new(ErrorKind::InvalidFormat, "no PEM block"));
        assert_eq!(for_error(&anyhow::Error::from(bad_data().unwrap_err())), ExitCode::from(CHECK_FAILED));
        let e = usage(bad_data(), || "--key k.pem".into()).unwrap_err().context("setting up");
        assert_eq!(for_error(&e), ExitCode::from(COULD_NOT_CHECK));
        assert_eq!(format!("{e:#}"), "setting up: --key k.pem: no PEM block");
    }
}
