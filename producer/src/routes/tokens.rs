//! Token management (admin only): `POST /api/tokens/`, `GET /api/tokens/`, `DELETE /api/tokens/{id}/`.

use std::str::FromStr;

use actix_web::http::StatusCode;
use actix_web::web;
use chrono::{DateTime, Utc};
use paperclip::actix::{api_v2_operation, Apiv2Schema, NoContent};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared_models::domain::auth::Role;
use shared_models::domain::text::{text_problem, NOT_BLANK, NO_CONTROL_CHARACTERS};
use shared_models::domain::FieldError;
use shared_models::store::tokens::{self, TokenRecord};
use shared_models::web::auth::{Admins, Caller};
use shared_models::web::extract::{JsonBody, RequestBody, ResourceId};
use shared_models::web::reply::{Replies, Reply};
use shared_models::web::{with_db, ApiError};
use uuid::Uuid;

use crate::startup::AppState;
use crate::validation::MERCHANT_ID_MAX;

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

/// Longest token name.
const NAME_MAX: usize = 200;

impl NewToken {
    /// The role, once every field is known to be storable; otherwise every problem.
    fn validate(&self) -> Result<Role, ApiError> {
        let mut problems = Vec::new();
        let role = Role::from_str(&self.role)
            .map_err(|error| problems.push(FieldError::new("role", "invalid_choice", error.to_string())))
            .ok();
        for (field, value, min, max) in [
            ("merchant_id", &self.merchant_id, 1, MERCHANT_ID_MAX),
            ("name", &self.name, 0, NAME_MAX),
        ] {
            if let Some((code, message)) = value.as_deref().and_then(|value| text_problem(value, min, max)) {
                problems.push(FieldError::new(field, code, message));
            }
        }
        match role {
            Some(role) if problems.is_empty() => Ok(role),
            _ => Err(ApiError::Validation(problems)),
        }
    }

    /// States the limits above in the OpenAPI document, and that a merchant token needs a `merchant_id`
    /// which the other roles may not have.
    pub fn refine_document(document: &mut serde_json::Value) {
        let Some(schema) = document["components"]["schemas"]["NewToken"].as_object_mut() else {
            return;
        };
        let name = json!({
            "type": "string", "maxLength": NAME_MAX, "pattern": NO_CONTROL_CHARACTERS, "nullable": true,
            "description": "A label for people, such as the integration's name."
        });
        let merchant = json!({
            "type": "object",
            "required": ["role", "merchant_id"],
            "properties": {
                "role": { "type": "string", "enum": [Role::Merchant.as_str()] },
                "merchant_id": {
                    "type": "string", "minLength": 1, "maxLength": MERCHANT_ID_MAX, "pattern": NOT_BLANK,
                    "description": "The merchant the token acts for."
                },
                "name": name
            }
        });
        let staff = json!({
            "type": "object",
            "required": ["role"],
            "properties": {
                "role": { "type": "string", "enum": [Role::Analyst.as_str(), Role::Admin.as_str()] },
                "merchant_id": {
                    "nullable": true, "enum": [null],
                    "description": "Analyst and admin tokens belong to no merchant."
                },
                "name": name
            }
        });
        schema.remove("properties");
        schema.remove("required");
        schema.insert("oneOf".into(), json!([merchant, staff]));
    }
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

/// Create an API token.
#[api_v2_operation(operation_id = "create_token", tags("Tokens"))]
pub async fn create(
    _caller: Caller<Admins>,
    body: JsonBody<NewToken>,
    state: web::Data<AppState>,
) -> Result<Reply<CreatedToken>, ApiError> {
    let request = body.parse(state.intake.max_body_bytes).await?;
    let role = request.validate()?;
    let (record, secret) = with_db(&state.pool, move |conn| {
        Ok(tokens::create_token(
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
    let tokens = with_db(&state.pool, |conn| Ok(tokens::list_tokens(conn)?)).await?;
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
    if with_db(&state.pool, move |conn| Ok(tokens::revoke_token(conn, id)?)).await? {
        Ok(NoContent)
    } else {
        Err(ApiError::NotFound(format!("no token {id}")))
    }
}
