//! Predicate types: cosign's `--type` short names, the v1 "custom" `{"Data","Timestamp"}` wrapper, and an
//! unsigned guess at what a predicate really contains.
//!
//! The guess exists because real legacy data hides its type: cosign 1.x stored SLSA and SPDX files as
//! opaque strings under the custom type. Anything this module says about content is a *hint*: it is not
//! signed and must be presented as "looks like …", never as the attestation's type.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::intoto::{Statement, StatementVersion};
use super::json_outline::outline;
use crate::error::{Error, Result};

/// cosign's custom predicate type since v2.0 (`--type custom`, the default).
pub const CUSTOM: &str = "https://cosign.sigstore.dev/attestation/v1";
/// cosign 1.x spelling of the custom predicate type (no scheme).
pub const CUSTOM_V1: &str = "cosign.sigstore.dev/attestation/v1";
/// SLSA provenance v0.2.
pub const SLSA_PROVENANCE_V02: &str = "https://slsa.dev/provenance/v0.2";
/// SLSA provenance v1.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// SPDX documents (`spdx` and `spdxjson`).
pub const SPDX: &str = "https://spdx.dev/Document";
/// CycloneDX BOMs.
pub const CYCLONEDX: &str = "https://cyclonedx.org/bom";
/// cosign vulnerability scan results since v2.0.
pub const VULN: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";
/// cosign 1.x spelling of the vulnerability predicate type.
pub const VULN_V1: &str = "cosign.sigstore.dev/attestation/vuln/v1";
/// OpenVEX documents.
pub const OPENVEX: &str = "https://openvex.dev/ns";
/// in-toto links.
pub const LINK: &str = "https://in-toto.io/Link/v1";

// cosign's `--type` names and every URI each one has been written as. Order matters for `short_name`:
// the first name listing a URI is the one shown for it.
const SHORT_NAMES: &[(&str, &[&str])] = &[
    ("custom", &[CUSTOM, CUSTOM_V1]),
    ("slsaprovenance", &[SLSA_PROVENANCE_V02]),
    ("slsaprovenance02", &[SLSA_PROVENANCE_V02]),
    ("slsaprovenance1", &[SLSA_PROVENANCE_V1]),
    ("spdx", &[SPDX]),
    ("spdxjson", &[SPDX]),
    ("cyclonedx", &[CYCLONEDX]),
    ("vuln", &[VULN, VULN_V1]),
    ("openvex", &[OPENVEX]),
    ("link", &[LINK]),
];

/// The URIs a cosign short name stands for (`custom` and `vuln` have two spellings), or `None` when
/// `short` is not a short name. Short names are matched case-insensitively.
pub fn uris_for(short: &str) -> Option<&'static [&'static str]> {
    SHORT_NAMES.iter().find(|(name, _)| name.eq_ignore_ascii_case(short)).map(|(_, uris)| *uris)
}

/// The short name of a predicate type URI (`slsaprovenance` for SLSA v0.2, `spdx` for SPDX).
pub fn short_name(uri: &str) -> Option<&'static str> {
    SHORT_NAMES.iter().find(|(_, uris)| uris.contains(&uri)).map(|(name, _)| *name)
}

/// Whether a user's `--type`-style query selects a statement with this predicate type.
///
/// A short name matches every URI it has been written as (`custom` matches both the 1.x and 2.x custom
/// URIs); anything else must equal the predicate type exactly, as cosign compares it.
pub fn predicate_matches(query: &str, predicate_type: &str) -> bool {
    match uris_for(query) {
        Some(uris) => uris.contains(&predicate_type),
        None => query == predicate_type,
    }
}

/// cosign's `--type` short names, in the order they are documented.
pub fn short_names() -> impl Iterator<Item = &'static str> {
    SHORT_NAMES.iter().map(|(name, _)| *name)
}

/// Check that a `--type`-style query can select something: a cosign short name, or a URI. A URI is
/// anything without whitespace that has a scheme (a letter, then letters, digits, `+`, `-` or `.`, then
/// `:` and more: `https://…`, `urn:…`) or a `/` (the scheme-less `host/path` cosign 1.x wrote, such as
/// `cosign.sigstore.dev/attestation/v1`). Anything else — a bare word like `sbom` — would silently match
/// nothing, and is [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming the short names.
pub fn check_type_query(query: &str) -> Result<()> {
    if uris_for(query).is_some() || looks_like_uri(query) {
        return Ok(());
    }
    let names: Vec<&str> = short_names().collect();
    Err(Error::invalid_input(format!(
        "{query:?} is neither a predicate type short name ({}) nor a URI (with a scheme such as https: or a \
         host/path)",
        names.join(", ")
    )))
}

