//! `POST /api/checks/`: one receipt, and the reading and logging of receipt bodies that the batch shares.

use actix_web::http::StatusCode;
use actix_web::web;
use chrono::{DateTime, Utc};
use paperclip::actix::{api_v2_operation, Apiv2Schema};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{json, Value};
use shared_models::domain::auth::Principal;
use shared_models::web::auth::{Caller, Submitters};
use shared_models::web::extract::{JsonBody, RequestBody};
use shared_models::web::reply::{Replies, Reply};
use shared_models::web::{with_db, ApiError};

use shared_models::store::receipt_log::{self, Attempt};

use crate::intake::{self, Outcome, Verdict};
use crate::startup::AppState;

/// Logs a request rejected before any receipt in it could be judged (too large, not JSON, not the expected
/// shape) and returns its error.
pub(crate) async fn reject_request(
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
    let reasons = json!([{ "code": code, "message": error.to_string() }]);
    let attempt = Attempt::rejected(principal.merchant_id.as_deref(), None, reasons, body.as_deref());
    let logged = with_db(&state.pool, move |conn| {
        Ok(receipt_log::log_attempts(conn, &[attempt])?)
    })
    .await;
    if let Err(log_error) = logged {
        log::error!("could not log a rejected receipt: {log_error}");
    }
    error
}

/// What the receipt log keeps of a body it could not accept: its first `REJECTED_BODY_LOG_BYTES`.
pub(crate) fn kept_body(state: &AppState, body: &[u8]) -> String {
    let cut = &body[..body.len().min(state.intake.rejected_body_log_bytes)];
    String::from_utf8_lossy(cut).into_owned()
}

/// Counts a verdict in `producer_receipts_total`.
pub(crate) fn count(state: &AppState, verdict: &Verdict) {
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

/// Reads the body and parses it as JSON, logging what cannot be read. Returns the value and the body read.
pub(crate) async fn read_json<T>(
    state: &web::Data<AppState>,
    principal: &Principal,
    body: JsonBody<T>,
) -> Result<(Value, web::BytesMut), ApiError> {
    let body = match body.read(state.intake.max_body_bytes).await {
        Ok(body) => body,
        Err(error) => {
            let code = error.code();
            return Err(reject_request(state, principal, code, error, None).await);
        }
    };
    match serde_json::from_slice::<Value>(&body) {
        Ok(value) => Ok((value, body)),
        Err(parse_error) => {
            let error = ApiError::MalformedJson(format!("the body is not valid JSON: {parse_error}"));
            let kept = kept_body(state, &body);
            Err(reject_request(state, principal, "malformed_json", error, Some(kept)).await)
        }
    }
}

/// One receipt: the purchase's fields plus `place_id`, `place_name` and, for admins, `merchant_id`. Numbers
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

/// Reads and examines the body of one receipt; returns its transaction id and the submission. The body and
/// its JSON tree go when this returns, so a request waiting for its group holds only what intake writes.
async fn examine_body(
    state: &web::Data<AppState>,
    principal: &Principal,
    body: JsonBody<ReceiptSubmission>,
) -> Result<(String, intake::Submission), ApiError> {
    let (value, body) = read_json(state, principal, body).await?;
    if !value.is_object() {
        let error = ApiError::MalformedJson("the body must be a JSON object (one receipt)".into());
        let kept = kept_body(state, &body);
        return Err(reject_request(state, principal, "malformed_json", error, Some(kept)).await);
    }
    let transaction_id = value
        .get("transaction_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let submission = intake::examine(principal, &value, &state.rules, Utc::now())
        .keeping_rejected_body(|| kept_body(state, &body));
    Ok((transaction_id, submission))
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
    let (transaction_id, submission) = examine_body(&state, &principal, body).await?;
    let verdict = state
        .group_commit
        .submit(vec![submission])
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal("intake gave no verdict".into()))?;
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
