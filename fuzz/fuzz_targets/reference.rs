//! Image and layout references (`Reference::parse`, `ImageReference::parse`, `LayoutReference::parse`).
//!
//! Property: parse → display → parse gives the same reference, and display is a fixed point (the
//! displayed form is the normalised one).
#![no_main]

use att2ref::model::reference::{ImageReference, LayoutReference, Reference, is_valid_tag};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    let _ = is_valid_tag(input);
    let _ = LayoutReference::parse(input);
    if let Ok(image) = ImageReference::parse(input) {
        let _ = (image.name(), image.api_host(), image.manifest_reference(), image.repository_only());
        let _ = ImageReference::new(image.registry(), image.repository())
            .unwrap_or_else(|e| panic!("registry and repository of {image} are refused: {e}"));
    }
    let Ok(reference) = Reference::parse(input) else { return };
    let shown = reference.to_string();
    let again = Reference::parse(&shown)
        .unwrap_or_else(|e| panic!("{input:?} displays as {shown:?}, which does not parse: {e}"));
    assert_eq!(again, reference, "{input:?} → {shown:?} parses differently");
    assert_eq!(again.to_string(), shown);
    let _ = reference.manifest_reference();
});
