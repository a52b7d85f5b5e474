//! cosign's legacy Rekor bundle annotation (`RekorBundle::parse`) and Rekor entry bodies
//! (`RekorBody::parse`: hashedrekord, intoto v0.0.1/v0.0.2, dsse, rekord).
//!
//! Property: the SET payload is canonical JSON that parses back to the same four fields.
#![no_main]

use att2ref::model::rekor::{RekorBody, RekorBundle};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn read_body(body: &RekorBody) {
    let _ = (body.artifact_hash(), body.payload_hash(), body.signatures(), body.public_key_pem());
}

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = RekorBody::parse(data) {
        read_body(&body);
    }
    let Ok(bundle) = RekorBundle::parse(data) else { return };
    read_body(&bundle.body);
    let set = bundle.set_payload();
    let value: Value = serde_json::from_slice(&set).expect("the SET payload is JSON");
    assert_eq!(value["body"].as_str(), Some(bundle.payload.body.as_str()));
    assert_eq!(value["logID"].as_str(), Some(bundle.payload.log_id.as_str()));
    assert_eq!(value["logIndex"].as_i64(), Some(bundle.payload.log_index));
    assert_eq!(value["integratedTime"].as_i64(), Some(bundle.payload.integrated_time));
    if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(data) {
        let _ = object.get("Payload").map(|_| RekorBundle::from_value(&Value::Object(object.clone())));
    }
});
