//! Accepting a receipt: place ownership, idempotency on (merchant, transaction_id), the outbox row and the
//! receipt log, all in one PostgreSQL transaction.

use chrono::{DateTime, SubsecRound, Utc};
use diesel::prelude::*;
use paperclip::actix::Apiv2Schema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shared_models::auth::{Principal, Role};
use shared_models::domain::text::{escape_nul, escape_nul_in_json};
use shared_models::domain::FieldError;
use shared_models::receipt::{Receipt, ReceiptEnvelope};
use shared_models::schema::{accepted_receipts, outbox, places, receipt_log};

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

/// A row of the receipt log: one submission attempt and its outcome.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, Apiv2Schema)]
#[diesel(table_name = receipt_log)]
pub struct LogEntry {
    pub id: i64,
    pub merchant_id: Option<String>,
    /// Absent when the body could not be read far enough to find it.
    pub transaction_id: Option<String>,
    /// `accepted`, `duplicate`, `conflict` or `rejected`.
    #[serde(rename = "status")]
    pub outcome: String,
    #[diesel(deserialize_as = Option<Value>)]
    pub reasons: Reasons,
    #[serde(skip)]
    pub rejected_body: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// Why an attempt was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Apiv2Schema)]
pub struct Reason {
    /// The failing field, when one field is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub code: String,
    pub message: String,
}

/// The reasons logged with an attempt: null for an accepted or duplicate one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reasons(Option<Vec<Reason>>);

impl From<Option<Value>> for Reasons {
    fn from(stored: Option<Value>) -> Self {
        Reasons(stored.map(|value| {
            Vec::<Reason>::deserialize(&value).unwrap_or_else(|_| {
                vec![Reason {
                    field: None,
                    code: "unrecognised".into(),
                    message: value.to_string(),
                }]
            })
        }))
    }
}

impl paperclip::v2::schema::Apiv2Schema for Reasons {
    fn required() -> bool {
        false
    }

