//! Analytics job payloads (enqueued by the consumer and admins, run by the worker) and their admin-visible
//! state in the `jobs` table.

use chrono::{DateTime, Utc};

use crate::domain::time::start_of_hour;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::schema::jobs;

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
    /// Recompute the rollups of these buckets (the consumer's freshness jobs).
    Buckets { buckets: Vec<HourBucket> },
    /// The hourly reconcile for one cron slot: recompute every bucket that received receipts lately.
    HourlyReconcile {
        slot: DateTime<Utc>,
        lookback_hours: u32,
    },
    /// Recompute every bucket, of one place or of all (an admin's request).
    Rebuild { place_id: Option<String> },
}

impl AnalyticsWork {
    pub fn kind(&self) -> &'static str {
        match self {
            AnalyticsWork::Buckets { .. } => "buckets",
            AnalyticsWork::HourlyReconcile { .. } => "hourly_reconcile",
            AnalyticsWork::Rebuild { .. } => "rebuild",
        }
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

/// A job as admins see it.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[cfg_attr(feature = "http", derive(paperclip::actix::Apiv2Schema))]
#[diesel(table_name = jobs)]
pub struct JobRecord {
    pub id: Uuid,
    pub kind: String,
    pub status: String,
    pub payload: serde_json::Value,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Records a job as queued, before it is pushed to Redis. A job id seen before is left as it is.
pub fn record_queued(conn: &mut PgConnection, job: &AnalyticsJob) -> QueryResult<()> {
    diesel::insert_into(jobs::table)
        .values((
            jobs::id.eq(job.job_id),
            jobs::kind.eq(job.work.kind()),
            jobs::status.eq("queued"),
            jobs::payload.eq(serde_json::to_value(&job.work).unwrap_or_default()),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut PgConnection, id: Uuid) -> QueryResult<Option<JobRecord>> {
    jobs::table
        .find(id)
        .select(JobRecord::as_select())
        .first(conn)
        .optional()
}

/// Jobs not finished yet (queued, running or retrying), oldest first, as they were queued.
pub fn unfinished(conn: &mut PgConnection) -> QueryResult<Vec<AnalyticsJob>> {
    let rows: Vec<(Uuid, serde_json::Value)> = jobs::table
        .filter(jobs::status.eq_any(["queued", "running", "retrying"]))
        .order(jobs::created_at.asc())
        .select((jobs::id, jobs::payload))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(job_id, payload)| {
            let work = serde_json::from_value(payload).ok()?;
            Some(AnalyticsJob { job_id, work })
        })
        .collect())
}

/// Jobs in one status, newest first.
pub fn list_by_status(conn: &mut PgConnection, status: &str, limit: i64) -> QueryResult<Vec<JobRecord>> {
    jobs::table
        .filter(jobs::status.eq(status))
        .order(jobs::created_at.desc())
        .limit(limit)
        .select(JobRecord::as_select())
        .load(conn)
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