fn looks_like_uri(s: &str) -> bool {
    if s.is_empty() || s.chars().any(char::is_whitespace) {
        return false;
    }
    let scheme = s.split_once(':').is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    scheme || s.contains('/')
}

/// True for both spellings of cosign's custom predicate type.
pub fn is_custom(predicate_type: &str) -> bool {
    predicate_type == CUSTOM || predicate_type == CUSTOM_V1
}

/// The contents of cosign's `{"Data": …, "Timestamp": …}` predicate wrapper.
#[derive(Clone, Debug, PartialEq)]
pub struct CosignWrapped<'a> {
    /// The attested content.
    pub data: WrappedData<'a>,
    /// `Timestamp` as written (RFC 3339 for `custom`); `None` when absent or empty.
    pub timestamp: Option<&'a str>,
}

/// What `Data` held.
#[derive(Clone, Debug, PartialEq)]
pub enum WrappedData<'a> {
    /// A string: the attested file, byte for byte (custom predicates; cosign 1.x `--type spdx`).
    Text(&'a str),
    /// Parsed JSON (cosign 1.x `spdxjson`, `cyclonedx`).
    Json(&'a Value),
}

impl<'a> WrappedData<'a> {
    /// The attested bytes: the text itself, or compact JSON for parsed data (a re-serialisation: the
    /// signed bytes are cut from the payload by [`raw_member`](super::intoto::raw_member), as
    /// `att2ref get` does).
    pub fn to_bytes(&self) -> Cow<'a, [u8]> {
        match self {
            WrappedData::Text(t) => Cow::Borrowed(t.as_bytes()),
            WrappedData::Json(v) => Cow::Owned(v.to_string().into_bytes()),
        }
    }
}

/// Unwrap cosign's `{"Data": …, "Timestamp": …}` predicate. `None` when the predicate is not exactly that
/// shape (an object with `Data` and at most `Timestamp` besides), so real predicates are never mistaken for
/// it.
pub fn unwrap_cosign_data(predicate: &Value) -> Option<CosignWrapped<'_>> {
    let obj = predicate.as_object()?;
    let data = obj.get("Data")?;
    if obj.keys().any(|k| k != "Data" && k != "Timestamp") {
        return None;
    }
    let timestamp = match obj.get("Timestamp") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
        None | Some(Value::String(_)) | Some(Value::Null) => None,
        Some(_) => return None,
    };
    let data = match data {
        Value::String(s) => WrappedData::Text(s),
        other => WrappedData::Json(other),
    };
    Some(CosignWrapped { data, timestamp })
}

/// SLSA provenance versions recognised by shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlsaVersion {
    /// v0.1 (`builder` + `recipe`).
    V0_1,
    /// v0.2 (`builder`, `buildType`, `invocation`, `materials`).
    V0_2,
    /// v1 (`buildDefinition` + `runDetails`).
    V1,
}

/// What some content looks like.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ContentKind {
    /// An SPDX document; `version` like `SPDX-2.2` when stated.
    Spdx {
        /// The SPDX version string, sanitised.
        version: Option<String>,
    },
    /// A CycloneDX BOM; `spec_version` like `1.4` when stated.
    CycloneDx {
        /// The spec version, sanitised.
        spec_version: Option<String>,
    },
    /// SLSA provenance.
    SlsaProvenance(SlsaVersion),
    /// An OpenVEX document.
    OpenVex,
    /// An in-toto link.
    InTotoLink,
    /// An in-toto statement whose predicate is none of the above.
    InTotoStatement,
    /// Some other JSON.
    Json,
    /// Text that is not JSON.
    Text,
    /// Bytes that are not UTF-8.
    Binary,
    /// Nothing (empty or whitespace only).
    Empty,
}

/// An unsigned guess at what content is, for display next to the signed predicate type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContentHint {
    /// The kind.
    pub kind: ContentKind,
    /// The content was not strict JSON (comments, or only recognisable by its keys); the kind was found
    /// after relaxing.
    pub relaxed: bool,
}

impl ContentHint {
    fn new(kind: ContentKind) -> ContentHint {
        ContentHint { kind, relaxed: false }
    }

