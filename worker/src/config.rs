//! The worker's configuration: environment variables (or flags), each with a local-stack default.

use clap::Args;
use shared_models::config::{DatabaseConfig, RedisConfig};

#[derive(Debug, Clone, Args)]
pub struct WorkerConfig {
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub redis: RedisConfig,
    /// When the reconcile runs, as a cron expression with seconds (default: at the top of every hour).
    #[arg(long, env = "HOURLY_SCHEDULE", default_value = "0 0 * * * *")]
    pub hourly_schedule: String,
    /// How many hours back the reconcile looks for newly stored receipts.
    #[arg(long, env = "RECONCILE_LOOKBACK_HOURS", default_value_t = 2)]
    pub reconcile_lookback_hours: u32,
    /// Retries of a failing job (with exponential back-off) before it is kept as failed.
    #[arg(long, env = "JOB_RETRIES", default_value_t = 4)]
    pub job_retries: usize,
    /// How many days after it was queued a job that succeeded stays in the `jobs` table; the hourly reconcile
    /// forgets older ones.
    #[arg(long, env = "JOB_HISTORY_DAYS", default_value_t = 7)]
    pub job_history_days: u32,
    /// How often an idle replica looks for new jobs, in milliseconds (how soon a recompute starts).
    #[arg(long, env = "WORKER_POLL_MS", default_value_t = 250)]
    pub poll_ms: u64,
    /// How much of the time a check of the consumer's buckets keeps the database busy, in percent: after each
    /// slice of buckets it pauses for the rest (100: no pauses).
    #[arg(long, env = "WORKER_CHECK_DUTY_PERCENT", default_value_t = 25,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub check_duty_percent: u32,
    /// Jobs one replica runs at once.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 2)]
    pub concurrency: usize,
    /// Where to serve Prometheus metrics (`/metrics`), e.g. `0.0.0.0:9100`; none when unset.
    #[arg(long, env = "WORKER_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// This replica's name in apalis (defaults to a random one).
    #[arg(long, env = "WORKER_NAME")]
    pub worker_name: Option<String>,
}
