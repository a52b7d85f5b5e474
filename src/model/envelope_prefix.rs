//! What the first bytes of a DSSE envelope say about the statement inside (pure, unsigned).
//!
//! cosign writes each `.att` layer as `{"payloadType":…,"payload":"<base64 statement>","signatures":…}`,
//! and the statement as `{"_type":…,"predicateType":…,"subject":…,"predicate":…}`: the first 1–2 KiB of
//! a layer decode to the predicate type and the start of the predicate (for cosign's `{"Data": …}` wrapper,
//! the start of the wrapped file, where `"spdxVersion"` or `"buildType"` sits). [`guess_envelope_prefix`]
//! reads that much and no more.
//!
//! Nothing here is trusted. The bytes were not digest-checked (a prefix cannot be) and not verified; a
//! guess only decides which layer to read whole next. Whatever is returned to a user is read whole,
//! digest-checked and verified, and its signed statement is checked against the query again.

use serde_json::Value;

use super::dsse::decode_base64_any;
use super::json_prefix::{close_prefix, close_prefix_whole_values};
use super::predicate::{ContentHint, ContentKind, hint_predicate};

/// What a prefix says. Each field is `None` when the prefix does not decide it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrefixGuess {
    /// The statement's `predicateType`, when the prefix holds the whole member.
    pub predicate_type: Option<String>,
    /// What the predicate looks like, when the prefix is enough to name a format (never the generic
    /// `json`/`text`/`empty` or `in-toto-statement`, which more bytes could still refine). A version may
    /// still be missing (`spdx` where the whole file says `spdx-2.2`).
    pub hint: Option<ContentHint>,
    /// How many statement bytes the prefix decoded to.
    pub statement_bytes: usize,
    /// The predicate was cut by the end of the prefix: the hint names the right family (SPDX, SLSA
    /// provenance, …) but a detail the rest could refine (an SLSA version told by keys not seen yet) is a
    /// guess within the guess; compare families only.
    pub partial: bool,
}

/// Guess from the first bytes of an envelope (`whole`: they are the entire envelope). A prefix that is
/// not an envelope, holds invalid base64, or ends too early gives an empty guess: read the layer whole.
pub fn guess_envelope_prefix(prefix: &[u8], whole: bool) -> PrefixGuess {
    statement_prefix(prefix, whole).map(|statement| guess_statement_prefix(&statement)).unwrap_or_default()
}

/// The longest valid UTF-8 start of `bytes`; `None` when invalid bytes come before its end.
fn utf8_start(bytes: &[u8]) -> Option<&str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(text),
        // Cut inside a multi-byte character: keep what precedes it.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&bytes[..e.valid_up_to()]).ok(),
        Err(_) => None,
    }
}

/// The statement bytes the envelope prefix decodes to.
fn statement_prefix(prefix: &[u8], whole: bool) -> Option<String> {
    let closed = close_prefix(utf8_start(prefix)?)?;
    let envelope: Value = serde_json::from_str(&closed.text).ok()?;
    let payload = envelope.get("payload")?.as_str()?;
    let complete = whole || !closed.is_open("payload");
    // Base64 is ASCII; anything else cannot decode (and byte counts below assume one byte per character).
    if !payload.is_ascii() {
        return None;
    }
    let mut base64: String = payload.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    if !complete {
        // Only whole groups of four characters decode to whole bytes.
        base64.truncate(base64.len() - base64.len() % 4);
    }
    let statement = decode_base64_any(&base64).ok()?;
    utf8_start(&statement).map(str::to_owned)
}