    /// True for the kinds that name a format (everything but JSON, text, binary and empty).
    pub fn is_specific(&self) -> bool {
        !matches!(self.kind, ContentKind::Json | ContentKind::Text | ContentKind::Binary | ContentKind::Empty)
    }

    /// A stable machine id: `spdx-2.2`, `cyclonedx-1.4`, `slsa-provenance-v0.2`, `openvex`, `in-toto-link`,
    /// `in-toto-statement`, `json`, `text`, `binary`, `empty`.
    pub fn id(&self) -> String {
        match &self.kind {
            ContentKind::Spdx { version: Some(v) } => {
                let v = v.to_ascii_lowercase();
                if v.starts_with("spdx-") { v } else { format!("spdx-{v}") }
            }
            ContentKind::Spdx { version: None } => "spdx".into(),
            ContentKind::CycloneDx { spec_version: Some(v) } => format!("cyclonedx-{}", v.to_ascii_lowercase()),
            ContentKind::CycloneDx { spec_version: None } => "cyclonedx".into(),
            ContentKind::SlsaProvenance(v) => format!("slsa-provenance-{}", slsa_version_str(*v)),
            ContentKind::OpenVex => "openvex".into(),
            ContentKind::InTotoLink => "in-toto-link".into(),
            ContentKind::InTotoStatement => "in-toto-statement".into(),
            ContentKind::Json => "json".into(),
            ContentKind::Text => "text".into(),
            ContentKind::Binary => "binary".into(),
            ContentKind::Empty => "empty".into(),
        }
    }

    /// A human label that says it is a guess: `looks like SPDX-2.2`.
    pub fn label(&self) -> String {
        let what = match &self.kind {
            ContentKind::Spdx { version: Some(v) } if v.to_ascii_uppercase().starts_with("SPDX-") => v.clone(),
            ContentKind::Spdx { version: Some(v) } => format!("SPDX {v}"),
            ContentKind::Spdx { version: None } => "SPDX".into(),
            ContentKind::CycloneDx { spec_version: Some(v) } => format!("CycloneDX {v}"),
            ContentKind::CycloneDx { spec_version: None } => "CycloneDX".into(),
            ContentKind::SlsaProvenance(v) => format!("SLSA provenance {}", slsa_version_str(*v)),
            ContentKind::OpenVex => "OpenVEX".into(),
            ContentKind::InTotoLink => "an in-toto link".into(),
            ContentKind::InTotoStatement => "an in-toto statement".into(),
            ContentKind::Json => "JSON".into(),
            ContentKind::Text => "text".into(),
            ContentKind::Binary => "binary data".into(),
            ContentKind::Empty => return "empty".into(),
        };
        format!("looks like {what}")
    }
}

fn slsa_version_str(v: SlsaVersion) -> &'static str {
    match v {
        SlsaVersion::V0_1 => "v0.1",
        SlsaVersion::V0_2 => "v0.2",
        SlsaVersion::V1 => "v1",
    }
}

// Nesting (statement → wrapper → text → statement → predicate) is followed this far and no further, so a
// crafted chain of JSON strings inside JSON strings cannot make sniffing expensive.
const MAX_DEPTH: u8 = 6;
// Text that is not JSON is only searched in its first part; format markers sit at the top of a file.
const SNIFF_PREFIX: usize = 64 * 1024;

/// Guess what a statement's predicate contains, given its signed predicate type.
///
/// The cosign `Data` wrapper is looked through; a recognised shape wins; otherwise a well-known predicate
/// type names the kind; otherwise the generic shape (JSON, text, empty) is returned.
pub fn hint_predicate(predicate_type: &str, predicate: Option<&Value>) -> ContentHint {
    hint_predicate_at(predicate_type, predicate, 0)
}

/// Guess what a statement's predicate is, reading only the outline of its raw JSON (its top-level
/// members and the few nested ones a hint looks at; a megabyte SBOM is not built into a tree): the same
/// answer as [`hint_predicate`] over the parsed predicate.
pub fn hint_statement(statement: &Statement) -> ContentHint {
    hint_predicate(&statement.predicate_type, predicate_outline(statement).as_ref())
}

/// The outline of a statement's predicate: its members, the few nested ones a hint reads (cosign's
/// `Data` among them) and every scalar, with the other arrays and objects left empty. `None` without a
/// predicate.
pub fn predicate_outline(statement: &Statement) -> Option<Value> {
    statement.predicate.as_ref().and_then(|p| outline(p.get()).ok())
}

