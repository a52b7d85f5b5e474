//! in-toto Statements (v0.1 and v1): the signed payload of every attestation.
//!
//! The statement is parsed from the verified payload bytes once; the predicate stays raw JSON because its
//! meaning depends on `predicateType` and att2ref never needs to interpret most of them.

use std::collections::{BTreeMap, HashMap};

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::digest::Digest;
use crate::error::{Error, Result};

/// `_type` of in-toto Statement v0.1 (what every `cosign attest` wrote).
pub const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";
/// `_type` of in-toto Statement v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";

/// Which Statement layer version a payload declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatementVersion {
    /// `https://in-toto.io/Statement/v0.1`.
    V0_1,
    /// `https://in-toto.io/Statement/v1`.
    V1,
}

impl StatementVersion {
    /// The `_type` URI.
    pub fn type_uri(self) -> &'static str {
        match self {
            StatementVersion::V0_1 => STATEMENT_V01,
            StatementVersion::V1 => STATEMENT_V1,
        }
    }

    /// Recognise a `_type` URI.
    pub fn from_type_uri(uri: &str) -> Option<StatementVersion> {
        match uri {
            STATEMENT_V01 => Some(StatementVersion::V0_1),
            STATEMENT_V1 => Some(StatementVersion::V1),
            _ => None,
        }
    }
}

/// One subject: an artifact name (optional in v1) and its digests by algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// The name; empty when absent.
    pub name: String,
    /// Algorithm → hex value, as given.
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    /// True when any algorithm this subject shares with `digest` has the same value (hex compared
    /// case-insensitively, as in-toto values are lowercase hex by definition).
    pub fn matches(&self, digest: &Digest) -> bool {
        self.digest.get(digest.algorithm().as_str()).is_some_and(|v| v.eq_ignore_ascii_case(digest.hex()))
    }
}

/// A parsed in-toto Statement.
#[derive(Clone, Debug)]
pub struct Statement {
    /// The declared version.
    pub version: StatementVersion,
    /// The subjects (at least one).
    pub subjects: Vec<Subject>,
    /// The predicate type URI, exactly as signed.
    pub predicate_type: String,
    /// The predicate, raw JSON as signed (checked to be JSON, not built into a tree: an SBOM predicate
    /// runs to megabytes and most readers only need the subject and the type); `None` when absent or
    /// `null` (allowed in v1). [`Statement::predicate_value`] parses it.
    pub predicate: Option<Box<RawValue>>,
}

impl PartialEq for Statement {
    fn eq(&self, other: &Statement) -> bool {
        self.version == other.version
            && self.subjects == other.subjects
            && self.predicate_type == other.predicate_type
            && self.predicate.as_ref().map(|p| p.get()) == other.predicate.as_ref().map(|p| p.get())
    }
}

impl Statement {
    /// Parse a statement from a DSSE payload. A member written twice counts once, with its last value.
    pub fn parse(payload: &[u8]) -> Result<Statement> {
        // UTF-8 is checked over the whole payload first, skipped members included, as a tree parse would.
        let text = std::str::from_utf8(payload).map_err(|e| {
            Error::invalid_format(format!("in-toto statement: invalid JSON: not UTF-8 at byte {}", e.valid_up_to()))
        })?;
        match serde_json::from_str::<Members>(text) {
            Ok(members) => Statement::from_members(members),
            // Only invalid JSON or a non-object fails above; the tree parse words which one it was (and
            // names the real fault of a non-object that is not JSON either, such as a nesting bomb).
            Err(_) => Err(match serde_json::from_str::<Value>(text) {
                Ok(_) => Error::invalid_format("in-toto statement: not a JSON object"),
                Err(e) => Error::invalid_format(format!("in-toto statement: invalid JSON: {e}")),
            }),
        }
    }

