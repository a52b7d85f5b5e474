//! RFC 3339 timestamps: parsing to unix time and formatting unix time as UTC.
//!
//! Hand-written because the crate needs only two conversions (trusted-root validity windows in, Rekor
//! `integratedTime` out) and a date crate would be the largest dependency of the pure model.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// A point in time parsed from RFC 3339 text, kept together with the exact text it came from so that
/// displaying or re-serialising it never changes what the source said.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Rfc3339 {
    text: String,
    seconds: i64,
    nanos: u32,
}

impl Rfc3339 {
    /// Parse `text` (`2022-10-15T03:23:30Z`, `2022-12-31T23:59:59.999Z`, `2022-10-13T16:11:27.19-07:00`).
    pub fn parse(text: &str) -> Result<Rfc3339> {
        let (seconds, nanos) = parse_rfc3339(text)?;
        Ok(Rfc3339 { text: text.to_owned(), seconds, nanos })
    }

    /// The UTC time of a unix timestamp, formatted as `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn from_unix(seconds: i64) -> Result<Rfc3339> {
        let text = format_unix(seconds)?;
        Ok(Rfc3339 { text, seconds, nanos: 0 })
    }

    /// The text as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whole seconds since the unix epoch (rounded down, so `…59.999Z` is still in its second).
    pub fn unix_seconds(&self) -> i64 {
        self.seconds
    }

    /// The sub-second part, in nanoseconds.
    pub fn nanos(&self) -> u32 {
        self.nanos
    }
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rfc3339({})", self.text)
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Rfc3339 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Rfc3339, D::Error> {
        let s = String::deserialize(d)?;
        Rfc3339::parse(&s).map_err(|e| serde::de::Error::custom(e.message()))
    }
}

// The supported range keeps every computation far from i64 overflow and matches RFC 3339's four-digit
// years.
const MIN_YEAR: i64 = 0;
const MAX_YEAR: i64 = 9999;

/// Format a unix timestamp as UTC RFC 3339 with second precision (`2022-10-15T03:23:30Z`).
///
/// Fails only for times outside years 0000–9999, which no log or certificate produces.
pub fn format_unix(seconds: i64) -> Result<String> {
    let days = seconds.div_euclid(86_400);
    let secs_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
        return Err(Error::invalid_format(format!("unix time {seconds} is outside years 0000-9999")));
    }
    Ok(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    ))
}

