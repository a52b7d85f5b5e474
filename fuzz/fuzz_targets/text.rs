//! Small text formats: PEM (`pem::decode_all`), RFC 3339 times (`Rfc3339::parse`, `format_unix`) and
//! digests (`Digest::from_str`).
//!
//! Properties: a parsed digest displays as its input; a parsed time formatted back from its unix seconds
//! parses to the same second.
#![no_main]

use att2ref::model::digest::Digest;
use att2ref::model::pem;
use att2ref::model::time::{Rfc3339, format_unix};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() >= 8 {
        // Any i64 is a possible `integratedTime`: formatting must fail cleanly or round-trip.
        let seconds = i64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
        if let Ok(text) = format_unix(seconds) {
            let back = Rfc3339::parse(&text).unwrap_or_else(|e| panic!("{seconds} formats as {text:?}: {e}"));
            assert_eq!(back.unix_seconds(), seconds);
        }
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = pem::decode_all(text);
    let _ = pem::decode_certificates(text);
    if let Ok(digest) = text.parse::<Digest>() {
        assert_eq!(digest.to_string(), text, "a digest does not display as parsed");
        let _ = (digest.raw(), digest.short(), digest.referrers_tag());
    }
    if let Ok(time) = Rfc3339::parse(text) {
        assert_eq!(time.as_str(), text);
        assert!(time.nanos() < 1_000_000_000);
        if let Ok(utc) = format_unix(time.unix_seconds()) {
            assert_eq!(Rfc3339::parse(&utc).map(|t| t.unix_seconds()).ok(), Some(time.unix_seconds()));
        }
    }
});
