//! HTTP handlers, a file per resource.

pub mod checks;
pub mod ops;
pub mod tokens;

use actix_web::http::Method;
use shared_models::web::routes::ApiRoute;

/// Every `/api/` endpoint of the producer; who may call each is its handler's `Caller` rule.
pub fn api_routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::new(Method::POST, "/checks/", checks::submit),
        ApiRoute::new(Method::GET, "/checks/", checks::list),
        ApiRoute::new(Method::POST, "/checks/batch/", checks::submit_batch),
        ApiRoute::new(Method::GET, "/checks/{transaction_id}/", checks::status),
        ApiRoute::new(Method::POST, "/tokens/", tokens::create),
        ApiRoute::new(Method::GET, "/tokens/", tokens::list),
        ApiRoute::new(Method::DELETE, "/tokens/{id}/", tokens::revoke),
    ]
}
