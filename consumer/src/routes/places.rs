//! `GET /api/places/`, `GET /api/places/{place_id}/` and `GET /api/places/{place_id}/analytics/`.

use actix_web::{web, HttpRequest};
use chrono::{DateTime, Utc};
use diesel::PgConnection;
use paperclip::actix::{api_v2_operation, Apiv2Schema};
use paperclip::v2::models::DefaultParameterRaw;
use serde::{Deserialize, Serialize};
use shared_models::domain::auth::Principal;
use shared_models::store::places::{self, PlaceRecord, Rows};
use shared_models::web::auth::{Caller, Readers};
use shared_models::web::extract::{document_period, ApiQuery, QueryParameters, ResourceId};
use shared_models::web::paging::PageRequest;
use shared_models::web::{with_db, with_snapshot, ApiError};

use crate::analytics::{self, AnalyticsBody, Period, Scope};
use crate::routes::parse_period;
use crate::startup::AppState;

/// A place (a shop, a till) and its purchase counters.
#[derive(Debug, Clone, Serialize, Apiv2Schema)]
#[openapi(
    example = r#"{"place_id": "cafe-central", "place_name": "Cafe Central", "merchant_id": "m-42", "total_purchases": 1284, "first_purchase_at": "2026-10-01T07:02:11Z", "last_purchase_at": "2026-11-24T12:34:56Z"}"#
)]
pub struct Place {
    pub place_id: String,
    /// The latest non-empty name its receipts gave.
    pub place_name: Option<String>,
    /// The merchant it belongs to: the one whose receipt first named it.
    pub merchant_id: String,
    pub total_purchases: i64,
    pub first_purchase_at: Option<DateTime<Utc>>,
    pub last_purchase_at: Option<DateTime<Utc>>,
}

impl From<PlaceRecord> for Place {
    fn from(record: PlaceRecord) -> Self {
        Place {
            place_id: record.place_id,
            place_name: record.place_name,
            merchant_id: record.merchant_id,
            total_purchases: record.total_purchases,
            first_purchase_at: record.first_purchase_at,
            last_purchase_at: record.last_purchase_at,
        }
    }
}

/// Search and paging of places.
#[derive(Debug, Deserialize, Apiv2Schema)]
pub struct ListQuery {
    /// Part of the place id or name, any case.
    search: Option<String>,
    /// Page number, from 1.
    page: Option<i64>,
    /// Places per page, 1-500 (default 50).
    page_size: Option<i64>,
}

impl QueryParameters for ListQuery {}

/// A page of places, ordered by id.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct PlacePage {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<Place>,
}

/// The place, if the caller may see it; 404 otherwise (a merchant cannot learn that others' places exist).
pub fn visible_place(
    conn: &mut PgConnection,
    principal: &Principal,
    place_id: &str,
) -> Result<Place, ApiError> {
    places::visible(conn, principal.merchant_scope(), place_id)?
        .map(Place::from)
        .ok_or_else(|| ApiError::NotFound(format!("no place {place_id}")))
}

/// List places.
///
/// Places in the caller's scope, with search and DRF-style pages.
#[api_v2_operation(operation_id = "list_places", tags("Places"))]
pub async fn list(
    caller: Caller<Readers>,
    req: HttpRequest,
    query: ApiQuery<ListQuery>,
    state: web::Data<AppState>,
) -> Result<web::Json<PlacePage>, ApiError> {
    let query = query.0;
    let page = PageRequest::new(query.page, query.page_size)?;
    let merchant = caller.principal().merchant_scope().map(str::to_owned);
    let search = query.search;
    let rows = Rows::Page {
        offset: page.offset(),
        limit: page.page_size,
    };
    let (count, rows) = with_snapshot(&state.pool, move |conn| {
        Ok(places::list(
            conn,
            merchant.as_deref(),
            None,
            search.as_deref(),
            rows,
        )?)
    })
    .await?;
    let (next, previous) = page.links(&req, count);
    Ok(web::Json(PlacePage {
        count,
        next,
        previous,
        results: rows.into_iter().map(Place::from).collect(),
    }))
}

/// One place.
#[api_v2_operation(operation_id = "place", tags("Places"))]
pub async fn detail(
    caller: Caller<Readers>,
    place_id: ResourceId,
    state: web::Data<AppState>,
) -> Result<web::Json<Place>, ApiError> {
    let principal = caller.into_principal();
    let place = with_db(&state.pool, move |conn| {
        visible_place(conn, &principal, &place_id.0)
    })
    .await?;
    Ok(web::Json(place))
}

/// The period (and category) of a place's analytics.
#[derive(Debug, Deserialize, Apiv2Schema)]
pub struct PeriodQuery {
    /// Start of the period, inclusive (RFC 3339; any instant, not only whole hours). Absent: no lower bound.
    from: Option<String>,
    /// End of the period, exclusive (RFC 3339). Absent: no upper bound.
    to: Option<String>,
    /// Only this category (any case).
    category: Option<String>,
}

impl QueryParameters for PeriodQuery {
    fn document(parameter: &mut DefaultParameterRaw) {
        document_period(parameter);
    }
}

/// A place's analytics over a period.
#[derive(Debug, Serialize, Apiv2Schema)]
#[openapi(
    example = r#"{"place_id": "cafe-central", "place_name": "Cafe Central", "period": {"from": "2026-11-01T00:00:00Z", "to": "2026-11-24T12:30:00Z"}, "computed_at": "2026-11-24T12:30:02Z", "total_purchases": 412, "total_amount": 5321.40, "average_receipt": 12.92, "taxes_amount": {"total_vat": 483.76, "total_tips": 151.00}, "category_analytics": {"coffee": {"total_spent": 2210.50, "average_receipt": 6.12}}}"#
)]
pub struct PlaceAnalytics {
    pub place_id: String,
    pub place_name: Option<String>,
    pub period: Period,
    /// When the figures were last computed.
    pub computed_at: DateTime<Utc>,
    #[serde(flatten)]
    pub figures: AnalyticsBody,
}

/// A place's analytics.
///
/// The analytics of one place (docs/api.md) over any period: exact for any instants, zeros for an empty
/// period.
#[api_v2_operation(operation_id = "place_analytics", tags("Analytics"))]
pub async fn analytics(
    caller: Caller<Readers>,
    place_id: ResourceId,
    query: ApiQuery<PeriodQuery>,
    state: web::Data<AppState>,
) -> Result<web::Json<PlaceAnalytics>, ApiError> {
    let principal = caller.into_principal();
    let query = query.0;
    let period = parse_period(query.from.as_deref(), query.to.as_deref())?;
    let category = query
        .category
        .as_deref()
        .map(shared_models::domain::text::normalise_category);
    let body = with_snapshot(&state.pool, move |conn| {
        let place = visible_place(conn, &principal, &place_id.0)?;
        let scope = Scope {
            place_id: Some(place.place_id.clone()),
            category,
            ..Scope::default()
        };
        let figures = analytics::summary(conn, &scope, &period)?;
        let computed_at = analytics::computed_at(conn, &scope)?.unwrap_or_else(Utc::now);
        Ok(PlaceAnalytics {
            place_id: place.place_id,
            place_name: place.place_name,
            period,
            computed_at,
            figures: figures.to_body(),
        })
    })
    .await?;
    Ok(web::Json(body))
}
