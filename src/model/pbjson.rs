//! Serde helpers for the protobuf JSON mapping used by Sigstore bundles and trusted roots.
//!
//! Reading is forgiving where the mapping allows it (`bytes` in either base64 alphabet with or without
//! padding; `int64` as a JSON string or number). Writing is canonical (standard padded base64; `int64` as
//! a string), so the same value always serialises to the same bytes. Each reader takes the JSON field name,
//! so an error says which field held the bad value.

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

use super::dsse::{decode_base64_any, encode_base64};

/// Define a `deserialize_with` function that reads one named field with one of this module's readers.
macro_rules! named_field {
    ($fn_name:ident, $reader:path, $ty:ty, $field:literal) => {
        fn $fn_name<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<$ty, D::Error> {
            $reader(d, $field)
        }
    };
}
pub(crate) use named_field;

struct BytesVisitor(&'static str);

impl Visitor<'_> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "base64 text in `{}`", self.0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        decode_base64_any(v).map_err(|e| E::custom(format!("field `{}`: {}", self.0, e.message())))
    }
}

/// Read a `bytes` field.
pub(crate) fn bytes<'de, D: Deserializer<'de>>(d: D, field: &'static str) -> Result<Vec<u8>, D::Error> {
    d.deserialize_str(BytesVisitor(field))
}

struct BytesListVisitor(&'static str);

impl<'de> Visitor<'de> for BytesListVisitor {
    type Value = Vec<Vec<u8>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of base64 strings in `{}`", self.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(s) = seq.next_element::<String>()? {
            let item = decode_base64_any(&s)
                .map_err(|e| de::Error::custom(format!("field `{}[{}]`: {}", self.0, out.len(), e.message())))?;
            out.push(item);
        }
        Ok(out)
    }
}

/// Read a `repeated bytes` field.
pub(crate) fn bytes_list<'de, D: Deserializer<'de>>(d: D, field: &'static str) -> Result<Vec<Vec<u8>>, D::Error> {
    d.deserialize_seq(BytesListVisitor(field))
}

struct Int64Visitor(&'static str);

impl Visitor<'_> for Int64Visitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an int64 (string or integer) in `{}`", self.0)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("field `{}`: {v} does not fit an int64", self.0)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        let shown: String = v.chars().take(32).collect();
        // `str::parse` accepts a leading '+', which protobuf JSON does not.
        if v.starts_with('+') {
            return Err(E::custom(format!("field `{}`: {shown:?} is not an int64", self.0)));
        }
        v.parse().map_err(|_| E::custom(format!("field `{}`: {shown:?} is not an int64", self.0)))
    }
}

/// Read an `int64` field (string or number).
pub(crate) fn int64<'de, D: Deserializer<'de>>(d: D, field: &'static str) -> Result<i64, D::Error> {
    d.deserialize_any(Int64Visitor(field))
}

/// Write `bytes` as standard padded base64.
pub(crate) fn ser_bytes<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&encode_base64(v))
}

/// Write `repeated bytes`.
pub(crate) fn ser_bytes_list<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|b| encode_base64(b)))
}

/// Write `int64` as a JSON string.
pub(crate) fn ser_int64<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// For `skip_serializing_if`: proto3 omits zero scalars.
pub(crate) fn is_zero(v: &i64) -> bool {
    *v == 0
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    named_field!(de_blob, super::bytes, Vec<u8>, "blob");
    named_field!(de_list, super::bytes_list, Vec<Vec<u8>>, "list");
    named_field!(de_n, super::int64, i64, "n");

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct T {
        #[serde(deserialize_with = "de_blob", serialize_with = "super::ser_bytes")]
        blob: Vec<u8>,
        #[serde(deserialize_with = "de_list", serialize_with = "super::ser_bytes_list")]
        list: Vec<Vec<u8>>,
        #[serde(deserialize_with = "de_n", serialize_with = "super::ser_int64")]
        n: i64,
    }

    fn parse(json: &str) -> Result<T, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_forgivingly_and_writes_canonically() {
        let t = parse(r#"{"blob":"-_8","list":["AQ","Ag=="],"n":"-5"}"#).unwrap();
        assert_eq!(t, T { blob: vec![0xfb, 0xff], list: vec![vec![1], vec![2]], n: -5 });
        assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"blob":"+/8=","list":["AQ==","Ag=="],"n":"-5"}"#);
        assert_eq!(parse(r#"{"blob":"","list":[],"n":175508996}"#).unwrap().n, 175_508_996);
    }

    #[test]
    fn errors_name_the_field() {
        for (json, want) in [
            (r#"{"blob":"!","list":[],"n":1}"#, "field `blob`: invalid base64"),
            (r#"{"blob":"","list":["AQ","!"],"n":1}"#, "field `list[1]`: invalid base64"),
            (r#"{"blob":"","list":[],"n":"12x"}"#, "field `n`: \"12x\" is not an int64"),
            (r#"{"blob":"","list":[],"n":"+1"}"#, "field `n`"),
            (r#"{"blob":"","list":[],"n":1.5}"#, "int64 (string or integer) in `n`"),
            (r#"{"blob":"","list":[],"n":18446744073709551615}"#, "does not fit an int64"),
            (r#"{"blob":5,"list":[],"n":1}"#, "base64 text in `blob`"),
            (r#"{"blob":"","list":"AQ","n":1}"#, "array of base64 strings in `list`"),
        ] {
            let err = parse(json).unwrap_err();
            assert!(err.contains(want), "{json}: {err}");
        }
    }
}
