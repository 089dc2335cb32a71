//! The HTTP layer both services are built from: one error type, token authentication and access rules,
//! the extractors and replies the OpenAPI documents are generated from, paging, the operator's endpoints,
//! and the server builder.

pub mod auth;
pub mod connections;
pub mod error;
pub mod extract;
pub mod observe;
pub mod openapi;
pub mod ops;
pub mod paging;
pub mod rate_limit;
pub mod reply;
pub mod routes;
pub mod service;
pub mod tabular;
pub mod token_cache;

pub use error::ApiError;

use actix_web::web;

use crate::store::PgPool;

/// Runs blocking diesel work on actix's blocking pool, off the async executor.
pub async fn with_db<T, F>(pool: &PgPool, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut diesel::PgConnection) -> Result<T, ApiError> + Send + 'static,
{
    let pool = pool.clone();
    web::block(move || {
        let mut conn = pool.get()?;
        work(&mut conn)
    })
    .await?
}

/// Like [`with_db`], with every statement of `work` reading the same snapshot (a read-only, repeatable-read
/// transaction), so an answer built from several queries (a page of places and their figures, a summary) is
/// consistent even while the consumer stores receipts.
pub async fn with_snapshot<T, F>(pool: &PgPool, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut diesel::PgConnection) -> Result<T, ApiError> + Send + 'static,
{
    with_db(pool, move |conn| {
        conn.build_transaction().read_only().repeatable_read().run(work)
    })
    .await
}
