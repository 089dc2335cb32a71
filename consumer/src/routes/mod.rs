//! HTTP handlers, a file per resource.

pub mod analytics;
pub mod jobs;
pub mod ops;
pub mod places;

use actix_web::http::Method;
use actix_web::web;
use diesel::PgConnection;
use shared_models::auth::Role;
use shared_models::http::{query_instant, Access, ApiRoute};

use crate::analytics::Period;
use crate::error::ApiError;
use crate::startup::AppState;

/// Runs blocking diesel work on actix's blocking pool.
pub async fn with_db<T, F>(state: &web::Data<AppState>, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut PgConnection) -> Result<T, ApiError> + Send + 'static,
{
    shared_models::http::with_db(&state.pool, work).await
}

/// `from` (inclusive) and `to` (exclusive) from the query string: 400 when unparsable or inverted.
pub fn parse_period(from: Option<&str>, to: Option<&str>) -> Result<Period, ApiError> {
    let period = Period {
        from: query_instant("from", from).map_err(ApiError::BadRequest)?,
        to: query_instant("to", to).map_err(ApiError::BadRequest)?,
    };
    if let (Some(from), Some(to)) = (period.from, period.to) {
        if from > to {
            return Err(ApiError::BadRequest("from must not be later than to".into()));
        }
    }
    Ok(period)
}

pub(crate) const READERS: Access = Access {
    roles: &[Role::Merchant, Role::Analyst, Role::Admin],
    merchant_scoped: true,
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
            Access::ADMINS,
            analytics::recompute,
        ),
        ApiRoute::new(Method::GET, "/jobs/", Access::ADMINS, jobs::list),
        ApiRoute::new(Method::GET, "/jobs/{id}/", Access::ADMINS, jobs::detail),
    ]
}
