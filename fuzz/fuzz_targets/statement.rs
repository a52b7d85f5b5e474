//! In-toto statements (`Statement::parse`) and what is read from their predicates: cosign's
//! `{"Data","Timestamp"}` wrapper and the content hints (from the tree and from the outline).
#![no_main]

use att2ref::model::digest::Digest;
use att2ref::model::intoto::Statement;
use att2ref::model::predicate::{hint_bytes, hint_predicate, hint_statement, unwrap_cosign_data};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The hints also run on raw attested bytes (a predicate's `Data`), JSON or not.
    let hint = hint_bytes(data);
    let _ = (hint.id(), hint.label(), hint.is_specific());
    let Ok(statement) = Statement::parse(data) else { return };
    assert!(!statement.subjects.is_empty() && !statement.predicate_type.is_empty());
    let _ = statement.matches(&Digest::sha256(data));
    let predicate = statement.predicate_value();
    let hint = hint_predicate(&statement.predicate_type, predicate.as_ref());
    let _ = (hint.id(), hint.label());
    // The outline a hint reads gives the answer the whole tree gives (when there is a tree: a predicate
    // nested past the tree parser's depth is kept raw only).
    if predicate.is_some() || statement.predicate.is_none() {
        assert_eq!(hint_statement(&statement), hint, "outline and tree disagree");
    }
    if let Some(wrapped) = predicate.as_ref().and_then(unwrap_cosign_data) {
        let bytes = wrapped.data.to_bytes();
        let _ = hint_bytes(&bytes);
    }
});