/// Guess what arbitrary bytes are (a `.sbom` layer, a file).
pub fn hint_bytes(bytes: &[u8]) -> ContentHint {
    match std::str::from_utf8(bytes) {
        Ok(text) => hint_text(text),
        Err(_) => ContentHint::new(ContentKind::Binary),
    }
}

/// Guess what text is. Strict JSON is parsed once; JSON with comments is parsed once more without them;
/// anything else is searched for format markers in its first 64 KiB.
pub fn hint_text(text: &str) -> ContentHint {
    hint_text_at(text, 0)
}

/// Guess what parsed JSON is.
pub fn hint_value(value: &Value) -> ContentHint {
    hint_value_at(value, 0)
}

fn hint_predicate_at(predicate_type: &str, predicate: Option<&Value>, depth: u8) -> ContentHint {
    let from_content = predicate.map(|p| match unwrap_cosign_data(p) {
        Some(CosignWrapped { data: WrappedData::Text(t), .. }) => hint_text_at(t, depth + 1),
        Some(CosignWrapped { data: WrappedData::Json(v), .. }) => hint_value_at(v, depth + 1),
        None => hint_value_at(p, depth + 1),
    });
    if let Some(hint) = &from_content
        && hint.is_specific()
    {
        return hint.clone();
    }
    let from_type = match predicate_type {
        SLSA_PROVENANCE_V02 => Some(ContentKind::SlsaProvenance(SlsaVersion::V0_2)),
        SLSA_PROVENANCE_V1 => Some(ContentKind::SlsaProvenance(SlsaVersion::V1)),
        SPDX => Some(ContentKind::Spdx { version: None }),
        CYCLONEDX => Some(ContentKind::CycloneDx { spec_version: None }),
        OPENVEX => Some(ContentKind::OpenVex),
        LINK => Some(ContentKind::InTotoLink),
        _ => None,
    };
    match (from_type, from_content) {
        (Some(kind), content) => ContentHint { kind, relaxed: content.is_some_and(|c| c.relaxed) },
        (None, Some(content)) => content,
        (None, None) => ContentHint::new(ContentKind::Empty),
    }
}

fn hint_text_at(text: &str, depth: u8) -> ContentHint {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return ContentHint::new(ContentKind::Empty);
    }
    if depth >= MAX_DEPTH {
        return ContentHint::new(ContentKind::Text);
    }
    let looks_json = trimmed.starts_with(['{', '[']);
    if looks_json {
        if let Ok(v) = outline(trimmed) {
            return hint_value_at(&v, depth + 1);
        }
        if let Some(stripped) = strip_json_comments(trimmed)
            && let Ok(v) = outline(&stripped)
        {
            let mut hint = hint_value_at(&v, depth + 1);
            hint.relaxed = true;
            return hint;
        }
    }
    let mut end = trimmed.len().min(SNIFF_PREFIX);
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    sniff_markers(&trimmed[..end], looks_json)
        .map(|kind| ContentHint { kind, relaxed: looks_json })
        .unwrap_or(ContentHint::new(ContentKind::Text))
}

fn hint_value_at(value: &Value, depth: u8) -> ContentHint {
    if depth >= MAX_DEPTH {
        return ContentHint::new(ContentKind::Json);
    }
    match value {
        // cosign 2.x `--type spdx` stores the raw file as a JSON string predicate.
        Value::String(s) => hint_text_at(s, depth + 1),
        Value::Null => ContentHint::new(ContentKind::Empty),
        Value::Object(obj) => hint_object(obj, depth),
        _ => ContentHint::new(ContentKind::Json),
    }
}

