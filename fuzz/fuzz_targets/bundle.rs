//! Sigstore bundles v0.1–v0.3 (`Bundle::parse`), which also exercises the protobuf-JSON field readers
//! (`bytes`, `int64`) and RFC 3339 times inside them.
//!
//! Property: write → read is the identity on parsed bundles, and written bytes are a fixed point.
#![no_main]

use att2ref::model::bundle::Bundle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(bundle) = Bundle::parse(data) else { return };
    let _ = (bundle.media_type(), bundle.dsse_envelope());
    let written = bundle.to_json();
    let again = Bundle::parse(&written).unwrap_or_else(|e| panic!("a written bundle does not parse: {e}"));
    assert_eq!(again, bundle, "bundle changed through write and read");
    assert_eq!(again.to_json(), written, "written bundle bytes are not a fixed point");
});
