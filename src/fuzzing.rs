//! Entry points for the fuzz targets under `fuzz/` (not part of the supported API).
//!
//! Most parsers are public in [`crate::model`] and the fuzz targets call them directly. The two HTTP
//! header parsers of the registry client and the RFC 3161 DER reader of the verifier are private; these
//! wrappers expose exactly those pure functions, with plain types, so that they can be fuzzed without
//! widening the public API.

/// Parse a `WWW-Authenticate` header value into `(scheme, [(name, value)])` pairs, as the registry
/// client does before choosing Bearer or Basic.
pub fn www_authenticate(value: &str) -> Vec<(String, Vec<(String, String)>)> {
    crate::store::registry::auth::parse_challenges(value).into_iter().map(|c| (c.scheme, c.params)).collect()
}

/// The target of the first `rel="next"` link in one `Link` header value, as the registry client follows
/// tag, catalog and referrers pages.
pub fn link_next(value: &str) -> Option<String> {
    crate::store::registry::tags::parse_next_link(value)
}

/// Whether DER bytes parse as an RFC 3161 time-stamp response or bare token (`dev.sigstore.cosign/rfc3161timestamp`
/// and a bundle's `timestampVerificationData`), before any signature or certificate is checked.
pub fn rfc3161_token(der: &[u8]) -> bool {
    crate::verification::tsa::token::parse(der).is_ok()
}
