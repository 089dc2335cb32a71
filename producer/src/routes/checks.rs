//! `POST /api/checks/`, `GET /api/checks/` and `GET /api/checks/{transaction_id}/`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use chrono::{DateTime, Utc};
use diesel::Connection;
use paperclip::actix::{api_v2_operation, Apiv2Schema};
use paperclip::v2::models::DefaultParameterRaw;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shared_models::auth::Principal;
use shared_models::domain::FieldError;
use shared_models::web::auth::{Caller, Submitters};
use shared_models::web::extract::{
    document_period, query_instant, ApiQuery, JsonBody, QueryParameters, Replies, Reply, RequestBody,
    ResourceId,
};
use shared_models::web::paging::PageRequest;
use shared_models::web::{with_db, ApiError};

use crate::intake::{self, LogEntry, LogFilter, Outcome, Verdict};
use crate::startup::AppState;

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
    let logged = with_db(&state.pool, move |conn| {
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
    ApiError::Forbidden("ownership of the place (it belongs to another merchant)".into())
}

/// Reads the body and parses it as JSON, logging what cannot be read. Returns the value and the body as the
/// receipt log keeps it.
async fn read_json<T>(
    state: &web::Data<AppState>,
    principal: &Principal,
    body: JsonBody<T>,
) -> Result<(Value, String), ApiError> {
    let body = match body.read(state.intake.max_body_bytes).await {
        Ok(body) => body,
        Err(error) => {
            let code = error.code();
            return Err(reject_request(state, principal, code, error, None).await);
        }
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

/// One receipt: SPEC.md's fields plus `place_id`, `place_name` and, for admins, `merchant_id`. Numbers
/// may be JSON numbers or strings and are read exactly, never as binary floating point. Fields beyond
/// these are kept with the receipt. Every rule is checked and every failure reported together.
#[derive(Debug, Apiv2Schema)]
#[openapi(
    example = r#"{"transaction_id": "tx-20261124-0001", "timestamp": "2026-11-02T09:41:07Z", "place_id": "cafe-central", "place_name": "Cafe Central", "items": [{"product_id": "espresso", "quantity": 2, "price": 2.50, "category": "Coffee"}, {"product_id": "beans-kg", "quantity": 0.255, "price": 24.00, "category": "Groceries"}], "total_amount": 11.12, "vat_amount": 1.01, "tips_amount": 1.00, "payment_method": "credit_card"}"#
)]
pub struct ReceiptSubmission {
    /// 1-128 characters, no control characters; unique per merchant.
    pub transaction_id: String,
    /// RFC 3339 / ISO 8601 (UTC when it has no offset); from 2000-01-01 to 10 minutes ahead.
    pub timestamp: DateTime<Utc>,
    /// 1-1000 lines.
    pub items: Vec<ReceiptLine>,
    /// At least 0, at most 2 decimals, equal to the sum of the line amounts (quantity x price rounded to
    /// cents, half away from zero) within the configured tolerance.
    pub total_amount: Decimal,
    /// At least 0, at most 2 decimals, not more than `total_amount`.
    pub vat_amount: Decimal,
    /// At least 0, at most 2 decimals; 0 when absent.
    pub tips_amount: Option<Decimal>,
    /// 1-32 characters of `[a-z0-9_]` after lower-casing: `cash`, `credit_card`, `debit_card`, ...
    pub payment_method: String,
    /// 1-64 characters. Optional only when the merchant has exactly one place, which is then used.
    pub place_id: Option<String>,
    /// Up to 200 characters; the latest non-empty name given is the place's name.
    pub place_name: Option<String>,
    /// Required when an admin submits (back-office import) and names the merchant; a merchant's token
    /// may only name its own.
    pub merchant_id: Option<String>,
}

/// One line of a receipt.
#[derive(Debug, Apiv2Schema)]
pub struct ReceiptLine {
    /// 1-128 characters.
    pub product_id: String,
    /// More than 0, at most 3 decimals (weighed goods).
    pub quantity: Decimal,
    /// At least 0, at most 2 decimals.
    pub price: Decimal,
    /// 1-64 characters; trimmed and lower-cased for analytics.
    pub category: String,
}

impl RequestBody for ReceiptSubmission {
    const REJECTIONS: &'static [(u16, &'static str)] = &[
        (
            422,
            "`validation_failed`: the receipt breaks one or more rules; `details` lists every failing field",
        ),
        (
            409,
            "`transaction_conflict`: this merchant already sent this transaction_id with different content",
        ),
        (
            403,
            "`forbidden`: the place belongs to another merchant, or `merchant_id` names one the token may not submit for",
        ),
        (413, "`payload_too_large`: the body is larger than the configured limit"),
    ];
}

