//! The fault suite: each case runs a whole stack as real processes under a steady load of receipts, breaks
//! one dependency or process, and ends when every receipt the producer took is stored once and counted once
//! in analytics, within a stated recovery time, with no person stepping in. Cases run one at a time (each
//! stack is a PostgreSQL, a Redis, a broker and five or more processes on a 2-core machine).
//! `make faults` runs these alone; `make test` runs them with everything else.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaRespErr;
use rust_decimal::Decimal;
use shared_models::domain::receipt::{LineItem, Receipt, ReceiptEnvelope};
use shared_models::kafka;
use shared_models::store::schema::{hourly_runs, receipts};
use shared_models::testing::{defaults, fresh_database, service_url, unique_name};
use system_tests::check::{exactly_once, merchant_token};
use system_tests::load::{Load, Report};
use system_tests::stack::Stack;
use tokio::sync::{Mutex, MutexGuard};

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// Receipts a second the load sends, from this many clients.
const RATE: f64 = 40.0;
const CLIENTS: usize = 4;

async fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

/// Prints one case's figures, as docs/reliability.md reports them.
fn report(case: &str, report: &Report, recovery: Duration) {
    println!(
        "FAULT {case}: {} receipts taken ({} total), answers by status {:?}, slowest answer {:.1} s; \
         counted exactly once {:.1} s after the last receipt was taken",
        report.count(),
        report.total(),
        report.statuses,
        report.slowest.as_secs_f64(),
        recovery.as_secs_f64()
    );
}

