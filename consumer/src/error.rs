//! The consumer's one error type, mapped in one place to the contract's status codes and JSON bodies.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use shared_models::http::{error_response, AuthError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
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
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Auth(error) => error.status_code(),
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            ApiError::BadRequest(message) => error_response(status, "bad_request", message, None),
            ApiError::NotFound(message) => error_response(status, "not_found", message, None),
            ApiError::Auth(error) => error.error_response(),
            ApiError::Unavailable(cause) => {
                log::error!("dependency unavailable: {cause}");
                error_response(
                    status,
                    "unavailable",
                    "a dependency is unavailable; retry later",
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
