//! The worker's `/metrics`: apalis's Prometheus layer records `tasks_total` and `task_duration_seconds` by
//! worker, queue and status; this module serves them and adds the jobs admins see, by status (the queue's
//! depth is `analytics_jobs{status="queued"}` plus `"retrying"`).

use std::net::SocketAddr;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use shared_models::store::jobs;
use shared_models::store::PgPool;

use crate::error::WorkerError;

/// Serves Prometheus metrics on `addr` and refreshes the job gauges every 15 seconds.
pub fn serve(addr: SocketAddr, pool: PgPool) -> Result<(), WorkerError> {
    PrometheusBuilder::new().with_http_listener(addr).install()?;
    tokio::spawn(async move {
        loop {
            let pool = pool.clone();
            let counts = tokio::task::spawn_blocking(move || -> Result<_, WorkerError> {
                let mut conn = pool.get()?;
                Ok(jobs::counts(&mut conn)?)
            })
            .await;
            if let Ok(Ok(counts)) = counts {
                for (status, count) in counts {
                    metrics::gauge!("analytics_jobs", "status" => status.as_str()).set(count as f64);
                }
            }
            tokio::time::sleep(Duration::from_secs(15)).await;
        }
    });
    log::info!("worker metrics on http://{addr}/metrics");
    Ok(())
}
