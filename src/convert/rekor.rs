//! A Rekor v1 log entry as `GET /api/v1/log/entries?logIndex=N` returns it: the source of the inclusion
//! proof a v0.3 bundle requires and the legacy annotation never carried (FORMATS finding 1).
//!
//! The response is a JSON object mapping the entry UUID to
//! `{body, integratedTime, logID, logIndex, verification: {inclusionProof: {checkpoint, hashes[hex],
//! logIndex, rootHash(hex), treeSize}, signedEntryTimestamp}}` (rekor `openapi.yaml`, `LogEntry`).
//! Parsing is pure; checking the Merkle path and the checkpoint signature is the verifier's job.

use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::model::bundle::{Checkpoint, InclusionProof};
use crate::model::dsse::decode_base64_any;
use crate::model::rekor::RekorBundle;

/// SHA-256 output size: Rekor v1 tree hashes.
const HASH_LEN: usize = 32;
/// A Merkle audit path is at most one hash per tree level; 64 levels exceed any int64-sized tree.
const MAX_PROOF_HASHES: usize = 64;

/// One log entry fetched from Rekor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RekorEntry {
    /// The entry UUID (the response's only key).
    pub uuid: String,
    /// The canonicalized body, decoded from base64.
    pub body: Vec<u8>,
    /// Unix seconds when the log integrated the entry.
    pub integrated_time: i64,
    /// The log id, decoded from hex.
    pub log_id: Vec<u8>,
    /// Global log index.
    pub log_index: i64,
    /// The inclusion proof, already in the bundle's form; `None` when the response had none.
    pub inclusion_proof: Option<InclusionProof>,
    /// The SET as the log returned it now, when present.
    pub signed_entry_timestamp: Option<Vec<u8>>,
}

impl RekorEntry {
    /// Parse the response of `GET /api/v1/log/entries?logIndex=N`: an object with exactly one entry.
    pub fn parse_response(json: &[u8]) -> Result<RekorEntry> {
        let bad = |msg: String| Error::invalid_format(format!("Rekor log entry response: {msg}"));
        let value: Value = serde_json::from_slice(json).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(bad("not a JSON object".into()));
        };
        if map.len() != 1 {
            return Err(bad(format!("expected exactly one entry, found {}", map.len())));
        }
        let Some((uuid, entry)) = map.into_iter().next() else {
            return Err(bad("expected exactly one entry, found 0".into()));
        };
        let shown: String = uuid.chars().take(80).collect();
        RekorEntry::from_entry(uuid, entry).map_err(|e| e.context(format!("Rekor log entry {shown}")))
    }

    fn from_entry(uuid: String, entry: Value) -> Result<RekorEntry> {
        let obj = entry.as_object().ok_or_else(|| Error::invalid_format("not a JSON object"))?;
        let body = decode_base64_any(str_field(obj, "body")?).map_err(|e| e.context("field `body`"))?;
        let log_id = decode_hex("logID", str_field(obj, "logID")?)?;
        let (inclusion_proof, signed_entry_timestamp) = match obj.get("verification") {
            None | Some(Value::Null) => (None, None),
            Some(Value::Object(v)) => {
                let proof = match v.get("inclusionProof") {
                    None | Some(Value::Null) => None,
                    Some(Value::Object(p)) => Some(proof_from_json(p)?),
                    Some(_) => return Err(not_a("verification.inclusionProof", "an object")),
                };
                let set = match v.get("signedEntryTimestamp") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => {
                        Some(decode_base64_any(s).map_err(|e| e.context("field `verification.signedEntryTimestamp`"))?)
                    }
                    Some(_) => return Err(not_a("verification.signedEntryTimestamp", "a string")),
                };
                (proof, set)
            }
            Some(_) => return Err(not_a("verification", "an object")),
        };
        Ok(RekorEntry {
            uuid,
            body,
            integrated_time: i64_field(obj, "integratedTime", "integratedTime")?,
            log_id,
            log_index: i64_field(obj, "logIndex", "logIndex")?,
            inclusion_proof,
            signed_entry_timestamp,
        })
    }

    /// Check that this is the entry the legacy annotation describes: same canonicalized body, global log
    /// index, log id and integration time. Anything else means the log returned a different entry than
    /// the one whose SET was verified, and its proof must not be attached.
    pub fn check_same_entry(&self, legacy: &RekorBundle) -> Result<()> {
        let mismatch = |what: &str, theirs: String, ours: String| {
            Err(Error::new(
                ErrorKind::VerificationFailed,
                format!(
                    "Rekor entry {} fetched for log index {}: {what} {theirs} differs from the legacy annotation's {ours}",
                    self.uuid.chars().take(80).collect::<String>(),
                    legacy.payload.log_index
                ),
            ))
        };
        if self.body != legacy.body_bytes {
            return mismatch(
                "canonicalized body",
                format!("({} bytes)", self.body.len()),
                format!("({} bytes)", legacy.body_bytes.len()),
            );
        }
        if self.log_index != legacy.payload.log_index {
            return mismatch("log index", self.log_index.to_string(), legacy.payload.log_index.to_string());
        }
        if self.log_id != legacy.log_id {
            return mismatch("log id", hex::encode(&self.log_id), hex::encode(&legacy.log_id));
        }
        if self.integrated_time != legacy.payload.integrated_time {
            return mismatch(
                "integrated time",
                self.integrated_time.to_string(),
                legacy.payload.integrated_time.to_string(),
            );
        }
        Ok(())
    }
}

