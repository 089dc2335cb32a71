//! `POST /api/checks/batch/`: up to 1000 receipts, each judged on its own.

use actix_web::web;
use chrono::{DateTime, Utc};
use paperclip::actix::{api_v2_operation, Apiv2Schema};
use serde::Serialize;
use serde_json::Value;
use shared_models::domain::auth::Principal;
use shared_models::domain::FieldError;
use shared_models::web::auth::{Caller, Submitters};
use shared_models::web::extract::{JsonBody, RequestBody};
use shared_models::web::ApiError;

use crate::intake::{self, Outcome, Verdict};
use crate::routes::checks::{count, kept_body, read_json, reject_request, ReceiptSubmission};
use crate::startup::AppState;

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

/// Reads a batch's body and examines each of its receipts. The body and its JSON tree go when this returns, so
/// a request waiting for its group holds only what intake writes.
async fn examine_batch(
    state: &web::Data<AppState>,
    principal: &Principal,
    body: JsonBody<ReceiptBatch>,
) -> Result<Vec<intake::Submission>, ApiError> {
    let (value, body) = read_json(state, principal, body).await?;
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
        let kept = kept_body(state, &body);
        return Err(reject_request(state, principal, "malformed_json", error, Some(kept)).await);
    };
    if receipts.is_empty() || receipts.len() > MAX_BATCH {
        return Err(ApiError::Validation(vec![FieldError::new(
            "receipts",
            "invalid_length",
            format!("a batch holds 1 to {MAX_BATCH} receipts"),
        )]));
    }
    let now = Utc::now();
    Ok(receipts
        .iter()
        .map(|receipt| intake::examine(principal, receipt, &state.rules, now))
        .collect())
}

/// Submit a batch of receipts.
///
/// Each receipt is judged on its own, as `POST /api/checks/` would; the whole batch is stored in one
/// transaction. The answer lists a result per receipt, in order.
#[api_v2_operation(operation_id = "submit_receipt_batch", tags("Receipts"))]
pub async fn submit_batch(
    caller: Caller<Submitters>,
    body: JsonBody<ReceiptBatch>,
    state: web::Data<AppState>,
) -> Result<web::Json<BatchReply>, ApiError> {
    let principal = caller.into_principal();
    let submissions = examine_batch(&state, &principal, body).await?;
    let verdicts = state.group_commit.submit(submissions).await?;
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
