//! The worker fleet as real processes on real Redis and PostgreSQL.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use shared_models::domain::jobs::{AnalyticsJob, AnalyticsWork, HourBucket};
use shared_models::queue;
use shared_models::store::rollups::RECOMPUTE_LOCK;
use shared_models::store::schema::{hourly_runs, jobs, place_rollups};
use shared_models::store::PgPool;
use shared_models::testing::{fresh_database, service_url, unique_name};

/// A worker process, killed when dropped.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Fleet {
    database_url: String,
    pool: PgPool,
    queue_name: String,
}

impl Fleet {
    fn new() -> Self {
        let (database_url, pool) = fresh_database();
        Fleet {
            database_url,
            pool,
            queue_name: unique_name("analytics"),
        }
    }

    fn start(&self, schedule: &str, retries: u32) -> Worker {
        self.start_with(schedule, retries, &[])
    }

    fn start_with(&self, schedule: &str, retries: u32, extra: &[(&str, String)]) -> Worker {
        let child = Command::new(env!("CARGO_BIN_EXE_worker"))
            .envs(extra.iter().map(|(key, value)| (*key, value.as_str())))
            .env("DATABASE_URL", &self.database_url)
            .env("DATABASE_POOL_SIZE", "4")
            .env("REDIS_URL", service_url("TEST_REDIS_URL"))
            .env("ANALYTICS_QUEUE", &self.queue_name)
            .env("HOURLY_SCHEDULE", schedule)
            .env("JOB_RETRIES", retries.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the worker");
        Worker(child)
    }

    async fn enqueue(&self, work: AnalyticsWork) -> uuid::Uuid {
        let job = AnalyticsJob::new(work);
        let id = job.job_id;
        let mut analytics_queue = queue::connect(&service_url("TEST_REDIS_URL"), &self.queue_name)
            .await
            .expect("queue");
        queue::enqueue(&mut analytics_queue, job).await.expect("enqueue");
        id
    }

    fn sql(&self, statement: &str) {
        let mut conn = self.pool.get().expect("connection");
        diesel::sql_query(statement).execute(&mut conn).expect(statement);
    }

    fn job(&self, id: uuid::Uuid) -> Option<(String, i32, Option<String>)> {
        let mut conn = self.pool.get().expect("connection");
        jobs::table
            .find(id)
            .select((jobs::status, jobs::attempts, jobs::last_error))
            .first(&mut conn)
            .optional()
            .expect("job")
    }

    /// Waits (up to `seconds`) until the job's state satisfies `done`.
    async fn wait_for_job(
        &self,
        id: uuid::Uuid,
        seconds: u64,
        done: impl Fn(&(String, i32, Option<String>)) -> bool,
    ) -> (String, i32, Option<String>) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            if let Some(state) = self.job(id) {
                if done(&state) {
                    return state;
                }
            }
            assert!(
                Instant::now() < deadline,
                "job {id} never got there: {:?}",
                self.job(id)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A place with two receipts in the hour 2024-02-07 12:00 UTC: 2.50 and 4.00, VAT 0.25 and 0.40.
    fn seed_place(&self, place_id: &str) -> HourBucket {
        self.sql(&format!(
            "INSERT INTO places (place_id, merchant_id) VALUES ('{place_id}', 'm')"
        ));
        for (index, total, vat) in [(1, "2.50", "0.25"), (2, "4.00", "0.40")] {
            self.sql(&format!(
                "WITH r AS (INSERT INTO receipts (merchant_id, transaction_id, place_id, purchased_at, total_amount,
                    vat_amount, tips_amount, payment_method, received_at)
                 VALUES ('m', '{place_id}-{index}', '{place_id}', '2024-02-07T12:{index}0:00Z', {total}, {vat}, 0,
                    'cash', now()) RETURNING id)
                 INSERT INTO receipt_lines (receipt_id, line_no, product_id, category, quantity, price, amount)
                 SELECT id, 0, 'p', 'food', 1, {total}, {total} FROM r"
            ));
        }
        HourBucket {
            place_id: place_id.into(),
            hour: "2024-02-07T12:00:00Z".parse().expect("hour"),
        }
    }

