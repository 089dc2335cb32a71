//! The consumer's configuration: environment variables (or flags), each with a local-stack default.

use std::time::Duration;

use clap::Args;
use shared_models::config::{AuthConfig, DatabaseConfig, HttpConfig, KafkaConfig, RedisConfig};

#[derive(Debug, Clone, Args)]
pub struct ConsumerConfig {
    /// Address the HTTP API listens on.
    #[arg(long, env = "CONSUMER_ADDR", default_value = "127.0.0.1:8001")]
    pub addr: String,
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub kafka: KafkaConfig,
    #[command(flatten)]
    pub redis: RedisConfig,
    #[command(flatten)]
    pub http: HttpConfig,
    #[command(flatten)]
    pub auth: AuthConfig,
    #[command(flatten)]
    pub ingest: IngestConfig,
}

/// The Kafka consumer group.
#[derive(Debug, Clone, Args)]
pub struct IngestConfig {
    /// Kafka consumer group id.
    #[arg(long, env = "KAFKA_GROUP_ID", default_value = "receipts-consumer")]
    pub group_id: String,
    /// Most messages stored in one database transaction.
    #[arg(long, env = "CONSUMER_BATCH_SIZE", default_value_t = 1000)]
    pub batch_size: usize,
    /// Longest wait for a batch to fill, in milliseconds.
    #[arg(long, env = "CONSUMER_BATCH_MS", default_value_t = 250)]
    pub batch_ms: u64,
    /// Transactions a batch is split into, by merchant, and stored at the same time, each on its own
    /// database connection.
    #[arg(long, env = "CONSUMER_STORE_SHARDS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub store_shards: u16,
    /// Attempts to store a batch before its messages are tried one by one and failures dead-lettered.
    #[arg(long, env = "CONSUMER_STORE_ATTEMPTS", default_value_t = 5)]
    pub store_attempts: u32,
    /// How long the group waits for a silent member (a crashed process) before giving its partitions to
    /// the others, in milliseconds. tansu 0.6 counts the time a member spends in a rebalance as silence, so
    /// much below 20 s its rebalances never settle (docs/reliability.md).
    #[arg(long, env = "KAFKA_SESSION_TIMEOUT_MS", default_value_t = 30000)]
    pub session_timeout_ms: u64,
    /// How often the consumer lag on `/metrics` is refreshed (librdkafka statistics), in milliseconds.
    #[arg(long, env = "CONSUMER_LAG_INTERVAL_MS", default_value_t = 5000)]
    pub lag_interval_ms: u64,
    /// Least time between two recompute jobs from one consumer, in milliseconds: the hour buckets written
    /// meanwhile go together in the next job. Analytics count a receipt as soon as it is stored; the jobs
    /// check its hours against the receipts stored since each hour's last check, so more frequent jobs read
    /// the same receipts in smaller pieces.
    #[arg(long, env = "CONSUMER_RECOMPUTE_INTERVAL_MS", default_value_t = 10000)]
    pub recompute_interval_ms: u64,
}

impl IngestConfig {
    /// The longest wait for a batch to fill.
    pub fn batch_wait(&self) -> Duration {
        Duration::from_millis(self.batch_ms)
    }
}
