//! The producer's receipt intake against real PostgreSQL and a real Kafka-protocol broker.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use futures::future::join_all;
use producer::config::ProducerConfig;
use serde_json::{json, Value};
use shared_models::domain::auth::Role;
use shared_models::store::schema::receipt_log;
use shared_models::store::{outbox, PgPool};
use shared_models::testing::{fresh_database, service_url, token, unique_name, ReceiptBody};
use system_tests::config;

use sessions::{eventually, HeldLock};

mod broker;
mod clients;
mod group_commit;
mod overload;
mod reconcile;
mod sessions;

#[derive(Clone)]
struct Producer {
    url: String,
    admin: String,
    topic: String,
    pool: PgPool,
    http: reqwest::Client,
}

async fn spawn_producer(brokers: &str) -> Producer {
    spawn_producer_with(brokers, |_| {}).await
}

/// A producer whose configuration `adjust` changes first.
async fn spawn_producer_with(brokers: &str, adjust: impl FnOnce(&mut ProducerConfig)) -> Producer {
    let (database_url, pool) = tokio::task::spawn_blocking(fresh_database)
        .await
        .expect("database");
    let admin = unique_name("rcpt_admin");
    let mut kafka = config::kafka(2);
    kafka.kafka_brokers = brokers.to_owned();
    let topic = kafka.kafka_topic.clone();
    let mut config = config::producer(config::database(database_url), kafka, &admin);
    config.database.database_pool_size = 40;
    config.auth.token_cache_seconds = 30;
    config.intake.max_body_bytes = 64 * 1024;
    config.intake.rejected_body_log_bytes = 256;
    config.relay.relay_batch_size = 50;
    config.relay.kafka_message_timeout_ms = 5000;
    adjust(&mut config);
    let app = producer::startup::Application::build(config)
        .await
        .expect("producer starts");
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    Producer {
        url,
        admin,
        topic,
        pool,
        http: reqwest::Client::new(),
    }
}

impl Producer {
    async fn merchant(&self, merchant_id: &str) -> String {
        let (pool, merchant_id) = (self.pool.clone(), merchant_id.to_owned());
        tokio::task::spawn_blocking(move || token(&pool, Role::Merchant, Some(&merchant_id)).1)
            .await
            .expect("the token task")
    }

    async fn post_raw(&self, token: &str, body: Vec<u8>) -> (u16, Value) {
        let request = self
            .http
            .post(format!("{}/api/checks/", self.url))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body);
        answer(request).await
    }

    /// Posts a batch; returns the status and the body.
    async fn post_batch(&self, token: &str, batch: &Value) -> (u16, Value) {
        let request = self
            .http
            .post(format!("{}/api/checks/batch/", self.url))
            .bearer_auth(token)
            .json(batch);
        answer(request).await
    }

    fn log_outcomes(&self) -> Vec<String> {
        let mut conn = self.pool.get().expect("connection");
        receipt_log::table
            .order(receipt_log::id.asc())
            .select(receipt_log::outcome)
            .load(&mut conn)
            .expect("log")
    }

    fn pending_outbox_rows(&self) -> i64 {
        let mut conn = self.pool.get().expect("connection");
        outbox::backlog(&mut conn).expect("count")
    }

    /// Accepted receipts handed to Kafka, waiting in the outbox or already published.
    fn queued_receipts(&self) -> i64 {
        let mut conn = self.pool.get().expect("connection");
        queued_receipts(&mut conn)
    }
}

/// Sends a request; returns the status and the body (null if it is not JSON).
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[derive(QueryableByName)]
struct Queued {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    receipts: i64,
}

/// Accepted receipts handed to Kafka, waiting in the outbox or already published, counted in one snapshot (the
/// relay moves a receipt from one to the other in one transaction).
fn queued_receipts(conn: &mut PgConnection) -> i64 {
    diesel::sql_query(
        "SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM receipt_publications) AS receipts",
    )
    .get_result::<Queued>(conn)
    .expect("count")
    .receipts
}