/// Whether a submitted receipt was taken.
#[derive(Debug, Serialize, Apiv2Schema)]
#[serde(rename_all = "lowercase")]
pub enum SubmitStatus {
    Accepted,
    Duplicate,
}

/// The answer to one submitted receipt.
#[derive(Debug, Serialize, Apiv2Schema)]
#[openapi(
    example = r#"{"transaction_id": "tx-20261124-0001", "status": "accepted", "received_at": "2026-11-24T12:35:01.204Z"}"#
)]
pub struct SubmitReply {
    pub transaction_id: String,
    pub status: SubmitStatus,
    /// When the receipt was first accepted.
    pub received_at: DateTime<Utc>,
}

impl Replies for SubmitReply {
    const STATUSES: &'static [(u16, &'static str)] = &[
        (
            202,
            "`accepted`: stored and logged; it reaches Kafka through the transactional outbox",
        ),
        (
            200,
            "`duplicate`: already accepted with the same content; nothing changed",
        ),
    ];
}

/// Submit one receipt.
///
/// The receipt is validated, logged, and (when accepted) stored with an outbox row in one transaction, so
/// it reaches Kafka even if the broker is down. Sending the same receipt again is safe: it answers
/// `200 duplicate`.
#[api_v2_operation(operation_id = "submit_receipt", tags("Receipts"))]
pub async fn submit(
    caller: Caller<Submitters>,
    body: JsonBody<ReceiptSubmission>,
    state: web::Data<AppState>,
) -> Result<Reply<SubmitReply>, ApiError> {
    let principal = caller.into_principal();
    let (value, kept) = read_json(&state, &principal, body).await?;
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
    let verdict = with_db(&state.pool, move |conn| {
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
    let (status, reply_status, received_at) = match verdict {
        Verdict::Stored(Outcome::Accepted { received_at }) => {
            (StatusCode::ACCEPTED, SubmitStatus::Accepted, received_at)
        }
        Verdict::Stored(Outcome::Duplicate { received_at }) => {
            (StatusCode::OK, SubmitStatus::Duplicate, received_at)
        }
        Verdict::Stored(Outcome::Conflict) => {
            return Err(ApiError::Conflict(format!(
                "transaction_id {transaction_id} was already accepted with different content"
            )))
        }
        Verdict::Stored(Outcome::ForeignPlace) => return Err(foreign_place()),
        Verdict::Invalid(details) => return Err(ApiError::Validation(details)),
        Verdict::Forbidden => {
            return Err(ApiError::Forbidden(
                "merchant_id of the token's own merchant".into(),
            ))
        }
    };
    Ok(Reply::new(
        status,
        SubmitReply {
            transaction_id,
            status: reply_status,
            received_at,
        },
    ))
}

/// Most receipts in one batch.
const MAX_BATCH: usize = 1000;

/// Up to 1000 receipts. A bare JSON array of receipts is accepted too.
#[derive(Debug, Apiv2Schema)]
pub struct ReceiptBatch {
    pub receipts: Vec<ReceiptSubmission>,
}

impl RequestBody for ReceiptBatch {
    const REJECTIONS: &'static [(u16, &'static str)] = &[
        (
            422,
            "`validation_failed`: the batch is empty or holds more than 1000 receipts",
        ),
        (
            413,
            "`payload_too_large`: the body is larger than the configured limit",
        ),
    ];
}

