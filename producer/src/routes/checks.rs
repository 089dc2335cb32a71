//! `POST /api/checks/`, `GET /api/checks/` and `GET /api/checks/{transaction_id}/`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use diesel::Connection;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use shared_models::auth::Principal;
use shared_models::http::{query_instant, Authenticated, PageRequest};

use crate::error::ApiError;
use crate::intake::{self, LogFilter, Outcome, Verdict};
use crate::routes::{with_db, SUBMITTERS};
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

/// Logs a request rejected before any receipt in it could be judged (too large, not JSON, not the expected
/// shape) and returns its error.
async fn reject_request(
    state: &web::Data<AppState>,
    principal: &Principal,
    code: &'static str,
    error: ApiError,
    body: Option<String>,
) -> ApiError {
    state
        .metrics
        .receipts
        .with_label_values(&["rejected", code])
        .inc();
    let merchant_id = principal.merchant_id.clone();
    let reasons = json!([{ "code": code, "message": error.to_string() }]);
    let logged = with_db(state, move |conn| {
        Ok(intake::log_attempt(
            conn,
            merchant_id.as_deref(),
            None,
            "rejected",
            Some(reasons),
            body.as_deref(),
        )?)
    })
    .await;
    if let Err(log_error) = logged {
        log::error!("could not log a rejected receipt: {log_error}");
    }
    error
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
        Verdict::Forbidden => ("rejected", "merchant_not_allowed"),
    };
    state.metrics.receipts.with_label_values(&[outcome, reason]).inc();
}

fn foreign_place() -> ApiError {
    ApiError::forbidden("ownership of the place (it belongs to another merchant)")
}

/// Reads the body and parses it as JSON, logging what cannot be read. Returns the value and the body as the
/// receipt log keeps it.
async fn read_json(
    state: &web::Data<AppState>,
    principal: &Principal,
    payload: web::Payload,
) -> Result<(Value, String), ApiError> {
    let body = match read_body(payload, state.intake.max_body_bytes).await {
        Ok(body) => body,
        Err(error) => return Err(reject_request(state, principal, "payload_too_large", error, None).await),
    };
    let kept = truncated(&body, state.intake.rejected_body_log_bytes);
    match serde_json::from_slice::<Value>(&body) {
        Ok(value) => Ok((value, kept)),
        Err(parse_error) => {
            let error = ApiError::MalformedJson(format!("the body is not valid JSON: {parse_error}"));
            Err(reject_request(state, principal, "malformed_json", error, Some(kept)).await)
        }
    }
}

/// `POST /api/checks/`: submit one receipt.
pub async fn submit(
    auth: Authenticated,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = auth.require(SUBMITTERS)?.clone();
    let (value, kept) = read_json(&state, &principal, payload).await?;
    if !value.is_object() {
        let error = ApiError::MalformedJson("the body must be a JSON object (one receipt)".into());
        return Err(reject_request(&state, &principal, "malformed_json", error, Some(kept)).await);
    }
    let transaction_id = value
        .get("transaction_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let state_ = state.clone();
    let verdict = with_db(&state, move |conn| {
        Ok(intake::judge(
            conn,
            &principal,
            &value,
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
        Verdict::Forbidden => Err(ApiError::forbidden("merchant_id of the token's own merchant")),
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
    let principal = auth.require(SUBMITTERS)?.clone();
    let (value, kept) = read_json(&state, &principal, payload).await?;
    let receipts = match value {
        Value::Array(receipts) => Some(receipts),
        Value::Object(mut object) => match object.remove("receipts") {
            Some(Value::Array(receipts)) => Some(receipts),
            _ => None,
        },
        _ => None,
    };
    let Some(receipts) = receipts else {
        let error = ApiError::MalformedJson("the body must be a list of receipts".into());
        return Err(reject_request(&state, &principal, "malformed_json", error, Some(kept)).await);
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
                .map(|receipt| intake::judge(conn, &principal, receipt, &state_.rules, now, None))
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
                Verdict::Stored(Outcome::ForeignPlace) | Verdict::Forbidden => {
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
    let principal = auth.require(SUBMITTERS)?;
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
    let principal = auth.require(SUBMITTERS)?;
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
