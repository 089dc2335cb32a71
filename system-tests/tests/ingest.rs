//! The consumer group against a real broker and PostgreSQL: poison messages, redelivery.

use std::time::{Duration, Instant};

use chrono::Utc;
use diesel::prelude::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use shared_models::config::KafkaConfig;
use shared_models::domain::receipt::{LineItem, Receipt, ReceiptEnvelope, DLQ_REASON_HEADER};
use shared_models::store::schema::{places, receipts};
use shared_models::store::PgPool;
use shared_models::testing::{fresh_database, service_url, unique_name};

use system_tests::check;
use system_tests::config as support;
use system_tests::topic;

struct RunningConsumer {
    kafka: KafkaConfig,
    pool: PgPool,
    producer: FutureProducer,
}

async fn spawn_consumer() -> RunningConsumer {
    let (database_url, pool) = tokio::task::spawn_blocking(fresh_database)
        .await
        .expect("database");
    let kafka = support::kafka(2);
    let mut config = support::consumer(support::database(database_url), kafka.clone(), support::redis());
    config.ingest.batch_size = 50;
    config.ingest.store_attempts = 2;
    let app = consumer::startup::Application::build(config)
        .await
        .expect("consumer starts");
    tokio::spawn(app.run_until_stopped());
    let producer = shared_models::kafka::client_config(&kafka.kafka_brokers)
        .create()
        .expect("producer");
    RunningConsumer {
        kafka,
        pool,
        producer,
    }
}

fn envelope(transaction_id: &str) -> ReceiptEnvelope {
    let receipt = Receipt {
        transaction_id: transaction_id.into(),
        place_id: "place-1".into(),
        place_name: Some("Place One".into()),
        timestamp: "2024-02-07T12:34:56Z".parse().expect("time"),
        items: vec![LineItem {
            product_id: "p".into(),
            quantity: "2".parse().expect("decimal"),
            price: "1.25".parse().expect("decimal"),
            category: "Food".into(),
            extra: Default::default(),
        }],
        total_amount: "2.50".parse().expect("decimal"),
        vat_amount: "0.25".parse().expect("decimal"),
        tips_amount: "0".parse().expect("decimal"),
        payment_method: "cash".into(),
        extra: Default::default(),
    };
    ReceiptEnvelope::new("merchant-1".into(), Utc::now(), receipt)
}

