//! The `jobs` table keeps a week of history: the hourly reconcile forgets jobs that succeeded before then,
//! and keeps failed ones, whatever their age, for admins.

use chrono::{TimeDelta, Utc};
use diesel::prelude::*;
use shared_models::domain::jobs::{AnalyticsJob, AnalyticsWork, HourBucket, JobStatus};
use shared_models::store::jobs::{find, forget_done_before, mark, record_queued};
use shared_models::store::schema::jobs;
use shared_models::testing::fresh_database;

fn job(conn: &mut PgConnection, status: JobStatus, days_ago: i64) -> AnalyticsJob {
    let job = AnalyticsJob::new(AnalyticsWork::Buckets {
        buckets: vec![HourBucket::containing("place-1", Utc::now())],
    });
    record_queued(conn, &job).expect("recorded");
    mark(conn, &job, status, 1, None).expect("marked");
    diesel::update(jobs::table.find(job.job_id))
        .set(jobs::created_at.eq(Utc::now() - TimeDelta::days(days_ago)))
        .execute(conn)
        .expect("aged");
    job
}

#[test]
fn jobs_that_succeeded_are_forgotten_after_the_history_and_failed_ones_are_kept() {
    let (_, pool) = fresh_database();
    let mut conn = pool.get().expect("connection");
    let old_done = job(&mut conn, JobStatus::Done, 10);
    let old_failed = job(&mut conn, JobStatus::Failed, 10);
    let recent_done = job(&mut conn, JobStatus::Done, 1);
    let running = job(&mut conn, JobStatus::Running, 10);

    let forgotten = forget_done_before(&mut conn, Utc::now() - TimeDelta::days(7)).expect("forgotten");

    assert_eq!(forgotten, 1);
    let exists =
        |conn: &mut PgConnection, job: &AnalyticsJob| find(conn, job.job_id).expect("found").is_some();
    assert!(!exists(&mut conn, &old_done));
    assert!(exists(&mut conn, &old_failed));
    assert!(exists(&mut conn, &recent_done));
    assert!(exists(&mut conn, &running));
}
