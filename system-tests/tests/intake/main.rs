//! The producer's receipt intake against real PostgreSQL and a real Kafka-protocol broker.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use futures::future::join_all;
use producer::config::ProducerConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use shared_models::domain::auth::Role;
use shared_models::domain::receipt::{content_hash_of, ReceiptEnvelope};
use shared_models::store::schema::{accepted_receipts, receipt_log};
use shared_models::store::{outbox, PgPool};
use shared_models::testing::{fresh_database, service_url, token, unique_name, ReceiptBody};
use system_tests::config;
use system_tests::stack::free_port;

mod group_commit;
mod reconcile;

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

    /// The content hash of each accepted receipt, by transaction id.
    fn content_hashes(&self) -> HashMap<String, String> {
        let mut conn = self.pool.get().expect("connection");
        accepted_receipts::table
            .select((accepted_receipts::transaction_id, accepted_receipts::content_hash))
            .load::<(String, String)>(&mut conn)
            .expect("content hashes")
            .into_iter()
            .collect()
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
async fn malformed_bodies_get_400_or_413_and_are_logged() {
    let producer = spawn_producer(&service_url("TEST_KAFKA_BROKERS")).await;
    let token = producer.merchant("m-1").await;
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("not JSON", b"{not json".to_vec(), 400),
        ("empty", Vec::new(), 400),
        ("an array", b"[1, 2]".to_vec(), 400),
        ("a string", b"\"receipt\"".to_vec(), 400),
        ("invalid UTF-8", vec![b'{', 0xff, 0xfe, b'}'], 400),
        ("too deeply nested", deep.into_bytes(), 400),
        ("over the size limit", vec![b' '; 65 * 1024], 413),
    ];
    for (what, body, expected) in &cases {
        let (status, json) = producer.post_raw(&token, body.clone()).await;
        assert_eq!(status, *expected, "{what}: {json}");
        assert!(
            json["error"].is_string() && json["message"].is_string(),
            "{what}: {json}"
        );
    }
    let outcomes = producer.log_outcomes();
    assert_eq!(outcomes.len(), cases.len());
    assert!(outcomes.iter().all(|outcome| outcome == "rejected"));
    let mut conn = producer.pool.get().expect("connection");
    let bodies: Vec<Option<String>> = receipt_log::table
        .select(receipt_log::rejected_body)
        .load(&mut conn)
        .expect("bodies");
    assert!(
        bodies.iter().flatten().all(|body| body.len() <= 256 + 3),
        "rejected bodies are truncated"
    );
    assert!(
        bodies.iter().flatten().any(|body| body.starts_with("[[[")),
        "rejected bodies are kept"
    );
}

/// A tansu broker this test starts and stops itself.
struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_broker(port: u16) -> Broker {
    let child = Command::new(service_url("TEST_TANSU_BIN"))
        .args(["broker", "--listener-url", &format!("tcp://127.0.0.1:{port}")])
        .args(["--advertised-listener-url", &format!("tcp://127.0.0.1:{port}")])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tansu");
    Broker(child)
}

/// The receipts on the topic (transaction id, the receipt's JSON as published), read from the beginning until
/// `expected` arrived, and then two seconds more so that a double publication would show.
fn read_topic(brokers: &str, topic: &str, expected: usize) -> Vec<(String, String)> {
    let consumer: BaseConsumer = shared_models::kafka::client_config(brokers)
        .set("group.id", unique_name("counter"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut settle_until = None;
    while Instant::now() < settle_until.unwrap_or(deadline) {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let payload = message.payload().unwrap_or_default();
            let envelope = ReceiptEnvelope::from_json(payload).expect("an envelope");
            let published: ReceiptEnvelope<Box<RawValue>> =
                serde_json::from_slice(payload).expect("an envelope");
            seen.push((
                envelope.receipt.transaction_id,
                published.receipt.get().to_owned(),
            ));
        }
        if seen.len() >= expected && settle_until.is_none() {
            settle_until = Some(Instant::now() + Duration::from_secs(2));
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receipts_accepted_while_the_broker_is_down_all_arrive_once_it_is_back() {
    let port = free_port();
    let brokers = format!("127.0.0.1:{port}");
    let producer = spawn_producer(&brokers).await;
    let token = producer.merchant("m-1").await;
    for index in 0..20 {
        let body = serde_json::to_vec(&receipt(&format!("offline-{index}"))).expect("json");
        assert_eq!(
            producer.post_raw(&token, body).await.0,
            202,
            "accepted while Kafka is down"
        );
    }
    assert_eq!(producer.pending_outbox_rows(), 20);

    let _broker = start_broker(port);
    let topic = producer.topic.clone();
    let seen = tokio::task::spawn_blocking(move || read_topic(&brokers, &topic, 20))
        .await
        .expect("read");
    let mut distinct: Vec<&str> = seen
        .iter()
        .map(|(transaction_id, _)| transaction_id.as_str())
        .collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        (seen.len(), distinct.len()),
        (20, 20),
        "each receipt exactly once: {seen:?}"
    );
    let hashes = producer.content_hashes();
    for (transaction_id, published) in &seen {
        assert_eq!(
            Some(&content_hash_of(published)),
            hashes.get(transaction_id),
            "{transaction_id} is published as the JSON whose SHA-256 is its content hash: {published}"
        );
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    while producer.pending_outbox_rows() > 0 {
        assert!(Instant::now() < deadline, "outbox rows never marked published");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_over_its_rate_limit_gets_429_with_retry_after_and_others_are_not_slowed() {
    let producer = spawn_producer_with(&service_url("TEST_KAFKA_BROKERS"), |config| {
        config.rate_limit.per_second = 1.0;
        config.rate_limit.burst = 3;
    })
    .await;
    let busy = producer.merchant("m-busy").await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for index in 0..5 {
        let response = producer
            .http
            .post(format!("{}/api/checks/", producer.url))
            .bearer_auth(&busy)
            .json(&receipt(&format!("busy-{index}")))
            .send()
            .await
            .expect("request");
        statuses.push(response.status().as_u16());
        if response.status().as_u16() == 429 {
            retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let body: Value = response.json().await.expect("JSON error body");
            assert_eq!(body["error"], "rate_limited");
        }
    }
    assert_eq!(&statuses[..3], &[202, 202, 202], "the burst passes: {statuses:?}");
    assert_eq!(statuses[3], 429, "then the token waits: {statuses:?}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    let quiet = producer.merchant("m-quiet").await;
    let mut own_place = receipt("quiet-1");
    own_place["place_id"] = json!("store-quiet");
    let (status, _) = producer
        .post_raw(&quiet, own_place.to_string().into_bytes())
        .await;
    assert_eq!(status, 202, "another token has its own allowance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_its_body_too_slowly_gets_408_and_the_connection_back() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let producer = spawn_producer_with(&service_url("TEST_KAFKA_BROKERS"), |config| {
        config.http.request_timeout_seconds = 1;
    })
    .await;
    let token = producer.merchant("m-slow").await;
    let address = producer.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
    let head = format!(
        "POST /api/checks/ HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"transaction_id\":"
    );
    stream.write_all(head.as_bytes()).await.expect("head sent");
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "the server let the slow client hold the connection");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