impl RunningConsumer {
    async fn send(&self, key: &str, payload: &str) {
        self.producer
            .send(
                FutureRecord::to(&self.kafka.kafka_topic)
                    .key(key)
                    .payload(payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(error, _)| error)
            .expect("sent");
    }

    /// Waits until `count` receipts are stored (or fails after 30 s), then a little longer for any extra.
    async fn stored_receipts(&self, count: i64) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stored = self.count_receipts();
            if stored >= count {
                tokio::time::sleep(Duration::from_secs(1)).await;
                return self.count_receipts();
            }
            assert!(
                Instant::now() < deadline,
                "only {stored} of {count} receipts stored"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The first message on the dead-letter topic and its reason header (or fails after 30 s).
    async fn first_dead_letter(&self) -> (String, Option<String>) {
        let brokers = self.kafka.kafka_brokers.clone();
        let dlq_topic = self.kafka.kafka_dlq_topic.clone();
        tokio::task::spawn_blocking(move || {
            let reader: BaseConsumer = shared_models::kafka::client_config(&brokers)
                .set("group.id", unique_name("dlq-reader"))
                .set("auto.offset.reset", "earliest")
                .create()
                .expect("reader");
            reader.subscribe(&[dlq_topic.as_str()]).expect("subscribe");
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Some(Ok(message)) = reader.poll(Duration::from_millis(200)) {
                    let reason = message
                        .headers()
                        .and_then(|headers| headers.iter().find(|header| header.key == DLQ_REASON_HEADER))
                        .and_then(|header| {
                            header
                                .value
                                .map(|value| String::from_utf8_lossy(value).into_owned())
                        });
                    return (
                        String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
                        reason,
                    );
                }
            }
            panic!("nothing arrived on the dead-letter topic");
        })
        .await
        .expect("dlq read")
    }

    fn count_receipts(&self) -> i64 {
        let mut conn = self.pool.get().expect("connection");
        receipts::table.count().get_result(&mut conn).expect("count")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_goes_to_the_dlq_and_the_messages_after_it_are_stored() {
    let consumer = spawn_consumer().await;
    consumer.send("place-1", "{ this is not a receipt").await;
    for id in ["after-1", "after-2"] {
        consumer.send("place-1", &envelope(id).to_json()).await;
    }
    assert_eq!(consumer.stored_receipts(2).await, 2);

    let (payload, reason) = consumer.first_dead_letter().await;
    assert_eq!(payload, "{ this is not a receipt");
    assert!(reason.is_some_and(|reason| reason.contains("not a receipt envelope")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_postgresql_refuses_goes_to_the_dlq_and_its_neighbours_for_both_merchants_are_stored() {
    let consumer = spawn_consumer().await;
    let mut refused = envelope("refused");
    refused.receipt.items[0].product_id = "p\u{0}".into();
    let mut other = envelope("other-merchant");
    other.merchant_id = "merchant-2".into();
    other.receipt.place_id = "place-2".into();
    let batch = [envelope("before"), refused.clone(), other, envelope("after")];
    for envelope in &batch {
        consumer
            .send(&envelope.receipt.place_id, &envelope.to_json())
            .await;
    }
    assert_eq!(consumer.stored_receipts(3).await, 3);
    let mut conn = consumer.pool.get().expect("connection");
    let mut stored: Vec<(String, String)> = receipts::table
        .select((receipts::merchant_id, receipts::transaction_id))
        .load(&mut conn)
        .expect("receipts");
    stored.sort();
    assert_eq!(
        stored,
        [
            ("merchant-1".to_owned(), "after".to_owned()),
            ("merchant-1".to_owned(), "before".to_owned()),
            ("merchant-2".to_owned(), "other-merchant".to_owned()),
        ]
    );
    let (payload, reason) = consumer.first_dead_letter().await;
    assert_eq!(payload, refused.to_json());
    assert!(
        reason
            .as_deref()
            .is_some_and(|reason| reason.contains("invalid byte sequence")),
        "{reason:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_receipts_are_stored_and_counted_once() {
    let consumer = spawn_consumer().await;
    let batch: Vec<ReceiptEnvelope> = (0..10).map(|index| envelope(&format!("r-{index}"))).collect();
    for round in 0..2 {
        for envelope in &batch {
            consumer.send("place-1", &envelope.to_json()).await;
        }
        assert_eq!(consumer.stored_receipts(10).await, 10, "after round {round}");
    }
    let mut conn = consumer.pool.get().expect("connection");
    let (purchases, name): (i64, Option<String>) = places::table
        .find("place-1")
        .select((places::total_purchases, places::place_name))
        .first(&mut conn)
        .expect("place");
    assert_eq!(purchases, 10);
    assert_eq!(name.as_deref(), Some("Place One"));
    check::references_hold(&mut conn);
}

/// A fresh database, a receipts topic of four partitions, and a producer for it: where the tests of consumer
/// processes start.
async fn four_partitions() -> (String, PgPool, KafkaConfig, FutureProducer) {
    let (database_url, pool) = tokio::task::spawn_blocking(fresh_database)
        .await
        .expect("database");
    let kafka = support::kafka(4);
    shared_models::kafka::ensure_topics(&kafka.kafka_brokers, &[(kafka.kafka_topic.as_str(), 4)])
        .await
        .expect("topic");
    let producer = shared_models::kafka::client_config(&kafka.kafka_brokers)
        .create()
        .expect("producer");
    (database_url, pool, kafka, producer)
}

/// Publishes receipts `{prefix}-{index}` for the indexes of `range`, over four places.
async fn produce(
    producer: &FutureProducer,
    kafka: &KafkaConfig,
    prefix: &str,
    range: std::ops::Range<usize>,
) {
    let envelopes = range.map(|index| {
        let mut envelope = envelope(&format!("{prefix}-{index}"));
        envelope.receipt.place_id = format!("place-{}", index % 4);
        envelope
    });
    topic::publish(producer, &kafka.kafka_topic, envelopes, Duration::from_secs(10)).await;
}

/// Receipts stored so far.
fn stored(pool: &PgPool) -> i64 {
    let mut conn = pool.get().expect("connection");
    receipts::table
        .count()
        .get_result::<i64>(&mut conn)
        .expect("count")
}

/// The consumer processes' session timeout: the shortest that tansu 0.6's rebalances settle with.
const SESSION_TIMEOUT_MS: u64 = 20_000;

/// A consumer process, killed (SIGKILL) when dropped.
struct ConsumerProcess(std::process::Child);

impl Drop for ConsumerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_consumer_process(database_url: &str, kafka: &KafkaConfig, group: &str) -> ConsumerProcess {
    let child = std::process::Command::new(system_tests::stack::binary("consumer"))
        .env("KAFKA_SESSION_TIMEOUT_MS", SESSION_TIMEOUT_MS.to_string())
        .env("CONSUMER_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", database_url)
        .env("DATABASE_POOL_SIZE", "4")
        .env("KAFKA_BROKERS", &kafka.kafka_brokers)
        .env("KAFKA_TOPIC", &kafka.kafka_topic)
        .env("KAFKA_DLQ_TOPIC", &kafka.kafka_dlq_topic)
        .env("KAFKA_PARTITIONS", kafka.kafka_partitions.to_string())
        .env("KAFKA_GROUP_ID", group)
        .env("CONSUMER_BATCH_SIZE", "25")
        .env("REDIS_URL", service_url("TEST_REDIS_URL"))
        .env("ANALYTICS_QUEUE", unique_name("analytics"))
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the consumer");
    ConsumerProcess(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_joining_and_dying_mid_stream_lose_nothing_and_count_nothing_twice() {
    let (database_url, pool, kafka, producer) = four_partitions().await;
    let produce = |range| produce(&producer, &kafka, "s", range);
    let stored = || stored(&pool);
    // Up to the dead member's session, the rejoin watchdog's wait (a session plus 15 s) and the catch-up.
    let wait_for = |count: i64| {
        let stored = &stored;
        async move {
            let deadline =
                Instant::now() + Duration::from_millis(3 * SESSION_TIMEOUT_MS) + Duration::from_secs(60);
            while stored() < count {
                assert!(Instant::now() < deadline, "only {} of {count} stored", stored());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    let group = unique_name("group");
    produce(0..1500).await;
    let first = start_consumer_process(&database_url, &kafka, &group);
    wait_for(200).await;
    let _second = start_consumer_process(&database_url, &kafka, &group);
    wait_for(700).await;
    drop(first); // SIGKILL while consuming
    let at_kill = stored();
    assert!(
        at_kill < 1500,
        "the kill should land mid-stream (stored {at_kill})"
    );
    produce(1500..2000).await;
    wait_for(2000).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    assert_eq!(stored(), 2000, "every receipt stored once");
    let mut conn = pool.get().expect("connection");
    let counted: Option<rust_decimal::Decimal> = places::table
        .select(diesel::dsl::sum(places::total_purchases))
        .first(&mut conn)
        .expect("sum");
    assert_eq!(
        counted,
        Some(rust_decimal::Decimal::from(2000)),
        "nothing counted twice"
    );
    check::references_hold(&mut conn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_consumer_killed_and_restarted_gets_its_partitions_back() {
    let (database_url, pool, kafka, producer) = four_partitions().await;
    let produce = |range| produce(&producer, &kafka, "k", range);
    let stored = || stored(&pool);
    let group = unique_name("group");
    produce(0..600).await;
    let first = start_consumer_process(&database_url, &kafka, &group);
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored() < 100 {
        assert!(Instant::now() < deadline, "the first process stored nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(first); // SIGKILL, then started again as a supervisor would
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _restarted = start_consumer_process(&database_url, &kafka, &group);
    produce(600..1000).await;
    // The dead member's session, the rejoin watchdog's margin, and the time to catch up.
    let deadline = Instant::now() + Duration::from_millis(SESSION_TIMEOUT_MS) + Duration::from_secs(90);
    while stored() < 1000 {
        if Instant::now() >= deadline {
            let mut conn = pool.get().expect("connection");
            let ids: Vec<String> = receipts::table
                .select(receipts::transaction_id)
                .load(&mut conn)
                .expect("ids");
            let missing: Vec<usize> = (0..1000).filter(|i| !ids.contains(&format!("k-{i}"))).collect();
            let by_place: Vec<usize> = (0..4)
                .map(|p| missing.iter().filter(|i| *i % 4 == p).count())
                .collect();
            panic!(
                "{} of 1000 stored; missing by place {by_place:?}; first {:?} last {:?}",
                stored(),
                missing.first(),
                missing.last()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(stored(), 1000, "every receipt stored once");
}
