//! Token management (admin only): `POST /api/tokens/`, `GET /api/tokens/`, `DELETE /api/tokens/{id}/`.

use std::str::FromStr;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use shared_models::auth::{self, Role, TokenError};
use shared_models::http::{Access, Authenticated};
use uuid::Uuid;

use crate::error::ApiError;
use crate::routes::{parse_json, with_db};
use crate::startup::AppState;
use crate::validation::FieldError;

#[derive(Debug, Deserialize)]
struct NewToken {
    role: String,
    merchant_id: Option<String>,
    name: Option<String>,
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::MerchantMismatch => ApiError::Validation(vec![FieldError::new(
                "merchant_id",
                "merchant_mismatch",
                error.to_string(),
            )]),
            TokenError::Database(error) => error.into(),
        }
    }
}

pub async fn create(
    auth: Authenticated,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    auth.require(Access::ADMINS)?;
    let request: NewToken = parse_json(&body)?;
    let role = Role::from_str(&request.role).map_err(|error| {
        ApiError::Validation(vec![FieldError::new("role", "invalid_choice", error.to_string())])
    })?;
    let (record, secret) = with_db(&state, move |conn| {
        Ok(auth::create_token(
            conn,
            role,
            request.merchant_id.as_deref(),
            request.name.as_deref(),
        )?)
    })
    .await?;
    Ok(HttpResponse::Created().json(json!({
        "id": record.id,
        "token": secret,
        "role": record.role,
        "merchant_id": record.merchant_id,
        "name": record.name,
        "created_at": record.created_at,
    })))
}

pub async fn list(auth: Authenticated, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    auth.require(Access::ADMINS)?;
    let tokens = with_db(&state, |conn| Ok(auth::list_tokens(conn)?)).await?;
    Ok(HttpResponse::Ok().json(json!({ "count": tokens.len(), "results": tokens })))
}

pub async fn revoke(
    auth: Authenticated,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    auth.require(Access::ADMINS)?;
    let id = Uuid::parse_str(&path).map_err(|_| ApiError::NotFound(format!("no token {path}")))?;
    if with_db(&state, move |conn| Ok(auth::revoke_token(conn, id)?)).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound(format!("no token {id}")))
    }
}
