//! RFC 3161 time-stamp responses and tokens: the verifier's hand-written DER reader (the bytes of
//! `dev.sigstore.cosign/rfc3161timestamp` and of a bundle's `timestampVerificationData`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = att2ref::fuzzing::rfc3161_token(data);
});
