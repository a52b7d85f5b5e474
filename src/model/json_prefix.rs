//! Making the first bytes of a JSON document parseable (pure).
//!
//! A prefix read of a blob ends anywhere: inside a string, a number, between a key and its value. To learn
//! what the prefix says with the ordinary parser, [`close_prefix`] cuts it back to the last point where the
//! document can be ended (after a complete value, after an opening bracket, or inside a string value after
//! a complete character) and appends what closes it. Everything present in the result was in the prefix,
//! except that the innermost open string and the open containers were ended early; [`Closed::open_path`]
//! names them, so a caller knows which members are complete.

/// Deeper prefixes are not closed: nothing a hint reads sits that deep, and the closing text grows with it.
const MAX_DEPTH: usize = 64;

/// A prefix made into a complete JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closed {
    /// The JSON text: a prefix of the input, cut back where needed, and the closing quote and brackets.
    pub text: String,
    /// The members that were still open where the prefix ended, outermost first: each object member's key
    /// (`["predicate", "Data"]`), `"[]"` for an array element. Empty when the input was a complete document.
    /// Every member not on this path that appears in [`Closed::text`] is complete.
    pub open_path: Vec<String>,
    /// Whether the input was a whole document (nothing was cut or closed).
    pub complete: bool,
}

impl Closed {
    /// Whether the top-level member `key` was cut by the end of the prefix (its value is incomplete).
    pub fn is_open(&self, key: &str) -> bool {
        self.open_path.first().is_some_and(|k| k == key)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// After `{`: a key or `}`.
    KeyOrEnd,
    /// After `,` in an object.
    Key,
    Colon,
    Value,
    /// After `[`: a value or `]`.
    ElementOrEnd,
    /// After a value: `,` or the container's end.
    CommaOrEnd,
}

struct Frame {
    array: bool,
    expect: Expect,
    /// The key of the member being read (objects), for [`Closed::open_path`].
    key: String,
}

/// A point where the document can be ended: the length to keep, the brackets that close it (innermost
/// last), the members open there, and whether a string value is open.
struct Cut {
    at: usize,
    arrays: Vec<bool>,
    open_path: Vec<String>,
    in_string: bool,
}

impl Cut {
    /// Every frame but the innermost holds an open member (the container being read); the innermost holds
    /// one only while a string value is open in it.
    fn of(at: usize, stack: &[Frame], in_string: bool) -> Cut {
        let name = |f: &Frame| if f.array { "[]".to_owned() } else { f.key.clone() };
        let shown = if in_string { stack.len() } else { stack.len().saturating_sub(1) };
        Cut {
            at,
            arrays: stack.iter().map(|f| f.array).collect(),
            open_path: stack[..shown].iter().map(name).collect(),
            in_string,
        }
    }
}

enum StringEnd {
    /// The closing quote is at this index.
    Complete(usize),
    /// The input ends inside the string; its content can be kept up to this index.
    Truncated(usize),
}

/// Make the prefix `text` of a JSON document parseable; `None` when nothing can be kept (no complete
/// opening, or a syntax error before the end). Top-level scalars other than strings are not closed.
pub fn close_prefix(text: &str) -> Option<Closed> {
    close(text, true)
}

/// Like [`close_prefix`], but a string value the prefix cuts is left out with its member (cut back to the
/// last complete value), so that every value in the result is whole: for reading a document's own fields
/// (`"spdxVersion": "SPD"` must not be read as version `SPD`).
pub fn close_prefix_whole_values(text: &str) -> Option<Closed> {
    close(text, false)
}

fn close(text: &str, keep_open_string: bool) -> Option<Closed> {
    let b = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut cut: Option<Cut> = None;
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == b.len() {
            return cut.map(|c| finish(text, c));
        }
        let c = b[i];
        let expect = stack.last().map(|f| f.expect);
        match expect {
            Some(Expect::KeyOrEnd | Expect::Key) if c == b'"' => match scan_string(text, i)? {
                StringEnd::Complete(end) => {
                    let top = stack.last_mut()?;
                    // Decoded, as a parser reads it: `"predic\u0061teType"` is `predicateType`.
                    top.key = serde_json::from_str::<String>(text.get(i..=end)?).ok()?;
                    top.expect = Expect::Colon;
                    i = end + 1;
                }
                StringEnd::Truncated(_) => return cut.map(|c| finish(text, c)),
            },
            Some(Expect::KeyOrEnd) if c == b'}' => {
                stack.pop();
                i += 1;
                if stack.is_empty() {
                    return Some(whole(text, i));
                }
                cut = Some(value_done(&mut stack, i));
            }
            Some(Expect::Colon) if c == b':' => {
                stack.last_mut()?.expect = Expect::Value;
                i += 1;
            }
            Some(Expect::CommaOrEnd) if c == b',' => {
                let top = stack.last_mut()?;
                top.expect = if top.array { Expect::Value } else { Expect::Key };
                i += 1;
            }
            Some(Expect::CommaOrEnd | Expect::ElementOrEnd) if c == b']' && stack.last()?.array => {
                stack.pop();
                i += 1;
                if stack.is_empty() {
                    return Some(whole(text, i));
                }
                cut = Some(value_done(&mut stack, i));
            }
            Some(Expect::CommaOrEnd) if c == b'}' && !stack.last()?.array => {
                stack.pop();
                i += 1;
                if stack.is_empty() {
                    return Some(whole(text, i));
                }
                cut = Some(value_done(&mut stack, i));
            }
            None | Some(Expect::Value | Expect::ElementOrEnd) => match c {
                b'{' | b'[' => {
                    if stack.len() >= MAX_DEPTH {
                        return cut.map(|c| finish(text, c));
                    }
                    if let Some(top) = stack.last_mut() {
                        top.expect = Expect::CommaOrEnd;
                    }
                    let array = c == b'[';
                    let expect = if array { Expect::ElementOrEnd } else { Expect::KeyOrEnd };
                    stack.push(Frame { array, expect, key: String::new() });
                    i += 1;
                    cut = Some(Cut::of(i, &stack, false));
                }
                b'"' => match scan_string(text, i)? {
                    StringEnd::Complete(end) => {
                        i = end + 1;
                        if stack.is_empty() {
                            return Some(whole(text, i));
                        }
                        stack.last_mut()?.expect = Expect::CommaOrEnd;
                        cut = Some(Cut::of(i, &stack, false));
                    }
                    StringEnd::Truncated(keep) if keep_open_string => {
                        return Some(finish(text, Cut::of(keep, &stack, true)));
                    }
                    StringEnd::Truncated(_) => return cut.map(|c| finish(text, c)),
                },
                _ => {
                    let start = i;
                    while i < b.len() && !matches!(b[i], b',' | b'}' | b']') && !b[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    let token = &b[start..i];
                    let scalar = token.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'));
                    if token.is_empty() || !scalar || stack.is_empty() {
                        return None;
                    }
                    if i == b.len() {
                        // The number or literal may go on past the prefix.
                        return cut.map(|c| finish(text, c));
                    }
                    stack.last_mut()?.expect = Expect::CommaOrEnd;
                    cut = Some(Cut::of(i, &stack, false));
                }
            },
            _ => return None,
        }
    }
}

/// A container was closed at `at` inside another: the parent now expects a comma, and the document can
/// end here.
fn value_done(stack: &mut [Frame], at: usize) -> Cut {
    if let Some(top) = stack.last_mut() {
        top.expect = Expect::CommaOrEnd;
    }
    Cut::of(at, stack, false)
}

/// The input held a whole document, ending at `end` (what follows is ignored).
fn whole(text: &str, end: usize) -> Closed {
    Closed { text: text[..end].to_owned(), open_path: Vec::new(), complete: true }
}

/// The text kept up to the cut, the quote that ends an open string, and the brackets.
fn finish(text: &str, cut: Cut) -> Closed {
    let mut out = String::with_capacity(cut.at + cut.arrays.len() + 1);
    out.push_str(&text[..cut.at]);
    if cut.in_string {
        out.push('"');
    }
    for array in cut.arrays.iter().rev() {
        out.push(if *array { ']' } else { '}' });
    }
    Closed { text: out, open_path: cut.open_path, complete: false }
}

/// Scan the string starting with the quote at `start`. A truncated string's content is kept up to the last
/// complete character or escape, never between the two halves of a surrogate pair. `None` on an invalid
/// escape.
fn scan_string(text: &str, start: usize) -> Option<StringEnd> {
    let b = text.as_bytes();
    let mut i = start + 1;
    let mut keep = i;
    while i < b.len() {
        match b[i] {
            b'"' => return Some(StringEnd::Complete(i)),
            b'\\' => {
                let Some(&e) = b.get(i + 1) else { break };
                match e {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                    b'u' => {
                        let Some(unit) = hex4(b, i + 2) else {
                            // Four hex digits that are there must be hex; fewer means the prefix ended.
                            if b.len() < i + 6 {
                                break;
                            }
                            return None;
                        };
                        i += 6;
                        if (0xD800..0xDC00).contains(&unit) {
                            // A leading surrogate is kept only with its trailing half.
                            if b.len() < i + 6 {
                                break;
                            }
                            if b[i] != b'\\'
                                || b[i + 1] != b'u'
                                || !hex4(b, i + 2).is_some_and(|u| (0xDC00..0xE000).contains(&u))
                            {
                                return None;
                            }
                            i += 6;
                        }
                    }
                    _ => return None,
                }
            }
            _ => i += 1,
        }
        if text.is_char_boundary(i) {
            keep = i;
        }
    }
    Some(StringEnd::Truncated(keep))
}

fn hex4(b: &[u8], at: usize) -> Option<u16> {
    let digits = std::str::from_utf8(b.get(at..at + 4)?).ok()?;
    u16::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn closed(text: &str) -> (Value, Vec<String>) {
        let c = close_prefix(text).unwrap_or_else(|| panic!("{text:?} did not close"));
        let v = serde_json::from_str(&c.text).unwrap_or_else(|e| panic!("{:?} from {text:?}: {e}", c.text));
        (v, c.open_path)
    }

    #[test]
    fn complete_documents_come_back_whole() {
        let doc = r#" {"a": [1, 2.5e3, true, null], "b": {"c": "d\"e"}, "f": ""} "#;
        let (v, open) = closed(doc);
        assert_eq!(v, serde_json::from_str::<Value>(doc).unwrap());
        assert!(open.is_empty());
    }

    #[test]
    fn every_prefix_of_a_document_closes_into_a_prefix_of_it() {
        let doc = r#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"x","subject":[{"name":"n","digest":{"sha256":"ab"}}],"predicate":{"Data":"{\n  \"spdxVersion\": \"SPDX-2.2\", \"é\": \"\ud83d\ude00\u00e9\"\n}","Timestamp":"t"}}"#;
        let full: Value = serde_json::from_str(doc).unwrap();
        let mut boundaries = 0;
        for end in 1..=doc.len() {
            if !doc.is_char_boundary(end) {
                continue;
            }
            boundaries += 1;
            let (v, open) = closed(&doc[..end]);
            let obj = v.as_object().unwrap();
            // Every member that is not open is complete and equal to the full document's.
            for (k, value) in obj {
                if open.first() != Some(k) {
                    assert_eq!(value, &full[k], "member {k} at {end}");
                }
            }
            if end == doc.len() {
                assert!(open.is_empty());
            }
        }
        assert_eq!(boundaries, doc.chars().count());
    }

    #[test]
    fn an_open_string_value_keeps_its_complete_characters() {
        let (v, open) = closed(r#"{"p": {"Data": "ab\"c\u00"#);
        assert_eq!(v, json!({"p": {"Data": "ab\"c"}}));
        assert_eq!(open, ["p", "Data"]);
        // Between the halves of a surrogate pair: the pair is left out whole.
        let (v, _) = closed(r#"["x\ud83d\ude0"#);
        assert_eq!(v, json!(["x"]));
        let (v, open) = closed(r#"["x\ud83d\ude00"#);
        assert_eq!(v, json!(["x\u{1F600}"]));
        assert_eq!(open, ["[]"]);
    }

    #[test]
    fn keys_numbers_and_literals_cut_back_to_the_last_complete_member() {
        assert_eq!(closed(r#"{"a": 1, "bc"#).0, json!({"a": 1}));
        assert_eq!(closed(r#"{"a": 1, "b": 12"#).0, json!({"a": 1}));
        assert_eq!(closed(r#"{"a": 1, "b": tr"#).0, json!({"a": 1}));
        assert_eq!(closed(r#"{"a": 1, "b":"#).0, json!({"a": 1}));
        assert_eq!(closed(r#"{"a": [1, {"#).0, json!({"a": [1, {}]}));
        assert_eq!(closed("{").0, json!({}));
    }

    #[test]
    fn escaped_keys_are_read_as_a_parser_reads_them() {
        let c = close_prefix(r#"{"predic\u0061teType": "https://slsa.dev/prov"#).unwrap();
        assert_eq!(c.open_path, ["predicateType"]);
        assert!(c.is_open("predicateType"));
    }

    #[test]
    fn whole_values_only_leaves_out_a_cut_string() {
        let text = r#"{"SPDXID": "SPDXRef-DOCUMENT", "spdxVersion": "SPD"#;
        let c = close_prefix_whole_values(text).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&c.text).unwrap(), json!({"SPDXID": "SPDXRef-DOCUMENT"}));
        assert_eq!(closed(text).0["spdxVersion"], "SPD");
    }

    #[test]
    fn what_cannot_be_closed() {
        assert_eq!(close_prefix(""), None);
        assert_eq!(close_prefix("   "), None);
        assert_eq!(close_prefix(r#"{"a" 1}"#), None);
        assert_eq!(close_prefix(r#"{"a": "\q"}"#), None);
        assert_eq!(close_prefix(r#"{"a":}"#), None);
        assert_eq!(close_prefix("[1,]"), None);
        assert!(close_prefix(&"[".repeat(100)).is_some_and(|c| c.open_path.len() == MAX_DEPTH - 1));
    }
}
