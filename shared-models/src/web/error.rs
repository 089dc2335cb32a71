//! The one error type of both HTTP services, mapped in one place to the contract's status codes and JSON
//! error body. A server-side failure keeps its cause; the request middleware logs it once, with the request
//! id that the client sees in `X-Request-Id`.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue, TryIntoHeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use actix_web_httpauth::headers::www_authenticate::bearer::Bearer;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use paperclip::actix::Apiv2Schema;
use paperclip::v2::models::{DefaultOperationRaw, DefaultSchemaRaw};
use paperclip::v2::schema::Apiv2Errors;
use serde::Serialize;

use crate::domain::FieldError;
use crate::web::openapi::{define, document_errors};

/// A failure's cause, kept for the log.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The contract's error body: a machine `error` code and a human `message`, plus what some errors add.
#[derive(Debug, Clone, Serialize, Apiv2Schema)]
#[openapi(
    example = r#"{"error": "validation_failed", "message": "the receipt is not valid: 1 problem(s), see details", "details": [{"field": "items[0].price", "code": "too_many_decimals", "message": "must have at most 2 decimal places"}]}"#
)]
pub struct ErrorBody {
    /// Machine-readable code: `malformed_json`, `validation_failed`, `invalid_characters`,
    /// `transaction_conflict`, `unauthorized`, `forbidden`, `not_found`, `method_not_allowed`, `bad_request`,
    /// `payload_too_large`, `request_timeout`, `rate_limited`, `unavailable`, `not_ready`, `internal`.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
    /// `validation_failed` and `invalid_characters`: every failing field, not only the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<FieldError>>,
    /// `forbidden`: what the token lacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_permission: Option<String>,
    /// `not_ready`: the dependencies that did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing: Option<Vec<String>>,
    /// `not_ready`: each dependency's state, `ok` or its error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<BTreeMap<String, String>>,
}

impl ErrorBody {
    pub fn new(code: &str, message: &str) -> Self {
        ErrorBody {
            error: code.to_owned(),
            message: message.to_owned(),
            details: None,
            missing_permission: None,
            failing: None,
            checks: None,
        }
    }
}

/// An error answer in the contract's shape.
pub fn error_response(status: StatusCode, body: ErrorBody) -> HttpResponse {
    HttpResponse::build(status).json(body)
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("this endpoint needs `Authorization: Bearer <token>`")]
    Missing,
    #[error("the Authorization header is not `Bearer <token>` or `Token <token>`")]
    Malformed,
    #[error("the token is unknown or revoked")]
    Rejected,
}

/// Everything an HTTP handler or extractor can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    MalformedJson(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// Rules broken by the body, every one of them.
    #[error("the request is not valid: {} problem(s), see details", .0.len())]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{method} is not allowed here; this path allows {allow}")]
    MethodNotAllowed { method: String, allow: String },
    #[error("the request was not received within {0} s")]
    Timeout(u64),
    #[error("too many requests for this token; retry in {0} s")]
    RateLimited(u64),
    #[error(transparent)]
    Unauthorized(AuthFailure),
    #[error("this needs {0}")]
    Forbidden(String),
    #[error("{0} is unavailable")]
    Unavailable(&'static str, #[source] Cause),
    #[error("internal error")]
    Internal(#[source] Cause),
}

impl ApiError {
    /// The contract's machine code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Validation(details) if only_invalid_characters(details) => "invalid_characters",
            ApiError::Validation(_) => "validation_failed",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Conflict(_) => "transaction_conflict",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Timeout(_) => "request_timeout",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Unavailable(..) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// A server-side failure, whose cause the log keeps.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        ApiError::Internal(cause.into())
    }

    /// What each of several requests answers when work done once for all of them failed (`what` says which
    /// work): the same status as that failure, which the log keeps as the cause.
    pub fn shared(what: &'static str, failure: &Arc<ApiError>) -> Self {
        let cause = Box::new(SharedFailure(what, failure.clone()));
        match failure.as_ref() {
            ApiError::Unavailable(dependency, _) => ApiError::Unavailable(dependency, cause),
            _ => ApiError::Internal(cause),
        }
    }

    /// The message and its causes, for the log.
    pub fn chain(&self) -> String {
        crate::report::chain(self)
    }
}

