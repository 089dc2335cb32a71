//! The `receipt_log` table: every submission attempt, accepted, duplicate, conflict or rejected, with the
//! reasons and what is kept of a rejected body. This module owns every write to it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Jsonb, Nullable, Text};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::text::{escape_nul, escape_nul_in_json};
use crate::store::schema::receipt_log;
use crate::store::statement::statement;

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Accepted,
    Duplicate,
    Conflict,
    Rejected,
}

impl AttemptOutcome {
    pub const ALL: [AttemptOutcome; 4] = [
        AttemptOutcome::Accepted,
        AttemptOutcome::Duplicate,
        AttemptOutcome::Conflict,
        AttemptOutcome::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Accepted => "accepted",
            AttemptOutcome::Duplicate => "duplicate",
            AttemptOutcome::Conflict => "conflict",
            AttemptOutcome::Rejected => "rejected",
        }
    }

    /// The outcome named `text`, if there is one.
    pub fn parse(text: &str) -> Option<AttemptOutcome> {
        AttemptOutcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
    }
}

/// A row of the receipt log: one submission attempt and its outcome.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[cfg_attr(feature = "http", derive(paperclip::actix::Apiv2Schema))]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(paperclip::actix::Apiv2Schema))]
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

#[cfg(feature = "http")]
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

/// One attempt to log.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub merchant_id: Option<String>,
    pub transaction_id: Option<String>,
    pub outcome: AttemptOutcome,
    /// Every problem found: null for an accepted or duplicate attempt.
    pub reasons: Option<Value>,
    /// What is kept of a body that could not be judged receipt by receipt.
    pub rejected_body: Option<String>,
}

impl Attempt {
    /// A rejected attempt and every reason for it.
    pub fn rejected(
        merchant_id: Option<&str>,
        transaction_id: Option<&str>,
        reasons: Value,
        rejected_body: Option<&str>,
    ) -> Attempt {
        Attempt {
            merchant_id: merchant_id.map(str::to_owned),
            transaction_id: transaction_id.map(str::to_owned),
            outcome: AttemptOutcome::Rejected,
            reasons: Some(reasons),
            rejected_body: rejected_body.map(str::to_owned),
        }
    }
}

/// Appends rows to the receipt log, in the order given, in one statement.
pub fn log_attempts(conn: &mut PgConnection, attempts: &[Attempt]) -> QueryResult<()> {
    if attempts.is_empty() {
        return Ok(());
    }
    // Text from the client may hold U+0000, which PostgreSQL cannot store: it is logged escaped.
    let escaped = |text: &Option<String>| text.as_deref().map(|text| escape_nul(text).into_owned());
    let merchant_ids: Vec<Option<String>> = attempts
        .iter()
        .map(|attempt| escaped(&attempt.merchant_id))
        .collect();
    let transaction_ids: Vec<Option<String>> = attempts
        .iter()
        .map(|attempt| escaped(&attempt.transaction_id))
        .collect();
    let outcomes: Vec<&str> = attempts.iter().map(|attempt| attempt.outcome.as_str()).collect();
    let reasons: Vec<Option<Value>> = attempts
        .iter()
        .map(|attempt| attempt.reasons.as_ref().map(escape_nul_in_json))
        .collect();
    let bodies: Vec<Option<String>> = attempts
        .iter()
        .map(|attempt| escaped(&attempt.rejected_body))
        .collect();
    statement(
        "INSERT INTO receipt_log (merchant_id, transaction_id, outcome, reasons, rejected_body)
         SELECT merchant_id, transaction_id, outcome, reasons, rejected_body
         FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[]) WITH ORDINALITY
             AS attempt (merchant_id, transaction_id, outcome, reasons, rejected_body, position)
         ORDER BY position",
    )
    .bind::<Array<Nullable<Text>>, _>(merchant_ids)
    .bind::<Array<Nullable<Text>>, _>(transaction_ids)
    .bind::<Array<Text>, _>(outcomes)
    .bind::<Array<Nullable<Jsonb>>, _>(reasons)
    .bind::<Array<Nullable<Text>>, _>(bodies)
    .execute(conn)?;
    Ok(())
}

/// Every attempt to submit one transaction id, oldest first (at most 100), within a merchant scope (None:
/// any merchant).
pub fn attempts(
    conn: &mut PgConnection,
    merchant_scope: Option<&str>,
    transaction_id: &str,
) -> QueryResult<Vec<LogEntry>> {
    let mut log = receipt_log::table
        .filter(receipt_log::transaction_id.eq(transaction_id))
        .select(LogEntry::as_select())
        .order(receipt_log::id.asc())
        .into_boxed();
    if let Some(merchant) = merchant_scope {
        log = log.filter(receipt_log::merchant_id.eq(merchant));
    }
    log.limit(100).load(conn)
}

/// Filters of the receipt log listing.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub merchant_scope: Option<String>,
    pub status: Option<AttemptOutcome>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// One page of the receipt log, newest first, with the total count.
pub fn list(
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
            query = query.filter(receipt_log::outcome.eq(status.as_str()));
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
