//! `GET /api/analytics/` and `POST /api/analytics/recompute/`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use chrono::{DateTime, Utc};
use paperclip::actix::{api_v2_operation, Apiv2Schema};
use paperclip::v2::models::DefaultParameterRaw;
use serde::{Deserialize, Serialize};
use shared_models::domain::jobs::{AnalyticsJob, AnalyticsWork, JobStatus};
use shared_models::domain::text::{text_problem, NOT_BLANK};
use shared_models::domain::FieldError;
use shared_models::queue;
use shared_models::store::jobs;
use shared_models::store::places::{self, Rows};
use shared_models::web::auth::{Admins, Caller, Readers};
use shared_models::web::extract::{
    document_format, document_period, ApiQuery, JsonBody, QueryParameters, RequestBody,
};
use shared_models::web::openapi::refine_property;
use shared_models::web::paging::PageRequest;
use shared_models::web::reply::{Replies, Reply};
use shared_models::web::tabular::{Format, Table, Tabular};
use shared_models::web::{with_db, with_snapshot, ApiError};
use uuid::Uuid;

use crate::analytics::{self, AnalyticsBody, Period, Scope};
use crate::routes::parse_period;
use crate::startup::AppState;

impl QueryParameters for AnalyticsQuery {
    fn document(parameter: &mut DefaultParameterRaw) {
        PageRequest::document(parameter);
        document_period(parameter);
        document_format(parameter);
    }
}

/// The period, filters and page of the analytics overview.
#[derive(Debug, Deserialize, Apiv2Schema)]
pub struct AnalyticsQuery {
    /// Start of the period, inclusive (RFC 3339; any instant, not only whole hours). Absent: no lower bound.
    from: Option<String>,
    /// End of the period, exclusive (RFC 3339). Absent: no upper bound.
    to: Option<String>,
    /// Only this place.
    place_id: Option<String>,
    /// Only this category (any case).
    category: Option<String>,
    /// Page of per-place results, from 1.
    page: Option<i64>,
    /// Places per page, 1-500 (default 50).
    page_size: Option<i64>,
    /// `json` (the default) or `csv`: one row per place in scope, every page at once.
    format: Option<Format>,
}

/// One place's figures in the overview.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct PlaceFigures {
    pub place_id: String,
    pub place_name: Option<String>,
    #[serde(flatten)]
    pub figures: AnalyticsBody,
}

/// The overview: a summary over every place in scope and a page of per-place figures.
#[derive(Debug, Serialize, Apiv2Schema)]
#[openapi(
    example = r#"{"period": {"from": "2026-11-01T00:00:00Z", "to": null}, "computed_at": "2026-11-24T12:30:02Z", "summary": {"total_purchases": 412, "total_amount": 5321.40, "average_receipt": 12.92, "taxes_amount": {"total_vat": 483.76, "total_tips": 151.00}, "category_analytics": {"coffee": {"total_spent": 2210.50, "average_receipt": 6.12}}}, "count": 1, "next": null, "previous": null, "results": [{"place_id": "cafe-central", "place_name": "Cafe Central", "total_purchases": 412, "total_amount": 5321.40, "average_receipt": 12.92, "taxes_amount": {"total_vat": 483.76, "total_tips": 151.00}, "category_analytics": {"coffee": {"total_spent": 2210.50, "average_receipt": 6.12}}}]}"#
)]
pub struct AnalyticsOverview {
    pub period: Period,
    /// When the figures in scope were last computed.
    pub computed_at: DateTime<Utc>,
    /// The same figures as a place's, over every place in scope.
    pub summary: AnalyticsBody,
    /// Places in scope.
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<PlaceFigures>,
}

impl Table for AnalyticsOverview {
    fn header() -> &'static [&'static str] {
        &[
            "place_id",
            "place_name",
            "total_purchases",
            "total_amount",
            "average_receipt",
            "total_vat",
            "total_tips",
        ]
    }

    fn rows(&self) -> Vec<Vec<String>> {
        self.results
            .iter()
            .map(|place| {
                let figures = &place.figures;
                vec![
                    place.place_id.clone(),
                    place.place_name.clone().unwrap_or_default(),
                    figures.total_purchases.to_string(),
                    figures.total_amount.amount().to_string(),
                    figures.average_receipt.amount().to_string(),
                    figures.taxes_amount.total_vat.amount().to_string(),
                    figures.taxes_amount.total_tips.amount().to_string(),
                ]
            })
            .collect()
    }
}