fn proof_from_json(p: &Map<String, Value>) -> Result<InclusionProof> {
    const AT: &str = "verification.inclusionProof";
    let bad = |msg: String| Error::invalid_format(format!("field `{AT}`: {msg}"));
    let checkpoint = str_field(p, "checkpoint").map_err(|e| e.context(AT))?;
    if checkpoint.trim().is_empty() {
        return Err(bad("empty `checkpoint`".into()));
    }
    let tree_size = i64_field(p, "treeSize", "verification.inclusionProof.treeSize")?;
    let log_index = i64_field(p, "logIndex", "verification.inclusionProof.logIndex")?;
    if tree_size <= 0 || log_index < 0 || log_index >= tree_size {
        return Err(bad(format!("log index {log_index} is not inside a tree of size {tree_size}")));
    }
    let root_hash =
        decode_hash("verification.inclusionProof.rootHash", str_field(p, "rootHash").map_err(|e| e.context(AT))?)?;
    let hashes = match p.get("hashes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > MAX_PROOF_HASHES {
                return Err(bad(format!("{} hashes, more than a Merkle path can have", items.len())));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let field = format!("verification.inclusionProof.hashes[{i}]");
                    let text = h.as_str().ok_or_else(|| not_a(&field, "a string"))?;
                    decode_hash(&field, text)
                })
                .collect::<Result<Vec<_>>>()?
        }
        Some(_) => return Err(not_a("verification.inclusionProof.hashes", "an array")),
    };
    Ok(InclusionProof {
        log_index,
        root_hash,
        tree_size,
        hashes,
        checkpoint: Checkpoint { envelope: checkpoint.to_owned() },
    })
}

fn not_a(field: &str, what: &str) -> Error {
    Error::invalid_format(format!("field `{field}` is not {what}"))
}

fn str_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a str> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(not_a(key, "a string")),
        None => Err(Error::invalid_format(format!("missing field `{key}`"))),
    }
}

fn i64_field(obj: &Map<String, Value>, key: &str, shown: &str) -> Result<i64> {
    match obj.get(key) {
        Some(v) => v.as_i64().ok_or_else(|| not_a(shown, "an int64")),
        None => Err(Error::invalid_format(format!("missing field `{shown}`"))),
    }
}

fn decode_hex(field: &str, text: &str) -> Result<Vec<u8>> {
    hex::decode(text).map_err(|e| Error::invalid_format(format!("field `{field}`: not hex: {e}")))
}

