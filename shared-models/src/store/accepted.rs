//! The `accepted_receipts` table: the idempotency record of every receipt the producer accepted, keyed on
//! (merchant, transaction id). This module owns every write to it, and queues each receipt it records in the
//! same statement (its `outbox` row); when Kafka acknowledged each receipt is kept beside it, in
//! `receipt_publications` (written by [`crate::store::outbox`]).

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Text, Timestamptz};

use crate::domain::receipt::Receipt;
use crate::store::schema::{accepted_receipts, receipt_publications};
use crate::store::statement::statement;

/// The accepted record of one receipt, with when Kafka acknowledged it.
#[derive(Debug, Clone, Queryable)]
pub struct AcceptedReceipt {
    pub merchant_id: String,
    pub transaction_id: String,
    pub place_id: String,
    pub received_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

/// A receipt to record as accepted.
pub struct NewAccepted<'a> {
    pub merchant_id: &'a str,
    pub receipt: &'a Receipt,
    /// The receipt's canonical JSON form ([`Receipt::document_and_hash`]), stored as its document.
    pub document: &'a str,
    pub content_hash: &'a str,
}

/// A merchant's transaction id: what makes a receipt unique.
pub type ReceiptKey = (String, String);

#[derive(QueryableByName)]
struct Fingerprint {
    #[diesel(sql_type = Text)]
    merchant_id: String,
    #[diesel(sql_type = Text)]
    transaction_id: String,
    #[diesel(sql_type = Text)]
    content_hash: String,
    #[diesel(sql_type = Timestamptz)]
    received_at: DateTime<Utc>,
}

/// Records receipts as accepted and queues each one recorded for Kafka (its `outbox` row, in the order given),
/// in one statement, and returns the keys of those recorded; a receipt whose merchant had sent its
/// transaction id before is left out. A key must appear at most once among `receipts`.
pub fn accept_all(
    conn: &mut PgConnection,
    receipts: &[NewAccepted],
    received_at: DateTime<Utc>,
) -> QueryResult<HashSet<ReceiptKey>> {
    if receipts.is_empty() {
        return Ok(HashSet::new());
    }
    let mut merchant_ids = Vec::with_capacity(receipts.len());
    let mut transaction_ids = Vec::with_capacity(receipts.len());
    let mut place_ids = Vec::with_capacity(receipts.len());
    let mut content_hashes = Vec::with_capacity(receipts.len());
    let mut documents = Vec::with_capacity(receipts.len());
    for new in receipts {
        merchant_ids.push(new.merchant_id);
        transaction_ids.push(new.receipt.transaction_id.as_str());
        place_ids.push(new.receipt.place_id.as_str());
        content_hashes.push(new.content_hash);
        documents.push(new.document);
    }
    // Keys are inserted in order, so that two transactions inserting overlapping keys wait for each other
    // instead of deadlocking.
    let recorded: Vec<Fingerprint> = statement(
        "WITH new AS (
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY
                AS new (merchant_id, transaction_id, place_id, content_hash, receipt, position)
         ), recorded AS (
            INSERT INTO accepted_receipts (merchant_id, transaction_id, place_id, content_hash, receipt, received_at)
            SELECT merchant_id, transaction_id, place_id, content_hash, receipt::json, $6
            FROM new
            ORDER BY merchant_id, transaction_id
            ON CONFLICT DO NOTHING
            RETURNING merchant_id, transaction_id, content_hash, received_at
         ), queued AS (
            INSERT INTO outbox (merchant_id, transaction_id, message_key)
            SELECT new.merchant_id, new.transaction_id, new.place_id
            FROM new JOIN recorded USING (merchant_id, transaction_id)
            ORDER BY new.position
         )
         SELECT merchant_id, transaction_id, content_hash, received_at FROM recorded",
    )
    .bind::<Array<Text>, _>(merchant_ids)
    .bind::<Array<Text>, _>(transaction_ids)
    .bind::<Array<Text>, _>(place_ids)
    .bind::<Array<Text>, _>(content_hashes)
    .bind::<Array<Text>, _>(documents)
    .bind::<Timestamptz, _>(received_at)
    .load(conn)?;
    Ok(recorded
        .into_iter()
        .map(|row| (row.merchant_id, row.transaction_id))
        .collect())
}

/// The content hash and acceptance time of each of these receipts that was accepted before.
pub fn fingerprints(
    conn: &mut PgConnection,
    keys: &BTreeSet<ReceiptKey>,
) -> QueryResult<HashMap<ReceiptKey, (String, DateTime<Utc>)>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let (merchant_ids, transaction_ids): (Vec<&String>, Vec<&String>) = keys
        .iter()
        .map(|(merchant, transaction)| (merchant, transaction))
        .unzip();
    let found: Vec<Fingerprint> = statement(
        "SELECT a.merchant_id, a.transaction_id, a.content_hash, a.received_at
         FROM unnest($1::text[], $2::text[]) AS key (merchant_id, transaction_id)
         JOIN accepted_receipts AS a USING (merchant_id, transaction_id)",
    )
    .bind::<Array<Text>, _>(merchant_ids)
    .bind::<Array<Text>, _>(transaction_ids)
    .load(conn)?;
    Ok(found
        .into_iter()
        .map(|row| {
            (
                (row.merchant_id, row.transaction_id),
                (row.content_hash, row.received_at),
            )
        })
        .collect())
}

/// The accepted record of a transaction id, within a merchant scope (None: any merchant).
pub fn find(
    conn: &mut PgConnection,
    merchant_scope: Option<&str>,
    transaction_id: &str,
) -> QueryResult<Option<AcceptedReceipt>> {
    let mut accepted = accepted_receipts::table
        .left_join(
            receipt_publications::table.on(receipt_publications::merchant_id
                .eq(accepted_receipts::merchant_id)
                .and(receipt_publications::transaction_id.eq(accepted_receipts::transaction_id))),
        )
        .filter(accepted_receipts::transaction_id.eq(transaction_id))
        .select((
            accepted_receipts::merchant_id,
            accepted_receipts::transaction_id,
            accepted_receipts::place_id,
            accepted_receipts::received_at,
            receipt_publications::published_at.nullable(),
        ))
        .into_boxed();
    if let Some(merchant) = merchant_scope {
        accepted = accepted.filter(accepted_receipts::merchant_id.eq(merchant));
    }
    accepted.first(conn).optional()
}
