//! DSSE envelopes (`Envelope::parse`) and the base64 decoder behind every `bytes` field.
//!
//! Property: a parsed envelope serialises (protobuf JSON form) to bytes that parse to the same envelope,
//! and PAE always frames the payload. The start of a JSON document (as `get` reads of a layer) closes into
//! JSON that parses, and guessing from the start of any input never panics.
#![no_main]

use att2ref::model::dsse::{Envelope, decode_base64_any, encode_base64};
use att2ref::model::envelope_prefix::guess_envelope_prefix;
use att2ref::model::json_prefix::close_prefix;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let is_json = serde_json::from_slice::<serde_json::Value>(data).is_ok();
    for cut in [data.len() / 3, data.len() / 2, data.len()] {
        let start = &data[..cut];
        let _ = guess_envelope_prefix(start, cut == data.len());
        if is_json
            && let Ok(text) = std::str::from_utf8(start)
            && let Some(closed) = close_prefix(text)
        {
            let parsed = serde_json::from_str::<serde_json::Value>(&closed.text);
            assert!(parsed.is_ok(), "{text:?} closed into {:?}, which does not parse", closed.text);
        }
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(decoded) = decode_base64_any(text)
    {
        // Re-encoding in the standard alphabet must decode to the same bytes.
        assert_eq!(decode_base64_any(&encode_base64(&decoded)).ok().as_deref(), Some(decoded.as_slice()));
    }
    let Ok(envelope) = Envelope::parse(data) else { return };
    let pae = envelope.pae();
    assert!(pae.starts_with(b"DSSEv1 ") && pae.ends_with(&envelope.payload));
    let _ = (envelope.is_in_toto(), envelope.single_signature(), format!("{envelope:?}"));
    let json = serde_json::to_vec(&envelope).expect("an envelope serialises");
    let again = Envelope::parse(&json).unwrap_or_else(|e| panic!("a serialised envelope does not parse: {e}"));
    assert!(again == envelope, "envelope changed through serialisation");
});