fn hint_object(obj: &Map<String, Value>, depth: u8) -> ContentHint {
    let str_field = |k: &str| obj.get(k).and_then(Value::as_str);
    let has = |k: &str| obj.contains_key(k);

    if let Some(t) = str_field("_type") {
        if StatementVersion::from_type_uri(t).is_some() {
            let pt = str_field("predicateType").unwrap_or("");
            let hint = hint_predicate_at(pt, obj.get("predicate"), depth + 1);
            return if hint.is_specific() {
                hint
            } else {
                ContentHint { kind: ContentKind::InTotoStatement, relaxed: hint.relaxed }
            };
        }
        if t.eq_ignore_ascii_case("link") {
            return ContentHint::new(ContentKind::InTotoLink);
        }
    }
    if let Some(v) = str_field("spdxVersion") {
        return ContentHint::new(ContentKind::Spdx { version: clean_version(v) });
    }
    if has("SPDXID") {
        return ContentHint::new(ContentKind::Spdx { version: None });
    }
    if str_field("bomFormat").is_some_and(|f| f.eq_ignore_ascii_case("CycloneDX")) {
        return ContentHint::new(ContentKind::CycloneDx {
            spec_version: str_field("specVersion").and_then(clean_version),
        });
    }
    if let Some(kind) = obj.get("@context").and_then(context_kind) {
        return ContentHint::new(kind);
    }
    if has("buildDefinition") && has("runDetails") {
        return ContentHint::new(ContentKind::SlsaProvenance(SlsaVersion::V1));
    }
    if has("builder") && has("recipe") {
        return ContentHint::new(ContentKind::SlsaProvenance(SlsaVersion::V0_1));
    }
    let slsa02_keys =
        ["builder", "buildType", "invocation", "materials", "buildConfig"].iter().filter(|k| has(k)).count();
    if (has("builder") || has("buildType")) && slsa02_keys >= 2 {
        return ContentHint::new(ContentKind::SlsaProvenance(SlsaVersion::V0_2));
    }
    // An in-toto link predicate (Link v1) or a signed link file (`{"signed": {...}, "signatures": [...]}`).
    if has("command") && has("materials") && (has("byproducts") || has("products") || has("environment")) {
        return ContentHint::new(ContentKind::InTotoLink);
    }
    if let Some(Value::Object(signed)) = obj.get("signed")
        && signed.get("_type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("link"))
    {
        return ContentHint::new(ContentKind::InTotoLink);
    }
    ContentHint::new(ContentKind::Json)
}

fn context_kind(context: &Value) -> Option<ContentKind> {
    let urls: Vec<&str> = match context {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => return None,
    };
    for url in urls {
        if url.starts_with("https://openvex.dev/ns") {
            return Some(ContentKind::OpenVex);
        }
        if let Some(rest) = url.split_once("spdx.org/rdf/").map(|(_, r)| r) {
            let version = rest.split('/').next().filter(|v| v.starts_with('3'));
            return Some(ContentKind::Spdx { version: version.and_then(|v| clean_version(&format!("SPDX-{v}"))) });
        }
    }
    None
}

// Markers of formats that are not (strict) JSON: SPDX tag-value, CycloneDX XML, and for broken JSON the
// keys the JSON forms would have.
fn sniff_markers(prefix: &str, looks_json: bool) -> Option<ContentKind> {
    for line in prefix.lines().take(200) {
        if let Some(v) = line.trim().strip_prefix("SPDXVersion:") {
            return Some(ContentKind::Spdx { version: clean_version(v.trim()) });
        }
    }
    if let Some(i) = prefix.find("cyclonedx.org/schema/bom/") {
        let rest = &prefix[i + "cyclonedx.org/schema/bom/".len()..];
        let v: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        return Some(ContentKind::CycloneDx { spec_version: clean_version(&v) });
    }
    if !looks_json {
        return None;
    }
    let key = |k: &str| prefix.contains(&format!("\"{k}\""));
    if key("spdxVersion") {
        return Some(ContentKind::Spdx {
            version: quoted_value_after(prefix, "\"spdxVersion\"").and_then(clean_version),
        });
    }
    if key("bomFormat") && prefix.contains("CycloneDX") {
        return Some(ContentKind::CycloneDx {
            spec_version: quoted_value_after(prefix, "\"specVersion\"").and_then(clean_version),
        });
    }
    if key("buildDefinition") && key("runDetails") {
        return Some(ContentKind::SlsaProvenance(SlsaVersion::V1));
    }
    if key("builder") && (key("buildType") || key("invocation")) {
        return Some(ContentKind::SlsaProvenance(SlsaVersion::V0_2));
    }
    if prefix.contains("https://openvex.dev/ns") {
        return Some(ContentKind::OpenVex);
    }
    None
}

// `"key": "value"` → value, for sniffing text that did not parse.
fn quoted_value_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let after = &text[text.find(key)? + key.len()..];
    let after = after.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    Some(&after[..after.find('"')?])
}

// Versions end up in labels printed to terminals: keep only short, plain tokens.
fn clean_version(v: &str) -> Option<String> {
    let ok =
        !v.is_empty() && v.len() <= 32 && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    ok.then(|| v.to_owned())
}

