//! The pipeline reconcile: a published receipt the consumer has not stored when its check falls due is queued
//! again, with twice the wait after each replay; a stored one never is; a pass that waits never holds up
//! publication; and a receipt queued below the outbox rows the relay has already claimed is still published.
//! No consumer runs here, so a receipt is stored only when a test stores it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use shared_models::domain::receipt::ReceiptEnvelope;
use shared_models::store::schema::{accepted_receipts, outbox, receipt_publications, reconcile_progress};
use shared_models::store::{receipts, PgPool};
use shared_models::testing::service_url;

use super::{eventually, receipt, spawn_producer_with, HeldLock, Producer};

/// A receipt's publication, once published: how many times it was replayed, when it was last published and
/// when its check falls due.
#[derive(Queryable)]
struct Publication {
    replays: i32,
    published_at: DateTime<Utc>,
    check_due_at: Option<DateTime<Utc>>,
}

fn publication(pool: &PgPool, transaction_id: &str) -> Option<Publication> {
    let mut conn = pool.get().expect("connection");
    receipt_publications::table
        .filter(receipt_publications::transaction_id.eq(transaction_id))
        .select((
            receipt_publications::replays,
            receipt_publications::published_at,
            receipt_publications::check_due_at,
        ))
        .first(&mut conn)
        .optional()
        .expect("the publication")
}

fn replays(pool: &PgPool, transaction_id: &str) -> Option<i32> {
    publication(pool, transaction_id).map(|publication| publication.replays)
}

fn is_queued(pool: &PgPool, transaction_id: &str) -> bool {
    let mut conn = pool.get().expect("connection");
    diesel::select(diesel::dsl::exists(
        outbox::table.filter(outbox::transaction_id.eq(transaction_id)),
    ))
    .get_result(&mut conn)
    .expect("the outbox")
}

fn checked_until(pool: &PgPool) -> DateTime<Utc> {
    let mut conn = pool.get().expect("connection");
    reconcile_progress::table
        .select(reconcile_progress::checked_until)
        .first(&mut conn)
        .expect("the reconcile's progress")
}

/// Stores an accepted receipt as the consumer does.
fn store(pool: &PgPool, transaction_id: &str) {
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
    let envelope = ReceiptEnvelope::new(
        merchant_id,
        received_at,
        serde_json::from_value(receipt).expect("a receipt"),
    );
    receipts::store_receipts(&mut conn, &[envelope]).expect("stored as the consumer stores it");
}

async fn post(producer: &Producer, token: &str, transaction_id: &str) {
    let body = serde_json::to_vec(&receipt(transaction_id)).expect("json");
    assert_eq!(producer.post_raw(token, body).await.0, 202);
}

async fn published(producer: &Producer, transaction_id: &str) {
    eventually(&format!("{transaction_id} was never published"), || {
        publication(&producer.pool, transaction_id).is_some() && !is_queued(&producer.pool, transaction_id)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receipt_the_consumer_never_stored_is_published_again_until_it_is() {
    let producer = spawn_producer_with(&service_url("TEST_KAFKA_BROKERS"), |config| {
        config.relay.reconcile_interval_seconds = 1;
        config.relay.reconcile_grace_seconds = 1;
    })
    .await;
    let token = producer.merchant("m-1").await;
    post(&producer, &token, "stored").await;
    store(&producer.pool, "stored");
    post(&producer, &token, "lost").await;

    // Checked 1 s after publication, then 2 s after the replay, then 4 s after the next: each time missing.
    eventually("the lost receipt was not published again twice", || {
        replays(&producer.pool, "lost").is_some_and(|replays| replays >= 2)
    })
    .await;
    let lost = publication(&producer.pool, "lost").expect("published");
    let wait = lost.check_due_at.expect("a check is due") - lost.published_at;
    assert!(
        wait >= chrono::Duration::seconds(1 << lost.replays),
        "replay {} waits {wait} before its check",
        lost.replays
    );

    // Once stored, the check that falls due finds it and queues nothing; the stored one was never queued.
    store(&producer.pool, "lost");
    let lost = publication(&producer.pool, "lost").expect("published");
    let due = lost.check_due_at.expect("a check is due");
    eventually("the reconcile never reached the lost receipt's check", || {
        checked_until(&producer.pool) > due
    })
    .await;
    assert_eq!(replays(&producer.pool, "lost"), Some(lost.replays));
    assert!(!is_queued(&producer.pool, "lost"));
    assert_eq!(replays(&producer.pool, "stored"), Some(0));
    assert!(!is_queued(&producer.pool, "stored"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operators_replay_queues_every_published_receipt_the_consumer_lacks_at_once() {
    let producer = spawn_producer_with(&service_url("TEST_KAFKA_BROKERS"), |_| {}).await;
    let token = producer.merchant("m-1").await;
    post(&producer, &token, "stored").await;
    post(&producer, &token, "lost").await;
    published(&producer, "stored").await;
    published(&producer, "lost").await;
    store(&producer.pool, "stored");

    let pool = producer.pool.clone();
    let queued = tokio::task::spawn_blocking(move || producer::relay::replay_unconsumed(&pool))
        .await
        .expect("the replay task")
        .expect("the replay");
    assert_eq!(queued, 1, "only the receipt the consumer lacks");
    eventually("the replayed receipt was not published again", || {
        replays(&producer.pool, "lost") == Some(1) && !is_queued(&producer.pool, "lost")
    })
    .await;
    assert_eq!(replays(&producer.pool, "stored"), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receipts_are_published_while_a_reconcile_pass_waits() {
    let producer = spawn_producer_with(&service_url("TEST_KAFKA_BROKERS"), |config| {
        config.relay.reconcile_interval_seconds = 1;
        config.relay.reconcile_grace_seconds = 1;
    })
    .await;
    let token = producer.merchant("m-1").await;

    // Another replica's pass holds the reconcile's progress, so this producer's next pass waits for it.
    let progress = HeldLock::take(
        &producer.pool,
        "SELECT checked_until FROM reconcile_progress FOR UPDATE",
    );
    let held_at = Utc::now();
    progress
        .until_waited_for(
            &producer.pool,
            "%reconcile_progress%FOR UPDATE%",
            "no reconcile pass started waiting for the other one",
        )
        .await;

    // While it waits, a new receipt is still published.
    post(&producer, &token, "while-reconciling").await;
    published(&producer, "while-reconciling").await;

    // Once the other pass is done, this one goes on.
    progress.release();
    eventually("the waiting reconcile pass never finished", || {
        checked_until(&producer.pool) > held_at
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receipt_queued_below_the_rows_the_relay_has_claimed_is_still_published() {
    let producer = spawn_producer_with(&service_url("TEST_KAFKA_BROKERS"), |_| {}).await;
    let token = producer.merchant("m-1").await;
    post(&producer, &token, "first").await;
    post(&producer, &token, "second").await;
    published(&producer, "first").await;
    published(&producer, "second").await;

    // The relay claims above the last row it claimed (2, in this fresh database). A transaction that took its
    // id early and committed late leaves a row below that: here the first receipt queued again under its old
    // id, 1.
    let mut conn = producer.pool.get().expect("connection");
    diesel::sql_query(
        "INSERT INTO outbox (id, merchant_id, transaction_id, message_key, replays)
         VALUES (1, 'm-1', 'first', 'store-1', 1)",
    )
    .execute(&mut conn)
    .expect("a row below the relay's last claim");
    drop(conn);

    eventually("the row below the relay's last claim was never published", || {
        replays(&producer.pool, "first") == Some(1) && !is_queued(&producer.pool, "first")
    })
    .await;
}