async fn pause(seconds: u64) {
    tokio::time::sleep(Duration::from_secs(seconds)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_broker_stopped_for_20_seconds_under_load_loses_nothing() {
    let _serial = serial().await;
    let stack = Stack::builder().start().await;
    let token = merchant_token(&stack).await;
    let load = Load::start(&stack.producer_url, &token, CLIENTS, RATE);
    pause(5).await;
    stack.stop_broker();
    pause(20).await;
    stack.start_broker();
    pause(5).await;
    let taken = load.finish().await;
    assert_eq!(
        taken.statuses.keys().copied().collect::<Vec<_>>(),
        vec![202],
        "the producer takes receipts while the broker is down"
    );
    let recovery = exactly_once(&stack, &token, &taken, Duration::from_secs(180)).await;
    report("broker stopped 20 s", &taken, recovery);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarted_under_load_answers_503_then_recovers_on_its_own() {
    let _serial = serial().await;
    let stack = Stack::builder().start().await;
    let token = merchant_token(&stack).await;
    let load = Load::start(&stack.producer_url, &token, CLIENTS, RATE);
    pause(5).await;
    stack.stop_postgres();
    pause(10).await;
    stack.start_postgres();
    pause(10).await;
    let taken = load.finish().await;
    assert!(
        taken.statuses.get(&503).copied().unwrap_or(0) > 0,
        "the producer said it could not take receipts: {:?}",
        taken.statuses
    );
    assert!(
        taken
            .statuses
            .keys()
            .all(|status| matches!(status, 200 | 202 | 503)),
        "no 500, no dropped connection: {:?}",
        taken.statuses
    );
    assert!(
        taken.slowest < Duration::from_secs(10),
        "no answer hangs past the database timeout: {:?}",
        taken.slowest
    );
    let recovery = exactly_once(&stack, &token, &taken, Duration::from_secs(120)).await;
    report("PostgreSQL stopped 10 s", &taken, recovery);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumers_killed_mid_batch_lose_nothing_and_count_nothing_twice() {
    let _serial = serial().await;
    let stack = Stack::builder().consumers(2).start().await;
    let token = merchant_token(&stack).await;
    let load = Load::start(&stack.producer_url, &token, CLIENTS, RATE);
    pause(8).await;
    // Two replicas: one dies, the other takes its partitions.
    stack.kill("consumer-2");
    pause(30).await;
    // The one left dies too, and is started again two seconds later, as a supervisor does.
    stack.kill("consumer-1");
    pause(2).await;
    stack.start("consumer-1");
    pause(5).await;
    let taken = load.finish().await;
    let recovery = exactly_once(&stack, &token, &taken, Duration::from_secs(150)).await;
    report("consumer replicas SIGKILLed", &taken, recovery);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_job_among_three_loses_no_recompute() {
    let _serial = serial().await;
    let stack = Stack::builder().workers(3).start().await;
    let token = merchant_token(&stack).await;
    let load = Load::start(&stack.producer_url, &token, CLIENTS, RATE);
    pause(8).await;
    stack.kill("worker-2");
    pause(10).await;
    let taken = load.finish().await;
    let recovery = exactly_once(&stack, &token, &taken, Duration::from_secs(120)).await;
    report("a worker SIGKILLed among three", &taken, recovery);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restarted_with_and_without_its_data_keeps_workers_up_and_slots_once() {
    let _serial = serial().await;
    let stack = Stack::builder()
        .workers(2)
        .env("HOURLY_SCHEDULE", "*/5 * * * * *")
        .start()
        .await;
    let token = merchant_token(&stack).await;
    let load = Load::start(&stack.producer_url, &token, CLIENTS, RATE);
    pause(6).await;
    stack.restart_redis(true, Duration::from_secs(3));
    pause(12).await;
    stack.restart_redis(false, Duration::from_secs(3));
    pause(12).await;
    let taken = load.finish().await;
    for worker in ["worker-1", "worker-2"] {
        assert!(
            stack.is_running(worker),
            "{worker} outlived Redis:\n{}",
            stack.logs()
        );
    }
    let recovery = exactly_once(&stack, &token, &taken, Duration::from_secs(120)).await;
    let mut conn = PgConnection::establish(&stack.database_url).expect("database");
    let slots: Vec<i32> = hourly_runs::table
        .select(hourly_runs::runs)
        .load(&mut conn)
        .expect("hourly runs");
    assert!(slots.len() >= 4, "the schedule kept running: {slots:?}");
    assert!(
        slots.iter().all(|runs| *runs == 1),
        "each slot ran once: {slots:?}"
    );
    report("Redis restarted, data kept then lost", &taken, recovery);
}

/// The dead-letter topic cannot be made unavailable on tansu (it creates a topic when a producer names it), so
/// this case runs the consumer against librdkafka's mock cluster, which can fail a topic on demand, with the
/// test PostgreSQL and Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_message_waits_for_an_unavailable_dead_letter_topic_rather_than_being_skipped() {
    let _serial = serial().await;
    let cluster = MockCluster::new(1).expect("mock cluster");
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic("receipts", 1, 1).expect("topic");
    cluster
        .create_topic("receipts.dlq", 1, 1)
        .expect("dead-letter topic");
    let producer: FutureProducer = kafka::client_config(&brokers).create().expect("producer");
    let send = |payload: String| {
        let producer = producer.clone();
        async move {
            producer
                .send(
                    FutureRecord::to("receipts").key("place-1").payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(error, _)| error)
                .expect("sent");
        }
    };
    send("{ not a receipt".to_owned()).await;
    for index in 0..20 {
        send(envelope(&format!("after-poison-{index}")).to_json()).await;
    }
    cluster
        .topic_error(
            "receipts.dlq",
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
        )
        .expect("the dead-letter topic fails");

    let (database_url, pool) = tokio::task::spawn_blocking(fresh_database)
        .await
        .expect("database");
    let mut config = consumer_config(&database_url, &brokers);
    config.ingest.batch_size = 5;
    let app = consumer::startup::Application::build(config)
        .await
        .expect("consumer starts");
    let metrics = format!("http://127.0.0.1:{}/metrics", app.port());
    tokio::spawn(app.run_until_stopped());
    let stored = || {
        let mut conn = pool.get().expect("connection");
        receipts::table
            .count()
            .get_result::<i64>(&mut conn)
            .expect("count")
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(&metrics, "consumer_dead_letter_failures_total").await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the consumer never tried the failing dead-letter topic"
        );
        pause(1).await;
    }
    pause(5).await;
    assert_eq!(
        stored(),
        0,
        "nothing behind the poison message is stored while it waits (no offset passes it)"
    );
    cluster
        .topic_error("receipts.dlq", RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR)
        .expect("the dead-letter topic is back");
    let recovered = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored() < 20 {
        assert!(
            Instant::now() < deadline,
            "only {} of 20 stored after the topic came back",
            stored()
        );
        pause(1).await;
    }
    assert_eq!(metric(&metrics, "consumer_dead_letters_total").await, 1.0);
    println!(
        "FAULT dead-letter topic unavailable while a poison message arrives: the partition waited \
         ({} failed sends), nothing behind the poison was stored meanwhile; {:.1} s after the topic came \
         back the poison was dead-lettered and the 20 receipts behind it stored",
        metric(&metrics, "consumer_dead_letter_failures_total").await,
        recovered.elapsed().as_secs_f64()
    );
}

/// A value of the consumer's `/metrics` (summed over its labels).
async fn metric(url: &str, name: &str) -> f64 {
    let text = reqwest::get(url)
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.split_whitespace().last())
        .filter_map(|value| value.parse::<f64>().ok())
        .sum()
}

/// A receipt as the producer publishes it.
fn envelope(transaction_id: &str) -> ReceiptEnvelope {
    let receipt = Receipt {
        transaction_id: transaction_id.into(),
        place_id: "place-1".into(),
        place_name: None,
        timestamp: "2024-02-07T12:34:56Z".parse().expect("time"),
        items: vec![LineItem {
            product_id: "p".into(),
            quantity: Decimal::ONE,
            price: Decimal::new(250, 2),
            category: "food".into(),
            extra: Default::default(),
        }],
        total_amount: Decimal::new(250, 2),
        vat_amount: Decimal::ZERO,
        tips_amount: Decimal::ZERO,
        payment_method: "cash".into(),
        extra: Default::default(),
    };
    ReceiptEnvelope::new("merchant-1".into(), chrono::Utc::now(), receipt)
}

/// A consumer on the mock cluster, the test PostgreSQL and the test Redis.
fn consumer_config(database_url: &str, brokers: &str) -> consumer::config::ConsumerConfig {
    let mut config: consumer::config::ConsumerConfig = defaults();
    config.addr = "127.0.0.1:0".into();
    config.database.database_url = database_url.to_owned();
    config.kafka.kafka_brokers = brokers.to_owned();
    config.redis.redis_url = service_url("TEST_REDIS_URL");
    config.redis.analytics_queue = unique_name("analytics");
    config.ingest.group_id = unique_name("group");
    config
}