/// Guess from the first bytes of an in-toto statement.
pub fn guess_statement_prefix(statement: &str) -> PrefixGuess {
    let mut guess = PrefixGuess { statement_bytes: statement.len(), ..PrefixGuess::default() };
    // Every value read must be whole: a cut string is left out, except the wrapped file (`Data`), whose
    // start is the point of reading a prefix.
    let Some(closed) = close_prefix(statement)
        .filter(|c| c.open_path.len() == 2 && c.is_open("predicate") && c.open_path[1] == "Data")
        .or_else(|| close_prefix_whole_values(statement))
    else {
        return guess;
    };
    let Ok(Value::Object(mut members)) = serde_json::from_str::<Value>(&closed.text) else {
        return guess;
    };
    if !closed.is_open("predicateType") {
        guess.predicate_type = members.get("predicateType").and_then(Value::as_str).map(str::to_owned);
    }
    // The wrapped file cut short: close it too, with whole values only, so its own top-level keys are read
    // as the full hint would; text (SPDX tag-value) is read up to its last whole line.
    if closed.open_path.len() == 2
        && closed.is_open("predicate")
        && closed.open_path[1] == "Data"
        && let Some(Value::Object(predicate)) = members.get_mut("predicate")
        && let Some(Value::String(data)) = predicate.get_mut("Data")
    {
        if data.trim_start().starts_with(['{', '[']) {
            // JSON that does not close (comments, as in the article's SLSA file) is left as text: the hint
            // then looks for the keys themselves, and a family is all a cut predicate decides anyway.
            if let Some(file) = close_prefix_whole_values(data) {
                *data = file.text;
            }
        } else {
            data.truncate(data.rfind('\n').map_or(0, |n| n + 1));
        }
    }
    guess.partial = closed.is_open("predicate");
    let hint = match members.get("predicate") {
        // Nothing of the content: the type alone would be a guess the content may contradict.
        None => return guess,
        // Cut: what the content shows so far, not what the type would add.
        Some(p) if guess.partial => hint_predicate("", Some(p)),
        Some(p) => hint_predicate(guess.predicate_type.as_deref().unwrap_or(""), Some(p)),
    };
    // A statement inside the wrapper is named by its own predicate, which may come later.
    let refinable = hint.kind == ContentKind::InTotoStatement;
    guess.hint = (hint.is_specific() && !refinable).then_some(hint);
    guess
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::content::{ARTICLE_SLSA_TEXT, spdx_sbom};
    use crate::demo::prng::Prng;
    use crate::model::dsse::encode_base64;
    use crate::model::predicate::{CUSTOM_V1, SlsaVersion, hint_text};
    use serde_json::json;

    fn envelope(statement: &[u8], url_safe: bool) -> Vec<u8> {
        let mut payload = encode_base64(statement);
        if url_safe {
            payload = payload.replace('+', "-").replace('/', "_");
        }
        serde_json::to_vec(&json!({
            "payloadType": "application/vnd.in-toto+json",
            "payload": payload,
            "signatures": [{"keyid": "", "sig": "AAAA"}],
        }))
        .unwrap()
    }

    fn custom(file: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": CUSTOM_V1,
            "subject": [{"name": "registry.test/app", "digest": {"sha256": "ab".repeat(32)}}],
            "predicate": {"Data": file, "Timestamp": "2023-03-14T16:21:07Z"},
        }))
        .unwrap()
    }

    #[test]
    fn the_first_kibibytes_name_the_type_and_the_wrapped_file() {
        let spdx = spdx_sbom(&mut Prng::from_label("prefix"), "app", "2023-03-14T16:20:31Z", 200_000);
        for (file, id) in [(spdx.as_str(), "spdx-2.2"), (ARTICLE_SLSA_TEXT, "slsa-provenance-v0.2")] {
            let layer = envelope(&custom(file), false);
            let full = hint_text(file);
            assert_eq!(full.id(), id, "the full hint of the test file");
            let guess = guess_envelope_prefix(&layer[..1536.min(layer.len())], false);
            assert_eq!(guess.predicate_type.as_deref(), Some(CUSTOM_V1));
            assert_eq!(guess.hint.map(|h| h.id()).as_deref(), Some(id));
        }
    }

    #[test]
    fn every_cut_of_the_base64_decides_or_abstains_never_contradicts() {
        let layer = envelope(&custom(ARTICLE_SLSA_TEXT), false);
        let mut decided_at = None;
        for end in 0..=layer.len() {
            let guess = guess_envelope_prefix(&layer[..end], end == layer.len());
            if let Some(t) = &guess.predicate_type {
                assert_eq!(t, CUSTOM_V1, "at {end}");
            }
            if let Some(h) = &guess.hint {
                assert_eq!(h.kind, ContentKind::SlsaProvenance(SlsaVersion::V0_2), "at {end}");
                decided_at.get_or_insert(end);
            }
        }
        assert!(decided_at.is_some_and(|at| at < 1024), "decided at {decided_at:?}");
    }

    #[test]
    fn every_cut_of_an_sbom_names_spdx_and_never_a_cut_version() {
        let spdx = spdx_sbom(&mut Prng::from_label("cuts"), "app", "2023-03-14T16:20:31Z", 3_000);
        let layer = envelope(&custom(&spdx), false);
        for end in 0..=layer.len().min(4096) {
            let guess = guess_envelope_prefix(&layer[..end], false);
            if let Some(h) = &guess.hint {
                assert!(
                    matches!(&h.kind, ContentKind::Spdx { version } if version.as_deref().is_none_or(|v| v == "SPDX-2.2")),
                    "at {end}: {h:?}"
                );
                assert!(guess.partial, "at {end}");
            }
        }
    }

    #[test]
    fn url_safe_base64_and_members_in_another_order() {
        // URL-safe alphabet: the same guess.
        let statement = custom(ARTICLE_SLSA_TEXT);
        let guess = guess_envelope_prefix(&envelope(&statement, true)[..1200], false);
        assert_eq!(guess.hint.map(|h| h.id()).as_deref(), Some("slsa-provenance-v0.2"));

        // `subject` before `predicateType`, with enough subjects to push it past the prefix: no guess.
        let subjects: Vec<Value> =
            (0..40).map(|i| json!({"name": format!("img{i}"), "digest": {"sha256": "cd".repeat(32)}})).collect();
        let late = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":{},"predicateType":"https://slsa.dev/provenance/v1","predicate":{{}}}}"#,
            serde_json::to_string(&subjects).unwrap()
        );
        assert_eq!(
            guess_envelope_prefix(&envelope(late.as_bytes(), false)[..2048], false),
            PrefixGuess { statement_bytes: 1491, ..PrefixGuess::default() }
        );
        // The whole envelope: decided.
        let guess = guess_envelope_prefix(&envelope(late.as_bytes(), false), true);
        assert_eq!(guess.predicate_type.as_deref(), Some("https://slsa.dev/provenance/v1"));
    }

    #[test]
    fn envelopes_of_other_writers() {
        let statement = custom(ARTICLE_SLSA_TEXT);
        let payload = encode_base64(&statement);
        // securesystemslib and @sigstore/oci: payload first; escaped slashes in the base64 (`\/`).
        let payload_first = format!(
            r#"{{"payload": "{}", "payloadType": "application/vnd.in-toto+json", "signatures": []}}"#,
            payload.replace('/', "\\/")
        );
        let guess = guess_envelope_prefix(&payload_first.as_bytes()[..1500], false);
        assert_eq!(guess.hint.map(|h| h.id()).as_deref(), Some("slsa-provenance-v0.2"));
        // Many signatures before the payload: the prefix ends before it, nothing is guessed.
        let sigs: Vec<Value> = (0..20).map(|i| json!({"keyid": format!("key-{i}"), "sig": "A".repeat(120)})).collect();
        let signatures_first = format!(
            r#"{{"signatures": {}, "payloadType": "application/vnd.in-toto+json", "payload": "{payload}"}}"#,
            serde_json::to_string(&sigs).unwrap()
        );
        assert_eq!(guess_envelope_prefix(&signatures_first.as_bytes()[..2048], false), PrefixGuess::default());
        assert_eq!(guess_envelope_prefix(signatures_first.as_bytes(), true).predicate_type.as_deref(), Some(CUSTOM_V1));
    }

    #[test]
    fn undecided_prefixes() {
        // Too short for the predicate: the type is known, the hint is not.
        let layer = envelope(&custom(ARTICLE_SLSA_TEXT), false);
        let guess = guess_envelope_prefix(&layer[..300], false);
        assert_eq!(guess.predicate_type.as_deref(), Some(CUSTOM_V1));
        assert_eq!(guess.hint, None);
        // Not an envelope, bad base64, not UTF-8.
        // Found by fuzzing: a non-ASCII character where the base64 is cut used to panic.
        let cut_char = "{\"payload\": \"abc\u{425}".as_bytes();
        for bad in [&b"\x89PNG\r\n"[..], br#"{"payload":"!!!!"#, br#"{"payload":"/w=="}"#, b"[1,2", cut_char] {
            assert_eq!(guess_envelope_prefix(bad, false).predicate_type, None, "{bad:?}");
        }
    }
}