/// Remove `//` line comments and `/* */` block comments outside JSON strings. `None` when there were none
/// (so the caller does not re-parse identical text) or a block comment is unterminated.
fn strip_json_comments(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let (mut i, mut in_string, mut found) = (0, false, false);
    while i < b.len() {
        let c = b[i];
        if in_string {
            out.push(c);
            if c == b'\\' && i + 1 < b.len() {
                out.push(b[i + 1]);
                i += 1;
            } else if c == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match (c, b.get(i + 1)) {
            (b'"', _) => {
                in_string = true;
                out.push(c);
                i += 1;
            }
            (b'/', Some(b'/')) => {
                found = true;
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            (b'/', Some(b'*')) => {
                found = true;
                let end = text[i + 2..].find("*/")?;
                i += 2 + end + 2;
                out.push(b' ');
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Only whole ASCII sequences were removed, so the rest is still UTF-8.
    found.then(|| String::from_utf8(out).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::dsse::Envelope;
    use crate::model::testdata;
    use serde_json::json;

    #[test]
    fn the_outline_hint_equals_the_full_hint() {
        let sbom = json!({"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","packages":[{"name":"a"}]});
        let predicates = [
            sbom.clone(),
            json!({"Data": sbom.to_string(), "Timestamp": "2022-01-01T00:00:00Z"}),
            json!({"Data": sbom, "Timestamp": ""}),
            json!({"Data": "SPDXVersion: SPDX-2.2\nDataLicense: CC0-1.0"}),
            json!({"bomFormat":"CycloneDX","specVersion":"1.5","components":[{"x":[1,2]}]}),
            json!({"builder":{"id":"b"},"buildType":"t","invocation":{},"materials":[{"uri":"u"}]}),
            json!({"buildDefinition":{"externalParameters":{}},"runDetails":{"builder":{}}}),
            json!({"@context":["https://openvex.dev/ns/v0.2.0"],"statements":[{}]}),
            json!({"@context":"https://spdx.org/rdf/3.0.1/spdx-context.jsonld","@graph":[]}),
            json!({"signed":{"_type":"link","materials":{}},"signatures":[]}),
            json!({"_type":crate::model::intoto::STATEMENT_V1,"predicateType":SLSA_PROVENANCE_V1,"predicate":{"buildDefinition":{}}}),
            json!("{\"bomFormat\": \"CycloneDX\", /* a comment */ \"specVersion\": \"1.4\"}"),
            json!([1, 2, 3]),
            json!({"unknown": {"deep": [1]}}),
            json!("plain text"),
        ];
        for (n, predicate) in predicates.into_iter().enumerate() {
            for predicate_type in [CUSTOM, SPDX, "https://example.com/unknown"] {
                let json = json!({"_type": crate::model::intoto::STATEMENT_V1, "predicateType": predicate_type,
                    "subject": [{"digest": {"sha256": "00"}}], "predicate": predicate});
                let statement = Statement::parse(json.to_string().as_bytes()).unwrap();
                let full = hint_predicate(predicate_type, statement.predicate_value().as_ref());
                assert_eq!(hint_statement(&statement), full, "predicate {n} as {predicate_type}");
                assert_ne!(full.kind, ContentKind::Empty, "predicate {n}");
            }
        }
    }

    #[test]
    fn type_queries_are_short_names_or_uris() {
        for ok in [
            "custom",
            "SLSAProvenance",
            "link",
            CUSTOM,
            CUSTOM_V1,
            VULN_V1,
            "https://example.com/predicate/v1",
            "http://x",
            "urn:example:predicate",
            "example.com/predicate",
        ] {
            assert!(check_type_query(ok).is_ok(), "{ok}");
        }
        for bad in ["bogus", "", " custom", "sbom", "https:", ":x", "1x:y", "a b/c", "slsa provenance"] {
            let err = check_type_query(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{bad}");
            assert!(
                err.to_string().contains(
                    "custom, slsaprovenance, slsaprovenance02, slsaprovenance1, spdx, spdxjson, cyclonedx, vuln, \
                     openvex, link"
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn short_names_and_matching() {
        assert!(predicate_matches("custom", CUSTOM));
        assert!(predicate_matches("custom", CUSTOM_V1));
        assert!(predicate_matches("CUSTOM", CUSTOM_V1));
        assert!(predicate_matches("vuln", VULN_V1) && predicate_matches("vuln", VULN));
        assert!(predicate_matches("slsaprovenance", SLSA_PROVENANCE_V02));
        assert!(predicate_matches("slsaprovenance02", SLSA_PROVENANCE_V02));
        assert!(!predicate_matches("slsaprovenance", SLSA_PROVENANCE_V1));
        assert!(predicate_matches("slsaprovenance1", SLSA_PROVENANCE_V1));
        assert!(predicate_matches("spdxjson", SPDX) && predicate_matches("spdx", SPDX));
        assert!(predicate_matches("cyclonedx", CYCLONEDX));
        assert!(predicate_matches("openvex", OPENVEX));
        assert!(predicate_matches("link", LINK));
        // Full URIs compare exactly, as cosign does: the two custom spellings are different types.
        assert!(predicate_matches(CUSTOM, CUSTOM));
        assert!(!predicate_matches(CUSTOM, CUSTOM_V1));
        assert!(!predicate_matches("https://example.com/x", "https://example.com/X"));

        assert_eq!(short_name(CUSTOM_V1), Some("custom"));
        assert_eq!(short_name(SLSA_PROVENANCE_V02), Some("slsaprovenance"));
        assert_eq!(short_name(SLSA_PROVENANCE_V1), Some("slsaprovenance1"));
        assert_eq!(short_name(SPDX), Some("spdx"));
        assert_eq!(short_name(VULN_V1), Some("vuln"));
        assert_eq!(short_name("https://example.com/x"), None);
        assert!(is_custom(CUSTOM_V1) && !is_custom(SPDX));
    }

    #[test]
    fn unwraps_only_the_exact_wrapper() {
        let v = json!({"Data": "hello", "Timestamp": "2022-10-13T23:11:27Z"});
        let w = unwrap_cosign_data(&v).unwrap();
        assert_eq!(w.data, WrappedData::Text("hello"));
        assert_eq!(w.timestamp, Some("2022-10-13T23:11:27Z"));
        assert_eq!(w.data.to_bytes().as_ref(), b"hello");

        let v = json!({"Data": {"a": [1, 2]}, "Timestamp": ""});
        let w = unwrap_cosign_data(&v).unwrap();
        assert_eq!(w.timestamp, None);
        assert_eq!(w.data.to_bytes().as_ref(), br#"{"a":[1,2]}"#);

        assert!(unwrap_cosign_data(&json!({"Data": "x", "other": 1})).is_none());
        assert!(unwrap_cosign_data(&json!({"Timestamp": "x"})).is_none());
        assert!(unwrap_cosign_data(&json!({"Data": "x", "Timestamp": 5})).is_none());
        assert!(unwrap_cosign_data(&json!("Data")).is_none());
    }

    #[test]
    fn hints_by_shape() {
        let cases = [
            (json!({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT"}), "spdx-2.3", "looks like SPDX-2.3"),
            (json!({"SPDXID": "x"}), "spdx", "looks like SPDX"),
            (
                json!({"@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"}),
                "spdx-3.0.1",
                "looks like SPDX-3.0.1",
            ),
            (json!({"bomFormat": "CycloneDX", "specVersion": "1.4"}), "cyclonedx-1.4", "looks like CycloneDX 1.4"),
            (
                json!({"builder": {}, "buildType": "x", "invocation": {}}),
                "slsa-provenance-v0.2",
                "looks like SLSA provenance v0.2",
            ),
            (json!({"buildDefinition": {}, "runDetails": {}}), "slsa-provenance-v1", "looks like SLSA provenance v1"),
            (json!({"builder": {}, "recipe": {}}), "slsa-provenance-v0.1", "looks like SLSA provenance v0.1"),
            (json!({"@context": "https://openvex.dev/ns/v0.2.0", "statements": []}), "openvex", "looks like OpenVEX"),
            (json!({"_type": "link", "name": "x"}), "in-toto-link", "looks like an in-toto link"),
            (
                json!({"name": "x", "command": [], "materials": {}, "byproducts": {}}),
                "in-toto-link",
                "looks like an in-toto link",
            ),
            (json!({"signed": {"_type": "link"}, "signatures": []}), "in-toto-link", "looks like an in-toto link"),
            (json!({"a": 1}), "json", "looks like JSON"),
            (json!([1]), "json", "looks like JSON"),
            (json!(null), "empty", "empty"),
            (json!({"spdxVersion": "SPDX-2.2\u{1b}[31m"}), "spdx", "looks like SPDX"),
        ];
        for (value, id, label) in cases {
            let h = hint_value(&value);
            assert_eq!((h.id().as_str(), h.label().as_str()), (id, label), "{value}");
        }
    }

    #[test]
    fn hints_text_forms() {
        assert_eq!(hint_text("SPDXVersion: SPDX-2.2\nDataLicense: CC0-1.0\n").id(), "spdx-2.2");
        let xml = r#"<?xml version="1.0"?><bom xmlns="http://cyclonedx.org/schema/bom/1.5" version="1">"#;
        assert_eq!(hint_text(xml).id(), "cyclonedx-1.5");
        assert_eq!(hint_text("hello").id(), "text");
        assert_eq!(hint_text("  \n").id(), "empty");
        assert_eq!(hint_bytes(&[0xff, 0xfe]).id(), "binary");
        // Broken JSON is still recognised by its keys, and flagged as relaxed.
        let h = hint_text(r#"{"spdxVersion": "SPDX-2.2", "name": "x", oops}"#);
        assert_eq!((h.id().as_str(), h.relaxed), ("spdx-2.2", true));
        let h = hint_text(r#"{"bomFormat": "CycloneDX", "specVersion": "1.6", }"#);
        assert_eq!(h.id(), "cyclonedx-1.6");
        // Comments are removed only outside strings.
        let h = hint_text("{\"builder\": {\"id\": \"a//b\"}, /* c */ \"buildType\": \"x\" // d\n}");
        assert_eq!((h.id().as_str(), h.relaxed), ("slsa-provenance-v0.2", true));
        assert_eq!(hint_text("{\"a\": \"/*\"} /* unterminated").id(), "text");
    }

    #[test]
    fn nested_strings_stop_at_the_depth_limit() {
        let mut v = json!({"spdxVersion": "SPDX-2.2"});
        for _ in 0..20 {
            v = Value::String(v.to_string());
        }
        assert!(!hint_value(&v).is_specific());
    }

    #[test]
    fn predicate_type_fills_in_when_content_is_generic() {
        assert_eq!(hint_predicate(SLSA_PROVENANCE_V1, Some(&json!({}))).id(), "slsa-provenance-v1");
        assert_eq!(hint_predicate(SPDX, Some(&json!({"spdxVersion": "SPDX-2.3"}))).id(), "spdx-2.3");
        assert_eq!(hint_predicate(SPDX, Some(&json!("SPDXVersion: SPDX-2.1\n"))).id(), "spdx-2.1");
        assert_eq!(hint_predicate("https://example.com/p", None).id(), "empty");
        assert_eq!(hint_predicate(CUSTOM, Some(&json!({"Data": "plain words", "Timestamp": ""}))).id(), "text");
        let stmt = json!({"_type": crate::model::intoto::STATEMENT_V1, "predicateType": "x", "predicate": {}});
        assert_eq!(hint_value(&stmt).id(), "in-toto-statement");
    }

    fn article_statement(layer: &str) -> Statement {
        let env = Envelope::parse(&testdata::read(layer)).unwrap();
        Statement::parse(&env.payload).unwrap()
    }

    #[test]
    fn article_slsa_layer_unwraps_to_the_exact_file() {
        let stmt = article_statement(testdata::CSSC_SLSA_LAYER);
        let predicate = stmt.predicate_value().unwrap();
        let wrapped = unwrap_cosign_data(&predicate).unwrap();
        assert!(matches!(wrapped.data, WrappedData::Text(_)));
        assert_eq!(wrapped.data.to_bytes().as_ref(), testdata::read(testdata::CSSC_SLSA_FILE).as_slice());
        assert!(wrapped.timestamp.is_some_and(|t| crate::model::time::parse_rfc3339(t).is_ok()));

        let hint = hint_predicate(&stmt.predicate_type, stmt.predicate_value().as_ref());
        assert_eq!(hint.id(), "slsa-provenance-v0.2");
        assert_eq!(hint.label(), "looks like SLSA provenance v0.2");
        assert!(hint.relaxed, "the file has a // comment");
    }

    #[test]
    fn article_sbom_layer_hints_spdx_2_2() {
        let stmt = article_statement(testdata::CSSC_SBOM_LAYER);
        let hint = hint_predicate(&stmt.predicate_type, stmt.predicate_value().as_ref());
        assert_eq!(hint.id(), "spdx-2.2");
        assert_eq!(hint.label(), "looks like SPDX-2.2");
        assert!(!hint.relaxed);
    }
}
