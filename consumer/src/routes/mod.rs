//! HTTP handlers, a file per resource.

pub mod analytics;
pub mod jobs;
pub mod ops;
pub mod places;

use actix_web::http::Method;
use actix_web::web;
use diesel::PgConnection;
use shared_models::auth::Role;
use shared_models::http::{query_instant, Access, AccessRule, ApiRoute};

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

/// Places and analytics: every role; a merchant sees its own places only.
#[derive(Debug)]
pub struct Readers;

impl AccessRule for Readers {
    const ACCESS: Access = Access {
        roles: &Role::ALL,
        merchant_scoped: true,
    };
}

/// Every `/api/` endpoint of the consumer; who may call each is its handler's `Caller` rule.
pub fn api_routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::new(Method::GET, "/places/", places::list),
        ApiRoute::new(Method::GET, "/places/{place_id}/", places::detail),
        ApiRoute::new(Method::GET, "/places/{place_id}/analytics/", places::analytics),
        ApiRoute::new(Method::GET, "/analytics/", analytics::overview),
        ApiRoute::new(Method::POST, "/analytics/recompute/", analytics::recompute),
        ApiRoute::new(Method::GET, "/jobs/", jobs::list),
        ApiRoute::new(Method::GET, "/jobs/{id}/", jobs::detail),
    ]
}
