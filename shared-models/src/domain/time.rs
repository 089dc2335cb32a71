//! Reading instants from clients, and the hour buckets analytics are kept in.

use chrono::{DateTime, Datelike, DurationRound, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};

/// Parses a timestamp in RFC 3339 or ISO 8601; one without an offset is UTC.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map(|time| time.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|naive| naive.and_utc())
        })
}

/// Parses a period bound from a query string: a timestamp as [`parse_timestamp`] reads it, or a date, read
/// as midnight UTC. A `+` of an offset that arrived unescaped in a URL (and so reads as a space) is taken as
/// the `+` it was. Only the years 0001 to 9999 are periods' (RFC 3339 has no year before 0001 or after 9999
/// that its readers take).
pub fn parse_period_bound(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    parse_timestamp(text)
        .or_else(|| parse_timestamp(&text.replacen(' ', "+", 1)))
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .map(|date| date.and_time(NaiveTime::MIN).and_utc())
        })
        .filter(|time| PERIOD_YEARS.contains(&time.year()))
}

/// The years a period's bounds may fall in.
const PERIOD_YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// The earliest instant a period may start at: 0001-01-01T00:00:00Z.
pub fn earliest_period_start() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(*PERIOD_YEARS.start(), 1, 1)
        .unwrap_or(NaiveDate::MIN)
        .and_time(NaiveTime::MIN)
        .and_utc()
}

/// The start of the hour that contains `instant`.
pub fn start_of_hour(instant: DateTime<Utc>) -> DateTime<Utc> {
    instant.duration_trunc(TimeDelta::hours(1)).unwrap_or(instant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::from_str(text).expect("time")
    }

    #[test]
    fn period_bounds_take_timestamps_dates_and_unescaped_offsets() {
        assert_eq!(parse_period_bound("2024-01-01"), Some(at("2024-01-01T00:00:00Z")));
        assert_eq!(
            parse_period_bound("2024-01-01T10:00:00"),
            Some(at("2024-01-01T10:00:00Z"))
        );
        assert_eq!(
            parse_period_bound("2024-01-01T10:00:00 05:30"),
            Some(at("2024-01-01T04:30:00Z"))
        );
        assert_eq!(parse_period_bound("0001-01-01"), Some(earliest_period_start()));
        assert_eq!(
            parse_period_bound("9999-12-31T23:59:59Z"),
            Some(at("9999-12-31T23:59:59Z"))
        );
        for bad in [
            "yesterday",
            "2024-13-01",
            "2024-02-30",
            "",
            "1e9",
            "0000-01-01",
            "-0001-12-02T00:00:00Z",
        ] {
            assert_eq!(parse_period_bound(bad), None, "{bad}");
        }
    }

    #[test]
    fn buckets_start_at_the_hour() {
        assert_eq!(
            start_of_hour(at("2024-02-07T12:34:56.789Z")),
            at("2024-02-07T12:00:00Z")
        );
    }
}
