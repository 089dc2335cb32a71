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
    /// How often an idle replica looks for new jobs, in milliseconds (how soon a recompute starts).
    #[arg(long, env = "WORKER_POLL_MS", default_value_t = 250)]
    pub poll_ms: u64,
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