/// Why a request answers with the failure of work it shared with others.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SharedFailure(&'static str, #[source] Arc<ApiError>);

/// Whether every problem is text the services cannot store (U+0000 or another control character).
fn only_invalid_characters(details: &[FieldError]) -> bool {
    !details.is_empty() && details.iter().all(|detail| detail.code == "invalid_characters")
}

impl From<diesel::r2d2::PoolError> for ApiError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        ApiError::Unavailable("the database", Box::new(error))
    }
}

impl From<DieselError> for ApiError {
    fn from(error: DieselError) -> Self {
        match &error {
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | DieselError::DatabaseError(DatabaseErrorKind::UnableToSendCommand, _) => {
                ApiError::Unavailable("the database", Box::new(error))
            }
            _ => ApiError::Internal(Box::new(error)),
        }
    }
}

impl From<crate::store::tokens::TokenError> for ApiError {
    fn from(error: crate::store::tokens::TokenError) -> Self {
        match error {
            crate::store::tokens::TokenError::MerchantMismatch => {
                ApiError::Validation(vec![FieldError::new(
                    "merchant_id",
                    "merchant_mismatch",
                    error.to_string(),
                )])
            }
            crate::store::tokens::TokenError::Database(error) => error.into(),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(Box::new(error))
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
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Unavailable(..) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let message = match self {
            ApiError::Unavailable(what, _) => {
                format!("{what} cannot take the request right now; nothing was changed, retry later")
            }
            ApiError::Internal(_) => {
                "internal error; the request id in X-Request-Id finds it in the log".to_owned()
            }
            other => other.to_string(),
        };
        let mut body = ErrorBody::new(self.code(), &message);
        match self {
            ApiError::Validation(details) => body.details = Some(details.clone()),
            ApiError::Forbidden(permission) => body.missing_permission = Some(permission.clone()),
            _ => {}
        }
        let mut response = error_response(status, body);
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthorized(_) => {
                if let Ok(value) = Bearer::build().realm("receipts").finish().try_into_value() {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            ApiError::MethodNotAllowed { allow, .. } => {
                if let Ok(value) = HeaderValue::from_str(allow) {
                    headers.insert(header::ALLOW, value);
                }
            }
            ApiError::RateLimited(seconds) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
            }
            _ => {}
        }
        response
    }
}

/// Errors any endpoint can answer with, whatever it does.
pub const SERVER_ERRORS: &[(u16, &str)] = &[
    (
        503,
        "`unavailable`: a dependency (PostgreSQL, Redis) cannot take the request, or receipt intake already \
         holds as many receipts as it queues; nothing was changed, retry later",
    ),
    (
        500,
        "`internal`: an unexpected error; the request id in `X-Request-Id` finds it in the log",
    ),
];

/// Every handler can fail with a dependency unavailable or an internal error; what else an endpoint
/// answers is documented by its extractors and body types.
impl Apiv2Errors for ApiError {
    fn update_error_definitions(op: &mut DefaultOperationRaw) {
        document_errors(op, SERVER_ERRORS);
    }

    fn update_definitions(definitions: &mut BTreeMap<String, DefaultSchemaRaw>) {
        define::<ErrorBody>(definitions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_holding_only_unstorable_text_answer_invalid_characters() {
        let nul = FieldError::new("note", "invalid_characters", "must not contain U+0000");
        let price = FieldError::new("items[0].price", "negative", "must not be negative");
        assert_eq!(
            ApiError::Validation(vec![nul.clone()]).code(),
            "invalid_characters"
        );
        assert_eq!(ApiError::Validation(vec![nul, price]).code(), "validation_failed");
    }

    #[test]
    fn the_log_line_keeps_the_cause() {
        let error = ApiError::internal(std::io::Error::other("disk on fire"));
        assert_eq!(error.chain(), "internal error: disk on fire");
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
