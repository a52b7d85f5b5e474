//! OCI manifests, indexes and artifact manifests (`Manifest::parse`, `RawManifest::parse`).
//!
//! Property: whatever parses re-serialises to canonical bytes that parse to the same value under the
//! media type found the first time, and canonical bytes are a fixed point.
#![no_main]

use att2ref::model::media_type as mt;
use att2ref::model::oci::{Manifest, RawManifest, to_canonical_bytes};
use libfuzzer_sys::fuzz_target;

/// What a transport may declare: nothing, each type we read, and the generic types we ignore.
const DECLARED: &[Option<&str>] = &[
    None,
    Some(mt::OCI_MANIFEST),
    Some(mt::OCI_INDEX),
    Some(mt::DOCKER_MANIFEST),
    Some(mt::DOCKER_MANIFEST_LIST),
    Some(mt::OCI_ARTIFACT_MANIFEST),
    Some("application/json"),
    Some("text/plain"),
];

fn canonical(m: &Manifest) -> Vec<u8> {
    match m {
        Manifest::Image(i) => to_canonical_bytes(i),
        Manifest::Index(i) => to_canonical_bytes(i),
        Manifest::Artifact(a) => to_canonical_bytes(a),
    }
}

fuzz_target!(|data: &[u8]| {
    // Unknown fields keep their numbers through a rewrite only if JSON floats are read correctly rounded
    // (serde_json's `float_roundtrip`; a finding of this target). Rust's own parser is the reference.
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(reference) = text.trim().parse::<f64>()
        && let Ok(serde_json::Value::Number(n)) = serde_json::from_str(text)
        && n.is_f64()
    {
        assert_eq!(n.as_f64(), Some(reference), "JSON number {text:?} is not read correctly rounded");
    }
    for declared in DECLARED {
        let Ok((manifest, media_type)) = Manifest::parse(data, *declared) else { continue };
        let _ = (manifest.subject(), manifest.annotations(), manifest.effective_artifact_type());
        let once = canonical(&manifest);
        let (again, again_type) = Manifest::parse(&once, Some(&media_type))
            .unwrap_or_else(|e| panic!("canonical bytes of a parsed manifest do not parse: {e}"));
        assert_eq!(again_type, media_type);
        assert_eq!(canonical(&again), once, "canonical bytes are not a fixed point");
    }
    if let Ok(raw) = RawManifest::parse(bytes::Bytes::copy_from_slice(data), None) {
        let d = raw.descriptor();
        assert_eq!(d.size, data.len() as u64);
        assert_eq!(d.digest, raw.digest);
    }
});
