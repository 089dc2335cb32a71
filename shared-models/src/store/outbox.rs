//! The `outbox` table: accepted receipts waiting for Kafka, written in the transaction that accepts them and
//! drained by the relay, which marks a row published only after the broker's acknowledgement. A row holds
//! the receipt's key only; the relay reads the receipt from `accepted_receipts`, so the row it rewrites to
//! mark it published is small. This module
//! owns every write to it, and to `receipt_publications`, which keeps when each receipt was acknowledged
//! after its outbox row is gone.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Int8, Jsonb, Text, Timestamptz};

use crate::domain::receipt::ReceiptEnvelope;
use crate::store::schema::outbox;
use crate::store::statement::statement;

/// An outbox row to publish: its id, the message key (the place) and the payload.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: i64,
    pub key: String,
    pub payload: String,
}

/// An accepted receipt to queue for Kafka: the receipt itself is read from `accepted_receipts` when it is
/// published, so the outbox row holds only its key.
pub struct Queued {
    pub merchant_id: String,
    pub transaction_id: String,
    pub place_id: String,
}

/// Queues accepted receipts for Kafka, in the transaction that accepts them, in the order given.
pub fn enqueue_all(conn: &mut PgConnection, receipts: &[Queued]) -> QueryResult<()> {
    if receipts.is_empty() {
        return Ok(());
    }
    let merchant_ids: Vec<&str> = receipts
        .iter()
        .map(|queued| queued.merchant_id.as_str())
        .collect();
    let transaction_ids: Vec<&str> = receipts
        .iter()
        .map(|queued| queued.transaction_id.as_str())
        .collect();
    let keys: Vec<&str> = receipts.iter().map(|queued| queued.place_id.as_str()).collect();
    statement(
        "INSERT INTO outbox (merchant_id, transaction_id, message_key)
         SELECT merchant_id, transaction_id, message_key
         FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY
             AS new (merchant_id, transaction_id, message_key, position)
         ORDER BY position",
    )
    .bind::<Array<Text>, _>(merchant_ids)
    .bind::<Array<Text>, _>(transaction_ids)
    .bind::<Array<Text>, _>(keys)
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

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = Int8)]
    id: i64,
    #[diesel(sql_type = Text)]
    message_key: String,
    #[diesel(sql_type = Text)]
    merchant_id: String,
    #[diesel(sql_type = Timestamptz)]
    received_at: DateTime<Utc>,
    #[diesel(sql_type = Jsonb)]
    receipt: serde_json::Value,
}

/// Claims up to `limit` unpublished rows, oldest first, each with its receipt as accepted, locking the rows
/// (not the accepted receipts) until the transaction ends; rows another relay holds are skipped, so replicas
/// never publish a row twice.
pub fn claim(conn: &mut PgConnection, limit: i64) -> QueryResult<Vec<Pending>> {
    let claimed: Vec<Claimed> = statement(
        "SELECT o.id, o.message_key, a.merchant_id, a.received_at, a.receipt
         FROM outbox o
         JOIN accepted_receipts a ON a.merchant_id = o.merchant_id AND a.transaction_id = o.transaction_id
         WHERE o.published_at IS NULL
         ORDER BY o.id
         LIMIT $1
         FOR UPDATE OF o SKIP LOCKED",
    )
    .bind::<Int8, _>(limit)
    .load(conn)?;
    Ok(claimed
        .into_iter()
        .map(|row| Pending {
            id: row.id,
            key: row.message_key,
            payload: ReceiptEnvelope::new(row.merchant_id, row.received_at, row.receipt).to_json(),
        })
        .collect())
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
    .bind::<Timestamptz, _>(Utc::now())
    .bind::<Array<Int8>, _>(ids)
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
        .bind::<Int8, _>(grace_ms)
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
        .bind::<Int8, _>(grace_ms)
        .execute(conn)?;
        Ok(Reconciled { confirmed, replayed })
    })
}