/// What became of one receipt of a batch.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct BatchItemResult {
    /// The receipt's position in the batch, from 0.
    pub index: usize,
    /// `accepted`, `duplicate`, `conflict`, `forbidden` or `rejected`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_at: Option<DateTime<Utc>>,
    /// The error code a single submission would have answered with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `rejected`: every failing field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<FieldError>>,
}

/// The answer to a batch: one result per receipt, in the order sent.
#[derive(Debug, Serialize, Apiv2Schema)]
#[openapi(
    example = r#"{"count": 2, "results": [{"index": 0, "status": "accepted", "received_at": "2026-11-24T12:35:01.204Z"}, {"index": 1, "status": "rejected", "error": "validation_failed", "details": [{"field": "items", "code": "too_few", "message": "must have at least 1 line"}]}]}"#
)]
pub struct BatchReply {
    pub count: usize,
    pub results: Vec<BatchItemResult>,
}

impl BatchItemResult {
    fn of(index: usize, verdict: &Verdict) -> Self {
        let result = |status: &str| BatchItemResult {
            index,
            status: status.to_owned(),
            received_at: None,
            error: None,
            details: None,
        };
        match verdict {
            Verdict::Stored(Outcome::Accepted { received_at }) => BatchItemResult {
                received_at: Some(*received_at),
                ..result("accepted")
            },
            Verdict::Stored(Outcome::Duplicate { received_at }) => BatchItemResult {
                received_at: Some(*received_at),
                ..result("duplicate")
            },
            Verdict::Stored(Outcome::Conflict) => BatchItemResult {
                error: Some("transaction_conflict".into()),
                ..result("conflict")
            },
            Verdict::Stored(Outcome::ForeignPlace) | Verdict::Forbidden => BatchItemResult {
                error: Some("forbidden".into()),
                ..result("forbidden")
            },
            Verdict::Invalid(details) => BatchItemResult {
                error: Some("validation_failed".into()),
                details: Some(details.clone()),
                ..result("rejected")
            },
        }
    }
}

/// Submit a batch of receipts.
///
/// Each receipt is judged on its own, as `POST /api/checks/` would; all accepted ones are stored in one
/// transaction. The answer lists a result per receipt, in order.
#[api_v2_operation(operation_id = "submit_receipt_batch", tags("Receipts"))]
pub async fn submit_batch(
    caller: Caller<Submitters>,
    body: JsonBody<ReceiptBatch>,
    state: web::Data<AppState>,
) -> Result<web::Json<BatchReply>, ApiError> {
    let principal = caller.into_principal();
    let (value, kept) = read_json(&state, &principal, body).await?;
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
    let verdicts = with_db(&state.pool, move |conn| {
        let now = Utc::now();
        Ok(conn.transaction(|conn| {
            receipts
                .iter()
                .map(|receipt| intake::judge(conn, &principal, receipt, &state_.rules, now, None))
                .collect::<Result<Vec<_>, diesel::result::Error>>()
        })?)
    })
    .await?;
    let results: Vec<BatchItemResult> = verdicts
        .iter()
        .enumerate()
        .map(|(index, verdict)| {
            count(&state, verdict);
            BatchItemResult::of(index, verdict)
        })
        .collect();
    Ok(web::Json(BatchReply {
        count: results.len(),
        results,
    }))
}

/// A receipt's state and every attempt to submit it.
#[derive(Debug, Serialize, Apiv2Schema)]
#[openapi(
    example = r#"{"transaction_id": "tx-20261124-0001", "status": "accepted", "merchant_id": "m-42", "place_id": "cafe-central", "received_at": "2026-11-24T12:35:01.204Z", "published_at": "2026-11-24T12:35:01.391Z", "attempts": [{"id": 17, "merchant_id": "m-42", "transaction_id": "tx-20261124-0001", "status": "accepted", "reasons": null, "received_at": "2026-11-24T12:35:01.204Z"}]}"#
)]
pub struct ReceiptStatus {
    pub transaction_id: String,
    /// `accepted` once any attempt was accepted; otherwise the latest attempt's outcome.
    pub status: String,
    pub merchant_id: Option<String>,
    pub place_id: Option<String>,
    pub received_at: Option<DateTime<Utc>>,
    /// When Kafka acknowledged it; null while it waits in the outbox.
    pub published_at: Option<DateTime<Utc>>,
    pub attempts: Vec<LogEntry>,
}