/// Parse RFC 3339 (`date-time` production) into unix seconds and nanoseconds.
///
/// Accepts `T`/`t` (or a space, as RFC 3339 §5.6 permits) between date and time, 1–9 fraction digits,
/// and `Z`/`z` or a `±HH:MM` offset. Leap seconds (`:60`) are rejected: nothing we read writes them and
/// unix time cannot represent them.
pub fn parse_rfc3339(text: &str) -> Result<(i64, u32)> {
    let bad = |why: &str| Error::invalid_format(format!("invalid RFC 3339 time {:?}: {why}", truncate(text)));
    let b = text.as_bytes();
    if b.len() < 20 {
        return Err(bad("too short"));
    }
    let year = digits(b, 0, 4).ok_or_else(|| bad("year"))?;
    let month = digits(b, 5, 2).ok_or_else(|| bad("month"))?;
    let day = digits(b, 8, 2).ok_or_else(|| bad("day"))?;
    let hour = digits(b, 11, 2).ok_or_else(|| bad("hour"))?;
    let minute = digits(b, 14, 2).ok_or_else(|| bad("minute"))?;
    let second = digits(b, 17, 2).ok_or_else(|| bad("second"))?;
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return Err(bad("separators"));
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad("missing 'T' between date and time"));
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad("date out of range"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad("time of day out of range"));
    }

    let mut pos = 19;
    let mut nanos: u32 = 0;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        let frac = &b[start..pos];
        if frac.is_empty() || frac.len() > 9 {
            return Err(bad("fraction must have 1 to 9 digits"));
        }
        for (i, d) in frac.iter().enumerate() {
            nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
        }
    }

    let offset_seconds = match &b[pos..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = two_digits(*h1, *h2).ok_or_else(|| bad("offset hour"))?;
            let om = two_digits(*m1, *m2).ok_or_else(|| bad("offset minute"))?;
            if oh > 23 || om > 59 {
                return Err(bad("offset out of range"));
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return Err(bad("expected 'Z' or a ±HH:MM offset after the time")),
    };

    let days = days_from_civil(year, month, day);
    let local = days * 86_400 + hour * 3600 + minute * 60 + second;
    Ok((local - offset_seconds, nanos))
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

fn digits(b: &[u8], start: usize, len: usize) -> Option<i64> {
    let slice = b.get(start..start + len)?;
    slice.iter().try_fold(0i64, |acc, d| d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0')))
}

fn two_digits(a: u8, b: u8) -> Option<i64> {
    digits(&[a, b], 0, 2)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Day counts use the proleptic Gregorian calendar with eras of 400 years (146 097 days), shifting the
// year to start in March so the leap day falls at the end.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12; // March = 0
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), (0, 0));
        // The keyless .sig entry of the article: Rekor printed this for integratedTime 1665804210.
        assert_eq!(parse_rfc3339("2022-10-15T03:23:30Z").unwrap(), (1_665_804_210, 0));
        assert_eq!(format_unix(1_665_804_210).unwrap(), "2022-10-15T03:23:30Z");
        assert_eq!(parse_rfc3339("2022-12-31T23:59:59.999Z").unwrap(), (1_672_531_199, 999_000_000));
        assert_eq!(parse_rfc3339("2021-01-12T11:53:27.000Z").unwrap(), (1_610_452_407, 0));
        // cosign's config `created` uses a local offset.
        assert_eq!(parse_rfc3339("2022-10-13T16:11:27.19-07:00").unwrap(), (1_665_702_687, 190_000_000));
        assert_eq!(parse_rfc3339("2000-02-29t12:00:00+01:30").unwrap().0, 951_820_200);
        assert_eq!(format_unix(-1).unwrap(), "1969-12-31T23:59:59Z");
        assert_eq!(format_unix(951_782_400).unwrap(), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn round_trips_every_day_across_leap_rules() {
        // Every day from 1899 to 2101 covers the 1900 (not leap) and 2000 (leap) century rules.
        let start = days_from_civil(1899, 1, 1);
        let end = days_from_civil(2101, 12, 31);
        for d in start..=end {
            let s = format_unix(d * 86_400 + 3_723).unwrap();
            assert_eq!(parse_rfc3339(&s).unwrap(), (d * 86_400 + 3_723, 0), "{s}");
        }
    }

    #[test]
    fn rejects_malformed() {
        // input, the reason the message must end with
        for (bad, why) in [
            ("", "too short"),
            ("2022-10-15", "too short"),
            ("2022-10-15T03:23:30", "too short"),
            // Long enough to get past the length check, so the missing offset itself is what is refused.
            ("2022-10-15T03:23:30.5", "expected 'Z' or a ±HH:MM offset after the time"),
            ("2022-13-01T00:00:00Z", "date out of range"),
            ("2023-02-29T00:00:00Z", "date out of range"),
            ("2022-10-15T24:00:00Z", "time of day out of range"),
            ("2022-10-15T23:59:60Z", "time of day out of range"),
            ("2022-10-15T03:23:30.Z", "fraction must have 1 to 9 digits"),
            ("2022-10-15T03:23:30.1234567890Z", "fraction must have 1 to 9 digits"),
            ("2022-10-15T03:23:30+0700", "expected 'Z' or a ±HH:MM offset after the time"),
            ("2022/10/15T03:23:30Z", "separators"),
            ("2022-10-15X03:23:30Z", "missing 'T' between date and time"),
            ("２０２２-10-15T03:23:30Z", "year"),
            ("2022-10-15T03:23:30Zjunk", "expected 'Z' or a ±HH:MM offset after the time"),
            ("+022-10-15T03:23:30Z", "year"),
        ] {
            let err = parse_rfc3339(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidFormat, "{bad:?}: {err}");
            assert!(err.to_string().ends_with(&format!(": {why}")), "{bad:?}: {why:?} does not end {err}");
        }
        for seconds in [i64::MAX, i64::MIN] {
            let err = format_unix(seconds).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidFormat, "{err}");
            assert_eq!(err.to_string(), format!("unix time {seconds} is outside years 0000-9999"));
        }
    }

    #[test]
    fn keeps_text_and_serialises_it() {
        let t: Rfc3339 = serde_json::from_str("\"2022-12-31T23:59:59.999Z\"").unwrap();
        assert_eq!(t.as_str(), "2022-12-31T23:59:59.999Z");
        assert_eq!(t.unix_seconds(), 1_672_531_199);
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"2022-12-31T23:59:59.999Z\"");
        let err = serde_json::from_str::<Rfc3339>("\"yesterday\"").unwrap_err();
        assert!(err.to_string().starts_with("invalid RFC 3339 time \"yesterday\": too short"), "{err}");
        assert_eq!(Rfc3339::from_unix(0).unwrap().as_str(), "1970-01-01T00:00:00Z");
    }
}
