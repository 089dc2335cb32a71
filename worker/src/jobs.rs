//! The analytics job handler: a plain async function over the shared payload type. Its effects are
//! idempotent; its state is kept in the `jobs` table for admins.

use apalis::prelude::{AbortError, Attempt, BoxDynError, Data};
use chrono::{TimeDelta, Utc};
use diesel::prelude::*;
use std::time::Duration;

use shared_models::db::{self, PgPool};
use shared_models::jobs::{AnalyticsJob, AnalyticsWork};
use shared_models::schema::{hourly_runs, jobs, places};

use crate::rollups;

/// How many attempts a job gets in all (the first run plus the retries); set by the worker at start.
#[derive(Debug, Clone, Copy)]
pub struct MaxAttempts(pub usize);

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("no place {0}")]
    UnknownPlace(String),
    #[error("job task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs the job's work; returns how many buckets it recomputed.
pub fn perform(conn: &mut PgConnection, job: &AnalyticsJob) -> Result<usize, JobError> {
    match &job.work {
        AnalyticsWork::Buckets { buckets } => Ok(rollups::recompute(conn, buckets)?),
        AnalyticsWork::HourlyReconcile { slot, lookback_hours } => {
            // Once per slot, whatever the queue remembers: the slot is claimed in PostgreSQL, and only a
            // retry of the job that claimed it (its replica died mid-way) may run it again.
            let claimed = diesel::sql_query(
                "INSERT INTO hourly_runs (slot, runs, buckets, started_at, job_id) VALUES ($1, 1, 0, now(), $2)
                 ON CONFLICT (slot) DO UPDATE SET runs = hourly_runs.runs + 1, started_at = now()
                 WHERE hourly_runs.job_id = excluded.job_id AND hourly_runs.finished_at IS NULL",
            )
            .bind::<diesel::sql_types::Timestamptz, _>(slot)
            .bind::<diesel::sql_types::Uuid, _>(job.job_id)
            .execute(conn)?;
            if claimed == 0 {
                log::info!(
                    "hourly slot {slot} already ran; job {} has nothing to do",
                    job.job_id
                );
                return Ok(0);
            }
            let since = *slot - TimeDelta::hours(i64::from(*lookback_hours));
            let buckets = rollups::stored_since(conn, since)?;
            let count = rollups::recompute(conn, &buckets)?;
            diesel::update(hourly_runs::table.find(slot))
                .set((
                    hourly_runs::buckets.eq(count as i64),
                    hourly_runs::finished_at.eq(Some(Utc::now())),
                ))
                .execute(conn)?;
            Ok(count)
        }
        AnalyticsWork::Rebuild { place_id } => {
            if let Some(place) = place_id {
                let exists = places::table.find(place).count().get_result::<i64>(conn)? > 0;
                if !exists {
                    return Err(JobError::UnknownPlace(place.clone()));
                }
            }
            let buckets = rollups::all_buckets(conn, place_id.as_deref())?;
            let mut done = 0;
            for chunk in buckets.chunks(500) {
                done += rollups::recompute(conn, chunk)?;
            }
            Ok(done)
        }
    }
}

fn mark(
    conn: &mut PgConnection,
    job: &AnalyticsJob,
    status: &str,
    attempt: usize,
    error: Option<String>,
) -> QueryResult<()> {
    let now = Utc::now();
    let finished = matches!(status, "done" | "failed").then_some(now);
    let started = (status == "running").then_some(now);
    diesel::insert_into(jobs::table)
        .values((
            jobs::id.eq(job.job_id),
            jobs::kind.eq(job.work.kind()),
            jobs::status.eq(status),
            jobs::payload.eq(serde_json::to_value(&job.work).unwrap_or_default()),
            jobs::attempts.eq(attempt as i32),
            jobs::last_error.eq(&error),
            jobs::started_at.eq(started),
            jobs::finished_at.eq(finished),
        ))
        .on_conflict(jobs::id)
        .do_update()
        .set((
            jobs::status.eq(status),
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

/// Waits, with back-off, until PostgreSQL answers (for at most ten minutes), so that a job does not spend
/// its attempts while the database is away: an outage delays recomputes, it does not fail them.
async fn wait_for_database(pool: &PgPool) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(600);
    let mut delay = Duration::from_millis(500);
    loop {
        let probe = pool.clone();
        match tokio::task::spawn_blocking(move || db::ping(&probe)).await {
            Ok(Ok(())) => return,
            Ok(Err(error)) if tokio::time::Instant::now() < give_up => {
                log::warn!("PostgreSQL is unreachable ({error}); the job waits {delay:?}");
            }
            _ => return,
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(15));
    }
}

/// The apalis handler. Errors that retrying cannot fix abort at once; others are retried with back-off,
/// and the last failure is kept as `failed` with its error.
pub async fn handle(
    job: AnalyticsJob,
    pool: Data<PgPool>,
    max_attempts: Data<MaxAttempts>,
    attempt: Attempt,
) -> Result<usize, BoxDynError> {
    let attempt = attempt.current().max(1);
    let pool = (*pool).clone();
    wait_for_database(&pool).await;
    let MaxAttempts(max_attempts) = *max_attempts;
    let task_job = job.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<usize, JobError> {
        let mut conn = pool.get()?;
        mark(&mut conn, &task_job, "running", attempt, None)?;
        let outcome = perform(&mut conn, &task_job);
        let (status, error) = match &outcome {
            Ok(_) => ("done", None),
            Err(JobError::UnknownPlace(_)) => ("failed", outcome.as_ref().err().map(ToString::to_string)),
            Err(error) if attempt >= max_attempts => ("failed", Some(error.to_string())),
            Err(error) => ("retrying", Some(error.to_string())),
        };
        if let Err(mark_error) = mark(&mut conn, &task_job, status, attempt, error) {
            log::warn!(
                "could not record the state of job {}: {mark_error}",
                task_job.job_id
            );
        }
        outcome
    })
    .await
    .map_err(JobError::from)
    .and_then(|result| result);
    match result {
        Ok(buckets) => {
            log::info!(
                "job {} ({}) recomputed {buckets} buckets",
                job.job_id,
                job.work.kind()
            );
            Ok(buckets)
        }
        Err(error @ JobError::UnknownPlace(_)) => {
            log::warn!("job {} aborted: {error}", job.job_id);
            Err(Box::new(AbortError::new(error)))
        }
        Err(error) => {
            log::warn!("job {} attempt {attempt} failed: {error}", job.job_id);
            Err(Box::new(error))
        }
    }
}