    fn rollup(&self, place_id: &str) -> Option<(i64, rust_decimal::Decimal, rust_decimal::Decimal)> {
        let mut conn = self.pool.get().expect("connection");
        place_rollups::table
            .filter(place_rollups::place_id.eq(place_id))
            .filter(place_rollups::grain.eq("hour"))
            .select((
                place_rollups::purchases,
                place_rollups::total_amount,
                place_rollups::vat_amount,
            ))
            .first(&mut conn)
            .optional()
            .expect("rollup")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_run_each_cron_slot_exactly_once() {
    let fleet = tokio::task::spawn_blocking(Fleet::new).await.expect("fleet");
    let replicas: Vec<Worker> = (0..3).map(|_| fleet.start("*/2 * * * * *", 2)).collect();
    tokio::time::sleep(Duration::from_secs(11)).await;
    drop(replicas);
    let mut conn = fleet.pool.get().expect("connection");
    let slots: Vec<(chrono::DateTime<chrono::Utc>, i32)> = hourly_runs::table
        .select((hourly_runs::slot, hourly_runs::runs))
        .order(hourly_runs::slot)
        .load(&mut conn)
        .expect("runs");
    assert!(slots.len() >= 3, "too few slots ran: {slots:?}");
    assert!(
        slots.iter().all(|(_, runs)| *runs == 1),
        "a slot ran more than once: {slots:?}"
    );
    let reconciles: i64 = jobs::table
        .filter(jobs::kind.eq("hourly_reconcile"))
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!(reconciles as usize, slots.len(), "one reconcile job per slot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_replica_is_killed_is_finished_by_another_replica() {
    let fleet = tokio::task::spawn_blocking(Fleet::new).await.expect("fleet");
    let bucket = fleet.seed_place("killed-place");
    // Hold the recompute lock, so the first replica blocks inside the job.
    let mut holder = PgConnection::establish(&fleet.database_url).expect("connection");
    diesel::sql_query(format!("SELECT pg_advisory_lock({RECOMPUTE_LOCK})"))
        .execute(&mut holder)
        .expect("lock");

    let first = fleet.start("0 0 * * * *", 3);
    let id = fleet
        .enqueue(AnalyticsWork::Buckets {
            buckets: vec![bucket],
        })
        .await;
    fleet
        .wait_for_job(id, 30, |(status, _, _)| status == "running")
        .await;
    drop(first); // SIGKILL, mid-job
    diesel::sql_query(format!("SELECT pg_advisory_unlock({RECOMPUTE_LOCK})"))
        .execute(&mut holder)
        .expect("unlock");
    assert_eq!(
        fleet.rollup("killed-place"),
        None,
        "the killed replica wrote nothing"
    );

    let _second = fleet.start("0 0 * * * *", 3);
    fleet
        .wait_for_job(id, 90, |(status, _, _)| status == "done")
        .await;
    let expected = Some((
        2,
        "6.50".parse().expect("decimal"),
        "0.65".parse().expect("decimal"),
    ));
    assert_eq!(fleet.rollup("killed-place"), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_fails_twice_then_succeeds_and_one_that_always_fails_ends_failed_with_its_error() {
    let fleet = tokio::task::spawn_blocking(Fleet::new).await.expect("fleet");
    let bucket = fleet.seed_place("flaky-place");
    let _worker = fleet.start("0 0 * * * *", 3);

    fleet.sql("ALTER TABLE place_rollups RENAME TO place_rollups_away");
    let flaky = fleet
        .enqueue(AnalyticsWork::Buckets {
            buckets: vec![bucket.clone()],
        })
        .await;
    fleet
        .wait_for_job(flaky, 30, |(status, attempts, _)| {
            status == "retrying" && *attempts >= 2
        })
        .await;
    fleet.sql("ALTER TABLE place_rollups_away RENAME TO place_rollups");
    let (_, attempts, _) = fleet
        .wait_for_job(flaky, 60, |(status, _, _)| status == "done")
        .await;
    assert_eq!(attempts, 3, "two failures, then success");
    assert_eq!(
        fleet.rollup("flaky-place").map(|(purchases, _, _)| purchases),
        Some(2)
    );

    fleet.sql("ALTER TABLE place_rollups RENAME TO place_rollups_away");
    let doomed = fleet
        .enqueue(AnalyticsWork::Buckets {
            buckets: vec![bucket],
        })
        .await;
    let (_, attempts, error) = fleet
        .wait_for_job(doomed, 90, |(status, _, _)| status == "failed")
        .await;
    fleet.sql("ALTER TABLE place_rollups_away RENAME TO place_rollups");
    assert_eq!(attempts, 4, "the first run and three retries");
    assert!(
        error.is_some_and(|error| error.contains("place_rollups")),
        "the error is kept"
    );

    let unknown = fleet
        .enqueue(AnalyticsWork::Rebuild {
            place_id: Some("no-such-place".into()),
        })
        .await;
    let (_, attempts, error) = fleet
        .wait_for_job(unknown, 30, |(status, _, _)| status == "failed")
        .await;
    assert_eq!(attempts, 1, "an error retrying cannot fix is not retried");
    assert!(error.is_some_and(|error| error.contains("no-such-place")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_serves_job_metrics_for_prometheus() {
    let fleet = tokio::task::spawn_blocking(Fleet::new).await.expect("fleet");
    let bucket = fleet.seed_place("metered-place");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let _worker = fleet.start_with(
        "0 0 * * * *",
        1,
        &[("WORKER_METRICS_ADDR", format!("127.0.0.1:{port}"))],
    );
    let id = fleet
        .enqueue(AnalyticsWork::Buckets {
            buckets: vec![bucket],
        })
        .await;
    fleet
        .wait_for_job(id, 30, |(status, _, _)| status == "done")
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = match reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let job_counted = text
            .lines()
            .any(|line| line.starts_with("tasks_total") && line.contains("status=\"Ok\""));
        if job_counted
            && text.contains("task_duration_seconds")
            && text.contains("analytics_jobs{status=\"failed\"}")
        {
            break;
        }
        assert!(Instant::now() < deadline, "metrics never showed the job: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_for_everything_stored_since_an_instant_checks_those_hours_and_no_others() {
    let fleet = tokio::task::spawn_blocking(Fleet::new).await.expect("fleet");
    fleet.seed_place("recent-place");
    fleet.seed_place("earlier-place");
    fleet.sql("UPDATE receipts SET stored_at = now() - interval '1 hour' WHERE place_id = 'earlier-place'");
    let _worker = fleet.start("0 0 * * * *", 1);
    let id = fleet
        .enqueue(AnalyticsWork::StoredSince {
            since: chrono::Utc::now() - chrono::TimeDelta::minutes(5),
        })
        .await;
    fleet
        .wait_for_job(id, 30, |(status, _, _)| status == "done")
        .await;
    let expected = Some((
        2,
        "6.50".parse().expect("decimal"),
        "0.65".parse().expect("decimal"),
    ));
    assert_eq!(fleet.rollup("recent-place"), expected);
    assert_eq!(
        fleet.rollup("earlier-place"),
        None,
        "receipts stored before the instant are left to the hourly reconcile"
    );
}
