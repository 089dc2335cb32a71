//! The hours the consumer has written whose check is not queued yet: they wait for the recompute interval,
//! or for Redis. Held in memory up to a bound; past it, the consumer asks instead for a check of everything
//! stored since the earliest of them, so an outage of Redis under a sparse backlog costs no more memory.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use shared_models::domain::jobs::{AnalyticsWork, HourBucket};

/// How many waiting buckets make a job due at once, however recent the last one. A backlog of receipts
/// spread over many hours touches thousands of buckets a second: without it, a minute's would be held in
/// memory (hundreds of megabytes) and checked by one job that runs for minutes.
const DUE_AT: usize = 10_000;

/// Most buckets held while no job can be queued (about 10 MB).
const MAX_HELD: usize = 100_000;

/// How much earlier than a batch's start its receipts may say they were stored: `stored_at` comes from
/// PostgreSQL's clock, the batch's start from the consumer's.
const CLOCK_MARGIN: TimeDelta = TimeDelta::minutes(5);

#[derive(Debug, Default)]
pub(super) struct PendingChecks {
    buckets: BTreeSet<HourBucket>,
    /// When the earliest batch among them began storing.
    since: Option<DateTime<Utc>>,
    /// More buckets waited than are held: every receipt stored since `since` is checked instead.
    overflowed: bool,
}

impl PendingChecks {
    /// Adds the buckets a batch that began storing at `started` wrote.
    pub(super) fn add(&mut self, buckets: BTreeSet<HourBucket>, started: DateTime<Utc>) {
        if buckets.is_empty() {
            return;
        }
        let since = self.since.get_or_insert(started);
        *since = (*since).min(started);
        if self.overflowed {
            return;
        }
        self.buckets.extend(buckets);
        if self.buckets.len() > MAX_HELD {
            log::warn!(
                "more than {MAX_HELD} hour buckets wait for a check; everything stored since {} will be checked instead",
                self.since.unwrap_or(started)
            );
            self.buckets = BTreeSet::new();
            self.overflowed = true;
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.since.is_none()
    }

    /// Whether so much waits that a job is due now.
    pub(super) fn due_now(&self) -> bool {
        self.overflowed || self.buckets.len() >= DUE_AT
    }

    /// What waits, for the logs.
    pub(super) fn describe(&self) -> String {
        match self.since {
            Some(since) if self.overflowed => format!("everything stored since {since}"),
            _ => format!("{} buckets", self.buckets.len()),
        }
    }

    /// The job's work: the buckets, or everything stored since the earliest batch.
    pub(super) fn work(&self) -> AnalyticsWork {
        match self.since {
            Some(since) if self.overflowed => AnalyticsWork::StoredSince {
                since: since - CLOCK_MARGIN,
            },
            _ => AnalyticsWork::Buckets {
                buckets: self.buckets.iter().cloned().collect(),
            },
        }
    }

    pub(super) fn clear(&mut self) {
        *self = PendingChecks::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(first: usize, count: usize) -> BTreeSet<HourBucket> {
        (first..first + count)
            .map(|n| HourBucket {
                place_id: format!("place-{}", n % 1_000),
                hour: DateTime::<Utc>::UNIX_EPOCH + TimeDelta::hours((n / 1_000) as i64),
            })
            .collect()
    }

    #[test]
    fn buckets_wait_until_enough_make_a_job_due() {
        let started: DateTime<Utc> = "2026-11-26T10:00:00Z".parse().expect("time");
        let mut pending = PendingChecks::default();
        assert!(pending.is_empty());
        pending.add(BTreeSet::new(), started);
        assert!(pending.is_empty(), "a batch that wrote nothing adds nothing");
        pending.add(buckets(0, DUE_AT - 1), started);
        assert!(!pending.is_empty() && !pending.due_now());
        pending.add(buckets(0, DUE_AT), started);
        assert!(pending.due_now());
        assert!(matches!(pending.work(), AnalyticsWork::Buckets { buckets } if buckets.len() == DUE_AT));
        pending.clear();
        assert!(pending.is_empty());
    }

    #[test]
    fn past_the_bound_everything_stored_since_the_earliest_batch_is_checked_instead() {
        let first: DateTime<Utc> = "2026-11-26T10:00:00Z".parse().expect("time");
        let mut pending = PendingChecks::default();
        pending.add(buckets(0, MAX_HELD), first + TimeDelta::seconds(5));
        pending.add(buckets(MAX_HELD, 10), first);
        assert!(pending.buckets.is_empty(), "the buckets are let go");
        pending.add(buckets(2 * MAX_HELD, 10), first + TimeDelta::minutes(1));
        assert!(pending.buckets.is_empty(), "and no more are held");
        assert!(pending.due_now());
        assert_eq!(
            pending.work(),
            AnalyticsWork::StoredSince {
                since: first - CLOCK_MARGIN
            }
        );
    }
}
