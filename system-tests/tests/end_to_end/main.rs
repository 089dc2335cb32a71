//! The whole pipeline through real services: receipts posted to the producer reach the consumer's
//! analytics through the outbox, the Kafka broker, PostgreSQL and the worker's rollups.

use serde_json::{json, Value};
use shared_models::testing::ReceiptBody;
use system_tests::services::{metrics, Services};

mod console;
mod oracle;

/// Partitions of the receipts topic.
const PARTITIONS: i32 = 3;

/// The producer, the consumer and a worker.
async fn spawn_services() -> Services {
    Services::builder().partitions(PARTITIONS).worker().start().await
}

/// A money figure as the API writes it: a JSON number with exactly two decimals.
fn money(literal: &str) -> Value {
    serde_json::from_str(literal).expect("a JSON number")
}

/// The brief's example receipt, as JSON numbers, with an extra field the pipeline must keep.
fn spec_receipt(transaction_id: &str) -> Value {
    json!({
        "transaction_id": transaction_id,
        "timestamp": "2024-02-07T12:34:56",
        "place_id": "store-abc",
        "place_name": "Store ABC",
        "items": [
            { "product_id": "product_id_1", "quantity": 2, "price": 10.99, "category": "groceries" },
            { "product_id": "product_id_2", "quantity": 1, "price": 5.49, "category": "electronics" }
        ],
        "total_amount": 27.47,
        "vat_amount": 2.47,
        "tips_amount": 3.0,
        "payment_method": "credit_card",
        "loyalty_card": "kept as an extra field"
    })
}

/// Weighed goods, amounts as strings, a category and a payment method in another case, an offset timestamp.
fn weighed_receipt(transaction_id: &str) -> Value {
    ReceiptBody::new(transaction_id)
        .place("store-abc")
        .at("2024-02-07T14:10:00+00:00")
        .line("apples", "1.5", "0.99", " Groceries ")
        .vat("0.1")
        .with("payment_method", json!("CASH"))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receipts_posted_to_the_producer_show_up_exactly_in_the_consumers_analytics() {
    let services = spawn_services().await;
    let merchant = services.merchant_token("merchant-1").await;

    let (status, body) = services.post_receipt(&merchant, &spec_receipt("t-1")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "accepted");
    let (status, body) = services.post_receipt(&merchant, &spec_receipt("t-1")).await;
    assert_eq!(
        (status, body["status"].clone()),
        (200, json!("duplicate")),
        "{body}"
    );
    let mut changed = spec_receipt("t-1");
    changed["tips_amount"] = json!(4);
    let (status, body) = services.post_receipt(&merchant, &changed).await;
    assert_eq!(
        (status, body["error"].clone()),
        (409, json!("transaction_conflict")),
        "{body}"
    );
    let (status, body) = services.post_receipt(&merchant, &weighed_receipt("t-2")).await;
    assert_eq!(status, 202, "{body}");

    // All time is read from the rollups alone, which the consumer adds each batch to as it stores it.
    let all_time = services
        .analytics_until(&merchant, "", |body| body["summary"]["total_purchases"] == 2)
        .await;
    let summary = &all_time["summary"];
    assert_eq!(summary["total_amount"], money("28.96"));
    assert_eq!(summary["average_receipt"], money("14.48"));
    assert_eq!(
        summary["taxes_amount"],
        json!({ "total_vat": money("2.57"), "total_tips": money("3.00") })
    );
    assert_eq!(
        summary["category_analytics"]["groceries"],
        json!({ "total_spent": money("23.47"), "average_receipt": money("11.74") })
    );
    assert_eq!(
        summary["category_analytics"]["electronics"],
        json!({ "total_spent": money("5.49"), "average_receipt": money("5.49") })
    );
    assert_eq!(all_time["count"], 1);
    assert_eq!(all_time["results"][0]["place_id"], "store-abc");
    assert_eq!(all_time["results"][0]["place_name"], "Store ABC");

    // A period with ragged edges: 12:30 to 14:05 holds the first receipt only (edge scan + rollup of 13:00).
    let period = services
        .analytics_until(
            &merchant,
            "from=2024-02-07T12:30:00Z&to=2024-02-07T14:05:00Z",
            |_| true,
        )
        .await;
    assert_eq!(period["summary"]["total_purchases"], 1, "{period}");
    assert_eq!(period["summary"]["total_amount"], money("27.47"));
    // A period inside one hour.
    let inside = services
        .analytics_until(
            &merchant,
            "from=2024-02-07T14:09:00Z&to=2024-02-07T14:11:00Z",
            |_| true,
        )
        .await;
    assert_eq!(inside["summary"]["total_purchases"], 1, "{inside}");
    assert_eq!(
        inside["summary"]["category_analytics"]["groceries"]["total_spent"],
        money("1.49")
    );
    // Places: search by id or name, case-insensitively.
    for (search, count) in [("store ab", 1), ("STORE-ABC", 1), ("zzz", 0)] {
        let (status, body) = services
            .get_from_consumer(
                &format!("/api/places/?search={}", search.replace(' ', "%20")),
                &merchant,
            )
            .await;
        assert_eq!(
            (status, body["count"].clone()),
            (200, json!(count)),
            "search {search}: {body}"
        );
    }
    let (_, place) = services
        .get_from_consumer("/api/places/store-abc/", &merchant)
        .await;
    assert_eq!(place["total_purchases"], 2);
    assert_eq!(place["first_purchase_at"], "2024-02-07T12:34:56Z");
    assert_eq!(place["last_purchase_at"], "2024-02-07T14:10:00Z");

    // An empty period gives zeros.
    let empty = services
        .analytics_until(&merchant, "from=2030-01-01T00:00:00Z", |_| true)
        .await;
    assert_eq!(empty["summary"]["total_purchases"], 0);
    assert_eq!(empty["summary"]["average_receipt"], money("0.00"));

    // Everything is stored, so `/metrics` reports no lag on any partition of the topic.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let metrics = metrics(&services.http, &services.consumer).await;
        let lag: Vec<&str> = metrics
            .lines()
            .filter(|line| line.starts_with("consumer_lag_messages{"))
            .collect();
        if lag.len() == PARTITIONS as usize && lag.iter().all(|line| line.ends_with(" 0")) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lag of {PARTITIONS} partitions should be reported as 0: {lag:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn merchants_cannot_use_or_see_another_merchants_place() {
    let services = spawn_services().await;
    let owner = services.merchant_token("owner").await;
    let other = services.merchant_token("other").await;

    assert_eq!(services.post_receipt(&owner, &spec_receipt("o-1")).await.0, 202);
    let (status, body) = services.post_receipt(&other, &spec_receipt("x-1")).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "forbidden");

    let (status, _) = services.get_from_consumer("/api/places/store-abc/", &other).await;
    assert_eq!(status, 404);
    let (status, body) = services.get_from_consumer("/api/places/", &other).await;
    assert_eq!((status, body["count"].clone()), (200, json!(0)));
    // Named in analytics once its owner's analytics count the receipt, the place still shows nothing.
    services
        .analytics_until(&owner, "place_id=store-abc", |body| {
            body["summary"]["total_purchases"] == 1
        })
        .await;
    let (status, body) = services
        .get_from_consumer("/api/analytics/?place_id=store-abc", &other)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 0, "{body}");
    assert_eq!(body["results"], json!([]), "{body}");
    assert_eq!(body["summary"]["total_purchases"], 0, "{body}");

    let response = services
        .http
        .get(format!("{}/api/places/", services.consumer))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
}
