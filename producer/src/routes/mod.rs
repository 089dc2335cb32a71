//! HTTP handlers, a file per resource.

pub mod checks;
pub mod ops;
pub mod tokens;

use actix_web::web;
use diesel::PgConnection;
use serde::de::DeserializeOwned;

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

/// Parses a small JSON body into `T`, with the contract's 400 for anything else.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|error| ApiError::MalformedJson(format!("the body is not valid: {error}")))
}