fn decode_hash(field: &str, text: &str) -> Result<Vec<u8>> {
    let bytes = decode_hex(field, text)?;
    if bytes.len() != HASH_LEN {
        return Err(Error::invalid_format(format!(
            "field `{field}`: {} bytes, expected a {HASH_LEN}-byte SHA-256 hash",
            bytes.len()
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::dsse::encode_base64;

    /// A synthetic `GET /api/v1/log/entries?logIndex=N` response for a legacy entry, with a made-up proof
    /// (conversion does not check Merkle paths; the verifier does).
    pub(crate) fn response_for(legacy: &RekorBundle) -> String {
        let h = |b: u8| hex::encode([b; 32]);
        format!(
            r#"{{"24296fb24b8ad77a{leaf}":{{"body":"{body}","integratedTime":{time},"logID":"{log_id}","logIndex":{index},"verification":{{"inclusionProof":{{"checkpoint":"rekor.test - 1\n8\n{root_b64}\n\n— rekor.test AAAA\n","hashes":["{h1}","{h2}","{h3}"],"logIndex":5,"rootHash":"{root}","treeSize":8}},"signedEntryTimestamp":"{set}"}}}}}}"#,
            leaf = h(0xaa),
            body = legacy.payload.body,
            time = legacy.payload.integrated_time,
            log_id = legacy.payload.log_id,
            index = legacy.payload.log_index,
            root_b64 = encode_base64(&[0xee; 32]),
            h1 = h(1),
            h2 = h(2),
            h3 = h(3),
            root = h(0xee),
            set = encode_base64(&legacy.signed_entry_timestamp),
        )
    }

    pub(crate) fn legacy_bundle(body: &str, log_index: i64, integrated_time: i64) -> RekorBundle {
        let json = format!(
            r#"{{"SignedEntryTimestamp":"MEUCIQ==","Payload":{{"body":"{}","integratedTime":{integrated_time},"logIndex":{log_index},"logID":"{}"}}}}"#,
            encode_base64(body.as_bytes()),
            hex::encode([0xc0; 32]),
        );
        RekorBundle::parse(json.as_bytes()).unwrap()
    }

    fn with_checkpoint(response: &str, checkpoint: &str) -> String {
        let start = response.find(r#""checkpoint":""#).unwrap() + r#""checkpoint":""#.len();
        let end = start + response[start..].find('"').unwrap();
        format!("{}{checkpoint}{}", &response[..start], &response[end..])
    }

    const BODY: &str = r#"{"apiVersion":"0.0.1","kind":"cose","spec":{}}"#;

    #[test]
    fn parses_a_response_and_converts_the_proof() {
        let legacy = legacy_bundle(BODY, 175_508_996, 1_740_770_291);
        let entry = RekorEntry::parse_response(response_for(&legacy).as_bytes()).unwrap();
        assert_eq!(entry.uuid.len(), 16 + 64);
        assert_eq!(entry.body, BODY.as_bytes());
        assert_eq!((entry.log_index, entry.integrated_time), (175_508_996, 1_740_770_291));
        assert_eq!(entry.log_id, [0xc0; 32]);
        assert_eq!(entry.signed_entry_timestamp.as_deref(), Some(&legacy.signed_entry_timestamp[..]));
        let proof = entry.inclusion_proof.as_ref().unwrap();
        assert_eq!((proof.log_index, proof.tree_size), (5, 8));
        assert_eq!(proof.root_hash, [0xee; 32]);
        assert_eq!(proof.hashes, vec![vec![1; 32], vec![2; 32], vec![3; 32]]);
        assert!(proof.checkpoint.envelope.starts_with("rekor.test - 1\n8\n"));
        entry.check_same_entry(&legacy).unwrap();
    }

    #[test]
    fn a_different_entry_is_refused() {
        let legacy = legacy_bundle(BODY, 10, 1000);
        let entry = RekorEntry::parse_response(response_for(&legacy).as_bytes()).unwrap();
        for (other, want) in [
            (legacy_bundle(r#"{"apiVersion":"0.0.1","kind":"cose","spec":{"x":1}}"#, 10, 1000), "canonicalized body"),
            (legacy_bundle(BODY, 11, 1000), "log index 10 differs from the legacy annotation's 11"),
            (legacy_bundle(BODY, 10, 1001), "integrated time 1000"),
        ] {
            let err = entry.check_same_entry(&other).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::VerificationFailed);
            assert!(err.to_string().contains(want), "{err}");
        }
        let mut other_log = legacy.clone();
        other_log.log_id = vec![0xc1; 32];
        assert!(entry.check_same_entry(&other_log).unwrap_err().to_string().contains("log id"));
    }

    #[test]
    fn entry_without_verification_has_no_proof() {
        let json = format!(
            r#"{{"u":{{"body":"{}","integratedTime":1,"logID":"00","logIndex":2,"attestation":{{}}}}}}"#,
            encode_base64(BODY.as_bytes())
        );
        let entry = RekorEntry::parse_response(json.as_bytes()).unwrap();
        assert!(entry.inclusion_proof.is_none() && entry.signed_entry_timestamp.is_none());
    }

    #[test]
    fn rejects_malformed_responses() {
        let legacy = legacy_bundle(BODY, 10, 1000);
        let good = response_for(&legacy);
        let cases = [
            ("[]".to_owned(), "not a JSON object"),
            ("{}".to_owned(), "exactly one entry, found 0"),
            (good.replacen('{', r#"{"x":{},"#, 1), "exactly one entry, found 2"),
            (good.replace(r#""treeSize":8"#, r#""treeSize":5"#), "log index 5 is not inside a tree of size 5"),
            (good.replace(&hex::encode([2u8; 32]), "0202"), "`verification.inclusionProof.hashes[1]`: 2 bytes"),
            (good.replace(&hex::encode([0xeeu8; 32]), "zz"), "`verification.inclusionProof.rootHash`: not hex"),
            (good.replace(&hex::encode([0xc0u8; 32]), "c0x"), "`logID`: not hex"),
            (good.replace(&legacy.payload.body, "%%"), "field `body`: invalid base64"),
            (good.replace(r#""logIndex":10"#, r#""logIndex":"x""#), "field `logIndex` is not an int64"),
            (good.replace(r#""treeSize":8"#, r#""size":8"#), "missing field `verification.inclusionProof.treeSize`"),
            (
                good.replace(r#""hashes":["#, r#""hashes":[1,"#),
                "`verification.inclusionProof.hashes[0]` is not a string",
            ),
            (good.replace(r#""integratedTime""#, r#""time""#), "missing field `integratedTime`"),
            (
                good.replace(r#""inclusionProof":{"#, r#""inclusionProof":7,"y":{"#),
                "`verification.inclusionProof` is not an object",
            ),
            (with_checkpoint(&good, " "), "empty `checkpoint`"),
            (good[..40].to_owned(), "invalid JSON"),
        ];
        for (json, want) in cases {
            let err = RekorEntry::parse_response(json.as_bytes()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidFormat, "{json}");
            assert!(err.to_string().contains(want), "{want:?} not in: {err}");
        }
    }
}
