//! Token management (admin only): `POST /api/tokens/`, `GET /api/tokens/`, `DELETE /api/tokens/{id}/`.

use std::str::FromStr;

use actix_web::http::StatusCode;
use actix_web::web;
use chrono::{DateTime, Utc};
use paperclip::actix::{api_v2_operation, Apiv2Schema, NoContent};
use serde::{Deserialize, Serialize};
use shared_models::auth::{self, Role, TokenError, TokenRecord};
use shared_models::http::{Admins, Caller, FieldError};
use shared_models::openapi::{JsonBody, Replies, Reply, RequestBody, ResourceId};
use uuid::Uuid;

use crate::error::ApiError;
use crate::routes::with_db;
use crate::startup::AppState;

/// A token to create.
#[derive(Debug, Deserialize, Apiv2Schema)]
#[openapi(example = r#"{"role": "merchant", "merchant_id": "m-42", "name": "m-42 till integration"}"#)]
pub struct NewToken {
    /// `merchant`, `analyst` or `admin`.
    role: String,
    /// Required for `merchant` (the merchant it acts for); not allowed for the other roles.
    merchant_id: Option<String>,
    /// A label for people, such as the integration's name.
    name: Option<String>,
}

impl RequestBody for NewToken {
    const REJECTIONS: &'static [(u16, &'static str)] = &[(
        422,
        "`validation_failed`: an unknown role, or `merchant_id` missing for a merchant or given for another role",
    )];
}

/// A created token. `token` is shown this once; only its hash is stored.
#[derive(Debug, Serialize, Apiv2Schema)]
#[openapi(
    example = r#"{"id": "0b7e2f0e-5a43-4c61-9a57-8f1f2b0f6d11", "token": "rcpt_5f0c...e91a", "role": "merchant", "merchant_id": "m-42", "name": "m-42 till integration", "created_at": "2026-11-24T12:00:00Z"}"#
)]
pub struct CreatedToken {
    pub id: Uuid,
    /// The secret, for `Authorization: Bearer <token>`.
    pub token: String,
    pub role: String,
    pub merchant_id: Option<String>,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Replies for CreatedToken {
    const STATUSES: &'static [(u16, &'static str)] =
        &[(201, "Created; the only answer that shows the secret")];
}

/// Every token, without secrets.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct TokenList {
    pub count: usize,
    pub results: Vec<TokenRecord>,
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

/// Create an API token.
#[api_v2_operation(operation_id = "create_token", tags("Tokens"))]
pub async fn create(
    _caller: Caller<Admins>,
    body: JsonBody<NewToken>,
    state: web::Data<AppState>,
) -> Result<Reply<CreatedToken>, ApiError> {
    let request = body.parse(state.intake.max_body_bytes).await?;
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
    Ok(Reply::new(
        StatusCode::CREATED,
        CreatedToken {
            id: record.id,
            token: secret,
            role: record.role,
            merchant_id: record.merchant_id,
            name: record.name,
            created_at: record.created_at,
        },
    ))
}

/// List API tokens.
///
/// Every token with its role, merchant and whether it is revoked; never the secrets.
#[api_v2_operation(operation_id = "list_tokens", tags("Tokens"))]
pub async fn list(
    _caller: Caller<Admins>,
    state: web::Data<AppState>,
) -> Result<web::Json<TokenList>, ApiError> {
    let tokens = with_db(&state, |conn| Ok(auth::list_tokens(conn)?)).await?;
    Ok(web::Json(TokenList {
        count: tokens.len(),
        results: tokens,
    }))
}

/// Revoke an API token.
///
/// Every replica stops accepting it within `TOKEN_CACHE_SECONDS` (at most 60 s).
#[api_v2_operation(operation_id = "revoke_token", tags("Tokens"))]
pub async fn revoke(
    _caller: Caller<Admins>,
    id: ResourceId,
    state: web::Data<AppState>,
) -> Result<NoContent, ApiError> {
    let id = Uuid::parse_str(&id.0).map_err(|_| ApiError::NotFound(format!("no token {}", id.0)))?;
    if with_db(&state, move |conn| Ok(auth::revoke_token(conn, id)?)).await? {
        Ok(NoContent)
    } else {
        Err(ApiError::NotFound(format!("no token {id}")))
    }
}
