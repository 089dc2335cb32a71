//! Clients that misbehave: bodies that are not receipts, a token over its rate limit, a body sent too slowly,
//! connections held open past the server's bound. Each gets a clear answer, and the attempts that reach intake
//! are logged.

use std::time::Duration;

use diesel::prelude::*;
use serde_json::{json, Value};
use shared_models::store::schema::receipt_log;
use shared_models::testing::service_url;

use super::{receipt, spawn_producer, spawn_producer_with};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_connection_bound_a_client_waits_until_an_answer_closes_a_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    // One connection for each of the server's HTTP workers.
    let workers = shared_models::web::service::http_workers();
    let producer = spawn_producer_with(&service_url("TEST_KAFKA_BROKERS"), |config| {
        config.http.max_connections = u32::try_from(workers).expect("a few workers");
    })
    .await;
    let address = producer.url.trim_start_matches("http://").to_owned();
    let request = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n");
    let mut held = Vec::new();
    for _ in 0..workers {
        held.push(TcpStream::connect(&address).await.expect("connect"));
    }
    // Every place is taken by a connection that sent nothing yet: the next client's request waits.
    let mut waiting = TcpStream::connect(&address).await.expect("connect");
    waiting
        .write_all(request("/health").as_bytes())
        .await
        .expect("request sent");
    let mut answer = [0u8; 512];
    let early = tokio::time::timeout(Duration::from_secs(1), waiting.read(&mut answer)).await;
    assert!(early.is_err(), "answered past the connection bound");

    // An answer on a held connection closes it, since the server is crowded, and says so.
    let mut first = held.remove(0);
    first
        .write_all(request("/metrics").as_bytes())
        .await
        .expect("request sent");
    let mut metrics = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), first.read_to_end(&mut metrics))
        .await
        .expect("the crowded server closed the connection after its answer")
        .expect("read");
    let metrics = String::from_utf8_lossy(&metrics).to_lowercase();
    assert!(metrics.starts_with("http/1.1 200"), "{metrics}");
    assert!(metrics.contains("connection: close"), "{metrics}");
    assert!(
        metrics.contains(&format!("producer_http_open_connections {workers}\n")),
        "{metrics}"
    );

    // Its place goes to the client that waited.
    let read = tokio::time::timeout(Duration::from_secs(10), waiting.read(&mut answer))
        .await
        .expect("the waiting client was answered once a place was free")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_connection_bound_clients_wait_in_a_queue_as_long_as_the_bound() {
    use futures::future::join_all;
    use tokio::net::TcpStream;
    // Far more than the 128 connections the standard library's listener queues.
    let bound = 400;
    let producer = spawn_producer_with(&service_url("TEST_KAFKA_BROKERS"), |config| {
        config.http.max_connections = bound;
    })
    .await;
    let address = producer.url.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..bound {
        held.push(TcpStream::connect(&address).await.expect("connect"));
    }
    // Every place is taken, so the server accepts no more: these wait in the listener's queue, and each
    // connects at once rather than after the retries of a client the queue had no room for.
    let waiting = tokio::time::timeout(
        Duration::from_secs(2),
        join_all((0..250).map(|_| TcpStream::connect(&address))),
    )
    .await
    .expect("every client past the bound was queued");
    assert!(waiting.iter().all(Result::is_ok));
}
