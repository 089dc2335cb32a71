//! What an operator sees of the fleet: worker replicas and their heartbeats (from what apalis keeps in Redis),
//! the recompute jobs by state with the latest failures, the last hourly slots, and the outbox backlog.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use paperclip::actix::Apiv2Schema;
use serde::Serialize;
use shared_models::domain::jobs::JobStatus;
use shared_models::store;
use shared_models::store::jobs::JobRecord;
use shared_models::store::schema::hourly_runs;

/// A worker replica, as it registered in Redis.
#[derive(Debug, Clone, Serialize, Apiv2Schema)]
pub struct WorkerReplica {
    pub name: String,
    /// The last heartbeat it sent; a replica silent for more than 15 s is taken for dead and its jobs handed on.
    pub last_heartbeat: Option<DateTime<Utc>>,
}

/// How many jobs are in one state.
#[derive(Debug, Clone, Serialize, Apiv2Schema)]
pub struct JobCount {
    pub status: String,
    pub count: i64,
}

/// One hourly cron slot and how often it ran.
#[derive(Debug, Clone, Serialize, Apiv2Schema, Queryable)]
pub struct HourlySlot {
    pub slot: DateTime<Utc>,
    /// 1 when the slot ran once, as it should; more only when a replica died mid-run and another finished it.
    pub runs: i32,
    pub buckets: i64,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The jobs, the hourly slots and the outbox, from PostgreSQL.
pub struct Ledger {
    pub jobs: Vec<JobCount>,
    pub recent_failures: Vec<JobRecord>,
    pub hourly_slots: Vec<HourlySlot>,
    pub outbox_backlog: i64,
}

/// Reads the ledger: job counts by state, the ten latest failures, the 24 latest hourly slots and the outbox
/// rows still waiting for Kafka.
pub fn ledger(conn: &mut PgConnection) -> QueryResult<Ledger> {
    let counts = store::jobs::counts(conn)?
        .into_iter()
        .map(|(status, count)| JobCount {
            status: status.as_str().to_owned(),
            count,
        })
        .collect();
    let recent_failures = store::jobs::list_by_status(conn, JobStatus::Failed, 10)?;
    let hourly_slots = hourly_runs::table
        .order(hourly_runs::slot.desc())
        .limit(24)
        .select((
            hourly_runs::slot,
            hourly_runs::runs,
            hourly_runs::buckets,
            hourly_runs::finished_at,
        ))
        .load(conn)?;
    let outbox_backlog = store::outbox::backlog(conn)?;
    Ok(Ledger {
        jobs: counts,
        recent_failures,
        hourly_slots,
        outbox_backlog,
    })
}
