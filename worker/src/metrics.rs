//! The worker's `/metrics`: apalis's Prometheus layer records `tasks_total` and `task_duration_seconds` by
//! worker, queue and status; this module serves them and adds the jobs admins see, by status (the queue's
//! depth is `analytics_jobs{status="queued"}` plus `"retrying"`).

use std::net::SocketAddr;
use std::time::Duration;

use diesel::prelude::*;
use metrics_exporter_prometheus::PrometheusBuilder;
use shared_models::db::PgPool;
use shared_models::schema::jobs;

const STATUSES: [&str; 5] = ["queued", "running", "retrying", "done", "failed"];

/// Serves Prometheus metrics on `addr` and refreshes the job gauges every 15 seconds.
pub fn serve(addr: SocketAddr, pool: PgPool) -> Result<(), String> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|error| error.to_string())?;
    tokio::spawn(async move {
        loop {
            let pool = pool.clone();
            let counts = tokio::task::spawn_blocking(move || -> Result<Vec<(String, i64)>, String> {
                let mut conn = pool.get().map_err(|error| error.to_string())?;
                jobs::table
                    .group_by(jobs::status)
                    .select((jobs::status, diesel::dsl::count_star()))
                    .load(&mut conn)
                    .map_err(|error| error.to_string())
            })
            .await;
            if let Ok(Ok(counts)) = counts {
                for status in STATUSES {
                    let count = counts
                        .iter()
                        .find(|(name, _)| name == status)
                        .map_or(0, |(_, count)| *count);
                    metrics::gauge!("analytics_jobs", "status" => status).set(count as f64);
                }
            }
            tokio::time::sleep(Duration::from_secs(15)).await;
        }
    });
    log::info!("worker metrics on http://{addr}/metrics");
    Ok(())
}
