//! The worker's one error type: what a job can fail with, and what can stop a worker from starting.

use shared_models::queue::QueueError;
use shared_models::store::DbError;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("database")]
    Database(#[from] diesel::result::Error),
    #[error("database pool")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("database setup")]
    Setup(#[from] DbError),
    #[error("no place {0}")]
    UnknownPlace(String),
    #[error("blocking task")]
    Task(#[from] tokio::task::JoinError),
    #[error("analytics queue")]
    Queue(#[from] QueueError),
    #[error("metrics endpoint")]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
    #[error("HOURLY_SCHEDULE is not a cron expression")]
    Schedule(#[from] cron::error::Error),
    #[error("retry back-off")]
    Backoff(#[from] apalis::layers::retry::backoff::InvalidBackoff),
    #[error("apalis worker")]
    Run(#[from] apalis::prelude::WorkerError),
}
