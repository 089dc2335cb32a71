//! `GET /api/analytics/` and `POST /api/analytics/recompute/`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::json;
use shared_models::http::{Access, Authenticated, PageRequest};
use shared_models::jobs::{self, AnalyticsJob, AnalyticsWork};
use shared_models::queue;
use shared_models::schema::{jobs as job_table, places};

use crate::analytics::{self, Scope};
use crate::error::ApiError;
use crate::routes::{parse_period, with_db, READERS};
use crate::startup::AppState;

#[derive(Debug, Deserialize)]
pub struct AnalyticsQuery {
    from: Option<String>,
    to: Option<String>,
    place_id: Option<String>,
    category: Option<String>,
    page: Option<i64>,
    page_size: Option<i64>,
}

/// `GET /api/analytics/`: the summary over every place in scope, and a page of per-place figures.
pub async fn overview(
    auth: Authenticated,
    req: HttpRequest,
    query: web::Query<AnalyticsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = auth.require(READERS)?;
    let period = parse_period(query.from.as_deref(), query.to.as_deref())?;
    let page = PageRequest::new(query.page, query.page_size).map_err(ApiError::BadRequest)?;
    let scope = Scope {
        merchant_id: principal.merchant_scope().map(str::to_owned),
        place_id: query.place_id.clone(),
        category: query
            .category
            .as_deref()
            .map(shared_models::receipt::normalise_category),
        places: None,
    };
    let (count, summary, results, computed_at) = with_db(&state, move |conn| {
        let in_scope = || {
            let mut query = places::table.into_boxed();
            if let Some(merchant) = &scope.merchant_id {
                query = query.filter(places::merchant_id.eq(merchant.clone()));
            }
            if let Some(place) = &scope.place_id {
                query = query.filter(places::place_id.eq(place.clone()));
            }
            query
        };
        let count: i64 = in_scope().count().get_result(conn)?;
        let page_places: Vec<(String, Option<String>)> = in_scope()
            .order(places::place_id.asc())
            .offset(page.offset())
            .limit(page.page_size)
            .select((places::place_id, places::place_name))
            .load(conn)?;
        let summary = analytics::figures(conn, &scope, &period, false)?
            .remove("*")
            .unwrap_or_default();
        let page_scope = Scope {
            places: Some(page_places.iter().map(|(id, _)| id.clone()).collect()),
            ..scope.clone()
        };
        let mut per_place = analytics::figures(conn, &page_scope, &period, true)?;
        let results: Vec<serde_json::Value> = page_places
            .into_iter()
            .map(|(place_id, place_name)| {
                let figures = per_place.remove(&place_id).unwrap_or_default();
                let mut body = serde_json::to_value(figures.to_body()).unwrap_or_default();
                if let Some(object) = body.as_object_mut() {
                    object.insert("place_id".into(), json!(place_id));
                    object.insert("place_name".into(), json!(place_name));
                }
                body
            })
            .collect();
        let computed_at = analytics::computed_at(conn, &scope)?.unwrap_or_else(Utc::now);
        Ok((count, summary, results, computed_at))
    })
    .await?;
    let (next, previous) = page.links(&req, count);
    Ok(HttpResponse::Ok().json(json!({
        "period": { "from": period.from, "to": period.to },
        "computed_at": computed_at,
        "summary": summary.to_body(),
        "count": count,
        "next": next,
        "previous": previous,
        "results": results,
    })))
}

#[derive(Debug, Default, Deserialize)]
struct RecomputeRequest {
    place_id: Option<String>,
}

/// `POST /api/analytics/recompute/` (admin): enqueue a rebuild of the rollups, of one place or of all.
pub async fn recompute(
    auth: Authenticated,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    auth.require(Access::ADMINS)?;
    let request: RecomputeRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RecomputeRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|error| ApiError::BadRequest(format!("the body is not valid: {error}")))?
    };
    let job = AnalyticsJob::new(AnalyticsWork::Rebuild {
        place_id: request.place_id,
    });
    let record = job.clone();
    with_db(&state, move |conn| Ok(jobs::record_queued(conn, &record)?)).await?;
    let mut analytics_queue = queue::connect(&state.redis_url, &state.queue_name)
        .await
        .map_err(|error| ApiError::Unavailable(error.to_string()))?;
    let job_id = job.job_id;
    if let Err(error) = queue::enqueue(&mut analytics_queue, job).await {
        let message = error.to_string();
        with_db(&state, move |conn| {
            diesel::update(job_table::table.find(job_id))
                .set((job_table::status.eq("failed"), job_table::last_error.eq(message)))
                .execute(conn)?;
            Ok(())
        })
        .await?;
        return Err(ApiError::Unavailable(error.to_string()));
    }
    Ok(HttpResponse::Accepted().json(json!({ "job_id": job_id, "status": "queued" })))
}
