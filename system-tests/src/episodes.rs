//! What a fixed-rate run's slow seconds lay beside: the runs of seconds whose p99 was over a threshold, and
//! what PostgreSQL logged meanwhile (autovacuum's passes, checkpoints, statements over a second; the stack
//! starts it with that logging on), both in UTC.

use crate::loadgen::report::Second;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};

/// A slow second's p99 in milliseconds.
pub const SLOW_MS: f64 = 250.0;

/// The runs of seconds whose p99 was over [`SLOW_MS`], a run going on across gaps of up to 2 s: one line
/// each, with its UTC times and its worst second.
pub fn slow_runs(seconds: &[Second], started: DateTime<Utc>) -> Vec<String> {
    let at = |second: usize| (started + Duration::seconds(second as i64)).format("%H:%M:%S");
    let mut runs: Vec<(usize, usize, f64)> = Vec::new();
    for (second, stats) in seconds.iter().enumerate() {
        let p99 = stats.latency_ms(0.99);
        if p99 <= SLOW_MS {
            continue;
        }
        match runs.last_mut() {
            Some((_, last, worst)) if second <= *last + 3 => {
                *last = second;
                *worst = worst.max(p99);
            }
            _ => runs.push((second, second, p99)),
        }
    }
    runs.iter()
        .map(|(first, last, worst)| {
            format!(
                "- {} to {} ({} s): worst second's p99 {worst:.0} ms",
                at(*first),
                at(*last),
                last - first + 1
            )
        })
        .collect()
}

/// One entry of PostgreSQL's log: its first line and the lines that continue it.
struct Entry<'a> {
    at: DateTime<Utc>,
    lines: Vec<&'a str>,
}

fn entries(log: &str) -> Vec<Entry<'_>> {
    let mut entries: Vec<Entry> = Vec::new();
    for line in log.lines() {
        let stamp = line
            .get(..23)
            .and_then(|stamp| NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S%.3f").ok());
        match (stamp, entries.last_mut()) {
            (Some(at), _) => entries.push(Entry {
                at: at.and_utc(),
                lines: vec![line],
            }),
            (None, Some(entry)) => entry.lines.push(line),
            (None, None) => {}
        }
    }
    entries
}

/// The text after `marker` in `line`, up to the first of `end`.
fn between<'a>(line: &'a str, marker: &str, end: &[char]) -> Option<&'a str> {
    let rest = &line[line.find(marker)? + marker.len()..];
    Some(rest.split(end).next().unwrap_or(rest))
}

/// What PostgreSQL logged from `from` to `to`, one line each with the time it ended (autovacuum's passes
/// with how long each took, checkpoints, statements over a second with their first words).
pub fn postgres_events(log: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<String> {
    entries(log)
        .into_iter()
        .filter(|entry| (from..=to).contains(&entry.at))
        .filter_map(|entry| {
            let at = entry.at.format("%H:%M:%S");
            let first = entry.lines[0];
            if let Some(table) = between(first, "automatic vacuum of table \"", &['"']) {
                let elapsed = entry
                    .lines
                    .iter()
                    .find_map(|line| between(line, "elapsed: ", &[' ']))
                    .unwrap_or("?");
                let table = table.rsplit('.').next().unwrap_or(table);
                return Some(format!("- {at} autovacuum of `{table}`, {elapsed} s"));
            }
            if let Some(checkpoint) = between(first, "LOG:  checkpoint ", &[':', ';']) {
                return Some(format!("- {at} checkpoint {checkpoint}"));
            }
            let duration = between(first, "duration: ", &[' '])?;
            let statement: String = entry
                .lines
                .join(" ")
                .split_once(": ")
                .map(|(_, rest)| rest)
                .and_then(|rest| rest.split_once(" ms "))
                .map(|(_, statement)| statement.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            Some(format!(
                "- {at} statement, {duration} ms: `{}`",
                statement.chars().take(90).collect::<String>()
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::{postgres_events, slow_runs};
    use crate::loadgen::report::Second;

    #[test]
    fn slow_seconds_close_together_make_one_run() {
        let second = |p99_ms: u64| Second {
            accepted: 100,
            answered: 100,
            latencies: vec![p99_ms * 1_000; 100],
        };
        let seconds: Vec<Second> = [10, 300, 20, 20, 500, 10, 10, 10, 10, 260, 10]
            .into_iter()
            .map(second)
            .collect();
        let started = Utc.with_ymd_and_hms(2026, 11, 27, 5, 0, 0).unwrap();
        assert_eq!(
            slow_runs(&seconds, started),
            [
                "- 05:00:01 to 05:00:04 (4 s): worst second's p99 500 ms",
                "- 05:00:09 to 05:00:09 (1 s): worst second's p99 260 ms",
            ]
        );
    }

    #[test]
    fn autovacuum_checkpoints_and_slow_statements_are_listed_within_the_window() {
        let log = "\
2026-11-27 04:30:41.235 UTC [31986] LOG:  automatic vacuum of table \"receipts.public.accepted_receipts\": index scans: 0
\tpages: 0 removed, 154755 remain, 41334 scanned (26.71% of total)
\tsystem usage: CPU: user: 0.10 s, system: 0.18 s, elapsed: 10.64 s
2026-11-27 04:30:42.552 UTC [31986] LOG:  automatic analyze of table \"receipts.public.accepted_receipts\"
\tsystem usage: CPU: user: 0.23 s, system: 0.15 s, elapsed: 1.31 s
2026-11-27 04:30:50.029 UTC [25556] LOG:  checkpoint starting: time
2026-11-27 04:30:55.100 UTC [25557] LOG:  duration: 1203.512 ms  execute s0: WITH b AS (
\t  SELECT 1)
2026-11-27 04:40:00.000 UTC [25556] LOG:  checkpoint complete: wrote 391 buffers (2.4%); 0 WAL file(s) added
";
        let from = Utc.with_ymd_and_hms(2026, 11, 27, 4, 30, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2026, 11, 27, 4, 35, 0).unwrap();
        assert_eq!(
            postgres_events(log, from, to),
            [
                "- 04:30:41 autovacuum of `accepted_receipts`, 10.64 s",
                "- 04:30:50 checkpoint starting",
                "- 04:30:55 statement, 1203.512 ms: `execute s0: WITH b AS ( SELECT 1)`",
            ]
        );
    }
}