/// A receipt's status.
///
/// Whether the receipt was accepted, when it was handed to Kafka, and every attempt to submit it with the
/// reasons for any rejection.
#[api_v2_operation(operation_id = "receipt_status", tags("Receipts"))]
pub async fn status(
    caller: Caller<Submitters>,
    transaction_id: ResourceId,
    state: web::Data<AppState>,
) -> Result<web::Json<ReceiptStatus>, ApiError> {
    let scope = caller.principal().merchant_scope().map(str::to_owned);
    let transaction_id = transaction_id.0;
    let lookup_id = transaction_id.clone();
    let (accepted, attempts) = with_db(&state.pool, move |conn| {
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
    Ok(web::Json(ReceiptStatus {
        transaction_id,
        status,
        merchant_id: accepted.as_ref().map(|a| a.merchant_id.clone()),
        place_id: accepted.as_ref().map(|a| a.place_id.clone()),
        received_at: accepted.as_ref().map(|a| a.received_at),
        published_at: accepted.as_ref().and_then(|a| a.published_at),
        attempts,
    }))
}

/// Filters and paging of the receipt log.
#[derive(Debug, Deserialize, Apiv2Schema)]
pub struct LogQuery {
    /// `accepted`, `duplicate`, `conflict` or `rejected`.
    status: Option<String>,
    /// Attempts received at or after this instant (RFC 3339, or a date for midnight UTC).
    from: Option<String>,
    /// Attempts received before this instant (RFC 3339, or a date for midnight UTC).
    to: Option<String>,
    /// Page number, from 1.
    page: Option<i64>,
    /// Entries per page, 1-500 (default 50).
    page_size: Option<i64>,
}

/// The outcomes an attempt can have.
const LOG_STATUSES: [&str; 4] = ["accepted", "duplicate", "conflict", "rejected"];

impl QueryParameters for LogQuery {
    fn document(parameter: &mut DefaultParameterRaw) {
        PageRequest::document(parameter);
        document_period(parameter);
        if parameter.name == "status" {
            parameter.enum_ = LOG_STATUSES.iter().map(|status| (*status).into()).collect();
        }
    }
}

/// A page of the receipt log, newest first.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ReceiptLogPage {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<LogEntry>,
}

/// The receipt log.
///
/// Every submission attempt, accepted or not, newest first, with filters and DRF-style pages.
#[api_v2_operation(operation_id = "receipt_log", tags("Receipts"))]
pub async fn list(
    caller: Caller<Submitters>,
    req: HttpRequest,
    query: ApiQuery<LogQuery>,
    state: web::Data<AppState>,
) -> Result<web::Json<ReceiptLogPage>, ApiError> {
    let query = query.0;
    let page = PageRequest::new(query.page, query.page_size)?;
    if let Some(status) = &query.status {
        if !LOG_STATUSES.contains(&status.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "status must be one of {}",
                LOG_STATUSES.join(", ")
            )));
        }
    }
    let filter = LogFilter {
        merchant_scope: caller.principal().merchant_scope().map(str::to_owned),
        status: query.status.clone(),
        from: query_instant("from", query.from.as_deref())?,
        to: query_instant("to", query.to.as_deref())?,
    };
    let (count, rows) = with_db(&state.pool, move |conn| {
        Ok(intake::list_log(conn, &filter, page.offset(), page.page_size)?)
    })
    .await?;
    let (next, previous) = page.links(&req, count);
    Ok(web::Json(ReceiptLogPage {
        count,
        next,
        previous,
        results: rows,
    }))
}
