//! `POST /api/checks/`, `GET /api/checks/` and `GET /api/checks/{transaction_id}/`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use diesel::Connection;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use shared_models::auth::{Principal, Role};
use shared_models::http::{query_instant, Authenticated, PageRequest};

use crate::error::ApiError;
use crate::intake::{self, LogFilter, Outcome, Verdict};
use crate::routes::with_db;
use crate::startup::AppState;
use crate::validation::FieldError;

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

/// Counts a verdict in `producer_receipts_total`.
fn count(state: &AppState, verdict: &Verdict) {
    let (outcome, reason) = match verdict {
        Verdict::Stored(Outcome::Accepted { .. }) => ("accepted", ""),
        Verdict::Stored(Outcome::Duplicate { .. }) => ("duplicate", ""),
        Verdict::Stored(Outcome::Conflict) => ("conflict", "transaction_conflict"),
        Verdict::Stored(Outcome::ForeignPlace) => ("rejected", "place_forbidden"),
        Verdict::Invalid(_) => ("rejected", "validation_failed"),
        Verdict::Forbidden(_) => ("rejected", "merchant_not_allowed"),
    };
    state.metrics.receipts.with_label_values(&[outcome, reason]).inc();
}

fn foreign_place() -> ApiError {
    ApiError::forbidden("ownership of the place (it belongs to another merchant)")
}

/// Reads the body and parses it as JSON, logging what cannot be read.
async fn read_json(
    state: &web::Data<AppState>,
    principal: &Principal,
    payload: web::Payload,
) -> Result<(Value, String), ApiError> {
    let reject = |reasons: Value, body: Option<String>| Rejection {
        merchant_id: principal.merchant_id.clone(),
        transaction_id: None,
        reasons,
        body,
    };
    let body = match read_body(payload, state.intake.max_body_bytes).await {
        Ok(body) => body,
        Err(error) => {
            let reasons = json!([{ "code": "payload_too_large", "message": error.to_string() }]);
            log_rejection(state, reject(reasons, None), "payload_too_large").await;
            return Err(error);
        }
    };
    let kept = truncated(&body, state.intake.rejected_body_log_bytes);
    match serde_json::from_slice::<Value>(&body) {
        Ok(value) => Ok((value, kept)),
        Err(parse_error) => {
            let error = ApiError::MalformedJson(format!("the body is not valid JSON: {parse_error}"));
            let reasons = json!([{ "code": "malformed_json", "message": error.to_string() }]);
            log_rejection(state, reject(reasons, Some(kept)), "malformed_json").await;
            Err(error)
        }
    }
}

