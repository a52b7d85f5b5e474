//! In-toto statements (`Statement::parse`) and what is read from their predicates: cosign's
//! `{"Data","Timestamp"}` wrapper and the content hints.
#![no_main]

use att2ref::model::digest::Digest;
use att2ref::model::intoto::Statement;
use att2ref::model::predicate::{hint_bytes, hint_predicate, unwrap_cosign_data};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The hints also run on raw attested bytes (a predicate's `Data`), JSON or not.
    let hint = hint_bytes(data);
    let _ = (hint.id(), hint.label(), hint.is_specific());
    let Ok(statement) = Statement::parse(data) else { return };
    assert!(!statement.subjects.is_empty() && !statement.predicate_type.is_empty());
    let _ = statement.matches(&Digest::sha256(data));
    let hint = hint_predicate(&statement.predicate_type, statement.predicate.as_ref());
    let _ = (hint.id(), hint.label());
    if let Some(wrapped) = statement.predicate.as_ref().and_then(unwrap_cosign_data) {
        let bytes = wrapped.data.to_bytes();
        let _ = hint_bytes(&bytes);
    }
});
