//! Analytics job payloads: enqueued by the consumer and admins, run by the worker. Their state, as admins see
//! it, is in the `jobs` table (`store::jobs`).

use chrono::{DateTime, Utc};

use crate::domain::time::start_of_hour;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One place's hour: the unit that rollups are kept and recomputed in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HourBucket {
    pub place_id: String,
    pub hour: DateTime<Utc>,
}

impl HourBucket {
    pub fn containing(place_id: &str, instant: DateTime<Utc>) -> Self {
        HourBucket {
            place_id: place_id.to_owned(),
            hour: start_of_hour(instant),
        }
    }
}

/// What a recompute job does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AnalyticsWork {
    /// Check the rollups of these buckets, recomputing those that differ (the consumer's jobs).
    Buckets { buckets: Vec<HourBucket> },
    /// The hourly reconcile for one cron slot: check every bucket that received receipts lately.
    HourlyReconcile {
        slot: DateTime<Utc>,
        lookback_hours: u32,
    },
    /// Recompute every bucket, of one place or of all (an admin's request).
    Rebuild { place_id: Option<String> },
    /// Check every bucket that received receipts stored since `since`: what the consumer queues instead of
    /// its buckets when more wait than it holds (Redis away while a sparse backlog is stored).
    StoredSince { since: DateTime<Utc> },
}

impl AnalyticsWork {
    pub fn kind(&self) -> &'static str {
        match self {
            AnalyticsWork::Buckets { .. } => "buckets",
            AnalyticsWork::HourlyReconcile { .. } => "hourly_reconcile",
            AnalyticsWork::Rebuild { .. } => "rebuild",
            AnalyticsWork::StoredSince { .. } => "stored_since",
        }
    }
}

/// Where a job is in its life, as the `jobs` table records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Retrying,
    Done,
    Failed,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Retrying,
        JobStatus::Done,
        JobStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Retrying => "retrying",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
        }
    }

    /// The status named `text`, if there is one.
    pub fn parse(text: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Whether the job has ended (done or failed).
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Done | JobStatus::Failed)
    }
}

/// The payload on the analytics queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyticsJob {
    pub job_id: Uuid,
    pub work: AnalyticsWork,
}

impl AnalyticsJob {
    pub fn new(work: AnalyticsWork) -> Self {
        AnalyticsJob {
            job_id: Uuid::new_v4(),
            work,
        }
    }

    /// A key that makes the same cron slot enqueue once, however many replicas tick.
    pub fn idempotency_key(&self) -> Option<String> {
        match &self.work {
            AnalyticsWork::HourlyReconcile { slot, .. } => Some(format!("hourly:{}", slot.timestamp())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn buckets_start_at_the_hour() {
        let instant = DateTime::<Utc>::from_str("2024-02-07T12:34:56.789Z").expect("time");
        let bucket = HourBucket::containing("p", instant);
        assert_eq!(
            bucket.hour,
            DateTime::<Utc>::from_str("2024-02-07T12:00:00Z").expect("time")
        );
    }

    #[test]
    fn hourly_jobs_share_a_key_per_slot_and_others_have_none() {
        let slot = DateTime::<Utc>::from_str("2024-02-07T12:00:00Z").expect("time");
        let a = AnalyticsJob::new(AnalyticsWork::HourlyReconcile {
            slot,
            lookback_hours: 2,
        });
        let b = AnalyticsJob::new(AnalyticsWork::HourlyReconcile {
            slot,
            lookback_hours: 2,
        });
        assert_eq!(a.idempotency_key(), b.idempotency_key());
        assert!(AnalyticsJob::new(AnalyticsWork::Rebuild { place_id: None })
            .idempotency_key()
            .is_none());
    }
}
