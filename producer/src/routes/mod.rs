//! HTTP handlers, a file per resource.

pub mod checks;
pub mod ops;
pub mod tokens;

use actix_web::http::Method;
use actix_web::web;
use diesel::PgConnection;
use shared_models::auth::Role;
use shared_models::http::{Access, AccessRule, ApiRoute};

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

/// Receipt submission and the receipt log: merchants (their own receipts) and admins.
#[derive(Debug)]
pub struct Submitters;

impl AccessRule for Submitters {
    const ACCESS: Access = Access {
        roles: &[Role::Merchant, Role::Admin],
        merchant_scoped: true,
    };
}

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