/// A receipt at place store-1 of 1.5 x 2.00.
fn receipt(transaction_id: &str) -> Value {
    ReceiptBody::new(transaction_id)
        .line("p", "1.5", "2.00", "food")
        .vat("0.30")
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_identical_concurrent_posts_give_one_202_and_31_duplicates() {
    let producer = spawn_producer(&service_url("TEST_KAFKA_BROKERS")).await;
    let token = producer.merchant("m-1").await;
    let body = serde_json::to_vec(&receipt("same")).expect("json");
    let posts = (0..32).map(|_| producer.post_raw(&token, body.clone()));
    let answers = join_all(posts).await;
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(
        statuses.iter().filter(|status| **status == 202).count(),
        1,
        "{statuses:?}"
    );
    let received: Vec<&Value> = answers.iter().map(|(_, body)| &body["received_at"]).collect();
    assert!(
        received.iter().all(|at| at.is_string() && *at == received[0]),
        "every answer gives the instant the receipt was first accepted: {received:?}"
    );
    assert_eq!(
        statuses.iter().filter(|status| **status == 200).count(),
        31,
        "{statuses:?}"
    );

    // Key order and trailing zeros do not make a conflict; different content does.
    let reordered = br#"{"vat_amount":"0.3","payment_method":"cash","total_amount":3,"place_id":"store-1",
        "timestamp":"2024-02-07T12:34:56+00:00","transaction_id":"same",
        "items":[{"category":"food","price":2,"quantity":1.500,"product_id":"p"}]}"#;
    assert_eq!(producer.post_raw(&token, reordered.to_vec()).await.0, 200);
    let mut changed = receipt("same");
    changed["vat_amount"] = json!("0.31");
    let (status, body) = producer
        .post_raw(&token, serde_json::to_vec(&changed).expect("json"))
        .await;
    assert_eq!(
        (status, body["error"].clone()),
        (409, json!("transaction_conflict"))
    );

    let outcomes = producer.log_outcomes();
    assert_eq!(outcomes.iter().filter(|o| *o == "accepted").count(), 1);
    assert_eq!(outcomes.iter().filter(|o| *o == "duplicate").count(), 32);
    assert_eq!(outcomes.iter().filter(|o| *o == "conflict").count(), 1);
    assert_eq!(producer.queued_receipts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_judges_each_receipt_on_its_own_and_answers_in_order() {
    let producer = spawn_producer(&service_url("TEST_KAFKA_BROKERS")).await;
    let token = producer.merchant("m-1").await;
    assert_eq!(
        producer
            .post_raw(&token, serde_json::to_vec(&receipt("before")).expect("json"))
            .await
            .0,
        202
    );
    let mut invalid = receipt("bad");
    invalid["items"][0]["price"] = json!("-1");
    let mut conflicting = receipt("before");
    conflicting["vat_amount"] = json!("0.10");
    let mut foreign = receipt("foreign");
    foreign["merchant_id"] = json!("someone-else");
    let batch = json!([
        receipt("b-1"),
        receipt("before"),
        invalid,
        conflicting,
        receipt("b-2"),
        foreign,
        7
    ]);

    let (status, body) = producer.post_batch(&token, &batch).await;
    assert_eq!(status, 200);
    let statuses: Vec<&str> = body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        statuses,
        [
            "accepted",
            "duplicate",
            "rejected",
            "conflict",
            "accepted",
            "forbidden",
            "rejected"
        ]
    );
    assert_eq!(body["results"][2]["details"][0]["field"], "items[0].price");
    assert_eq!(producer.queued_receipts(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receipt_log_shows_every_attempt_to_its_merchant_only() {
    let producer = spawn_producer(&service_url("TEST_KAFKA_BROKERS")).await;
    let token = producer.merchant("m-1").await;
    let other = producer.merchant("m-2").await;
    let body = serde_json::to_vec(&receipt("logged")).expect("json");
    assert_eq!(producer.post_raw(&token, body.clone()).await.0, 202);
    assert_eq!(producer.post_raw(&token, body).await.0, 200);
    let mut invalid = receipt("logged-bad");
    invalid["total_amount"] = json!("9.99");
    assert_eq!(
        producer
            .post_raw(&token, serde_json::to_vec(&invalid).expect("json"))
            .await
            .0,
        422
    );

    let get = |path: String, token: String| {
        let http = producer.http.clone();
        async move {
            let response = http.get(path).bearer_auth(token).send().await.expect("request");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, status_body) = get(format!("{}/api/checks/logged/", producer.url), token.clone()).await;
    assert_eq!(status, 200, "{status_body}");
    assert_eq!(status_body["status"], "accepted");
    assert_eq!(status_body["attempts"].as_array().map(Vec::len), Some(2));
    assert!(status_body["received_at"].is_string());
    assert_eq!(
        get(format!("{}/api/checks/logged/", producer.url), other.clone())
            .await
            .0,
        404
    );

    let (status, page) = get(
        format!("{}/api/checks/?status=rejected", producer.url),
        token.clone(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["count"], 1);
    assert_eq!(page["results"][0]["transaction_id"], "logged-bad");
    assert_eq!(page["results"][0]["reasons"][0]["field"], "total_amount");
    let (_, all) = get(format!("{}/api/checks/?page_size=2", producer.url), token.clone()).await;
    assert_eq!(all["count"], 3);
    assert!(all["next"].as_str().is_some_and(|next| next.contains("page=2")));
    let (_, none) = get(format!("{}/api/checks/", producer.url), other).await;
    assert_eq!(none["count"], 0);
    let (status, _) = get(format!("{}/api/checks/?from=yesterday", producer.url), token).await;
    assert_eq!(status, 400);

    // Until the broker acknowledged it, published_at is empty; afterwards it is set.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = get(
            format!("{}/api/checks/logged/", producer.url),
            producer.admin.clone(),
        )
        .await;
        if body["published_at"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "never published: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_postgresql_is_unreachable_receipts_get_503_and_nothing_is_accepted() {
    let producer = spawn_producer(&service_url("TEST_KAFKA_BROKERS")).await;
    let token = producer.merchant("m-1").await;
    let database: String = {
        let mut conn = producer.pool.get().expect("connection");
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>("current_database()"))
            .get_result(&mut conn)
            .expect("name")
    };
    let block = |allow: bool| {
        let mut admin = PgConnection::establish(&service_url("TEST_DATABASE_URL")).expect("admin connection");
        diesel::sql_query(format!(
            "ALTER DATABASE {database} WITH ALLOW_CONNECTIONS {allow}"
        ))
        .execute(&mut admin)
        .expect("alter database");
        if !allow {
            diesel::sql_query(format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
            ))
            .execute(&mut admin)
            .expect("terminate");
        }
    };
    block(false);
    let (status, body) = producer
        .post_raw(&token, serde_json::to_vec(&receipt("down")).expect("json"))
        .await;
    block(true);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable");
    assert_eq!(producer.queued_receipts(), 0);
    assert_eq!(
        producer
            .post_raw(&token, serde_json::to_vec(&receipt("down")).expect("json"))
            .await
            .0,
        202
    );
}
