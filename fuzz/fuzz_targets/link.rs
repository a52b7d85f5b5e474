//! `Link` headers as the registry client follows pages (`rel="next"`).
//!
//! Property: the link found is trimmed text from between `<` and `>` in the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else { return };
    if let Some(target) = att2ref::fuzzing::link_next(value) {
        assert!(value.contains(&target), "{target:?} is not in {value:?}");
        assert_eq!(target.trim(), target);
        assert!(!target.contains('>'));
    }
});
