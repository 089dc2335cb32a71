//! The pipeline reconcile runs beside the relay: a pass that takes long never holds up publication.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use shared_models::domain::receipt::ReceiptEnvelope;
use shared_models::store::schema::{accepted_receipts, outbox};
use shared_models::store::{receipts, PgPool};
use shared_models::testing::service_url;

use super::{receipt, spawn_producer_with, Producer};

#[derive(QueryableByName)]
struct Waiting {
    #[diesel(sql_type = BigInt)]
    deletes: i64,
}

/// The outbox row of a receipt: when it was published, if it still exists.
fn outbox_row(pool: &PgPool, transaction_id: &str) -> Option<Option<DateTime<Utc>>> {
    let mut conn = pool.get().expect("connection");
    outbox::table
        .filter(outbox::transaction_id.eq(transaction_id))
        .select(outbox::published_at)
        .first(&mut conn)
        .optional()
        .expect("the outbox row")
}

/// The envelope the relay publishes for an accepted receipt.
fn accepted_envelope(pool: &PgPool, transaction_id: &str) -> ReceiptEnvelope {
    let mut conn = pool.get().expect("connection");
    let (merchant_id, received_at, receipt): (String, DateTime<Utc>, serde_json::Value) =
        accepted_receipts::table
            .filter(accepted_receipts::transaction_id.eq(transaction_id))
            .select((
                accepted_receipts::merchant_id,
                accepted_receipts::received_at,
                accepted_receipts::receipt,
            ))
            .first(&mut conn)
            .expect("the accepted receipt");
    ReceiptEnvelope::new(
        merchant_id,
        received_at,
        serde_json::from_value(receipt).expect("a receipt"),
    )
}

/// Waits until `done` holds, or fails with `what` after 20 s.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn post(producer: &Producer, token: &str, transaction_id: &str) {
    let body = serde_json::to_vec(&receipt(transaction_id)).expect("json");
    assert_eq!(producer.post_raw(token, body).await.0, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receipts_are_published_while_a_reconcile_pass_waits() {
    let producer = spawn_producer_with(&service_url("TEST_KAFKA_BROKERS"), |config| {
        config.relay.reconcile_interval_seconds = 1;
        config.relay.reconcile_grace_seconds = 1;
    })
    .await;
    let token = producer.merchant("m-1").await;

    // A receipt published and stored by the consumer: the reconcile's next pass deletes its outbox row.
    post(&producer, &token, "stored").await;
    eventually("the first receipt was never published", || {
        outbox_row(&producer.pool, "stored").is_some_and(|published| published.is_some())
    })
    .await;
    let envelope = accepted_envelope(&producer.pool, "stored");
    let mut conn = producer.pool.get().expect("connection");
    receipts::store_receipts(&mut conn, &[envelope]).expect("stored as the consumer stores it");

    // Another transaction holds that row, so the pass that wants to delete it waits.
    let (locked, is_locked) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let pool = producer.pool.clone();
    let holder = std::thread::spawn(move || {
        let mut conn = pool.get().expect("connection");
        conn.transaction(|conn| {
            diesel::sql_query("SELECT id FROM outbox WHERE transaction_id = 'stored' FOR UPDATE")
                .execute(conn)?;
            locked.send(()).expect("the test waits");
            released.recv().ok();
            Ok::<_, diesel::result::Error>(())
        })
        .expect("the holding transaction");
    });
    is_locked.recv().expect("the row is held");
    eventually("no reconcile pass started waiting for the held row", || {
        diesel::sql_query(
            "SELECT count(*) AS deletes FROM pg_stat_activity
             WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE FROM outbox%'",
        )
        .get_result::<Waiting>(&mut conn)
        .expect("the sessions")
        .deletes
            > 0
    })
    .await;

    // While it waits, a new receipt is still published.
    post(&producer, &token, "while-reconciling").await;
    eventually(
        "a receipt accepted during the reconcile pass was not published",
        || outbox_row(&producer.pool, "while-reconciling").is_some_and(|published| published.is_some()),
    )
    .await;

    // Once the row is free, the pass finishes: the stored receipt's outbox row is gone.
    release.send(()).expect("the holder waits");
    holder.join().expect("the holder");
    eventually("the reconcile pass never finished", || {
        outbox_row(&producer.pool, "stored").is_none()
    })
    .await;
}