    /// Build a statement from parsed JSON.
    pub fn from_value(value: Value) -> Result<Statement> {
        let Value::Object(mut obj) = value else {
            return Err(Error::invalid_format("in-toto statement: not a JSON object"));
        };
        let predicate = match obj.remove("predicate") {
            None | Some(Value::Null) => None,
            Some(p) => Some(serde_json::value::to_raw_value(&p).map_err(|e| Error::invalid_format(e.to_string()))?),
        };
        Statement::from_members(Members {
            kind: obj.remove("_type"),
            predicate_type: obj.remove("predicateType"),
            subject: obj.remove("subject"),
            predicate,
        })
    }

    fn from_members(members: Members) -> Result<Statement> {
        let bad = |msg: String| Error::invalid_format(format!("in-toto statement: {msg}"));
        let version = match &members.kind {
            Some(Value::String(t)) => StatementVersion::from_type_uri(t).ok_or_else(|| {
                bad(format!("unknown `_type` {:?} (expected {STATEMENT_V01} or {STATEMENT_V1})", short(t)))
            })?,
            Some(_) => return Err(bad("field `_type` is not a string".into())),
            None => return Err(bad("missing field `_type`".into())),
        };
        let predicate_type = match members.predicate_type {
            Some(Value::String(t)) if !t.is_empty() => t,
            Some(Value::String(_)) => return Err(bad("field `predicateType` is empty".into())),
            Some(_) => return Err(bad("field `predicateType` is not a string".into())),
            None => return Err(bad("missing field `predicateType`".into())),
        };
        let subjects = match &members.subject {
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, s)| parse_subject(s).map_err(|m| bad(format!("`subject[{i}]`: {m}"))))
                .collect::<Result<Vec<_>>>()?,
            Some(Value::Array(_)) => return Err(bad("no subject (`subject` is empty)".into())),
            Some(_) => return Err(bad("field `subject` is not an array".into())),
            None => return Err(bad("no subject (missing field `subject`)".into())),
        };
        let predicate = members.predicate.filter(|p| p.get() != "null");
        Ok(Statement { version, subjects, predicate_type, predicate })
    }

    /// The predicate parsed into a JSON tree; `None` when there is none, or when it is nested deeper
    /// than a tree parse allows (128 levels; the raw text is still in [`Statement::predicate`]).
    pub fn predicate_value(&self) -> Option<Value> {
        // The raw text was checked to be JSON when the statement was parsed; only depth can fail here.
        self.predicate.as_ref().and_then(|p| serde_json::from_str(p.get()).ok())
    }

    /// True when some subject matches the image digest (in-toto: any common algorithm with an equal value).
    pub fn matches(&self, image: &Digest) -> bool {
        self.matching_subject(image).is_some()
    }

    /// The first subject matching the image digest.
    pub fn matching_subject(&self, image: &Digest) -> Option<&Subject> {
        self.subjects.iter().find(|s| s.matches(image))
    }
}

/// The members of a statement object that [`Statement`] reads, the predicate kept raw; every other
/// member is checked to be JSON and skipped. What is kept raw or skipped is checked for syntax only: a
/// number beyond the range of a double passes there, as it does through any raw-JSON reader. The last
/// of repeated members wins, as in a [`Value`] map.
struct Members {
    kind: Option<Value>,
    predicate_type: Option<Value>,
    subject: Option<Value>,
    predicate: Option<Box<RawValue>>,
}

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Members, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Members, A::Error> {
                let mut m = Members { kind: None, predicate_type: None, subject: None, predicate: None };
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match &*key {
                        "_type" => m.kind = Some(map.next_value()?),
                        "predicateType" => m.predicate_type = Some(map.next_value()?),
                        "subject" => m.subject = Some(map.next_value()?),
                        "predicate" => m.predicate = Some(map.next_value()?),
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(m)
            }
        }
        d.deserialize_map(Visit)
    }
}

/// The value of the member `name` of the JSON object `json`, byte for byte as written (escapes, number
/// spelling, key order and whitespace inside it kept; the whitespace around it is not part of it). `None`
/// when absent or `null`. A member written twice gives the last, as parsing into a [`Value`] keeps it.
pub fn raw_member<'a>(json: &'a [u8], name: &str) -> Result<Option<&'a [u8]>> {
    let mut members: HashMap<String, &'a RawValue> =
        serde_json::from_slice(json).map_err(|e| Error::invalid_format(format!("reading the raw `{name}`: {e}")))?;
    Ok(members.remove(name).map(|raw| raw.get().as_bytes()).filter(|raw| *raw != b"null"))
}

