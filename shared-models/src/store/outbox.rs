//! The `outbox` table: accepted receipts waiting for Kafka, written by the statement that accepts them
//! ([`crate::store::accepted::accept_all`]) and drained by the relay, which deletes a row only after the
//! broker acknowledged its receipt, in the transaction that records the publication in
//! `receipt_publications`. A row holds the receipt's key only; the relay reads the receipt from
//! `accepted_receipts`. This module owns every other write to both tables and the pipeline reconcile over
//! them.
//!
//! Each publication is due for a check `grace` after it (twice as long after each replay, up to 64 times):
//! the reconcile checks the publications that fell due since its last pass (`reconcile_progress`) and queues
//! again the receipts the consumer has not stored. So that no publication falls due behind a pass that has
//! already looked, a publication is recorded under a shared advisory lock and with the database's clock, and
//! a pass takes its horizon under the same lock held exclusively: every publication committed after that has
//! a due time after the horizon, and every one committed before is visible to the pass.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::{Array, Int8, Text, Timestamptz};
use serde_json::value::RawValue;

use crate::domain::receipt::ReceiptEnvelope;
use crate::store::schema::{outbox, reconcile_progress};
use crate::store::statement::statement;

/// An outbox row to publish: its id, the message key (the place) and the payload.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: i64,
    pub key: String,
    pub payload: String,
}

/// Key of the advisory lock under which publications are recorded (shared) and a reconcile pass takes its
/// horizon (exclusive).
const PUBLICATION_LOCK: i64 = 0x006f_7574_626f_7821;

/// How many receipts wait for Kafka.
pub fn backlog(conn: &mut PgConnection) -> QueryResult<i64> {
    outbox::table.count().get_result(conn)
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
    /// The receipt's document as PostgreSQL writes it out: published as it is, not parsed into a tree and
    /// written again.
    #[diesel(sql_type = Text)]
    receipt: String,
}

/// Leaves the claim one plan, for the rest of its transaction: the outbox's key read in order, stopping after
/// `limit` rows. A queue's statistics seldom describe it, and PostgreSQL keeps a prepared statement's plan
/// until they change: planned while the outbox was empty or nearly so, the claim read every row above
/// `after` (a sequential or bitmap scan) and sorted them, so each claim read the whole backlog, and a sweep
/// from the oldest row every deleted row autovacuum had not yet removed (neither scan marks them dead in the
/// index, as an index scan does). In one run claims averaged 33 ms and 9,400 pages instead of 3 ms and
/// 1,000 (docs/performance.md, "The relay's claim kept a plan made for an empty outbox"). The mark after it,
/// by key, wants the index too.
const CLAIM_PLAN: &str = "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off";

/// Claims up to `limit` rows with ids above `after`, oldest first, each with its receipt as accepted, locking
/// the rows (not the accepted receipts) until the transaction ends; rows another relay holds are skipped, so
/// replicas never publish a row twice. Ids start at 1, so `after` 0 claims from the oldest row.
///
/// Claiming above the last row claimed skips the rows the relay has deleted and autovacuum has not yet
/// removed: from the oldest row, each claim stepped over every one of them, and with 150,000 of them
/// waiting for autovacuum a claim read 28,000 pages and took 100 ms (docs/performance.md, "The relay's claim
/// stepped over every row it had deleted"). The rows are taken first, by the outbox's key alone, and only
/// those are looked up among the accepted receipts, so the statement's cost is bounded by `limit` whatever
/// the planner's statistics say: as one join, PostgreSQL once planned it to read and sort far more than the
/// rows claimed (spilling to disk) when its estimates went stale under load, and claims took over a second.
pub fn claim(conn: &mut PgConnection, after: i64, limit: i64) -> QueryResult<Vec<Pending>> {
    conn.batch_execute(CLAIM_PLAN)?;
    let claimed: Vec<Claimed> = statement(
        "WITH claimed AS MATERIALIZED (
            SELECT id, message_key, merchant_id, transaction_id
            FROM outbox
            WHERE id > $2
            ORDER BY id
            LIMIT $1
            FOR UPDATE SKIP LOCKED
         )
         SELECT c.id, c.message_key, a.merchant_id, a.received_at, a.receipt::text AS receipt
         FROM claimed c
         JOIN accepted_receipts a ON a.merchant_id = c.merchant_id AND a.transaction_id = c.transaction_id
         ORDER BY c.id",
    )
    .bind::<Int8, _>(limit)
    .bind::<Int8, _>(after)
    .load(conn)?;
    claimed
        .into_iter()
        .map(|row| {
            let receipt = RawValue::from_string(row.receipt)
                .map_err(|error| DieselError::DeserializationError(Box::new(error)))?;
            Ok(Pending {
                id: row.id,
                key: row.message_key,
                payload: ReceiptEnvelope::new(row.merchant_id, row.received_at, receipt).to_json(),
            })
        })
        .collect()
}

