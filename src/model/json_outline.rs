//! The outline of a JSON document: the tree a content hint reads, without building the rest.
//!
//! Guessing what a predicate is (SPDX, CycloneDX, SLSA…) looks at the top-level members of an object
//! and at a few nested ones (`predicate`, `Data`, `signed`, `@context`). Parsing a megabyte SBOM into a
//! full [`Value`] tree to read its `spdxVersion` was most of the hint's cost, once per layer of every
//! migrated image. The outline is checked for JSON syntax as a full parse would be, but the arrays and
//! objects nobody reads are skipped (their numbers are not converted, so one beyond the range of a
//! double passes there) and stand in as empty ones of the same kind.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Parse `text` into its outline: scalars as they are; objects with their members, where the
/// members named in [`NESTED`] are outlined in turn and `@context` is kept whole; every other array or
/// object empty. Fails where `serde_json::from_str::<Value>` fails, but for numbers out of range in
/// what is skipped.
pub(crate) fn outline(text: &str) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Outline::Members.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Members whose own members a hint reads (a statement's predicate, cosign's `Data` wrapper, a signed
/// in-toto link).
const NESTED: [&str; 3] = ["predicate", "Data", "signed"];

/// How much of a value to keep.
#[derive(Clone, Copy)]
enum Outline {
    /// An object keeps its members (outlined); an array is emptied.
    Members,
    /// Scalars only: an array or object is emptied.
    Scalars,
}

impl Outline {
    fn of_member(key: &str) -> Option<Outline> {
        if NESTED.contains(&key) {
            Some(Outline::Members)
        } else if key == "@context" {
            None
        } else {
            Some(Outline::Scalars)
        }
    }
}

impl<'de> DeserializeSeed<'de> for Outline {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Outline {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Array(Vec::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        match self {
            Outline::Scalars => while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {},
            Outline::Members => {
                while let Some(key) = map.next_key::<String>()? {
                    let value = match Outline::of_member(&key) {
                        Some(outline) => map.next_value_seed(outline)?,
                        None => map.next_value::<Value>()?,
                    };
                    members.insert(key, value);
                }
            }
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_what_hints_read_and_empties_the_rest() {
        let text = r#"{"spdxVersion":"SPDX-2.3","packages":[{"name":"a"}],"n":1.5,"ok":true,"none":null,
            "@context":["https://openvex.dev/ns/v0.2.0",{"x":1}],
            "predicate":{"Data":"{\"bomFormat\":\"CycloneDX\"}","Timestamp":"t","deep":{"a":[1]}},
            "signed":{"_type":"link","materials":{"m":{}}},"other":{"predicate":{"x":1}}}"#;
        assert_eq!(
            outline(text).unwrap(),
            json!({"spdxVersion":"SPDX-2.3","packages":[],"n":1.5,"ok":true,"none":null,
                "@context":["https://openvex.dev/ns/v0.2.0",{"x":1}],
                "predicate":{"Data":"{\"bomFormat\":\"CycloneDX\"}","Timestamp":"t","deep":{}},
                "signed":{"_type":"link","materials":{}},"other":{}})
        );
        assert_eq!(outline(r#"[{"a":1}]"#).unwrap(), json!([]));
        assert_eq!(outline(r#"{"skipped":[1e999]}"#).unwrap(), json!({"skipped":[]}), "not read, not converted");
        assert_eq!(outline(r#" "text" "#).unwrap(), json!("text"));
    }

    #[test]
    fn fails_where_a_full_parse_fails() {
        for text in [
            r#"{"a":[1,2}"#,
            r#"{"a":{"b":01}}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":1} x"#,
            r#"{"a":1,}"#,
            "",
            r#"{"a":[[[[]]]]"#,
        ] {
            assert!(serde_json::from_str::<Value>(text).is_err(), "{text}: the control");
            assert!(outline(text).is_err(), "{text}");
        }
    }
}
