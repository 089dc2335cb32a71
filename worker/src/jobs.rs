//! The analytics job handler: a plain async function over the shared payload type. Its effects are
//! idempotent; its state is kept in the `jobs` table for admins.

use std::time::{Duration, Instant};

use apalis::prelude::{AbortError, Attempt, BoxDynError, Data};
use chrono::TimeDelta;
use diesel::PgConnection;

use shared_models::domain::jobs::{AnalyticsJob, AnalyticsWork, HourBucket, JobStatus};
use shared_models::report::chain;
use shared_models::store::{self, rollups, PgPool};

use crate::error::WorkerError;

/// How many attempts a job gets in all (the first run plus the retries); set by the worker at start.
#[derive(Debug, Clone, Copy)]
pub struct MaxAttempts(pub usize);

/// Buckets per transaction when a job covers many.
const CHUNK: usize = 500;

/// Buckets per transaction in the check of a consumer's job: small, so that one busy place's hour is
/// about the most a statement reads.
const CHECK_SLICE: usize = 16;

/// How much of the time a check keeps its database connection busy (`WORKER_CHECK_DUTY_PERCENT`): after
/// each slice it pauses so long that its statements take at most this share of the time. A check runs on
/// the database's cores beside the pipeline it checks; taken at once, a minute's check held a core for
/// seconds, and intake's requests queued meanwhile (docs/performance.md).
#[derive(Debug, Clone, Copy)]
pub struct CheckPace {
    pub duty_percent: u32,
}

impl CheckPace {
    fn pause_after(&self, busy: Duration) -> Duration {
        let duty = self.duty_percent.clamp(1, 100);
        busy * (100 - duty) / duty
    }
}

/// How long after it was queued a job that succeeded stays in the `jobs` table (`JOB_HISTORY_DAYS`); the
/// hourly reconcile forgets older ones. Failed jobs stay until an admin deals with them.
#[derive(Debug, Clone, Copy)]
pub struct JobHistory(pub TimeDelta);

/// Checks the buckets a slice at a time, each slice in its own transaction, pausing between them as
/// `pace` says; returns how many buckets were checked.
fn check_paced(
    conn: &mut PgConnection,
    buckets: &[HourBucket],
    slice: usize,
    pace: CheckPace,
) -> Result<usize, WorkerError> {
    let mut done = 0;
    for (index, part) in buckets.chunks(slice).enumerate() {
        let started = Instant::now();
        done += rollups::check(conn, part)?.buckets;
        if (index + 1) * slice < buckets.len() {
            std::thread::sleep(pace.pause_after(started.elapsed()));
        }
    }
    Ok(done)
}

/// Runs the job's work; returns how many buckets it recomputed or checked.
pub fn perform(
    conn: &mut PgConnection,
    job: &AnalyticsJob,
    pace: CheckPace,
    history: JobHistory,
) -> Result<usize, WorkerError> {
    match &job.work {
        AnalyticsWork::Buckets { buckets } => check_paced(conn, buckets, CHECK_SLICE, pace),
        AnalyticsWork::HourlyReconcile { slot, lookback_hours } => {
            // Once per slot, whatever the queue remembers (store::jobs::claim_hourly_slot).
            if !store::jobs::claim_hourly_slot(conn, *slot, job.job_id)? {
                log::info!(
                    "hourly slot {slot} already ran; job {} has nothing to do",
                    job.job_id
                );
                return Ok(0);
            }
            let since = *slot - TimeDelta::hours(i64::from(*lookback_hours));
            let buckets = rollups::stored_since(conn, since)?;
            let count = check_paced(conn, &buckets, CHUNK, pace)?;
            store::jobs::finish_hourly_slot(conn, *slot, count)?;
            let JobHistory(kept) = history;
            let forgotten = store::jobs::forget_done_before(conn, *slot - kept)?;
            if forgotten > 0 {
                log::info!(
                    "forgot {forgotten} jobs that succeeded, queued more than {} days before",
                    kept.num_days()
                );
            }
            Ok(count)
        }
        AnalyticsWork::Rebuild { place_id } => {
            if let Some(place) = place_id {
                if !store::places::exists(conn, place)? {
                    return Err(WorkerError::UnknownPlace(place.clone()));
                }
            }
            if place_id.is_none() {
                // Everything at once, set-based: far faster than bucket by bucket.
                return Ok(rollups::rebuild_all(conn)?);
            }
            let buckets = rollups::all_buckets(conn, place_id.as_deref())?;
            let mut done = 0;
            for chunk in buckets.chunks(CHUNK) {
                done += rollups::recompute(conn, chunk)?;
            }
            Ok(done)
        }
        AnalyticsWork::StoredSince { since } => {
            let buckets = rollups::stored_since(conn, *since)?;
            check_paced(conn, &buckets, CHUNK, pace)
        }
    }
}

/// Waits, with back-off, until PostgreSQL answers (for at most ten minutes), so that a job does not spend
/// its attempts while the database is away: an outage delays recomputes, it does not fail them.
async fn wait_for_database(pool: &PgPool) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(600);
    let mut delay = Duration::from_millis(500);
    loop {
        let probe = pool.clone();
        match tokio::task::spawn_blocking(move || store::ping(&probe)).await {
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
    pace: Data<CheckPace>,
    history: Data<JobHistory>,
    attempt: Attempt,
) -> Result<usize, BoxDynError> {
    let attempt = attempt.current().max(1);
    let pool = (*pool).clone();
    wait_for_database(&pool).await;
    let MaxAttempts(max_attempts) = *max_attempts;
    let (pace, history) = (*pace, *history);
    let task_job = job.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<usize, WorkerError> {
        let mut conn = pool.get()?;
        store::jobs::mark(&mut conn, &task_job, JobStatus::Running, attempt, None)?;
        let outcome = perform(&mut conn, &task_job, pace, history);
        let (status, error) = match &outcome {
            Ok(_) => (JobStatus::Done, None),
            Err(error @ WorkerError::UnknownPlace(_)) => (JobStatus::Failed, Some(chain(error))),
            Err(error) if attempt >= max_attempts => (JobStatus::Failed, Some(chain(error))),
            Err(error) => (JobStatus::Retrying, Some(chain(error))),
        };
        if let Err(mark_error) = store::jobs::mark(&mut conn, &task_job, status, attempt, error) {
            log::warn!(
                "could not record the state of job {}: {mark_error}",
                task_job.job_id
            );
        }
        outcome
    })
    .await
    .map_err(WorkerError::from)
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
        Err(error @ WorkerError::UnknownPlace(_)) => {
            log::warn!("job {} aborted: {error}", job.job_id);
            Err(Box::new(AbortError::new(error)))
        }
        Err(error) => {
            log::warn!("job {} attempt {attempt} failed: {}", job.job_id, chain(&error));
            Err(Box::new(error))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_pauses_for_what_its_duty_leaves() {
        let busy = Duration::from_millis(200);
        let pause = |duty_percent| CheckPace { duty_percent }.pause_after(busy);
        assert_eq!(pause(25), Duration::from_millis(600));
        assert_eq!(pause(50), Duration::from_millis(200));
        assert_eq!(pause(100), Duration::ZERO);
    }
}
