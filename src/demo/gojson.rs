//! JSON bytes exactly as the Go tools that wrote legacy stores produce them, and RFC 8785 canonical
//! JSON for Rekor bodies and signed entry timestamps.
//!
//! Go's `encoding/json` escapes `<`, `>`, `&`, U+2028 and U+2029 as `\u003c`… by default; cosign's
//! payloads and manifests carry those escapes (the article's SBOM payload has `\u0026` in every purl),
//! so a reader that re-serialises instead of keeping bytes would be caught by this data.

use std::io;

use serde::Serialize;
use serde_json::Value;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

use crate::error::{Error, Result};

/// Compact JSON with Go's HTML-safe string escaping, in the value's own field order.
pub fn to_go_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter(CompactFormatter));
    value.serialize(&mut ser).expect("serialising our own values to memory cannot fail");
    out
}

/// Indented JSON (Go `MarshalIndent(v, "", " ")` layout, without HTML escaping, as syft writes its
/// SPDX documents), followed by a newline.
pub fn to_pretty_one_space<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PrettyFormatter::with_indent(b" "));
    value.serialize(&mut ser).expect("serialising our own values to memory cannot fail");
    out.push(b'\n');
    out
}

/// RFC 8785 (JCS) canonical JSON: object members sorted by their UTF-16 code units, no whitespace,
/// ECMAScript string escaping (which is what serde_json writes). Only integral numbers are accepted:
/// everything we canonicalise (Rekor bodies, SET payloads) has no others, and JCS float formatting
/// differs from serde_json's.
pub fn canonical_json(value: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write_canonical(value, &mut out)?;
    Ok(out)
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    match value {
        Value::Null | Value::Bool(_) | Value::String(_) => {
            serde_json::to_writer(&mut *out, value).map_err(Error::from)?;
        }
        Value::Number(n) => {
            if n.is_f64() {
                return Err(Error::invalid_input(format!("canonical JSON: non-integral number {n} is not supported")));
            }
            out.extend_from_slice(n.to_string().as_bytes());
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).map_err(Error::from)?;
                out.push(b':');
                write_canonical(v, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Wraps a formatter and adds Go's HTML-safe escapes to string contents.
struct GoFormatter<F>(F);

impl<F: Formatter> Formatter for GoFormatter<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        let bytes = fragment.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let (escape, len): (&[u8], usize) = match bytes[i] {
                b'<' => (b"\\u003c", 1),
                b'>' => (b"\\u003e", 1),
                b'&' => (b"\\u0026", 1),
                // U+2028 / U+2029 are E2 80 A8 / E2 80 A9 in UTF-8.
                0xe2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xa8) => (b"\\u2028", 3),
                0xe2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xa9) => (b"\\u2029", 3),
                _ => {
                    i += 1;
                    continue;
                }
            };
            writer.write_all(&bytes[start..i])?;
            writer.write_all(escape)?;
            i += len;
            start = i;
        }
        writer.write_all(&bytes[start..])
    }

    // Delegate the structural calls so the wrapped formatter's layout is kept.
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn go_escapes_html_characters() {
        let v = json!({"b": "a<b>&c\u{2028}\n\"", "a": 1});
        assert_eq!(to_go_json(&v), br#"{"b":"a\u003cb\u003e\u0026c\u2028\n\"","a":1}"#.to_vec());
    }

    #[test]
    fn canonical_sorts_and_compacts() {
        let v = json!({"logIndex": 7, "body": "x/y", "logID": "ab", "integratedTime": 1700000000, "n": [true, null]});
        assert_eq!(
            canonical_json(&v).unwrap(),
            br#"{"body":"x/y","integratedTime":1700000000,"logID":"ab","logIndex":7,"n":[true,null]}"#.to_vec()
        );
        let err = canonical_json(&json!({"f": 1.5})).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("non-integral number 1.5"), "{err}");
    }

    #[test]
    fn canonical_orders_by_utf16_units() {
        // U+1F600 is the surrogate pair D83D DE00 in UTF-16, so it sorts before U+E000 although its
        // scalar value (and UTF-8 encoding) is larger.
        let v = json!({"\u{e000}": 1, "\u{1f600}": 2});
        let s = String::from_utf8(canonical_json(&v).unwrap()).unwrap();
        assert!(s.find('\u{1f600}').unwrap() < s.find('\u{e000}').unwrap(), "{s}");
    }

    #[test]
    fn pretty_uses_one_space_and_trailing_newline() {
        let out = to_pretty_one_space(&json!({"a": [1]}));
        assert_eq!(out, b"{\n \"a\": [\n  1\n ]\n}\n".to_vec());
    }
}
