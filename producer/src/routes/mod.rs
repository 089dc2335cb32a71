//! HTTP handlers, a file per resource.

pub mod batch;
pub mod checks;
pub mod ops;
pub mod receipt_log;
pub mod tokens;

use actix_web::http::Method;
use shared_models::web::routes::ApiRoute;

/// Every `/api/` endpoint of the producer; who may call each is its handler's `Caller` rule.
pub fn api_routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::new(Method::POST, "/checks/", checks::submit),
        ApiRoute::new(Method::GET, "/checks/", receipt_log::list),
        ApiRoute::new(Method::POST, "/checks/batch/", batch::submit_batch),
        ApiRoute::new(Method::GET, "/checks/{transaction_id}/", receipt_log::status),
        ApiRoute::new(Method::POST, "/tokens/", tokens::create),
        ApiRoute::new(Method::GET, "/tokens/", tokens::list),
        ApiRoute::new(Method::DELETE, "/tokens/{id}/", tokens::revoke),
    ]
}
