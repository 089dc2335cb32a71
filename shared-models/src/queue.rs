//! The Redis-backed apalis queue for analytics jobs, named explicitly and configured the same way by the
//! consumer (which enqueues) and the worker (which runs).

use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_redis::{Config, ConnectionManager, RedisStorage};

use crate::domain::jobs::AnalyticsJob;

pub type AnalyticsQueue = RedisStorage<AnalyticsJob, ConnectionManager>;

/// How long a cron slot's idempotency key lives: far longer than one slot, so N replicas enqueue once.
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(48 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis")]
    Redis(#[from] apalis_redis::RedisError),
    #[error("enqueue")]
    Push(#[source] apalis::prelude::BoxDynError),
}

pub async fn connect(redis_url: &str, queue_name: &str) -> Result<AnalyticsQueue, QueueError> {
    let conn = apalis_redis::connect(redis_url).await?;
    let config = Config::default()
        .queue(queue_name)
        .idempotency_ttl(Some(IDEMPOTENCY_TTL))
        .heartbeat_interval(Duration::from_secs(5))
        .missed_heartbeats(3);
    Ok(RedisStorage::new(conn).with_config(config))
}

/// Pushes a job, with its idempotency key when it has one.
pub async fn enqueue(queue: &mut AnalyticsQueue, job: AnalyticsJob) -> Result<(), QueueError> {
    let key = job.idempotency_key();
    let mut task = TaskBuilder::new(job);
    if let Some(key) = key {
        task = task.idempotency_key(key);
    }
    queue
        .push_task(task.build())
        .await
        .map_err(|error| QueueError::Push(error.into()))
}

/// The key that tells a worker this Redis still holds the queue it filled.
fn sentinel_key(queue_name: &str) -> String {
    format!("{queue_name}:sentinel")
}

/// Marks the queue as known to this Redis and says whether the mark was missing: the Redis is new, or it
/// lost its data, and jobs that PostgreSQL records as pending must be queued again.
pub async fn claim_fresh(redis_url: &str, queue_name: &str) -> Result<bool, QueueError> {
    let client = redis::Client::open(redis_url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let set: Option<String> = redis::cmd("SET")
        .arg(sentinel_key(queue_name))
        .arg(chrono::Utc::now().to_rfc3339())
        .arg("NX")
        .query_async(&mut conn)
        .await?;
    Ok(set.is_some())
}

/// Checks that Redis answers, within two seconds.
pub async fn ping(redis_url: &str) -> Result<(), QueueError> {
    let ping = async {
        let client = redis::Client::open(redis_url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(result) => result.map(|_| ()).map_err(QueueError::from),
        Err(_) => Err(QueueError::Push("Redis did not answer within 2 s".into())),
    }
}

/// The worker replicas registered on the queue and their last heartbeats (Unix seconds), from the sorted set
/// apalis-redis keeps them in (`<queue>:workers`). Read directly: apalis' own listing answers an empty fleet
/// with a JSON object its parser refuses.
pub async fn workers(redis_url: &str, queue_name: &str) -> Result<Vec<(String, i64)>, QueueError> {
    let client = redis::Client::open(redis_url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let entries: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(format!("{queue_name}:workers"))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut conn)
        .await?;
    Ok(entries
        .into_iter()
        .map(|(name, seen)| (name, seen as i64))
        .collect())
}
