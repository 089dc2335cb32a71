//! The producer's one error type, mapped in one place to the contract's status codes and JSON bodies.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde_json::json;
use shared_models::http::{error_response, AuthError};

use crate::validation::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    MalformedJson(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the receipt is not valid")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn forbidden(permission: &str) -> Self {
        ApiError::Auth(AuthError::Forbidden(permission.to_owned()))
    }
}

impl From<diesel::r2d2::PoolError> for ApiError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        ApiError::Unavailable(error.to_string())
    }
}

impl From<DieselError> for ApiError {
    fn from(error: DieselError) -> Self {
        match &error {
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | DieselError::DatabaseError(DatabaseErrorKind::UnableToSendCommand, _) => {
                ApiError::Unavailable(error.to_string())
            }
            _ => ApiError::Internal(error.to_string()),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(error.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Auth(error) => error.status_code(),
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let message = self.to_string();
        match self {
            ApiError::MalformedJson(_) => error_response(status, "malformed_json", &message, None),
            ApiError::PayloadTooLarge(_) => error_response(status, "payload_too_large", &message, None),
            ApiError::Validation(details) => error_response(
                status,
                "validation_failed",
                &format!("{message}: {} problem(s), see details", details.len()),
                Some(json!({ "details": details })),
            ),
            ApiError::BadRequest(_) => error_response(status, "bad_request", &message, None),
            ApiError::Conflict(_) => error_response(status, "transaction_conflict", &message, None),
            ApiError::NotFound(_) => error_response(status, "not_found", &message, None),
            ApiError::Auth(error) => error.error_response(),
            ApiError::Unavailable(cause) => {
                log::error!("database unavailable: {cause}");
                error_response(
                    status,
                    "unavailable",
                    "the database cannot take the request right now; nothing was accepted, retry later",
                    None,
                )
            }
            ApiError::Internal(cause) => {
                log::error!("internal error: {cause}");
                error_response(status, "internal", "internal error", None)
            }
        }
    }
}
