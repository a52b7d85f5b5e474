//! File names for `--output-dir` (pure). Every character of a name is chosen here from a small safe set:
//! nothing taken from registry data (predicate types, hints, annotations) can add a separator, a `..`
//! component, a leading dot, a control character or an overlong name.

use super::attestation::{Attestation, Emit};

const MAX_PART: usize = 48;

/// Keep `[A-Za-z0-9._-]`, map everything else to `_`, collapse runs of dots, drop leading dots and
/// dashes, cap the length; never empty.
pub fn sanitize(part: &str) -> String {
    let mut out = String::new();
    for c in part.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' };
        if c == '.' && out.ends_with('.') {
            continue;
        }
        if out.is_empty() && (c == '.' || c == '-') {
            continue;
        }
        out.push(c);
        if out.len() >= MAX_PART {
            break;
        }
    }
    let out = out.trim_end_matches('.').to_owned();
    if out.is_empty() { "x".to_owned() } else { out }
}

/// The name of the `index`-th attestation written with `what`: `01-custom-slsa-provenance-v0.2.txt`.
pub fn file_name(index: usize, attestation: &Attestation, what: Emit) -> String {
    let ext = match what {
        Emit::Predicate if attestation.emits_json(what) => "json",
        Emit::Predicate => "txt",
        Emit::Statement => "intoto.json",
        Emit::Envelope => "dsse.json",
        Emit::Bundle => "sigstore.json",
    };
    format!(
        "{:02}-{}-{}.{}.{ext}",
        index + 1,
        sanitize(attestation.type_label()),
        sanitize(&attestation.hint),
        what.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_parts_stay_one_plain_component() {
        for hostile in [
            "../../etc/passwd",
            "/abs/path",
            "..",
            ".",
            "",
            "a/../../b",
            "C:\\windows\\x",
            "\u{0}\n\r",
            ".hidden",
            "-rf",
            "é…",
            &"x".repeat(500),
        ] {
            let s = sanitize(hostile);
            assert!(!s.is_empty() && s.len() <= MAX_PART, "{hostile:?} -> {s:?}");
            assert!(!s.contains('/') && !s.contains('\\') && !s.contains(".."), "{hostile:?} -> {s:?}");
            assert!(!s.starts_with('.') && !s.starts_with('-'), "{hostile:?} -> {s:?}");
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)), "{hostile:?} -> {s:?}");
            let p = std::path::Path::new(&s);
            assert_eq!(p.components().count(), 1);
            assert!(matches!(p.components().next(), Some(std::path::Component::Normal(_))));
        }
        assert_eq!(sanitize("https://slsa.dev/provenance/v0.2"), "https___slsa.dev_provenance_v0.2");
        assert_eq!(sanitize("slsa-provenance-v0.2"), "slsa-provenance-v0.2");
    }
}
