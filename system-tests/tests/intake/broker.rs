//! Receipts accepted while the broker is away: kept in the outbox, and each published once when it is back,
//! as the JSON whose hash intake stored.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;
use serde_json::value::RawValue;
use shared_models::domain::receipt::{content_hash_of, ReceiptEnvelope};
use shared_models::store::schema::accepted_receipts;
use shared_models::testing::{service_url, unique_name};
use system_tests::stack::free_port;

use super::{receipt, spawn_producer, Producer};

impl Producer {
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