/// Analytics overview.
///
/// The analytics of every place in the caller's scope over any period: a summary and a page of per-place
/// figures, exact for any instants, zeros for an empty period. As CSV (`?format=csv` or `Accept: text/csv`):
/// one row per place in scope, every page at once.
#[api_v2_operation(operation_id = "analytics_overview", tags("Analytics"))]
pub async fn overview(
    caller: Caller<Readers>,
    req: HttpRequest,
    query: ApiQuery<AnalyticsQuery>,
    state: web::Data<AppState>,
) -> Result<Tabular<AnalyticsOverview>, ApiError> {
    let principal = caller.principal();
    let query = query.0;
    let format = Format::of(query.format, &req);
    let period = parse_period(query.from.as_deref(), query.to.as_deref())?;
    let page = PageRequest::new(query.page, query.page_size)?;
    let scope = Scope {
        merchant_id: principal.merchant_scope().map(str::to_owned),
        place_id: query.place_id.clone(),
        category: query
            .category
            .as_deref()
            .map(shared_models::domain::text::normalise_category),
        places: None,
    };
    let (count, summary, results, computed_at) = with_snapshot(&state.pool, move |conn| {
        let rows = match format {
            Format::Json => Rows::Page {
                offset: page.offset(),
                limit: page.page_size,
            },
            Format::Csv => Rows::All,
        };
        let (count, page_places) = places::list(
            conn,
            scope.merchant_id.as_deref(),
            scope.place_id.as_deref(),
            None,
            rows,
        )?;
        let summary = analytics::summary(conn, &scope, &period)?;
        let mut per_place = if scope.place_id.is_some() {
            // One place named: the summary read its rows, and they are its figures.
            page_places
                .iter()
                .map(|place| (place.place_id.clone(), summary.clone()))
                .collect()
        } else {
            let page_scope = Scope {
                places: Some(page_places.iter().map(|place| place.place_id.clone()).collect()),
                ..scope.clone()
            };
            analytics::per_place(conn, &page_scope, &period)?
        };
        let results: Vec<PlaceFigures> = page_places
            .into_iter()
            .map(|place| PlaceFigures {
                figures: per_place.remove(&place.place_id).unwrap_or_default().to_body(),
                place_id: place.place_id,
                place_name: place.place_name,
            })
            .collect();
        let computed_at = analytics::computed_at(conn, &scope)?.unwrap_or_else(Utc::now);
        Ok((count, summary, results, computed_at))
    })
    .await?;
    let (next, previous) = page.links(&req, count);
    Ok(Tabular {
        format,
        body: AnalyticsOverview {
            period,
            computed_at,
            summary: summary.to_body(),
            count,
            next,
            previous,
            results,
        },
    })
}

/// What to rebuild: one place, or (empty body) every place.
#[derive(Debug, Deserialize, Apiv2Schema)]
#[openapi(example = r#"{"place_id": "cafe-central"}"#)]
pub struct RecomputeRequest {
    /// The place to rebuild; absent for all places.
    place_id: Option<String>,
}

impl RequestBody for RecomputeRequest {
    const REQUIRED: bool = false;
    const REJECTIONS: &'static [(u16, &'static str)] = &[(
        422,
        "`validation_failed`: `place_id` is empty, longer than 64 characters or holds control characters",
    )];
}

/// Longest place id, as receipts name them.
const PLACE_ID_MAX: usize = 64;

impl RecomputeRequest {
    /// States the limits of `place_id` in the OpenAPI document.
    pub fn refine_document(document: &mut serde_json::Value) {
        refine_property(
            document,
            "RecomputeRequest",
            "place_id",
            serde_json::json!({
                "minLength": 1, "maxLength": PLACE_ID_MAX, "pattern": NOT_BLANK, "nullable": true
            }),
        );
    }
}

/// A queued recompute job.
#[derive(Debug, Serialize, Apiv2Schema)]
#[openapi(example = r#"{"job_id": "6f1d2c1e-2b7a-4b7e-9e59-0f8d3c6b1a20", "status": "queued"}"#)]
pub struct RecomputeQueued {
    /// Follow it at `GET /api/jobs/{id}/`.
    pub job_id: Uuid,
    pub status: String,
}

impl Replies for RecomputeQueued {
    const STATUSES: &'static [(u16, &'static str)] = &[(202, "Queued for the worker fleet")];
}

/// Most bytes a recompute request may have.
const RECOMPUTE_BODY_LIMIT: usize = 4096;

/// Recompute analytics.
///
/// Enqueues a rebuild of the hourly rollups, of one place or of all, for the worker fleet.
#[api_v2_operation(operation_id = "recompute_analytics", tags("Analytics"))]
pub async fn recompute(
    _caller: Caller<Admins>,
    body: JsonBody<RecomputeRequest>,
    state: web::Data<AppState>,
) -> Result<Reply<RecomputeQueued>, ApiError> {
    let request = body.parse(RECOMPUTE_BODY_LIMIT).await?;
    if let Some((code, message)) = request
        .place_id
        .as_deref()
        .and_then(|place_id| text_problem(place_id, 1, PLACE_ID_MAX))
    {
        return Err(ApiError::Validation(vec![FieldError::new(
            "place_id", code, message,
        )]));
    }
    let job = AnalyticsJob::new(AnalyticsWork::Rebuild {
        place_id: request.place_id,
    });
    let record = job.clone();
    with_db(&state.pool, move |conn| Ok(jobs::record_queued(conn, &record)?)).await?;
    let job_id = job.job_id;
    let enqueued = async {
        let mut analytics_queue = queue::connect(&state.redis_url, &state.queue_name).await?;
        queue::enqueue(&mut analytics_queue, job).await
    }
    .await;
    if let Err(error) = enqueued {
        let message = error.to_string();
        with_db(&state.pool, move |conn| {
            Ok(jobs::mark_unqueued(conn, job_id, &message)?)
        })
        .await?;
        return Err(ApiError::Unavailable("the job queue", Box::new(error)));
    }
    Ok(Reply::new(
        StatusCode::ACCEPTED,
        RecomputeQueued {
            job_id,
            status: JobStatus::Queued.as_str().to_owned(),
        },
    ))
}
