//! `GET /api/jobs/` and `GET /api/jobs/{id}/` (admin): recompute jobs and their state.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use shared_models::http::{Access, Authenticated};
use shared_models::jobs;
use uuid::Uuid;

use crate::error::ApiError;
use crate::routes::with_db;
use crate::startup::AppState;

pub async fn detail(
    auth: Authenticated,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    auth.require(Access::ADMINS)?;
    let id = Uuid::parse_str(&path).map_err(|_| ApiError::NotFound(format!("no job {path}")))?;
    let job = with_db(&state, move |conn| Ok(jobs::find(conn, id)?)).await?;
    job.map(|job| HttpResponse::Ok().json(job))
        .ok_or_else(|| ApiError::NotFound(format!("no job {id}")))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
}

/// Jobs in one status (default `failed`), newest first, at most 500.
pub async fn list(
    auth: Authenticated,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    auth.require(Access::ADMINS)?;
    let status = query.status.clone().unwrap_or_else(|| "failed".into());
    if !["queued", "running", "retrying", "done", "failed"].contains(&status.as_str()) {
        return Err(ApiError::BadRequest(
            "status must be queued, running, retrying, done or failed".into(),
        ));
    }
    let rows = with_db(&state, move |conn| Ok(jobs::list_by_status(conn, &status, 500)?)).await?;
    Ok(HttpResponse::Ok().json(json!({ "count": rows.len(), "results": rows })))
}
