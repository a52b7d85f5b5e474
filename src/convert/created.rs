//! The `org.opencontainers.image.created` value of a migrated referrer, taken from the attestation's own
//! data — never the migration's clock, which would make re-runs produce different manifests.
//!
//! Sources, best first: the log's integration time (verified through the SET), the custom predicate's
//! `Timestamp` (signed), the legacy config's `created` (unsigned; cosign ~1.10–2.1 wrote the signing time
//! there). All are normalised to RFC 3339 UTC with second precision, as cosign writes the annotation.
//! A source that is absent, unparsable or not after the unix epoch (Go's zero time) is skipped.

use serde::Serialize;
use serde_json::Value;

use crate::model::intoto::Statement;
use crate::model::predicate::{is_custom, predicate_outline, unwrap_cosign_data};
use crate::model::time::{Rfc3339, format_unix};

/// A creation time and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Created {
    /// RFC 3339 UTC, seconds (`2022-10-13T23:11:26Z`).
    pub time: String,
    /// Its source.
    pub source: CreatedSource,
}

/// Where a creation time came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CreatedSource {
    /// The transparency log's `integratedTime`.
    LogIntegratedTime,
    /// The `Timestamp` of cosign's custom predicate wrapper.
    PredicateTimestamp,
    /// The legacy `.att` config's `created`.
    LegacyConfig,
}

/// Derive the creation time: `integrated_time` (from a verified log entry), else the custom predicate's
/// `Timestamp`, else `config_created`. `None` when no source gives a usable time.
pub fn derive(integrated_time: Option<i64>, statement: &Statement, config_created: Option<&str>) -> Option<Created> {
    let outline = predicate_outline(statement);
    derive_outlined(integrated_time, &statement.predicate_type, outline.as_ref(), config_created)
}

/// [`derive()`] from the predicate's outline ([`predicate_outline`]), for a caller that reads it for the
/// content hint as well: a megabyte predicate is then scanned once, not twice. The outline keeps the
/// wrapper's members and scalars, all the timestamp needs.
pub fn derive_outlined(
    integrated_time: Option<i64>,
    predicate_type: &str,
    outline: Option<&Value>,
    config_created: Option<&str>,
) -> Option<Created> {
    let from_log = integrated_time.and_then(normalise_unix).map(|time| (time, CreatedSource::LogIntegratedTime));
    from_log
        .or_else(|| {
            predicate_timestamp(predicate_type, outline)
                .and_then(normalise)
                .map(|t| (t, CreatedSource::PredicateTimestamp))
        })
        .or_else(|| config_created.and_then(normalise).map(|t| (t, CreatedSource::LegacyConfig)))
        .map(|(time, source)| Created { time, source })
}

fn predicate_timestamp<'a>(predicate_type: &str, outline: Option<&'a Value>) -> Option<&'a str> {
    if !is_custom(predicate_type) {
        return None;
    }
    unwrap_cosign_data(outline?)?.timestamp
}

fn normalise(text: &str) -> Option<String> {
    normalise_unix(Rfc3339::parse(text.trim()).ok()?.unix_seconds())
}

fn normalise_unix(seconds: i64) -> Option<String> {
    if seconds <= 0 {
        return None;
    }
    format_unix(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(predicate_type: &str, predicate: &str) -> Statement {
        Statement::parse(
            format!(
                r#"{{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"{predicate_type}","subject":[{{"name":"x","digest":{{"sha256":"00"}}}}],"predicate":{predicate}}}"#
            )
            .as_bytes(),
        )
        .unwrap()
    }

    const CUSTOM: &str = "https://cosign.sigstore.dev/attestation/v1";

    #[test]
    fn sources_in_order() {
        let custom = statement(CUSTOM, r#"{"Data":"d","Timestamp":"2022-10-13T23:11:26Z"}"#);
        let config = Some("2022-10-13T16:11:27.193412941-07:00");

        let c = derive(Some(1_665_804_210), &custom, config).unwrap();
        assert_eq!((c.time.as_str(), c.source), ("2022-10-15T03:23:30Z", CreatedSource::LogIntegratedTime));

        let c = derive(None, &custom, config).unwrap();
        assert_eq!((c.time.as_str(), c.source), ("2022-10-13T23:11:26Z", CreatedSource::PredicateTimestamp));

        // Normalised to UTC seconds.
        let c = derive(None, &statement(CUSTOM, r#"{"Data":"d","Timestamp":""}"#), config).unwrap();
        assert_eq!((c.time.as_str(), c.source), ("2022-10-13T23:11:27Z", CreatedSource::LegacyConfig));

        assert_eq!(derive(None, &statement(CUSTOM, r#"{"Data":"d"}"#), None), None);
    }

    #[test]
    fn the_timestamp_is_read_from_the_outline_of_the_predicate() {
        // A number beyond a double's range where no reader looks: a tree parse of the predicate fails on
        // it, the outline skips it, and the signed `Timestamp` is found (as `get` and `inspect` find it).
        let s = statement(CUSTOM, r#"{"Data":{"deep":[1e400]},"Timestamp":"2022-10-13T23:11:26Z"}"#);
        assert_eq!(s.predicate_value(), None);
        let c = derive(None, &s, None).unwrap();
        assert_eq!((c.time.as_str(), c.source), ("2022-10-13T23:11:26Z", CreatedSource::PredicateTimestamp));
    }

    #[test]
    fn unusable_sources_are_skipped() {
        let config = Some("2024-01-01T00:00:00+01:00");
        let want = Some(Created { time: "2023-12-31T23:00:00Z".into(), source: CreatedSource::LegacyConfig });
        // v1.x custom URI counts too; a zero or negative log time does not.
        let v1 = statement("cosign.sigstore.dev/attestation/v1", r#"{"Data":"d","Timestamp":"yesterday"}"#);
        assert_eq!(derive(Some(0), &v1, config), want);
        // Only the custom predicate's wrapper is trusted to hold a timestamp.
        let slsa = statement("https://slsa.dev/provenance/v0.2", r#"{"Data":"d","Timestamp":"2020-01-01T00:00:00Z"}"#);
        assert_eq!(derive(None, &slsa, config), want);
        // Go's zero time in a cosign ≥ 2.2 config.
        assert_eq!(derive(None, &slsa, Some("0001-01-01T00:00:00Z")), None);
        assert_eq!(derive(None, &slsa, Some("garbage")), None);
        let c = derive(Some(1_700_000_000), &slsa, None).unwrap();
        assert_eq!(c.time, "2023-11-14T22:13:20Z");
    }
}
