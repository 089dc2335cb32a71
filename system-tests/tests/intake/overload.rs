//! Intake under more load than it can write: past `INTAKE_QUEUE_RECEIPTS` receipts queued or being written, a
//! request is answered 503 at once and nothing of it is kept, so the client's retry is accepted as new.

use std::time::Duration;

use diesel::prelude::*;
use serde_json::{json, Value};
use shared_models::store::schema::{accepted_receipts, receipt_log};
use shared_models::testing::service_url;
use system_tests::services;
use tokio::time::timeout;

use super::{receipt, spawn_producer_with, HeldLock};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_its_queue_intake_answers_503_at_once_and_keeps_nothing_of_the_request() {
    let producer = spawn_producer_with(&service_url("TEST_KAFKA_BROKERS"), |config| {
        config.intake.group_writers = 1;
        config.intake.queue_receipts = 3;
    })
    .await;
    let token = producer.merchant("m-1").await;
    let body = |transaction_id: &str| serde_json::to_vec(&receipt(transaction_id)).expect("json");
    assert_eq!(producer.post_raw(&token, body("before")).await.0, 202);

    // Another session holds the receipt log, so the next group's writer waits at its insert.
    let log = HeldLock::take(&producer.pool, "LOCK TABLE receipt_log IN EXCLUSIVE MODE");

    // A batch of three fills intake's room, and its group waits for the log.
    let filling = json!([receipt("full-1"), receipt("full-2"), receipt("full-3")]);
    let held = {
        let (producer, token) = (producer.clone(), token.clone());
        tokio::spawn(async move { producer.post_batch(&token, &filling).await })
    };
    log.until_waited_for(
        &producer.pool,
        "%receipt_log%",
        "the batch's group never waited for the receipt log",
    )
    .await;

    // With the room full, a receipt and a batch are turned away while the group still waits: answered at
    // once, not after the log is released (a request that waited would time out here).
    let wait = Duration::from_secs(10);
    let late_batch = json!([receipt("late-1"), receipt("late-2")]);
    let turned_away = [
        timeout(wait, producer.post_raw(&token, body("late"))).await,
        timeout(wait, producer.post_batch(&token, &late_batch)).await,
    ];
    for answered in turned_away {
        let (status, answer) = answered.expect("answered while the group waits");
        assert_eq!(status, 503, "{answer}");
        assert_eq!(answer["error"], "unavailable", "{answer}");
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|m| m.contains("receipt intake")),
            "{answer}"
        );
    }
    assert!(
        !held.is_finished(),
        "the batch was answered before the log was released"
    );

    log.release();
    let (status, answer) = held.await.expect("the batch's task");
    assert_eq!(status, 200, "{answer}");
    let statuses: Vec<&Value> = answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|result| &result["status"])
        .collect();
    assert_eq!(statuses, [&json!("accepted"); 3], "{answer}");

    // Nothing of the turned-away requests was kept, so the retry of one is a new receipt.
    let mut conn = producer.pool.get().expect("connection");
    let late: i64 = accepted_receipts::table
        .filter(accepted_receipts::transaction_id.like("late%"))
        .count()
        .get_result(&mut conn)
        .expect("count");
    let logged: i64 = receipt_log::table
        .filter(receipt_log::transaction_id.like("late%"))
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!((late, logged), (0, 0));
    let (status, answer) = producer.post_raw(&token, body("late")).await;
    assert_eq!((status, &answer["status"]), (202, &json!("accepted")), "{answer}");
    let metrics = services::metrics(&producer.http, &producer.url).await;
    assert!(
        metrics
            .lines()
            .any(|line| line == "producer_intake_turned_away_receipts_total 3"),
        "the three receipts turned away are counted:\n{metrics}"
    );
}