fn parse_subject(value: &Value) -> std::result::Result<Subject, String> {
    let obj: &Map<String, Value> = value.as_object().ok_or("not a JSON object")?;
    let name = match obj.get("name") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(_) => return Err("field `name` is not a string".into()),
    };
    let digest = match obj.get("digest") {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(alg, v)| match v {
                Value::String(hex) => Ok((alg.clone(), hex.clone())),
                _ => Err(format!("`digest.{}` is not a string", short(alg))),
            })
            .collect::<std::result::Result<BTreeMap<_, _>, _>>()?,
        Some(_) => return Err("field `digest` is not an object".into()),
        None => return Err("missing field `digest`".into()),
    };
    Ok(Subject { name, digest })
}

// Hostile inputs can carry megabytes in a field; error messages quote only the start.
fn short(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::dsse::Envelope;
    use crate::model::testdata;

    const IMG: &str = "sha256:9bd049b6b470118cc6a02d58595b86107407c9e288c0d556ce342ea8acbafdf4";

    fn stmt(json: &str) -> Result<Statement> {
        Statement::parse(json.as_bytes())
    }

    #[test]
    fn parses_v01_and_v1() {
        let s = stmt(&format!(
            r#"{{"_type":"{STATEMENT_V01}","predicateType":"p","subject":[{{"name":"r","digest":{{"sha256":"{}"}}}}],"predicate":{{"a":1}}}}"#,
            &IMG[7..]
        ))
        .unwrap();
        assert_eq!(s.version, StatementVersion::V0_1);
        assert_eq!(s.subjects[0].name, "r");
        assert_eq!(s.predicate_value(), Some(serde_json::json!({"a":1})));
        assert_eq!(s.predicate.as_ref().map(|p| p.get()), Some(r#"{"a":1}"#), "kept as signed");
        assert!(s.matches(&IMG.parse().unwrap()));

        let s = stmt(&format!(
            r#"{{"_type":"{STATEMENT_V1}","predicateType":"p","subject":[{{"digest":{{"sha512":"00"}}}}]}}"#
        ))
        .unwrap();
        assert_eq!(s.version, StatementVersion::V1);
        assert_eq!(s.subjects[0].name, "");
        assert!(s.predicate.is_none());
        assert!(!s.matches(&IMG.parse().unwrap()), "no common algorithm means no match");
    }

    #[test]
    fn repeated_members_keep_the_last_and_skipped_members_are_still_checked() {
        let head = format!(r#""_type":"{STATEMENT_V1}","subject":[{{"digest":{{"sha256":"00"}}}}]"#);
        let s = stmt(&format!(
            r#"{{{head},"predicateType":"a","predicate":{{"x":1}},"predicateType":"b","predicate":null}}"#
        ))
        .unwrap();
        assert_eq!((s.predicate_type.as_str(), s.predicate.is_none()), ("b", true));
        // What a tree parse keeps, member for member.
        let json =
            format!(r#"{{{head},"predicate":[1, 2.50 ,"\u00e9"],"extra":{{"deep":[{{}}]}},"predicateType":"p"}}"#);
        let tree = Statement::from_value(serde_json::from_str(&json).unwrap()).unwrap();
        let lean = stmt(&json).unwrap();
        assert_eq!((lean.predicate_value(), lean.predicate_type.as_str()), (tree.predicate_value(), "p"));
        assert_eq!(lean.predicate.as_ref().unwrap().get(), r#"[1, 2.50 ,"\u00e9"]"#, "raw, as signed");

        let mut bad = format!(r#"{{{head},"predicateType":"p","extra":"x"}}"#).into_bytes();
        let at = bad.len() - 3;
        bad[at] = 0xff;
        let err = Statement::parse(&bad).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        let cases = [
            (format!(r#"{{{head},"predicateType":"p","extra":[}}"#), "invalid JSON"),
            ("7".into(), "not a JSON object"),
            ("[".repeat(200) + &"]".repeat(200), "recursion limit"),
        ];
        // A predicate nested deeper than a tree parse allows is kept raw (Go's decoder allows 10,000 levels);
        // only its tree is unavailable.
        let deep = "[".repeat(200) + &"]".repeat(200);
        let s = stmt(&format!(r#"{{{head},"predicateType":"p","predicate":{deep}}}"#)).unwrap();
        assert_eq!((s.predicate.as_ref().map(|p| p.get()), s.predicate_value()), (Some(deep.as_str()), None));
        for (json, want) in cases {
            assert!(serde_json::from_str::<Value>(&json).is_err() || want == "not a JSON object", "{json}: control");
            let err = stmt(&json).unwrap_err();
            assert!(err.to_string().contains(want), "{json}: {err}");
        }
    }

    #[test]
    fn matching_follows_in_toto_rules() {
        let img: Digest = IMG.parse().unwrap();
        let upper = IMG[7..].to_ascii_uppercase();
        let s = stmt(&format!(
            r#"{{"_type":"{STATEMENT_V1}","predicateType":"p","subject":[{{"digest":{{"sha256":"00"}}}},{{"digest":{{"gitCommit":"ab","sha256":"{upper}"}}}}]}}"#
        ))
        .unwrap();
        assert_eq!(s.matching_subject(&img), Some(&s.subjects[1]));
        let other = Digest::sha256(b"other");
        assert!(!s.matches(&other));
    }

    #[test]
    fn validation_errors() {
        let cases = [
            ("[]", "not a JSON object"),
            ("{", "invalid JSON"),
            (r#"{"predicateType":"p","subject":[]}"#, "missing field `_type`"),
            (r#"{"_type":"https://in-toto.io/Statement/v2","predicateType":"p","subject":[]}"#, "unknown `_type`"),
            (r#"{"_type":5,"predicateType":"p","subject":[]}"#, "`_type` is not a string"),
            (r#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"p","subject":[]}"#, "no subject"),
            (r#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"p"}"#, "no subject"),
            (
                r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{}}]}"#,
                "missing field `predicateType`",
            ),
            (r#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"","subject":[{"digest":{}}]}"#, "empty"),
            (
                r#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"p","subject":[{}]}"#,
                "`subject[0]`: missing field `digest`",
            ),
            (
                r#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"p","subject":[{"digest":{"sha256":1}}]}"#,
                "`digest.sha256`",
            ),
            (
                r#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"p","subject":[{"name":2,"digest":{}}]}"#,
                "`name`",
            ),
            (r#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"p","subject":"x"}"#, "not an array"),
        ];
        for (json, want) in cases {
            let err = stmt(json).unwrap_err();
            assert!(err.to_string().contains(want), "{json}: {err}");
        }
    }

    #[test]
    fn article_statements_bind_to_the_image() {
        let img: Digest = testdata::CSSC_IMAGE.parse().unwrap();
        for layer in [testdata::CSSC_SLSA_LAYER, testdata::CSSC_SBOM_LAYER] {
            let env = Envelope::parse(&testdata::read(layer)).unwrap();
            let s = Statement::parse(&env.payload).unwrap();
            assert_eq!(s.version, StatementVersion::V0_1);
            assert_eq!(s.predicate_type, "cosign.sigstore.dev/attestation/v1");
            assert_eq!(s.subjects[0].name, "562077019569.dkr.ecr.us-west-2.amazonaws.com/flasksample");
            assert!(s.matches(&img));
        }
        let env = Envelope::parse(&testdata::read(testdata::WRITER_LEGACY_ENVELOPE)).unwrap();
        let s = Statement::parse(&env.payload).unwrap();
        assert_eq!(s.version, StatementVersion::V1);
        assert_eq!(s.predicate_type, "https://slsa.dev/provenance/v1");
    }
}
