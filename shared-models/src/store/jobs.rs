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
            jobs::status.eq(JobStatus::Queued.as_str()),
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
        .filter(
            jobs::status.eq_any(
                JobStatus::ALL
                    .into_iter()
                    .filter(|status| !status.is_final())
                    .map(JobStatus::as_str),
            ),
        )
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

/// Forgets the jobs that finished well, queued before `before`; failed jobs stay for admins to see. Returns
/// how many were forgotten.
pub fn forget_done_before(conn: &mut PgConnection, before: DateTime<Utc>) -> QueryResult<usize> {
    diesel::delete(
        jobs::table
            .filter(jobs::status.eq(JobStatus::Done.as_str()))
            .filter(jobs::created_at.lt(before)),
    )
    .execute(conn)
}

/// How many jobs are in each status, every status listed (zero included).
pub fn counts(conn: &mut PgConnection) -> QueryResult<Vec<(JobStatus, i64)>> {
    let found: Vec<(String, i64)> = jobs::table
        .group_by(jobs::status)
        .select((jobs::status, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(JobStatus::ALL
        .into_iter()
        .map(|status| {
            let count = found
                .iter()
                .find(|(name, _)| name == status.as_str())
                .map_or(0, |(_, count)| *count);
            (status, count)
        })
        .collect())
}

/// Jobs in one status, newest first.
pub fn list_by_status(conn: &mut PgConnection, status: JobStatus, limit: i64) -> QueryResult<Vec<JobRecord>> {
    jobs::table
        .filter(jobs::status.eq(status.as_str()))
        .order(jobs::created_at.desc())
        .limit(limit)
        .select(JobRecord::as_select())
        .load(conn)
}

/// Records where a job is: its status, the attempt, the last error. A job not recorded yet (queued by a
/// process that could not record it) is recorded now.
pub fn mark(
    conn: &mut PgConnection,
    job: &AnalyticsJob,
    status: JobStatus,
    attempt: usize,
    error: Option<String>,
) -> QueryResult<()> {
    let now = Utc::now();
    let finished = status.is_final().then_some(now);
    let started = (status == JobStatus::Running).then_some(now);
    diesel::insert_into(jobs::table)
        .values((
            jobs::id.eq(job.job_id),
            jobs::kind.eq(job.work.kind()),
            jobs::status.eq(status.as_str()),
            jobs::payload.eq(serde_json::to_value(&job.work).unwrap_or_default()),
            jobs::attempts.eq(attempt as i32),
            jobs::last_error.eq(&error),
            jobs::started_at.eq(started),
            jobs::finished_at.eq(finished),
        ))
        .on_conflict(jobs::id)
        .do_update()
        .set((
            jobs::status.eq(status.as_str()),
            jobs::attempts.eq(attempt as i32),
            jobs::last_error.eq(&error),
            jobs::started_at.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
            >("COALESCE(jobs.started_at, excluded.started_at)")),
            jobs::finished_at.eq(finished),
        ))
        .execute(conn)?;
    Ok(())
}

/// A job that could not be queued at all (Redis refused it): failed, with the reason.
pub fn mark_unqueued(conn: &mut PgConnection, id: Uuid, error: &str) -> QueryResult<()> {
    diesel::update(jobs::table.find(id))
        .set((
            jobs::status.eq(JobStatus::Failed.as_str()),
            jobs::last_error.eq(error),
            jobs::finished_at.eq(Some(Utc::now())),
        ))
        .execute(conn)?;
    Ok(())
}

/// Claims an hourly slot for a job: true when this job may run it (the slot had not run, or this is a retry
/// of the job that claimed it and did not finish), false when it ran already. The claim is what makes a
/// slot run once whatever the queue remembers.
pub fn claim_hourly_slot(conn: &mut PgConnection, slot: DateTime<Utc>, job_id: Uuid) -> QueryResult<bool> {
    let claimed = diesel::sql_query(
        "INSERT INTO hourly_runs (slot, runs, buckets, started_at, job_id) VALUES ($1, 1, 0, now(), $2)
         ON CONFLICT (slot) DO UPDATE SET runs = hourly_runs.runs + 1, started_at = now()
         WHERE hourly_runs.job_id = excluded.job_id AND hourly_runs.finished_at IS NULL",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(slot)
    .bind::<diesel::sql_types::Uuid, _>(job_id)
    .execute(conn)?;
    Ok(claimed > 0)
}

/// Records that an hourly slot finished, with how many buckets it recomputed.
pub fn finish_hourly_slot(conn: &mut PgConnection, slot: DateTime<Utc>, buckets: usize) -> QueryResult<()> {
    use crate::store::schema::hourly_runs;
    diesel::update(hourly_runs::table.find(slot))
        .set((
            hourly_runs::buckets.eq(buckets as i64),
            hourly_runs::finished_at.eq(Some(Utc::now())),
        ))
        .execute(conn)?;
    Ok(())
}
