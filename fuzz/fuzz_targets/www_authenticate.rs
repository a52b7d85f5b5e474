//! `WWW-Authenticate` challenges as the registry client reads them.
//!
//! Properties: schemes are non-empty lowercase tokens, and parameter names are lowercase.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Header values reach the parser only when they are valid UTF-8 (`HeaderValue::to_str`).
    let Ok(value) = std::str::from_utf8(data) else { return };
    for (scheme, params) in att2ref::fuzzing::www_authenticate(value) {
        assert!(!scheme.is_empty());
        assert_eq!(scheme, scheme.to_ascii_lowercase());
        for (name, _) in params {
            assert!(!name.is_empty());
            assert_eq!(name, name.to_ascii_lowercase());
        }
    }
});
