//! `POST /api/checks/`, `GET /api/checks/` and `GET /api/checks/{transaction_id}/`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use shared_models::auth::{Principal, Role};
use shared_models::http::{Authenticated, PageRequest};

use crate::error::ApiError;
use crate::intake::{self, LogFilter, Outcome};
use crate::routes::with_db;
use crate::startup::AppState;
use crate::validation::{self, FieldError};

/// Reads the body up to the configured limit.
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|error| ApiError::MalformedJson(format!("the body could not be read: {error}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What a rejected submission leaves in the receipt log.
struct Rejection {
    merchant_id: Option<String>,
    transaction_id: Option<String>,
    reasons: Value,
    body: Option<String>,
}

async fn log_rejection(state: &web::Data<AppState>, rejection: Rejection, reason: &str) {
    state
        .metrics
        .receipts
        .with_label_values(&["rejected", reason])
        .inc();
    let logged = with_db(state, move |conn| {
        Ok(intake::log_attempt(
            conn,
            rejection.merchant_id.as_deref(),
            rejection.transaction_id.as_deref(),
            "rejected",
            Some(rejection.reasons),
            rejection.body.as_deref(),
        )?)
    })
    .await;
    if let Err(error) = logged {
        log::error!("could not log a rejected receipt: {error}");
    }
}

fn truncated(body: &[u8], limit: usize) -> String {
    let cut = &body[..body.len().min(limit)];
    String::from_utf8_lossy(cut).into_owned()
}

/// The merchant a submission is for: the token's own, or for an admin the receipt's `merchant_id`.
fn submitting_merchant(principal: &Principal, named: Option<&str>) -> Result<String, ApiError> {
    match principal.role {
        Role::Merchant => {
            let own = principal.merchant_id.clone().unwrap_or_default();
            match named {
                Some(other) if other != own => {
                    Err(ApiError::forbidden("merchant_id of the token's own merchant"))
                }
                _ => Ok(own),
            }
        }
        Role::Admin => named.map(str::to_owned).ok_or_else(|| {
            ApiError::Validation(vec![FieldError::new(
                "merchant_id",
                "required",
                "an admin submits on behalf of a merchant: merchant_id is required",
            )])
        }),
        Role::Analyst => Err(ApiError::forbidden("merchant or admin")),
    }
}

/// `POST /api/checks/`: submit one receipt.
pub async fn submit(
    auth: Authenticated,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = auth.require(&[Role::Merchant, Role::Admin])?.clone();
    let token_merchant = principal.merchant_id.clone();
    let reject = |reasons: Value, body: Option<String>| Rejection {
        merchant_id: token_merchant.clone(),
        transaction_id: None,
        reasons,
        body,
    };

    let body = match read_body(payload, state.intake.max_body_bytes).await {
        Ok(body) => body,
        Err(error) => {
            let reasons = json!([{ "code": "payload_too_large", "message": error.to_string() }]);
            log_rejection(&state, reject(reasons, None), "payload_too_large").await;
            return Err(error);
        }
    };
    let keep = state.intake.rejected_body_log_bytes;
    let object: Map<String, Value> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(object)) => object,
        Ok(_) => {
            let error = ApiError::MalformedJson("the body must be a JSON object (one receipt)".into());
            let reasons = json!([{ "code": "malformed_json", "message": error.to_string() }]);
            log_rejection(
                &state,
                reject(reasons, Some(truncated(&body, keep))),
                "malformed_json",
            )
            .await;
            return Err(error);
        }
        Err(parse_error) => {
            let error = ApiError::MalformedJson(format!("the body is not valid JSON: {parse_error}"));
            let reasons = json!([{ "code": "malformed_json", "message": error.to_string() }]);
            log_rejection(
                &state,
                reject(reasons, Some(truncated(&body, keep))),
                "malformed_json",
            )
            .await;
            return Err(error);
        }
    };

    let transaction_id = object
        .get("transaction_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let now = Utc::now();
    let valid = match validation::validate(&object, &state.rules, now) {
        Ok(valid) => valid,
        Err(details) => {
            let mut rejection = reject(json!(details), Some(truncated(&body, keep)));
            rejection.transaction_id = transaction_id;
            log_rejection(&state, rejection, "validation_failed").await;
            return Err(ApiError::Validation(details));
        }
    };
    let merchant_id = match submitting_merchant(&principal, valid.merchant_id.as_deref()) {
        Ok(merchant_id) => merchant_id,
        Err(error) => {
            let reasons = json!([{ "code": "merchant_not_allowed", "message": error.to_string() }]);
            let mut rejection = reject(reasons, None);
            rejection.transaction_id = transaction_id;
            log_rejection(&state, rejection, "merchant_not_allowed").await;
            return Err(error);
        }
    };

    let state_ = state.clone();
    let outcome = with_db(&state, move |conn| {
        let place_id = match valid.place_id.clone() {
            Some(place_id) => place_id,
            None => match intake::sole_place(conn, &merchant_id)? {
                Some(place_id) => place_id,
                None => {
                    let details = vec![FieldError::new(
                        "place_id",
                        "required",
                        "place_id is required unless the merchant has exactly one place",
                    )];
                    intake::log_attempt(
                        conn,
                        Some(&merchant_id),
                        Some(valid.transaction_id()),
                        "rejected",
                        Some(json!(details)),
                        None,
                    )?;
                    return Err(ApiError::Validation(details));
                }
            },
        };
        let transaction_id = valid.transaction_id().to_owned();
        Ok((
            transaction_id,
            intake::submit(conn, &merchant_id, valid.into_receipt(place_id), now)?,
        ))
    })
    .await;
    let (transaction_id, outcome) = match outcome {
        Ok(result) => result,
        Err(error) => {
            let reason = if matches!(error, ApiError::Validation(_)) {
                "validation_failed"
            } else {
                "unavailable"
            };
            state_
                .metrics
                .receipts
                .with_label_values(&["rejected", reason])
                .inc();
            return Err(error);
        }
    };
    let metric =
        |outcome: &str, reason: &str| state.metrics.receipts.with_label_values(&[outcome, reason]).inc();
    match outcome {
        Outcome::Accepted { received_at } => {
            metric("accepted", "");
            Ok(HttpResponse::Accepted().json(json!({
                "transaction_id": transaction_id, "status": "accepted", "received_at": received_at,
            })))
        }
        Outcome::Duplicate { received_at } => {
            metric("duplicate", "");
            Ok(HttpResponse::Ok().json(json!({
                "transaction_id": transaction_id, "status": "duplicate", "received_at": received_at,
            })))
        }
        Outcome::Conflict => {
            metric("conflict", "transaction_conflict");
            Err(ApiError::Conflict(format!(
                "transaction_id {transaction_id} was already accepted with different content"
            )))
        }
        Outcome::ForeignPlace => {
            metric("rejected", "place_forbidden");
            Err(ApiError::forbidden(
                "ownership of the place (it belongs to another merchant)",
            ))
        }
    }
}

/// `GET /api/checks/{transaction_id}/`: the receipt's log.
pub async fn status(
    auth: Authenticated,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = auth.require(&[Role::Merchant, Role::Admin])?;
    let scope = principal.merchant_scope().map(str::to_owned);
    let transaction_id = path.into_inner();
    let lookup_id = transaction_id.clone();
    let (accepted, attempts) = with_db(&state, move |conn| {
        Ok(intake::receipt_status(conn, scope.as_deref(), &lookup_id)?)
    })
    .await?;
    if accepted.is_none() && attempts.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no receipt with transaction_id {transaction_id}"
        )));
    }
    let status = match &accepted {
        Some(_) => "accepted".to_owned(),
        None => attempts
            .last()
            .map(|entry| entry.outcome.clone())
            .unwrap_or_default(),
    };
    Ok(HttpResponse::Ok().json(json!({
        "transaction_id": transaction_id,
        "status": status,
        "merchant_id": accepted.as_ref().map(|a| a.merchant_id.clone()),
        "place_id": accepted.as_ref().map(|a| a.place_id.clone()),
        "received_at": accepted.as_ref().map(|a| a.received_at),
        "published_at": accepted.as_ref().and_then(|a| a.published_at),
        "attempts": attempts,
    })))
}

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    page: Option<i64>,
    page_size: Option<i64>,
}

