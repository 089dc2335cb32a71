//! Wiring the apalis workers: the job worker on the analytics queue and the hourly cron.

use std::str::FromStr;
use std::time::Duration;

use apalis::layers::prometheus::PrometheusLayer;
use apalis::layers::retry::backoff::{ExponentialBackoffMaker, MakeBackoff};
use apalis::layers::retry::HasherRng;
use apalis::prelude::{
    AbortError, BackendExt, BoxDynError, Data, RetryPolicy, WorkerBuilder, WorkerBuilderExt,
};
use apalis_cron::{CronScheduler, Tick};
use chrono::DateTime;
use shared_models::db;
use shared_models::jobs::{AnalyticsJob, AnalyticsWork};
use shared_models::queue::{self, AnalyticsQueue};
use tokio::sync::watch;

use crate::config::WorkerConfig;
use crate::jobs::{self, MaxAttempts};

#[derive(Debug, Clone, Copy)]
struct Lookback(u32);

impl Lookback {
    fn hours(&self) -> u32 {
        self.0
    }
}

/// One cron tick, in every replica: enqueue the slot's reconcile. The queue deduplicates by the slot's
/// idempotency key, so the slot runs once however many replicas tick.
async fn on_tick(
    tick: Tick,
    analytics_queue: Data<AnalyticsQueue>,
    lookback: Data<Lookback>,
) -> Result<(), BoxDynError> {
    let slot = DateTime::from_timestamp(tick.get_timestamp() as i64, 0).ok_or("tick out of range")?;
    let job = AnalyticsJob::new(AnalyticsWork::HourlyReconcile {
        slot,
        lookback_hours: lookback.hours(),
    });
    let mut analytics_queue = (*analytics_queue).clone();
    queue::enqueue(&mut analytics_queue, job).await?;
    log::info!("hourly reconcile for slot {slot} enqueued (once per slot across replicas)");
    Ok(())
}

/// Errors that retrying cannot fix come wrapped in [`AbortError`].
fn is_retryable(error: &BoxDynError) -> bool {
    error.downcast_ref::<AbortError>().is_none()
}

async fn stopped(mut shutdown: watch::Receiver<bool>) -> Result<(), std::io::Error> {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
    Ok(())
}

/// Runs the worker until `shutdown` turns true; a running job is finished first.
pub async fn run(config: WorkerConfig, shutdown: watch::Receiver<bool>) -> Result<(), String> {
    let pool = db::build_pool(&config.database.database_url, config.database.database_pool_size);
    let migrate_pool = pool.clone();
    tokio::task::spawn_blocking(move || db::run_migrations_when_ready(&migrate_pool, 30))
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| error.to_string())?;
    if let Some(addr) = config.metrics_addr {
        crate::metrics::serve(addr, pool.clone())?;
    }
    let analytics_queue = queue::connect(&config.redis.redis_url, &config.redis.analytics_queue)
        .await
        .map_err(|error| error.to_string())?;
    let schedule = cron::Schedule::from_str(&config.hourly_schedule)
        .map_err(|error| format!("HOURLY_SCHEDULE is not a cron expression: {error}"))?;
    let name = config
        .worker_name
        .clone()
        .unwrap_or_else(|| format!("worker-{}", uuid::Uuid::new_v4().simple()));

    let backoff = ExponentialBackoffMaker::new(
        Duration::from_millis(500),
        Duration::from_secs(60),
        0.5,
        HasherRng::default(),
    )
    .map_err(|error| error.to_string())?
    .make_backoff();
    let policy = RetryPolicy::retries(config.job_retries)
        .with_backoff(backoff)
        .retry_if(is_retryable as fn(&BoxDynError) -> bool);
    let job_worker = WorkerBuilder::new(name.as_str())
        .backend(
            analytics_queue
                .clone()
                .poll_with_interval(Duration::from_millis(config.poll_ms)),
        )
        .concurrency(config.concurrency)
        .retry(policy)
        .layer(PrometheusLayer::default())
        .data(pool)
        .data(MaxAttempts(config.job_retries + 1))
        .build(jobs::handle);
    let cron_worker = WorkerBuilder::new(format!("{name}-cron"))
        .backend(CronScheduler::new(schedule))
        .data(analytics_queue)
        .data(Lookback(config.reconcile_lookback_hours))
        .build(on_tick);
    log::info!("worker {name} running");
    tokio::try_join!(
        job_worker.run_until(stopped(shutdown.clone())),
        cron_worker.run_until(stopped(shutdown))
    )
    .map(|_| ())
    .map_err(|error| error.to_string())
}
