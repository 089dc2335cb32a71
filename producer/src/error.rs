//! The producer's one error type, mapped in one place to the contract's status codes and JSON bodies.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use paperclip::v2::models::{DefaultOperationRaw, DefaultSchemaRaw};
use paperclip::v2::schema::Apiv2Errors;
use shared_models::http::{error_response, AuthError, ErrorBody, FieldError};
use shared_models::openapi::{define, document_errors, BodyError, SERVER_ERRORS};

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

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge(limit) => ApiError::PayloadTooLarge(limit),
            BodyError::Unreadable(_) | BodyError::Malformed(_) => ApiError::MalformedJson(error.to_string()),
        }
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
        let body = match self {
            ApiError::MalformedJson(_) => ErrorBody::new("malformed_json", &message),
            ApiError::PayloadTooLarge(_) => ErrorBody::new("payload_too_large", &message),
            ApiError::Validation(details) => ErrorBody {
                details: Some(details.clone()),
                ..ErrorBody::new(
                    "validation_failed",
                    &format!("{message}: {} problem(s), see details", details.len()),
                )
            },
            ApiError::BadRequest(_) => ErrorBody::new("bad_request", &message),
            ApiError::Conflict(_) => ErrorBody::new("transaction_conflict", &message),
            ApiError::NotFound(_) => ErrorBody::new("not_found", &message),
            ApiError::Auth(error) => return error.error_response(),
            ApiError::Unavailable(cause) => {
                log::error!("database unavailable: {cause}");
                ErrorBody::new(
                    "unavailable",
                    "the database cannot take the request right now; nothing was accepted, retry later",
                )
            }
            ApiError::Internal(cause) => {
                log::error!("internal error: {cause}");
                ErrorBody::new("internal", "internal error")
            }
        };
        error_response(status, body)
    }
}

/// Every handler can fail with the database unavailable or an internal error; what else an endpoint
/// answers is documented by its extractors and body types.
impl Apiv2Errors for ApiError {
    fn update_error_definitions(op: &mut DefaultOperationRaw) {
        document_errors(op, SERVER_ERRORS);
    }

    fn update_definitions(definitions: &mut BTreeMap<String, DefaultSchemaRaw>) {
        define::<ErrorBody>(definitions);
    }
}
