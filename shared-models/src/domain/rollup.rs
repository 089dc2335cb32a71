//! The tiers analytics are kept in, and how a period is read from them. Rollups hold exact sums per UTC
//! hour, day and month; a period `[from, to)` is read as whole months, then whole days, then whole hours,
//! and the partial hours at its two edges are scanned from the receipts. However long the period, that is at
//! most two edge scans and five runs of rollups (hours, days, months, days, hours), each a handful of rows.

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, TimeZone, Timelike, Utc};

/// The length of a rollup bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grain {
    Hour,
    Day,
    Month,
}

impl Grain {
    pub const ALL: [Grain; 3] = [Grain::Hour, Grain::Day, Grain::Month];

    /// Its name, stored in the rollup tables; also PostgreSQL's `date_trunc` unit.
    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Hour => "hour",
            Grain::Day => "day",
            Grain::Month => "month",
        }
    }

    /// The start of the bucket that holds `instant`.
    pub fn floor(self, instant: DateTime<Utc>) -> DateTime<Utc> {
        let date = instant.date_naive();
        let start = match self {
            Grain::Hour => date.and_hms_opt(instant.hour(), 0, 0),
            Grain::Day => date.and_hms_opt(0, 0, 0),
            Grain::Month => NaiveDate::from_ymd_opt(date.year(), date.month(), 1)
                .and_then(|first| first.and_hms_opt(0, 0, 0)),
        };
        start.map_or(instant, |start| Utc.from_utc_datetime(&start))
    }

    /// The start of the next bucket after the one starting at `start`.
    pub fn next(self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Grain::Hour => start + TimeDelta::hours(1),
            Grain::Day => start + TimeDelta::days(1),
            Grain::Month => start.checked_add_months(Months::new(1)).unwrap_or(start),
        }
    }

    /// The start of the first bucket that begins at or after `instant`.
    pub fn ceil(self, instant: DateTime<Utc>) -> DateTime<Utc> {
        let floor = self.floor(instant);
        if floor == instant {
            floor
        } else {
            self.next(floor)
        }
    }

    /// The next finer grain.
    fn finer(self) -> Option<Grain> {
        match self {
            Grain::Hour => None,
            Grain::Day => Some(Grain::Hour),
            Grain::Month => Some(Grain::Day),
        }
    }
}

/// A run of whole buckets of one grain: those starting in `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub grain: Grain,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// How a period is read: runs of rollups, and the instants at its edges that no whole hour covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub runs: Vec<Run>,
    /// The partial hours at the two edges, scanned from the receipts (empty ranges when there are none).
    pub edges: [(DateTime<Utc>, DateTime<Utc>); 2],
}

/// The earliest and latest instants a period can name; an open bound is one of these.
pub fn earliest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

pub fn latest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 12, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

impl Plan {
    /// Reads `[from, to)` (an open bound is the beginning or the end of time) with buckets no coarser than
    /// `coarsest`: months for analytics over a period, days or hours for a series of that bucket.
    pub fn new(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>, coarsest: Grain) -> Plan {
        let low = from.unwrap_or_else(earliest);
        let high = to.unwrap_or_else(latest).max(low);
        let (first_hour, end_hour) = (Grain::Hour.ceil(low), Grain::Hour.floor(high));
        if first_hour >= end_hour {
            return Plan {
                runs: Vec::new(),
                edges: [(low, high), (high, high)],
            };
        }
        let mut runs = Vec::new();
        cover(first_hour, end_hour, coarsest, &mut runs);
        Plan {
            runs,
            edges: [(low, first_hour), (end_hour, high)],
        }
    }
}

