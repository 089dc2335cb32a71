//! What a load run saw: answers by status and by kind, latencies, freshness, and a line per second.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

/// One second of the run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Second {
    pub accepted: u64,
    pub answered: u64,
    /// Latencies answered in this second, in microseconds.
    pub latencies: Vec<u64>,
}

impl Second {
    /// Latency percentile of this second's answers, in milliseconds.
    pub fn latency_ms(&self, share: f64) -> f64 {
        percentile_ms(&self.latencies, share)
    }
}

/// The whole run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub elapsed: Duration,
    /// Answers by HTTP status; 0 counts requests that got no answer.
    pub statuses: BTreeMap<u16, u64>,
    /// Answers that were not the one their kind expects (a repeat that was not 200, ...).
    pub unexpected: u64,
    /// Request latencies in microseconds, measured from when each request was due (so a client that falls
    /// behind a fixed rate counts its waiting too).
    pub latencies: Vec<u64>,
    /// Time from a 202 until `GET /api/analytics/` counted the receipt, in milliseconds.
    pub freshness: Vec<u64>,
    pub seconds: Vec<Second>,
}

/// The value below which `share` of the sorted values lie (nearest rank).
pub fn percentile(sorted: &[u64], share: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((share * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The percentile of latencies in microseconds (in any order), in milliseconds.
fn percentile_ms(latencies: &[u64], share: f64) -> f64 {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    percentile(&sorted, share) as f64 / 1000.0
}

impl Report {
    pub fn accepted(&self) -> u64 {
        self.statuses.get(&202).copied().unwrap_or(0)
    }

    pub fn accepted_per_second(&self) -> f64 {
        self.accepted() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// Latency percentile in milliseconds.
    pub fn latency_ms(&self, share: f64) -> f64 {
        percentile_ms(&self.latencies, share)
    }

    /// Freshness percentile in milliseconds.
    pub fn freshness_ms(&self, share: f64) -> u64 {
        let mut sorted = self.freshness.clone();
        sorted.sort_unstable();
        percentile(&sorted, share)
    }

    pub(crate) fn record(&mut self, second: usize, status: u16, latency: Duration) {
        let micros = latency.as_micros() as u64;
        *self.statuses.entry(status).or_default() += 1;
        self.latencies.push(micros);
        if self.seconds.len() <= second {
            self.seconds.resize(second + 1, Second::default());
        }
        let slot = &mut self.seconds[second];
        slot.answered += 1;
        slot.accepted += u64::from(status == 202);
        slot.latencies.push(micros);
    }

    pub(crate) fn merge(&mut self, other: Report) {
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.unexpected += other.unexpected;
        self.latencies.extend(other.latencies);
        self.freshness.extend(other.freshness);
        if self.seconds.len() < other.seconds.len() {
            self.seconds.resize(other.seconds.len(), Second::default());
        }
        for (mine, theirs) in self.seconds.iter_mut().zip(other.seconds) {
            mine.accepted += theirs.accepted;
            mine.answered += theirs.answered;
            mine.latencies.extend(theirs.latencies);
        }
    }

    /// One line per second of the run, as CSV: when the second began (RFC 3339, from `started`), receipts
    /// accepted and requests answered in it, and the p50 and p99 of their latencies in milliseconds.
    pub fn timeline(&self, started: DateTime<Utc>) -> String {
        let mut csv = String::from("second,at,accepted,answered,p50_ms,p99_ms\n");
        for (index, second) in self.seconds.iter().enumerate() {
            let at = started + TimeDelta::seconds(index as i64);
            csv.push_str(&format!(
                "{index},{},{},{},{:.1},{:.1}\n",
                at.to_rfc3339_opts(SecondsFormat::Secs, true),
                second.accepted,
                second.answered,
                second.latency_ms(0.50),
                second.latency_ms(0.99)
            ));
        }
        csv
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "accepted: {} in {:.1} s = {:.0} receipts/s",
            self.accepted(),
            self.elapsed.as_secs_f64(),
            self.accepted_per_second()
        )?;
        writeln!(
            f,
            "latency ms: p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}",
            self.latency_ms(0.50),
            self.latency_ms(0.95),
            self.latency_ms(0.99),
            self.latency_ms(1.0)
        )?;
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(status, count)| match status {
                0 => format!("no answer: {count}"),
                status => format!("{status}: {count}"),
            })
            .collect();
        writeln!(f, "answers: {}", statuses.join("  "))?;
        writeln!(f, "unexpected answers: {}", self.unexpected)?;
        if self.freshness.is_empty() {
            write!(f, "freshness: not sampled")
        } else {
            write!(
                f,
                "freshness ms ({} samples): p50 {}  p95 {}  max {}",
                self.freshness.len(),
                self.freshness_ms(0.50),
                self.freshness_ms(0.95),
                self.freshness_ms(1.0)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{DateTime, Utc};

    use super::{percentile, Report};

    #[test]
    fn the_timeline_has_a_line_per_second_with_its_own_percentiles() {
        let mut report = Report::default();
        for millis in 1..=100 {
            report.record(0, 202, Duration::from_millis(millis));
        }
        report.record(2, 422, Duration::from_millis(7));
        let started: DateTime<Utc> = "2026-11-26T17:00:59Z".parse().expect("a time");
        assert_eq!(
            report.timeline(started),
            "second,at,accepted,answered,p50_ms,p99_ms\n\
             0,2026-11-26T17:00:59Z,100,100,50.0,99.0\n\
             1,2026-11-26T17:01:00Z,0,0,0.0,0.0\n\
             2,2026-11-26T17:01:01Z,0,1,7.0,7.0\n"
        );
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.5), 50);
        assert_eq!(percentile(&values, 0.99), 99);
        assert_eq!(percentile(&values, 1.0), 100);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