/// Deletes the rows the broker acknowledged and records the publication of their receipts: when (the
/// latest, if a receipt is published again), how many times it was replayed, and when the reconcile is to
/// check that the consumer stored it.
pub fn mark_published(conn: &mut PgConnection, ids: &[i64], grace: Duration) -> QueryResult<()> {
    statement("SELECT pg_advisory_xact_lock_shared($1)")
        .bind::<Int8, _>(PUBLICATION_LOCK)
        .execute(conn)?;
    statement(
        "WITH published AS (
            DELETE FROM outbox WHERE id = ANY($1) RETURNING merchant_id, transaction_id, replays
         )
         INSERT INTO receipt_publications (merchant_id, transaction_id, published_at, replays, check_due_at)
         SELECT merchant_id, transaction_id, clock_timestamp(), replays,
                clock_timestamp() + make_interval(secs => $2::float8 / 1000 * (1 << least(replays, 6)))
         FROM published
         ORDER BY merchant_id, transaction_id
         ON CONFLICT (merchant_id, transaction_id) DO UPDATE
         SET published_at = excluded.published_at, replays = excluded.replays,
             check_due_at = excluded.check_due_at",
    )
    .bind::<Array<Int8>, _>(ids)
    .bind::<Int8, _>(millis(grace))
    .execute(conn)?;
    Ok(())
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
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

/// The receipts that one reconcile pass (or an operator's replay) queued for publication again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed(pub usize);

#[derive(QueryableByName)]
struct Horizon {
    #[diesel(sql_type = Timestamptz)]
    horizon: DateTime<Utc>,
}

/// Queues again the receipts published with a check due in `(after, until]` that the consumer has not
/// stored, each counting one more replay, in the order their checks fell due. A receipt queued again keeps
/// its due time until it is published again, and the window of the next pass begins after it, so no receipt
/// is queued twice. Each check is a lookup in the receipts' key: without `OFFSET 0` the planner would merge
/// the window with the whole key, every receipt ever stored; and with JIT off, as the cost of 90,000 lookups
/// would have it compile the statement, which took longer than running it.
fn replay_missing(conn: &mut PgConnection, after: DateTime<Utc>, until: DateTime<Utc>) -> QueryResult<usize> {
    diesel::sql_query("SET LOCAL jit = off").execute(conn)?;
    statement(
        "INSERT INTO outbox (merchant_id, transaction_id, message_key, replays)
         SELECT p.merchant_id, p.transaction_id,
                (SELECT a.place_id FROM accepted_receipts a
                 WHERE a.merchant_id = p.merchant_id AND a.transaction_id = p.transaction_id),
                p.replays + 1
         FROM receipt_publications p
         WHERE p.check_due_at > $1 AND p.check_due_at <= $2
           AND NOT EXISTS (SELECT 1 FROM receipts r
                           WHERE r.merchant_id = p.merchant_id AND r.transaction_id = p.transaction_id
                           OFFSET 0)
         ORDER BY p.check_due_at",
    )
    .bind::<Timestamptz, _>(after)
    .bind::<Timestamptz, _>(until)
    .execute(conn)
}

/// How far the reconcile has checked, locked until the transaction ends, so passes take turns.
fn checked_until(conn: &mut PgConnection) -> QueryResult<DateTime<Utc>> {
    reconcile_progress::table
        .select(reconcile_progress::checked_until)
        .for_update()
        .first(conn)
}

/// The pipeline reconcile: every published receipt whose check fell due since the last pass and that the
/// consumer has still not stored was lost on the way, by a broker that lost its messages or a consumer that
/// skipped them, and is queued for publication again. Safe to run in several replicas at once: passes take
/// turns, and each checks what the one before left.
pub fn reconcile(conn: &mut PgConnection) -> QueryResult<Replayed> {
    let horizon = conn.transaction(|conn| {
        statement("SELECT pg_advisory_xact_lock($1)")
            .bind::<Int8, _>(PUBLICATION_LOCK)
            .execute(conn)?;
        statement("SELECT clock_timestamp() AS horizon").get_result::<Horizon>(conn)
    })?;
    conn.transaction(|conn| {
        let checked_until = checked_until(conn)?;
        if horizon.horizon <= checked_until {
            return Ok(Replayed(0));
        }
        let replayed = replay_missing(conn, checked_until, horizon.horizon)?;
        diesel::update(reconcile_progress::table)
            .set(reconcile_progress::checked_until.eq(horizon.horizon))
            .execute(conn)?;
        Ok(Replayed(replayed))
    })
}

/// Queues again every published receipt the consumer has not stored among those the reconcile has not checked
/// yet, whether their check is due or not (for an operator who knows the broker lost messages; those checked
/// before were stored, or were queued again then). The consumer is idempotent, so a receipt published twice
/// (as one is when this runs twice before the relay has published what the first run queued) is stored once.
pub fn replay_unconsumed(conn: &mut PgConnection) -> QueryResult<Replayed> {
    // The last instant PostgreSQL's four-digit years print: later than any check's due time.
    let end_of_time = DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::UNIX_EPOCH);
    conn.transaction(|conn| {
        let checked_until = checked_until(conn)?;
        replay_missing(conn, checked_until, end_of_time).map(Replayed)
    })
}
