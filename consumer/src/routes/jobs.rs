//! `GET /api/jobs/` and `GET /api/jobs/{id}/` (admin): recompute jobs and their state.

use actix_web::web;
use paperclip::actix::{api_v2_operation, Apiv2Schema};
use paperclip::v2::models::DefaultParameterRaw;
use serde::{Deserialize, Serialize};
use shared_models::domain::jobs::JobStatus;
use shared_models::store::jobs::{self, JobRecord};
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

impl QueryParameters for ListQuery {
    fn document(parameter: &mut DefaultParameterRaw) {
        if parameter.name == "status" {
            parameter.enum_ = JobStatus::ALL
                .iter()
                .map(|status| status.as_str().into())
                .collect();
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
    let status = match query.0.status.as_deref() {
        None => JobStatus::Failed,
        Some(text) => JobStatus::parse(text).ok_or_else(|| {
            let names: Vec<&str> = JobStatus::ALL.iter().map(|status| status.as_str()).collect();
            ApiError::BadRequest(format!("status must be one of {}", names.join(", ")))
        })?,
    };
    let rows = with_db(&state.pool, move |conn| {
        Ok(jobs::list_by_status(conn, status, 500)?)
    })
    .await?;
    Ok(web::Json(JobList {
        count: rows.len(),
        results: rows,
    }))
}
