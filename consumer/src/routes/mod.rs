//! HTTP handlers, a file per resource.

pub mod analytics;
pub mod fleet;
pub mod jobs;
pub mod ops;
pub mod places;
pub mod timeseries;

use actix_web::http::Method;
use shared_models::web::extract::query_instant;
use shared_models::web::routes::ApiRoute;
use shared_models::web::ApiError;

use crate::analytics::Period;

/// `from` (inclusive) and `to` (exclusive) from the query string: 400 when unparsable. A period whose end
/// comes before its start holds nothing, so its figures are zeros.
pub fn parse_period(from: Option<&str>, to: Option<&str>) -> Result<Period, ApiError> {
    Ok(Period {
        from: query_instant("from", from)?,
        to: query_instant("to", to)?,
    })
}

/// Every `/api/` endpoint of the consumer; who may call each is its handler's `Caller` rule.
pub fn api_routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::new(Method::GET, "/places/", places::list),
        ApiRoute::new(Method::GET, "/places/{place_id}/", places::detail),
        ApiRoute::new(Method::GET, "/places/{place_id}/analytics/", places::analytics),
        ApiRoute::new(Method::GET, "/analytics/", analytics::overview),
        ApiRoute::new(Method::GET, "/analytics/timeseries/", timeseries::series),
        ApiRoute::new(Method::POST, "/analytics/recompute/", analytics::recompute),
        ApiRoute::new(Method::GET, "/jobs/", jobs::list),
        ApiRoute::new(Method::GET, "/jobs/{id}/", jobs::detail),
        ApiRoute::new(Method::GET, "/me/", fleet::me),
        ApiRoute::new(Method::GET, "/fleet/", fleet::fleet),
    ]
}