fn parse_instant(field: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.map(|text| {
        validation::parse_timestamp(text)
            .ok_or_else(|| ApiError::BadRequest(format!("{field} must be an ISO 8601 / RFC 3339 timestamp")))
    })
    .transpose()
}

/// `GET /api/checks/`: the receipt log, paginated.
pub async fn list(
    auth: Authenticated,
    req: HttpRequest,
    query: web::Query<LogQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = auth.require(&[Role::Merchant, Role::Admin])?;
    let page = PageRequest::new(query.page, query.page_size).map_err(ApiError::BadRequest)?;
    if let Some(status) = &query.status {
        if !["accepted", "duplicate", "conflict", "rejected"].contains(&status.as_str()) {
            return Err(ApiError::BadRequest(
                "status must be accepted, duplicate, conflict or rejected".into(),
            ));
        }
    }
    let filter = LogFilter {
        merchant_scope: principal.merchant_scope().map(str::to_owned),
        status: query.status.clone(),
        from: parse_instant("from", query.from.as_deref())?,
        to: parse_instant("to", query.to.as_deref())?,
    };
    let (count, rows) = with_db(&state, move |conn| {
        Ok(intake::list_log(conn, &filter, page.offset(), page.page_size)?)
    })
    .await?;
    let (next, previous) = page.links(&req, count);
    Ok(HttpResponse::Ok()
        .json(json!({ "count": count, "next": next, "previous": previous, "results": rows })))
}
