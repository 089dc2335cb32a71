//! `GET /api/jobs/` and `GET /api/jobs/{id}/` (admin): recompute jobs and their state.

use actix_web::web;
use paperclip::actix::{api_v2_operation, Apiv2Schema};
use paperclip::v2::models::DefaultParameterRaw;
use serde::{Deserialize, Serialize};
use shared_models::jobs::{self, JobRecord};
use shared_models::web::auth::{Admins, Caller};
use shared_models::web::extract::{ApiQuery, QueryParameters, ResourceId};
use shared_models::web::{with_db, ApiError};
use uuid::Uuid;

use crate::startup::AppState;

/// A recompute job's state.
///
/// `queued`, `running`, `retrying`, `done` or `failed`, with attempts and the last error.
#[api_v2_operation(operation_id = "job", tags("Jobs"))]
pub async fn detail(
    _caller: Caller<Admins>,
    id: ResourceId,
    state: web::Data<AppState>,
) -> Result<web::Json<JobRecord>, ApiError> {
    let id = Uuid::parse_str(&id.0).map_err(|_| ApiError::NotFound(format!("no job {}", id.0)))?;
    let job = with_db(&state.pool, move |conn| Ok(jobs::find(conn, id)?)).await?;
    job.map(web::Json)
        .ok_or_else(|| ApiError::NotFound(format!("no job {id}")))
}

/// Which jobs to list.
#[derive(Debug, Deserialize, Apiv2Schema)]
pub struct ListQuery {
    /// `queued`, `running`, `retrying`, `done` or `failed` (the default).
    status: Option<String>,
}

/// The states a job can be in.
const JOB_STATUSES: [&str; 5] = ["queued", "running", "retrying", "done", "failed"];

impl QueryParameters for ListQuery {
    fn document(parameter: &mut DefaultParameterRaw) {
        if parameter.name == "status" {
            parameter.enum_ = JOB_STATUSES.iter().map(|status| (*status).into()).collect();
        }
    }
}

/// Jobs in one status, newest first.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct JobList {
    pub count: usize,
    pub results: Vec<JobRecord>,
}

/// List recompute jobs.
///
/// Jobs in one status (default `failed`), newest first, at most 500.
#[api_v2_operation(operation_id = "list_jobs", tags("Jobs"))]
pub async fn list(
    _caller: Caller<Admins>,
    query: ApiQuery<ListQuery>,
    state: web::Data<AppState>,
) -> Result<web::Json<JobList>, ApiError> {
    let status = query.0.status.unwrap_or_else(|| "failed".into());
    if !JOB_STATUSES.contains(&status.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "status must be one of {}",
            JOB_STATUSES.join(", ")
        )));
    }
    let rows = with_db(&state.pool, move |conn| {
        Ok(jobs::list_by_status(conn, &status, 500)?)
    })
    .await?;
    Ok(web::Json(JobList {
        count: rows.len(),
        results: rows,
    }))
}
