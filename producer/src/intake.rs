//! Accepting a receipt: place ownership, idempotency on (merchant, transaction_id), the outbox row and the
//! receipt log, all in one PostgreSQL transaction.

use chrono::{DateTime, SubsecRound, Utc};
use diesel::prelude::*;
use serde_json::{json, Value};
use shared_models::domain::auth::{Principal, Role};
use shared_models::domain::receipt::{Receipt, ReceiptEnvelope};
use shared_models::domain::FieldError;
use shared_models::store::receipt_log::{log_attempt, AttemptOutcome};
use shared_models::store::{accepted, outbox, places};

use crate::validation::{self, Rules};

/// What became of a submission.
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

/// Stores an accepted receipt and its outbox row, or recognises a duplicate or a conflict; logs the attempt.
pub fn submit(
    conn: &mut PgConnection,
    merchant_id: &str,
    receipt: Receipt,
    now: DateTime<Utc>,
) -> QueryResult<Outcome> {
    // PostgreSQL keeps microseconds: answer with the instant as stored, so a later duplicate answers the same.
    let now = now.trunc_subsecs(6);
    conn.transaction(|conn| {
        let owner = places::claim(conn, &receipt.place_id, merchant_id)?;
        if owner != merchant_id {
            let reasons = json!([{ "code": "place_forbidden", "message": "the place belongs to another merchant" }]);
            log_attempt(
                conn,
                Some(merchant_id),
                Some(&receipt.transaction_id),
                AttemptOutcome::Rejected,
                Some(reasons),
                None,
            )?;
            return Ok(Outcome::ForeignPlace);
        }

        let content_hash = receipt.content_hash();
        let envelope = ReceiptEnvelope::new(merchant_id.to_owned(), now, receipt);
        let receipt = &envelope.receipt;
        let (outcome, status, reasons) = if accepted::accept(conn, merchant_id, receipt, &content_hash, now)? {
            outbox::enqueue(conn, &envelope)?;
            (Outcome::Accepted { received_at: now }, AttemptOutcome::Accepted, None)
        } else {
            let (stored_hash, received_at) = accepted::fingerprint(conn, merchant_id, &receipt.transaction_id)?;
            if stored_hash == content_hash {
                (Outcome::Duplicate { received_at }, AttemptOutcome::Duplicate, None)
            } else {
                let reasons =
                    json!([{ "code": "transaction_conflict", "message": "same transaction_id, different content" }]);
                (Outcome::Conflict, AttemptOutcome::Conflict, Some(reasons))
            }
        };
        log_attempt(conn, Some(merchant_id), Some(&receipt.transaction_id), status, reasons, None)?;
        Ok(outcome)
    })
}

/// What intake decided about one receipt body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Stored(Outcome),
    Invalid(Vec<FieldError>),
    /// The caller may not submit this receipt: it names another merchant's `merchant_id`.
    Forbidden,
}

/// Validates, resolves the merchant and the place, and stores one receipt; every outcome is logged.
pub fn judge(
    conn: &mut PgConnection,
    principal: &Principal,
    body: &Value,
    rules: &Rules,
    now: DateTime<Utc>,
    rejected_body: Option<&str>,
) -> QueryResult<Verdict> {
    let transaction_id = body.get("transaction_id").and_then(Value::as_str);
    let reject = |conn: &mut PgConnection, merchant: Option<&str>, reasons: Value| {
        log_attempt(
            conn,
            merchant,
            transaction_id,
            AttemptOutcome::Rejected,
            Some(reasons),
            rejected_body,
        )
    };
    let token_merchant = principal.merchant_id.as_deref();
    let Value::Object(body) = body else {
        let details = vec![FieldError::new("", "invalid_type", "a receipt must be an object")];
        reject(conn, token_merchant, json!(details))?;
        return Ok(Verdict::Invalid(details));
    };
    let valid = match validation::validate(body, rules, now) {
        Ok(valid) => valid,
        Err(details) => {
            reject(conn, token_merchant, json!(details))?;
            return Ok(Verdict::Invalid(details));
        }
    };
    let merchant_id = match (principal.role, valid.merchant_id.as_deref(), token_merchant) {
        (Role::Merchant, Some(named), Some(own)) if named != own => None,
        (Role::Merchant, _, Some(own)) => Some(own.to_owned()),
        (Role::Admin, Some(named), _) => Some(named.to_owned()),
        (Role::Admin, None, _) => {
            let details = vec![FieldError::new(
                "merchant_id",
                "required",
                "an admin submits on behalf of a merchant: merchant_id is required",
            )];
            reject(conn, None, json!(details))?;
            return Ok(Verdict::Invalid(details));
        }
        _ => None,
    };
    let Some(merchant_id) = merchant_id else {
        let message = "receipts can only be submitted for the token's own merchant";
        reject(
            conn,
            token_merchant,
            json!([{ "code": "merchant_not_allowed", "message": message }]),
        )?;
        return Ok(Verdict::Forbidden);
    };
    let place_id = match valid.place_id.clone() {
        Some(place_id) => place_id,
        None => match places::sole_place(conn, &merchant_id)? {
            Some(place_id) => place_id,
            None => {
                let details = vec![FieldError::new(
                    "place_id",
                    "required",
                    "place_id is required unless the merchant has exactly one place",
                )];
                reject(conn, Some(&merchant_id), json!(details))?;
                return Ok(Verdict::Invalid(details));
            }
        },
    };
    Ok(Verdict::Stored(submit(
        conn,
        &merchant_id,
        valid.into_receipt(place_id),
        now,
    )?))
}
