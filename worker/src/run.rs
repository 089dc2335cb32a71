//! Wiring the apalis workers: the job worker on the analytics queue and the hourly cron.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use apalis::layers::prometheus::PrometheusLayer;
use apalis::layers::retry::backoff::{ExponentialBackoffMaker, MakeBackoff};
use apalis::layers::retry::HasherRng;
use apalis::prelude::{
    AbortError, BackendExt, BoxDynError, Data, RetryPolicy, WorkerBuilder, WorkerBuilderExt,
};
use apalis_cron::{CronScheduler, Tick};
use chrono::{DateTime, TimeDelta};
use shared_models::domain::jobs::{AnalyticsJob, AnalyticsWork};
use shared_models::queue::{self, AnalyticsQueue};
use shared_models::store::{self, PgPool};
use tokio::sync::watch;

use crate::config::WorkerConfig;
use crate::error::WorkerError;
use crate::jobs::{self, CheckPace, JobHistory, MaxAttempts};

#[derive(Debug, Clone, Copy)]
struct Lookback(u32);

impl Lookback {
    fn hours(&self) -> u32 {
        self.0
    }
}

/// One cron tick, in every replica: enqueue the slot's reconcile. The queue deduplicates by the slot's
/// idempotency key, so the slot is queued once however many replicas tick (and the job claims its slot in
/// PostgreSQL, so it runs once even if a Redis that lost its data queues it again). While Redis is away the
/// tick keeps trying, with back-off, for up to a quarter of an hour.
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
    let give_up = tokio::time::Instant::now() + Duration::from_secs(15 * 60);
    let mut delay = Duration::from_secs(1);
    loop {
        match queue::enqueue(&mut analytics_queue, job.clone()).await {
            Ok(()) => break,
            Err(error) if tokio::time::Instant::now() < give_up => {
                log::warn!(
                    "cannot enqueue the reconcile for slot {slot} yet ({}); retrying in {delay:?}",
                    shared_models::report::chain(&error)
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            Err(error) => return Err(error.into()),
        }
    }
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

/// Runs a worker until `shutdown` turns true, starting it again (with back-off, and a fresh name so that
/// Redis does not take it for the one still registered) whenever it stops on its own, such as when Redis
/// goes away: a replica outlives its dependencies, as a Celery worker does.
async fn supervise<F, Fut>(what: &str, shutdown: watch::Receiver<bool>, mut start: F)
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<(), WorkerError>>,
{
    let mut delay = Duration::from_secs(1);
    let mut incarnation = 0;
    loop {
        let started = tokio::time::Instant::now();
        let result = start(incarnation).await;
        if *shutdown.borrow() {
            return;
        }
        match result {
            Ok(()) => log::warn!("{what} stopped on its own; starting it again in {delay:?}"),
            Err(error) => log::warn!(
                "{what} failed ({}); starting it again in {delay:?}",
                shared_models::report::chain(&error)
            ),
        }
        if started.elapsed() > Duration::from_secs(60) {
            delay = Duration::from_secs(1);
        }
        let mut shutdown = shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(30));
        incarnation += 1;
    }
}

/// After Redis came back without its data (or on a new Redis), queues again every job PostgreSQL records as
/// unfinished, so that no recompute is lost for good. Jobs are idempotent: one queued twice only runs twice.
async fn requeue_after_data_loss(
    config: &WorkerConfig,
    pool: &PgPool,
    analytics_queue: &mut AnalyticsQueue,
) -> Result<(), WorkerError> {
    if !queue::claim_fresh(&config.redis.redis_url, &config.redis.analytics_queue).await? {
        return Ok(());
    }
    let pool = pool.clone();
    let unfinished = tokio::task::spawn_blocking(move || -> Result<_, WorkerError> {
        let mut conn = pool.get()?;
        Ok(shared_models::store::jobs::unfinished(&mut conn)?)
    })
    .await??;
    if !unfinished.is_empty() {
        log::warn!(
            "Redis does not hold the queue it held: queuing {} unfinished jobs again",
            unfinished.len()
        );
    }
    for job in unfinished {
        queue::enqueue(analytics_queue, job).await?;
    }
    Ok(())
}

/// Runs the worker until `shutdown` turns true; a running job is finished first.
pub async fn run(config: WorkerConfig, shutdown: watch::Receiver<bool>) -> Result<(), WorkerError> {
    let pool = store::build_pool(&config.database.database_url, config.database.database_pool_size);
    let migrate_pool = pool.clone();
    tokio::task::spawn_blocking(move || store::run_migrations_when_ready(&migrate_pool, 30)).await??;
    if let Some(addr) = config.metrics_addr {
        crate::metrics::serve(addr, pool.clone())?;
    }
    let schedule = cron::Schedule::from_str(&config.hourly_schedule)?;
    let name = config
        .worker_name
        .clone()
        .unwrap_or_else(|| format!("worker-{}", uuid::Uuid::new_v4().simple()));
    let backoff = ExponentialBackoffMaker::new(
        Duration::from_millis(500),
        Duration::from_secs(60),
        0.5,
        HasherRng::default(),
    )?
    .make_backoff();
    let policy = RetryPolicy::retries(config.job_retries)
        .with_backoff(backoff)
        .retry_if(is_retryable as fn(&BoxDynError) -> bool);
    log::info!("worker {name} running");

    let jobs = supervise("the job worker", shutdown.clone(), |incarnation| {
        let (config, pool, policy, shutdown) =
            (config.clone(), pool.clone(), policy.clone(), shutdown.clone());
        let name = if incarnation == 0 {
            name.clone()
        } else {
            format!("{name}-{incarnation}")
        };
        async move {
            let mut analytics_queue =
                queue::connect(&config.redis.redis_url, &config.redis.analytics_queue).await?;
            requeue_after_data_loss(&config, &pool, &mut analytics_queue).await?;
            WorkerBuilder::new(name)
                .backend(analytics_queue.poll_with_interval(Duration::from_millis(config.poll_ms)))
                .concurrency(config.concurrency)
                .retry(policy)
                .layer(PrometheusLayer::default())
                .data(pool)
                .data(MaxAttempts(config.job_retries + 1))
                .data(CheckPace {
                    duty_percent: config.check_duty_percent,
                })
                .data(JobHistory(TimeDelta::days(i64::from(config.job_history_days))))
                .build(jobs::handle)
                .run_until(stopped(shutdown))
                .await?;
            Ok(())
        }
    });
    let cron = supervise("the hourly cron", shutdown.clone(), |incarnation| {
        let (config, schedule, shutdown) = (config.clone(), schedule.clone(), shutdown.clone());
        let name = format!("{name}-cron-{incarnation}");
        async move {
            let analytics_queue =
                queue::connect(&config.redis.redis_url, &config.redis.analytics_queue).await?;
            WorkerBuilder::new(name)
                .backend(CronScheduler::new(schedule))
                .data(analytics_queue)
                .data(Lookback(config.reconcile_lookback_hours))
                .build(on_tick)
                .run_until(stopped(shutdown))
                .await?;
            Ok(())
        }
    });
    tokio::join!(jobs, cron);
    Ok(())
}
