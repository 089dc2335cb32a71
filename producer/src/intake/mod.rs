//! Accepting receipts. A submission is first examined on its own (rules, merchant), then written with the
//! others that arrived meanwhile: place ownership, idempotency on (merchant, transaction_id), the outbox rows
//! and the receipt log, in one PostgreSQL transaction whose commit every one of them waits for.

mod group;
mod write;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use shared_models::domain::auth::{Principal, Role};
use shared_models::domain::receipt::Receipt;
use shared_models::domain::FieldError;
use shared_models::store::receipt_log::Attempt;

use crate::validation::{self, Rules, ValidReceipt};

pub use group::{GroupCommit, GroupMetrics};

/// What became of a receipt that reached the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted {
        received_at: DateTime<Utc>,
    },
    Duplicate {
        received_at: DateTime<Utc>,
    },
    Conflict,
    /// The place belongs to another merchant.
    ForeignPlace,
}

/// What intake decided about one receipt body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Stored(Outcome),
    Invalid(Vec<FieldError>),
    /// The caller may not submit this receipt: it names another merchant's `merchant_id`.
    Forbidden,
}

/// One receipt body as examined before the database is asked anything.
#[derive(Debug, Clone)]
pub enum Submission {
    /// It passed every rule and its merchant is known; its place may still have to be resolved.
    Storable {
        merchant_id: String,
        receipt: ReceiptToStore,
    },
    /// It is refused: the attempt is logged and answered with the verdict.
    Refused { attempt: Attempt, verdict: Verdict },
}

/// A valid receipt whose merchant is known.
#[derive(Debug, Clone)]
pub enum ReceiptToStore {
    /// It names its place, so it is complete: its document and content hash are made by the request, not
    /// by the writer its group waits for.
    Placed(PlacedReceipt),
    /// It names no place: it goes to its merchant's only place, which the writer looks up.
    Placeless(ValidReceipt),
}

/// A complete receipt with its canonical JSON document, as intake stores it, and the document's SHA-256.
#[derive(Debug, Clone)]
pub struct PlacedReceipt {
    pub receipt: Receipt,
    pub document: String,
    pub content_hash: String,
}

impl PlacedReceipt {
    pub fn new(receipt: Receipt) -> Self {
        let (document, content_hash) = receipt.document_and_hash();
        PlacedReceipt {
            receipt,
            document,
            content_hash,
        }
    }
}

impl Submission {
    /// A refused submission keeps `body()` in the receipt log; the body is not copied for one taken.
    pub fn keeping_rejected_body(mut self, body: impl FnOnce() -> String) -> Self {
        if let Submission::Refused { attempt, .. } = &mut self {
            attempt.rejected_body = Some(body());
        }
        self
    }
}

/// Validates a receipt body and resolves its merchant.
pub fn examine(principal: &Principal, body: &Value, rules: &Rules, now: DateTime<Utc>) -> Submission {
    let transaction_id = body.get("transaction_id").and_then(Value::as_str);
    let refuse = |merchant: Option<&str>, reasons: Value, verdict: Verdict| Submission::Refused {
        attempt: Attempt::rejected(merchant, transaction_id, reasons, None),
        verdict,
    };
    let invalid = |merchant: Option<&str>, details: Vec<FieldError>| {
        refuse(merchant, json!(details), Verdict::Invalid(details))
    };
    let token_merchant = principal.merchant_id.as_deref();
    let Value::Object(body) = body else {
        let details = vec![FieldError::new("", "invalid_type", "a receipt must be an object")];
        return invalid(token_merchant, details);
    };
    let mut receipt = match validation::validate(body, rules, now) {
        Ok(valid) => valid,
        Err(details) => return invalid(token_merchant, details),
    };
    let merchant_id = match (principal.role, receipt.merchant_id.as_deref(), token_merchant) {
        (Role::Merchant, Some(named), Some(own)) if named != own => None,
        (Role::Merchant, _, Some(own)) => Some(own.to_owned()),
        (Role::Admin, Some(named), _) => Some(named.to_owned()),
        (Role::Admin, None, _) => {
            let details = vec![FieldError::new(
                "merchant_id",
                "required",
                "an admin submits on behalf of a merchant: merchant_id is required",
            )];
            return invalid(None, details);
        }
        _ => None,
    };
    match merchant_id {
        Some(merchant_id) => {
            let receipt = match receipt.place_id.take() {
                Some(place_id) => ReceiptToStore::Placed(PlacedReceipt::new(receipt.into_receipt(place_id))),
                None => ReceiptToStore::Placeless(receipt),
            };
            Submission::Storable { merchant_id, receipt }
        }
        None => {
            let message = "receipts can only be submitted for the token's own merchant";
            refuse(
                token_merchant,
                json!([{ "code": "merchant_not_allowed", "message": message }]),
                Verdict::Forbidden,
            )
        }
    }
}
