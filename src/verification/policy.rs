//! What a caller trusts and requires: keys, a trusted root, certificate identities, and whether the
//! transparency log may be skipped.

use std::fmt;
use std::sync::Arc;

use regex::Regex;

use super::cert::{CertificateInfo, San};
use super::keys::PublicKey;
use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::model::trust::TrustedRoot;

/// Compares a certificate value with an exact string or a regular expression.
///
/// Regular expressions are unanchored, as cosign's `--certificate-identity-regexp` (Go `MatchString`):
/// write `^…$` to match a whole value.
#[derive(Clone, Debug)]
pub enum Matcher {
    /// The value must equal this string.
    Exact(String),
    /// The value must contain a match of this expression.
    Regex(Regex),
}

impl Matcher {
    /// An exact matcher.
    pub fn exact(value: impl Into<String>) -> Matcher {
        Matcher::Exact(value.into())
    }

    /// A regular-expression matcher; an invalid expression is an [`crate::ErrorKind::InvalidInput`] error.
    ///
    /// Unanchored, as cosign's Go `regexp.MatchString` is. One difference from Go remains: `\d`, `\w`,
    /// `\s` and `\b` are Unicode-aware here and ASCII-only in Go, so write `[0-9]` where it matters.
    pub fn regex(pattern: &str) -> Result<Matcher> {
        Regex::new(pattern)
            .map(Matcher::Regex)
            .map_err(|e| Error::invalid_input(format!("invalid regular expression {pattern:?}: {e}")))
    }

    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(s) => s == value,
            Matcher::Regex(r) => r.is_match(value),
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Exact(s) => write!(f, "{s:?}"),
            Matcher::Regex(r) => write!(f, "/{}/", r.as_str()),
        }
    }
}

/// One acceptable signer of keyless attestations: a SAN matcher and an OIDC issuer matcher (cosign's
/// `--certificate-identity[-regexp]` and `--certificate-oidc-issuer[-regexp]`).
#[derive(Clone, Debug)]
pub struct CertificateIdentity {
    /// Matched against every SAN (e-mail, URI, DNS, Fulcio username); one match suffices.
    pub identity: Matcher,
    /// Matched against the Fulcio OIDC issuer extension.
    pub issuer: Matcher,
}

impl CertificateIdentity {
    /// A new identity requirement.
    pub fn new(identity: Matcher, issuer: Matcher) -> CertificateIdentity {
        CertificateIdentity { identity, issuer }
    }

    /// The first SAN matching the identity matcher.
    pub(crate) fn matching_san<'a>(&self, cert: &'a CertificateInfo) -> Option<&'a San> {
        cert.sans.iter().find(|s| self.identity.matches(s.value()))
    }

    /// Whether the issuer matcher accepts the certificate's issuer.
    pub(crate) fn issuer_matches(&self, cert: &CertificateInfo) -> bool {
        cert.oidc_issuer.as_deref().is_some_and(|i| self.issuer.matches(i))
    }
}

impl fmt::Display for CertificateIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "identity {} with issuer {}", self.identity, self.issuer)
    }
}

/// What the verifier trusts and requires.
///
/// Build with [`Policy::new`] and the `with_*` methods. Keys verify key-signed attestations; the trusted
/// root supplies the Rekor log keys (for every log check, keyed or keyless) and the Fulcio certificate
/// authorities; identities say which certificate holders are accepted.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub(crate) keys: Vec<PublicKey>,
    pub(crate) trusted_root: Option<Arc<TrustedRoot>>,
    pub(crate) identities: Vec<CertificateIdentity>,
    pub(crate) insecure_ignore_tlog: bool,
    pub(crate) verification_time: Option<i64>,
}

impl Policy {
    /// An empty policy: trusts nothing, requires a verified log entry.
    pub fn new() -> Policy {
        Policy::default()
    }

    /// Trust a public key.
    pub fn with_key(mut self, key: PublicKey) -> Policy {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
        self
    }

    /// Trust the logs and certificate authorities of a Sigstore trusted root.
    pub fn with_trusted_root(mut self, root: impl Into<Arc<TrustedRoot>>) -> Policy {
        self.trusted_root = Some(root.into());
        self
    }

    /// Accept certificates of this identity (several calls accept any of them).
    pub fn with_identity(mut self, identity: CertificateIdentity) -> Policy {
        self.identities.push(identity);
        self
    }

    /// Skip the transparency log entirely (cosign `--insecure-ignore-tlog`). The only way to accept an
    /// attestation without a log entry; results then record that no log was checked. Certificates are
    /// then checked at the verification time instead of the log's integrated time.
    pub fn insecure_ignore_tlog(mut self, ignore: bool) -> Policy {
        self.insecure_ignore_tlog = ignore;
        self
    }

    /// The time (Unix seconds) to check certificates at when no log entry supplies one (only with
    /// [`Policy::insecure_ignore_tlog`]). Defaults to the system clock at verification.
    pub fn at_time(mut self, unix_seconds: i64) -> Policy {
        self.verification_time = Some(unix_seconds);
        self
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// The trusted root, if any.
    pub fn trusted_root(&self) -> Option<&TrustedRoot> {
        self.trusted_root.as_deref()
    }

    /// The accepted identities.
    pub fn identities(&self) -> &[CertificateIdentity] {
        &self.identities
    }

    /// Whether the log is skipped.
    pub fn ignores_tlog(&self) -> bool {
        self.insecure_ignore_tlog
    }

    /// A digest of everything this policy trusts and requires (keys, trusted root, identities, the log
    /// and time settings), in no particular order of how it was built: work recorded as verified under
    /// one policy is not taken as verified under another (a resumed `migrate` journal, say).
    pub fn fingerprint(&self) -> String {
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        let keys = sorted(self.keys.iter().map(|k| Digest::sha256(k.spki_der()).to_string()).collect());
        let identities = sorted(self.identities.iter().map(|i| format!("{} {}", i.identity, i.issuer)).collect());
        // The parsed root, so that the same root re-serialised or re-indented keeps its fingerprint.
        let root = self.trusted_root.as_ref().map(|r| Digest::sha256(format!("{r:?}").as_bytes()).to_string());
        let text = format!(
            "keys {keys:?}\nroot {root:?}\nidentities {identities:?}\nignore-tlog {}\ntime {:?}\n",
            self.insecure_ignore_tlog, self.verification_time
        );
        Digest::sha256(text.as_bytes()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers() {
        assert!(Matcher::exact("a@b.c").matches("a@b.c"));
        assert!(!Matcher::exact("a@b.c").matches("xa@b.c"));
        let r = Matcher::regex(r"^https://github\.com/org/.+@refs/heads/main$").unwrap();
        assert!(r.matches("https://github.com/org/repo/.github/workflows/x.yml@refs/heads/main"));
        assert!(!r.matches("https://github.com/other/repo@refs/heads/main"));
        // Unanchored, as cosign.
        assert!(Matcher::regex("example").unwrap().matches("me@example.com"));
        let err = Matcher::regex("(").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().starts_with(r#"invalid regular expression "(""#), "{err}");
        assert!(err.to_string().contains("unclosed group"), "{err}");
    }
}
