//! The producer's configuration: environment variables (or flags), each with a local-stack default.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;
use rust_decimal::Decimal;
use shared_models::config::{AuthConfig, DatabaseConfig, HttpConfig, KafkaConfig};

#[derive(Debug, Clone, Args)]
pub struct ProducerConfig {
    /// Address the HTTP API listens on.
    #[arg(long, env = "PRODUCER_ADDR", default_value = "127.0.0.1:8000")]
    pub addr: String,
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub kafka: KafkaConfig,
    #[command(flatten)]
    pub http: HttpConfig,
    #[command(flatten)]
    pub auth: AuthConfig,
    #[command(flatten)]
    pub rate_limit: RateLimitConfig,
    /// An admin token to store (hashed) at start, for a fresh deployment's first requests.
    #[arg(long, env = "BOOTSTRAP_ADMIN_TOKEN", hide_env_values = true)]
    pub bootstrap_admin_token: Option<String>,
    #[command(flatten)]
    pub intake: IntakeConfig,
    #[command(flatten)]
    pub relay: RelayConfig,
}

/// The optional per-token rate limit (off by default).
#[derive(Debug, Clone, Args)]
pub struct RateLimitConfig {
    /// Requests per second each API token may make on average; 0 turns the limit off.
    #[arg(
        long = "rate-limit-per-second",
        env = "RATE_LIMIT_PER_SECOND",
        default_value_t = 0.0
    )]
    pub per_second: f64,
    /// Requests a token may make at once above that rate.
    #[arg(long = "rate-limit-burst", env = "RATE_LIMIT_BURST", default_value_t = 50)]
    pub burst: u32,
}

/// Limits and rules of receipt intake.
#[derive(Debug, Clone, Args)]
pub struct IntakeConfig {
    /// Largest request body accepted, in bytes (413 above it).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// How far total_amount may differ from the sum of the line amounts.
    #[arg(long, env = "TOTAL_TOLERANCE", default_value = "0.01")]
    pub total_tolerance: Decimal,
    /// How far in the future a receipt's timestamp may be, in seconds.
    #[arg(long, env = "MAX_FUTURE_SKEW_SECONDS", default_value_t = 600)]
    pub max_future_skew_seconds: u64,
    /// The earliest receipt timestamp accepted (RFC 3339).
    #[arg(long, env = "EARLIEST_TIMESTAMP", default_value = "2000-01-01T00:00:00Z")]
    pub earliest_timestamp: DateTime<Utc>,
    /// How much of a rejected body the receipt log keeps, in bytes.
    #[arg(long, env = "REJECTED_BODY_LOG_BYTES", default_value_t = 4096)]
    pub rejected_body_log_bytes: usize,
    /// Most receipts written in one transaction by group commit (a batch request is never split, so a
    /// group can hold one batch more than this).
    #[arg(long, env = "INTAKE_GROUP_MAX_RECEIPTS", default_value_t = 500)]
    pub group_max_receipts: usize,
    /// Groups written at the same time, each on its own database connection (keep it below
    /// DATABASE_POOL_SIZE). One writer makes the largest groups and the least work per receipt
    /// (docs/decisions.md, "One intake writer").
    #[arg(long, env = "INTAKE_GROUP_WRITERS", default_value_t = 1)]
    pub group_writers: usize,
    /// Most receipts intake holds at once, queued for a writer or being written; a request that would
    /// take it past this is answered 503 at once (a batch larger than this is taken only when nothing else is).
    #[arg(long, env = "INTAKE_QUEUE_RECEIPTS", default_value_t = 4096)]
    pub queue_receipts: usize,
}

/// The outbox relay that publishes accepted receipts to Kafka.
#[derive(Debug, Clone, Args)]
pub struct RelayConfig {
    /// Most outbox rows published per transaction (a claim takes what is there, up to this many).
    #[arg(long, env = "RELAY_BATCH_SIZE", default_value_t = 1000)]
    pub relay_batch_size: i64,
    /// Pause after a claim that found fewer rows than a batch holds (the outbox drained), in milliseconds.
    #[arg(long, env = "RELAY_POLL_MS", default_value_t = 200)]
    pub relay_poll_ms: u64,
    /// How long the relay waits for the broker's acknowledgement of a message, in milliseconds.
    #[arg(long, env = "KAFKA_MESSAGE_TIMEOUT_MS", default_value_t = 15000)]
    pub kafka_message_timeout_ms: u64,
    /// How often the pipeline reconcile runs, in seconds: each pass checks what fell due since the last,
    /// so shorter intervals read the same publications in smaller pieces.
    #[arg(long, env = "RECONCILE_INTERVAL_SECONDS", default_value_t = 5)]
    pub reconcile_interval_seconds: u64,
    /// How long after publication a receipt must have reached the consumer before it is published again,
    /// in seconds.
    #[arg(long, env = "RECONCILE_GRACE_SECONDS", default_value_t = 120)]
    pub reconcile_grace_seconds: u64,
}

impl RelayConfig {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.relay_poll_ms)
    }

    pub fn reconcile_interval(&self) -> Duration {
        Duration::from_secs(self.reconcile_interval_seconds)
    }

    pub fn reconcile_grace(&self) -> Duration {
        Duration::from_secs(self.reconcile_grace_seconds)
    }
}