    fn raw_schema() -> paperclip::v2::models::DefaultSchemaRaw {
        paperclip::v2::models::DefaultSchemaRaw {
            description: Some("Why it was not accepted, every problem found; null when it was.".into()),
            ..<Vec<Reason> as paperclip::v2::schema::Apiv2Schema>::raw_schema()
        }
    }
}

/// The accepted record of one receipt.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = accepted_receipts)]
pub struct AcceptedReceipt {
    pub merchant_id: String,
    pub transaction_id: String,
    pub place_id: String,
    pub received_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

/// The merchant's only place, when it has exactly one.
pub fn sole_place(conn: &mut PgConnection, merchant_id: &str) -> QueryResult<Option<String>> {
    let found: Vec<String> = places::table
        .filter(places::merchant_id.eq(merchant_id))
        .select(places::place_id)
        .limit(2)
        .load(conn)?;
    Ok(match found.as_slice() {
        [only] => Some(only.clone()),
        _ => None,
    })
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
        diesel::insert_into(places::table)
            .values((places::place_id.eq(&receipt.place_id), places::merchant_id.eq(merchant_id)))
            .on_conflict_do_nothing()
            .execute(conn)?;
        let owner: String =
            places::table.find(&receipt.place_id).select(places::merchant_id).for_share().first(conn)?;
        if owner != merchant_id {
            let reasons = json!([{ "code": "place_forbidden", "message": "the place belongs to another merchant" }]);
            log_attempt(conn, Some(merchant_id), Some(&receipt.transaction_id), "rejected", Some(reasons), None)?;
            return Ok(Outcome::ForeignPlace);
        }

        let content_hash = receipt.content_hash();
        let envelope = ReceiptEnvelope::new(merchant_id.to_owned(), now, receipt);
        let receipt = &envelope.receipt;
        let inserted = diesel::insert_into(accepted_receipts::table)
            .values((
                accepted_receipts::merchant_id.eq(merchant_id),
                accepted_receipts::transaction_id.eq(&receipt.transaction_id),
                accepted_receipts::place_id.eq(&receipt.place_id),
                accepted_receipts::content_hash.eq(&content_hash),
                accepted_receipts::receipt.eq(serde_json::to_value(receipt).unwrap_or_default()),
                accepted_receipts::received_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(conn)?;

        let (outcome, status, reasons) = if inserted == 1 {
            diesel::insert_into(outbox::table)
                .values((
                    outbox::merchant_id.eq(merchant_id),
                    outbox::transaction_id.eq(&receipt.transaction_id),
                    outbox::message_key.eq(&receipt.place_id),
                    outbox::payload.eq(envelope.to_json()),
                ))
                .execute(conn)?;
            (Outcome::Accepted { received_at: now }, "accepted", None)
        } else {
            let (stored_hash, received_at): (String, DateTime<Utc>) = accepted_receipts::table
                .find((merchant_id, &receipt.transaction_id))
                .select((accepted_receipts::content_hash, accepted_receipts::received_at))
                .first(conn)?;
            if stored_hash == content_hash {
                (Outcome::Duplicate { received_at }, "duplicate", None)
            } else {
                let reasons =
                    json!([{ "code": "transaction_conflict", "message": "same transaction_id, different content" }]);
                (Outcome::Conflict, "conflict", Some(reasons))
            }
        };
        log_attempt(conn, Some(merchant_id), Some(&receipt.transaction_id), status, reasons, None)?;
        Ok(outcome)
    })
}

/// Appends a row to the receipt log.
pub fn log_attempt(
    conn: &mut PgConnection,
    merchant_id: Option<&str>,
    transaction_id: Option<&str>,
    outcome: &str,
    reasons: Option<Value>,
    rejected_body: Option<&str>,
) -> QueryResult<()> {
    // Text from the client may hold U+0000, which PostgreSQL cannot store: it is logged escaped.
    diesel::insert_into(receipt_log::table)
        .values((
            receipt_log::merchant_id.eq(merchant_id.map(|text| escape_nul(text).into_owned())),
            receipt_log::transaction_id.eq(transaction_id.map(|text| escape_nul(text).into_owned())),
            receipt_log::outcome.eq(outcome),
            receipt_log::reasons.eq(reasons.as_ref().map(escape_nul_in_json)),
            receipt_log::rejected_body.eq(rejected_body.map(|text| escape_nul(text).into_owned())),
        ))
        .execute(conn)?;
    Ok(())
}

/// The accepted record and the log of one transaction id, within a merchant scope (None: any merchant).
pub fn receipt_status(
    conn: &mut PgConnection,
    merchant_scope: Option<&str>,
    transaction_id: &str,
) -> QueryResult<(Option<AcceptedReceipt>, Vec<LogEntry>)> {
    let mut accepted = accepted_receipts::table
        .filter(accepted_receipts::transaction_id.eq(transaction_id))
        .select(AcceptedReceipt::as_select())
        .into_boxed();
    let mut log = receipt_log::table
        .filter(receipt_log::transaction_id.eq(transaction_id))
        .select(LogEntry::as_select())
        .order(receipt_log::id.asc())
        .into_boxed();
    if let Some(merchant) = merchant_scope {
        accepted = accepted.filter(accepted_receipts::merchant_id.eq(merchant));
        log = log.filter(receipt_log::merchant_id.eq(merchant));
    }
    Ok((accepted.first(conn).optional()?, log.limit(100).load(conn)?))
}

/// Filters of the receipt log listing.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub merchant_scope: Option<String>,
    pub status: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// One page of the receipt log, newest first, with the total count.
pub fn list_log(
    conn: &mut PgConnection,
    filter: &LogFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(i64, Vec<LogEntry>)> {
    let query = || {
        let mut query = receipt_log::table.into_boxed();
        if let Some(merchant) = &filter.merchant_scope {
            query = query.filter(receipt_log::merchant_id.eq(merchant.clone()));
        }
        if let Some(status) = &filter.status {
            query = query.filter(receipt_log::outcome.eq(status.clone()));
        }
        if let Some(from) = filter.from {
            query = query.filter(receipt_log::received_at.ge(from));
        }
        if let Some(to) = filter.to {
            query = query.filter(receipt_log::received_at.lt(to));
        }
        query
    };
    let count = query().count().get_result(conn)?;
    let rows = query()
        .order(receipt_log::id.desc())
        .offset(offset)
        .limit(limit)
        .select(LogEntry::as_select())
        .load(conn)?;
    Ok((count, rows))
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
            "rejected",
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
        None => match sole_place(conn, &merchant_id)? {
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
