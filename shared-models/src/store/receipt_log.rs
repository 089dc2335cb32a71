//! The `receipt_log` table: every submission attempt, accepted, duplicate, conflict or rejected, with the
//! reasons and what is kept of a rejected body. This module owns every write to it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::text::{escape_nul, escape_nul_in_json};
use crate::store::schema::receipt_log;

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

/// Appends a row to the receipt log.
pub fn log_attempt(
    conn: &mut PgConnection,
    merchant_id: Option<&str>,
    transaction_id: Option<&str>,
    outcome: AttemptOutcome,
    reasons: Option<Value>,
    rejected_body: Option<&str>,
) -> QueryResult<()> {
    // Text from the client may hold U+0000, which PostgreSQL cannot store: it is logged escaped.
    diesel::insert_into(receipt_log::table)
        .values((
            receipt_log::merchant_id.eq(merchant_id.map(|text| escape_nul(text).into_owned())),
            receipt_log::transaction_id.eq(transaction_id.map(|text| escape_nul(text).into_owned())),
            receipt_log::outcome.eq(outcome.as_str()),
            receipt_log::reasons.eq(reasons.as_ref().map(escape_nul_in_json)),
            receipt_log::rejected_body.eq(rejected_body.map(|text| escape_nul(text).into_owned())),
        ))
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