/// Covers `[from, to)`, whose ends are whole buckets of the finest grain, with the coarsest buckets that fit,
/// in order.
fn cover(from: DateTime<Utc>, to: DateTime<Utc>, grain: Grain, runs: &mut Vec<Run>) {
    if from >= to {
        return;
    }
    let Some(finer) = grain.finer() else {
        runs.push(Run { grain, from, to });
        return;
    };
    let (first, end) = (grain.ceil(from), grain.floor(to));
    if first >= end {
        cover(from, to, finer, runs);
        return;
    }
    cover(from, first, finer, runs);
    runs.push(Run {
        grain,
        from: first,
        to: end,
    });
    cover(end, to, finer, runs);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::from_str(text).expect("time")
    }

    fn run(grain: Grain, from: &str, to: &str) -> Run {
        Run {
            grain,
            from: at(from),
            to: at(to),
        }
    }

    #[test]
    fn a_ragged_period_over_months_reads_hours_days_months_days_hours_and_two_edges() {
        let plan = Plan::new(
            Some(at("2024-01-30T10:15:00Z")),
            Some(at("2024-04-02T05:30:00Z")),
            Grain::Month,
        );
        assert_eq!(
            plan.runs,
            vec![
                run(Grain::Hour, "2024-01-30T11:00:00Z", "2024-01-31T00:00:00Z"),
                run(Grain::Day, "2024-01-31T00:00:00Z", "2024-02-01T00:00:00Z"),
                run(Grain::Month, "2024-02-01T00:00:00Z", "2024-04-01T00:00:00Z"),
                run(Grain::Day, "2024-04-01T00:00:00Z", "2024-04-02T00:00:00Z"),
                run(Grain::Hour, "2024-04-02T00:00:00Z", "2024-04-02T05:00:00Z"),
            ]
        );
        assert_eq!(
            plan.edges,
            [
                (at("2024-01-30T10:15:00Z"), at("2024-01-30T11:00:00Z")),
                (at("2024-04-02T05:00:00Z"), at("2024-04-02T05:30:00Z")),
            ]
        );
    }

    #[test]
    fn the_leap_day_is_a_whole_day_and_february_2024_a_whole_month() {
        let leap = Plan::new(
            Some(at("2024-02-29T00:00:00Z")),
            Some(at("2024-03-01T00:00:00Z")),
            Grain::Month,
        );
        assert_eq!(
            leap.runs,
            vec![run(Grain::Day, "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z")]
        );
        let february = Plan::new(
            Some(at("2024-02-01T00:00:00Z")),
            Some(at("2024-03-01T00:00:00Z")),
            Grain::Month,
        );
        assert_eq!(
            february.runs,
            vec![run(Grain::Month, "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z")]
        );
    }

    #[test]
    fn runs_and_edges_cover_the_period_exactly_once_and_in_order() {
        let periods = [
            ("2023-12-31T23:59:59.999Z", "2025-01-01T00:00:00.001Z"),
            ("2024-02-28T13:00:00Z", "2024-03-01T01:00:00Z"),
            ("2024-03-10T10:05:00Z", "2024-03-10T10:55:00Z"),
            ("2024-03-10T10:00:00Z", "2024-03-10T11:00:00Z"),
            ("2024-05-01T00:00:00Z", "2024-05-01T00:00:00Z"),
        ];
        for (from, to) in periods {
            for coarsest in Grain::ALL {
                let plan = Plan::new(Some(at(from)), Some(at(to)), coarsest);
                let mut cursor = plan.edges[0].1;
                assert_eq!(plan.edges[0].0, at(from));
                for run in &plan.runs {
                    assert!(run.grain <= coarsest, "{from}..{to}: {run:?}");
                    assert_eq!(run.from, cursor, "{from}..{to}: contiguous");
                    assert!(run.from < run.to);
                    assert_eq!(run.grain.floor(run.from), run.from, "whole buckets");
                    assert_eq!(run.grain.floor(run.to), run.to, "whole buckets");
                    cursor = run.to;
                }
                if !plan.runs.is_empty() {
                    assert_eq!(plan.edges[1].0, cursor);
                }
                assert_eq!(plan.edges[1].1, at(to).max(at(from)));
            }
        }
    }

    #[test]
    fn a_series_of_days_never_reads_months() {
        let plan = Plan::new(
            Some(at("2024-01-15T00:00:00Z")),
            Some(at("2024-03-15T00:00:00Z")),
            Grain::Day,
        );
        assert_eq!(
            plan.runs,
            vec![run(Grain::Day, "2024-01-15T00:00:00Z", "2024-03-15T00:00:00Z")]
        );
    }

    #[test]
    fn all_time_needs_no_scan() {
        let plan = Plan::new(None, None, Grain::Month);
        assert_eq!(plan.edges[0].0, plan.edges[0].1);
        assert_eq!(plan.edges[1].0, plan.edges[1].1);
        assert_eq!(plan.runs.len(), 1);
    }
}
