//! HTTP handlers, a file per resource.

pub mod analytics;
pub mod jobs;
pub mod ops;
pub mod places;

use actix_web::http::Method;
use actix_web::web;
use chrono::{DateTime, Utc};
use diesel::PgConnection;
use shared_models::auth::Role;
use shared_models::http::{Access, ApiRoute};

use crate::analytics::Period;
use crate::error::ApiError;
use crate::startup::AppState;

/// Runs blocking diesel work on actix's blocking pool.
pub async fn with_db<T, F>(state: &web::Data<AppState>, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut PgConnection) -> Result<T, ApiError> + Send + 'static,
{
    let pool = state.pool.clone();
    web::block(move || {
        let mut conn = pool.get()?;
        work(&mut conn)
    })
    .await?
}

fn parse_instant(field: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.map(|text| {
        let text = text.trim();
        DateTime::parse_from_rfc3339(text)
            .map(|time| time.with_timezone(&Utc))
            .or_else(|_| {
                chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                    .map(|naive| naive.and_utc())
            })
            .map_err(|_| ApiError::BadRequest(format!("{field} must be an ISO 8601 / RFC 3339 timestamp")))
    })
    .transpose()
}

/// `from` (inclusive) and `to` (exclusive) from the query string: 400 when unparsable or inverted.
pub fn parse_period(from: Option<&str>, to: Option<&str>) -> Result<Period, ApiError> {
    let period = Period {
        from: parse_instant("from", from)?,
        to: parse_instant("to", to)?,
    };
    if let (Some(from), Some(to)) = (period.from, period.to) {
        if from > to {
            return Err(ApiError::BadRequest("from must not be later than to".into()));
        }
    }
    Ok(period)
}

const READERS: Access = Access {
    roles: &[Role::Merchant, Role::Analyst, Role::Admin],
    merchant_scoped: true,
};
const ADMINS: Access = Access {
    roles: &[Role::Admin],
    merchant_scoped: false,
};

/// Every `/api/` endpoint of the consumer, with who may call it.
pub fn api_routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::new(Method::GET, "/places/", READERS, places::list),
        ApiRoute::new(Method::GET, "/places/{place_id}/", READERS, places::detail),
        ApiRoute::new(
            Method::GET,
            "/places/{place_id}/analytics/",
            READERS,
            places::analytics,
        ),
        ApiRoute::new(Method::GET, "/analytics/", READERS, analytics::overview),
        ApiRoute::new(
            Method::POST,
            "/analytics/recompute/",
            ADMINS,
            analytics::recompute,
        ),
        ApiRoute::new(Method::GET, "/jobs/", ADMINS, jobs::list),
        ApiRoute::new(Method::GET, "/jobs/{id}/", ADMINS, jobs::detail),
    ]
}
