//! The `jobs` table: recompute jobs as admins see them (the queue itself is in Redis), and the hourly slots
//! each ran once. This module owns every write to `jobs` and `hourly_runs`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use crate::domain::jobs::{AnalyticsJob, JobStatus};
use crate::store::schema::jobs;

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

