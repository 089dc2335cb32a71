//! The `outbox` table: accepted receipts waiting for Kafka, written in the transaction that accepts them and
//! drained by the relay, which marks a row published only after the broker's acknowledgement. This module
//! owns every write to it, and to `receipt_publications`, which keeps when each receipt was acknowledged
//! after its outbox row is gone.

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types::{Array, Text};

use crate::domain::receipt::ReceiptEnvelope;
use crate::store::schema::outbox;
use crate::store::statement::statement;

/// An outbox row to publish: its id, the message key (the place) and the payload.
#[derive(Debug, Clone, Queryable)]
pub struct Pending {
    pub id: i64,
    pub key: String,
    pub payload: String,
}

/// Queues accepted receipts for Kafka, in the transaction that accepts them, in the order given.
pub fn enqueue_all(conn: &mut PgConnection, envelopes: &[ReceiptEnvelope]) -> QueryResult<()> {
    if envelopes.is_empty() {
        return Ok(());
    }
    let merchant_ids: Vec<&str> = envelopes
        .iter()
        .map(|envelope| envelope.merchant_id.as_str())
        .collect();
    let transaction_ids: Vec<&str> = envelopes
        .iter()
        .map(|envelope| envelope.receipt.transaction_id.as_str())
        .collect();
    let keys: Vec<&str> = envelopes
        .iter()
        .map(|envelope| envelope.receipt.place_id.as_str())
        .collect();
    let payloads: Vec<String> = envelopes.iter().map(ReceiptEnvelope::to_json).collect();
    statement(
        "INSERT INTO outbox (merchant_id, transaction_id, message_key, payload)
         SELECT merchant_id, transaction_id, message_key, payload
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY
             AS new (merchant_id, transaction_id, message_key, payload, position)
         ORDER BY position",
    )
    .bind::<Array<Text>, _>(merchant_ids)
    .bind::<Array<Text>, _>(transaction_ids)
    .bind::<Array<Text>, _>(keys)
    .bind::<Array<Text>, _>(payloads)
    .execute(conn)?;
    Ok(())
}

/// How many receipts wait for Kafka.
pub fn backlog(conn: &mut PgConnection) -> QueryResult<i64> {
    outbox::table
        .filter(outbox::published_at.is_null())
        .count()
        .get_result(conn)
}

/// Claims up to `limit` unpublished rows, oldest first, locking them until the transaction ends; rows another
/// relay holds are skipped, so replicas never publish a row twice.
pub fn claim(conn: &mut PgConnection, limit: i64) -> QueryResult<Vec<Pending>> {
    outbox::table
        .filter(outbox::published_at.is_null())
        .order(outbox::id.asc())
        .limit(limit)
        .select((outbox::id, outbox::message_key, outbox::payload))
        .for_update()
        .skip_locked()
        .load(conn)
}

/// Marks rows published (the broker acknowledged them), and records when for their receipts (the latest
/// acknowledgement, if a receipt is published again).
pub fn mark_published(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<()> {
    statement(
        "WITH marked AS (
            UPDATE outbox SET published_at = $1, attempts = attempts + 1 WHERE id = ANY($2)
            RETURNING merchant_id, transaction_id
         )
         INSERT INTO receipt_publications (merchant_id, transaction_id, published_at)
         SELECT merchant_id, transaction_id, $1 FROM marked
         ORDER BY merchant_id, transaction_id
         ON CONFLICT (merchant_id, transaction_id) DO UPDATE SET published_at = excluded.published_at",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(Utc::now())
    .bind::<diesel::sql_types::Array<diesel::sql_types::Int8>, _>(ids)
    .execute(conn)?;
    Ok(())
}

/// Records a failed publication of a row, with the broker's error.
pub fn record_failure(conn: &mut PgConnection, id: i64, error: &str) -> QueryResult<()> {
    diesel::update(outbox::table.filter(outbox::id.eq(id)))
        .set((
            outbox::attempts.eq(outbox::attempts + 1),
            outbox::last_error.eq(error),
        ))
        .execute(conn)?;
    Ok(())
}

/// What one reconcile pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Published rows whose receipt the consumer has stored: done, and deleted from the outbox.
    pub confirmed: usize,
    /// Published rows whose receipt is still missing after the grace period: queued for publication again.
    pub replayed: usize,
}

/// The pipeline reconcile: a published receipt that the consumer has stored is done (its outbox row is
/// deleted); one that is still missing `grace` after publication (twice as long after each replay, up to 64
/// times) was lost on the way, by a broker that lost its messages or a consumer that skipped them, and is
/// published again. Safe to run in several replicas at once.
pub fn reconcile(conn: &mut PgConnection, grace: Duration) -> QueryResult<Reconciled> {
    let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    conn.transaction(|conn| {
        let confirmed = diesel::sql_query(
            "DELETE FROM outbox o
             WHERE o.published_at < now() - make_interval(secs => $1::float8 / 1000)
               AND EXISTS (SELECT 1 FROM receipts r
                           WHERE r.merchant_id = o.merchant_id AND r.transaction_id = o.transaction_id)",
        )
        .bind::<diesel::sql_types::Int8, _>(grace_ms)
        .execute(conn)?;
        let replayed = diesel::sql_query(
            "UPDATE outbox o SET published_at = NULL, replays = o.replays + 1
             WHERE o.id IN (
               SELECT id FROM outbox s
               WHERE s.published_at < now() - make_interval(secs => $1::float8 / 1000 * (1 << least(s.replays, 6)))
                 AND NOT EXISTS (SELECT 1 FROM receipts r
                                 WHERE r.merchant_id = s.merchant_id AND r.transaction_id = s.transaction_id)
               FOR UPDATE SKIP LOCKED)",
        )
        .bind::<diesel::sql_types::Int8, _>(grace_ms)
        .execute(conn)?;
        Ok(Reconciled { confirmed, replayed })
    })
}
