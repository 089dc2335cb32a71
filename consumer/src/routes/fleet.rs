//! `GET /api/me/` (who the token is) and `GET /api/fleet/` (admin): what the console shows.

use actix_web::web;
use chrono::DateTime;
use paperclip::actix::{api_v2_operation, Apiv2Schema};
use serde::Serialize;
use shared_models::queue;
use shared_models::store::jobs::JobRecord;
use shared_models::web::auth::{Admins, AnyRole, Caller};
use shared_models::web::{with_db, ApiError};

use crate::fleet::{self, HourlySlot, JobCount, WorkerReplica};
use crate::startup::AppState;

/// The calling token's role and merchant.
#[derive(Debug, Serialize, Apiv2Schema)]
#[openapi(example = r#"{"role": "merchant", "merchant_id": "m-42"}"#)]
pub struct Me {
    /// `merchant`, `analyst` or `admin`.
    pub role: String,
    /// The merchant a merchant token acts for; null for the other roles.
    pub merchant_id: Option<String>,
}

/// Who am I.
///
/// The calling token's role and merchant, so a client can show what the token may see.
#[api_v2_operation(operation_id = "me", tags("Fleet"))]
pub async fn me(caller: Caller<AnyRole>) -> Result<web::Json<Me>, ApiError> {
    let principal = caller.into_principal();
    Ok(web::Json(Me {
        role: principal.role.as_str().to_owned(),
        merchant_id: principal.merchant_id,
    }))
}

/// The worker fleet and the pipeline's queues.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct Fleet {
    /// Worker replicas registered on the analytics queue, with their heartbeats.
    pub workers: Vec<WorkerReplica>,
    /// Jobs by state (`queued` + `retrying` is the queue's depth).
    pub jobs: Vec<JobCount>,
    /// The ten latest failed jobs, with their errors.
    pub recent_failures: Vec<JobRecord>,
    /// The 24 latest hourly cron slots.
    pub hourly_slots: Vec<HourlySlot>,
    /// Messages of the receipts topic this consumer replica has not stored yet, per partition it holds.
    pub consumer_lag: i64,
    /// Accepted receipts waiting in the producer's outbox for Kafka.
    pub outbox_backlog: i64,
}

/// The worker fleet.
///
/// Worker replicas with their last heartbeat, jobs by state with the latest failures and their errors, the
/// last hourly slots with their run counts, consumer lag and outbox backlog.
#[api_v2_operation(operation_id = "fleet", tags("Fleet"))]
pub async fn fleet(
    _caller: Caller<Admins>,
    state: web::Data<AppState>,
) -> Result<web::Json<Fleet>, ApiError> {
    let workers = queue::workers(&state.redis_url, &state.queue_name)
        .await
        .map_err(|error| ApiError::Unavailable("the job queue", Box::new(error)))?
        .into_iter()
        .map(|(name, last_heartbeat)| WorkerReplica {
            name,
            last_heartbeat: DateTime::from_timestamp(last_heartbeat, 0),
        })
        .collect();
    let ledger = with_db(&state.pool, |conn| Ok(fleet::ledger(conn)?)).await?;
    Ok(web::Json(Fleet {
        workers,
        jobs: ledger.jobs,
        recent_failures: ledger.recent_failures,
        hourly_slots: ledger.hourly_slots,
        consumer_lag: state.lag.total(),
        outbox_backlog: ledger.outbox_backlog,
    }))
}
