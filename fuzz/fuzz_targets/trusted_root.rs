//! Sigstore trusted roots (`TrustedRoot::parse`) and the lookups the verifier makes on them.
#![no_main]

use att2ref::model::trust::TrustedRoot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(root) = TrustedRoot::parse(data) else { return };
    for id in [&[][..], &data[..data.len().min(32)]] {
        let _ = (root.tlog_by_id(id), root.ctlog_by_id(id));
    }
});