/// `POST /api/checks/`: submit one receipt.
pub async fn submit(
    auth: Authenticated,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = auth.require(&[Role::Merchant, Role::Admin])?.clone();
    let (value, kept) = read_json(&state, &principal, payload).await?;
    let Value::Object(object) = value else {
        let error = ApiError::MalformedJson("the body must be a JSON object (one receipt)".into());
        let reasons = json!([{ "code": "malformed_json", "message": error.to_string() }]);
        let rejection = Rejection {
            merchant_id: principal.merchant_id.clone(),
            transaction_id: None,
            reasons,
            body: Some(kept),
        };
        log_rejection(&state, rejection, "malformed_json").await;
        return Err(error);
    };
    let transaction_id = object
        .get("transaction_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let state_ = state.clone();
    let verdict = with_db(&state, move |conn| {
        Ok(intake::judge(
            conn,
            &principal,
            &object,
            &state_.rules,
            Utc::now(),
            Some(&kept),
        )?)
    })
    .await?;
    count(&state, &verdict);
    match verdict {
        Verdict::Stored(Outcome::Accepted { received_at }) => Ok(HttpResponse::Accepted().json(json!({
            "transaction_id": transaction_id, "status": "accepted", "received_at": received_at,
        }))),
        Verdict::Stored(Outcome::Duplicate { received_at }) => Ok(HttpResponse::Ok().json(json!({
            "transaction_id": transaction_id, "status": "duplicate", "received_at": received_at,
        }))),
        Verdict::Stored(Outcome::Conflict) => Err(ApiError::Conflict(format!(
            "transaction_id {transaction_id} was already accepted with different content"
        ))),
        Verdict::Stored(Outcome::ForeignPlace) => Err(foreign_place()),
        Verdict::Invalid(details) => Err(ApiError::Validation(details)),
        Verdict::Forbidden(_) => Err(ApiError::forbidden("merchant_id of the token's own merchant")),
    }
}

/// Most receipts in one batch.
const MAX_BATCH: usize = 1000;

/// `POST /api/checks/batch/`: up to 1000 receipts (a JSON array, or `{"receipts": [...]}`), each judged on
/// its own, all accepted ones stored in one transaction; the answer lists a status per receipt, in order.
pub async fn submit_batch(
    auth: Authenticated,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = auth.require(&[Role::Merchant, Role::Admin])?.clone();
    let (value, _) = read_json(&state, &principal, payload).await?;
    let receipts = match value {
        Value::Array(receipts) => receipts,
        Value::Object(mut object) => match object.remove("receipts") {
            Some(Value::Array(receipts)) => receipts,
            _ => {
                return Err(ApiError::MalformedJson(
                    "the body must be a list of receipts".into(),
                ))
            }
        },
        _ => {
            return Err(ApiError::MalformedJson(
                "the body must be a list of receipts".into(),
            ))
        }
    };
    if receipts.is_empty() || receipts.len() > MAX_BATCH {
        return Err(ApiError::Validation(vec![FieldError::new(
            "receipts",
            "invalid_length",
            format!("a batch holds 1 to {MAX_BATCH} receipts"),
        )]));
    }
    let state_ = state.clone();
    let verdicts = with_db(&state, move |conn| {
        let now = Utc::now();
        Ok(conn.transaction(|conn| {
            receipts
                .iter()
                .map(|receipt| match receipt {
                    Value::Object(object) => {
                        intake::judge(conn, &principal, object, &state_.rules, now, None)
                    }
                    _ => Ok(Verdict::Invalid(vec![FieldError::new(
                        "",
                        "invalid_type",
                        "a receipt must be an object",
                    )])),
                })
                .collect::<Result<Vec<_>, diesel::result::Error>>()
        })?)
    })
    .await?;
    let results: Vec<Value> = verdicts
        .iter()
        .enumerate()
        .map(|(index, verdict)| {
            count(&state, verdict);
            match verdict {
                Verdict::Stored(Outcome::Accepted { received_at }) => {
                    json!({ "index": index, "status": "accepted", "received_at": received_at })
                }
                Verdict::Stored(Outcome::Duplicate { received_at }) => {
                    json!({ "index": index, "status": "duplicate", "received_at": received_at })
                }
                Verdict::Stored(Outcome::Conflict) => {
                    json!({ "index": index, "status": "conflict", "error": "transaction_conflict" })
                }
                Verdict::Stored(Outcome::ForeignPlace) | Verdict::Forbidden(_) => {
                    json!({ "index": index, "status": "forbidden", "error": "forbidden" })
                }
                Verdict::Invalid(details) => {
                    json!({ "index": index, "status": "rejected", "error": "validation_failed", "details": details })
                }
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "count": results.len(), "results": results })))
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
        from: query_instant("from", query.from.as_deref()).map_err(ApiError::BadRequest)?,
        to: query_instant("to", query.to.as_deref()).map_err(ApiError::BadRequest)?,
    };
    let (count, rows) = with_db(&state, move |conn| {
        Ok(intake::list_log(conn, &filter, page.offset(), page.page_size)?)
    })
    .await?;
    let (next, previous) = page.links(&req, count);
    Ok(HttpResponse::Ok()
        .json(json!({ "count": count, "next": next, "previous": previous, "results": rows })))
}
